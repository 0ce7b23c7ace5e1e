"""rocknet.node with the real head (rocknet.head) instead of the tests' stand-in: a fleet
built from a host plan and head plan learns, agrees under loss, checkpoints and resumes.
Skipped where rocknet.head / rocknet_host.head_plan are not there yet."""

from __future__ import annotations

import pytest
from rocknet_host.fleet_run import Event, FleetRun, build_fleet
from rocknet_host.runtime import import_device

try:
    head_mod = import_device("rocknet.head")
    from rocknet_host import head_plan
except ImportError:  # pragma: no cover - the head lands separately
    pytest.skip("rocknet.head not available", allow_module_level=True)

from rocknet_host import data, plan  # noqa: E402

node_mod = import_device("rocknet.node")


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


def test_real_head_checkpoint_resume_and_rejoin():
    make, sched = real_fleet(4, checkpoint_every=8)
    fr = FleetRun(3, make, loss=0.02, seed=2,
                  events=[Event(60, 2, "crash"), Event(75, 2, "reboot")]).run(sched.length + 30)
    nd = fr.nodes[2]
    assert nd.applied[0][0] == "R" and nd.stats["joined"] == 1 and nd.synced
    assert fr.consistent([0, 1])
    assert nd.applied[0][1] > 0 and nd.head.t > 0  # resumed mid-training, not from scratch


def test_schedule_batch_must_fit_the_head():
    make, _ = real_fleet(1)
    nd = make(0)
    sched = node_mod.Schedule([20, 20, 20], [10, 10, 10], batch=16)
    with pytest.raises(ValueError, match="batch=8"):
        node_mod.Node(0, 3, None, nd.head, 3, 80, sched, slice_=nd.slice)
