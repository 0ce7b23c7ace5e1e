"""`rocknet bench accuracy`: test accuracy of the distributed head, in one run next to

- aeon's default MiniRocket pipeline (10,000 float features, StandardScaler(with_mean=False),
  RidgeClassifierCV(alphas=logspace(-3, 3, 10))), ``random_state`` = seed;
- RockNet's own recipe: plan variant "rocknet" (device variant, first-sample biases), PPV
  features without standardisation, Adam with 8-bit moments, batch 128, N-fold bias
  (`reference_head.rocknet_recipe`), for ``--rocknet-passes`` passes and at our pass count.

Ours: plan variant "minirocket" (seed), int8 input, N node heads trained by the device code
in the chosen runtime through `train.train` (partial logits summed in memory), with the
default head options of `head_plan` (ridge: dual where the board's budget allows, else SGD).
``--runtime twin`` uses the numpy twin instead (same model, faster). Means are over datasets
of the per-dataset means over seeds. Heap: gc.mem_alloc() in MicroPython after building a
node's Slice and Head and running one sample through them, max over nodes; floats are
float64 there, so the board figure subtracts 4 bytes per float element of the head's arrays.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .. import data
from ..planning import features as plan
from ..planning import head as head_plan
from ..reference import head as rh
from ..reference import minirocket as reference
from ..reference.baseline import reference_accuracy
from ..runtimes import open_runtime
from ..sim import in_memory as train

MODES = ("ridge", "gradient")
ALL = list(data.BUNDLED) + ["FaceAll"]

HEAP_CODE = """
from rocknet.minirocket import Slice
from rocknet.head import Head
from rocknet.logits import pack as _pack
from rocknet.xp import np
_s = Slice(_p["features"])
_h = Head(_p)
del _p
_c = np.zeros(_s.n_features, dtype=np.uint16)
_s.transform(_series, _c)
_row = _h.partial_logits(_c)
_data = _pack(_row, _h.wire, _h.logit_scale)
if _h.solver == "dual":
    from rocknet import head_dual
    head_dual.store(_h, _c, 0)
else:
    _h.apply(_row, 0)
    _h.step()
del _row, _data, _series
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("accuracy", help="head accuracy vs aeon MiniRocket+RidgeCV and RockNet")
    p.add_argument("--dataset", action="append", default=[],
                   help="dataset name or path (repeat for several)")
    p.add_argument("--all", action="store_true",
                   help="every bundled univariate set and FaceAll (needs ROCKNET_DATA_DIR)")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--mode", choices=(*MODES, "both"), default="both")
    p.add_argument("--optimizer", choices=head_plan.OPTIMIZERS, default="sgd")
    p.add_argument("--runtime", choices=("cpython", "micropython", "twin"), default="cpython")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (plan and aeon)")
    p.add_argument("--features", type=int, default=10_000)
    p.add_argument("--wire", choices=(*head_plan.WIRES, "both"), default="both",
                   help="partial logits on the air; both: int16 measured next to float32")
    p.add_argument("--passes", type=int, default=None, help="override the mode's passes")
    p.add_argument("--rocknet-passes", type=int, default=300)
    p.add_argument("--eval-every", type=int, default=None,
                   help="test-set evaluation every K passes (default 1; micropython 10)")
    p.add_argument("--board", default="adafruit_feather_nrf52840",
                   help="board whose heap budget decides ridge's dual solve")
    p.add_argument("--heap", action="store_true",
                   help="measure heap per node in MicroPython (max over nodes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def rocknet_recipe(ds: data.Dataset, nodes: int, seed: int, n_features: int, passes: int,
                   at: int) -> tuple[float, float]:
    """(accuracy after ``passes``, accuracy after ``at`` passes) of RockNet's recipe."""
    pl = plan.fit(ds, nodes, variant="rocknet", n_features=n_features, seed=seed)
    Qtr, Qte = pl.quantizer(ds.X_train), pl.quantizer(ds.X_test)
    Ftr, Fte = [], []
    for i in range(nodes):
        feats = pl.node_features(i)
        den = reference.slice_denominators(feats).astype(np.float32)
        Ftr.append(reference.slice_counts(Qtr, feats) / den)
        Fte.append(reference.slice_counts(Qte, feats) / den)
    curve = rh.rocknet_recipe(Ftr, ds.y_train, Fte, ds.y_test, pl.n_classes, passes,
                              seed=1, eval_at=(at, passes))
    return curve[passes], curve[at]


