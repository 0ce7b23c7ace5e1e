"""`rocknet sweep SPEC.toml --out DIR`: a grid of simulate / accuracy runs on Dask
distributed (a LocalCluster here by default, or ``--scheduler tcp://...``), one Parquet row
per cell, resumable. The spec format is in `rocknet_host.sweep`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import sweep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="a grid of runs (datasets x seeds x nodes x ...) on Dask")
    p.add_argument("spec", help="sweep spec (TOML; see examples/sweep_small.toml)")
    p.add_argument("--out", required=True, help="folder for results.parquet (resumes there)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a "
                        "LocalCluster on this machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--json", action="store_true",
                   help="print the outcome as JSON (cells, computed, failed, wall_s, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = sweep.load_spec(args.spec)
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    con = Console(stderr=args.json)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("cells"), TimeElapsedColumn(), console=con,
                  disable=args.json) as prog:
        task = prog.add_task("sweep", total=None)

        def on_done(row: dict[str, Any], k: int, n: int) -> None:
            state = "[red]failed[/]" if row["error"] else f"acc {row['accuracy']:.3f}"
            prog.update(task, total=n, completed=k,
                        description=f"{row['dataset']} n={row['nodes']} s={row['seed']}: "
                                    f"{state}")

        outcome = sweep.run(spec, args.out, args.scheduler, args.workers, on_done)
    if args.json:
        print(json.dumps(outcome.__dict__, indent=1))
        return 0
    con.print(f"{outcome.cells} cells: computed {outcome.computed} ({outcome.failed} failed), "
              f"{outcome.skipped} already done; {outcome.wall_s:.1f} s on "
              f"{outcome.scheduler}{f' ({outcome.workers} workers)' if outcome.workers else ''}"
              f"; wrote {outcome.out}", soft_wrap=True)
    show(con, Path(args.out))
    return 0


def show(con: Console, out: Path) -> None:
    """Mean accuracy over seeds per (kind, dataset, nodes, mode, loss, topology, faults,
    runtime), next to the reference; failed cells listed."""
    rows = sweep.read_results(out)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    keys = ("kind", "dataset", "nodes", "mode", "loss", "topology", "faults", "runtime")
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    t = Table(title="sweep: mean over seeds")
    for k in (*keys, "seeds", "accuracy", "reference", "agree"):
        t.add_column(k, justify="right")

    def mean(vals: list[Any]) -> str:
        v = [x for x in vals if x is not None]
        return f"{sum(v) / len(v):.3f}" if v else "-"

    for key, rs in groups.items():
        ok = [r for r in rs if r["error"] is None]
        agree = [r["agreement"] for r in ok if r["agreement"] is not None]
        t.add_row(*[str(k) for k in key], f"{len(ok)}/{len(rs)}",
                  mean([r["accuracy"] for r in ok]),
                  mean([r["reference_accuracy"] for r in ok]),
                  ("yes" if all(agree) else "NO") if agree else "-")
    con.print(t)
    for r in rows:
        if r["error"]:
            con.print(f"[red]failed[/] {r['cell']}: {r['error']}", soft_wrap=True,
                      highlight=False)
