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
    _check_shape(L, dilations, kernels, per_dil, biases, centre)

    self.length = L
    self.dilations = dilations
    self.kernels = kernels
    self.n_features = len(biases)
    pad = _CENTRE * max(dilations)
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


def denominators(features):
    """Positions each feature of a plan's ``features`` section counts (uint16, slice order):
    the PPV's denominator, the same for every bias of a (dilation, kernel). Not kept by the
    slice (a board would hold 2 bytes a feature for it); the head takes it at set-up where
    counts do not fit a byte."""
    L = int(features["length"])
    per_dil = features["biases_per_dilation"]
    nk = len(features["kernels"])
    centre = features["centre"]
    out = np.zeros(nk * sum(int(n) for n in per_dil), dtype=xp.uint16)
    f = 0
    combo = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(per_dil[di])
        for _ in range(nk):
            lo, hi = _window(L, int(d), centre[combo])
            out[f:f + nb] = hi - lo
            f += nb
            combo += 1
    return out


def _check_shape(L, dilations, kernels, per_dil, biases, centre):
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
    expect = len(kernels) * sum(per_dil)
    if len(biases) != expect:
        raise ValueError("plan lists %d biases, expected %d; the plan file is corrupt, re-run "
                         "`rocknet plan`" % (len(biases), expect))
    if len(centre) != len(kernels) * len(dilations):
        raise ValueError("plan padding flags do not match its kernels; re-run `rocknet plan`")
    for v in biases:
        if not -32768 <= v <= 32767:
            raise ValueError("bias %d outside int16; re-run `rocknet plan`" % v)
