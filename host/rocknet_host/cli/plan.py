"""`rocknet plan DATASET --nodes N --out DIR`: fit and write a fleet plan."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..errors import UserError
from . import plan_fleet
from .common import (
    add_dataset_args,
    add_plan_args,
    add_training_args,
    fit_plan,
    load_dataset,
    training,
    write_training,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="fit quantization, dilations, biases; split across nodes")
    add_dataset_args(p, positional=True)
    add_plan_args(p)
    p.add_argument("--out", required=True, help="folder for node_XX.plan files and fleet.json")
    plan_fleet.add_args(p)
    add_training_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.code_from and not args.fleet:
        raise UserError("--code-from sets the memory model of a --fleet plan: add --fleet")
    ds = load_dataset(args)
    if args.fleet:
        return plan_fleet.run(args, ds)
    t = training(args)  # checked before the (slow) fit
    pl = fit_plan(args, ds)
    trains = write_training(pl, ds, t, args.out)
    s = pl.summary()
    con = Console()
    con.print(f"[bold]{s['dataset']}[/]: {s['features']} features ({s['variant']}), "
              f"{s['nodes']} nodes, {min(s['features_per_node'])}-{max(s['features_per_node'])} "
              f"features per node, dilations {s['dilations']}")
    for i, (n, holds) in enumerate(zip(s["features_per_node"], s["holds"], strict=True)):
        con.print(f"  node {i}: {n} features, (dilation, kernel) {holds}")
    if trains:
        con.print(f"training: {t.mode} head, {t.epochs} epochs, batch {t.batch}, {t.wire} "
                  f"partial logits, {t.radio} adverts")
    con.print(f"wrote {pl.n_nodes} node plans{', node data files' if trains else ''} and "
              f"fleet.json to {args.out}")
    return 0
