"""rocknet.node: the pipeline, agreement under row loss, the divergence it prevents, crashes,
leader takeover, reboots from checkpoints, and the same decisions on MicroPython.

The node core is tested with a small stand-in head (tests/node_standin.py) over a row-level
network double (tests/node_net.py) that loses single rows, which a coded radio round hides;
the real head and the board loop: tests/test_node_head.py, tests/test_fleet_faults.py."""

from __future__ import annotations

import json

import pytest
from node_net import Event, FleetRun, chain_reference, digest_at, outcomes, replay
from node_standin import SETUP_SRC, standin_namespace
from rocknet_host.runtimes import import_device

node_mod = import_device("rocknet.node")
schedule_mod = import_device("rocknet.schedule")
NS = standin_namespace()


def fleet(n, loss=0.0, seed=1, events=(), **kw):
    kw.setdefault("row_size", 80)  # one row per message: a lost row loses one message
    make, sched = NS["make_fleet"](n, **kw)
    return FleetRun(n, make, loss=loss, seed=seed, events=events), sched


def agreed_log(node, since=0, until=None):
    """What a node processed, comparable across nodes: (kind, sample, payload)."""
    return [(e[0], e[1], e[2]) for e in node.applied if e[0] in "ADS" and e[1] >= since
            and (until is None or e[1] <= until)]


# ----- schedule and geometry -----


def test_schedule_round_robin_batches_and_phases():
    s = node_mod.Schedule([3, 2, 1], [1, 1, 0], predict=[0, 1, 0], epochs=2, batch=4)
    assert s.period == 8 and s.length == 17
    owners = [s.at(k)[1] for k in range(6)]
    assert owners == [0, 1, 2, 0, 1, 0]
    assert [s.at(k)[2] for k in range(6)] == [0, 0, 0, 1, 1, 2]
    assert s.at(6)[:3] == (schedule_mod.EVAL, 0, 0) and s.at(7)[:3] == (schedule_mod.EVAL, 1, 0)
    assert s.at(8)[0] == schedule_mod.TRAIN and s.at(8)[3] == 1
    assert s.at(16)[:3] == (schedule_mod.PREDICT, 1, 0)
    assert s.at(17) is None and s.at(-1) is None
    ends = [k for k in range(s.length) if s.batch_end(k)]
    assert ends == [3, 5, 11, 13]  # a batch of 4, the remainder of 2, per epoch
    back = node_mod.Schedule.from_dict(json.loads(json.dumps(s.to_dict())))
    assert [back.at(k) for k in range(-1, 19)] == [s.at(k) for k in range(-1, 19)]
    assert back.batch == 4 and back.epochs == 2


def test_schedule_gap_idles_after_every_batch():
    s = node_mod.Schedule([3, 2], [1, 1], epochs=2, batch=2, gap=2)
    # training 0,1 | idle idle | 2,3 | idle idle | 4 | idle idle | eval eval
    assert s.period == 5 + 3 * 2 + 2 and s.length == 2 * s.period
    kinds = [None if s.at(k) is None else s.at(k)[0] for k in range(s.period)]
    T, E = schedule_mod.TRAIN, schedule_mod.EVAL
    assert kinds == [T, T, None, None, T, T, None, None, T, None, None, E, E]
    assert [k for k in range(s.period) if s.batch_end(k)] == [1, 5, 8]
    assert s.last_batch_end(4) == 1 and s.last_batch_end(9) == 8
    assert s.last_batch_end(s.period) == 8 and s.last_batch_end(1) == -1
    assert node_mod.Schedule.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_geometry_series_then_one_control_message_per_node():
    g = node_mod.Geometry(n_nodes=5, length=64, n_classes=3, row_size=40, window=4)
    assert g.series_rows == 2  # label, phase + 64 values
    assert g.ctrl_rows * 40 >= g.ctrl_bytes
    assert g.m == g.series_rows + 5 * g.ctrl_rows
    assert g.owners(3)[:2] == [3, 3] and g.owners()[g.ctrl_index(4)] == 4
    msg = bytes(range(g.ctrl_bytes))
    rows = [None] * g.m
    for k, v in g.split(msg, g.ctrl_index(2)).items():
        rows[k] = v
    assert g.join(rows, g.ctrl_index(2), g.ctrl_rows, g.ctrl_bytes) == msg
    rows[g.ctrl_index(2)] = None
    assert g.join(rows, g.ctrl_index(2), g.ctrl_rows, g.ctrl_bytes) is None


