"""A `head.Head`'s whole state as bytes and back (the `Head.save_parts` / `Head.load` /
`Head.state_bytes` methods call these), imported only when a checkpoint is written or read
or a memory report asks.

Format: a JSON header line (plan fingerprint, counters, and each array's name, item size and
byte count), then the current sample's codes, then each array's bytes. Floats are converted
when a checkpoint comes from a runtime with other floats (float32 boards, float64 elsewhere).
"""

import json
import struct

from . import xp
from .xp import np

_NAMES = ("_W", "_b", "_mu", "_sc", "_s1", "_s2", "_m", "_ms", "_v", "_vs", "_bm", "_bv",
          "_U", "_G", "_store", "_labels", "_gsum")


def _arrays(h):
    return [(nm, getattr(h, nm)) for nm in _NAMES if getattr(h, nm) is not None]


def parts(h):
    """The state as a list of bytes-like parts (joined: `Head.save`): the JSON header line,
    then the arrays' own buffers (ulab's ``tobytes`` shares them: no copy), so a checkpoint
    is written a part at a time instead of being assembled in the heap."""
    arrays = _arrays(h)
    meta = {"fp": h.fingerprint, "node": h.node, "t": h.t, "k": h.k,
            "seen": h.seen, "saturated": h.saturated, "stats_n": h.stats_n,
            "n_stored": h.n_stored, "grams": h._grams, "lam": h.lam,
            "have_u": h._have_u,
            "arrays": [[nm, a.itemsize, len(a.tobytes())] for nm, a in arrays]}
    out = [json.dumps(meta).encode() + b"\n", h._u.tobytes()]
    for _, a in arrays:
        out.append(a.tobytes())
    return out


def load(h, body):
    nl = body.find(b"\n")
    try:
        meta = json.loads(body[:nl])
        fp = meta["fp"]
        specs = meta["arrays"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a head checkpoint (unreadable header)") from None
    if fp != h.fingerprint:
        raise ValueError("checkpoint was written for plan %s, this node runs plan %s: it "
                         "belongs to another plan or node" % (fp[:12], h.fingerprint[:12]))
    F, n = h.n_features, h.n_train
    # arrays a checkpoint may hold beyond this head's current ones, with their shapes
    optional = {"_s1": (F,), "_s2": (F,)} if h.scaling == "local" else {}
    if h.solver == "dual":
        optional.update({"_store": (n, F), "_labels": (n,), "_gsum": (n * (n + 1) // 2,)})
    mine = dict(_arrays(h))
    names = [sp[0] for sp in specs]
    for nm in mine:
        if nm not in names and nm not in optional:
            raise ValueError("checkpoint lacks %s: another head configuration" % nm)
    o = nl + 1
    staged = [("_u", (F,), np.frombuffer(body[o:o + F], dtype=xp.uint8))]
    o += F
    for nm, isz, nbytes in specs:
        if nm in mine:
            shape = mine[nm].shape
            dt = mine[nm].dtype
        elif nm in optional:
            shape = optional[nm]
            dt = xp.uint8 if nm in ("_store", "_labels") else xp.float_
        else:
            raise ValueError("checkpoint holds %s, which this head does not have: "
                             "another head configuration" % nm)
        raw = body[o:o + nbytes]
        if len(raw) != nbytes:
            raise ValueError("checkpoint is truncated")
        o += nbytes
        size = 1
        for d in shape:
            size *= d
        staged.append((nm, shape, _from_bytes(raw, isz, dt, size)))
    if o != len(body):
        raise ValueError("checkpoint has %d stray bytes" % (len(body) - o))
    # everything checked: now change state
    for nm in optional:
        if nm not in names:
            setattr(h, nm, None)
    for nm, shape, arr in staged:
        cur = getattr(h, nm, None)
        if cur is None:
            cur = np.zeros(shape, dtype=arr.dtype)
            setattr(h, nm, cur)
        cur[:] = arr.reshape(shape) if len(shape) == 2 else arr
    h.t, h.k, h.seen = meta["t"], meta["k"], meta["seen"]
    h.saturated, h.stats_n = meta["saturated"], meta["stats_n"]
    h.n_stored, h._grams, h.lam = meta["n_stored"], meta["grams"], meta["lam"]
    h._have_u = meta["have_u"]


def state_bytes(h, float_bytes):
    out = {}
    for nm in ("_u", "_x", "_code", "_blk", "_g", "_zbuf", "_den"):
        a = getattr(h, nm, None)
        if a is not None:
            out[nm] = _nbytes(a, float_bytes)
    for nm, a in _arrays(h):
        out[nm] = _nbytes(a, float_bytes)
    return out


def _nbytes(a, float_bytes):
    return a.size * (float_bytes if a.dtype == xp.float_ else a.itemsize)


def _from_bytes(raw, itemsize, dtype, size):
    """A 1-D array from checkpoint bytes, converting the float width when the checkpoint
    came from a runtime with other floats (float32 boards, float64 elsewhere)."""
    if dtype == xp.float_ and itemsize != np.zeros(1, dtype=xp.float_).itemsize:
        fmt = "<%d%s" % (len(raw) // itemsize, "f" if itemsize == 4 else "d")
        arr = np.array(struct.unpack(fmt, raw), dtype=xp.float_)
    else:
        arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != size:
        raise ValueError("checkpoint array of %d values where this head has %d: another plan"
                         % (arr.size, size))
    return arr
