"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from .. import data


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
    from .. import plan

    p.add_argument("--nodes", type=int, default=5, help="number of nodes (default 5)")
    p.add_argument("--variant", choices=plan.VARIANTS, default="minirocket",
                   help="minirocket (default, better) or rocknet (RockNet's device variant)")
    p.add_argument("--features", type=int, default=10_000, help="total features (default 10000)")
    p.add_argument("--bias-examples", type=int, default=1,
                   help="training series pooled per (kernel, dilation) bias fit (minirocket)")
    p.add_argument("--seed", type=int, default=0)


def fit_plan(args: Any, ds: data.Dataset) -> Any:
    from .. import plan

    if args.nodes < 1:
        raise ValueError("--nodes must be at least 1")
    return plan.fit(ds, args.nodes, variant=args.variant, n_features=args.features,
                    bias_examples=args.bias_examples, seed=args.seed)
