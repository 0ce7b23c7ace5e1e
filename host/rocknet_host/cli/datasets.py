"""`rocknet datasets`: list the datasets rocknet can find, or describe one."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from .. import data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list available datasets or show one")
    p.add_argument("name", nargs="?", help="a dataset name or path to describe")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else list(data.BUNDLED) + data.available_names(args.data_dir)
    rows = []
    for n in names:
        try:
            rows.append(data.load(n, args.data_dir).summary())
        except data.DatasetError as exc:
            if args.name:
                raise
            rows.append({"name": n, "error": str(exc)})
    if args.json:
        print(json.dumps(rows if not args.name else rows[0], indent=1))
        return 0
    table = Table(title="datasets")
    for col in ("name", "train", "test", "length", "classes", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r.get(c, r.get("error", ""))) for c in
                        ("name", "train", "test", "length", "classes", "source")))
    Console().print(table)
    if not args.data_dir and data.DATA_DIR_ENV not in __import__("os").environ:
        print(f"More datasets: --data-dir DIR or ${data.DATA_DIR_ENV} (folders of UCR sets).")
    return 0
