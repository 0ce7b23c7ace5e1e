"""rocknet.node with the real head (rocknet.head) instead of the tests' stand-in: a fleet
built from a host plan and head plan learns, agrees under loss, checkpoints and resumes."""

from __future__ import annotations

import pytest
from node_net import Event, FleetRun, build_fleet
from rocknet_host.runtimes import import_device

head_mod = import_device("rocknet.head")  # a broken head fails this module, never skips it

from rocknet_host import data  # noqa: E402
from rocknet_host.planning import features as plan  # noqa: E402
from rocknet_host.planning import head as head_plan  # noqa: E402

node_mod = import_device("rocknet.node")
schedule_mod = import_device("rocknet.schedule")


def real_fleet(epochs, batch=8, **kw):
    ds = data.synthetic(n_train=60, n_test=30, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, 3, n_features=336, seed=0)
    nps = head_plan.node_plans(p, head_plan.sections(p, ds.X_train, batch=batch,
                                                     passes=epochs))
    return build_fleet(p, ds, lambda i, nf, c: head_mod.Head(nps[i]), row_size=80,
                       epochs=epochs, batch=batch, log=True, **kw)


def test_real_head_fleet_learns_and_agrees_under_loss():
    make, sched = real_fleet(6)
    fr = FleetRun(3, make, loss=0.05, seed=1).run(sched.length + 6)
    assert fr.consistent()
    accs = [nd.accuracy for nd in fr.nodes]
    assert accs[0] == accs[1] == accs[2]
    _, correct, seen = accs[0][-1]
    assert seen >= 10 and correct >= 0.9 * seen
    assert all(nd.stats["steps"] > 0 for nd in fr.nodes)


def test_the_slice_counts_into_the_heads_code_buffer_when_codes_are_counts():
    """Series up to 255 values: a count is its own 8-bit code (`Head.codes`), so a node keeps
    one buffer for both; the fleet above trains on it, every runtime alike."""
    make, _ = real_fleet(1)
    nd = make(0)
    assert nd.head._den is None and nd._counts is nd.head._u
    c = nd.slice.transform(bytes(64), nd._counts)
    assert c is nd.head._u and list(nd.head.codes(c)) == list(c)


def test_real_head_checkpoint_resume_and_rejoin():
    make, sched = real_fleet(4, checkpoint_every=8)
    fr = FleetRun(3, make, loss=0.02, seed=2,
                  events=[Event(60, 2, "crash"), Event(75, 2, "reboot")]).run(sched.length + 30)
    nd = fr.nodes[2]
    assert nd.applied[0][0] == "R" and nd.stats["joined"] == 1 and nd.synced
    assert fr.consistent([0, 1])
    assert nd.applied[0][1] > 0 and nd.head.t > 0  # resumed mid-training, not from scratch


def test_keeping_series_applies_exactly_what_keeping_codes_does():
    """A ring of series (``keep="series"``: each training sample transformed again when its
    decision comes) applies the same updates as a ring of codes, under loss, a crash and a
    reboot from a checkpoint: the same log and digest on every node, the same weights."""
    runs = {}
    for keep in ("codes", "series"):
        make, sched = real_fleet(4, checkpoint_every=8, keep=keep)
        fr = FleetRun(3, make, loss=0.05, seed=2, events=[Event(60, 2, "crash"),
                                                          Event(75, 2, "reboot")])
        fr.run(sched.length + 30)
        assert fr.consistent([0, 1])
        runs[keep] = [(nd.digest, nd.applied, nd.head.save(), nd.stats) for nd in fr.nodes]
        assert isinstance(fr.nodes[0]._kept, bytearray if keep == "series" else list)
    assert runs["series"] == runs["codes"]
    assert sum(e[0] == "A" for e in runs["series"][0][1]) > 50  # samples applied


def test_schedule_batch_must_fit_the_head():
    make, _ = real_fleet(1)
    nd = make(0)
    sched = node_mod.Schedule([20, 20, 20], [10, 10, 10], batch=16)
    with pytest.raises(ValueError, match="batch=8"):
        node_mod.Node(0, 3, None, nd.head, 3, 80, sched, slice_=nd.slice)
    with pytest.raises(ValueError, match="keep must be 'codes' or 'series', not 'counts'"):
        node_mod.Node(0, 3, None, nd.head, 3, 80, nd.schedule, slice_=nd.slice, keep="counts")
    # a ring that cannot hold a sample until its earliest decision (a hand-edited plan)
    with pytest.raises(ValueError, match="window \\+ 2 = 6 .*--pending auto"):
        node_mod.Node(0, 3, None, nd.head, 3, 80, nd.schedule, slice_=nd.slice, pending=5)


