"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .. import data
from ..errors import UserError

if TYPE_CHECKING:
    from ..planning.board import Training
    from ..planning.features import Plan


def at_least(low: int) -> Callable[[str], int]:
    """argparse ``type=``: an integer >= ``low`` (argparse prints the message and exits 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # argparse names the type in some messages
    return parse


def port_number(text: str) -> int:
    """argparse ``type=``: a TCP port, 0 (any free one) to 65535."""
    value = at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 0..65535, got {value}")
    return value


def add_dataset_args(p: argparse.ArgumentParser, positional: bool = False,
                     default: str | None = None) -> None:
    help_ = "dataset name (aeon bundled or in a data dir) or path to a UCR *_TRAIN file/folder"
    if positional:
        p.add_argument("dataset", nargs="?" if default else None, default=default, help=help_)
    else:
        p.add_argument("--dataset", default=default, required=default is None, help=help_)
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR",
                   help=f"extra folder holding UCR dataset folders (also ${data.DATA_DIR_ENV})")
    p.add_argument("--equalize", choices=data.EQUALIZE, default="resample",
                   help="unequal-length series: resample to the longest (default), pad, error")
    p.add_argument("--missing", choices=data.MISSING, default="error",
                   help="NaN inside a series: error (default) or interpolate")


def load_dataset(args: Any) -> data.Dataset:
    return data.load(args.dataset, args.data_dir, args.equalize, args.missing)


def add_plan_args(p: argparse.ArgumentParser) -> None:
    from ..planning import features as plan

    p.add_argument("--nodes", type=at_least(1), default=5,
                   help=f"number of nodes, 1..{plan.N_KERNELS} (default 5)")
    p.add_argument("--variant", choices=plan.VARIANTS, default="minirocket",
                   help="minirocket (default, better) or rocknet (RockNet's device variant)")
    p.add_argument("--features", type=at_least(plan.N_KERNELS), default=10_000,
                   help="total features (default 10000)")
    p.add_argument("--bias-examples", type=at_least(1), default=1,
                   help="training series pooled per (kernel, dilation) bias fit (minirocket)")
    p.add_argument("--seed", type=int, default=0)


def fit_plan(args: Any, ds: data.Dataset) -> Any:
    from ..planning import features as plan

    if args.nodes < 1:
        raise UserError(f"--nodes must be at least 1, not {args.nodes}")
    return plan.fit(ds, args.nodes, variant=args.variant, n_features=args.features,
                    bias_examples=args.bias_examples, seed=args.seed)


def add_training_args(p: argparse.ArgumentParser) -> None:
    """How the boards train (`rocknet.run()` on each board reads it from the plan)."""
    from ..planning import board as board_plan
    from ..planning import head as head_plan

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
    add_wire_arg(g)
    add_keep_arg(g)
    add_pending_arg(g)
    g.add_argument("--radio", choices=board_plan.RADIOS, default=None,
                   help="advert size: extended (CircuitPython nRF52840, default) or legacy "
                        "(31 bytes; MicroPython's bluetooth; the default for a --fleet with "
                        "such a board)")


def add_wire_arg(p: Any) -> None:
    """``--wire``: how the nodes send their partial logits (`rocknet.logits`)."""
    from ..planning import head as head_plan

    p.add_argument("--wire", choices=head_plan.WIRES, default=head_plan.DEFAULT_WIRE,
                   help=f"partial logits on the air (default {head_plan.DEFAULT_WIRE}: 2 "
                        "bytes a class, summed as exact integers; float32: 4 bytes a class)")


def add_keep_arg(p: Any) -> None:
    """``--keep``: what a node keeps of a training sample until its decision (``run.keep``)."""
    p.add_argument("--keep", choices=("codes", "series", "auto"), default="auto",
                   help="what each node keeps of a sample awaiting its decision: codes (its "
                        "8-bit feature codes, a byte a feature), series (its int8 series, a "
                        "byte a value: one more slice transform per applied training sample, "
                        "~150 ms for FaceAll/20 on a Feather's clock model) or auto (default: "
                        "series for a node whose heap estimate with codes exceeds its board's "
                        "budget)")


def pending_value(text: str) -> int | None:
    """argparse ``type=`` of ``--pending``: "auto" (None) or a number of slots (the lower
    bound, window + 2, is `Training.check`'s, which says why)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of samples or 'auto', got "
                                         f"{text!r}") from None


def add_pending_arg(p: Any) -> None:
    """``--pending``: the ring of undecided samples a node keeps (``run.pending``)."""
    from ..planning import board as board_plan

    w = board_plan.Training.window
    p.add_argument("--pending", type=pending_value, default="auto", metavar="N|auto",
                   help="undecided samples each node keeps, awaiting the fleet's decision "
                        f"(its ring): auto (default: 2 x window + 4 = "
                        f"{board_plan.full_pending(w)}, or window + 4 = "
                        f"{board_plan.floor_pending(w)} for a node whose heap estimate, its "
                        "--keep resolved, exceeds its board's budget) or N, at least window + "
                        f"2 = {board_plan.min_pending(w)}. A decision that arrives after its "
                        "slot was reused (loss delays decisions) desyncs the node, which then "
                        "rejoins the fleet")


def rings_words(pendings: list[int], t: Training) -> str:
    """The nodes' rings of undecided samples (``run.pending``), in words: what ``--pending
    auto`` shrank, and why."""
    from ..planning import board as board_plan

    full, floor = board_plan.full_pending(t.window), board_plan.floor_pending(t.window)
    if t.pending is not None:
        return f"a ring of {t.pending} undecided samples on every node (--pending)"
    small = [str(i) for i, p in enumerate(pendings) if p != full]
    if not small:
        return f"a ring of {full} undecided samples on every node"
    who = "every node's" if len(small) == len(pendings) else f"node(s) {','.join(small)}'s"
    return (f"{who} ring of undecided samples shrunk from {full} to {floor} (window + 4: the "
            f"heap estimate with {full} exceeds the board's budget; a decision that comes "
            "later than the ring desyncs the node, which then rejoins)"
            + ("" if len(small) == len(pendings) else f", the others {full}"))


def training(args: argparse.Namespace, radio: str = "extended") -> Training:
    """The training options, checked (`UserError` naming the option)."""
    from ..planning import board as board_plan

    t = board_plan.Training(mode=args.mode, epochs=args.epochs, batch=args.batch,
                            eval=args.eval, radio=args.radio or radio, seed=args.seed,
                            wire=args.wire, keep=args.keep, pending=args.pending)
    t.check()
    return t


def write_training(pl: Plan, ds: data.Dataset, t: Training, out: str, split: Any = None,
                   mapping: dict[int, int] | None = None) -> bool:
    """`planning.board.write_plans`, saying so when the plans go without training sections.
    True when they have them."""
    from ..planning import board as board_plan

    why = board_plan.write_plans(pl, ds, t, out, split, mapping)
    if why is not None:
        Console(stderr=True).print(f"[yellow]warning[/]: {why}. Wrote plans without training "
                                   "sections: `rocknet validate` works with them, "
                                   "`rocknet.run()` on a board does not.", highlight=False)
    return why is None
