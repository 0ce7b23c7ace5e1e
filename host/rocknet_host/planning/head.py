"""The ``head`` section of each node's plan: training mode, optimizer, schedule, fixed-point
scales, per-feature standardisation and, for ridge, whether a board can solve in dual.

`sections(plan, dataset, mode=...)` returns one dict per node; `node_plans` merges them into
the node plans that `device/rocknet/head.py` reads (``Head(node_plan)``).

Defaults (chosen with `rocknet bench accuracy`, 3 seeds, the 7 sets; see benches/accuracy.py):
- gradient: softmax cross-entropy, label smoothing 0.2, plain SGD (no optimizer state: the
  smallest heap), batch 8, lr 2 B / F (F = total features), 30 passes, cosine schedule.
  Momentum 0.9 takes lr 0.2 B / F; Adam (8-bit moments) lr 1e-4. The three land within half
  a point of each other on average.
- ridge: dual closed form when n_train <= ``dual_max`` for the board budget, else squared
  loss with the same local updates, lr 0.25 B / F (momentum: 0.025 B / F), 60 passes.
  Standardised features give lambda_max(X^T X / n) <= F, so these steps are stable for any
  data set.
- int16 weights of step 2**ceil(log2(12.5 / sqrt(F) / 32767)); 8-bit moment codes.
- partial logits on the air as int16 codes of step ``LOGIT_SCALE[mode]`` (``wire="int16"``):
  no accuracy cost in `rocknet bench accuracy`, half the bytes of float32 in every control
  message and in every node's ring of rows, and summed as exact integers on every runtime.
  ``wire="float32"`` stays selectable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import boards
from ..errors import UserError
from ..reference import head as rh
from ..reference import minirocket as reference
from .features import Plan

MODES = ("gradient", "ridge")
OPTIMIZERS = ("sgd", "momentum", "adam")
WIRES = ("float32", "int16")
DEFAULT_WIRE = "int16"
DEFAULT_PASSES = {"gradient": 30, "ridge": 60}
# int16 logit codes: gradient logits stay within +-32 per node, ridge ones within +-8
LOGIT_SCALE = {"gradient": 2.0**-10, "ridge": 2.0**-12}


def logit_bytes(wire: str) -> int:
    """Bytes a class of a partial-logit row takes on the air and in a node's ring."""
    if wire not in WIRES:
        raise UserError(f"wire must be one of {WIRES}, not {wire!r}")
    return 4 if wire == "float32" else 2


def w_scale(n_features: int, span: float = 12.5) -> float:
    """Power-of-two weight step: int16 covers +-span / sqrt(F)."""
    return 2.0 ** math.ceil(math.log2(span / math.sqrt(n_features) / 32767))


def default_budget() -> int:
    """The smallest rocknet heap budget among the known boards (bytes)."""
    return min(b.heap_budget for b in boards.load_all().values())


def slice_bytes(features: dict[str, Any]) -> int:
    """Estimated heap of a feature slice (int16 biases, uint16 counts, buffers, one padding
    flag per combination, objects)."""
    F = len(features["biases"])
    combos = len(features["centre"])
    L = int(features["length"])
    pad = 4 * max(features["dilations"])
    return 4 * F + 4 * (L + 2 * pad) + 4 * L + combos + 1000


def dual_bytes(n: int, n_features: int, n_classes: int, features: dict[str, Any]) -> int:
    """Peak heap of a dual solve on a float32 board: codes n x F_i, labels, the integer Gram
    sum (n(n+1)/2 floats), K, eigenvectors and ulab's working copy (3 n^2 floats), targets
    and A (3 n C floats), int16 W, scaling, slice and 2 KB of objects."""
    floats = n * (n + 1) // 2 + 3 * n * n + 3 * n * n_classes
    return (n * n_features + n + 4 * floats + 2 * n_classes * n_features + 4 * n_features
            + slice_bytes(features) + 2048)


def dual_max(n_features: int, n_classes: int, features: dict[str, Any], budget: int) -> int:
    """The largest training set a board with ``budget`` bytes can solve in dual."""
    n = 0
    while dual_bytes(n + 1, n_features, n_classes, features) <= budget:
        n += 1
    return n


