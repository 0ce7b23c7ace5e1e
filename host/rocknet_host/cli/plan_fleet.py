"""`rocknet plan DATASET --fleet fleet.toml [--lost 3,7] --out DIR` (called by cli/plan.py):
split by each board's heap budget and clock, print the per-node table, write the plans."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from ..boards import CODE_SOURCES
from ..errors import UserError
from ..hardware import fleet_toml as fl
from ..planning import capacity as fp
from ..planning.board import full_pending
from .common import rings_words, training, write_training


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fleet", metavar="FLEET.TOML",
                   help="split across the boards of a fleet file by heap budget and clock "
                        "(replaces --nodes)")
    p.add_argument("--lost", default="", metavar="I,J",
                   help="with --fleet: re-plan without these node numbers (lost boards)")
    p.add_argument("--code-from", choices=CODE_SOURCES, default=None,
                   help="with --fleet: how the boards get rocknet's code, which sets the heap "
                        "left for it: files (`rocknet deploy`), romfs (`rocknet deploy "
                        "--romfs`), frozen (a firmware built with it); default each board "
                        "file's [runtime] code_from (files)")


def run(args: argparse.Namespace, ds: Any) -> int:
    fleet = fl.load(args.fleet)
    cp = sorted({n.board.key for n in fleet.nodes() if n.board.runtime == "circuitpython"})
    if args.code_from == "romfs" and cp:
        raise UserError(f"--code-from romfs: CircuitPython has no ROMFS ({', '.join(cp)}); "
                        "plan with --code-from files, or frozen for a CircuitPython firmware "
                        "built with rocknet in its frozen/ folder")
    mapping = None
    if args.lost:
        try:
            lost = sorted({int(x) for x in args.lost.split(",") if x.strip()})
        except ValueError:
            raise UserError("--lost takes node numbers separated by commas, e.g. --lost 3,7")\
                from None
        try:
            fleet, mapping = fp.without(fleet, lost)
        except fp.FleetTooSmall as exc:
            raise UserError(str(exc)) from None
    legacy = any(not n.board.radio.extended_adv for n in fleet.nodes())
    t = training(args, "legacy" if legacy else "extended")  # checked before the (slow) fit
    try:
        pl, split = fp.fit(fleet, ds, variant=args.variant, n_features=args.features,
                           bias_examples=args.bias_examples, seed=args.seed,
                           code_from=args.code_from, radio=t.radio, wire=t.wire,
                           keep=t.keep, pending=t.pending, window=t.window)
    except fp.FleetTooSmall as exc:
        raise UserError(str(exc)) from None
    trains = write_training(pl, ds, t, args.out, split, mapping)
    con = Console()
    table = Table(title=f"{ds.name}: {pl.n_features} features over {fleet.describe()}")
    series = "series" in split.keeps  # say what each node keeps only where some keep series
    # and its ring only where one differs from the default
    rings = any(p != full_pending(t.window) for p in split.pendings)
    cols = ("node", "board", "port", "holds", "features") + (("keeps",) if series else ()) \
        + (("ring",) if rings else ()) + ("est. RAM", "budget")
    for col in cols:
        table.add_column(col, justify="left" if col in ("board", "port", "holds", "keeps")
                         else "right")
    for r in split.rows():
        table.add_row(str(r["node"]), r["board"], r["port"] or "-", r["holds"],
                      str(r["features"]), *((r["keep"],) if series else ()),
                      *((str(r["pending"]),) if rings else ()),
                      f"{r['bytes'] / 1000:.1f} KB", f"{r['budget'] / 1000:.0f} KB")
    con.print(table)
    held = sorted({fp.code_source(b, args.code_from) for b in split.boards})
    con.print(("keeps: what the node keeps of a sample awaiting its decision (--keep; "
               "series: one more slice transform per applied training sample). "
               if series else "")
              + ("ring: undecided samples the node keeps (--pending): "
                 f"{rings_words(split.pendings, t)}. " if rings else "")
              + "est. RAM: a training node's peak heap (rocknet.planning.capacity, calibrated on "
              "nodes measured by `rocknet bench memory`), rocknet's code included: "
              + ", ".join(f"{fp.code_heap_bytes(h) / 1000:.1f} KB from {fp.CODE_FROM_WORDS[h]}"
                          for h in held), soft_wrap=True)
    if mapping is not None:
        moved = ", ".join(f"{o}->{n}" for o, n in mapping.items() if o != n) or "none"
        con.print(f"re-planned without node(s) {args.lost}; renumbered: {moved}. Deploy the "
                  "new plans to every remaining board (rocknet deploy --plan-dir ...).")
    if trains:
        con.print(f"training: {t.mode} head, {t.epochs} epochs, batch {t.batch}, {t.wire} "
                  f"partial logits, {t.radio} adverts")
    con.print(f"wrote {pl.n_nodes} node plans{', data files' if trains else ''}, fleet.json and "
              f"fleet_plan.json to {args.out}")
    return 0
