"""`rocknet validate --port P [--port P2 ...]` (called by cli/validate.py): cross-validation
vectors on connected boards, printed as a pass/fail table per board."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from ..errors import UserError
from ..hardware.validate import BoardValidationError, validate_board
from ..runtimes.heap import summary as heap_summary

DEFAULT_LIMIT = 8  # train and test series each; a board is slow, --limit N overrides


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", action="append", metavar="PORT",
                   help="validate on a connected board instead of a local runtime: serial "
                        "port or socket://host:port (repeatable); rocknet must be deployed")


def run(args: argparse.Namespace, ds: Any, pl: Any) -> int:
    limit = args.limit or DEFAULT_LIMIT
    Q = pl.quantizer(np.vstack([ds.X_train[:limit], ds.X_test[:limit]]))
    con = Console()
    reports = []
    for port in args.port:
        try:
            with Progress(disable=args.json, transient=True, console=con) as prog:
                task = prog.add_task(f"{port}: {ds.name}", total=len(Q) * pl.n_nodes)

                def step(n: int, t: TaskID = task, pr: Progress = prog) -> None:
                    pr.advance(t, n)

                rep = validate_board(port, pl, Q, seed=args.seed, on_step=step)
        except BoardValidationError as exc:
            raise UserError(str(exc)) from None
        reports.append(rep)
    if args.json:
        print(json.dumps({"dataset": ds.name, "series": len(Q), "nodes": pl.n_nodes,
                          "boards": [r.to_dict() for r in reports]}, indent=1))
    else:
        for rep in reports:
            t = Table(title=f"{rep.port}: rocknet {rep.version} on {rep.impl} "
                            f"(float{rep.float_bits}), {ds.name}, {len(Q)} series")
            for col in ("node", "check", "result", "detail"):
                t.add_column(col)
            for c in rep.checks:
                t.add_row(str(c.node), c.name, "[green]pass[/]" if c.ok else "[red]FAIL[/]",
                          c.detail)
            con.print(t)
            if rep.heap:
                con.print(f"  {heap_summary(rep.heap)}")
    return 0 if all(r.ok for r in reports) else 1
