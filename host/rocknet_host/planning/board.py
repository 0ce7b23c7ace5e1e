"""What a board needs to train on its own (`rocknet.board`), written by ``rocknet plan``.

Each node plan gets three sections beside its features:
- ``head``: the head's mode, optimizer, schedule and scaling (`head_plan.sections`);
- ``schedule``: the fleet's sample order (`rocknet.node.Schedule.to_dict`): how many training
  and evaluation samples each node owns, epochs, batch;
- ``run``: radio profile, row size, round deadline, relay window, checkpoint interval, and
  ``keep``: what the node's ring keeps of a training sample until its decision, "codes" (its
  8-bit feature codes, F_i bytes) or "series" (its int8 series, L bytes, transformed again
  when the sample is applied: one more slice transform per applied training sample).
  ``Training.keep`` "auto" (the default) makes it "series" for a node whose heap estimate
  keeping codes exceeds its board's budget (`capacity.node_keep`), else "codes"; and
  ``pending``: the ring's slots, undecided samples the node holds. ``Training.pending`` None
  ("auto", the default) makes it 2 w + 4 (w the relay window), or w + 4 for a node whose heap
  estimate with the full ring (its keep resolved) exceeds its board's budget
  (`capacity.node_pending`). A node whose decision comes after its slot was reused desyncs
  and rejoins the fleet; a plan without it gets the node's default, 2 w + 4.

and each node gets a data file ``node_XX.data`` (checked like a plan; kind ``data``): its own
share of the training series and of the evaluated test series, int8-quantized with the plan's
quantizer, with labels, bound to its plan file by hash (`rocknet.board.plan_id`). Ownership is
RockNet's: contiguous, balanced shares (`owner_split`). The evaluation pass of every
epoch travels like training samples and gives every board the fleet's agreed accuracy; it
uses ``eval`` test series (a seeded random subset; default as many as there are training
series, so evaluation costs at most as many rounds as training).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset
from ..errors import UserError
from ..runtimes import import_device
from . import features
from . import head as head_plan
from .features import Plan, node_file

RADIOS = ("extended", "legacy")
KEEP_CHOICES = ("codes", "series", "auto")  # `Training.keep` (capacity.KEEPS, or "auto")
# A plan without a fleet resolves keep="auto" against the board its radio stands for (the
# simulator's radio profiles': CircuitPython on a Feather nRF52840, MicroPython on an ESP32)
RADIO_BOARDS = {"extended": "adafruit_feather_nrf52840", "legacy": "esp32_devkitc"}
DATA_KIND = "data"
MAX_CLASSES = 255  # a data file stores a label in one byte (0..254)


class RoundsDoNotFit(UserError):
    """A round of the fleet needs more rows than the radio's adverts carry: the plans can
    still be validated (`rocknet validate`), but the boards cannot train with them."""


def owner_split(n_samples: int, n_nodes: int) -> list[tuple[int, int]]:
    """RockNet's sample ownership: contiguous, balanced, the first ``n % N`` nodes one more."""
    base, extra = divmod(n_samples, n_nodes)
    out, start = [], 0
    for i in range(n_nodes):
        size = base + (1 if i < extra else 0)
        out.append((start, start + size))
        start += size
    return out


def full_pending(window: int) -> int:
    """The ring a node keeps by default (`rocknet.node`): 2 w + 4 undecided samples, room for
    decisions that loss delays by up to w + 4 rounds beyond the usual ~5."""
    return 2 * window + 4


def floor_pending(window: int) -> int:
    """The ring ``--pending auto`` shrinks to where the full one does not fit: about 5 samples
    (a decision comes back ~4 rounds after its sample) plus w rounds of loss-induced delay."""
    return window + 4


def min_pending(window: int) -> int:
    """The smallest ring a plan may ask for: a sample is decided two rounds after its own at
    the earliest and its decision travels for up to w rounds, so a smaller ring overwrites
    samples before any decision for them can arrive."""
    return window + 2


