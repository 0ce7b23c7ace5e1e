"""rocknet.schedule.Schedule computes every sample's place from the per-owner counts: the same
`at`, `batch_end`, `last_batch_end`, `to_dict` as enumerating the whole order (the algorithm
it replaced, written out here), in every runtime, and a board's heap holds O(nodes) for it."""

from __future__ import annotations

import random

TRAIN, EVAL, PREDICT = 0, 1, 2


def reference(train, eval_, predict, epochs, batch, gap):
    """The old Schedule, enumerated: at/batch_end/last_batch_end of s = -2 .. length + 2,
    to_dict, period and length."""
    batch, gap = max(1, batch), max(0, gap)

    def order(counts):
        return [(o, k) for k in range(max(counts, default=0))
                for o in range(len(counts)) if k < counts[o]]

    def counts(counts):
        out = list(counts)
        while out and not out[-1]:
            out.pop()
        return out

    tr, ev, pr = order(train), order(eval_), order(predict)
    slots = []
    for k in range(len(tr)):
        slots.append(k)
        if (k + 1) % batch == 0 or k == len(tr) - 1:
            slots += [-1] * gap
    period = len(slots) + len(ev)
    length = epochs * period + len(pr)

    def at(s):
        if s < 0 or s >= length:
            return None
        if s >= epochs * period:
            return [PREDICT, *pr[s - epochs * period], epochs]
        e, p = divmod(s, period)
        if p < len(slots):
            return None if slots[p] < 0 else [TRAIN, *tr[slots[p]], e]
        return [EVAL, *ev[p - len(slots)], e]

    def batch_end(s):
        if s < 0 or s >= epochs * period or s % period >= len(slots):
            return False
        k = slots[s % period]
        return k >= 0 and ((k + 1) % batch == 0 or k == len(tr) - 1)

    def last_batch_end(s):
        return next((q for q in range(s - 1, max(-1, s - period - 2), -1) if batch_end(q)), -1)

    ss = range(-2, length + 3)
    return {"at": [at(s) for s in ss], "ends": [batch_end(s) for s in ss],
            "last": [last_batch_end(s) for s in ss],
            "dict": {"train": counts(train), "eval": counts(eval_), "predict": counts(predict),
                     "epochs": epochs, "batch": batch, "gap": gap},
            "period": period, "length": length}


def cases() -> list[tuple]:
    """(train, eval, predict, epochs, batch, gap): edge cases, then seeded random ones."""
    out = [([3, 2, 1], [1, 1, 0], [0, 1, 0], 2, 4, 0), ([3, 2], [1, 1], [], 2, 2, 2),
           ([], [], [], 1, 8, 0), ([0, 0, 0], [0, 0], [0], 2, 3, 1),
           ([0, 0, 0], [2, 0, 1], [1, 0, 3], 2, 3, 2),  # no training: eval and predict only
           ([4, 4, 4], [], [5, 5], 3, 100, 1),  # batch larger than the training set
           ([0, 5, 0, 2, 0], [0, 0, 3], [0, 4], 2, 1, 0), ([7], [2], [1], 2, 3, 3),
           ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [2, 0, 2], 1, 4, 0), ([6, 6], [1, 1], [], 0, 4, 2),
           ([2, 2], [0, 1], [1], 2, 0, -1)]  # batch 0 and gap -1 read as 1 and 0
    rng = random.Random(7)
    for _ in range(40):
        n = rng.randint(1, 7)
        draw = [rng.choice((0, 1, 2, 3, 5, 9)) for _ in range(3 * n)]
        out.append((draw[:n], draw[n:2 * n], draw[2 * n:], rng.randint(0, 3),
                    rng.choice((1, 2, 3, 4, 8, 64)), rng.choice((0, 0, 1, 2, 5))))
    return out


ON_DEVICE = """
from rocknet.schedule import Schedule
result = []
for _c in cases:
    _s = Schedule(*_c)
    _ss = range(-2, _s.length + 3)
    _at = []
    for _q in _ss:
        _a = _s.at(_q)
        _at.append(None if _a is None else list(_a))
    result.append({"at": _at, "ends": [_s.batch_end(_q) for _q in _ss],
                   "last": [_s.last_batch_end(_q) for _q in _ss],
                   "dict": Schedule.from_dict(_s.to_dict()).to_dict(),
                   "period": _s.period, "length": _s.length})
del _s, _c, _at
"""


def test_schedule_matches_the_enumerated_order(device):
    cs = cases()
    got = device.call(ON_DEVICE, cases=[list(c) for c in cs])
    for c, g in zip(cs, got, strict=True):
        want = reference(*c)
        for key in want:
            assert g[key] == want[key], (c, key)


def test_schedule_refuses_counts_it_cannot_hold(device):
    got = device.call("""
from rocknet.schedule import Schedule
result = []
for _c in ([2, -1], [70000]):
    try:
        Schedule(_c)
        result.append(None)
    except ValueError as _e:
        result.append(str(_e))
""")
    assert all(m is not None and "rocknet plan" in m for m in got), got


def test_schedule_heap_does_not_grow_with_the_samples(mpy):
    """A hundred times the samples per owner, the same heap (give or take a 16-byte block of the
    collector; the enumerated order took 3-7 bytes a sample: hundreds of KB more here)."""
    mpy.exec("from rocknet.schedule import Schedule\n_s = Schedule([1], [1], [1])\n_s = None")
    held = []
    for per in (28, 2800):
        before = mpy.mem_alloc()
        mpy.exec(f"_s = Schedule([{per}] * 20, [0] * 20, [{per + 57}] * 20, 20, 8, 4)")
        held.append(mpy.mem_alloc() - before)
        mpy.exec("_s = None")
    assert held[0] > 0 and abs(held[1] - held[0]) <= 32, held

