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
    p.add_argument("--plot", metavar="FILE.png",
                   help="write accuracy (mean over seeds) against nodes, per dataset, beside "
                        "the reference, from the whole results table")
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
    if args.plot:
        plot(Path(args.out), args.plot)
    if args.json:
        print(json.dumps(outcome.__dict__, indent=1))
        return 0
    con.print(f"{outcome.cells} cells: computed {outcome.computed} ({outcome.failed} failed), "
              f"{outcome.skipped} already done; {outcome.wall_s:.1f} s on "
              f"{outcome.scheduler}{f' ({outcome.workers} workers)' if outcome.workers else ''}"
              f"; wrote {outcome.out}", soft_wrap=True)
    show(con, Path(args.out))
    if args.plot:
        con.print(f"wrote {args.plot}", soft_wrap=True)
    return 0


def plot(out: Path, path: str) -> None:
    """One panel per dataset: mean accuracy over seeds against nodes, a line per (kind,
    mode, loss, topology, faults, runtime), the reference dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    rows = [r for r in sweep.read_results(out) if r["error"] is None]
    if not rows:
        raise ValueError(f"no finished cells in {out / sweep.RESULTS} to plot")
    df = pd.DataFrame(rows)
    names = sorted(df.dataset.unique())
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    line = ["kind", "mode", "loss", "topology", "faults", "runtime"]
    for ax, name in zip(axes[0], names, strict=True):
        d = df[df.dataset == name]
        for key, g in d.groupby(line):
            m = g.groupby("nodes").accuracy.mean()
            label = [str(key[0]), str(key[1]), f"loss {key[2]:g}"]
            label += [str(k) for k in key[3:] if k not in ("[]", "cpython", "full")]
            ax.plot(m.index, m.values, marker="o", label=" ".join(label))
        ax.set_xticks(sorted(d.nodes.unique()))
        ref = d.reference_accuracy.dropna()
        if len(ref):
            ax.axhline(float(ref.mean()), ls="--", c="grey", label="aeon MiniRocket")
        ax.set_title(name)
        ax.set_xlabel("nodes")
        ax.set_ylabel("test accuracy (mean over seeds)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def show(con: Console, out: Path) -> None:
    """Mean accuracy over seeds per (kind, dataset, nodes, mode, loss, topology, faults,
    runtime), next to the reference; failed cells listed."""
    rows = sweep.read_results(out)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    axes = ("kind", "dataset", "nodes", "mode", "loss", "topology", "faults", "runtime")
    # the axes that vary (dataset and nodes always shown)
    keys = tuple(k for k in axes
                 if k in ("dataset", "nodes") or len({str(r[k]) for r in rows}) > 1)
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    fixed = [f"{k} {rows[0][k]}" for k in axes if k not in keys and rows]
    t = Table(title="sweep: mean over seeds" + (f" ({', '.join(fixed)})" if fixed else ""))
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
