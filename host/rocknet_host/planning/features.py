"""Plan fitting on the host: everything that needs the whole training set.

A plan fixes the int8 input quantization, the dilations and kernel order, the integer biases,
and the split of its (dilation, kernel) combinations across the nodes (per dilation a range
of kernels a node, balanced by features). It is written as one small checked
file per node (``node_XX.plan``, read by ``rocknet.store`` on the board) plus ``fleet.json``.

Two variants (``variant=``):
- ``"rocknet"``: RockNet's device variant exactly: power-of-two dilations, the same number of
  biases per (kernel, dilation), golden-ratio quantiles, biases from the first training sample
  with a floor-index quantile, PPV over the whole length, truncating int8 quantization.
- ``"minirocket"`` (default): original MiniRocket's choices, which cost nothing on the device:
  log-spaced dilations with aeon's per-dilation feature counts, biases from quantiles of a
  random training example per (kernel, dilation) (or pooled over ``bias_examples`` examples),
  alternating padding, round-to-nearest quantization.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..reference import minirocket as reference
from ..runtimes import import_device

PLAN_KIND = "plan"
PLAN_VERSION = import_device("rocknet.store").PLAN_VERSION  # 2: per-dilation kernel ranges
VARIANTS = ("minirocket", "rocknet")
N_KERNELS = 84
PHI = (1 + math.sqrt(5)) / 2


@dataclass
class Quantizer:
    offset: float
    scale: float
    rounding: str = "nearest"

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return reference.quantize(X, self.offset, self.scale, self.rounding)

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "scale": self.scale, "rounding": self.rounding}


def fit_quantizer(X_train: np.ndarray, rounding: str = "nearest",
                  percentile: float = 99.9) -> Quantizer:
    """offset = mean of the training values; scale = the given percentile of |x - offset|, so
    that one value in a thousand clips at +-127 (RockNet's rule)."""
    if rounding not in reference.ROUNDING:
        raise UserError(f"rounding must be one of {reference.ROUNDING}, not {rounding!r}")
    X = np.asarray(X_train, dtype=np.float64)
    if X.size == 0:
        raise UserError("empty training set: a plan needs at least one training series")
    if not np.all(np.isfinite(X)):
        raise UserError("training series contain NaN or inf; load with --missing interpolate")
    offset = float(X.mean())
    scale = float(np.percentile(np.abs(X - offset), percentile))
    if scale <= 0:
        scale = float(np.abs(X - offset).max()) or 1.0
    return Quantizer(offset, scale, rounding)


def rocknet_dilations(length: int, n_features: int) -> tuple[list[int], list[int]]:
    """Powers of two up to 2^floor(log2((L-1)/8)); nb = floor(F / (84 * n_dil)) each."""
    m = int(math.floor(min(math.log2((length - 1) / 8), 32)))
    dilations = [2**i for i in range(m + 1)]
    nb = n_features // (N_KERNELS * len(dilations))
    if nb < 1:
        raise UserError(f"{n_features} features are too few for {len(dilations)} dilations; "
                         f"ask for at least {N_KERNELS * len(dilations)}")
    return dilations, [nb] * len(dilations)


def minirocket_dilations(length: int, n_features: int,
                         max_dilations: int = 32) -> tuple[list[int], list[int]]:
    """aeon's/MiniRocket's log-spaced dilations and features per dilation."""
    per_kernel = n_features // N_KERNELS
    if per_kernel < 1:
        raise UserError(f"ask for at least {N_KERNELS} features, not {n_features}")
    true_max = min(per_kernel, max_dilations)
    multiplier = per_kernel / true_max
    max_exponent = np.log2((length - 1) / (9 - 1))
    dil, counts = np.unique(
        np.logspace(0, max_exponent, true_max, base=2).astype(np.int32), return_counts=True
    )
    counts = (counts * multiplier).astype(np.int32)
    remainder = per_kernel - int(np.sum(counts))
    i = 0
    while remainder > 0:
        counts[i] += 1
        remainder -= 1
        i = (i + 1) % len(counts)
    return [int(d) for d in dil], [int(c) for c in counts]


def golden_quantiles(n: int) -> np.ndarray:
    """frac(k * phi) for k = 1..n, in float32 as RockNet and MiniRocket store them."""
    return np.array([(k * PHI) % 1 for k in range(1, n + 1)], dtype=np.float32)


Split = list[tuple[int, int]]  # one node's kernels per dilation: global kernel range [k0, k1)


def split_kernels(per_dil: list[int], n_nodes: int, weights: list[float] | None = None,
                  caps: list[int] | None = None, n_kernels: int = N_KERNELS) -> list[Split]:
    """Per node, per dilation, a contiguous range of kernels (the node's (dilation, kernel)
    combinations; ``per_dil[d]`` features each). At every dilation the kernels go to the nodes
    in node order, ``n_kernels * share`` each, and the odd ones to the nodes furthest below
    their share of the features: so each node holds its share of the features (equal shares,
    or in proportion to ``weights``; at most ``caps[i]``) within about a combination, and
    about the same mix of dilations (a combination's compute hardly depends on its features:
    a node of only small combinations would take longer)."""
    nd = len(per_dil)
    if n_nodes < 1:
        raise UserError("a fleet needs at least one node")
    if n_nodes > n_kernels * nd:
        raise UserError(f"{n_nodes} nodes but only {n_kernels * nd} (dilation, kernel) "
                         f"combinations to share; use at most {n_kernels * nd} nodes")
    if weights is not None and (len(weights) != n_nodes or min(weights) <= 0):
        raise UserError("need one positive weight per node")
    w = np.ones(n_nodes) if weights is None else np.array(weights, dtype=float)
    w = w / w.sum()
    total = n_kernels * sum(int(n) for n in per_dil)
    target = total * w
    cap = np.full(n_nodes, total) if caps is None else np.array(caps, dtype=np.int64)
    have = np.zeros(n_nodes, dtype=np.int64)
    counts = np.zeros((nd, n_nodes), dtype=np.int64)
    for di in sorted(range(nd), key=lambda d: (-int(per_dil[d]), d)):  # coarse ones first
        nb = int(per_dil[di])
        c = np.floor(n_kernels * w).astype(np.int64)
        if nb:
            c = np.minimum(c, (cap - have) // nb)
        for _ in range(n_kernels - int(c.sum())):
            deficit = target - have - c * nb
            room = have + (c + 1) * nb <= cap
            if not room.any():
                raise UserError(f"the nodes hold at most {int(cap.sum())} of the {total} "
                                 "features; plan fewer features or use more nodes")
            i = int(np.argmax(np.where(room, deficit, -np.inf)))
            c[i] += 1
        counts[di] = c
        have += c * nb
    if (counts.sum(axis=0) == 0).any():
        raise UserError(f"{n_nodes} nodes are too many to give each a (dilation, kernel) "
                         "combination; use fewer nodes")
    starts = np.concatenate([np.zeros((nd, 1), dtype=np.int64), np.cumsum(counts, axis=1)],
                            axis=1)
    return [[(int(starts[di, i]), int(starts[di, i + 1])) for di in range(nd)]
            for i in range(n_nodes)]


@dataclass
class Plan:
    """A fleet's plan: shared parameters plus per-node feature slices. ``splits``: per node,
    per dilation, the range [k0, k1) of kernels it holds there ([k, k]: none)."""

    dataset: str
    variant: str
    length: int
    n_classes: int
    classes: list[str]
    quantizer: Quantizer
    dilations: list[int]
    biases_per_dilation: list[int]
    kernels: list[tuple[int, int, int]]  # global kernel order
    biases: np.ndarray  # (F,) int16, global order: dilation, kernel, bias
    alternating: bool
    splits: list[Split]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.splits)

    @property
    def n_features(self) -> int:
        return int(len(self.biases))

    def centre_flag(self, dil_index: int, kernel_index: int) -> int:
        return int(self.alternating and (dil_index + kernel_index) % 2 == 1)

    def kernel_ranges(self, node: int) -> list[list[int]]:
        """Per dilation, the node's kernels there as a global kernel index range [k0, k1)
        ([0, 0]: none)."""
        return [[a, b] if a < b else [0, 0] for a, b in self.splits[node]]

    def node_features(self, node: int) -> dict[str, Any]:
        """The ``features`` section of one node's plan (what ``Slice`` consumes):
        ``kernel_range`` per dilation, ``kernels`` the triples of every kernel it names (in
        global kernel order), biases and padding flags per combination in the node's order."""
        kr = self.kernel_ranges(node)
        held = sorted({k for a, b in kr for k in range(a, b)})
        idx = self.node_feature_index(node)
        centre = [self.centre_flag(di, k) for di, (a, b) in enumerate(kr) for k in range(a, b)]
        return {
            "length": self.length,
            "dilations": list(self.dilations),
            "kernels": [list(self.kernels[k]) for k in held],
            "kernel_range": kr,
            "biases_per_dilation": list(self.biases_per_dilation),
            "biases": [int(b) for b in self.biases[idx]],
            "centre": centre,
        }

    def node_feature_index(self, node: int) -> np.ndarray:
        """Global feature indices of a node's features, in the node's order (dilation,
        kernel, bias: increasing)."""
        idx = []
        f = 0
        for (a, b), nb in zip(self.splits[node], self.biases_per_dilation, strict=True):
            idx.append(np.arange(f + a * nb, f + b * nb, dtype=np.int64))
            f += N_KERNELS * nb
        return np.concatenate(idx)

    def describe_node(self, node: int) -> str:
        """What a node holds, in words: e.g. "k4-9: 4-5 x 15 dilations" (kernels 4 to 9, 4 or
        5 of them at each of 15 dilations)."""
        kr = [(a, b) for a, b in self.kernel_ranges(node) if a < b]
        lo, hi = min(a for a, _ in kr), max(b for _, b in kr) - 1
        n = sorted(b - a for a, b in kr)
        each = f"{n[0]}" if n[0] == n[-1] else f"{n[0]}-{n[-1]}"
        return f"k{lo}-{hi}: {each} x {len(kr)} dilation" + ("s" if len(kr) > 1 else "")

    def node_plan(self, node: int) -> dict[str, Any]:
        return {
            "format": "rocknet-plan",
            "node": node,
            "nodes": self.n_nodes,
            "dataset": self.dataset,
            "variant": self.variant,
            "classes": self.n_classes,
            "quantizer": self.quantizer.to_dict(),
            "features": self.node_features(node),
            "options": self.options,
        }

    def summary(self) -> dict[str, Any]:
        per_node = [len(self.node_feature_index(i)) for i in range(self.n_nodes)]
        return {
            "format": "rocknet-fleet",
            "dataset": self.dataset,
            "variant": self.variant,
            "length": self.length,
            "classes": self.classes,
            "nodes": self.n_nodes,
            "features": self.n_features,
            "features_per_node": per_node,
            "holds": [self.describe_node(i) for i in range(self.n_nodes)],
            "kernel_ranges": [self.kernel_ranges(i) for i in range(self.n_nodes)],
            "dilations": self.dilations,
            "biases_per_dilation": self.biases_per_dilation,
            "alternating_padding": self.alternating,
            "quantizer": self.quantizer.to_dict(),
            "options": self.options,
        }


def fit_biases(
    Q: np.ndarray,
    dilations: list[int],
    per_dilation: list[int],
    kernels: list[tuple[int, int, int]],
    source: str,
    bias_examples: int,
    alternating: bool,
    seed: int,
) -> np.ndarray:
    """Integer biases in global feature order.

    ``source="first"``: RockNet: the first training series, sorted C, floor index
    ``min(int(L * q), L - 1)``. ``source="random"``: MiniRocket: ``np.quantile`` (linear) of C
    over ``bias_examples`` random training series per (kernel, dilation). A real bias t becomes
    floor(t): for integer C, C > t exactly when C > floor(t).
    """
    n, L = Q.shape
    total = N_KERNELS * sum(per_dilation)
    quant = golden_quantiles(total)
    rng = np.random.default_rng(seed)
    out = np.zeros(total, dtype=np.int64)
    f = 0
    for di, d in enumerate(dilations):
        nb = per_dilation[di]
        for k in range(N_KERNELS):
            q = quant[f:f + nb]
            if source == "first":
                C = np.sort(reference.conv(Q[0], d, kernels[k])[0])
                idx = np.minimum((np.float32(L) * q).astype(np.int64), L - 1)
                out[f:f + nb] = C[idx]
            else:
                rows = rng.choice(n, size=min(bias_examples, n), replace=False)
                C = reference.conv(Q[rows], d, kernels[k]).ravel()
                out[f:f + nb] = np.floor(np.quantile(C.astype(np.float64), q.astype(np.float64)))
            f += nb
    if out.min() < -32768 or out.max() > 32767:
        raise ValueError("biases outside int16; this cannot happen for int8 input")
    return out.astype(np.int16)


def fit(
    dataset: Any,
    n_nodes: int,
    variant: str = "minirocket",
    n_features: int = 10_000,
    bias_examples: int = 1,
    alternating: bool | None = None,
    rounding: str | None = None,
    seed: int = 0,
    weights: list[float] | None = None,
    caps: list[int] | None = None,
) -> Plan:
    """Fit a plan for ``dataset`` (a `data.Dataset`) split across ``n_nodes`` nodes (by
    features: equal shares, or ``weights``, within ``caps`` features a node)."""
    if variant not in VARIANTS:
        raise UserError(f"variant must be one of {VARIANTS}, not {variant!r}")
    X = np.asarray(dataset.X_train)
    if X.ndim != 2 or X.shape[0] == 0:
        raise UserError("empty training set: a plan needs at least one training series")
    L = X.shape[1]
    if L < 9:
        raise UserError(f"series of length {L}; MiniRocket needs length >= 9")
    MAX_LENGTH = import_device("rocknet.minirocket").MAX_LENGTH
    if L > MAX_LENGTH:
        raise UserError(f"series of length {L} exceed the device limit {MAX_LENGTH}; "
                         "downsample them first")
    rocknet = variant == "rocknet"
    quantizer = fit_quantizer(X, rounding or ("trunc" if rocknet else "nearest"))
    Q = quantizer(X)
    if rocknet:
        dilations, per_dil = rocknet_dilations(L, n_features)
        kernels = reference.ROCKNET_KERNELS
        alt = bool(alternating) if alternating is not None else False
        source = "first"
    else:
        dilations, per_dil = minirocket_dilations(L, n_features)
        kernels = reference.AEON_KERNELS
        alt = True if alternating is None else bool(alternating)
        source = "random"
    biases = fit_biases(Q, dilations, per_dil, kernels, source, bias_examples, alt, seed)
    return Plan(
        dataset=dataset.name,
        variant=variant,
        length=L,
        n_classes=len(dataset.classes),
        classes=list(dataset.classes),
        quantizer=quantizer,
        dilations=dilations,
        biases_per_dilation=per_dil,
        kernels=list(kernels),
        biases=biases,
        alternating=alt,
        splits=split_kernels(per_dil, n_nodes, weights, caps),
        options={"n_features": n_features, "bias_examples": bias_examples, "seed": seed,
                 "bias_source": source},
    )


def write(plan: Plan, out_dir: str | Path,
          node_plans: list[dict[str, Any]] | None = None) -> list[Path]:
    """One checked ``node_XX.plan`` per node plus ``fleet.json``, each written atomically.
    ``node_plans`` replaces ``plan.node_plan(i)`` (e.g. with training sections added)."""
    store = import_device("rocknet.store")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(plan.n_nodes):
        path = out / node_file(i)
        np_i = plan.node_plan(i) if node_plans is None else node_plans[i]
        body = plan_body(np_i)
        store.write(str(path), PLAN_KIND, PLAN_VERSION, body)
        paths.append(path)
    fleet = out / "fleet.json"
    tmp = fleet.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plan.summary(), indent=1))
    tmp.replace(fleet)
    return paths + [fleet]


def plan_body(node_plan: dict[str, Any]) -> bytes:
    """A node plan's file body: JSON with one top-level key per line, so that a board reads
    it a section at a time (`rocknet.board.Plan`) instead of parsing it whole."""
    lines = [json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"))
             for k, v in node_plan.items()]
    return ("{\n" + ",\n".join(lines) + "\n}").encode()


def node_file(node: int) -> str:
    return f"node_{node:02d}.plan"


def read_node(path: str | Path) -> dict[str, Any]:
    """A node plan as the board reads it (checksum verified)."""
    return dict(import_device("rocknet.store").load_plan(str(path)))