def row_size_for(wire_profile: str, make_geometry: Callable[[int], Any]) -> int:
    """The row size of a round that fits one advert of the profile ('extended' or 'legacy';
    ``make_geometry(row_size)`` -> `node.Geometry`): the fewest rows a round can have, in the
    smallest rows that still give that few (a control message padded to a larger row costs
    airtime on every packet and heap in every Mixer round)."""
    sizes = import_device("rocknet.wire_init")  # the advert sizes
    size = sizes.ADV_DATA_MAX[wire_profile]
    while size > 1:
        geo = make_geometry(size)
        if size <= sizes.max_row_size(wire_profile, geo.m):
            while size > 1 and make_geometry(size - 1).m == geo.m:
                size -= 1
            return size
        size -= 1
    raise ValueError(f"a round of this geometry does not fit {wire_profile} adverts at any "
                     "row size (at most 64 rows); use extended adverts, fewer nodes or a "
                     "smaller relay window")


@dataclass
class Training:
    """Options of the training a plan is made for (``rocknet plan --mode ...``)."""

    mode: str = "gradient"
    epochs: int = 20
    batch: int = 8
    eval: int | None = None  # test series evaluated per epoch; None: min(n_test, n_train)
    radio: str = "extended"
    deadline_ms: int = 2000
    window: int = 4
    gone_after: int = 8
    checkpoint_every: int | None = None  # applied samples; None: 4 batches
    seed: int = 0
    predict: bool = False  # after training, the fleet predicts the whole test set once
    gap: int = 0  # idle rounds after each batch: every block equals a central head's
    wire: str = head_plan.DEFAULT_WIRE  # partial logits on the air: int16 codes or float32
    keep: str = "auto"  # what a node keeps of a sample awaiting its decision (KEEP_CHOICES)
    pending: int | None = None  # the ring's slots, undecided samples kept; None: auto

    def check(self) -> None:
        if self.mode not in head_plan.MODES:
            raise UserError(f"--mode must be one of {head_plan.MODES}, not {self.mode!r}")
        if self.wire not in head_plan.WIRES:
            raise UserError(f"--wire must be one of {head_plan.WIRES}, not {self.wire!r}")
        if self.radio not in RADIOS:
            raise UserError(f"--radio must be one of {RADIOS}, not {self.radio!r}")
        if self.keep not in KEEP_CHOICES:
            raise UserError(f"--keep must be one of {KEEP_CHOICES}, not {self.keep!r}")
        w = self.window
        if self.pending is not None and self.pending < min_pending(w):
            raise UserError(
                f"--pending {self.pending}: a node's ring must hold at least window + 2 = "
                f"{min_pending(w)} undecided samples (a sample is decided two rounds after "
                f"its own at the earliest and its decision travels for up to window = {w} "
                f"rounds; a smaller ring overwrites samples before their decisions arrive): "
                f"use --pending auto (2 x window + 4 = {2 * w + 4}, or window + 4 = {w + 4} "
                f"where the heap needs it) or at least {min_pending(w)}")
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, not {self.epochs}")
        if self.batch < 1:
            raise UserError(f"--batch must be at least 1, not {self.batch}")
        if self.eval is not None and self.eval < 0:
            raise UserError(f"--eval must be at least 0, not {self.eval}")


def data_file(node: int) -> str:
    return f"node_{node:02d}.data"


def _eval_index(ds: Dataset, t: Training) -> np.ndarray:
    n = len(ds.X_test)
    k = min(n, len(ds.X_train)) if t.eval is None else min(n, t.eval)
    rng = np.random.default_rng(t.seed)
    return np.sort(rng.choice(n, size=k, replace=False)) if k < n else np.arange(n)


def _round7(values: list[float]) -> list[float]:
    """7 significant digits: float32's precision (what a board parses anyway), half the text."""
    return [float(f"{v:.7g}") for v in values]


