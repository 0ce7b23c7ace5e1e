"""`rocknet bench scaling`: per-node memory, per-sample latency and per-node energy against the
number of nodes N, the view of RockNet's headline (per-device memory, latency and energy down
93 %, 89 %, 86 % from 1 to 20 devices, FaceAll).

For every N the dataset is planned for N nodes (``rocknet plan``'s defaults) with the default
gradient head (``head_plan.sections``; ``--optimizer`` for momentum/Adam state). Then:

- **memory, measured**: inside MicroPython 1.29 + ulab (WebAssembly) one node's Slice, Head
  (weights, batch buffers, optimizer state) and LogitSum are built, one training sample runs
  through them (transform, partial logits, apply, step), and gc.mem_alloc() after a collection
  minus before is the node's heap (what `bench accuracy --heap` measures, plus the LogitSum).
  Floats are float64 there, float32 on the boards: the board-equivalent figure subtracts 4
  bytes per float element of the head's arrays and of the LogitSum rows. Max over the measured
  nodes. Not included: the radio link's buffers, the interpreter and the rocknet modules.
- **compute per sample on the board clock, modelled** (the figure latency and energy use):
  the same node's training sample (slice transform, partial logits, pack, N rows into the
  LogitSum and its total, apply, and 1/batch of an optimizer step over a full batch) runs in
  CPython under `rocknet_host.runtimes.board_clock`, which counts its ulab calls and bytecode and
  prices them at the instruction costs measured on an emulated Cortex-M4F
  (``../shared/notes/board-costs.md``) x CPI / MHz of ``--board``. The slowest measured node
  counts. Validated call by call against the notes' end-to-end figures: `rocknet bench clock`.
- **compute per sample on this host, measured** (kept, labelled ``host``): the same node,
  inside MicroPython, runs ``--series``
  training series one after another: slice transform, partial logits, pack, N rows into the
  LogitSum (as from the air) and its total, apply, and an optimizer step every batch; wall
  time per call over the series in it (calls of 8 series = one head batch each, after one
  warm-up series), the fastest call (timeit's rule: every call does the same work, slower
  ones were disturbed by other load; median and mean are kept too). The transform alone
  is timed on the same series for the split. These are host times of the
  WebAssembly build, not board times (``--cpu-scale`` multiplies them to model a slower CPU).
- **radio round, modelled**: the protocol simulator (`rocknet bench protocol`'s machinery:
  `rocknet.link.Link` over `sim.run.run_rounds`), full mesh, ``--loss``, ``--rounds`` rounds
  of this dataset's round (the owner's int8 series + label, one row of C float32 partial
  logits per node). Mean time until every node has decoded every row; airtime, radio rx time
  and energy per node from the simulator's current model. N = 1 needs no radio. On the board
  clock every endpoint call (``on_advert``, ``next_advert``) costs the CPU the simulator's
  per-advert figure (the radio driver's share, not measured) plus the board clock model of
  the Link's Python (counted call by call through the simulator's ``work_ms`` hook), so a
  node busy decoding neither scans nor advertises; the host row runs the same rounds with
  the simulator's per-advert figures alone.
- **latency per sample** = the slowest measured node's compute + the mean round.
- **energy per node per sample** = the slowest node's compute time x CPU current x voltage
  + the simulator's mean per-node round energy (tx, rx, advert processing, sleep within the
  round); the board's current model (`sim.energy.current_model`). Both on the board clock;
  the host-clock versions are under ``host`` in each row.

For large N a representative subset of nodes is measured (``--max-measured``, default 5): node
0 (owns the bias), the node with the largest slice and the last node, then evenly spaced ones;
the JSON lists them. Where an N does not fit the board's heap budget (``boards/*.toml``) the
row says ``fits_board: false`` and stays measured. Only when MicroPython cannot build a node at
all is the row extrapolated the way RockNet did (compute and CPU energy of the smallest
measured N times N; memory scaled by features) and labelled ``extrapolated: true``. The
RockNet-style central device, extrapolated from the smallest N that fits, is reported too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import boards, data
from ..planning import features as plan
from ..planning import head as head_plan
from ..reference import head as rh
from ..reference import minirocket as reference
from ..reference.validate import batch_size
from ..runtimes import board_clock as bc
from ..runtimes import import_device, open_runtime
from ..sim import topology as topo_mod
from ..sim.energy import current_model
from ..sim.radio import PROFILES, profile
from ..sim.report import summarise
from ..sim.run import Generation, run_rounds
from .accuracy import HEAP_CODE as ACCURACY_HEAP_CODE
from .protocol import KEY, layout_for

DEFAULT_NODES = "1,2,5,10,20,40"
TARGET_NODES = 20
# RockNet's headline (FaceAll, 1 -> 20 devices; DESIGN.md section 2, notes/rocknet-reference.md
# section 6.3: per device, against an extrapolated central device for latency and energy)
ROCKNET_HEADLINE: dict[str, Any] = {
    "from_nodes": 1, "to_nodes": 20, "memory_pct": 93.0, "latency_pct": 89.0, "energy_pct": 86.0,
    "source": "Graefe et al. 2025 (arXiv 2510.13320); 1-device latency and energy extrapolated "
              "from 7 devices x 7, memory from the model state of all features "
              "(notes/rocknet-reference.md 6.3)"}

HEAP_CODE = (ACCURACY_HEAP_CODE + "from rocknet.head_sum import LogitSum, pack as _row_bytes\n"
             "_ls = LogitSum(_h.nodes, _h.n_classes, _h.wire, _h.logit_scale)\n")

TIME_CODE = """
for _i in range(i0, i1):
    _s.transform(Q[_i], _c)
    _row = _h.partial_logits(_c)
    _d = _row_bytes(_h, _row)
    _ls.reset()
    for _j in range(_ls.n_nodes):
        _ls.add(_j, _d)
    _h.apply(_ls.total(), Y[_i])
    if _h.k >= _h.batch:
        _h.step()
