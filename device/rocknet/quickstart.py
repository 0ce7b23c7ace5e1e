"""`rocknet.demo()`: learn and test a classifier on one board, no radio, no files.

A tiny built-in dataset (three shapes of series: a bump, a step, a wave, with noise), a small
MiniRocket slice whose biases are fitted here on the board from the first training series,
and the product's head (`rocknet.head.Head`, the one a fleet trains) as a fleet of one:
ridge regression solved in closed form (``solver="dual"``: one pass storing the samples' codes,
the Gram matrix, lambda by leave-one-out as RidgeClassifierCV), with its own feature
statistics (``scaling="local"``). It prints accuracy, time and memory.

(Named quickstart, not demo: a submodule called ``demo`` would replace the ``rocknet.demo``
function after the first call.)
"""

import gc
import math
import time

from . import head_dual, xp
from .head import Head
from .minirocket import Slice
from .xp import np

_LENGTH = 64
_CLASSES = ("bump", "step", "wave")
_PHI = (1 + math.sqrt(5)) / 2


def _series(label, rnd):
    """One int8 series of class ``label`` (values within +-110)."""
    L = _LENGTH
    out = bytearray(L)
    pos = rnd.randint(8, L - 24)
    width = rnd.randint(4, 9)
    periods = rnd.randint(2, 4)
    phase = rnd.random() * 6.283
    for i in range(L):
        if label == 0:
            v = 90 * max(0.0, 1.0 - abs(i - pos) / width)
        elif label == 1:
            v = 70 if i >= pos else -30
        else:
            v = 60 * math.sin(phase + 6.283 * periods * i / L)
        v += rnd.randint(-40, 40)
        out[i] = int(max(-110, min(110, v))) & 0xFF
    return out


def dataset(n_per_class, seed):
    """(list of int8 series as bytearrays, list of labels), classes interleaved."""
    rnd = _Rnd(seed)  # the same series on every port
    X, y = [], []
    for _ in range(n_per_class):
        for c in range(len(_CLASSES)):
            X.append(_series(c, rnd))
            y.append(c)
    return X, y


class _Rnd:
    """A 31-bit LCG: ports differ in what `random` offers, this is the same everywhere."""

    def __init__(self, seed):
        self.s = seed & 0x7FFFFFFF or 1

    def _next(self):
        self.s = (1103515245 * self.s + 12345) & 0x7FFFFFFF
        return self.s

    def randint(self, a, b):
        return a + self._next() % (b - a + 1)

    def random(self):
        return self._next() / 2147483648.0


def _conv(x, d, taps):
    """MiniRocket's convolution of an int8 series for dilation d and +2 taps (int16)."""
    L = _LENGTH
    pad = 4 * d
    xp16 = np.zeros(L + 2 * pad, dtype=xp.int16)
    xp16[pad:pad + L] = np.frombuffer(x, dtype=xp.int8)
    s9 = np.zeros(L, dtype=xp.int16)
    g = np.zeros(L, dtype=xp.int16)
    for j in range(9):
        s9 += xp16[j * d:j * d + L]
    for j in taps:
        g += xp16[j * d:j * d + L]
    return g * 3 - s9


def small_plan(X_fit, n_kernels=12, biases=3):
    """The ``features`` section of a plan, with biases fitted from the series ``X_fit``."""
    kernels = []
    for a in range(9):
        for b in range(a + 1, 9):
            for c in range(b + 1, 9):
                kernels.append([a, b, c])
    kernels = kernels[::len(kernels) // n_kernels][:n_kernels]
    dilations = []
    d = 1
    while 8 * d <= _LENGTH - 1:
        dilations.append(d)
        d *= 2
    out = []
    n = 0
    for d in dilations:
        for k in kernels:
            vals = []
            for x in X_fit:
                vals.extend(_conv(x, d, k))
            vals.sort()
            for _ in range(biases):
                n += 1
                q = (n * _PHI) % 1
                out.append(int(vals[min(len(vals) - 1, int(q * len(vals)))]))
    return {"length": _LENGTH, "dilations": dilations, "kernels": kernels,
            "biases_per_dilation": [biases] * len(dilations), "biases": out,
            "centre": [0] * (len(kernels) * len(dilations))}


def _ms():
    if hasattr(time, "ticks_ms"):
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def _alloc():
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0  # CPython has no such figure


def _float_bits():
    return 8 * np.zeros(1, dtype=xp.float_).itemsize


def _model_bytes(sl, head):
    """What the trained model keeps: the slice's arrays and the head's (weights, feature
    scaling, buffers), with this runtime's floats."""
    n = 0
    for a in (sl._x, sl._x3, sl._s9, sl._c):
        n += a.itemsize * a.size
    fb = _float_bits() // 8
    for v in head.state_bytes(fb).values():
        n += v
    return n + 2 * sl.n_features  # int16 biases


def _heap_note():
    import sys

    if sys.platform == "webassembly":  # garbage is collected only after the call returns
        return " - WebAssembly collects only between calls, so this counts garbage too"
    return ""


def run(n_train=20, n_test=10, seed=1, verbose=True):
    """Train and test on the built-in dataset; returns a dict of the results."""
    gc.collect()
    base = _alloc()
    t0 = _ms()
    Xtr, ytr = dataset(n_train, seed)
    Xte, yte = dataset(n_test, seed + 1)
    features = small_plan(Xtr[:len(_CLASSES)])
    sl = Slice(features)
    C = len(_CLASSES)
    head = Head({"node": 0, "nodes": 1, "classes": C, "features": features},
                head={"mode": "ridge", "solver": "dual", "scaling": "local",
                      "n_train": len(ytr), "total_features": sl.n_features})
    counts = np.zeros(sl.n_features, dtype=xp.uint16)
    for i in range(len(Xtr)):  # the one pass: the head keeps each sample's 8-bit codes
        sl.transform(Xtr[i], counts)
        head_dual.store(head, counts, ytr[i])
    # a fleet of one: its own Gram contribution is all of it
    head_dual.add_gram(head, 0, head_dual.gram(head))
    lam = head_dual.solve(head)
    head_dual.release_store(head)
    correct = 0
    for i in range(len(yte)):
        sl.transform(Xte[i], counts)
        z = list(head.partial_logits(counts))  # one node: its partial logits are the logits
        if z.index(max(z)) == yte[i]:
            correct += 1
    t1 = _ms()
    used = _alloc() - base
    gc.collect()
    res = {"accuracy": correct / len(yte), "test": len(yte), "train": len(ytr),
           "features": sl.n_features, "ms": t1 - t0, "peak_bytes": used,
           "held_bytes": _alloc() - base, "model_bytes": _model_bytes(sl, head),
           "float_bits": _float_bits(), "lambda": lam}
    if verbose:
        print("rocknet demo: %d features, %d train / %d test series of length %d, classes %s"
              % (sl.n_features, len(ytr), len(yte), _LENGTH, ", ".join(_CLASSES)))
        print("head: ridge in closed form (rocknet.head, one node), lambda %g by leave-one-out"
              % lam)
        print("accuracy %d/%d = %.1f %%, %d ms" % (correct, len(yte), 100 * res["accuracy"],
                                                   res["ms"]))
        print("memory: model %d bytes (slice + head, float%d); heap grew %d bytes "
              "during the run (gc.mem_alloc)%s" % (res["model_bytes"], res["float_bits"],
                                                   res["peak_bytes"], _heap_note()))
    return res
