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
    rings_words,
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


def keeps_words(keeps: list[str]) -> str:
    """What the nodes keep of a sample awaiting its decision (``run.keep``), in words."""
    series = [str(i) for i, k in enumerate(keeps) if k == "series"]
    if not series:
        return "every node keeps the codes of undecided samples"
    if len(series) == len(keeps):
        return ("every node keeps the series of undecided samples (one more slice transform "
                "per applied training sample)")
    return (f"node(s) {','.join(series)} keep the series of undecided samples (one more slice "
            "transform per applied training sample), the others their codes")


def run(args: argparse.Namespace) -> int:
    if args.code_from and not args.fleet:
        raise UserError("--code-from sets the memory model of a --fleet plan: add --fleet")
    ds = load_dataset(args)
    if args.fleet:
        return plan_fleet.run(args, ds)
    from pathlib import Path

    from ..planning import features as planmod

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
    if trains:  # what each node plan written says (its run section), not worked out again
        runs = [planmod.read_node(Path(args.out) / planmod.node_file(i))["run"]
                for i in range(pl.n_nodes)]
        con.print(f"training: {t.mode} head, {t.epochs} epochs, batch {t.batch}, {t.wire} "
                  f"partial logits, {t.radio} adverts; {keeps_words([r['keep'] for r in runs])}; "
                  f"{rings_words([r['pending'] for r in runs], t)}", soft_wrap=True)
    con.print(f"wrote {pl.n_nodes} node plans{', node data files' if trains else ''} and "
              f"fleet.json to {args.out}")
    return 0
