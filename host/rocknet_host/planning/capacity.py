"""Capacity-aware planning: split MiniRocket's features across a mixed fleet of boards.

Each board holds as many features as its heap budget allows (memory model below), and within
that the features go in proportion to its clock, so every node needs about the same compute
time per sample (the round waits for the slowest). A node's features are whole (dilation,
kernel) combinations, contiguous in the global feature order. A fleet too small for the plan
is refused with the smallest fleet that would work; a lost node is handled by re-planning
without it.

The split itself is `plan.fit(..., weights=..., caps=...)` (`features.split_kernels`); this
module decides the per-node feature counts and capacities.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards import Board
from ..errors import UserError
from ..hardware.fleet_toml import FleetFile, Group
from ..resources import BOARDS_DIR
from . import features as planmod
from . import head as head_plan
from .board import Training, floor_pending, full_pending, row_size_for

# --- memory model (bytes on the board) -----------------------------------------------------
# A training node's heap, code included, as `rocknet bench memory` measures it (its peak need):
#   code_heap_bytes      rocknet's modules, by how the board gets them (boards/code_heap.json)
# + link_bytes           two Mixer rounds alive (the current one and the previous, still
#                        served), each row a Python int, and the advert codec's CCM buffers
#                        (the round's control messages carry the plan's wire: 2 or 4 bytes a
#                        class)
# + ring_bytes           partial-logit rows of every node for the ring of undecided samples
#                        (``pending`` slots, the plan's ``run.pending``; 2 or 4 bytes a
#                        class), and one prediction byte per test series
# + kept_series_bytes    with keep="series", the ring's int8 series (L bytes a slot; with
#                        keep="codes" the ring's codes are a byte a slot per feature, below)
# + slice buffers        x, 3x, s9, c (int16) and the transform's temporaries
# + per feature          bytes_per_feature
# + RUNTIME_BYTES        everything else, calibrated on measured nodes (boards/memory_model.json,
#                        tools/calibrate_memory.py): the set-up code's interned names, the
#                        runner, radio adapter, schedule and decision history, garbage between
#                        collections and the largest transient block.
# The node's own series stay in the data file (`rocknet.samples`): a few objects, in RUNTIME.
MEMORY_MODEL_FILE = BOARDS_DIR / "memory_model.json"

# minirocket.Slice temporaries: (bias rows x positions) int16 chunks of _CHUNK_ELEMENTS (2048),
# two alive at once (row - col, then clip).
TEMP_BYTES = 2 * 2048 * 2
# A Mixer row held as a Python int: the int object and the 16-byte blocks its digits round up
# to, its coding vector and two list slots.
ROW_OBJECT_BYTES = 48
# The relay window a plan uses by default; a node's ring holds 2 w + 4 undecided samples
# (`rocknet.node`'s default ``pending``), or the plan's ``run.pending`` (`node_pending`):
# w + 4 where the full ring does not fit, never fewer than w + 2 (`board.min_pending`).
WINDOW = Training.window
PENDING_SAMPLES = full_pending(WINDOW)

# What the ring keeps of a training sample until its decision (`rocknet.node`'s ``keep``, the
# plan's ``run.keep``): its 8-bit codes (F_i bytes), or its int8 series (L bytes, transformed
# again when the sample is applied: one more slice transform per applied training sample)
KEEPS = ("codes", "series")


def runtime_bytes(n_nodes: int, length: int, code: str = "files") -> int:
    """RUNTIME_BYTES: the calibrated rest of a training node's heap (see above) in a fleet of
    ``n_nodes`` on series of ``length``: a base, a part per member (decision history, replay
    windows, schedule) and a part per series sample (the series' transient buffers), and
    more when the code is ``"py"`` (source compiled at import, set-up and every checkpoint)."""
    r = json.loads(MEMORY_MODEL_FILE.read_text())["runtime_bytes"]
    return (int(r["base"]) + int(r["per_node"]) * n_nodes
            + int(r.get("per_sample", 0)) * length
            + (int(r.get("py_extra", 0)) if code == "py" else 0))


def link_bytes(n_nodes: int, length: int, n_classes: int, radio: str = "extended",
               wire: str = head_plan.DEFAULT_WIRE) -> int:
    """Two Mixer rounds of the plan's geometry (partial logits as ``wire``, rows sized for
    adverts of the ``radio`` profile as `planning.board.row_size_for` picks them) and the
    codec's buffers; 0 for a round no advert carries (the training writer refuses that plan
    with its own message)."""
    from ..runtimes import import_device

    messages = import_device("rocknet.messages")
    sizes = import_device("rocknet.wire_init")  # the advert sizes

    def geometry(size: int) -> Any:
        return messages.Geometry(n_nodes, length, n_classes, size, WINDOW,
                                 head_plan.logit_bytes(wire))

    try:
        rs = row_size_for(radio, geometry)
    except ValueError:
        return 0
    m = geometry(rs).m
    return 2 * m * (rs + ROW_OBJECT_BYTES) + 4 * sizes.packet_size(m, rs)


def ring_bytes(n_nodes: int, n_classes: int, n_test: int = 0,
               wire: str = head_plan.DEFAULT_WIRE, pending: int = PENDING_SAMPLES) -> int:
    """The ring's partial-logit rows of every node for ``pending`` slots (``wire``: int16
    rows hold half of float32 ones), and the predictions (a byte per test series of the
    fleet)."""
    return pending * n_nodes * n_classes * head_plan.logit_bytes(wire) + n_test


def kept_series_bytes(geo: PlanShape) -> int:
    """The ring's int8 series when the node keeps series (one bytearray), else 0 (its codes
    count per feature: `bytes_per_feature`)."""
    return geo.pending * geo.length if geo.keep == "series" else 0


def bytes_per_feature(board: Board, geo: PlanShape) -> int:
    """Per feature: the slice's int16 bias and uint16 count, the node's counts of the sample
    being scored (a byte for series up to 255 values, else two) and, when it keeps codes, the
    ring of undecided samples' codes, and what the default head (plain SGD, batch 8, int16
    weights) holds per feature on this board's float (read off the device Head's arrays)."""
    return (4 + (1 if geo.length <= 255 else 2) + (geo.pending if geo.keep == "codes" else 0)
            + head_plan.head_bytes_per_feature(geo.n_classes, board.float_bits // 8))


# What rocknet's code holds of the heap once a training node imported it, by how the board
# gets it: boards/code_heap.json, written by tools/measure_code_heap.py from `rocknet bench
# features`' code_heap_bytes (MicroPython 1.29; a test keeps it within 10 % of the
# measurement).
CODE_HEAP_FILE = BOARDS_DIR / "code_heap.json"


def code_heap_bytes(code_from: str) -> int:
    """Heap held by rocknet's code on a board that gets it `code_from` (boards.CODE_SOURCES,
    or "py": source files, compiled on the board at import)."""
    table = json.loads(CODE_HEAP_FILE.read_text())["bytes"]
    if code_from not in table:
        raise ValueError(f"code_from must be one of {tuple(table)}, got {code_from!r}")
    return int(table[code_from])


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


@dataclass(frozen=True)
class PlanShape:
    """What the memory model needs to know about a plan before it is fitted (its shape; not
    the device's `node.Geometry`, which lays out a round's rows)."""

    length: int
    n_classes: int
    dilations: list[int]
    features_per_kernel: int
    n_nodes: int = 1
    n_test: int = 0  # test series the fleet predicts (a byte each on every node)
    radio: str = "extended"
    wire: str = head_plan.DEFAULT_WIRE  # partial logits on the air (and in the ring)
    biases_per_dilation: tuple[int, ...] = ()  # () : features_per_kernel at one dilation
    keep: str = "codes"  # what the ring keeps of a training sample (KEEPS)
    pending: int = PENDING_SAMPLES  # the ring's slots (the plan's ``run.pending``)

    @property
    def n_features(self) -> int:
        return planmod.N_KERNELS * self.features_per_kernel

    @property
    def per_dilation(self) -> list[int]:
        return [int(n) for n in self.biases_per_dilation or (self.features_per_kernel,)]

    @property
    def combo_sizes(self) -> list[int]:
        """Features of each (dilation, kernel) combination, in the global order."""
        return [nb for nb in self.per_dilation for _ in range(planmod.N_KERNELS)]


def plan_shape(length: int, n_classes: int, n_features: int, variant: str, n_nodes: int = 1,
               n_test: int = 0, radio: str = "extended",
               wire: str = head_plan.DEFAULT_WIRE, keep: str = "codes",
               pending: int = PENDING_SAMPLES) -> PlanShape:
    dil = planmod.rocknet_dilations if variant == "rocknet" else planmod.minirocket_dilations
    dilations, per_dil = dil(length, n_features)
    return PlanShape(length, n_classes, list(dilations), int(sum(per_dil)), n_nodes, n_test,
                     radio, wire, tuple(int(n) for n in per_dil), keep, pending)


def fixed_bytes(board: Board, geo: PlanShape, code: str) -> int:
    """Per-node bytes that do not grow with the node's features, its code held as ``code``
    (a `code_heap_bytes` key)."""
    padded = geo.length + 8 * max(geo.dilations)
    return (code_heap_bytes(code) + runtime_bytes(geo.n_nodes, geo.length, code)
            + link_bytes(geo.n_nodes, geo.length, geo.n_classes, geo.radio, geo.wire)
            + ring_bytes(geo.n_nodes, geo.n_classes, geo.n_test, geo.wire, geo.pending)
            + kept_series_bytes(geo)
            + 2 * 2 * padded + 2 * 2 * geo.length + TEMP_BYTES)  # x, 3x, s9, c int16


def node_bytes(board: Board, geo: PlanShape, n_features: int, combos: int = 0,
               code: str | None = None) -> int:
    """Estimated peak heap of one node of a plan shaped ``geo`` holding ``n_features``
    features in ``combos`` (dilation, kernel) combinations, code included: held as ``code``
    (a `code_heap_bytes` key; default the board's own, `code_source`)."""
    return (fixed_bytes(board, geo, code or code_source(board))
            + n_features * bytes_per_feature(board, geo)
            + combos)  # minirocket.Slice keeps one padding flag per (dilation, kernel)


def node_keep(board: Board, geo: PlanShape, n_features: int, combos: int = 0,
              code: str | None = None, keep: str = "auto") -> str:
    """What the node keeps of a training sample until its decision: ``keep`` ("codes" or
    "series"), or for "auto" "series" when the node keeping codes would exceed the board's
    heap budget (``node_bytes``, with ``geo``'s ring; it saves ``pending`` x (F_i - L) bytes
    and costs one more slice transform per applied training sample), else "codes"."""
    if keep == "auto":
        need = node_bytes(board, dataclasses.replace(geo, keep="codes"), n_features, combos,
                          code)
        return "series" if need > board.heap_budget else "codes"
    if keep not in KEEPS:
        raise ValueError(f"keep must be one of {KEEPS} or 'auto', not {keep!r}")
    return keep


def node_pending(board: Board, geo: PlanShape, n_features: int, combos: int = 0,
                 code: str | None = None, window: int = WINDOW,
                 pending: int | None = None) -> int:
    """The node's ring of undecided samples (``run.pending``): ``pending``, or for None
    ("auto") `full_pending`, unless the node's heap estimate with that ring (``geo``'s keep
    already resolved, `node_keep`) exceeds the board's budget: then `floor_pending`. A
    smaller ring saves its slots' partial-logit rows and kept codes or series, and tolerates
    less delay: a decision that arrives after its slot was reused desyncs the node, which
    then rejoins the fleet."""
    if pending is not None:
        return pending
    full = full_pending(window)
    need = node_bytes(board, dataclasses.replace(geo, pending=full), n_features, combos, code)
    return floor_pending(window) if need > board.heap_budget else full


def feature_capacity(board: Board, geo: PlanShape, code_from: str | None = None) -> int:
    """How many features fit in the board's budget (with a padding flag for each (dilation,
    kernel) combination, counted as if they were the plan's smallest)."""
    free = board.heap_budget - fixed_bytes(board, geo, code_source(board, code_from))
    m = max(1, min(geo.combo_sizes))
    return max(0, free * m // (bytes_per_feature(board, geo) * m + 1))


# --- allocation ----------------------------------------------------------------------------

class FleetTooSmall(ValueError):
    """The plan does not fit the fleet; the message names the smallest fleet that would."""


def allocate(caps: list[int], clocks: list[float], total: int) -> list[int]:
    """Feature counts per node: at least 1, at most caps[i], in proportion to clocks[i] where
    the caps allow (water-filling), summing to ``total``."""
    n = len(caps)
    if n > total:
        raise FleetTooSmall(f"{n} nodes but only {total} features to share: use at most "
                            f"{total} boards")
    if min(caps) < 1 or sum(caps) < total:
        raise FleetTooSmall("capacity")  # callers turn this into advice

    def filled(t: float) -> list[float]:
        return [min(float(c), t * clk) for c, clk in zip(caps, clocks, strict=True)]

    lo, hi = 0.0, max(c / clk for c, clk in zip(caps, clocks, strict=True))
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(filled(mid)) < total else (lo, mid)
    share = filled(hi)
    k = [min(c, max(1, math.floor(s))) for c, s in zip(caps, share, strict=True)]
    # Hand out (or take back) single features by largest remainder.
    order = sorted(range(n), key=lambda i: (-(share[i] - math.floor(share[i])), -clocks[i], i))
    while sum(k) < total:
        for i in order:
            if sum(k) < total and k[i] < caps[i]:
                k[i] += 1
    while sum(k) > total:
        i = max((j for j in range(n) if k[j] > 1), key=lambda j: (k[j] / clocks[j], j))
        k[i] -= 1
    return k


def _split(caps: list[int], clocks: list[float], per_dil: list[int]
           ) -> tuple[list[int], list[planmod.Split]]:
    """(feature shares, kernel ranges) of nodes with feature ``caps`` and ``clocks``;
    FleetTooSmall("capacity") when the (dilation, kernel) combinations do not fit."""
    counts = allocate(caps, clocks, planmod.N_KERNELS * sum(per_dil))
    try:
        return counts, planmod.split_kernels(per_dil, len(caps), [float(c) for c in counts],
                                             caps)
    except UserError:
        raise FleetTooSmall("capacity") from None


# How the code gets to a board, in words, and what to do when it leaves too little room.
CODE_FROM_WORDS = {"py": ".py files (CircuitPython without its mpy-cross)",
                   "files": ".mpy files", "romfs": "ROMFS", "frozen": "frozen modules"}
CODE_REMEDY = {
    "py": "give `rocknet deploy` CircuitPython's own mpy-cross (ROCKNET_CIRCUITPY_MPY_CROSS="
          "/path/to/mpy-cross: .mpy files hold less), or use firmware with rocknet frozen in "
          "(--code-from frozen), or boards with more heap",
    "files": "on MicroPython boards with ROMFS deploy with --romfs (plan with --code-from "
             "romfs), or use firmware with rocknet frozen in (--code-from frozen), or boards "
             "with more heap",
    "romfs": "use firmware with rocknet frozen in (--code-from frozen) or boards with more "
             "heap",
    "frozen": "plan fewer features (--features) or use boards with more heap",
}


def _remedy(board: Board, code: str) -> str:
    """What makes the code smaller on ``board`` (CircuitPython has no ROMFS)."""
    if code == "files" and board.runtime == "circuitpython":
        return CODE_REMEDY["romfs"]
    return CODE_REMEDY[code]


def _with_nodes(geo: PlanShape, n: int) -> PlanShape:
    return dataclasses.replace(geo, n_nodes=n)


def _fits(caps: list[int], clocks: list[float], per_dil: list[int]) -> bool:
    if not caps or len(caps) > planmod.N_KERNELS * len(per_dil):
        return False
    if sum(caps) < planmod.N_KERNELS * sum(per_dil):
        return False
    try:
        _split(caps, clocks, per_dil)
    except FleetTooSmall:
        return False
    return True


def _most_features(fleet: FleetFile, geo: PlanShape, variant: str, code_from: str | None
                   ) -> int | None:
    """The most features (below the plan's) this fleet holds, or None."""
    clocks = [n.board.cpu_mhz for n in fleet.nodes()]

    def fits(nf: int) -> bool:
        try:
            g2 = plan_shape(geo.length, geo.n_classes, nf, variant, geo.n_nodes, geo.n_test,
                            geo.radio, geo.wire, geo.keep, geo.pending)
        except ValueError:
            return False
        caps = [feature_capacity(g.board, g2, code_from) for g in fleet.groups
                for _ in range(g.count)]
        return _fits(caps, clocks, g2.per_dilation)

    lo, hi = planmod.N_KERNELS, geo.n_features - 1
    if hi < lo or not fits(lo):
        return None
    while lo < hi:  # fits(lo) holds
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _advice(fleet: FleetFile, geo: PlanShape, caps: list[int], variant: str,
            code_from: str | None) -> str:
    """The smallest fleet that would work, in words."""
    need = geo.n_features
    sizes = geo.combo_sizes
    most_nodes = len(sizes)
    types = {g.board.key: g.board for g in fleet.groups}
    cap_of = {k: feature_capacity(b, geo, code_from) for k, b in types.items()}
    have = min(sum(caps), need)
    lines = [f"this fleet ({fleet.describe()}) holds {have:,} of the {need:,} features "
             f"({geo.n_classes} classes, length {geo.length}; a node holds whole (dilation, "
             f"kernel) combinations of {min(sizes)}-{max(sizes)} features)."]
    usable = {k: c for k, c in cap_of.items() if c >= min(sizes)}
    for k in cap_of:
        if k not in usable:
            b = types[k]
            src = code_source(b, code_from)
            one = node_bytes(b, geo, min(sizes), 1, src)
            lines.append(f"{k}: cannot hold even one (dilation, kernel) combination "
                         f"({one:,} B needed, rocknet's code {code_heap_bytes(src):,} B of it "
                         f"from {CODE_FROM_WORDS[src]}; budget {b.heap_budget:,} B): "
                         f"{_remedy(b, src)}, or leave it out.")
    if usable:
        best = max(usable, key=lambda k: (usable[k], types[k].cpu_mhz))
        kept = [g for g in fleet.groups if g.board.key in usable]
        # more boards make every round (and so every node's link and ring) larger
        for extra in range(most_nodes + 1):
            total = sum(g.count for g in kept) + extra
            if total > most_nodes:
                break
            g2 = _with_nodes(geo, total)
            cap2 = {k: feature_capacity(types[k], g2, code_from) for k in usable}
            boards_ = [g.board for g in kept for _ in range(g.count)] + [types[best]] * extra
            if _fits([cap2[b.key] for b in boards_], [b.cpu_mhz for b in boards_],
                     geo.per_dilation):
                break
        if len(usable) == 1 and total <= most_nodes:
            lines.append(f"Smallest fleet that works: {total} x {best} ({extra} more).")
        elif total <= most_nodes:
            mix = " + ".join(f"{g.count} x {g.board.key}" for g in kept)
            lines.append(f"Smallest fleet that works: {mix} + {extra} more {best} "
                         f"({total} boards).")
        else:
            lines.append(f"No number of {best} boards holds all {need:,} features (each "
                         "board added enlarges every node's rounds and ring).")
    nf = _most_features(fleet, geo, variant, code_from)
    if nf:
        lines.append(f"Or keep this fleet and plan fewer features (--features {nf} fits).")
    return " ".join(lines)


@dataclass
class FleetSplit:
    boards: list[Board]
    ports: list[str | None]
    combos: list[int]  # (dilation, kernel) combinations per node
    features: list[int]
    bytes: list[int]
    holds: list[str]  # what each node holds, in words (`Plan.describe_node`)
    keeps: list[str] = dataclasses.field(default_factory=list)  # per node (KEEPS); [] codes
    # per node, the ring's slots (``run.pending``); [] the default, PENDING_SAMPLES
    pendings: list[int] = dataclasses.field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        keeps = self.keeps or ["codes"] * len(self.boards)
        pendings = self.pendings or [PENDING_SAMPLES] * len(self.boards)
        return [{"node": i, "board": b.key, "port": p, "combos": c, "features": f,
                 "bytes": m, "budget": b.heap_budget, "holds": h, "keep": kp, "pending": pn}
                for i, (b, p, c, f, m, h, kp, pn) in enumerate(zip(
                    self.boards, self.ports, self.combos, self.features, self.bytes,
                    self.holds, keeps, pendings, strict=True))]


def split_for(fleet: FleetFile, geo: PlanShape, variant: str = "minirocket",
              code_from: str | None = None) -> list[int]:
    """Feature counts per node of `fleet` (refuses with advice when it cannot work)."""
    nodes = fleet.nodes()
    sizes = geo.combo_sizes
    if len(nodes) > len(sizes):
        raise FleetTooSmall(f"{len(nodes)} boards but only {len(sizes)} (dilation, kernel) "
                            f"combinations to share: use at most {len(sizes)} boards")
    caps = [feature_capacity(n.board, geo, code_from) for n in nodes]
    try:
        return _split(caps, [n.board.cpu_mhz for n in nodes], geo.per_dilation)[0]
    except FleetTooSmall as exc:
        if str(exc) != "capacity":
            raise
        raise FleetTooSmall(_advice(fleet, geo, caps, variant, code_from)) from None


def fit(fleet: FleetFile, dataset: Any, variant: str = "minirocket", n_features: int = 10_000,
        bias_examples: int = 1, seed: int = 0, code_from: str | None = None,
        radio: str = "extended", wire: str = head_plan.DEFAULT_WIRE, keep: str = "codes",
        pending: int | None = PENDING_SAMPLES, window: int = WINDOW
        ) -> tuple[planmod.Plan, FleetSplit]:
    """A plan for `dataset` split across `fleet` by capacity and clock, each board's code
    held as it gets it (`code_source`), its nodes sending partial logits as ``wire``,
    keeping ``keep`` of a training sample ("codes", "series", or "auto": split as if every
    node kept codes, or, where that does not fit, series; then each node `node_keep`) in a
    ring of ``pending`` slots (None, "auto": split with the full ring, or, where nothing
    else fits, with the floor ring; then each node `node_pending`, its keep resolved)."""
    nodes = fleet.nodes()
    ring = full_pending(window) if pending is None else pending
    geo = plan_shape(dataset.length, len(dataset.classes), n_features, variant, len(nodes),
                     len(dataset.X_test), radio, wire, "codes" if keep == "auto" else keep,
                     ring)
    tries = [geo]
    if keep == "auto":  # a node keeping series holds more
        tries.append(dataclasses.replace(geo, keep="series"))
    if pending is None:  # and more with a smaller ring
        tries.append(dataclasses.replace(tries[-1], pending=floor_pending(window)))
    for k, g in enumerate(tries):
        try:
            counts = split_for(fleet, g, variant, code_from)
        except FleetTooSmall:
            if k == len(tries) - 1:
                raise
            continue
        geo = g
        break
    caps = [feature_capacity(n.board, geo, code_from) for n in nodes]
    pl = planmod.fit(dataset, len(nodes), variant=variant, n_features=n_features,
                     bias_examples=bias_examples, seed=seed,
                     weights=[float(c) for c in counts], caps=caps)
    feats = [len(pl.node_feature_index(i)) for i in range(len(nodes))]
    combos = [sum(b - a for a, b in s) for s in pl.splits]
    srcs = [code_source(n.board, code_from) for n in nodes]
    g_full = dataclasses.replace(geo, pending=ring)  # keep resolved with the plan's ring
    keeps = [node_keep(n.board, g_full, f, c, src, keep)
             for n, f, c, src in zip(nodes, feats, combos, srcs, strict=True)]
    rings = [node_pending(n.board, dataclasses.replace(geo, keep=k), f, c, src, window,
                          pending)
             for n, f, c, src, k in zip(nodes, feats, combos, srcs, keeps, strict=True)]
    mem = [node_bytes(n.board, dataclasses.replace(geo, keep=k, pending=p), f, c, src)
           for n, f, c, src, k, p in zip(nodes, feats, combos, srcs, keeps, rings, strict=True)]
    over = [i for i, n in enumerate(nodes) if mem[i] > n.board.heap_budget]
    if over:  # the geometry estimate and the fitted plan disagree: never ship that
        raise FleetTooSmall(f"node(s) {over} would exceed their heap budget; plan fewer features")
    split = FleetSplit([n.board for n in nodes], [n.port for n in nodes], combos, feats, mem,
                       [pl.describe_node(i) for i in range(len(nodes))], keeps, rings)
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
    """The plan files (plan.write) plus fleet_plan.json: board, port, combinations, features,
    what it holds and memory per node."""
    paths = planmod.write(pl, out, node_plans)
    info = {"format": "rocknet-fleet-plan", "nodes": split.rows(),
            "memory_model": {"runtime_bytes": runtime_bytes(pl.n_nodes, pl.length),
                             "temp_bytes": TEMP_BYTES, "row_object_bytes": ROW_OBJECT_BYTES}}
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
