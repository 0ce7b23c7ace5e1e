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
        n = len(self._slots)
        if p < n:
            k = self._slots[p]
            if k < 0:
                return None
            o, k = self.train[k]
            return TRAIN, o, k, e
        o, k = self.eval[p - n]
        return EVAL, o, k, e

    def batch_end(self, s):
        """True when sample s closes a training batch."""
        if s < 0 or s >= self.epochs * self.period:
            return False
        p = s % self.period
        if p >= len(self._slots):
            return False
        k = self._slots[p]
        return k >= 0 and ((k + 1) % self.batch == 0 or k == len(self.train) - 1)

    def last_batch_end(self, s):
        """The last sample before s that closes a batch (-1 if none)."""
        q = s - 1
        while q >= 0 and q >= s - self.period - 1:
            if self.batch_end(q):
                return q
            q -= 1
        return -1


class _Order:
    """A phase's samples in round-robin order over owners as (owner, local index) pairs, kept
    in two flat arrays: 3 bytes a sample where a list of tuples costs ~30 (FaceAll's 1,690
    test series: 5 KB instead of 50 KB of a board's heap)."""

    def __init__(self, owner, index):
        self.owner = owner  # bytearray
        self.index = index  # array("H")

    def __len__(self):
        return len(self.owner)

    def __getitem__(self, j):
        return self.owner[j], self.index[j]