def twin_train(pl: plan.Plan, secs: list[dict[str, Any]], codes_tr: list[np.ndarray],
               y: np.ndarray, codes_te: list[np.ndarray], y_te: np.ndarray, seed: int,
               passes: int | None) -> dict[str, Any]:
    """The numpy twin's run with the device driver's order and evaluation points."""
    head = secs[0]
    tw = rh.Twin([pl.node_features(i) for i in range(pl.n_nodes)], pl.n_classes, head,
                 scaling=[(np.array(s["mean"]), np.array(s["std"])) for s in secs])
    U, Ut = np.hstack(codes_tr), np.hstack(codes_te)
    n = len(y)
    curve = []
    if head["solver"] == "dual":
        tw.solve_dual(U, y, pl.n_features)
        curve.append((1, float(np.mean(tw.predict(Ut) == y_te))))
        used, sent = 1, 2 * n * (n + 1)
    else:
        rng = np.random.default_rng(seed)
        used = passes or head["passes"]
        for p in range(1, used + 1):
            tw.train_epoch(U, y, rng.permutation(n))
            curve.append((p, float(np.mean(tw.predict(Ut) == y_te))))
        sent = used * n * head_plan.logit_bytes(head["wire"]) * pl.n_classes
    acc = curve[-1][1]
    return {"accuracy": acc, "curve": curve, "passes": used, "samples_broadcast": used * n,
            "passes_to_final": next(p for p, a in curve if a >= acc), "bytes_per_node": sent,
            "lambda": tw.lam, "saturated": tw.saturated}


def run_mode(args: argparse.Namespace, pl: plan.Plan, ds: data.Dataset, mode: str,
             wire: str, counts: tuple[list[np.ndarray], list[np.ndarray]],
             codes: tuple[list[np.ndarray], list[np.ndarray]], seed: int,
             budget: int) -> dict[str, Any]:
    secs = head_plan.sections(pl, ds.X_train, mode=mode, optimizer=args.optimizer, wire=wire,
                              budget=budget, train_codes=codes[0], passes=args.passes)
    t0 = time.perf_counter()
    if args.runtime == "twin":
        out = twin_train(pl, secs, codes[0], ds.y_train, codes[1], ds.y_test, seed,
                         args.passes)
    else:
        every = args.eval_every or (10 if args.runtime == "micropython" else 1)
        r = train.train(head_plan.node_plans(pl, secs), counts[0], ds.y_train, counts[1],
                        ds.y_test, runtime=args.runtime, seed=seed, eval_every=every)
        out = {"accuracy": r.accuracy, "curve": r.curve, "passes": r.passes,
               "samples_broadcast": r.samples_broadcast, "passes_to_final": r.passes_to_final,
               "bytes_per_node": r.bytes_per_node, "lambda": r.lam, "saturated": r.saturated}
    out["samples_to_final"] = out["passes_to_final"] * len(ds.y_train)
    out["solver"] = secs[0]["solver"]
    out["dual_max"] = secs[0]["dual_max"]
    out["seconds"] = time.perf_counter() - t0
    return out


def heap_per_node(pl: plan.Plan, secs: list[dict[str, Any]], series: np.ndarray
                  ) -> dict[str, Any]:
    """Max over nodes of the MicroPython heap held by Slice + Head (and the board figure)."""
    best: dict[str, Any] = {"heap_bytes_per_node": 0}
    for i, p in enumerate(head_plan.node_plans(pl, secs)):
        # a fresh interpreter per node: in a long-lived one the conservative collector may
        # still see the previous node's objects at the baseline and free them later
        mpy = open_runtime("micropython")
        try:
            # the head modules a mode may load are code, not the node's state
            mpy.exec("import gc\nimport rocknet.minirocket, rocknet.head, rocknet.head_moments, "
                     "rocknet.head_dual")
            before = mpy.mem_alloc()
            mpy.set(_p=p, _series=series.astype(np.int8).tobytes())
            mpy.exec(HEAP_CODE)
            held = mpy.mem_alloc() - before
            b8, b4 = mpy.eval("_h.state_bytes(8)"), mpy.eval("_h.state_bytes(4)")
        finally:
            mpy.close()
        board = held - (sum(b8.values()) - sum(b4.values()))
        if held > best["heap_bytes_per_node"]:
            best = {"heap_bytes_per_node": int(held), "board_bytes_per_node": int(board),
                    "node": i, "head_arrays_board": b4}
    return best


