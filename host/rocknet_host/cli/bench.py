"""`rocknet bench KIND ...`: benchmarks with JSON output. Each kind lives in
rocknet_host.benches.<kind> and exposes ``register(subparsers)``; add new kinds to KINDS."""

from __future__ import annotations

import argparse
import importlib

KINDS = ["features", "protocol", "accuracy", "scaling", "clock", "memory"]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench", help="benchmarks (speed, memory, accuracy, protocol, board clock), JSON out")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for name in KINDS:
        importlib.import_module(f"rocknet_host.benches.{name}").register(kinds)
