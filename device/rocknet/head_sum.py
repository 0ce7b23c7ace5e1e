"""The summed logits of one sample from every node's partial-logit row, in memory: what the
radio delivers to every node, for training without a radio (`rocknet_host.train` runs N
heads in one runtime). A node on a board packs its row with `logits.pack` and sums the rows
its link decoded itself (`node.Node.sum_logits`); this module is not on a board.
"""

import struct

from . import logits, xp
from .logits import WIRES, finite
from .xp import np


def pack(head, row):
    """A head's partial-logit row as bytes (`logits.pack` with the head's wire and scale;
    clipped rows counted in ``head.clipped``); NaN or infinity raise ValueError (not sent)."""
    if not finite(row):
        raise ValueError("partial logits contain NaN or inf; not sent")
    data, clipped = logits.pack(row, head.wire, head.logit_scale)
    head.clipped += clipped
    return data


def unpack(data, n_classes, wire="float32", scale=1.0 / 256):
    """Bytes of one row -> C floats; a row of another size or with NaN (int16: `NONFINITE`
    codes) raises ValueError."""
    size = 4 if wire == "float32" else 2
    if len(data) != size * n_classes:
        raise ValueError("partial-logit row of %d bytes, expected %d (%d classes, %s): the "
                         "node runs another plan" % (len(data), size * n_classes, n_classes,
                                                     wire))
    if wire == "float32":
        row = np.array(struct.unpack("<%df" % n_classes, data), dtype=xp.float_)
        if not finite(row):
            raise ValueError("partial-logit row contains NaN or inf")
        return row
    q = np.frombuffer(data, dtype=xp.int16)
    if n_classes and q[0] == logits.NONFINITE:
        raise ValueError("partial-logit row of non-finite logits")
    return q * scale


class LogitSum:
    """The summed logits of one sample from every node's row, identical on every node
    whatever the order rows arrive in: rows are kept per node and summed in node order
    (int16 codes are summed as exact integers)."""

    def __init__(self, n_nodes, n_classes, wire="float32", logit_scale=1.0 / 256):
        if wire not in WIRES:
            raise ValueError("wire %r: choose one of %s" % (wire, ", ".join(WIRES)))
        self.n_nodes = n_nodes
        self.n_classes = n_classes
        self.wire = wire
        self.logit_scale = logit_scale
        self._rows = np.zeros((n_nodes, n_classes), dtype=xp.float_)
        self.received = 0

    def reset(self):
        self.received = 0

    def add(self, node, data):
        """Node ``node``'s row (bytes from `pack`); a duplicate or malformed row raises."""
        if not 0 <= node < self.n_nodes:
            raise ValueError("node %d outside 0..%d" % (node, self.n_nodes - 1))
        if self.received >> node & 1:
            raise ValueError("node %d's row already added for this sample" % node)
        if self.wire == "float32":
            self._rows[node] = unpack(data, self.n_classes, "float32")
        else:
            unpack(data, self.n_classes, "int16")  # size check
            self._rows[node] = np.frombuffer(data, dtype=xp.int16)
        self.received |= 1 << node

    @property
    def complete(self):
        return self.received == (1 << self.n_nodes) - 1

    def missing(self):
        return [i for i in range(self.n_nodes) if not self.received >> i & 1]

    def total(self):
        """z: the rows summed in node order (raises if any is missing)."""
        if not self.complete:
            raise ValueError("partial logits missing from nodes %s" % self.missing())
        z = self._rows[0].copy()
        for i in range(1, self.n_nodes):
            z += self._rows[i]
        if self.wire == "int16":
            z *= self.logit_scale
        return z
