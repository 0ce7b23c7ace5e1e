"""Transport-free training: N device heads in one runtime (CPython or MicroPython), their
partial logits summed in memory: the fast central path of `bench accuracy` and the estimator
(tests/test_node_head.py shows boards running the real loop apply exactly this).

Per training sample, inside the runtime, exactly what a node does per round: every node
packs its partial-logit row, a `LogitSum` adds the rows (node order, so every node would
get the same z), every node applies z and the label, and at each batch boundary every node
steps. The radio layer replaces the in-memory sum; the head calls stay the same.

Features come in as each node's PPV counts (uint16), computed once per series by the
bit-exact numpy twin of the slice (`reference.slice_counts`, tested equal to the device
`Slice`), so a run costs what the heads cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..planning.head import logit_bytes
from ..runtimes import open_runtime

# Samples per device call: MicroPython (WebAssembly) collects garbage only between calls.
CHUNK = 32

SETUP = """
from rocknet.head import Head
from rocknet.xp import np
_H = [Head(_p) for _p in _plans]
del _plans
_N = len(_H)
from rocknet.head_sum import LogitSum, pack as _pack
_sum = LogitSum(_H[0].nodes, _H[0].n_classes, _H[0].wire, _H[0].logit_scale)
_CTR = [None] * _N
"""

TRAIN = """
for _j in range(_j0, _j1):
    _s = _order[_j]
    _sum.reset()
    for _i in range(_N):
        _sum.add(_i, _pack(_H[_i], _H[_i].partial_logits(_CTR[_i][_s])))
    _z = _sum.total()
    for _h in _H:
        _h.apply(_z, _Y[_s])
    if (_j + 1) % _B == 0 or _j + 1 == _n:
        for _h in _H:
            _h.step()
"""

PREDICT = """
_pred = []
for _j in range(len(_CTE[0])):
    _sum.reset()
    for _i in range(_N):
        _sum.add(_i, _pack(_H[_i], _H[_i].partial_logits(_CTE[_i][_j])))
    _pred.append(int(np.argmax(_sum.total())))
del _CTE
"""

OBSERVE = """
from rocknet.head_init import observe
for _j in range(_j0, _j1):
    for _i in range(_N):
        observe(_H[_i], _CTR[_i][_j])
"""

FINISH_STATS = """
from rocknet.head_init import finish_stats
for _h in _H:
    finish_stats(_h)
"""

STORE = """
from rocknet import head_dual
for _j in range(_j0, _j1):
    for _i in range(_N):
        head_dual.store(_H[_i], _CTR[_i][_j], _Y[_j])
"""

SOLVE = """
from rocknet import head_dual
_grams = [head_dual.gram(_h) for _h in _H]
for _h in _H:
    for _i in range(_N):
        head_dual.add_gram(_h, _i, _grams[_i])
del _grams
_lams = [head_dual.solve(_h) for _h in _H]
for _h in _H:
    head_dual.release_store(_h)
