"""Capacity-aware planning: split MiniRocket's 84 kernels across a mixed fleet of boards.

Each board holds as many kernels as its heap budget allows (memory model below), and within
that the kernels go in proportion to its clock, so every node needs about the same compute time
per sample (the round waits for the slowest). A fleet too small for the plan is refused with
the smallest fleet that would work; a lost node is handled by re-planning without it.

The split itself is `plan.fit(..., weights=...)`; this module only decides the per-node kernel
counts and makes the resulting ranges exact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards import Board
from ..hardware.fleet_toml import FleetFile, Group
from ..resources import BOARDS_DIR
from . import features as planmod
from . import head as head_plan

# --- memory model (bytes on the board) -----------------------------------------------------
# Fixed per node: rocknet's code once imported (.mpy bytecode in RAM), one Mixer generation
# (rows + coding vectors), radio/scan buffers, and interpreter slack for the round loop.
OVERHEAD_BYTES = 28_000
# minirocket.Slice temporaries: (bias rows x positions) int16 chunks of _CHUNK_ELEMENTS (2048),
# two alive at once (row - col, then clip).
TEMP_BYTES = 2 * 2048 * 2


# A node's own series (rocknet.board keeps (bytes, label) pairs): the bytes plus objects.
SAMPLE_OVERHEAD = 40


def fixed_bytes(length: int, max_dilation: int, samples: int = 0) -> int:
    """Per-node bytes that do not grow with the node's features: code, radio, slice buffers,
    and the node's own `samples` series (training and evaluation)."""
    padded = length + 8 * max_dilation
    return (OVERHEAD_BYTES + 2 * 2 * padded + 2 * 2 * length + TEMP_BYTES  # x, 3x, s9, c int16
            + samples * (length + SAMPLE_OVERHEAD))


