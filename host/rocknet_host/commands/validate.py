"""`rocknet validate`: run every node's device slice on every series of a dataset in a runtime
and compare with the numpy reference; non-zero exit on any mismatch."""

from __future__ import annotations

import argparse
import json

import numpy as np
from rich.console import Console
from rich.progress import Progress

from ..runtime import RUNTIMES, open_runtime
from ..validate import validate_features
from . import validate_board
from .common import add_dataset_args, add_plan_args, at_least, fit_plan, load_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="cross-check device results against the reference")
    add_dataset_args(p, default="GunPoint")
    add_plan_args(p)
    p.add_argument("--runtime", choices=RUNTIMES, default="micropython")
    p.add_argument("--limit", type=at_least(0), default=0,
                   help="only the first K train and K test series (default: all)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    validate_board.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ds = load_dataset(args)
    pl = fit_plan(args, ds)
    if args.port:
        return validate_board.run(args, ds, pl)
    Xtr, Xte = ds.X_train, ds.X_test
    if args.limit:
        Xtr, Xte = Xtr[: args.limit], Xte[: args.limit]
    Q = pl.quantizer(np.vstack([Xtr, Xte]))
    rt = open_runtime(args.runtime)
    try:
        with Progress(disable=args.json, transient=True) as prog:
            task = prog.add_task(f"{args.runtime}: {ds.name}", total=len(Q) * pl.n_nodes)
            result = validate_features(pl, Q, args.runtime, rt,
                                       on_batch=lambda n: prog.advance(task, n))
    finally:
        rt.close()
    result["dataset"] = ds.name
    result["variant"] = pl.variant
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        ok = result["features_bitexact"]
        Console().print(
            f"{ds.name}: {result['series']} series x {result['nodes']} nodes on {args.runtime}: "
            + ("[green]features bit-exact[/]" if ok else
               f"[red]{result['mismatches']} mismatching counts[/]")
        )
    return 0 if result["features_bitexact"] else 1