# ----- agreement -----


def test_no_loss_every_sample_commits_and_all_nodes_learn_the_same():
    fr, sched = fleet(3, per_class=8, eval_per_class=3, epochs=4)
    fr.run(sched.length + 6)
    nodes = fr.nodes
    assert fr.consistent()
    train_eval = sched.epochs * sched.period
    for nd in nodes:
        assert nd.stats["commit"] == train_eval
        assert nd.stats["desynced"] == nd.stats["conflicts"] == 0
        assert len(nd.accuracy) == sched.epochs
    assert nodes[0].accuracy == nodes[1].accuracy == nodes[2].accuracy
    summ = import_device("rocknet.report").summary(nodes[2])
    assert summ["digest"] == nodes[2].digest.hex() and summ["leader"] == 0
    assert json.loads(json.dumps(summ)) == summ
    assert nodes[0].accuracy[-1][1] >= 6  # the stand-in head learns (9 test series, 3 classes)


@pytest.mark.parametrize("n,seed", [(3, 1), (4, 2), (5, 3)])
def test_agreement_under_20_percent_row_loss(n, seed):
    """Rows lost independently per receiver (no coding): a COMMIT needs every member to hold
    every message of two rounds, about 0.8^(N^2) here, so with 5 nodes (nearly) everything is
    DROPped, consistently. Over the Link, whole rounds complete and COMMIT is the norm."""
    fr, sched = fleet(n, loss=0.2, seed=seed, epochs=6)
    fr.run(sched.length + 8)
    assert fr.consistent()
    s = fr.common_sample(range(n))
    assert s >= sched.length - 1  # everybody got through the schedule
    logs = [outcomes(nd, until=s) for nd in fr.nodes]
    assert all(log == logs[0] for log in logs)
    assert [k for k, _ in logs[0]] == list(range(s + 1))  # every sample decided, in order
    if n <= 4:
        assert any(kind == "A" for _, kind in logs[0])  # some updates did get through
    assert any(kind == "D" for _, kind in logs[0])  # ... and losses were dropped, not guessed
    digests = {digest_at(nd, s) for nd in fr.nodes}
    assert len(digests) == 1
    for nd in fr.nodes:
        assert nd.stats["conflicts"] == 0 and nd.stats["desynced"] == 0
        assert nd.synced and nd.members == (1 << n) - 1  # no spurious removal


def test_without_agreement_the_same_losses_make_nodes_diverge():
    """RockNet's behaviour: each node sums whatever partial logits it decoded."""
    fr, sched = fleet(4, loss=0.2, seed=2, epochs=3, agreement=False)
    fr.run(sched.length + 4)
    assert not fr.consistent()
    # the nodes applied different sets of samples and different logit sums
    applied = [{(e[1], e[2]) for e in nd.applied if e[0] == "A"} for nd in fr.nodes]
    assert len({frozenset(a) for a in applied}) == 4
    # and without loss the two modes agree on what was applied
    on, _ = fleet(3, epochs=1)
    off, _ = fleet(3, epochs=1, agreement=False)
    on.run(sched.length)
    off.run(sched.length)
    assert off.consistent()
    assert [e[2][-12:] for e in on.nodes[1].applied if e[0] == "A"][:5] == \
        [e[2][-12:] for e in off.nodes[1].applied if e[0] == "A"][:5]


# ----- faults -----


def _survivors_agree(fr, ids):
    assert fr.consistent(ids)
    s = fr.common_sample(ids)
    logs = [agreed_log(fr.nodes[i], until=s) for i in ids]
    assert all(log == logs[0] for log in logs)
    return s


