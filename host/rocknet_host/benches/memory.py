"""`rocknet bench memory`: a training node's heap, measured where the board's code runs.

Every node is built as ``rocknet.run()`` builds it (`rocknet.board.setup` from the plan, key
and data files ``rocknet plan`` writes for boards) inside its own MicroPython 1.29 + ulab
(WebAssembly) under the board's runtime profile, with the package loaded as the board loads
it (``.mpy`` for MicroPython profiles, ``.py`` for CircuitPython ones, or ``--code``). The
fleet loop (`simulate.Simulation`, `sim.fleet.MpyProgram`) then runs ``--rounds`` training
rounds on the simulated radio: past the round where the node's ring of undecided samples (the
plan's ``run.pending``) and its decision history are full (the warm-up: 5 x the relay window
+ 4 rounds, or more for a larger ring), and beyond.

Heap checkpoints (`heap.py`: a collection, then ``gc.mem_alloc()``) are taken before rocknet is
imported (``boot``: the interpreter, the simulator's virtual radio and clock, which are C on a
board; the clock model's meter, installed after ``built`` and measured by a ``harness``
checkpoint, counts with it), after the imports (``code``), once the node is built
(``built``) and at every round boundary. All figures are board-equivalent bytes (ulab float
arrays at the board's float width, Python floats unboxed on CircuitPython) above the ``boot``
baseline, per node:

- ``code_bytes``: the modules ``rocknet.run()`` imports, its set-up code included (which
  `rocknet.start` drops before training: what a training node keeps is `rocknet bench
  features`' ``code_heap_bytes``);
- ``own_data_bytes``: what the node's own samples hold (a checkpoint with them dropped at the
  end, against the last round's);
- ``state_bytes``: the last round's heap less ``code_bytes`` and the own data: the node,
  head, slice, link and ring, understated by the set-up code dropped since the imports;
- ``peak_heap_bytes``: the largest heap after a collection at any checkpoint, code included;
  ``peak_need_bytes`` adds the largest block allocated between two checkpoints on top of the
  heap at the first (`heap.py`'s need), which is what ``fits`` compares with the budget;
- ``largest_alloc_bytes``: the largest single block allocated between checkpoints;
- ``growth_bytes_per_round``: least-squares slope of the heap after each round past the
  warm-up; ``steady``: whether those heaps are all identical;
- ``false_retained_bytes``: of the last round's heap, what only data that looks like a pointer
  kept alive (`MpyProgram.false_retained`): garbage the peak and the growth include. Its size
  depends on the heap's addresses, so it is the WebAssembly build's, not a board's, and it
  differs from run to run, as the garbage it keeps does.
- ``estimate_bytes``: what the planner (`planning.planner.node_bytes`) says the node needs,
  code held as this bench loads it and its ring as its plan makes it (``run.keep``,
  ``run.pending``): the figure
  `rocknet plan --fleet` compares with the board's budget, calibrated against this bench
  (tools/calibrate_memory.py);
- ``keep``: what each node's ring keeps of a sample awaiting its decision (``run.keep``,
  from ``--keep``: codes, series, or auto, series where codes exceed the board's budget);
- ``pending``: each node's ring, undecided samples (``run.pending``, from ``--pending``: N,
  or auto, 2 w + 4, w + 4 where the estimate with 2 w + 4 exceeds the board's budget);
  ``ring_capacity`` the largest.

``--measure`` runs only some nodes in MicroPython (the measured ones, ``measured_nodes``); the
rest of the fleet runs the same loop in CPython threads (`sim.fleet.ThreadProgram`). Boards
meet only on the simulated radio, so a node's heap does not depend on where its peers run;
a 20-node fleet of 20 MicroPython processes is more than a 2-core host finishes in an hour.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import boards
from ..cli.common import (
    add_dataset_args,
    add_keep_arg,
    add_pending_arg,
    add_plan_args,
    fit_plan,
    load_dataset,
)
from ..errors import UserError
from ..planning import capacity as planner
from ..planning.features import Plan
from ..runtimes import heap, profiles
from ..runtimes.micropython import RuntimeMissing
from ..sim.fleet import MpyProgram

RUNTIME = "MicroPython 1.29 + ulab 6.12 (WebAssembly)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("memory", help="a training node's heap in MicroPython, per node "
                                      "(--measure: some nodes, the rest in CPython)")
    add_dataset_args(p, default="GunPoint")
    add_plan_args(p)
    p.add_argument("--board", choices=boards.names(), default="adafruit_feather_nrf52840",
                   help="board: runtime profile, float width and heap budget "
                        "(default adafruit_feather_nrf52840)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds run (default: past the warm-up, when the ring of undecided "
                        "samples and the decision history are full, and past the first "
                        "checkpoint, plus 8)")
    p.add_argument("--mode", choices=("gradient", "ridge"), default="gradient",
                   help="head training (default gradient)")
    add_keep_arg(p)
    add_pending_arg(p)
    p.add_argument("--code", choices=("py", "mpy"), default=None,
                   help="load rocknet from .py or .mpy files (default: as the board's profile "
                        "does: .mpy on MicroPython, .py on CircuitPython)")
    p.add_argument("--measure", default=None, metavar="NODES",
                   help="the nodes run in MicroPython and measured, a comma list (e.g. 0,5) "
                        "or 'heaviest': the first node the plan gives the most features and "
                        "node 0 (the most own samples); the others run the same loop in "
                        "CPython (default: every node)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def measured_nodes(spec: str | None, pl: Plan) -> list[int]:
    """The nodes ``--measure`` names (see its help)."""
    n = pl.n_nodes
    if spec is None:
        return list(range(n))
    if spec.strip() == "heaviest":
        feats = [len(pl.node_features(i)["biases"]) for i in range(n)]
        return sorted({0, feats.index(max(feats))})
    try:
        nodes = sorted({int(x) for x in spec.split(",")})
    except ValueError:
        raise UserError(f"--measure {spec}: give node numbers separated by commas (e.g. 0,3) "
                        "or 'heaviest'") from None
    bad = [i for i in nodes if not 0 <= i < n]
    if bad:
        raise UserError(f"--measure {spec}: no node {', '.join(map(str, bad))}; the fleet's "
                        f"nodes are 0..{n - 1}")
    return nodes


def _slope(ys: list[int]) -> float | None:
    n = len(ys)
    if n < 2:
        return None
    mx = (n - 1) / 2
    my = sum(ys) / n
    den = sum((x - mx) ** 2 for x in range(n))
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / den


def node_figures(trace: list[tuple[str, dict[str, int]]], data: dict[str, int] | None,
                 warmup: int, report: dict[str, Any]) -> dict[str, Any]:
    """One node's figures from its checkpoints (`MpyProgram.trace`), its data's heap and its
    tracker report (see the module docstring)."""
    at = {label: f["board"] for label, f in trace}
    base = at.get("boot", 0)
    if "harness" in at and "built" in at:  # the simulator's clock meter (`sim.fleet`)
        base += at["harness"] - at["built"]
    rounds = [(int(label[5:]), f["board"] - base) for label, f in trace
              if label.startswith("round")]
    steady = [b for r, b in rounds if r >= warmup]
    need, prev, prev_big = 0, 0, 0
    for _label, f in trace:  # heap.py's need: the block allocated in between on top
        need = max(need, f["board"] - base)
        if f["big"] > prev_big and prev:
            need = max(need, prev + f["big"])
        prev, prev_big = f["board"] - base, f["big"]
    code = at["code"] - base if "code" in at else None
    last = rounds[-1][1] if rounds else None
    own = data["board"] if data else None
    state = None if last is None or code is None or own is None else last - code - own
    return {
        "base_bytes": base, "code_bytes": code,
        "built_bytes": at["built"] - base if "built" in at else None,
        "state_bytes": state, "own_data_bytes": own,
        "peak_heap_bytes": max((f["board"] - base for _, f in trace), default=None),
        "peak_need_bytes": need,
        "largest_alloc_bytes": report.get("largest_alloc_bytes"),
        "largest_alloc_label": report.get("largest_alloc_label"),
        "growth_bytes_per_round": _slope(steady),
        "steady": len(steady) >= 2 and len(set(steady)) == 1,
        "rounds_measured": len(rounds),
        "round_heap_bytes": [b for _, b in rounds],
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from ..sim.simulate import Config, Simulation

    board = boards.load(args.board)
    prof = profiles.get(board.profile)
    radio = "esp32-legacy" if prof.radio == "bluetooth" else "nrf52840-ext"
    ds = load_dataset(args)
    pl = fit_plan(args, ds)
    measured = measured_nodes(args.measure, pl)
    window = 4  # until the plan says (below)
    cfg = Config(mode=args.mode, epochs=2, radio=radio, seed=args.seed, runtime="micropython",
                 board=args.board, enforce_heap=False, code_format=args.code or prof.code_format,
                 keep=args.keep, pending=args.pending,
                 mpy_nodes=None if len(measured) == pl.n_nodes else set(measured))
    try:
        sim = Simulation(pl, ds, cfg)
    except (ValueError, RuntimeMissing) as exc:
        raise UserError(str(exc)) from None
    with sim:
        window = int(sim.node_plans[0]["run"].get("window", window))
        # the warm-up: the node's ring of undecided samples (the plan's ``run.pending``, by
        # default 2w + 4 slots, `rocknet.node`) is full, and so is the decision history it
        # keeps (4w samples behind the last applied one, which trails the round by about w:
        # decided at s + 2, relayed back by s + 4)
        capacity = max(int(p["run"].get("pending", 2 * window + 4)) for p in sim.node_plans)
        warmup = max(5 * window + 4, capacity + 1)
        # by default past the first checkpoint too (every ``checkpoint_every`` applied
        # samples; a sample is applied about 2 w + 4 rounds after its own): its write is a
        # node's largest transient
        every = int(sim.node_plans[0]["run"].get("checkpoint_every") or 0)
        rounds = (args.rounds if args.rounds is not None
                  else max(warmup, every + capacity) + 8)
        if rounds < warmup + 2:
            raise UserError(f"--rounds {rounds} ends before the growth per round can be "
                            f"measured: the warm-up is {warmup} rounds; use at least "
                            f"{warmup + 2}")
        if rounds >= sim.sched.length:
            raise UserError(f"--rounds {rounds}: the schedule has {sim.sched.length} rounds")
        # the planner's estimate of each node's peak need, code held as this bench loads it
        geo = planner.plan_shape(pl.length, pl.n_classes, pl.n_features, pl.variant,
                                  pl.n_nodes, len(ds.X_test),
                                  sim.node_plans[0]["run"].get("profile", "extended"),
                                  sim.node_plans[0]["head"]["wire"])
        code_format = args.code or prof.code_format
        code_from = "files" if code_format == "mpy" else "py"
        fl = sim.fleet
        fl.stop_round = rounds
        fl.run((rounds + 16) * sim.deadline_s * 2 + 30)
        nodes = []
        for nd in (fl.nodes[i] for i in measured):
            prog = nd.program if isinstance(nd.program, MpyProgram) else None
            trace = prog.trace if prog is not None else []
            data = prog.data_heap() if prog is not None and nd.finished else None
            false = prog.false_retained() if prog is not None and nd.finished else None
            rep = prog.heap_report() if prog is not None else (nd.heap or {})
            fig = node_figures(trace, data, warmup, rep)
            run = sim.node_plans[nd.id]["run"]
            keep, pending = run["keep"], int(run["pending"])
            fig = {"node": nd.id, "keep": keep, "pending": pending, **fig, "error": nd.error,
                   "error_type": nd.error_type,
                   # the last sample the node applied: the fleet decided up to there
                   "applied_through": nd.st[1] if nd.st else None,
                   "false_retained_bytes": false["board"] if false else None,
                   "estimate_bytes": planner.node_bytes(
                       board, dataclasses.replace(geo, keep=keep, pending=pending),
                       len(pl.node_feature_index(nd.id)),
                       len(pl.node_features(nd.id)["centre"]), code_from)}
            fig["fits"] = (nd.error is None and fig["peak_need_bytes"] is not None
                           and fig["peak_need_bytes"] <= board.heap_budget)
            nodes.append(fig)

    def top(key: str) -> Any:
        vals = [n[key] for n in nodes if n[key] is not None]
        return max(vals) if vals else None

    return {
        "dataset": ds.name, "nodes": pl.n_nodes, "length": pl.length,
        "features": pl.n_features,
        "variant": pl.variant, "mode": args.mode, "board": args.board,
        "wire": sim.node_plans[0]["head"]["wire"], "heap_budget_bytes": board.heap_budget,
        "keep": [p["run"]["keep"] for p in sim.node_plans],
        "pending": [p["run"]["pending"] for p in sim.node_plans],
        "measured_nodes": measured,
        "others": "the same loop in CPython threads" if len(measured) < pl.n_nodes else None,
        "runtime": RUNTIME, "profile": prof.name, "code_format": code_format,
        "loader": f"rocknet from .{code_format} files in the board's file system",
        "float_bits": board.float_bits,
        "bytes": "board-equivalent (" + heap.board_bytes_note(
            board.float_bits, prof.float_repr == "packed") + "), above the interpreter's "
            "baseline before rocknet is imported (base_bytes)",
        "rounds": rounds, "warmup_rounds": warmup, "ring_capacity": capacity,
        **{k: top(k) for k in ("peak_heap_bytes", "peak_need_bytes", "code_bytes",
                               "state_bytes", "own_data_bytes", "largest_alloc_bytes",
                               "growth_bytes_per_round", "base_bytes", "false_retained_bytes",
                               "estimate_bytes")},
        "steady": all(n["steady"] for n in nodes),
        "fits": all(n["fits"] for n in nodes),
        "per_node": nodes,
    }


def run(args: argparse.Namespace) -> int:
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    t = Table(title=f"memory: {result['dataset']}, {len(result['measured_nodes'])} of "
                    f"{result['nodes']} nodes measured on {result['board']} "
                    f"({result['profile']}, .{result['code_format']}, float"
                    f"{result['float_bits']}), {result['rounds']} rounds")
    cols = ("code", "state", "own_data", "peak_heap", "peak_need", "largest_alloc",
            "false_retained")
    t.add_column("node")
    for c in cols:
        t.add_column(f"{c.replace('_', ' ')} KB", justify="right")
    t.add_column("B/round", justify="right")
    t.add_column("fits")

    def kb(v: Any) -> str:
        return "-" if v is None else f"{v / 1024:.1f}"

    for n in result["per_node"]:
        g = n["growth_bytes_per_round"]
        t.add_row(str(n["node"]), *(kb(n[f"{c}_bytes"]) for c in cols),
                  "-" if g is None else f"{g:+.1f}", "yes" if n["fits"] else "NO")
    Console().print(t)
    keeps = sorted(set(result["keep"]))
    rings = sorted(set(result["pending"]))
    print(f"budget {result['heap_budget_bytes']:,} B; the nodes keep {' and '.join(keeps)} of "
          f"undecided samples, in rings of {' and '.join(map(str, rings))}; bytes: "
          f"{result['bytes']}")
    return 0