"""


@dataclass
class Result:
    accuracy: float  # test accuracy at the end
    curve: list[tuple[int, float]]  # (passes so far, test accuracy) where evaluated
    passes: int  # passes over the training set (a statistics pass included)
    samples_broadcast: int  # series broadcasts: passes x n_train
    passes_to_final: int  # passes until the test accuracy first reached the final one
    bytes_per_node: int  # head bytes each node sends: logit rows, or its Gram contribution
    lam: float | None  # lambda of the dual solve
    seconds: float
    weights: list[np.ndarray] = field(repr=False, default_factory=list)  # per node (C, F_i)
    bias: np.ndarray | None = field(repr=False, default=None)
    saturated: int = 0
    states: list[bytes] = field(repr=False, default_factory=list)  # per node `Head.save()`


class InMemoryFleet:
    """N heads inside one runtime. ``node_plans``: one node plan per node, head section
    included (`head_plan.node_plans`)."""

    def __init__(self, node_plans: list[dict[str, Any]], runtime: str | Any = "cpython"):
        self.rt = open_runtime(runtime) if isinstance(runtime, str) else runtime
        self._own = isinstance(runtime, str)
        self.plans = node_plans
        self.n = len(node_plans)
        self.head = node_plans[0]["head"]
        self.rt.set(_plans=node_plans)
        self.rt.exec(SETUP)

    def close(self) -> None:
        if self._own:
            self.rt.close()
        else:  # a shared interpreter: free the fleet's globals
            self.rt.exec("_H = _CTR = _sum = None")

    def __enter__(self) -> InMemoryFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_train(self, counts: list[np.ndarray], labels: np.ndarray) -> None:
        for i, c in enumerate(counts):
            self.rt.set(_c=np.ascontiguousarray(c, dtype=np.uint16))
            self.rt.exec(f"_CTR[{i}] = _c\ndel _c")
        self.rt.set(_Y=[int(v) for v in labels], _n=len(labels),
                    _B=int(self.head.get("batch", 8)))

    def _chunks(self, code: str, n: int, chunk: int = CHUNK) -> None:
        for j0 in range(0, n, chunk):
            self.rt.set(_j0=j0, _j1=min(n, j0 + chunk))
            self.rt.exec(code)

    def statistics_pass(self, n: int) -> None:
        self._chunks(OBSERVE, n)
        self.rt.exec(FINISH_STATS)

    def train_pass(self, order: np.ndarray) -> None:
        self.rt.set(_order=[int(v) for v in order])
        self._chunks(TRAIN, len(order))

    def dual(self, n: int) -> float:
        self._chunks(STORE, n)
        self.rt.exec(SOLVE)
        return float(self.rt.eval("_lams[0]"))

    def predict(self, counts: list[np.ndarray], chunk: int = 64) -> np.ndarray:
        out: list[int] = []
        for j0 in range(0, len(counts[0]), chunk):
            self.rt.exec("_CTE = [None] * _N")
            for i, c in enumerate(counts):  # one array per call: big JSON parses slowly
                self.rt.set(_c=np.ascontiguousarray(c[j0:j0 + chunk], dtype=np.uint16))
                self.rt.exec(f"_CTE[{i}] = _c\ndel _c")
            self.rt.exec(PREDICT)
            out += list(self.rt.eval("_pred"))
        return np.array(out, dtype=np.int64)

    def weights(self) -> list[np.ndarray]:
        return [np.asarray(self.rt.eval(f"_H[{i}].weights")) for i in range(self.n)]

    def bias(self) -> np.ndarray:
        return np.asarray(self.rt.eval("_H[0].bias"))

    def states(self) -> list[bytes]:
        """Each head's whole state (`Head.save()`): loads into ``Head(plan).load(...)``."""
        return [bytes(self.rt.eval(f"_H[{i}].save()")) for i in range(self.n)]

    def saturated(self) -> int:
        return int(self.rt.eval("sum(_h.saturated for _h in _H)"))


def train(node_plans: list[dict[str, Any]], counts_train: list[np.ndarray],
          y_train: np.ndarray, counts_test: list[np.ndarray] | None = None,
          y_test: np.ndarray | None = None, runtime: str | Any = "cpython",
          passes: int | None = None, seed: int = 0, shuffle: bool = True,
          eval_every: int = 1) -> Result:
    """Train the fleet on the training counts and report test accuracy.

    ``counts_*``: per node (n, F_i) uint16 PPV counts. Order: a fresh permutation of the
    training set every pass (``seed``), or dataset order with ``shuffle=False``. The test
    set is evaluated after every ``eval_every`` passes (0: only at the end).
    """
    head = node_plans[0]["head"]
    n = len(y_train)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    curve: list[tuple[int, float]] = []
    lam = None
    dual = head.get("solver") == "dual"
    row_bytes = logit_bytes(head.get("wire", "float32")) * int(head["classes"])

    with InMemoryFleet(node_plans, runtime) as fleet:

        def evaluate(at: int) -> None:
            if counts_test is not None and y_test is not None:
                curve.append((at, float(np.mean(fleet.predict(counts_test) == y_test))))

        fleet.load_train(counts_train, y_train)
        if dual:
            lam = fleet.dual(n)
            used = 1
            sent = 2 * n * (n + 1)  # 4 bytes per upper-triangle entry
            evaluate(used)
        else:
            used = 0
            if head.get("scaling") == "local":
                fleet.statistics_pass(n)
                used += 1
            total = passes or int(head.get("passes", 30))
            for p in range(1, total + 1):
                fleet.train_pass(rng.permutation(n) if shuffle else np.arange(n))
                used += 1
                if p == total or (eval_every and p % eval_every == 0):
                    evaluate(used)
            sent = total * n * row_bytes
        weights = fleet.weights()
        bias = fleet.bias()
        sat = fleet.saturated()
        states = fleet.states()
    acc = curve[-1][1] if curve else float("nan")
    to_final = next((at for at, a in curve if a >= acc), used)
    return Result(accuracy=acc, curve=curve, passes=used, samples_broadcast=used * n,
                  passes_to_final=to_final, bytes_per_node=sent, lam=lam,
                  seconds=time.perf_counter() - t0, weights=weights, bias=bias,
                  saturated=sat, states=states)