def test_crashed_member_is_removed_by_an_agreed_decision_and_the_fleet_continues():
    fr, sched = fleet(4, loss=0.05, seed=2, epochs=4, events=[Event(20, 2, "crash")])
    fr.run(sched.length + 6)
    ids = [0, 1, 3]
    _survivors_agree(fr, ids)
    for i in ids:
        nd = fr.nodes[i]
        assert nd.members == 0b1011 and nd.epoch == 1
        # the decision that removed node 2 is the same at every survivor
        first = min(e[1] for e in nd.applied if e[0] == "D" and e[2][2] == 0b1011)
        assert first == min(e[1] for e in fr.nodes[0].applied if e[0] == "D"
                            and e[2][2] == 0b1011)
    # commits resume without node 2: applied samples after the removal carry 3 partial logits
    late = [e for e in fr.nodes[1].applied if e[0] == "A" and e[1] > 40]
    assert late and all(len(e[2]) == 2 + 2 + 1 + 3 * 12 for e in late)


def test_leader_crash_next_member_takes_over():
    fr, sched = fleet(4, loss=0.05, seed=2, epochs=4, events=[Event(20, 0, "crash")])
    fr.run(sched.length + 6)
    ids = [1, 2, 3]
    _survivors_agree(fr, ids)
    assert all(fr.nodes[i].members == 0b1110 for i in ids)
    assert fr.nodes[1].stats["decided"] > 0 and fr.nodes[1].leader == 1
    s = fr.common_sample(ids)
    assert s >= sched.length - 1
    assert any(e[0] == "A" and e[1] > 40 for e in fr.nodes[2].applied)


@pytest.mark.parametrize("down,up", [(30, 45), (30, 32)])
def test_rebooted_node_resumes_from_its_checkpoint_and_rejoins(down, up):
    fr, sched = fleet(4, loss=0.05, seed=2, epochs=4, batch=4, checkpoint_every=4,
                      events=[Event(down, 2, "crash"), Event(up, 2, "reboot")])
    fr.run(up)  # crashed at `down`, reboot happens at the start of round `up`
    saved = fr.checkpoints[2]
    meta_through = fr.nodes[2].applied_through
    fr.run(sched.length + 6 - up)
    nd = fr.nodes[2]
    assert fr.reboots == {2: 1}
    # restored, not reset: the first record is the restore at the checkpoint's sample
    assert nd.applied[0][0] == "R" and nd.applied[0][1] <= meta_through
    assert nd.stats["joined"] == 1 and nd.synced and nd.members == 0b1111
    joined = [e for e in nd.applied if e[0] == "J"][0][1]
    assert joined >= up - 2  # decided two rounds after its first message (a DROP can add it)
    # from the join on, the rebooted node applies exactly what the others apply
    s = fr.common_sample(range(4))
    ref = agreed_log(fr.nodes[1], since=joined, until=s)
    assert agreed_log(nd, since=joined, until=s) == ref
    assert any(e[0] == "A" for e in ref)
    # the others never stopped: their whole history agrees
    _survivors_agree(fr, [0, 1, 3])
    # the checkpoint holds the weights of the batch boundary it was taken at
    fresh = NS["make_fleet"](4, batch=4, checkpoint_every=4, epochs=4)[0](2)
    fresh.restore(saved)
    assert not fresh.synced and 0 <= fresh.applied_through <= meta_through
    assert bytes(fresh.head.save()) == bytes(saved[saved.index(b"\n") + 1:])


def test_checkpoint_roundtrip_through_the_checkpoint_file(tmp_path):
    ckpt = import_device("rocknet.checkpoint")
    fr, sched = fleet(3, epochs=2, batch=4, checkpoint_every=2)
    fr.run(sched.length)
    path = str(tmp_path / "node_01.ckpt")
    ckpt.save(path, fr.checkpoints[1], 7)
    nd = NS["make_fleet"](3, epochs=2, batch=4)[0](1)
    assert ckpt.restore(path, nd.restore)[1:] == (7, path + ".b", None)
    assert not nd.synced and nd.applied_through > 0
    assert nd.begin_round(fr.round_no)  # it speaks (asks to come back) right away
    with pytest.raises(ValueError, match="node 1's"):
        ckpt.restore(path, NS["make_fleet"](3)[0](2).restore)


# ----- both runtimes -----