"""

FEATURES_CODE = """
for _i in range(i0, i1):
    _s.transform(Q[_i], _c)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scaling", help="per-node memory, latency and energy vs number of nodes",
        description="Per-node memory (MicroPython heap), per-sample latency (measured compute "
        "+ simulated radio round) and per-node energy per sample for each N, and the "
        "reduction to N=20 beside RockNet's headline.")
    p.add_argument("--dataset", default="FaceAll", help="dataset name or path (default FaceAll)")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--nodes", default=DEFAULT_NODES,
                   help=f"comma-separated node counts (default {DEFAULT_NODES})")
    p.add_argument("--series", type=int, default=32,
                   help="training series timed per measured node (default 32)")
    p.add_argument("--max-measured", type=int, default=5,
                   help="measure every node up to this N, else a representative subset of this "
                   "many nodes (default 5)")
    p.add_argument("--board", default="adafruit_feather_nrf52840",
                   help="board whose heap budget, clock (board clock model) and current model "
                   "apply")
    p.add_argument("--optimizer", choices=head_plan.OPTIMIZERS, default="sgd",
                   help="head optimizer (default sgd: no optimizer state; adam: RockNet's)")
    p.add_argument("--variant", choices=plan.VARIANTS, default="minirocket")
    p.add_argument("--features", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--radio", choices=sorted(PROFILES), default="nrf52840-ext")
    p.add_argument("--loss", type=float, default=0.0, help="per-link loss in the round model")
    p.add_argument("--rounds", type=int, default=20, help="simulated rounds per N (default 20)")
    p.add_argument("--deadline", type=float, default=2.0, help="round deadline in s")
    p.add_argument("--cpu-scale", type=float, default=1.0,
                   help="multiply measured MicroPython times by this (model a slower CPU; "
                   "default 1: host WebAssembly speed)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="write a three-panel plot")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def parse_nodes(text: str) -> list[int]:
    try:
        nodes = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"--nodes {text!r}: give comma-separated integers, e.g. 1,2,5") from None
    if not nodes or nodes[0] < 1 or nodes[-1] > plan.N_KERNELS:
        raise ValueError(f"--nodes {text!r}: each N must be 1..{plan.N_KERNELS} (kernels)")
    return nodes


def run(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from ..errors import UserError

    try:
        nodes = parse_nodes(args.nodes)
        if args.series < 1:
            raise ValueError("--series must be at least 1")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with threadpool_limits(1):
        result = measure(args, nodes)
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        show(result)
    return 0


# ----- which nodes to measure -----


def representative(sizes: list[int], limit: int) -> list[int]:
    """Every node if there are at most ``limit``; else node 0 (bias owner), the largest
    slice, the last node, then evenly spaced nodes up to ``limit``."""
    n = len(sizes)
    if n <= max(1, limit):
        return list(range(n))
    pick = [0, int(np.argmax(sizes)), n - 1]
    for k in range(1, n):
        if len(dict.fromkeys(pick)) >= limit:
            break
        pick.append(round(k * (n - 1) / max(1, limit - 1)))
    return sorted(dict.fromkeys(pick))[:max(limit, 3)]


# ----- MicroPython measurement of one node -----


def measure_node(mpy: Any, node_plan: dict[str, Any], Q: np.ndarray, y: np.ndarray,
                 cpu_scale: float) -> dict[str, Any]:
    """Heap (WebAssembly and board-equivalent) and per-series compute of one node."""
    before = mpy.mem_alloc()
    mpy.set(_p=node_plan, _series=Q[0].astype(np.int8).tobytes())
    mpy.exec(HEAP_CODE)
    held = mpy.mem_alloc() - before
    b8, b4 = mpy.eval("_h.state_bytes(8)"), mpy.eval("_h.state_bytes(4)")
    n_nodes, C = int(node_plan["nodes"]), int(node_plan["classes"])
    board = held - (sum(b8.values()) - sum(b4.values())) - 4 * n_nodes * C
    feats = node_plan["features"]
    step = max(1, min(8, batch_size(feats)))
    mpy.set(Q=np.ascontiguousarray(Q, dtype=np.int8), Y=[int(v) for v in y])

    def timed(code: str, i0: int, i1: int) -> list[float]:
        """ms per series of each call (batches of `step` series)."""
        out = []
        for a in range(i0, i1, step):
            b = min(i1, a + step)
            mpy.set(i0=a, i1=b)
            t = time.perf_counter()
            mpy.exec(code)
            out.append(1000 * (time.perf_counter() - t) / (b - a))
        return out

    n = len(Q)
    timed(TIME_CODE, 0, 1)  # warm-up (not counted)
    lo = 1 if n > 1 else 0
    total = timed(TIME_CODE, lo, n)
    feat = timed(FEATURES_CODE, lo, n)
    mpy.exec("del _s, _h, _c, _ls, Q, Y\nimport gc\ngc.collect()")
    # every call does the same work (one optimizer step each), so the fastest call is the
    # figure least disturbed by other processes on a loaded machine (timeit's rule)
    compute = float(np.min(total)) * cpu_scale
    features = float(np.min(feat)) * cpu_scale
    return {"node": int(node_plan["node"]), "features": len(feats["biases"]),
            "heap_bytes": int(held), "board_bytes": int(board),
            "head_arrays_board_bytes": int(sum(b4.values())),
            "compute_ms": compute, "features_ms": features,
            "head_ms": max(0.0, compute - features),
            "compute_ms_median": float(np.median(total)) * cpu_scale,
            "compute_ms_mean": float(np.mean(total)) * cpu_scale, "calls": len(total)}


# ----- the board clock: model of one node's compute per training sample -----


def board_node(node_plan: dict[str, Any], Q: np.ndarray, y: np.ndarray,
               clock: bc.BoardClock) -> dict[str, Any]:
    """Board ms per training sample of one node (the work of TIME_CODE for one series, with
    1/batch of an optimizer step over a full batch), counted by the board clock model."""
    minirocket = import_device("rocknet.minirocket")
    head_mod = import_device("rocknet.head")
    logits = import_device("rocknet.logits")
    with bc.instrument() as meter:
        s = minirocket.Slice(node_plan["features"])
        h = head_mod.Head(node_plan)
        ls = import_device("rocknet.head_sum").LogitSum(h.nodes, h.n_classes, h.wire,
                                                        h.logit_scale)
        c = bc.Meter.array(np.zeros(s.n_features, dtype=np.uint16))

        def sample(i: int) -> None:
            row = h.partial_logits(c)
            d, _ = logits.pack(row, h.wire, h.logit_scale)
            ls.reset()
            for j in range(ls.n_nodes):
                ls.add(j, d)
            h.apply(ls.total(), int(y[i % len(y)]))

        _, feat = meter.call(s.transform, Q[0].astype(np.int8).tobytes(), c)
        _, head = meter.call(sample, 0)
        for i in range(1, h.batch):  # fill the batch (the step's work does not depend on
            sample(i)                # the values, so the same counts serve every sample)
        _, step = meter.call(h.step)
    per_sample = bc.Work()
    for w in (feat, head, step.scaled(1.0 / h.batch)):
        per_sample += w
    return {"node": int(node_plan["node"]), "compute_ms": clock.ms(per_sample),
            "features_ms": clock.ms(feat), "head_ms": clock.ms(head),
            "step_ms_per_batch": clock.ms(step), "batch": h.batch,
            "instructions": round(clock.instructions(per_sample)),
            "ulab_calls": per_sample.ulab_calls, "opcodes": per_sample.opcodes}


class _Metered:
    """A Link whose every endpoint call is priced by the board clock (``last_ms``)."""

    def __init__(self, link: Any, meter: bc.Meter, clock: bc.BoardClock) -> None:
        self._link, self._meter, self._clock = link, meter, clock
        self.last_ms = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)

    def on_advert(self, data: bytes, now_ms: int) -> None:
        with self._meter.count() as w:
            self._link.on_advert(data, now_ms)
        self.last_ms = self._clock.ms(w)

    def next_advert(self, now_ms: int) -> bytes | None:
        with self._meter.count() as w:
            out = self._link.next_advert(now_ms)
        self.last_ms = self._clock.ms(w)
        return out


# ----- radio round model -----


def simulate_round(nodes: int, length: int, classes: int, args: Any,
                   clock: bc.BoardClock | None = None) -> dict[str, Any]:
    """Mean round of `nodes` nodes in the protocol simulator (full mesh); with ``clock`` every
    endpoint call also costs its board clock model time."""
    link_mod = import_device("rocknet.link")
    model = profile(args.radio)
    current = current_model(args.board)
    topology = topo_mod.build("full", nodes, hops=None, loss=args.loss, seed=args.seed)
    lay = layout_for(model, nodes, 4, series_bytes=length + 1, classes=classes)
    deadline_ms = int(args.deadline * 1000)

    def gen(r: int) -> Generation:
        rng = random.Random(f"scaling/{args.seed}/{r}")
        series = bytes(rng.randrange(256) for _ in range(length + 1))
        size = lay.row_size
        rows = [series[k * size:(k + 1) * size] for k in range(lay.series_rows)]
        for _ in range(nodes):
            logit = bytes(rng.randrange(256) for _ in range(4 * classes))
            rows += [logit[k * size:(k + 1) * size] for k in range(lay.logit_rows)]
        rows = [r_ + bytes(size - len(r_)) for r_ in rows]
        return Generation(lay.owners(r % nodes), size, rows)

    meter: bc.Meter | None = None
    boots: dict[int, int] = {}

    def factory(i: int) -> Any:
        boots[i] = boots.get(i, -1) + 1  # fixed boot salts: reproducible runs
        link = link_mod.Link(i, KEY, lay.owners(), lay.row_size, model.wire_profile,
                             seed=(args.seed * 7919 + i + 1) & 0xFFFFFFFF,
                             timeout_ms=deadline_ms, boot=(i + 1) << 8 | boots[i])
        return link if meter is None or clock is None else _Metered(link, meter, clock)

    def work_ms(i: int, endpoint: Any) -> float:
        return float(getattr(endpoint, "last_ms", 0.0))

    with contextlib.ExitStack() as stack:
        if clock is not None:
            meter = stack.enter_context(bc.instrument())
        res = run_rounds(topology, model, factory, gen, args.rounds, seed=args.seed,
                         deadline_s=args.deadline, start_skew_ms=10.0, current=current,
                         work_ms=work_ms if clock is not None else None)
    s = summarise(res, lay.m)
    return {"m_rows": lay.m, "row_size": lay.row_size, "rounds": s["rounds"],
            "completion_rate": s["completion_rate"],
            "round_ms": 1000 * (s["mean_round_s"] if s["mean_round_s"] is not None
                                else args.deadline),
            "episode_ms": 1000 * (s["mean_elapsed_s"] or 0.0),
            "airtime_ms_per_node": s["airtime_ms_per_node"],
            "radio_rx_ms_per_node": s["radio_rx_ms_per_node"],
            "radio_cpu_ms_per_node": s["cpu_ms_per_node"],
            "energy_mj_per_node": s["energy_mj_per_node"],
            "clock": ("board: simulator's per-advert CPU figures + board clock model of each "
                      f"Link call ({clock.board})") if clock is not None else
                     "simulator's per-advert CPU figures only"}


# ----- the study -----


def measure(args: argparse.Namespace, nodes: list[int]) -> dict[str, Any]:
    board = boards.load(args.board)
    clock = bc.BoardClock.for_board(args.board)
    current = current_model(args.board)
    ds = data.load(args.dataset, args.data_dir)
    load_before = _loadavg()
    rows: list[dict[str, Any]] = []
    for n in nodes:
        pl = plan.fit(ds, n, variant=args.variant, n_features=args.features, seed=args.seed)
        Qtr = pl.quantizer(ds.X_train)
        codes = []
        for i in range(n):
            feats = pl.node_features(i)
            codes.append(rh.codes(reference.slice_counts(Qtr, feats),
                                  rh.node_layout(feats)[0]))
        secs = head_plan.sections(pl, ds.X_train, mode="gradient", optimizer=args.optimizer,
                                  budget=board.heap_budget, train_codes=codes)
        plans = head_plan.node_plans(pl, secs)
        sizes = [len(pl.node_features(i)["biases"]) for i in range(n)]
        chosen = representative(sizes, args.max_measured)
        count = min(args.series + 1, len(Qtr))
        Q, y = Qtr[:count], ds.y_train[:count]
        row: dict[str, Any] = {
            "nodes": n, "features": pl.n_features, "features_per_node_max": max(sizes),
            "measured_nodes": chosen, "subset": len(chosen) < n, "series_timed": count - 1
            if count > 1 else 1, "extrapolated": False}
        on_board = [board_node(plans[i], Q, y, clock) for i in chosen]
        slow_b = max(on_board, key=lambda r: r["compute_ms"])
        row["board_compute"] = {"compute_ms": slow_b["compute_ms"],
                                "features_ms": slow_b["features_ms"],
                                "head_ms": slow_b["compute_ms"] - slow_b["features_ms"],
                                "node": slow_b["node"], "per_node": on_board}
        per_node = []
        for i in chosen:
            # a fresh interpreter per node: garbage a previous node left behind (the
            # conservative collector can keep it for a few calls) must not blur the figure
            mpy = open_runtime("micropython")
            try:
                # the head modules a mode may load, and the set-up code building the slice
                # and head, are code, not the node's state (imported here, their interned
                # names and the string pools they grow are not in the node's figure either)
                mpy.exec("import gc\nimport rocknet.minirocket, rocknet.head, "
                         "rocknet.head_moments, rocknet.head_dual, rocknet.head_sum, "
                         "rocknet.minirocket_init, rocknet.head_init, rocknet.logits")
                per_node.append(measure_node(mpy, plans[i], Q, y, args.cpu_scale))
            except Exception as exc:  # noqa: BLE001 - a node MicroPython cannot build
                row["extrapolated"] = True
                row["measure_error"] = (str(exc).strip().splitlines() or ["?"])[-1][:300]
                break
            finally:
                mpy.close()
        if not row["extrapolated"]:
            worst_mem = max(per_node, key=lambda r: r["board_bytes"])
            slow = max(per_node, key=lambda r: r["compute_ms"])
            row["per_node"] = per_node
            row["memory"] = {"heap_bytes": max(r["heap_bytes"] for r in per_node),
                             "board_bytes": worst_mem["board_bytes"],
                             "node": worst_mem["node"]}
            row["compute"] = {"compute_ms": slow["compute_ms"],
                              "features_ms": slow["features_ms"], "head_ms": slow["head_ms"],
                              "node": slow["node"]}
        row["radio"] = (simulate_round(n, pl.length, pl.n_classes, args, clock)
                        if n > 1 else None)
        row["radio_host"] = (simulate_round(n, pl.length, pl.n_classes, args)
                             if n > 1 else None)
        rows.append(row)
    _extrapolate_failed(rows)
    for row in rows:
        _finish(row, current, board.heap_budget)
    feasible = [r["nodes"] for r in rows if r["fits_board"] and not r["extrapolated"]]
    n0 = feasible[0] if feasible else None
    central = _central(rows, n0, current, board.heap_budget) if n0 and n0 > 1 else None
    result: dict[str, Any] = {
        "bench": "scaling",
        "dataset": ds.name, "variant": args.variant, "features": rows[0]["features"],
        "classes": ds.n_classes,
        "length": int(ds.X_train.shape[1]), "n_train": int(len(ds.y_train)),
        "optimizer": args.optimizer, "mode": "gradient", "nodes": nodes,
        "series_per_node": args.series,
        "board": {"name": board.key, "heap_budget": board.heap_budget,
                  "float_bits": board.float_bits},
        "clock": {"latency_energy": f"board clock model ({board.key}: {board.cpu_mhz:g} MHz, "
                                    f"CPI {board.cpi:g})",
                  "host": "rows' `host` and `compute`: MicroPython 1.29 + ulab WebAssembly on "
                          "this machine's CPU", **clock.as_dict()},
        "current": current.as_dict(), "radio_profile": args.radio, "loss": args.loss,
        "rounds_per_n": args.rounds, "cpu_scale": args.cpu_scale,
        "machine": {"cpus": os.cpu_count(), "load_average_1min": [load_before, _loadavg()],
                    "note": "host compute times (rows' compute and host) are host times of the "
                            "WebAssembly MicroPython; other load on the machine slows them"},
        "model": {
            "memory": "measured: MicroPython gc.mem_alloc() held by Slice + Head (+ optimizer "
                      "state) + LogitSum after one training sample, max over measured nodes; "
                      "board_bytes = float64 head arrays at 4 B per float (float32 board)",
            "board_compute": "board clock model: ulab calls and bytecode of one training "
                             "sample (transform, partial logits, pack, N-row logit sum, apply, "
                             "step / batch) counted in CPython, priced at board-costs.md's "
                             "emulated Cortex-M4F instruction costs x CPI / MHz; slowest "
                             "measured node",
            "compute": "host clock, measured: MicroPython 1.29 + ulab (WebAssembly, host CPU) "
                       "ms per training series (fastest of the calls of 8 series; median and "
                       "mean in per_node) of the slowest measured node x cpu_scale",
            "round": "modelled: protocol simulator, full mesh, mean time until every node "
                     "decoded every row (series + N partial-logit rows); none at N=1. "
                     "`radio`: each Link call costs the simulator's per-advert CPU + its board "
                     "clock model time; `radio_host`: the simulator's per-advert CPU only",
            "latency": "board clock: board compute of the slowest node + one `radio` round "
                       "(host: host compute + one `radio_host` round)",
            "energy": "board clock: board compute x CPU current x V (slowest node) + the "
                      "`radio` round's energy per node (tx, rx, advert CPU, sleep); host: "
                      "host compute and `radio_host`",
            "extrapolated": "only rows MicroPython could not build (memory and host compute; "
                            "the board compute is always counted), and the RockNet-style "
                            "central device: compute and CPU energy of the smallest feasible "
                            "N times N, memory scaled to all features",
        },
        "rows": rows,
        "smallest_feasible_nodes": n0,
        "extrapolated_central": central,
        "rocknet_headline": ROCKNET_HEADLINE,
    }
    result["reduction"] = reductions(result)
    return result


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _cost(compute_ms: float, radio: dict[str, Any] | None, current: Any,
          clock: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Latency and energy per sample from a compute time and a simulated round."""
    round_ms = radio["round_ms"] if radio else 0.0
    round_mj = radio["energy_mj_per_node"] if radio else 0.0
    compute_mj = current.voltage_v * current.cpu_ma * compute_ms / 1000.0
    return ({"clock": clock, "compute_ms": compute_ms, "round_ms": round_ms,
             "latency_ms": compute_ms + round_ms},
            {"clock": clock, "compute_mj": compute_mj, "radio_mj": round_mj,
             "energy_mj": compute_mj + round_mj})


def _finish(row: dict[str, Any], current: Any, budget: int) -> None:
    """Latency, energy (board clock; host clock under ``host``) and fits_board of a row."""
    compute_ms = row["board_compute"]["compute_ms"]
    row["latency"], row["energy"] = _cost(compute_ms, row["radio"], current, "board")
    row["compute_board_ms"] = compute_ms
    row["latency_ms"] = row["latency"]["latency_ms"]
    row["energy_mj"] = row["energy"]["energy_mj"]
    lat, en = _cost(row["compute"]["compute_ms"], row.get("radio_host"), current, "host")
    row["host"] = {"compute_ms": lat["compute_ms"], "round_ms": lat["round_ms"],
                   "latency_ms": lat["latency_ms"], "compute_mj": en["compute_mj"],
                   "radio_mj": en["radio_mj"], "energy_mj": en["energy_mj"],
                   "extrapolated": row["extrapolated"]}
    row["fits_board"] = bool(row["memory"]["board_bytes"] <= budget)


def _extrapolate_failed(rows: list[dict[str, Any]]) -> None:
    """Rows MicroPython could not build: RockNet's extrapolation from the smallest measured N
    (compute x N0 / N, memory scaled by the largest slice's features)."""
    measured = [r for r in rows if not r["extrapolated"]]
    for row in rows:
        if not row["extrapolated"]:
            continue
        if not measured:
            raise RuntimeError(f"no N could be measured in MicroPython: {row['measure_error']}")
        ref = min(measured, key=lambda r: r["nodes"])
        k = ref["nodes"] / row["nodes"]
        f = row["features_per_node_max"] / ref["features_per_node_max"]
        row["memory"] = {"heap_bytes": int(ref["memory"]["heap_bytes"] * f),
                         "board_bytes": int(ref["memory"]["board_bytes"] * f), "node": None,
                         "from_nodes": ref["nodes"]}
        c = ref["compute"]
        row["compute"] = {"compute_ms": c["compute_ms"] * k, "features_ms": c["features_ms"] * k,
                          "head_ms": c["head_ms"] * k, "node": None, "from_nodes": ref["nodes"]}


def _central(rows: list[dict[str, Any]], n0: int, current: Any,
             budget: int) -> dict[str, Any]:
    """RockNet's central device, extrapolated from the smallest feasible N: compute (and its
    CPU energy) x N0, no radio; memory = that N's board bytes scaled to all features."""
    ref = next(r for r in rows if r["nodes"] == n0)
    lat, en = _cost(ref["board_compute"]["compute_ms"] * n0, None, current, "board")
    hlat, hen = _cost(ref["compute"]["compute_ms"] * n0, None, current, "host")
    board = int(ref["memory"]["board_bytes"] * ref["features"] / ref["features_per_node_max"])
    return {"nodes": 1, "extrapolated": True, "from_nodes": n0,
            "memory": {"board_bytes": board}, "latency": lat, "energy": en,
            "host": {"latency_ms": hlat["latency_ms"], "energy_mj": hen["energy_mj"]},
            "fits_board": board <= budget}


def _pct(base: float, value: float) -> float:
    return 100.0 * (1.0 - value / base) if base else math.nan


def compute_factor(c_base: float, r_base: float, c_to: float, r_to: float,
                   pct: float) -> float | None:
    """The factor K on the compute parts at which cost K c + r falls by ``pct`` % from base
    to target: (1 - p)(K c_b + r_b) = K c_t + r_t. None if no positive K reaches it."""
    keep = 1.0 - pct / 100.0
    den = c_to - keep * c_base
    if den == 0:
        return None
    k = (keep * r_base - r_to) / den
    return k if k > 0 else None


def _reduction(base: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    out = {"from_nodes": base["nodes"], "to_nodes": target["nodes"],
           "base_extrapolated": bool(base.get("extrapolated")),
           "base_fits_board": bool(base["fits_board"]),
           "memory_pct": _pct(base["memory"]["board_bytes"], target["memory"]["board_bytes"]),
           "latency_pct": _pct(base["latency"]["latency_ms"], target["latency"]["latency_ms"]),
           "energy_pct": _pct(base["energy"]["energy_mj"], target["energy"]["energy_mj"])}
    # how much slower the compute (a board instead of this host) would have to be for the
    # radio round to stop dominating: break-even (0 %) and RockNet's figures
    lb, lt, eb, et = base["latency"], target["latency"], base["energy"], target["energy"]
    out["compute_factor_needed"] = {
        "latency": {f"{p:g}": compute_factor(lb["compute_ms"], lb["round_ms"],
                                             lt["compute_ms"], lt["round_ms"], p)
                    for p in (0.0, float(ROCKNET_HEADLINE["latency_pct"]))},
        "energy": {f"{p:g}": compute_factor(eb["compute_mj"], eb["radio_mj"],
                                            et["compute_mj"], et["radio_mj"], p)
                   for p in (0.0, float(ROCKNET_HEADLINE["energy_pct"]))},
    }
    return out


def reductions(result: dict[str, Any]) -> dict[str, Any]:
    """Per-node memory, latency and energy down X % to N = 20 (else the largest N) from
    N = 1 (measured, or extrapolated when it could not be built), from the smallest N that
    fits the board, and from the RockNet-style extrapolated central device."""
    rows = result["rows"]
    by_n = {r["nodes"]: r for r in rows}
    to = TARGET_NODES if TARGET_NODES in by_n else max(by_n)
    target = by_n[to]
    out: dict[str, Any] = {"to_nodes": to}
    smallest = min(by_n)
    if smallest < to:
        out["from_smallest_n"] = _reduction(by_n[smallest], target)
    n0 = result["smallest_feasible_nodes"]
    if n0 is not None and n0 < to:
        out["from_smallest_feasible"] = _reduction(by_n[n0], target)
    if result["extrapolated_central"] is not None:
        out["from_extrapolated_central"] = _reduction(result["extrapolated_central"], target)
    return out


# ----- output -----


def _down(pct: float) -> str:
    """A reduction in percent as a signed change: 93 -> '-93%', -40 -> '+40%'."""
    return f"{-pct:+.0f}%"


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    b = result["board"]
    t = Table(title=f"rocknet bench scaling: {result['dataset']} ({result['features']} features, "
                    f"{result['optimizer']}), board {b['name']} (budget {b['heap_budget']} B)")
    for col in ("N", "nodes measured", "F/node", "heap B (wasm)", "board B", "fits",
                "compute ms (board)", "round ms (board)", "latency ms (board)",
                "energy mJ (board)", "compute ms (host)", "note"):
        t.add_column(col, justify="right")
    for r in result["rows"]:
        note = "extrapolated" if r["extrapolated"] else ("subset" if r["subset"] else "")
        t.add_row(str(r["nodes"]), ",".join(map(str, r.get("measured_nodes", []))) or "-",
                  str(r["features_per_node_max"]), str(r["memory"]["heap_bytes"]),
                  str(r["memory"]["board_bytes"]), "yes" if r["fits_board"] else "NO",
                  f"{r['latency']['compute_ms']:.1f}", f"{r['latency']['round_ms']:.1f}",
                  f"{r['latency']['latency_ms']:.1f}", f"{r['energy']['energy_mj']:.3f}",
                  f"{r['host']['compute_ms']:.2f}", note)
    c = result["extrapolated_central"]
    if c:
        t.add_row("1*", "-", str(result["features"]), "-", str(c["memory"]["board_bytes"]),
                  "yes" if c["fits_board"] else "NO", f"{c['latency']['compute_ms']:.1f}",
                  "0.0", f"{c['latency']['latency_ms']:.1f}", f"{c['energy']['energy_mj']:.3f}",
                  "-", f"RockNet-style, from N={c['from_nodes']}")
    console.print(t)
    for r in result["rows"]:
        if not r["fits_board"]:
            console.print(f"N={r['nodes']}: {r['memory']['board_bytes']} B per node does not "
                          f"fit {b['name']} ({b['heap_budget']} B); measured in MicroPython "
                          "(its heap is larger)" + (" [extrapolated]" if r["extrapolated"]
                                                     else ""))
    red = result["reduction"]
    h = result["rocknet_headline"]
    for key, label in (("from_smallest_n", "from the smallest N"),
                       ("from_smallest_feasible", "from the smallest N that fits"),
                       ("from_extrapolated_central", "from the extrapolated central device")):
        if key in red:
            x = red[key]
            console.print(f"per node, N={x['from_nodes']} -> N={x['to_nodes']} ({label}): memory "
                          f"{_down(x['memory_pct'])}, latency {_down(x['latency_pct'])}, "
                          f"energy {_down(x['energy_pct'])}")
    console.print(f"RockNet (1 -> 20 devices): memory -{h['memory_pct']:.0f}%, latency "
                  f"-{h['latency_pct']:.0f}%, energy -{h['energy_pct']:.0f}%")
    console.print(f"latency and energy: {result['clock']['latency_energy']}; host compute: "
                  f"WebAssembly MicroPython x {result['cpu_scale']}, "
                  f"{result['series_per_node']} series per measured node; round: simulated "
                  f"({result['radio_profile']}, loss {result['loss']})")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    rows = result["rows"]
    ns = [r["nodes"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    series = [
        ("per-node memory (KB, float32 board)", [r["memory"]["board_bytes"] / 1000 for r in rows],
         None, None),
        ("latency per sample (ms, board clock)", [r["latency"]["latency_ms"] for r in rows],
         [r["latency"]["compute_ms"] for r in rows], "compute (board clock model)"),
        ("energy per node per sample (mJ, board clock)", [r["energy"]["energy_mj"] for r in rows],
         [r["energy"]["compute_mj"] for r in rows], "compute part"),
    ]
    c = result["extrapolated_central"]
    central = ([c["memory"]["board_bytes"] / 1000, c["latency"]["latency_ms"],
                c["energy"]["energy_mj"]] if c else [None] * 3)
    for k, (ax, (title, ys, parts, plabel)) in enumerate(zip(axes, series, strict=True)):
        ax.plot(ns, ys, "-", color="C0", label="total (board clock)" if parts else "measured")
        for n, yv, r in zip(ns, ys, rows, strict=True):
            style = dict(marker="x" if r["extrapolated"] else "o", color="C0", ms=7,
                         mfc="C0" if r["fits_board"] else "white")
            ax.plot([n], [yv], **style)
        if parts:
            ax.plot(ns, parts, "--", color="C1", marker=".", label=plabel)
            radio = [(r["latency"]["round_ms"] if k == 1 else r["energy"]["radio_mj"])
                     for r in rows]
            rn = [(n, v) for n, v in zip(ns, radio, strict=True) if v > 0]
            if rn:
                ax.plot(*zip(*rn, strict=True), ":", color="C2", marker=".",
                        label="radio round (simulated, board clock)")
            host = [r["host"]["latency_ms"] if k == 1 else r["host"]["energy_mj"]
                    for r in rows]
            ax.plot(ns, host, "-.", color="grey", marker=".", lw=0.8,
                    label="total, host clock (WebAssembly)")
        if central[k] is not None:
            ax.plot([1], [central[k]], marker="*", color="C3", ms=11, ls="none",
                    label=f"central, extrapolated from N={c['from_nodes']}")
        if k == 0:
            ax.axhline(result["board"]["heap_budget"] / 1000, color="grey", ls=":",
                       label=f"{result['board']['name']} budget")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("nodes N")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    red = result["reduction"]
    h = result["rocknet_headline"]
    key = next((k for k in ("from_smallest_n", "from_smallest_feasible") if k in red), None)
    text = ""
    if key:
        x = red[key]
        text = (f"N={x['from_nodes']}->{x['to_nodes']}: memory {_down(x['memory_pct'])}, "
                f"latency {_down(x['latency_pct'])}, energy {_down(x['energy_pct'])}\n")
    fig.suptitle(f"{result['dataset']}: per-node cost vs N on {result['clock']['latency_energy']}"
                 f" (memory: MicroPython heap, float32 board; open marker: does not fit the "
                 f"board; x: extrapolated).\n{text}RockNet 1->20: -{h['memory_pct']:.0f}% / "
                 f"-{h['latency_pct']:.0f}% / -{h['energy_pct']:.0f}%", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
