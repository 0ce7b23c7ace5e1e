"""Faults of the board loop itself (`rocknet.runner.Runner`, what ``rocknet.run()`` runs), each
on runners built from the files ``rocknet plan`` writes, on the in-memory medium
(`rocknet.radio.sim`): a reset board is re-admitted within a bounded number of rounds in
2-, 3- and 5-board fleets whatever the moment of the reset (leader included); a member whose
partial logits are not finite is removed and flagged, never summed, never a crash; and once
the agreed membership removed a crashed member, rounds stop waiting for its rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocknet_host import data
from rocknet_host.planning import board as board_plan
from rocknet_host.planning import features as plan
from rocknet_host.runtimes import import_device

board = import_device("rocknet.board")
sim = import_device("rocknet.radio.sim")

KEY = bytes(range(16))
GONE_AFTER = 8  # the plan's default: rounds of silence before a member is removed
# a reset leader is replaced after gone_after rounds and re-admitted by the new leader: the
# protocol's bound, on a clean channel
REJOIN_BOUND = 2 * GONE_AFTER + 4
WINDOW = board_plan.Training.window


def write_fleet(out: Path, n: int, epochs: int = 3, pending: int | None = None,
                old: bool = False) -> Path:
    """The plans ``rocknet plan`` writes (``pending``: ``--pending``; ``old``: without
    ``run.pending``, as plans were before it)."""
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, n, n_features=336, seed=0)
    t = board_plan.Training(epochs=epochs, batch=8, deadline_ms=500, gone_after=GONE_AFTER,
                            pending=pending)
    nps = board_plan.node_plans(p, ds, t)
    if old:
        for np_ in nps:
            del np_["run"]["pending"]
    plan.write(p, out, nps)
    board_plan.write_data(p, ds, t, out)
    (out / "fleet.key").write_bytes(KEY)
    return out


class Fleet:
    """n runners on one `Air`; `reset(i)` power-cycles board i (a fresh runner from its
    files and checkpoint)."""

    def __init__(self, d: Path, n: int, ckpt: Path, loss: float = 0.0) -> None:
        self.d, self.n, self.ckpt = d, n, ckpt
        self.air = sim.Air(loss=loss, seed=1)
        self.runners = [self.make(i) for i in range(n)]

    def make(self, i: int):
        p, pid, k, samples = board.load(str(self.d / f"node_{i:02d}.plan"),
                                        str(self.d / "fleet.key"),
                                        str(self.d / f"node_{i:02d}.data"))
        return board.Runner(p, k, samples, radio=self.air.radio, clock=self.air.now_ms,
                            pid=pid, checkpoint=str(self.ckpt / f"ckpt{i}"), result=None,
                            out=lambda line: None, every=0, log=True)

    def reset(self, i: int) -> None:
        self.air.remove(self.runners[i].radio)
        self.runners[i] = self.make(i)

    def step(self) -> bool:
        alive = [r.step() for r in self.runners]
        self.air.tick()
        return any(alive)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory) -> dict[int, Path]:
    return {n: write_fleet(tmp_path_factory.mktemp(f"plans{n}"), n) for n in (2, 3, 5)}


_SLOW = pytest.mark.slow


@pytest.mark.parametrize("n,victim", [
    (3, 1), (3, 0),  # the README's 3-Feather fleet: a member and the leader
    pytest.param(2, 1, marks=_SLOW), pytest.param(2, 0, marks=_SLOW),
    pytest.param(5, 2, marks=_SLOW), pytest.param(5, 0, marks=_SLOW)])
def test_a_reset_board_is_readmitted_within_a_few_rounds(fleets, tmp_path, n, victim):
    ref = 1 if victim == 0 else 0
    for k, at in enumerate((20, 57, 101, 122)):  # rounds: early, mid-epoch, late, last epoch
        fl = Fleet(fleets[n], n, tmp_path / f"ck{k}")
        reset_round = rejoined = None
        for _ in range(20000):
            if reset_round is None and (fl.runners[ref].r or 0) >= at:
                fl.reset(victim)
                reset_round = fl.runners[ref].r
            more = fl.step()
            v, leader = fl.runners[victim], fl.runners[ref]
            if (reset_round is not None and rejoined is None and v.node.synced
                    and leader.node.members >> victim & 1 and v.applied["A"] > 0):
                rejoined = leader.r
            if not more:
                break
        assert reset_round is not None
        assert rejoined is not None, f"board {victim} of {n}, reset in round {reset_round}, " \
            "was never re-admitted"
        assert rejoined - reset_round <= REJOIN_BOUND, (n, victim, reset_round, rejoined)
        # it trained on with the fleet: the same decisions from its joining sample on
        log = {(e[0], e[1]): e[2] for e in fl.runners[ref].node.applied}
        joined = max(e[1] for e in fl.runners[victim].node.applied if e[0] == "J")
        last = fl.runners[ref].schedule.length - 1
        mine = [e for e in fl.runners[victim].node.applied
                if e[0] in "AD" and joined <= e[1] <= last]
        assert mine and all(log.get((e[0], e[1])) == e[2] for e in mine)


def _nan_from(runner, r0: int) -> None:
    head = runner.node.head
    honest = head.partial_logits

    def partial_logits(counts):
        out = honest(counts)
        return out * float("nan") if (runner.r or 0) >= r0 else out

    head.partial_logits = partial_logits


@pytest.mark.parametrize("bad", [2, 0])  # a member; the leader itself
def test_non_finite_partial_logits_are_a_flagged_fault_not_a_crash(fleets, tmp_path, bad):
    fl = Fleet(fleets[5], 5, tmp_path)
    _nan_from(fl.runners[bad], 60)
    while fl.step():
        pass
    honest = [r for i, r in enumerate(fl.runners) if i != bad]
    res = [r.result for r in honest]
    assert all(x is not None for x in res)
    assert len({x["digest"] for x in res}) == 1  # the honest boards applied the same updates
    assert not honest[0].node.members >> bad & 1  # the faulty board is out
    _, correct, seen = res[0]["accuracy"][-1]
    assert seen == 15 and correct >= 13
    if bad == 0:  # a leader with NaN logits steps down; the next member leads
        assert fl.runners[0].node.stats["faulty"] >= 1 and not fl.runners[0].node.synced
    else:
        assert fl.runners[0].node.faulty >> bad & 1  # flagged by the leader
    assert all(r.node.stats["nonfinite"] == 0 for r in honest)  # nothing non-finite summed


def test_rounds_stop_waiting_for_a_removed_member(fleets, tmp_path):
    fl = Fleet(fleets[5], 5, tmp_path)
    gone = None
    while fl.step():
        r0 = fl.runners[0]
        if gone is None and (r0.r or 0) >= 40:
            fl.air.remove(fl.runners[3].radio)
            fl.runners[3] = None
            fl.runners = [r for r in fl.runners if r is not None]
            gone = r0.r
            ends_at_crash = list(r0.ends)
    r0 = fl.runners[0]
    assert not r0.node.members >> 3 & 1
    late = [a - b for a, b in zip(r0.ends, ends_at_crash, strict=True)]
    # at most the rounds before the removal (gone_after) and its slack end at the deadline
    assert late[1] <= GONE_AFTER + 4
    assert late[0] >= r0.schedule.length - gone - GONE_AFTER - 8


def test_a_lossy_fleet_with_the_smallest_auto_ring_trains_to_the_end(tmp_path):
    """``--pending`` window + 4 (the ring ``auto`` shrinks to where the heap needs it): the
    plans carry it, every node's ring has that many slots, and three boards on a channel
    losing 20 % of the adverts train to the end of the schedule and apply the same updates.
    A plan without ``run.pending`` (older than it) gets the node's default, 2 x window + 4."""
    d = write_fleet(tmp_path / "plans", 3, pending=WINDOW + 4)
    fl = Fleet(d, 3, tmp_path, loss=0.2)
    assert [r.node.capacity for r in fl.runners] == [WINDOW + 4] * 3
    for _ in range(20000):
        if not fl.step():
            break
    res = [r.result for r in fl.runners]
    assert all(x is not None for x in res)  # every board finished the schedule
    assert len({x["digest"] for x in res}) == 1  # and applied the same updates
    assert all(r.node.synced and r.node.members == 0b111 for r in fl.runners)
    assert fl.runners[0].node.stats["commit"] > 0
    _, correct, seen = res[0]["accuracy"][-1]
    assert seen == 15 and correct >= 10
    old = write_fleet(tmp_path / "old", 3, old=True)
    assert "pending" not in plan.read_node(old / "node_00.plan")["run"]
    assert Fleet(old, 3, tmp_path / "old_ck").runners[0].node.capacity == 2 * WINDOW + 4