RUN_SRC = r'''
make, sched = make_fleet(3, epochs=2, row_size=80)
nodes = [make(i) for i in range(3)]
run_lossy(nodes, sched.length + 6, 51, 7)
s = min(nd.applied_through for nd in nodes)
# a second fleet: the leader crashes at round 10, node 1 takes over (4 nodes, 5 % loss)
make4, sched4 = make_fleet(4, epochs=2, row_size=80, gone_after=4)
fleet4 = [make4(i) for i in range(4)]
run_lossy(fleet4, sched4.length + 8, 13, 3, crash=(0, 10))
crash_log = [[(e[1], e[0]) for e in nd.applied if e[0] in "AD"] for nd in fleet4[1:]]
crash_end = min(nd.applied_through for nd in fleet4[1:])
# checkpoint and restore inside the runtime
cp = b"".join([bytes(p) for p in fleet4[1].checkpoint()])
fresh = make4(1)
fresh.restore(cp)
restored = (fresh.applied_through == fleet4[1].applied_through and not fresh.synced
            and bytes(fresh.head.save()) == bytes(fleet4[1].head.save()))
def upto(nd, s):
    d = None
    out = []
    for e in nd.applied:
        if e[1] <= s:
            d = e[3]
            if e[0] in "AD":
                out.append((e[1], e[0]))
    return d, out
res = [upto(nd, s) for nd in nodes]
result = {"same": all(r == res[0] for r in res), "log": res[0][1], "s": s,
          "commits": [nd.stats["commit"] for nd in nodes],
          "crash_log": [[x for x in lg if x[0] <= crash_end] for lg in crash_log],
          "crash_members": [nd.members for nd in fleet4[1:]], "crash_end": crash_end,
          "crash_length": sched4.length, "restored": restored}
'''


def test_same_decisions_in_both_runtimes(device):
    """A 3-node fleet with 20 % row loss (51/256) inside the runtime: digests agree there, and
    the decision log is the same on CPython and MicroPython (decisions depend on loss only)."""
    device.exec(SETUP_SRC)
    got = device.call(RUN_SRC)
    assert got["same"]
    ref = standin_namespace()
    exec(compile(RUN_SRC, "<run>", "exec"), ref)
    assert [tuple(x) for x in got["log"]] == ref["result"]["log"]
    assert got["s"] == ref["result"]["s"]
    assert any(k == "A" for _, k in ref["result"]["log"])
    # leader crash: survivors agree in the runtime, and with CPython
    logs = [[tuple(x) for x in lg] for lg in got["crash_log"]]
    assert logs[0] == logs[1] == logs[2] == ref["result"]["crash_log"][0]
    assert got["crash_members"] == [0b1110] * 3 == ref["result"]["crash_members"]
    assert got["crash_end"] >= got["crash_length"] - 1  # through the whole schedule
    assert got["restored"]


def test_a_short_deafness_is_caught_up_through_relays():
    """A node that hears nothing for 5 rounds still talks: DROPs meanwhile (its acks are
    empty), one merged relay entry covers them, and it catches up without leaving."""
    fr, sched = fleet(4, loss=0.05, seed=2, epochs=4,
                      events=[Event(20, 2, "deaf"), Event(25, 2, "hear")])
    fr.run(sched.length + 6)
    _survivors_agree(fr, range(4))
    assert all(nd.stats["desynced"] == 0 and nd.members == 0b1111 for nd in fr.nodes)


def test_a_long_deafness_removes_the_node_and_it_rejoins():
    fr, sched = fleet(4, loss=0.05, seed=2, epochs=4,
                      events=[Event(20, 2, "deaf"), Event(45, 2, "hear")])
    fr.run(sched.length + 6)
    nd = fr.nodes[2]
    assert fr.nodes[0].stats["removed"] == 1  # talking but deaf blocks COMMIT: removed
    assert nd.stats["joined"] == 1 and nd.synced
    _survivors_agree(fr, [0, 1, 3])
    joined = [e for e in nd.applied if e[0] == "J"][0][1]
    s = fr.common_sample(range(4))
    assert agreed_log(nd, since=joined, until=s) == agreed_log(fr.nodes[1], since=joined, until=s)
    # every update it applied, before and after, is one the others applied too
    others = set(agreed_log(fr.nodes[1]))
    assert all(e in others for e in agreed_log(nd) if e[0] in "AD")
    assert nd.stats["desynced"] == 1  # it noticed the relays had moved past it