RUN_SRC = """
from rocknet import head as head_mod
sched = node_mod.Schedule([10, 10, 10], [5, 5, 5], epochs=2, batch=8)
nodes = []
for i in range(3):
    d = {"train": [tuple(x) for x in datas[i]["train"]],
         "eval": [tuple(x) for x in datas[i]["eval"]]}
    nodes.append(node_mod.Node(i, 3, plans[i]["features"], head_mod.Head(plans[i]), 3, 80,
                               sched, data=d, log=True, keep=keep, pending=pending))
run_lossy(nodes, sched.length + 6, 13, 5)
s = min(nd.applied_through for nd in nodes)
res = []
for nd in nodes:
    d, log = None, []
    for e in nd.applied:
        if e[1] <= s:
            d = e[3]
            if e[0] in "AD":
                log.append([e[1], e[0]])
    res.append((d, log))
result = {"same": all(r == res[0] for r in res), "log": res[0][1], "through": s,
          "length": sched.length, "capacity": [nd.capacity for nd in nodes],
          "acc": [list(a) for a in nodes[0].accuracy], "digest": res[0][0],
          "heads": [bytes(nd.head.save()) for nd in nodes]}
"""


def test_real_head_same_decisions_in_both_runtimes(device):
    """Three nodes with the real head, 5 % row loss (13/256), inside the runtime: digests
    agree there; decisions and evaluation counts match CPython's. Keeping each training
    sample's series (transformed again when applied) instead of its codes changes nothing:
    the same digest and the same head state, byte for byte, in every runtime; and so does a
    ring of window + 4 = 8 slots (what ``--pending auto`` shrinks a ring to) instead of the
    default 2 x window + 4 = 12, to the end of the schedule."""
    from node_standin import SETUP_SRC, standin_namespace
    from rocknet_host.planning.board import owner_split

    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, 3, n_features=336, seed=0)
    plans = head_plan.node_plans(p, head_plan.sections(p, ds.X_train, batch=8, passes=2))
    Q, Qe = p.quantizer(ds.X_train).astype("int8"), p.quantizer(ds.X_test).astype("int8")
    tr, te = owner_split(30, 3), owner_split(15, 3)
    datas = [{"train": [[Q[k].tobytes(), int(ds.y_train[k])] for k in range(*tr[i])],
              "eval": [[Qe[k].tobytes(), int(ds.y_test[k])] for k in range(*te[i])]}
             for i in range(3)]
    device.exec(SETUP_SRC)
    device.set(plans=plans, datas=datas, keep="codes", pending=None)
    got = device.call(RUN_SRC)
    assert got["same"] and got["capacity"] == [12] * 3
    ref = standin_namespace()
    ref.update(plans=plans, datas=datas, keep="codes", pending=None)
    exec(compile(RUN_SRC, "<run>", "exec"), ref)
    assert [list(x) for x in got["log"]] == [list(x) for x in ref["result"]["log"]]
    assert [list(a) for a in got["acc"]] == ref["result"]["acc"]
    assert any(k == "A" for _, k in ref["result"]["log"])
    device.set(keep="series")
    series = device.call(RUN_SRC)
    assert series["same"] and series["log"] == got["log"] and series["acc"] == got["acc"]
    assert bytes(series["digest"]) == bytes(got["digest"])
    assert [bytes(h) for h in series["heads"]] == [bytes(h) for h in got["heads"]]
    device.set(keep="codes", pending=8)
    small = device.call(RUN_SRC)
    ref.update(pending=8)
    exec(compile(RUN_SRC, "<run>", "exec"), ref)
    assert small["same"] and small["capacity"] == [8] * 3
    assert small["through"] >= small["length"] - 1  # every sample decided
    assert small["log"] == got["log"]  # none of them later than 8 rounds
    assert [list(x) for x in small["log"]] == [list(x) for x in ref["result"]["log"]]
    assert [list(a) for a in small["acc"]] == ref["result"]["acc"]
    assert any(k == "A" for _, k in small["log"])


def test_a_head_configured_for_int16_rows_sets_the_node_wire():
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, 3, n_features=336, seed=0)
    nps = head_plan.node_plans(p, head_plan.sections(p, ds.X_train, batch=8, passes=3,
                                                     wire="int16"))
    make, sched = build_fleet(p, ds, lambda i, nf, c: head_mod.Head(nps[i]), row_size=80,
                              epochs=3, batch=8, log=True)
    fr = FleetRun(3, make, loss=0.05, seed=4).run(sched.length + 6)
    nd = fr.nodes[0]
    assert nd.logit_bytes == 2 and nd.logit_scale == nd.head.logit_scale
    assert fr.consistent() and nd.stats["commit"] > 0


