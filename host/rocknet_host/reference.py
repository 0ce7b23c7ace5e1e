"""Numpy reference of every device computation.

Integer parts (quantization, int16 convolution, PPV counts) are bit-exact twins of
``device/rocknet/minirocket.py``; ``float_features`` reproduces aeon's MiniRocket transform
exactly when given aeon's fitted parameters. Head computations are added by the head module.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

CENTRE = 4
# aeon's (and original MiniRocket's) kernel order: the +2 taps of each kernel, lexicographic.
AEON_KERNELS: list[tuple[int, int, int]] = [tuple(int(t) for t in c)  # type: ignore[misc]
                                            for c in combinations(range(9), 3)]
# RockNet firmware's kernel order (rocket_config.c): 9-bit masks, bit j set = +2 at tap j.
ROCKNET_MASKS = [
    448, 416, 352, 224, 400, 336, 208, 304, 176, 112, 392, 328, 200, 296, 168, 104, 280, 152, 88,
    56, 388, 324, 196, 292, 164, 100, 276, 148, 84, 52, 268, 140, 76, 44, 28, 386, 322, 194, 290,
    162, 98, 274, 146, 82, 50, 266, 138, 74, 42, 26, 262, 134, 70, 38, 22, 14, 385, 321, 193, 289,
    161, 97, 273, 145, 81, 49, 265, 137, 73, 41, 25, 261, 133, 69, 37, 21, 13, 259, 131, 67, 35,
    19, 11, 7,
]
ROCKNET_KERNELS: list[tuple[int, int, int]] = [
    tuple(j for j in range(9) if m >> j & 1) for m in ROCKNET_MASKS  # type: ignore[misc]
]
ROUNDING = ("nearest", "trunc")


def quantize(X: np.ndarray, offset: float, scale: float, rounding: str = "nearest") -> np.ndarray:
    """Float series -> int8: clip(round((x - offset) / scale * 127), -127, 127).

    ``rounding`` "nearest" rounds half to even (numpy's rint); "trunc" truncates toward zero
    as RockNet's code generator does. Refuses NaN/inf with a message naming the fix.
    """
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("series contain NaN or inf; clean or interpolate them before "
                         "quantizing (rocknet loads datasets with --missing interpolate)")
    if not scale > 0:
        raise ValueError(f"quantization scale must be > 0, got {scale}; re-run `rocknet plan`")
    v = (X - offset) / scale * 127.0
    v = np.rint(v) if rounding == "nearest" else np.trunc(v)
    return np.clip(v, -127, 127).astype(np.int8)


def _padded(Q: np.ndarray, pad: int) -> np.ndarray:
    Q = np.atleast_2d(np.asarray(Q))
    out = np.zeros((Q.shape[0], Q.shape[1] + 2 * pad), dtype=np.int32)
    out[:, pad:pad + Q.shape[1]] = Q
    return out


def conv(Q: np.ndarray, dilation: int, kernel: tuple[int, int, int]) -> np.ndarray:
    """int16-range convolution C = 3 * (sum of +2 taps) - (sum of all 9 taps), zero padding,
    'same' length. Q: (n, L) or (L,) int8. Returns int32 (n, L) (values fit int16)."""
    Q2 = np.atleast_2d(Q)
    L = Q2.shape[1]
    pad = CENTRE * dilation
    P = _padded(Q2, pad)
    taps = [P[:, j * dilation:j * dilation + L] for j in range(9)]
    s9 = sum(taps)
    g = taps[kernel[0]] + taps[kernel[1]] + taps[kernel[2]]
    return 3 * g - s9


def count_above(C: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """For each row of C (n, m) and each bias (k,), the number of entries > bias: (n, k).
    Sorted rows + one searchsorted over offset keys: O(n m log m), no (n, m, k) temporary."""
    n, m = C.shape
    span = int(max(np.abs(C).max(initial=0), np.abs(biases).max(initial=0))) * 2 + 2
    keys = np.sort(C.astype(np.int64), axis=1) + (np.arange(n, dtype=np.int64) * span)[:, None]
    q = biases.astype(np.int64)[None, :] + (np.arange(n, dtype=np.int64) * span)[:, None]
    at_or_below = np.searchsorted(keys.ravel(), q.ravel(), side="right").reshape(n, -1)
    return m - (at_or_below - (np.arange(n) * m)[:, None])


def slice_counts(Q: np.ndarray, features: dict) -> np.ndarray:
    """Twin of ``Slice.transform`` for a batch: (n, F_i) uint16 PPV counts."""
    Q = np.atleast_2d(np.asarray(Q, dtype=np.int8))
    L = int(features["length"])
    if Q.shape[1] != L:
        raise ValueError(f"series have length {Q.shape[1]}, the plan expects {L}")
    biases = np.asarray(features["biases"], dtype=np.int64)
    out = np.zeros((Q.shape[0], len(biases)), dtype=np.uint16)
    f = 0
    combo = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(features["biases_per_dilation"][di])
        for k in features["kernels"]:
            C = conv(Q, int(d), tuple(k))
            if features["centre"][combo]:
                C = C[:, CENTRE * d:L - CENTRE * d]
            out[:, f:f + nb] = count_above(C, biases[f:f + nb])
            f += nb
            combo += 1
    return out


def slice_denominators(features: dict) -> np.ndarray:
    """Positions counted per feature (twin of ``Slice.denominator``)."""
    L = int(features["length"])
    den = []
    combo = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(features["biases_per_dilation"][di])
        for _ in features["kernels"]:
            n = L - 8 * int(d) if features["centre"][combo] else L
            den += [n] * nb
            combo += 1
    return np.array(den, dtype=np.uint16)


def float_features(
    X: np.ndarray,
    dilations: np.ndarray,
    n_features_per_dilation: np.ndarray,
    biases: np.ndarray,
    kernels: list[tuple[int, int, int]] = AEON_KERNELS,
    alternating: bool = True,
) -> np.ndarray:
    """Float MiniRocket (no quantization), aeon's order and arithmetic (float32): equals
    aeon's ``MiniRocket.transform`` given aeon's fitted (dilations, counts, biases)."""
    X = np.asarray(X, dtype=np.float32)
    n, L = X.shape
    A = -X
    G = 3 * X
    feats = np.zeros((n, len(kernels) * int(np.sum(n_features_per_dilation))), dtype=np.float32)
    f = 0
    for j, d in enumerate(dilations):
        d = int(d)
        pad = (8 * d) // 2
        nf = int(n_features_per_dilation[j])
        # Same accumulation order as aeon: C_alpha gets the shifted A's tap by tap.
        c_alpha = A.copy()
        c_gamma = np.zeros((9, n, L), dtype=np.float32)
        c_gamma[4] = G
        start, end = d, L - pad
        for g in range(4):
            c_alpha[:, -end:] = c_alpha[:, -end:] + A[:, :end]
            c_gamma[g, :, -end:] = G[:, :end]
            end += d
        for g in range(5, 9):
            c_alpha[:, :-start] = c_alpha[:, :-start] + A[:, start:]
            c_gamma[g, :, :-start] = G[:, start:]
            start += d
        for k, (a, b, c) in enumerate(kernels):
            C = c_alpha + c_gamma[a] + c_gamma[b] + c_gamma[c]
            if alternating and (j + k) % 2 == 1:
                C = C[:, pad:-pad]
            bs = np.asarray(biases[f:f + nf], dtype=np.float32)
            feats[:, f:f + nf] = (C[:, :, None] > bs[None, None, :]).mean(axis=1)
            f += nf
    return feats