@pytest.mark.parametrize("n", [3, 4])
def test_a_leader_nobody_hears_is_replaced_and_never_applies_a_conflicting_update(n):
    """One-way link: the leader hears everyone, nobody hears it. It loses its majority and
    stops deciding; the next member takes over (newer epoch), the old leader's last
    unrelayed decision is overridden at the old leader itself, and it rejoins later."""
    fr, sched = fleet(n, loss=0.05, seed=0, epochs=4,
                      events=[Event(20, 0, "mute"), Event(40, 0, "unmute")])
    fr.run(sched.length + 6)
    _survivors_agree(fr, range(1, n))
    old = fr.nodes[0]
    applied = {e for e in agreed_log(fr.nodes[1]) if e[0] in "AD"}
    assert all(e in applied for e in agreed_log(old) if e[0] in "AD")
    assert fr.nodes[1].stats["decided"] > 0
    assert old.stats["joined"] == 1 and old.synced and old.leader == 0  # back, and leading


def _random_faults(seed):
    """Random fault scenario (the same generator as the stress runs behind these seeds)."""
    import random

    rng = random.Random(seed)
    n = rng.choice([3, 4, 5])
    gone_after = rng.choice([4, 8])
    events = []
    for _ in range(rng.randrange(0, 4)):
        node, r0, d = rng.randrange(n), rng.randrange(5, 30), rng.randrange(1, 20)
        kind = rng.choice(["crash", "deaf", "mute"])
        back = {"crash": "reboot", "deaf": "hear", "mute": "unmute"}[kind]
        events += [Event(r0, node, kind), Event(r0 + d, node, back)]
    return n, rng.choice([0.0, 0.02, 0.05, 0.1, 0.2]), gone_after, events


# 12 random seeds, plus scenarios that once broke safety (372) or liveness (8, 149, 201, 535,
# 546: leader unheard, majority rebooted, whole fleet out of sync)
@pytest.mark.parametrize("seed", list(range(12)) + [8, 149, 201, 372, 535, 546])
def test_random_faults_never_split_an_update_and_everyone_ends_back_in(seed):
    """Safety: for every sample, every node that processed it did the same (all applied the
    same logit bytes, or all dropped it). Liveness: after the faults, every node is back."""
    n, loss, gone_after, events = _random_faults(seed)
    fr, sched = fleet(n, loss=loss, seed=seed, events=events, epochs=3, batch=4,
                      checkpoint_every=3, gone_after=gone_after)
    fr.run(sched.length + 30)
    seen = {}
    for nd in fr.nodes:
        for e in nd.applied:
            if e[0] in "AD":
                seen.setdefault(e[1], set()).add((e[0], e[2] if e[0] == "A" else b""))
    assert all(len(v) == 1 for v in seen.values()), (n, loss, events)
    assert all(nd.synced and nd.members == (1 << n) - 1 for nd in fr.nodes), (n, loss, events)
    assert min(nd.applied_through for nd in fr.nodes) >= sched.length - 1


def test_prediction_phase_gives_every_node_the_same_answers():
    make, _ = NS["make_fleet"](3, epochs=2)
    X, y = NS["quickstart"].dataset(2, 11)
    sched = node_mod.Schedule([4, 4, 4], [1, 1, 1], predict=[2, 2, 2], epochs=2, batch=4)
    Xt, yt = NS["quickstart"].dataset(4, 3)

    def build(i, save=None):
        base = make(i)
        data = {"train": [(bytes(Xt[k]), yt[k]) for k in range(i, 12, 3)],
                "eval": [(bytes(X[i]), y[i])],
                "predict": [bytes(X[k]) for k in range(i, 6, 3)]}
        return node_mod.Node(i, 3, None, base.head, 3, 80, sched, data=data, log=True,
                             slice_=base.slice)

    fr = FleetRun(3, build, loss=0.0).run(sched.length + 6)
    preds = [list(nd.predicted()) for nd in fr.nodes]
    assert preds[0] == preds[1] == preds[2]
    first = 2 * sched.period
    assert [s for s, _ in preds[0]] == list(range(first, first + 6))
    assert all(0 <= c < 3 for _, c in preds[0])
    # 3 classes fit a nibble: two answers a byte; the byte-a-class table (16 classes or more)
    # reads the same answers
    nd = fr.nodes[0]
    assert nd._nibbles and len(nd.predictions) == (sched.length - first + 1) // 2
    table = bytearray(b"\xff" * (sched.length - first))
    for s, c in preds[0]:
        table[s - first] = c
    nd.predictions, nd._nibbles = table, False
    assert list(nd.predicted()) == preds[0]


