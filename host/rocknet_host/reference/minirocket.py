"""Host reference of every device computation (numpy; the transforms compiled by numba).

Integer parts (quantization, int16 convolution, PPV counts) are bit-exact twins of
``device/rocknet/minirocket.py``; ``float_features`` reproduces aeon's MiniRocket transform
exactly when given aeon's fitted parameters. Head computations are added by the head module.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from numba import njit  # type: ignore[import-untyped]

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


@njit(cache=True, nogil=True, inline="always")
def _count_above(W: np.ndarray, biases: np.ndarray, f: int, nb: int, out: np.ndarray,
                 acc: type) -> None:
    """out[f + m] = #{t: W[t] > biases[f + m]} for m < nb. Four biases per pass over W; the
    counters are ``acc`` (uint16 for int16 W: 16 lanes to a vector) and wrapped to it every
    step, which lets LLVM keep them that narrow (the window is at most 32767 long)."""
    m = 0
    while m + 4 <= nb:
        b0, b1, b2, b3 = biases[f + m], biases[f + m + 1], biases[f + m + 2], biases[f + m + 3]
        c0 = c1 = c2 = c3 = acc(0)
        for t in range(len(W)):
            x = W[t]
            c0 = acc(c0 + (x > b0))
            c1 = acc(c1 + (x > b1))
            c2 = acc(c2 + (x > b2))
            c3 = acc(c3 + (x > b3))
        out[f + m], out[f + m + 1], out[f + m + 2], out[f + m + 3] = c0, c1, c2, c3
        m += 4
    while m < nb:
        b0 = biases[f + m]
        c0 = acc(0)
        for t in range(len(W)):
            c0 = acc(c0 + (W[t] > b0))
        out[f + m] = c0
        m += 1


@njit(cache=True, nogil=True)
def _slice_counts(Q: np.ndarray, dilations: np.ndarray, per_dil: np.ndarray,
                  kernels: np.ndarray, slots: np.ndarray, centre: np.ndarray,
                  biases: np.ndarray) -> np.ndarray:
    """The slice's integer arithmetic, one series at a time, in int16 like the device
    (numba, one thread; slices rather than offset indices so the loops vectorise)."""
    n, L = Q.shape
    out = np.zeros((n, len(biases)), dtype=np.uint16)
    pad = CENTRE * dilations.max()  # (the device pads for the dilations it holds)
    P = np.zeros(L + 2 * pad, dtype=np.int16)
    s9 = np.zeros(L, dtype=np.int16)
    C = np.zeros(L, dtype=np.int16)
    for i in range(n):
        P[pad:pad + L] = Q[i]
        f = 0
        combo = 0
        for di in range(len(dilations)):
            if slots[di, 0] == slots[di, 1]:
                continue
            d = dilations[di]
            base = pad - CENTRE * d
            nb = per_dil[di]
            s9[:] = P[base:base + L]
            for j in range(1, 9):
                pj = P[base + j * d:base + j * d + L]
                for t in range(L):
                    s9[t] += pj[t]
            for k in range(slots[di, 0], slots[di, 1]):
                pa = P[base + kernels[k, 0] * d:base + kernels[k, 0] * d + L]
                pb = P[base + kernels[k, 1] * d:base + kernels[k, 1] * d + L]
                pc = P[base + kernels[k, 2] * d:base + kernels[k, 2] * d + L]
                for t in range(L):
                    C[t] = 3 * (pa[t] + pb[t] + pc[t]) - s9[t]
                W = C[CENTRE * d:L - CENTRE * d] if centre[combo] else C
                _count_above(W, biases, f, nb, out[i], np.uint16)
                f += nb
                combo += 1
    return out


def slice_counts(Q: np.ndarray, features: dict) -> np.ndarray:
    """Twin of ``Slice.transform`` for a batch: (n, F_i) uint16 PPV counts (the same integer
    arithmetic as the device, C = 3 * (sum of +2 taps) - (sum of all 9), compiled by numba)."""
    Q = np.atleast_2d(np.asarray(Q, dtype=np.int8))
    L = int(features["length"])
    if Q.shape[1] != L:
        raise ValueError(f"series have length {Q.shape[1]}, the plan expects {L}")
    biases = np.asarray(features["biases"], dtype=np.int16)  # as the device holds them
    if len(biases) == 0 or len(Q) == 0:
        return np.zeros((len(Q), len(biases)), dtype=np.uint16)
    return _slice_counts(np.ascontiguousarray(Q),
                         np.asarray(features["dilations"], dtype=np.int64),
                         np.asarray(features["biases_per_dilation"], dtype=np.int64),
                         np.asarray(features["kernels"], dtype=np.int64).reshape(-1, 3),
                         slice_slots(features), np.asarray(features["centre"], dtype=np.uint8),
                         biases)


def slice_slots(features: dict) -> np.ndarray:
    """(dilations, 2) int64: per dilation the first and end index into the section's
    ``kernels`` of the kernels the node computes there (twin of ``minirocket_init.slots``:
    ``kernel_range`` holds global kernel indices; absent, every kernel at every dilation)."""
    nd, nk = len(features["dilations"]), len(features["kernels"])
    kr = features.get("kernel_range")
    if kr is None:
        return np.array([[0, nk]] * nd, dtype=np.int64).reshape(nd, 2)
    held = sorted({k for a, b in kr for k in range(int(a), int(b))})
    if len(held) != nk:
        raise ValueError(f"kernel ranges name {len(held)} kernels but the section lists {nk}")
    return np.array([[held.index(a), held.index(a) + b - a] if a < b else [0, 0]
                     for a, b in ((int(r[0]), int(r[1])) for r in kr)],
                    dtype=np.int64).reshape(nd, 2)


def slice_denominators(features: dict) -> np.ndarray:
    """Positions counted per feature (twin of ``minirocket_init.denominators``)."""
    L = int(features["length"])
    slots = slice_slots(features)
    den = []
    combo = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(features["biases_per_dilation"][di])
        for _ in range(slots[di, 0], slots[di, 1]):
            n = L - 8 * int(d) if features["centre"][combo] else L
            den += [n] * nb
            combo += 1
    return np.array(den, dtype=np.uint16)


@njit(cache=True, nogil=True)
def _float_features(A: np.ndarray, G: np.ndarray, dilations: np.ndarray, per_dil: np.ndarray,
                    biases: np.ndarray, kernels: np.ndarray, alternating: bool) -> np.ndarray:
    """aeon's arithmetic, scalar by scalar in the same order (float32, no fastmath)."""
    n, L = A.shape
    nk = kernels.shape[0]
    feats = np.zeros((n, nk * per_dil.sum()), dtype=np.float32)
    counts = np.zeros(feats.shape[1], dtype=np.uint32)
    c_alpha = np.zeros(L, dtype=np.float32)
    c_gamma = np.zeros((9, L), dtype=np.float32)
    C = np.zeros(L, dtype=np.float32)
    for i in range(n):
        f = 0
        for j in range(len(dilations)):
            d = dilations[j]
            pad = (8 * d) // 2
            nf = per_dil[j]
            c_alpha[:] = A[i]
            c_gamma[:] = 0
            c_gamma[4] = G[i]
            start, end = d, L - pad
            for g in range(4):  # C_alpha[-end:] += A[:end]; C_gamma[g, -end:] = G[:end]
                ca, a0 = c_alpha[L - end:], A[i, :end]
                for t in range(end):
                    ca[t] = ca[t] + a0[t]
                c_gamma[g, L - end:] = G[i, :end]
                end += d
            for g in range(5, 9):  # C_alpha[:-start] += A[start:]; C_gamma[g, :-start] = ...
                ca, a0 = c_alpha[:L - start], A[i, start:]
                for t in range(L - start):
                    ca[t] = ca[t] + a0[t]
                c_gamma[g, :L - start] = G[i, start:]
                start += d
            for k in range(nk):
                ga, gb, gc = c_gamma[kernels[k, 0]], c_gamma[kernels[k, 1]], c_gamma[kernels[k, 2]]
                for t in range(L):
                    C[t] = c_alpha[t] + ga[t] + gb[t] + gc[t]
                W = C[pad:L - pad] if alternating and (j + k) % 2 == 1 else C
                _count_above(W, biases, f, nf, counts, np.uint32)
                for m in range(f, f + nf):
                    feats[i, m] = counts[m] / len(W)
                f += nf
    return feats


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
    X = np.ascontiguousarray(X, dtype=np.float32)
    return _float_features(-X, 3 * X, np.asarray(dilations, dtype=np.int64),
                           np.asarray(n_features_per_dilation, dtype=np.int64),
                           np.asarray(biases, dtype=np.float32),
                           np.asarray(kernels, dtype=np.int64).reshape(-1, 3), bool(alternating))
