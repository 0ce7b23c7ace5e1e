"""rocknet.node over the BLE advertising simulator: each node's core talks through its own
Link (coded Mixer rounds in authenticated adverts). Coded rounds complete as a whole, so most
samples COMMIT even at 30 % link loss, and the fleet stays consistent through crashes."""

from __future__ import annotations

import pytest
from node_standin import standin_namespace
from rocknet_host.fleet_run import Event
from rocknet_host.fleet_sim import FleetSim, row_size_for
from rocknet_host.runtime import import_device
from rocknet_host.sim import topology as topo
from rocknet_host.sim.radio import profile

NS = standin_namespace()
node_mod = import_device("rocknet.node")
ROW = 80


def sim(n, topology, events=(), seed=1, **kw):
    make, sched = NS["make_fleet"](n, row_size=ROW, **kw)
    fs = FleetSim(topology, profile("nrf52840-ext"), lambda i, rs, save: make(i, save), ROW,
                  seed=seed, events=events)
    return fs, sched


def log(node, since=0, until=None):
    return [(e[0], e[1], e[2]) for e in node.applied if e[0] in "ADS" and e[1] >= since
            and (until is None or e[1] <= until)]


def test_row_size_fits_the_advert():
    geo = lambda rs: node_mod.Geometry(4, 64, 3, rs, 4)  # noqa: E731
    rs = row_size_for(profile("nrf52840-ext"), geo)
    wire = import_device("rocknet.wire")
    assert ROW <= rs <= wire.max_row_size("extended", geo(rs).m)
    with pytest.raises(ValueError, match="extended adverts"):  # 31-byte adverts: too many rows
        row_size_for(profile("nrf52840-legacy"), geo)


@pytest.mark.parametrize("kind,loss", [("full", 0.3), ("line", 0.1)])
def test_fleet_over_the_simulated_radio_commits_and_agrees(kind, loss):
    n = 4
    t = topo.full(n, loss) if kind == "full" else topo.line(n, loss=loss)
    fs, sched = sim(n, t, epochs=2, per_class=3)
    fs.run(sched.length + 6)
    assert fs.consistent()
    s = min(nd.applied_through for nd in fs.nodes)
    assert s >= sched.length - 1
    logs = [log(nd, until=s) for nd in fs.nodes]
    assert all(x == logs[0] for x in logs)
    commits = sum(1 for e in logs[0] if e[0] == "A")
    assert commits >= 0.8 * sched.length  # coded rounds: COMMIT is the common case
    assert sum(r.complete for r in fs.rounds) >= 0.8 * len(fs.rounds)
    assert all(nd.stats["conflicts"] == 0 and nd.stats["desynced"] == 0 for nd in fs.nodes)


def test_crash_and_reboot_over_the_simulated_radio():
    n = 4
    fs, sched = sim(n, topo.full(n, 0.1), epochs=3, per_class=3, batch=4, checkpoint_every=2,
                    events=[Event(12, 2, "crash"), Event(30, 2, "reboot")])
    fs.run(sched.length + 6)
    assert fs.consistent([0, 1, 3])
    back = fs.nodes[2]
    assert back.applied[0][0] == "R" and back.stats["joined"] == 1 and back.synced
    joined = [e for e in back.applied if e[0] == "J"][0][1]
    s = min(nd.applied_through for nd in fs.nodes)
    assert log(back, since=joined, until=s) == log(fs.nodes[0], since=joined, until=s)
    assert any(e[0] == "A" for e in log(back, since=joined, until=s))
    assert all(nd.members == 0b1111 for nd in fs.nodes)


def test_leader_crash_over_the_simulated_radio():
    n = 4
    fs, sched = sim(n, topo.grid(n, loss=0.1), epochs=3, per_class=3, gone_after=4,
                    events=[Event(10, 0, "crash")])
    fs.run(sched.length + 8)
    ids = [1, 2, 3]
    assert fs.consistent(ids)
    assert all(fs.nodes[i].members == 0b1110 and fs.nodes[i].leader == 1 for i in ids)
    s = min(fs.nodes[i].applied_through for i in ids)
    assert s >= sched.length - 1
    assert any(e[0] == "A" and e[1] > 20 for e in fs.nodes[3].applied)


@pytest.mark.parametrize("seed", range(4))
def test_random_crashes_over_the_simulated_radio_never_split_an_update(seed):
    import random

    rng = random.Random(seed)
    n = rng.choice([3, 4, 5, 6])
    events = []
    for _ in range(rng.randrange(1, 3)):
        node, r0, d = rng.randrange(n), rng.randrange(5, 30), rng.randrange(1, 20)
        events += [Event(r0, node, "crash"), Event(r0 + d, node, "reboot")]
    loss = rng.choice([0.0, 0.1, 0.3])
    t = rng.choice([topo.full(n, loss), topo.line(n, loss=loss), topo.grid(n, loss=loss)])
    fs, sched = sim(n, t, events=events, seed=seed, epochs=3, per_class=4, batch=4,
                    checkpoint_every=3)
    fs.run(sched.length + 30)
    seen = {}
    for nd in fs.nodes:
        for e in nd.applied:
            if e[0] in "AD":
                seen.setdefault(e[1], set()).add((e[0], e[2] if e[0] == "A" else b""))
    assert all(len(v) == 1 for v in seen.values())
    assert all(nd.synced for nd in fs.nodes)
