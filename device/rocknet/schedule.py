"""The fixed sample order every node computes from the plan (`Schedule`): which sample
travels in which round, in which phase (train, eval, predict), owned by which node, and where
the training batches end.
"""

from ._compat import const

TRAIN = const(0)
EVAL = const(1)
PREDICT = const(2)
PHASES = ("train", "eval", "predict")


class Schedule:
    """The fixed sample order every node computes from the plan.

    ``train``, ``eval``, ``predict``: samples held per owner (list index = node id). Each phase
    goes round-robin over owners, each owner's samples in order. Sample s is, for s < epochs *
    period, training then evaluation of epoch s // period; then one prediction pass; then
    nothing (idle rounds). Batches of ``batch`` training samples, plus the remainder at the end
    of each epoch. ``gap`` idle samples follow every batch: time for the batch's decisions to
    reach every node, so the next samples are scored with the stepped weights everywhere
    (the node then refuses to score a sample before it applied the last batch end; see
    `Node`), which makes the fleet train exactly what one central model would.

    Everything is computed from the counts (O(nodes) memory, no per-sample arrays).
    """

    def __init__(self, train, eval=None, predict=None, epochs=1, batch=128, gap=0):
        from .schedule_init import init  # set-up code: dropped once the runner is built

        init(self, train, eval, predict, epochs, batch, gap)

    def to_dict(self):
        """The schedule as a plan section (JSON): every node rebuilds the same order."""
        from .schedule_init import to_dict

        return to_dict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(d["train"], d.get("eval"), d.get("predict"), d.get("epochs", 1),
                   d.get("batch", 128), d.get("gap", 0))

    def at(self, s):
        """(phase, owner, local index, epoch) of sample s, or None (idle)."""
        if s < 0 or s >= self.length:
            return None
        if s >= self.epochs * self.period:
            o, k = self.predict[s - self.epochs * self.period]
            return PREDICT, o, k, self.epochs
        e, p = divmod(s, self.period)
        n = self._span
        if p < n:
            k = self._slot(p)
            if k < 0:
                return None
            o, k = self.train[k]
            return TRAIN, o, k, e
        o, k = self.eval[p - n]
        return EVAL, o, k, e

    def _slot(self, p):
        """Slot p (< ``_span``) of an epoch's training part: the index into ``train``, or -1
        for an idle slot (batches of ``batch``, the last maybe short, each then ``gap``)."""
        b = self.batch
        i, r = divmod(p, b + self.gap)
        return i * b + r if r < min(b, len(self.train) - i * b) else -1

    def batch_end(self, s):
        """True when sample s closes a training batch."""
        if s < 0 or s >= self.epochs * self.period:
            return False
        p = s % self.period
        if p >= self._span:
            return False
        k = self._slot(p)
        return k >= 0 and ((k + 1) % self.batch == 0 or k == len(self.train) - 1)

    def last_batch_end(self, s):
        """The last sample before s that closes a batch, at most period + 1 back (-1 if
        none)."""
        q = min(s - 1, self.epochs * self.period - 1)  # no batch ends after the training
        t, b, g = len(self.train), self.batch, self.gap
        if q < 0 or not t:
            return -1
        e, p = divmod(q, self.period)
        i, r = divmod(min(p, self._span - 1), b + g)
        n = min(b, t - i * b)  # samples of batch i
        if r >= n - 1:  # batch i ends at or before p
            q = e * self.period + i * (b + g) + n - 1
        elif i:  # the batch before, a full one
            q = e * self.period + i * (b + g) - g - 1
        else:  # the last batch of the epoch before
            q = e * self.period - g - 1 - (self.period - self._span)
        return q if q >= 0 and q >= s - self.period - 1 else -1


class _Order:
    """A phase's samples in round-robin order over owners as (owner, local index) pairs,
    computed from the counts: ``counts[o]`` samples on owner o (array("H"), no trailing
    zeros), ``steps`` the distinct counts ascending, each followed by how many owners hold
    at least that many (array("H")), ``n`` the samples in all. Round k of the round-robin
    visits the owners holding more than k samples."""

    def __init__(self, counts, steps, n):
        self.counts = counts
        self.steps = steps
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, j):
        c, st = self.counts, self.steps
        k0 = 0  # rounds before this step
        for i in range(0, len(st), 2):
            w = st[i + 1]  # owners in each round of this step
            size = (st[i] - k0) * w
            if j < size:
                k = k0 + j // w
                r = j % w
                for o in range(len(c)):
                    if c[o] > k:
                        if not r:
                            return o, k
                        r -= 1
            j -= size
            k0 = st[i]
        raise IndexError("sample index out of range")
