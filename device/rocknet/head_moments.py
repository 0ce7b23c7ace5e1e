"""Momentum and Adam for `head.Head`, with their moments as 8-bit "dynamic tree" codes.

Imported only by a head whose plan asks for ``optimizer="momentum"`` or ``"adam"`` (plain
SGD keeps no optimizer state and never loads this module).

Momentum or Adam's first moment is kept as signed tree codes (1 byte per weight), Adam's
second moment as unsigned tree codes of sqrt(v) (1 byte). Codes are scaled per block of one
class row and one (dilation, kernel) combination (a combination's features sit in one node
whatever the split), so the arithmetic is the same element by element for any number of
nodes. ``moments="float"`` keeps them as floats instead.
"""

import math

from . import xp
from .xp import np

_TINY = 1e-30
_STEPS = (128, 64, 32, 16, 8, 4, 2, 1)


def tree_table(signed):
    """The 256 values of an 8-bit "dynamic tree" code, sorted ascending (code = index).

    Signed (RockNet's, for first moments): bit 7 is the sign; in bits 6..0, e leading zeros,
    then a 1, then 6-e mantissa bits: value = +-m / (2**(6-e) - 1) * 10**-e. Unsigned (for
    sqrt of second moments, never negative): the same on all 8 bits, one more mantissa bit.
    """
    vals = []
    nb = 7 if signed else 8
    for q in range(256):
        sign = -1.0 if signed and q & 128 else 1.0
        bits = q & 127 if signed else q
        e = 0
        while e < nb and not (bits >> (nb - 1 - e)) & 1:
            e += 1
        mb = nb - 1 - e
        if mb <= 0:
            vals.append(0.0)
            continue
        man = (bits & ((1 << mb) - 1)) / ((1 << mb) - 1 + 1e-7)
        vals.append(sign * man * 10.0 ** (-e))
    vals.sort()
    return vals


def _tables(signed):
    t = tree_table(signed)
    mids = [(t[i] + t[i + 1]) * 0.5 for i in range(255)]
    return np.array(t, dtype=xp.float_), np.array(mids, dtype=xp.float_)


TABLE_S, MIDS_S = _tables(True)
TABLE_U, MIDS_U = _tables(False)


def alloc(h):
    """The optimizer state of head ``h`` (its weights are C x F, in nk blocks: one a
    (dilation, kernel) combination)."""
    C, F, nk = h.n_classes, h.n_features, h._nk
    mdt = xp.uint8 if h.q_moments else xp.float_
    h._m = np.zeros((C, F), dtype=mdt)
    h._ms = np.zeros((C, nk), dtype=xp.float_)
    h._bm = np.zeros(C, dtype=xp.float_)
    if h.optimizer == "adam":
        h._v = np.zeros((C, F), dtype=mdt)
        h._vs = np.zeros((C, nk), dtype=xp.float_)
        h._bv = np.zeros(C, dtype=xp.float_)
    if h.q_moments:
        _clear_codes(h)
        h._code = np.zeros(F, dtype=xp.uint8)
        h._blk = np.zeros(nk, dtype=xp.float_)


def _clear_codes(h):
    # code of 0.0 in each table (rows start at zero)
    z_s = _code_of_zero(MIDS_S)
    z_u = _code_of_zero(MIDS_U)
    for r in range(h.n_classes):
        h._m[r] = z_s
        if h._v is not None:
            h._v[r] = z_u


def _code_of_zero(mids):
    c = 0
    while c < len(mids) and mids[c] < 0.0:
        c += 1
    return c


def step_lr(h, lr):
    """The step's learning rate with Adam's bias correction (unchanged for momentum)."""
    if h.optimizer != "adam":
        return lr
    t1 = h.t + 1
    return lr * math.sqrt(1.0 - h.b2 ** t1) / (1.0 - h.b1 ** t1)


def update_row(h, r, ghat, lr):
    """Row r of W from its mean gradient ``ghat`` (overwritten) through the moments."""
    m = _moment(h, h._m, h._ms, r, TABLE_S)
    if h.optimizer == "momentum":
        m *= h.mom
        m += ghat
        h._update_row(r, m, lr)
        _keep(h, h._m, h._ms, r, m, MIDS_S)
        return
    m *= h.b1
    m += ghat * (1.0 - h.b1)
    v = _moment(h, h._v, h._vs, r, TABLE_U)  # sqrt(v)
    v *= v
    v *= h.b2
    ghat *= ghat
    ghat *= 1.0 - h.b2
    v += ghat
    v = np.sqrt(v)
    upd = v + h.eps
    upd = m / upd
    h._update_row(r, upd, lr)
    _keep(h, h._m, h._ms, r, m, MIDS_S)
    _keep(h, h._v, h._vs, r, v, MIDS_U)


def update_bias(h, gb, lr):
    """The bias owner's step from the batch's mean logit gradient ``gb``."""
    if h.optimizer == "momentum":
        h._bm *= h.mom
        h._bm += gb
        h._b -= h._bm * lr
        return
    h._bm *= h.b1
    h._bm += gb * (1.0 - h.b1)
    h._bv *= h.b2
    h._bv += gb * gb * (1.0 - h.b2)
    h._b -= h._bm / (np.sqrt(h._bv) + h.eps) * lr


def _moment(h, store, scales, r, table):
    """Row r of a moment as floats (decoded from its 8-bit codes, or copied)."""
    if not h.q_moments:
        return store[r].copy()
    v = xp.take(table, store[r])
    _blocks(h, v, scales[r])
    return v


def _keep(h, store, scales, r, v, mids):
    """Store row r of a moment (``v`` is overwritten when encoding)."""
    if not h.q_moments:
        store[r] = v
        return
    blk = h._blk
    _absmax(h, v, blk)
    scales[r] = blk
    inv = 1.0 / (blk + _TINY)
    _blocks(h, v, inv)
    c = h._code
    c[:] = 0
    for s in _STEPS:  # binary search: code = number of midpoints below v (<= 255)
        th = xp.take(mids, c + (s - 1))
        c += np.array(v > th, dtype=xp.uint8) * s
    store[r] = c


def _absmax(h, v, out):
    for off, n, nb, b0 in h._segs:
        out[b0:b0 + n] = np.max(abs(v[off:off + n * nb].reshape((n, nb))), axis=1)


def _blocks(h, v, factors):
    """Multiply each ((dilation, kernel)) block of row ``v`` by its factor, in place."""
    for off, n, nb, b0 in h._segs:
        seg = v[off:off + n * nb].reshape((n, nb))
        seg *= factors[b0:b0 + n].reshape((n, 1))
