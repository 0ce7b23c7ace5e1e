"""`rocknet plan DATASET --nodes N --out DIR`: fit and write a fleet plan."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ..planning import board as board_plan
from ..planning import features as plan
from ..planning import head as head_plan
from . import plan_fleet
from .common import add_dataset_args, add_plan_args, at_least, fit_plan, load_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="fit quantization, dilations, biases; split across nodes")
    add_dataset_args(p, positional=True)
    add_plan_args(p)
    p.add_argument("--out", required=True, help="folder for node_XX.plan files and fleet.json")
    plan_fleet.add_args(p)
    add_training_args(p)
    p.set_defaults(func=run)


def add_training_args(p: argparse.ArgumentParser) -> None:
    """How the boards train (`rocknet.run()` on each board reads it from the plan)."""
    t = board_plan.Training()
    g = p.add_argument_group("training on the boards (head, schedule, radio; node_XX.data)")
    g.add_argument("--mode", choices=head_plan.MODES, default=t.mode,
                   help="head: gradient (softmax cross-entropy, default) or ridge")
    g.add_argument("--epochs", type=at_least(1), default=t.epochs,
                   help=f"passes over the training set (default {t.epochs})")
    g.add_argument("--batch", type=at_least(1), default=t.batch,
                   help=f"batch size (default {t.batch})")
    g.add_argument("--eval", type=at_least(0), default=None, metavar="K",
                   help="test series evaluated over the air after every epoch (default: as "
                        "many as there are training series, at most all)")
    g.add_argument("--radio", choices=board_plan.RADIOS, default=None,
                   help="advert size: extended (CircuitPython nRF52840, default) or legacy "
                        "(31 bytes; MicroPython's bluetooth; the default for a --fleet with "
                        "such a board)")


def training(args: argparse.Namespace, radio: str = "extended") -> board_plan.Training:
    """The training options, checked (`UserError` naming the option)."""
    t = board_plan.Training(mode=args.mode, epochs=args.epochs, batch=args.batch,
                            eval=args.eval, radio=args.radio or radio, seed=args.seed)
    t.check()
    return t


def write_training(pl: plan.Plan, ds: object, t: board_plan.Training, out: str,
                   fleet: Any = None, mapping: Any = None,
                   heads: list[dict[str, Any]] | None = None) -> bool:
    """Write the node plans with training sections and the node data files; if the rounds
    cannot fit the radio (only then), the plans without them (fine for `rocknet validate`),
    and say so. Any other problem is an error. ``heads``: head sections to use (a trained
    estimator's), else made for ``t``."""
    try:
        nps = board_plan.node_plans(pl, ds, t, heads)  # type: ignore[arg-type]
    except board_plan.RoundsDoNotFit as exc:
        Console(stderr=True).print(f"[yellow]warning[/]: {exc}. Wrote plans without training "
                                   "sections: `rocknet validate` works with them, "
                                   "`rocknet.run()` on a board does not.", highlight=False)
        nps = None
    if fleet is not None:
        from ..planning import capacity as fp

        fp.write(pl, fleet, out, mapping, nps)
    else:
        plan.write(pl, out, nps)
    if nps is not None:
        board_plan.write_data(pl, ds, t, out)  # type: ignore[arg-type]
    return nps is not None


def run(args: argparse.Namespace) -> int:
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
    if trains:
        con.print(f"training: {t.mode} head, {t.epochs} epochs, batch {t.batch}, {t.radio} "
                  "adverts")
    con.print(f"wrote {pl.n_nodes} node plans{', node data files' if trains else ''} and "
              f"fleet.json to {args.out}")
    return 0
