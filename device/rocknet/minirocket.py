"""One node's slice of a quantized MiniRocket transform.

int8 series in, PPV counts out. Each of MiniRocket's kernels has weight +2 at three taps and
-1 at the other six, so with S9 the sum of the nine dilated taps and G the sum of the three
+2 taps, the convolution is C = 3*G - S9. Everything stays in int16 (|C| <= 12*127 = 1524):
ulab has no int32 and wraps silently, so the host plan guarantees the ranges. A feature is
the number of positions where C > bias (integer biases make that exact); PPV = count / n,
with n the length counted (the whole series, or its unpadded centre for "alternating
padding" combinations). Counting compares a chunk of bias rows against C at once (uint8
results) and sums over at most 255 positions per call, so a uint8 sum can never wrap.

All buffers come from the plan at construction (`minirocket_init`: set-up code); per series,
the ulab calls are O(9 * dilations held + combinations * (4 + bias chunks * column blocks)),
never O(length * features).
"""

from . import xp
from ._compat import const
from .xp import np

_TAPS = const(9)
_CENTRE = const(4)
# Keep each (bias rows x positions) uint8 comparison temporary near this many bytes.
_CHUNK_ELEMENTS = const(4096)
_BLOCK = const(255)  # positions summed per call: the uint8 sum of 0/1 values cannot wrap
MAX_LENGTH = const(32767)  # int16 counts (the host planner checks series against it)


class Slice:
    """A node's feature slice, built from the ``features`` section of its plan.

    ``features`` keys: ``length`` (L), ``dilations`` (list of int), ``kernels`` (this node's
    kernels as lists of the three +2 tap indices 0..8, in global kernel order),
    ``kernel_range`` (per dilation [k0, k1]: the global kernel indices this node computes
    there, [0, 0] none; absent: every kernel at every dilation), ``biases_per_dilation`` (int
    per dilation), ``biases`` (flat ints: dilation, then kernel, then bias), ``centre`` (flat
    0/1 per (dilation, kernel) held: 1 = count only the unpadded centre).
    """

    def __init__(self, features):
        from .minirocket_init import init  # set-up code: dropped once the runner is built

        init(self, features)

    def transform(self, series, out=None):
        """PPV counts (uint16, length ``n_features``) of one int8 series of length L.

        ``series`` may be an int8 array, bytes or bytearray. ``out`` reuses a counts buffer.
        """
        if isinstance(series, (bytes, bytearray, memoryview)):
            series = np.frombuffer(series, dtype=xp.int8)
        n = len(series)
        if n != self.length:
            raise ValueError(
                "series has %d values but this plan was fitted for length %d; resample or "
                "re-plan for the new length" % (n, self.length)
            )
        if out is None:
            out = np.zeros(self.n_features, dtype=xp.uint16)
        L = self.length
        b = self._base
        x, x3, s9, c = self._x, self._x3, self._s9, self._c
        x[b:b + L] = series
        x3[b:b + L] = series
        x3 *= 3
        bias = self._bias
        kernels, sl = self.kernels, self._slots
        f = 0
        combo = 0
        for di, d in enumerate(self.dilations):
            k0, k1 = sl[2 * di], sl[2 * di + 1]
            if k0 == k1:
                continue
            nb = self._per_dil[di]
            # S9 = sum of the nine dilated taps (tap j reads x[i + (j - 4) * d]).
            s9[:] = x[b - _CENTRE * d:b - _CENTRE * d + L]
            for j in range(1, _TAPS):
                o = b + (j - _CENTRE) * d
                s9 += x[o:o + L]
            for ki in range(k0, k1):
                k = kernels[ki]
                o = b + (k[0] - _CENTRE) * d
                c[:] = x3[o:o + L]
                o = b + (k[1] - _CENTRE) * d
                c += x3[o:o + L]
                o = b + (k[2] - _CENTRE) * d
                c += x3[o:o + L]
                c -= s9
                lo, hi = _window(L, d, self._centre[combo])
                n = hi - lo
                row = c[lo:hi].reshape((1, n))
                rows = max(1, _CHUNK_ELEMENTS // n)
                for f0 in range(f, f + nb, rows):
                    f1 = min(f + nb, f0 + rows)
                    col = bias[f0:f1].reshape((f1 - f0, 1))
                    out[f0:f1] = xp.count_rows(row[:, 0:_BLOCK] > col)
                    for a in range(_BLOCK, n, _BLOCK):
                        out[f0:f1] += xp.count_rows(row[:, a:a + _BLOCK] > col)
                f += nb
                combo += 1
        return out


def _window(L, d, centre):
    """Positions counted: the whole series, or its unpadded centre."""
    return (_CENTRE * d, L - _CENTRE * d) if centre else (0, L)
