"""`schedule.Schedule`'s constructor and plan section (`to_dict`): the per-owner counts of each
phase and the length of one epoch's training part. Here so that its code leaves a board's
heap with the rest of the set-up (`rocknet.start`); `Schedule(...)` imports it.
"""

from array import array

from ._compat import const
from .schedule import _Order

_MOST = const(65535)  # samples an owner may hold in a phase (array("H"))


def init(self, train, eval, predict, epochs, batch, gap):
    """`schedule.Schedule.__init__` (see `schedule.Schedule`)."""
    self.train = order(train)
    self.eval = order(eval or [])
    self.predict = order(predict or [])
    self.epochs = epochs
    self.batch = max(1, batch)
    self.gap = max(0, gap)
    # one epoch's training part: every batch (the last maybe short) then gap idle slots
    t = len(self.train)
    self._span = t + (t + self.batch - 1) // self.batch * self.gap
    self.period = self._span + len(self.eval)
    self.length = epochs * self.period + len(self.predict)


def order(counts):
    """The `_Order` of a phase holding ``counts[o]`` samples on owner o: round-robin over
    owners, each owner's samples in order."""
    n = 0  # owners up to the last one holding samples
    for o, x in enumerate(counts):
        if not 0 <= x <= _MOST:
            raise ValueError("a schedule's sample count must be 0..%d, not %r: plan again "
                             "with `rocknet plan`" % (_MOST, x))
        if x:
            n = o + 1
    c = array("H", counts[:n])
    steps = array("H")
    k = 0
    while True:
        up = [x for x in c if x > k]
        if not up:
            break
        k = min(up)
        steps.append(k)
        steps.append(len(up))
    return _Order(c, steps, sum(c))


def to_dict(self):
    """`schedule.Schedule.to_dict`."""
    return {"train": list(self.train.counts), "eval": list(self.eval.counts),
            "predict": list(self.predict.counts), "epochs": self.epochs, "batch": self.batch,
            "gap": self.gap}