@pytest.mark.parametrize("gap,loss", [(4, 0.0), (2, 0.1)])
def test_with_a_batch_gap_the_fleet_trains_exactly_the_central_model(gap, loss):
    """Idle rounds after each batch (``gap``) plus the node's rule "do not score a sample
    before applying the last batch end": every committed sample is scored with the stepped
    weights everywhere, so each node's block equals, bit for bit, the same columns of one
    central head trained on the committed samples in the same order."""
    import numpy as np
    from rocknet_host.planning.board import owner_split

    ds = data.synthetic(n_train=60, n_test=30, length=64, n_classes=3, seed=2)
    p3 = plan.fit(ds, 3, n_features=336, seed=0)
    p1 = plan.fit(ds, 1, n_features=336, seed=0)  # same kernels and biases, one node
    # float32 rows: the central head sums unrounded partial logits
    nps = head_plan.node_plans(p3, head_plan.sections(p3, ds.X_train, batch=8, passes=3,
                                                      wire="float32"))
    central = head_mod.Head(head_plan.node_plans(
        p1, head_plan.sections(p1, ds.X_train, batch=8, passes=3, wire="float32"))[0])
    make, sched = build_fleet(p3, ds, lambda i, nf, c: head_mod.Head(nps[i]), row_size=80,
                              epochs=3, batch=8, gap=gap, log=True)
    fr = FleetRun(3, make, loss=loss, seed=1).run(sched.length + 8)
    assert fr.consistent()
    Q = p1.quantizer(ds.X_train).astype("int8")
    tr = owner_split(60, 3)
    whole = import_device("rocknet.minirocket").Slice(p1.node_features(0))
    applied = 0
    for e in fr.nodes[0].applied:
        if e[0] == "A" and e[2][1] == schedule_mod.TRAIN:
            _, owner, k, _ = sched.at(e[1])
            counts = whole.transform(Q[tr[owner][0] + k].tobytes())
            central.apply(central.partial_logits(counts), e[2][0], counts)
            applied += 1
        elif e[0] == "S":
            central.step()
    assert applied > 40
    W = np.array(central.weights, dtype=float)
    for i, nd in enumerate(fr.nodes):
        assert np.array_equal(np.array(nd.head.weights, dtype=float),
                              W[:, p3.node_feature_index(i)])


@pytest.mark.slow
def test_boards_over_the_simulated_radio_train_the_central_model(tmp_path):
    """Four boards running rocknet.run()'s loop in full mesh with 20 % link loss, coded
    rounds over BLE adverts through their _bleio adapters: the test set is learned, and each
    board's block is, bit for bit, the central head's (the fast central path of `bench
    accuracy` computes what the fleet applies)."""
    import numpy as np
    from rocknet_host.planning import board as board_plan
    from rocknet_host.planning.board import owner_split
    from rocknet_host.sim import topology as topo
    from rocknet_host.sim.fleet import Fleet
    from rocknet_host.sim.radio import profile

    ds = data.synthetic(n_train=60, n_test=30, length=64, n_classes=3, seed=2)
    n = 4
    pn = plan.fit(ds, n, n_features=336, seed=0)
    p1 = plan.fit(ds, 1, n_features=336, seed=0)
    t = board_plan.Training(epochs=3, batch=8, gap=4, deadline_ms=1000, wire="float32")
    nps = board_plan.node_plans(pn, ds, t)
    plan.write(pn, tmp_path, nps)
    board_plan.write_data(pn, ds, t, tmp_path)
    (tmp_path / "fleet.key").write_bytes(bytes(range(16)))
    central = head_mod.Head(head_plan.node_plans(
        p1, head_plan.sections(p1, ds.X_train, batch=8, passes=3, wire="float32"))[0])
    fl = Fleet(tmp_path, tmp_path / "boards", topo.full(n, loss=0.2), profile("nrf52840-ext"),
               seed=3)
    fl.run(600)
    heads = [nd.program.runner.node.head for nd in fl.nodes]
    fl.close()
    sched = node_mod.Schedule.from_dict(nps[0]["schedule"])
    logs = [[e for e in nd.log if e[1] < sched.length] for nd in fl.nodes]
    log = logs[0]
    assert all(x == log for x in logs)  # the same updates everywhere
    idle = sum(1 for q in range(sched.length) if sched.at(q) is None)
    assert sum(1 for e in log if e[0] == "A") >= 0.85 * (sched.length - idle)
    Q = p1.quantizer(ds.X_train).astype("int8")
    tr = owner_split(60, n)
    whole = import_device("rocknet.minirocket").Slice(p1.node_features(0))
    for e in log:
        if e[0] == "A" and e[2][1] == schedule_mod.TRAIN:
            _, owner, k, _ = sched.at(e[1])
            counts = whole.transform(Q[tr[owner][0] + k].tobytes())
            central.apply(central.partial_logits(counts), e[2][0], counts)
        elif e[0] == "S":
            central.step()
    W = np.array(central.weights, dtype=float)
    for i, h in enumerate(heads):
        assert np.array_equal(np.array(h.weights, dtype=float), W[:, pn.node_feature_index(i)])
