"""The `rocknet` command. Each subcommand lives in its own module exposing
``register(subparsers)``; add new ones to COMMANDS."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import RocknetError, UserError

__all__ = ["main", "build_parser", "UserError"]  # UserError: re-exported for older imports

# module names under rocknet_host.cli
COMMANDS = ["datasets", "plan", "validate", "bench", "virtual_board", "flash", "deploy",
            "simulate", "sweep"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rocknet",
        description="Plan, simulate, deploy and validate a fleet of boards that learn together.",
    )
    parser.add_argument("--version", action="version", version=f"rocknet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"rocknet_host.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RocknetError as exc:  # explained problems only: anything else is a bug (traceback)
        print(f"rocknet: error: {exc}", file=sys.stderr)
        return 2