def samples_per_node(n_train: int, n_nodes: int) -> int:
    """Series a node holds by default: its share of the training set and as many evaluation
    series (`rocknet plan`'s --eval default)."""
    return 2 * -(-n_train // n_nodes)


# The node's ring of undecided samples: 8-bit codes of each (Node's default 2 * window + 4).
PENDING_SAMPLES = 12


def bytes_per_feature(board: Board, n_classes: int) -> int:
    """Per feature: the slice's int16 bias, uint16 denominator and uint16 count, the node's
    uint16 counts of the sample being scored and ring of undecided samples' codes, and what
    the default head (plain SGD, batch 8, int16 weights) holds per feature on this board's
    float (read off the device Head's arrays)."""
    return (6 + 2 + PENDING_SAMPLES
            + head_plan.head_bytes_per_feature(n_classes, board.float_bits // 8))


def node_bytes(board: Board, n_features: int, n_classes: int, length: int,
               max_dilation: int, combos: int = 0, samples: int = 0) -> int:
    """Estimated heap of one node holding `n_features` features in `combos` (dilation, kernel)
    combinations and `samples` series of its own."""
    return (fixed_bytes(length, max_dilation, samples)
            + n_features * bytes_per_feature(board, n_classes)
            + combos)  # minirocket.Slice keeps one padding flag per (dilation, kernel)


# What rocknet's code holds of the heap once a training node imported it, by how the board
# gets it: boards/code_heap.json, written by tools/measure_code_heap.py from `rocknet bench
# features`' code_heap_bytes (MicroPython 1.29; a test keeps it within 10 % of the
# measurement). OVERHEAD_BYTES' allowance is below the figure for files.
CODE_HEAP_FILE = BOARDS_DIR / "code_heap.json"


def code_heap_bytes(code_from: str) -> int:
    """Heap held by rocknet's code on a board that gets it `code_from` (boards.CODE_SOURCES,
    or "py": source files, compiled on the board at import)."""
    table = json.loads(CODE_HEAP_FILE.read_text())["bytes"]
    if code_from not in table:
        raise ValueError(f"code_from must be one of {tuple(table)}, got {code_from!r}")
    return int(table[code_from])


# --- allocation ----------------------------------------------------------------------------

class FleetTooSmall(ValueError):
    """The plan does not fit the fleet; the message names the smallest fleet that would."""


@dataclass(frozen=True)
class PlanShape:
    """What the memory model needs to know about a plan before it is fitted (its shape; not
    the device's `node.Geometry`, which lays out a round's rows)."""

    length: int
    n_classes: int
    dilations: list[int]
    features_per_kernel: int
    samples: int = 0  # series each node holds (samples_per_node)

    @property
    def n_features(self) -> int:
        return planmod.N_KERNELS * self.features_per_kernel


def plan_shape(length: int, n_classes: int, n_features: int, variant: str,
             samples: int = 0) -> PlanShape:
    dil = planmod.rocknet_dilations if variant == "rocknet" else planmod.minirocket_dilations
    dilations, per_dil = dil(length, n_features)
    return PlanShape(length, n_classes, list(dilations), int(sum(per_dil)), samples)


def kernel_capacity(board: Board, geo: PlanShape) -> int:
    """How many whole kernels (all their biases, all dilations) fit in the board's budget."""
    free = board.heap_budget - fixed_bytes(geo.length, max(geo.dilations), geo.samples)
    per_kernel = (geo.features_per_kernel * bytes_per_feature(board, geo.n_classes)
                  + len(geo.dilations))
    return max(0, free // per_kernel)


def allocate(caps: list[int], clocks: list[float], n_kernels: int = planmod.N_KERNELS
             ) -> list[int]:
    """Kernel counts per node: at least 1, at most caps[i], in proportion to clocks[i] where the
    caps allow (water-filling), summing to n_kernels."""
    n = len(caps)
    if n > n_kernels:
        raise FleetTooSmall(f"{n} nodes but only {n_kernels} kernels to share: use at most "
                            f"{n_kernels} boards")
    if min(caps) < 1 or sum(caps) < n_kernels:
        raise FleetTooSmall("capacity")  # callers turn this into advice

    def filled(t: float) -> list[float]:
        return [min(float(c), t * clk) for c, clk in zip(caps, clocks, strict=True)]

    lo, hi = 0.0, max(c / clk for c, clk in zip(caps, clocks, strict=True))
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(filled(mid)) < n_kernels else (lo, mid)
    share = filled(hi)
    k = [min(c, max(1, math.floor(s))) for c, s in zip(caps, share, strict=True)]
    # Hand out (or take back) single kernels by largest remainder.
    order = sorted(range(n), key=lambda i: (-(share[i] - math.floor(share[i])), -clocks[i], i))
    while sum(k) < n_kernels:
        for i in order:
            if sum(k) < n_kernels and k[i] < caps[i]:
                k[i] += 1
    while sum(k) > n_kernels:
        i = max((j for j in range(n) if k[j] > 1), key=lambda j: (k[j] / clocks[j], j))
        k[i] -= 1
    return k


def ranges(counts: list[int]) -> list[tuple[int, int]]:
    out, start = [], 0
    for c in counts:
        out.append((start, start + c))
        start += c
    return out


def _advice(fleet: FleetFile, geo: PlanShape, caps: list[int], variant: str) -> str:
    """The smallest fleet that would work, in words."""
    need = planmod.N_KERNELS
    types = {g.board.key: g.board for g in fleet.groups}
    cap_of = {k: kernel_capacity(b, geo) for k, b in types.items()}
    have = sum(caps)
    lines = [f"this fleet ({fleet.describe()}) holds {have} of the {need} kernels "
             f"({geo.n_features} features, {geo.n_classes} classes, length {geo.length})."]
    usable = {k: c for k, c in cap_of.items() if c > 0}
    for k, c in cap_of.items():
        if c == 0:
            b = types[k]
            one = node_bytes(b, geo.features_per_kernel, geo.n_classes, geo.length,
                             max(geo.dilations), len(geo.dilations), geo.samples)
            lines.append(f"A {k} cannot hold even one kernel ({one} bytes needed, budget "
                         f"{b.heap_budget}): leave it out.")
    if usable:
        best = max(usable, key=lambda k: (usable[k], types[k].cpu_mhz))
        kept = [g for g in fleet.groups if cap_of[g.board.key] > 0]
        have_usable = sum(g.count * cap_of[g.board.key] for g in kept)
        extra = max(0, math.ceil((need - have_usable) / usable[best]))
        total = sum(g.count for g in kept) + extra
        if len(usable) == 1 and total <= need:
            lines.append(f"Smallest fleet that works: {total} x {best} ({extra} more).")
        elif total <= need:
            mix = " + ".join(f"{g.count} x {g.board.key}" for g in kept)
            lines.append(f"Smallest fleet that works: {mix} + {extra} more {best} "
                         f"({total} boards).")
            for k, c in sorted(usable.items()):
                if math.ceil(need / c) <= need:
                    lines.append(f"Or {math.ceil(need / c)} x {k} alone.")
    for frac in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1):
        nf = int(geo.n_features * frac)
        try:
            g2 = plan_shape(geo.length, geo.n_classes, nf, variant, geo.samples)
        except ValueError:
            break
        c2 = [kernel_capacity(g.board, g2) for g in fleet.groups for _ in range(g.count)]
        if min(c2) >= 1 and sum(c2) >= need and len(c2) <= need:
            lines.append(f"Or keep this fleet and plan fewer features (--features {nf} fits).")
            break
    return " ".join(lines)


@dataclass
class FleetSplit:
    boards: list[Board]
    ports: list[str | None]
    kernels: list[int]
    features: list[int]
    bytes: list[int]

    def rows(self) -> list[dict[str, Any]]:
        return [{"node": i, "board": b.key, "port": p, "kernels": k, "features": f,
                 "bytes": m, "budget": b.heap_budget}
                for i, (b, p, k, f, m) in enumerate(zip(self.boards, self.ports, self.kernels,
                                                        self.features, self.bytes, strict=True))]


def code_shortfall(split: FleetSplit, code_from: str | None = None
                   ) -> list[tuple[int, int]]:
    """(node, bytes) for nodes whose budget, after the estimated node state, leaves less than
    rocknet's code holds when the board gets it `code_from` (default: each board's own
    `[runtime] code_from`)."""
    out = []
    for i, (b, m) in enumerate(zip(split.boards, split.bytes, strict=True)):
        need = code_heap_bytes(code_source(b, code_from))
        left = b.heap_budget - (m - OVERHEAD_BYTES)
        if left < need:
            out.append((i, need - left))
    return out


def code_source(board: Board, code_from: str | None = None) -> str:
    """The `code_heap_bytes` entry for ``board`` getting rocknet `code_from` (default: its
    own): "files" are .mpy files, except on CircuitPython without its own mpy-cross, where
    `rocknet deploy` installs the .py sources ("py")."""
    src = code_from or board.code_from
    if src == "files" and board.runtime == "circuitpython":
        from ..hardware.deploy import circuitpython_mpy_cross

        if circuitpython_mpy_cross() is None:
            return "py"
    return src


def split_for(fleet: FleetFile, geo: PlanShape, variant: str = "minirocket") -> list[int]:
    """Kernel counts per node of `fleet` (refuses with advice when it cannot work)."""
    nodes = fleet.nodes()
    caps = [kernel_capacity(n.board, geo) for n in nodes]
    try:
        return allocate(caps, [n.board.cpu_mhz for n in nodes])
    except FleetTooSmall as exc:
        if str(exc) != "capacity":
            raise
        raise FleetTooSmall(_advice(fleet, geo, caps, variant)) from None


def fit(fleet: FleetFile, dataset: Any, variant: str = "minirocket", n_features: int = 10_000,
        bias_examples: int = 1, seed: int = 0) -> tuple[planmod.Plan, FleetSplit]:
    """A plan for `dataset` split across `fleet` by capacity and clock."""
    samples = samples_per_node(len(dataset.X_train), len(fleet.nodes()))
    geo = plan_shape(dataset.length, len(dataset.classes), n_features, variant, samples)
    counts = split_for(fleet, geo, variant)
    nodes = fleet.nodes()
    pl = planmod.fit(dataset, len(nodes), variant=variant, n_features=n_features,
                     bias_examples=bias_examples, seed=seed, weights=[float(c) for c in counts])
    pl.splits = ranges(counts)  # exactly the counts (weights alone round by remainders)
    feats = [len(pl.node_feature_index(i)) for i in range(len(nodes))]
    combos = [len(pl.node_features(i)["centre"]) for i in range(len(nodes))]
    mem = [node_bytes(n.board, f, pl.n_classes, pl.length, max(pl.dilations), c, samples)
           for n, f, c in zip(nodes, feats, combos, strict=True)]
    over = [i for i, n in enumerate(nodes) if mem[i] > n.board.heap_budget]
    if over:  # the geometry estimate and the fitted plan disagree: never ship that
        raise FleetTooSmall(f"node(s) {over} would exceed their heap budget; plan fewer features")
    split = FleetSplit([n.board for n in nodes], [n.port for n in nodes], counts, feats, mem)
    return pl, split


def without(fleet: FleetFile, lost: list[int]) -> tuple[FleetFile, dict[int, int]]:
    """The fleet minus nodes `lost` (old numbers), and old -> new node numbers of the rest."""
    nodes = fleet.nodes()
    bad = [i for i in lost if not 0 <= i < len(nodes)]
    if bad:
        raise FleetTooSmall(f"no node(s) {bad} in this fleet of {len(nodes)} "
                            f"(0..{len(nodes) - 1})")
    groups: list[Group] = []
    mapping: dict[int, int] = {}
    i = 0
    for g in fleet.groups:
        keep = [j for j in range(g.count) if i + j not in lost]
        ports = tuple(g.ports[j] for j in keep if j < len(g.ports))
        for j in keep:
            mapping[i + j] = len(mapping)
        if keep:
            groups.append(Group(g.board, len(keep), ports))
        i += g.count
    if not groups:
        raise FleetTooSmall("every node is lost: nothing to plan for")
    return FleetFile(groups, fleet.plan_dir, fleet.key_file, fleet.path), mapping


def write(pl: planmod.Plan, split: FleetSplit, out: str | Path,
          mapping: dict[int, int] | None = None,
          node_plans: list[dict[str, Any]] | None = None) -> list[Path]:
    """The plan files (plan.write) plus fleet_plan.json: board, port, kernels, memory per node."""
    paths = planmod.write(pl, out, node_plans)
    info = {"format": "rocknet-fleet-plan", "nodes": split.rows(),
            "memory_model": {"overhead_bytes": OVERHEAD_BYTES, "temp_bytes": TEMP_BYTES}}
    if mapping is not None:
        info["renumbered"] = {str(k): v for k, v in mapping.items()}
    p = Path(out) / "fleet_plan.json"
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(p)
    # a re-plan for fewer nodes must not leave old node files behind
    for old in Path(out).glob("node_*.plan"):
        if old.name not in {planmod.node_file(i) for i in range(pl.n_nodes)}:
            old.unlink()
    return paths + [p]