def node_keeps(pl: Plan, ds: Dataset, t: Training, board: Any = None,
               code: str | None = None) -> list[str]:
    """Each node's ``run.keep``: ``t.keep``, or for "auto" `capacity.node_keep` on ``board``
    (a `boards.Board`; default: `RADIO_BOARDS` of ``t.radio``) with rocknet's code held as
    ``code`` (a `capacity.code_heap_bytes` key; default: the board file's ``code_from``, not
    what this machine's deploy tools would install: `capacity.fit` counts that for a fleet),
    weighed with the ring ``t.pending`` (auto: the full one, `full_pending`)."""
    if t.keep != "auto":
        return [t.keep] * pl.n_nodes
    from .. import boards
    from . import capacity

    b = board if board is not None else boards.load(RADIO_BOARDS[t.radio])
    ring = full_pending(t.window) if t.pending is None else t.pending
    geo = capacity.plan_shape(pl.length, pl.n_classes, pl.n_features, pl.variant, pl.n_nodes,
                              len(ds.X_test) if t.predict else 0, t.radio, t.wire,
                              pending=ring)
    return [capacity.node_keep(b, geo, len(pl.node_feature_index(i)),
                               len(pl.node_features(i)["centre"]), code or b.code_from)
            for i in range(pl.n_nodes)]


def node_pendings(pl: Plan, ds: Dataset, t: Training, keeps: list[str] | None = None,
                  board: Any = None, code: str | None = None) -> list[int]:
    """Each node's ``run.pending``: ``t.pending``, or for None ("auto")
    `capacity.node_pending` on ``board`` with the node's keep (``keeps``, else `node_keeps`)
    resolved; ``board`` and ``code`` as for `node_keeps`."""
    if t.pending is not None:
        return [t.pending] * pl.n_nodes
    from .. import boards
    from . import capacity

    b = board if board is not None else boards.load(RADIO_BOARDS[t.radio])
    if keeps is None:
        keeps = node_keeps(pl, ds, t, b, code)
    geo = capacity.plan_shape(pl.length, pl.n_classes, pl.n_features, pl.variant, pl.n_nodes,
                              len(ds.X_test) if t.predict else 0, t.radio, t.wire)
    return [capacity.node_pending(b, dataclasses.replace(geo, keep=keeps[i]),
                                  len(pl.node_feature_index(i)),
                                  len(pl.node_features(i)["centre"]), code or b.code_from,
                                  t.window)
            for i in range(pl.n_nodes)]


def node_plans(pl: Plan, ds: Dataset, t: Training,
               heads: list[dict[str, Any]] | None = None, keeps: list[str] | None = None,
               board: Any = None, code: str | None = None,
               pendings: list[int] | None = None) -> list[dict[str, Any]]:
    """Node plans with head, schedule and run sections. ``heads``: head sections already
    made (e.g. of a trained `RockNetClassifier`), else `head_plan.sections` for ``t``;
    ``keeps``: each node's ``run.keep``, else `node_keeps` (``board``, ``code``);
    ``pendings``: each node's ``run.pending``, else `node_pendings`."""
    t.check()
    if not 2 <= pl.n_classes <= MAX_CLASSES:
        raise UserError(f"{ds.name} has {pl.n_classes} classes; a board trains a classifier of "
                        f"2 to {MAX_CLASSES} classes: use a dataset with at least two labels "
                        "(and one byte's worth at most)")
    node_mod = import_device("rocknet.node")
    n = pl.n_nodes
    if heads is None:
        secs = head_plan.sections(pl, ds.X_train, mode=t.mode, batch=t.batch,
                                  passes=t.epochs, solver="sgd", wire=t.wire)
        for sec in secs:
            for key in ("mean", "std"):
                if key in sec:
                    sec[key] = _round7(sec[key])
    else:
        secs = [dict(h) for h in heads]
    nps = head_plan.node_plans(pl, secs)
    tr = owner_split(len(ds.X_train), n)
    te = owner_split(len(_eval_index(ds, t)), n)
    tp = owner_split(len(ds.X_test), n) if t.predict else [(0, 0)] * n
    sched = node_mod.Schedule([b - a for a, b in tr], [b - a for a, b in te],
                              [b - a for a, b in tp], epochs=t.epochs, batch=t.batch,
                              gap=t.gap)
    lb = head_plan.logit_bytes(secs[0]["wire"])
    try:
        rs = row_size_for(t.radio, lambda size: node_mod.Geometry(
            n, ds.length, pl.n_classes, size, t.window, lb))
    except ValueError:
        raise RoundsDoNotFit(f"a round of {n} nodes with series of length {ds.length} does not "
                             f"fit {t.radio} adverts (at most 64 rows a round): use --radio "
                             "extended, fewer nodes or shorter series") from None
    run = {"profile": t.radio, "row_size": rs, "deadline_ms": t.deadline_ms,
           "window": t.window, "gone_after": t.gone_after,
           "checkpoint_every": t.checkpoint_every or 4 * t.batch}
    if keeps is None:
        keeps = node_keeps(pl, ds, t, board, code)
    if len(keeps) != n:
        raise ValueError(f"{len(keeps)} keeps for {n} nodes")
    if pendings is None:
        pendings = node_pendings(pl, ds, t, keeps, board, code)
    if len(pendings) != n:
        raise ValueError(f"{len(pendings)} rings for {n} nodes")
    for p, keep, pending in zip(nps, keeps, pendings, strict=True):
        p["schedule"] = sched.to_dict()
        p["run"] = {**run, "keep": keep, "pending": int(pending)}
    return nps


