"""`schedule.Schedule`'s constructor and plan section (`to_dict`): the sample orders and one
epoch's batch slots. Here so that its code leaves a board's heap with the rest of the set-up
(`rocknet.start`); `Schedule(...)` imports it.
"""

from array import array

from .schedule import _Order


def init(self, train, eval, predict, epochs, batch, gap):
    """`schedule.Schedule.__init__` (see `schedule.Schedule`)."""
    self.train = order(train)
    self.eval = order(eval or [])
    self.predict = order(predict or [])
    self.epochs = epochs
    self.batch = max(1, batch)
    self.gap = max(0, gap)
    # one epoch's training part: index into self.train, or -1 for an idle (gap) slot
    slots = array("i")
    T = len(self.train)
    for k in range(T):
        slots.append(k)
        if (k + 1) % self.batch == 0 or k == T - 1:
            for _ in range(self.gap):
                slots.append(-1)
    self._slots = slots
    self.period = len(slots) + len(self.eval)
    self.length = epochs * self.period + len(self.predict)


def order(counts):
    """The `_Order` of a phase holding ``counts[o]`` samples on owner o: round-robin over
    owners, each owner's samples in order."""
    owner = bytearray()
    index = array("H")
    most = max(counts) if counts else 0
    for k in range(most):
        for o in range(len(counts)):
            if k < counts[o]:
                owner.append(o)
                index.append(k)
    return _Order(owner, index)


def to_dict(self):
    """`schedule.Schedule.to_dict`."""
    return {"train": _counts(self.train), "eval": _counts(self.eval),
            "predict": _counts(self.predict), "epochs": self.epochs, "batch": self.batch,
            "gap": self.gap}


def _counts(order):
    out = []
    for o in order.owner:
        while len(out) <= o:
            out.append(0)
        out[o] += 1
    return out