def test_the_host_replays_each_block_from_the_log():
    """The applied log is the whole story: replaying it (summed logits, features recomputed
    from the series, steps) on a fresh head gives each node's weights bit for bit."""
    make, sched = NS["make_fleet"](4, row_size=80, epochs=3, batch=4)
    fr = FleetRun(4, make, loss=0.05, seed=5).run(sched.length + 6)
    X, y = NS["quickstart"].dataset(4, 3)  # make_fleet's training data, owner k % 4

    def series_of(s):
        phase, owner, k, _ = sched.at(s)
        assert phase == schedule_mod.TRAIN
        return bytes(X[k * 4 + owner])

    for i, nd in enumerate(fr.nodes):
        head = replay(nd, make(i).head, series_of)
        assert bytes(head.save()) == bytes(nd.head.save())
        assert any(e[0] == "A" for e in nd.applied)


def _one_outcome_per_sample(fr):
    seen = {}
    for nd in fr.nodes:
        for e in nd.applied:
            if e[0] in "AD":
                seen.setdefault(e[1], set()).add((e[0], e[2] if e[0] == "A" else b""))
    return all(len(v) == 1 for v in seen.values())


def test_an_unheard_leaders_last_decision_does_not_resurface_after_a_takeover():
    """Regression (found by random faults): the leader decides, goes unheard for 8 rounds
    (others take over and re-decide), then is heard again. Its unechoed decision must be
    withdrawn by then, or a node hearing it late would apply a COMMIT the others dropped."""
    fr, sched = fleet(3, loss=0.1, seed=372, epochs=3, batch=4, checkpoint_every=3,
                      events=[Event(21, 0, "mute"), Event(28, 0, "unmute")])
    fr.run(sched.length + 30)
    assert _one_outcome_per_sample(fr)
    assert fr.nodes[0].stats["withdrawn"] >= 1
    assert all(nd.synced for nd in fr.nodes)


def test_two_of_three_rebooting_at_once_are_taken_back_by_the_survivor():
    """The survivor alone has no majority until the rebooted nodes talk again; they are not
    applying but still vote, so it takes over and adds them back."""
    fr, sched = fleet(3, loss=0.05, seed=4, epochs=3, batch=4, checkpoint_every=3,
                      events=[Event(12, 0, "crash"), Event(12, 1, "crash"),
                              Event(20, 0, "reboot"), Event(20, 1, "reboot")])
    fr.run(sched.length + 30)
    assert _one_outcome_per_sample(fr)
    assert fr.nodes[2].stats["decided"] >= 1
    assert all(nd.synced and nd.members == 0b111 for nd in fr.nodes)


def test_a_whole_fleet_power_cycle_refounds_the_fleet():
    """Every node reboots from its checkpoint: nobody is applying, so nobody may decide. A
    refound vote starts a new membership and everyone is back in."""
    fr, sched = fleet(3, loss=0.05, seed=4, epochs=6, batch=4, checkpoint_every=3,
                      events=[Event(12, i, "crash") for i in range(3)]
                      + [Event(16 + i, i, "reboot") for i in range(3)])
    fr.run(sched.length + 30)
    assert _one_outcome_per_sample(fr)
    assert sum(nd.stats["refounds"] for nd in fr.nodes) >= 1
    assert all(nd.synced and nd.members == 0b111 for nd in fr.nodes)
    s = fr.common_sample(range(3))
    back = max(e[1] for nd in fr.nodes for e in nd.applied if e[0] == "J")
    assert back < sched.length - 10  # back in well before the schedule ends
    tail = [agreed_log(nd, since=back, until=s) for nd in fr.nodes]
    assert tail[0] == tail[1] == tail[2] and any(e[0] == "A" for e in tail[0])