def head_bytes_per_feature(n_classes: int, float_bytes: int, optimizer: str = "sgd",
                           batch: int = 8) -> int:
    """Heap bytes one more feature costs a gradient-mode head (weights, codes, scaling, batch
    codes, optimizer state), read off the device `Head`'s own arrays (`state_bytes`) for a
    one-kernel slice of 100 more features than the float scratch holds (``CHUNK``, a fixed
    size) and of one more, so the figure follows head.py's layout."""
    from ..runtimes import import_device

    head_mod = import_device("rocknet.head")
    Head, first = head_mod.Head, head_mod.CHUNK + 1

    def total(nb: int) -> int:
        feats = {"length": 32, "dilations": [1], "kernels": [[0, 1, 2]],
                 "biases_per_dilation": [nb], "biases": [0] * nb, "centre": [0]}
        head = {"optimizer": optimizer, "batch": batch, "scaling": "plan",
                "mean": [0.0] * nb, "std": [1.0] * nb}
        h = Head({"classes": n_classes, "features": feats}, head)
        return sum(h.state_bytes(float_bytes).values())

    return math.ceil((total(first + 100) - total(first)) / 100)


def node_codes(plan: Plan, node: int, X: np.ndarray) -> np.ndarray:
    """A node's 8-bit feature codes of float series X (via the bit-exact reference)."""
    feats = plan.node_features(node)
    den, _ = rh.node_layout(feats)
    return rh.codes(reference.slice_counts(plan.quantizer(X), feats), den)


def sections(plan: Plan, X_train: np.ndarray, mode: str = "gradient",
             optimizer: str = "sgd", batch: int = 8, passes: int | None = None,
             lr: float | None = None, scaling: str = "plan", wire: str = DEFAULT_WIRE,
             solver: str | None = None, budget: int | None = None,
             train_codes: list[np.ndarray] | None = None, **extra: Any) -> list[dict[str, Any]]:
    """One head section per node. ``scaling="plan"`` computes each node's code means and
    stds from the training set here (pass ``train_codes`` to reuse codes already computed);
    ``"local"`` leaves them to the nodes (one statistics pass). ``solver`` None picks dual
    for ridge when the training set fits ``budget`` (default: the smallest board's)."""
    if mode not in MODES:
        raise UserError(f"mode must be one of {MODES}, not {mode!r}")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"optimizer must be one of {OPTIMIZERS}, not {optimizer!r}")
    logit_bytes(wire)  # checks it
    n = len(X_train)
    F = plan.n_features
    feats = [plan.node_features(i) for i in range(plan.n_nodes)]
    budget = default_budget() if budget is None else budget
    caps = [dual_max(len(f["biases"]), plan.n_classes, f, budget) for f in feats]
    cap = min(caps)
    if solver is None:
        solver = "dual" if mode == "ridge" and n <= cap else "sgd"
    if solver == "dual" and mode != "ridge":
        raise UserError("the dual solver is ridge's closed form: use mode='ridge'")
    passes = passes or DEFAULT_PASSES[mode]
    if lr is None:
        if optimizer == "adam":
            lr = 1e-4
        else:  # momentum 0.9 moves ~10x further per unit of lr than plain SGD
            lr = (0.2 if mode == "gradient" else 0.025) * batch / F
            lr *= 10 if optimizer == "sgd" else 1
    base: dict[str, Any] = {
        "mode": mode, "solver": solver, "optimizer": optimizer, "batch": batch, "lr": lr,
        "momentum": 0.9, "betas": [0.9, 0.999], "eps": 1e-8,
        "label_smoothing": 0.2 if mode == "gradient" else 0.0, "l2": 0.0,
        "schedule": "cosine", "passes": passes, "steps": passes * -(-n // batch),
        "weights": "int16", "w_scale": w_scale(F), "moments": "int8",
        "wire": wire, "logit_scale": LOGIT_SCALE[mode], "scaling": scaling, "bias_node": 0,
        "classes": plan.n_classes, "n_train": n, "total_features": F,
        "budget": budget, "dual_max": cap, "lambdas": [float(v) for v in rh.LAMBDAS],
    }
    base.update(extra)
    out = []
    for i in range(plan.n_nodes):
        sec = dict(base)
        if scaling == "plan":
            U = train_codes[i] if train_codes is not None else node_codes(plan, i, X_train)
            mean, std = rh.code_stats(U)
            sec["mean"] = [float(v) for v in mean]
            sec["std"] = [float(v) for v in std]
        out.append(sec)
    return out


def node_plans(plan: Plan, heads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Node plans with their head sections (what each board's ``Head`` is built from)."""
    out = []
    for i, sec in enumerate(heads):
        p = plan.node_plan(i)
        p["head"] = sec
        out.append(p)
    return out
