"""`minirocket.Slice`'s constructor: the plan's ``features`` section checked, the buffers
allocated and the counted windows' lengths. Here so that its code leaves a board's heap with
the rest of the set-up (`rocknet.start`); `Slice(features)` imports it.
"""

from . import xp
from ._compat import const
from .minirocket import MAX_LENGTH, _window
from .xp import np

_TAPS = const(9)  # minirocket's (private consts are compiled away, not importable)
_CENTRE = const(4)


def init(self, features):
    """`minirocket.Slice.__init__` (see `minirocket.Slice`)."""
    L = int(features["length"])
    dilations = [int(d) for d in features["dilations"]]
    kernels = [tuple(int(t) for t in k) for k in features["kernels"]]
    per_dil = [int(n) for n in features["biases_per_dilation"]]
    biases = features["biases"]
    centre = features["centre"]
    sl = slots(features)
    _check_shape(L, dilations, kernels, per_dil, biases, centre, sl)

    self.length = L
    self.dilations = dilations
    self.kernels = kernels
    self._slots = sl
    self.n_features = len(biases)
    # only the dilations this node computes pad the input
    pad = _CENTRE * max(d for di, d in enumerate(dilations) if sl[2 * di] < sl[2 * di + 1])
    self._base = pad
    # Zero-padded input, and 3x the input: the padding zones are never written.
    self._x = np.zeros(L + 2 * pad, dtype=xp.int16)
    self._x3 = np.zeros(L + 2 * pad, dtype=xp.int16)
    self._s9 = np.zeros(L, dtype=xp.int16)
    self._c = np.zeros(L, dtype=xp.int16)

    # Per (dilation, kernel) only a padding flag is kept: bias chunks and counted windows
    # are re-derived per series, because a view object per chunk would cost the heap more
    # than the biases themselves (~150 bytes a combination).
    self._per_dil = per_dil
    self._centre = bytearray(centre)
    self._bias = np.array(biases, dtype=xp.int16)


def slots(features):
    """Per dilation, the first and end index into the section's ``kernels`` of the kernels
    this node computes there (a bytearray, 2 per dilation). ``kernel_range``: per dilation
    [k0, k1], global kernel indices ([0, 0]: none); ``kernels`` lists the kernels they name,
    in global order. Without ``kernel_range``: every kernel at every dilation."""
    nd = len(features["dilations"])
    nk = len(features["kernels"])
    if nk > 255:
        raise ValueError("plan lists %d kernels (at most 84); re-run `rocknet plan`" % nk)
    kr = features.get("kernel_range")
    if kr is None:
        return bytearray([0, nk] * nd)
    if len(kr) != nd or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in kr):
        raise ValueError("plan's kernel_range is not one [first, end] per dilation: a plan "
                         "from an older rocknet; re-run `rocknet plan`")
    held = []
    for r in kr:
        for k in range(int(r[0]), int(r[1])):
            if k not in held:
                held.append(k)
    held.sort()
    if len(held) != nk:
        raise ValueError("plan's kernel ranges name %d kernels but it lists %d; the plan file "
                         "is corrupt, re-run `rocknet plan`" % (len(held), nk))
    out = bytearray(2 * nd)
    for di, r in enumerate(kr):
        k0, k1 = int(r[0]), int(r[1])
        if k0 < k1:
            out[2 * di] = held.index(k0)
            out[2 * di + 1] = held.index(k0) + k1 - k0
    return out


def denominators(features):
    """Positions each feature of a plan's ``features`` section counts (uint16, slice order):
    the PPV's denominator, the same for every bias of a (dilation, kernel). Not kept by the
    slice (a board would hold 2 bytes a feature for it); the head takes it at set-up where
    counts do not fit a byte."""
    L = int(features["length"])
    per_dil = features["biases_per_dilation"]
    sl = slots(features)
    centre = features["centre"]
    out = np.zeros(len(features["biases"]), dtype=xp.uint16)
    f = 0
    combo = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(per_dil[di])
        for _ in range(sl[2 * di], sl[2 * di + 1]):
            lo, hi = _window(L, int(d), centre[combo])
            out[f:f + nb] = hi - lo
            f += nb
            combo += 1
    return out


def _check_shape(L, dilations, kernels, per_dil, biases, centre, sl):
    if not 9 <= L <= MAX_LENGTH:
        raise ValueError("plan length %d outside 9..%d; re-plan the dataset" % (L, MAX_LENGTH))
    if not dilations or len(per_dil) != len(dilations):
        raise ValueError("plan has %d dilations but %d bias counts; the plan file is corrupt, "
                         "re-run `rocknet plan`" % (len(dilations), len(per_dil)))
    for d in dilations:
        if d < 1 or 8 * d > L - 1:
            raise ValueError("dilation %d does not fit length %d; re-run `rocknet plan`" % (d, L))
    for k in kernels:
        if len(k) != 3 or min(k) < 0 or max(k) >= _TAPS:
            raise ValueError("kernel %r is not three tap indices in 0..8; re-run `rocknet plan`"
                             % (k,))
    combos = 0
    expect = 0
    for di in range(len(dilations)):
        n = sl[2 * di + 1] - sl[2 * di]
        combos += n
        expect += n * int(per_dil[di])
    if combos < 1:
        raise ValueError("this node has no kernels; re-run `rocknet plan` with fewer nodes")
    if len(biases) != expect:
        raise ValueError("plan lists %d biases, expected %d; the plan file is corrupt, re-run "
                         "`rocknet plan`" % (len(biases), expect))
    if len(centre) != combos:
        raise ValueError("plan padding flags do not match its kernels; re-run `rocknet plan`")
    for v in biases:
        if not -32768 <= v <= 32767:
            raise ValueError("bias %d outside int16; re-run `rocknet plan`" % v)