def run(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small matrices: BLAS threads only contend
        result = measure(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    show(result)
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from .. import boards

    names = list(args.dataset) + (ALL if args.all or not args.dataset else [])
    modes = MODES if args.mode == "both" else (args.mode,)
    wires = head_plan.WIRES if args.wire == "both" else (args.wire,)
    budget = boards.load(args.board).heap_budget
    per: dict[str, Any] = {}
    heap: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        ds = data.load(name, args.data_dir)
        runs = []
        for seed in range(args.seeds):
            pl = plan.fit(ds, args.nodes, n_features=args.features, seed=seed)
            Qtr, Qte = pl.quantizer(ds.X_train), pl.quantizer(ds.X_test)
            counts = ([reference.slice_counts(Qtr, pl.node_features(i))
                       for i in range(pl.n_nodes)],
                      [reference.slice_counts(Qte, pl.node_features(i))
                       for i in range(pl.n_nodes)])
            dens = [rh.node_layout(pl.node_features(i))[0] for i in range(pl.n_nodes)]
            codes = ([rh.codes(c, d) for c, d in zip(counts[0], dens, strict=True)],
                     [rh.codes(c, d) for c, d in zip(counts[1], dens, strict=True)])
            run_: dict[str, Any] = {"seed": seed}
            for mode in modes:
                for wire in wires:
                    r = run_mode(args, pl, ds, mode, wire, counts, codes, seed, budget)
                    run_[mode if wire == "float32" else f"{mode}_int16"] = r
            ours = max((run_[m]["passes"] for m in modes), default=30)
            run_["reference_accuracy"] = reference_accuracy(ds, seed, args.features)
            final, equal = rocknet_recipe(ds, args.nodes, seed, args.features,
                                          args.rocknet_passes, min(ours, args.rocknet_passes))
            run_["rocknet_recipe_accuracy"] = final
            run_["rocknet_recipe_at_our_passes"] = {"passes": ours, "accuracy": equal}
            runs.append(run_)
            if args.heap and seed == 0:
                for mode in modes:
                    secs = head_plan.sections(pl, ds.X_train, mode=mode,
                                              optimizer=args.optimizer, budget=budget,
                                              train_codes=codes[0])
                    heap[f"{name}/{mode}"] = heap_per_node(pl, secs, Qtr[0])
        per[name] = {"n_train": len(ds.y_train), "runs": runs, "mean": _means(runs)}
    summary = {k: float(np.mean([d["mean"][k] for d in per.values()]))
               for k in next(iter(per.values()))["mean"]}
    result: dict[str, Any] = {
        "nodes": args.nodes, "features": args.features, "runtime": args.runtime,
        "optimizer": args.optimizer, "seeds": args.seeds, "board": args.board,
        "rocknet_passes": args.rocknet_passes,
        "accuracy": {m: summary[m] for m in summary if m.split("_")[0] in MODES
                     and "passes" not in m and "samples" not in m},
        "reference_accuracy": summary["reference"],
        "rocknet_recipe_accuracy": summary["rocknet_recipe"],
        "rocknet_recipe_at_our_passes": summary["rocknet_recipe_at_our_passes"],
        "passes": {m: summary[f"{m}_passes"] for m in modes},
        "passes_to_final": {m: summary[f"{m}_passes_to_final"] for m in modes},
        "samples_broadcast": {m: summary[f"{m}_samples_broadcast"] for m in modes},
        "samples_to_final": {m: summary[f"{m}_samples_to_final"] for m in modes},
        "datasets": per,
    }
    if heap:
        result["heap_bytes_per_node"] = max(h["heap_bytes_per_node"] for h in heap.values())
        result["heap"] = heap
    return result


def _means(runs: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for r in runs:
        for key, v in r.items():
            if isinstance(v, dict) and "accuracy" in v and "passes" in v and "curve" in v:
                out.setdefault(key, []).append(v["accuracy"])
                for f in ("passes", "passes_to_final", "samples_broadcast", "samples_to_final"):
                    out.setdefault(f"{key}_{f}", []).append(v[f])
        out.setdefault("reference", []).append(r["reference_accuracy"])
        out.setdefault("rocknet_recipe", []).append(r["rocknet_recipe_accuracy"])
        out.setdefault("rocknet_recipe_at_our_passes", []).append(
            r["rocknet_recipe_at_our_passes"]["accuracy"])
    return {k: float(np.mean(v)) for k, v in out.items()}


def show(result: dict[str, Any]) -> None:
    modes = list(result["passes"])
    t = Table(title=f"accuracy: {result['nodes']} nodes, {result['features']} features, "
                    f"{result['runtime']}, mean of {result['seeds']} seeds")
    t.add_column("dataset")
    for m in modes:
        t.add_column(m, justify="right")
        if f"{m}_int16" in result["accuracy"]:
            t.add_column(f"{m} int16", justify="right")
    t.add_column("aeon ref", justify="right")
    t.add_column(f"RockNet ({result['rocknet_passes']})", justify="right")
    for m in modes:
        t.add_column(f"{m} passes (to final)", justify="right")

    def row(name: str, mean: dict[str, float]) -> list[str]:
        cells = [name]
        for m in modes:
            cells.append(f"{100 * mean[m]:.2f}")
            if f"{m}_int16" in mean:
                cells.append(f"{100 * mean[f'{m}_int16']:.2f}")
        cells += [f"{100 * mean['reference']:.2f}", f"{100 * mean['rocknet_recipe']:.2f}"]
        for m in modes:
            cells.append(f"{mean[f'{m}_passes']:.0f} ({mean[f'{m}_passes_to_final']:.1f})")
        return cells

    for name, d in result["datasets"].items():
        t.add_row(*row(name, d["mean"]))
    mean = {**result["accuracy"], "reference": result["reference_accuracy"],
            "rocknet_recipe": result["rocknet_recipe_accuracy"]}
    for m in modes:
        mean[f"{m}_passes"] = result["passes"][m]
        mean[f"{m}_passes_to_final"] = result["passes_to_final"][m]
    t.add_row(*row("mean", mean))
    Console().print(t)
    if "heap" in result:
        h = Table(title="MicroPython heap per node (max over nodes)")
        for c in ("dataset/mode", "measured (float64)", "board (float32)"):
            h.add_column(c, justify="right")
        for k, v in result["heap"].items():
            h.add_row(k, str(v["heap_bytes_per_node"]), str(v["board_bytes_per_node"]))
        Console().print(h)