@pytest.mark.parametrize("before,after", [(None, WINDOW + 4), (WINDOW + 4, None)])
def test_a_checkpoint_restores_into_a_ring_of_another_size(tmp_path, before, after):
    """A checkpoint holds no slot of the ring (`checkpoint.node_payload`): a board re-planned
    with another ``--pending`` (the same features and head) resumes from the checkpoint its
    old plan wrote, with its new ring, rejoins, and applies what the others apply."""
    first = write_fleet(tmp_path / "first", 3, pending=before)
    second = write_fleet(tmp_path / "second", 3, pending=after)
    fl = Fleet(first, 3, tmp_path)
    ref, victim = fl.runners[0], 1
    for _ in range(20000):
        fl.step()
        if (ref.r or 0) >= 60:
            break
    assert list(tmp_path.glob("ckpt1.*"))  # written with the first plan's ring
    fl.d = second  # the victim's files, re-planned and deployed again
    fl.reset(victim)
    fl.d = first
    v = fl.runners[victim]
    assert v.resumed is not None and not v.node.synced
    assert v.node.capacity == (2 * WINDOW + 4 if after is None else after)
    assert ref.node.capacity == (2 * WINDOW + 4 if before is None else before)
    while fl.step():
        pass
    assert v.node.synced and ref.node.members >> victim & 1
    joined = max(e[1] for e in v.node.applied if e[0] == "J")
    log = {(e[0], e[1]): e[2] for e in ref.node.applied}
    last = ref.schedule.length - 1
    mine = [e for e in v.node.applied if e[0] in "AD" and joined <= e[1] <= last]
    assert mine and all(log.get((e[0], e[1])) == e[2] for e in mine)
