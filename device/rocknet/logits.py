"""Partial-logit rows on the air: the one codec of a node's share of the logits.

A row is C floats (``head.partial_logits``), sent as C little-endian float32 (``wire
"float32"``) or as C int16 codes of a fixed step ``scale`` (``wire "int16"``, half the bytes):
code = floor(v / scale + 0.5), clipped to +-32767, value = code * scale; the one code left,
-32768 (`NONFINITE`), fills the row of a node whose logits are NaN or infinite, so the leader
finds and removes it on either wire (a float32 row carries the NaN itself). The node
(`node.Node`), the in-memory sum (`head_sum`) and the host's numpy twin
(``rocknet_host.reference_head``) all encode through `codes`, so the fleet and the twin round
alike; a clipped row is counted by the caller (a non-zero count says the plan's
``logit_scale`` is too fine). A node decodes the rows it sums itself (`node.Node.sum_logits`);
`head_sum.unpack` decodes one row for the in-memory sum (set-up and host code: a board does
not load it).
"""

import struct

from . import xp
from ._compat import const
from .xp import np

WIRES = ("float32", "int16")
NONFINITE = const(-32768)  # every code of an int16 row of non-finite logits


def finite(a):
    """No NaN or infinity in the array ``a``."""
    return bool(np.all(np.isfinite(a)))


def codes(row, scale):
    """(codes, clipped): the int16 codes of ``row`` (an array of any shape) as floats,
    floor(v / scale + 0.5) clipped to +-32767, and whether any was clipped."""
    q = row * (1.0 / scale)
    q += 0.5
    q = np.floor(q)
    if np.max(q) > 32767 or np.min(q) < -32767:
        return np.clip(q, -32767, 32767), True
    return q, False


def pack(row, wire="float32", scale=1.0 / 256):
    """(bytes, clipped) of one row (array or list of C floats). Float32 rows carry whatever
    the floats are; an int16 row of NaN or infinity is all `NONFINITE` codes. Either way a
    node's non-finite row reaches the leader, which removes the node."""
    if isinstance(row, (list, tuple)):
        row = np.array(row, dtype=xp.float_)
    if wire == "float32":
        return struct.pack("<%df" % len(row), *[float(v) for v in row]), False
    if not finite(row):
        return struct.pack("<%dh" % len(row), *([NONFINITE] * len(row))), False
    q, clipped = codes(row, scale)
    return bytes(np.array(q, dtype=xp.int16).tobytes()), clipped