def test_a_fleet_built_from_a_host_plan_runs_train_and_evaluation_phases():
    """Plan slices, RockNet's contiguous ownership, int8 quantization, the test set as the
    evaluation phase. (The stand-in head's plain SGD barely moves on 336 uncentred PPV
    features in 4 epochs; learning quality belongs to rocknet.head's tests.)"""
    from node_net import build_fleet, owner_split
    from rocknet_host import data
    from rocknet_host.planning import features as plan

    assert owner_split(10, 3) == [(0, 4), (4, 7), (7, 10)]
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, 3, n_features=336, seed=0)
    Head = NS["StandInHead"]

    def head(i, nf, c):
        return Head(nf, c, p.length, i == 0)

    make, sched = build_fleet(p, ds, head, row_size=80, epochs=4, batch=10, log=True)
    fr = FleetRun(3, make, loss=0.05, seed=1).run(sched.length + 6)
    assert fr.consistent()
    accs = fr.nodes[0].accuracy
    assert len(accs) == 4 and all(a == accs for a in (nd.accuracy for nd in fr.nodes))
    assert [a[0] for a in accs] == [0, 1, 2, 3] and all(0 < a[2] <= 15 for a in accs)
    assert sched.period == 45 and [nd.slice.n_features for nd in fr.nodes] == [
        len(p.node_feature_index(i)) for i in range(3)]


def test_the_digest_chains_the_logged_entries_as_docs_protocol_says():
    """The digest after each logged entry is `chain_reference` (an AES CBC-MAC chain) over
    the entry (kind, sample as 4 bytes LE, payload), from 16 zero bytes."""
    fr, sched = fleet(3, loss=0.1, seed=3, epochs=1)
    fr.run(sched.length + 4)
    nd = fr.nodes[1]
    assert {e[0] for e in nd.applied} >= {"A", "S"}
    d = bytes(16)
    for kind, s, payload, after in nd.applied:
        d = chain_reference(d, kind.encode() + s.to_bytes(4, "little") + payload)
        assert d == after
    assert nd.digest == d


def test_int16_partial_logits_halve_the_bytes_and_keep_agreement():
    f32, _ = fleet(3, epochs=2)
    i16, sched = fleet(3, loss=0.2, seed=6, epochs=3, logit_scale=1 / 1024)
    assert i16.nodes[0].geo.ctrl_bytes == f32.nodes[0].geo.ctrl_bytes - 2 * 3
    i16.run(sched.length + 8)
    assert i16.consistent()
    X, y = NS["quickstart"].dataset(4, 3)

    def series_of(s):
        phase, owner, k, _ = sched.at(s)
        return bytes(X[k * 3 + owner])

    for i, nd in enumerate(i16.nodes):  # the int16 sums replay exactly too
        assert bytes(replay(nd, NS["make_fleet"](3)[0](i).head, series_of).save()) == \
            bytes(nd.head.save())
    nd = i16.nodes[0]
    assert nd.sum_logits(b"\x00\x04\x00\xfc\x01\x00" * 2) == [2.0, -2.0, 2 / 1024]


def test_a_long_run_of_drops_is_one_entry_and_is_applied_without_expanding_it():
    nd = NS["make_fleet"](3)[0](2)
    nd.end_round(0, [None] * nd.m)
    nd._round = 5000  # as if we had been listening for a long time
    nd._learn([(4000, node_mod.DROP, 0, 0b111, 0, 4000)], 1)  # samples 0..4000 dropped
    nd._apply_known()
    assert nd.applied_through == 4000 and nd.synced
    assert len(nd.known) <= 4 * nd.capacity + 2 and nd.stats["drop"] == 4001
    nd._learn([(9000, node_mod.COMMIT, 0, 0b111, 0, 10)], 1)  # from the future: ignored
    assert 9000 not in nd.known


def test_the_constants_node_compiles_in_are_their_modules():
    """node.py keeps private copies of other modules' constants (a const imported from
    another module costs a board heap, a private one is compiled in): they must agree."""
    msg = import_device("rocknet.messages")
    log = import_device("rocknet.logits")
    assert (node_mod._F_LOGITS, node_mod._F_OUT, node_mod._F_JOIN, node_mod._SERIES_HEAD) == (
        msg.F_LOGITS, msg.F_OUT, msg.F_JOIN, msg.SERIES_HEAD)
    assert (node_mod._TRAIN, node_mod._EVAL, node_mod._PREDICT) == (
        schedule_mod.TRAIN, schedule_mod.EVAL, schedule_mod.PREDICT)
    assert node_mod._NONFINITE == log.NONFINITE