def write_data(pl: Plan, ds: Dataset, t: Training, out: str | Path) -> list[Path]:
    """``node_XX.data`` for every node, bound to the ``node_XX.plan`` already in ``out``."""
    store = import_device("rocknet.store")
    board = import_device("rocknet.board")
    out = Path(out)
    n = pl.n_nodes
    Qtr = pl.quantizer(ds.X_train).astype(np.int8)
    ev = _eval_index(ds, t)
    Qte = pl.quantizer(ds.X_test[ev]).astype(np.int8)
    yte = ds.y_test[ev]
    tr, te = owner_split(len(Qtr), n), owner_split(len(Qte), n)
    Qp = pl.quantizer(ds.X_test).astype(np.int8) if t.predict else Qte[:0]
    tp = owner_split(len(Qp), n)
    paths = []
    for i in range(n):
        _, body = store.read(str(out / node_file(i)), "plan")
        data = board.encode_data(
            i, board.plan_id(body), ds.length,
            train=[(Qtr[k].tobytes(), int(ds.y_train[k])) for k in range(*tr[i])],
            eval=[(Qte[k].tobytes(), int(yte[k])) for k in range(*te[i])],
            predict=[Qp[k].tobytes() for k in range(*tp[i])])
        path = out / data_file(i)
        store.write(str(path), DATA_KIND, store.DATA_VERSION, data)
        paths.append(path)
    for old in out.glob("node_*.data"):
        if old not in paths:
            old.unlink()
    return paths


def write_plans(pl: Plan, ds: Dataset, t: Training, out: str | Path, split: Any = None,
                mapping: dict[int, int] | None = None,
                heads: list[dict[str, Any]] | None = None,
                board: Any = None) -> RoundsDoNotFit | None:
    """Write what ``rocknet plan`` writes: the node plans with their training sections and the
    node data files (``split``, ``mapping``: a capacity split, `capacity.fit` / `without`,
    whose ``keeps`` and ``pendings`` the plans carry; ``heads``: head sections to use, a
    trained estimator's, else made for ``t``; ``board``: the boards' kind `node_keeps` and
    `node_pendings` resolve "auto" on).

    If a round cannot fit the radio (only then), the plans go without training sections
    (fine for `rocknet validate`, not for ``rocknet.run()``) and the reason is returned;
    None when everything was written. Any other problem raises."""
    why: RoundsDoNotFit | None = None
    nps: list[dict[str, Any]] | None
    try:
        # a fleet's, per board
        keeps = split.keeps or None if split is not None else None
        pendings = split.pendings or None if split is not None else None
        nps = node_plans(pl, ds, t, heads, keeps=keeps, board=board, pendings=pendings)
    except RoundsDoNotFit as exc:
        why, nps = exc, None
    if split is not None:
        from . import capacity

        capacity.write(pl, split, out, mapping, nps)
    else:
        features.write(pl, out, nps)
    if nps is not None:
        write_data(pl, ds, t, out)
    return why
