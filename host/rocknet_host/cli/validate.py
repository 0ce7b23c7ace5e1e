"""`rocknet validate`: run every node's device slice on every series of a dataset in a runtime
and compare with the numpy reference; non-zero exit on any mismatch."""

from __future__ import annotations

import argparse
import json

import numpy as np
from rich.console import Console
from rich.progress import Progress

from ..errors import UserError
from ..reference.validate import validate_features
from ..runtimes import RUNTIMES, open_runtime
from ..runtimes.profiles import PROFILES
from . import validate_board
from .common import add_dataset_args, add_plan_args, at_least, fit_plan, load_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="cross-check device results against the reference")
    add_dataset_args(p, default="GunPoint")
    add_plan_args(p)
    p.add_argument("--runtime", choices=RUNTIMES, default="micropython")
    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="with --runtime micropython: the board's module set and code format "
                        "(default: webassembly, the runtime as built)")
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
    if args.profile and args.runtime != "micropython":
        raise UserError(f"--profile {args.profile} needs --runtime micropython")
    rt = open_runtime(args.runtime, **({"profile": args.profile} if args.profile else {}))
    try:
        with Progress(disable=args.json, transient=True) as prog:
            task = prog.add_task(f"{args.runtime}: {ds.name}", total=len(Q) * pl.n_nodes)
            result = validate_features(pl, Q, args.runtime, rt,
                                       on_batch=lambda n: prog.advance(task, n))
    finally:
        rt.close()
    result["dataset"] = ds.name
    result["variant"] = pl.variant
    result["profile"] = args.profile or ("webassembly" if args.runtime == "micropython" else None)
    ok = result["features_bitexact"] and result["load_path_ok"]
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        where = args.runtime + (f" ({result['profile']})" if result["profile"] else "")
        Console().print(
            f"{ds.name}: {result['series']} series x {result['nodes']} nodes on {where}: "
            + ("[green]features bit-exact[/]" if result["features_bitexact"] else
               f"[red]{result['mismatches']} mismatching counts[/]")
            + ("" if result["load_path_ok"] else ", [red]plan load path failed[/]")
        )
    return 0 if ok else 1
