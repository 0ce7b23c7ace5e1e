"""`rocknet simulate [DATASET] --nodes N`: a fleet learning together over the simulated BLE
medium (node cores in CPython, or each in its own MicroPython with ``--runtime micropython``),
with live accuracy, a summary against the float baseline, ``--json`` and ``--report`` HTML."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import boards
from ..errors import UserError
from ..reference.baseline import reference_accuracy
from ..runtimes.micropython import RuntimeMissing
from ..runtimes.profiles import PROFILES as PROFILE_NAMES
from ..sim import html_report, simulate
from ..sim.fleet import ACTIONS, Event
from ..sim.pcap import capture
from ..sim.radio import PROFILES
from .common import (
    add_dataset_args,
    add_keep_arg,
    add_pending_arg,
    add_plan_args,
    add_wire_arg,
    fit_plan,
    load_dataset,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="a fleet learning together over the simulated BLE radio")
    add_dataset_args(p, positional=True, default="GunPoint")
    add_plan_args(p)
    d = simulate.Config()
    p.add_argument("--mode", choices=simulate.MODES, default=d.mode,
                   help="head training: gradient (softmax, default) or ridge (squared loss, "
                        "round-by-round updates)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help=f"passes over the training set (default {d.epochs})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"mini-batch (default {d.batch})")
    add_wire_arg(p)
    add_keep_arg(p)
    add_pending_arg(p)
    p.add_argument("--topology", choices=simulate.TOPOLOGIES, default=d.topology)
    p.add_argument("--hops", type=int, default=None,
                   help="line/grid/random: radio range in hops (default: the sparsest connected)")
    p.add_argument("--loss", type=float, default=d.loss, help="per-link packet loss (0..1)")
    p.add_argument("--deadline", type=float, default=None, metavar="S",
                   help="round deadline in seconds (default: 1 s + 0.6 s per hop beyond one)")
    p.add_argument("--radio", choices=list(PROFILES), default=d.radio, help="radio profile")
    p.add_argument("--crash", action="append", default=[], metavar="NODE@ROUND",
                   help="board NODE is switched off for good once the fleet reaches round "
                        "ROUND (repeatable)")
    p.add_argument("--reboot", action="append", default=[], metavar="NODE@ROUND",
                   help="board NODE is power-cycled at round ROUND (a crashed one switched "
                        "back on): RAM lost, it restarts from its files and checkpoint and "
                        "rejoins (repeatable)")
    p.add_argument("--fault", action="append", default=[], metavar="KIND:NODE@ROUND",
                   help="misbehaviour from round ROUND on; KIND: nan-logits (board NODE "
                        "sends NaN partial logits) (repeatable)")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the aeon MiniRocket + RidgeClassifierCV baseline")
    p.add_argument("--runtime", choices=simulate.RUNTIMES, default=d.runtime,
                   help="where node cores run: cpython (fast, default) or micropython (each "
                        "node in its own MicroPython 1.29 + ulab, the device's code path; "
                        "reports peak heap per node; much slower)")
    p.add_argument("--board", choices=boards.names(), default=None,
                   help="the boards' kind (boards/*.toml): with --runtime micropython, each "
                        "board runs under its runtime profile (module set) and heap budget; "
                        "its current draw prices the energy")
    p.add_argument("--profile", choices=list(PROFILE_NAMES), default=None,
                   help="MicroPython module set of the boards (default: the board's)")
    p.add_argument("--code", choices=("py", "mpy"), default=None,
                   help="with --runtime micropython, the boards load rocknet from .py or .mpy "
                        "files (default: as the profile does: .mpy on MicroPython, .py on "
                        "CircuitPython; .mpy there is what `rocknet deploy` installs with "
                        "ROCKNET_CIRCUITPY_MPY_CROSS)")
    p.add_argument("--compute", choices=simulate.COMPUTE, default=d.compute,
                   help="board: each board's compute takes the time the board clock model "
                        "gives on its board (default; --board, else the radio's board); "
                        "none: compute takes no simulated time")
    p.add_argument("--heap-budget", type=int, default=None, metavar="BYTES",
                   help="heap a board has for rocknet, code included (default: the board's); "
                        "a board that needs more fails with MemoryError, as it would")
    p.add_argument("--pcap", metavar="FILE",
                   help="write the whole run's air traffic as a pcap (Wireshark/tshark decode "
                        "the adverts' headers; rows are AES-CCM sealed)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON to FILE")
    p.add_argument("--report", metavar="FILE.html",
                   help="write a self-contained HTML report with plots to FILE.html")
    p.set_defaults(func=run)


def parse_events(crash: list[str], reboot: list[str],
                 fault: list[str] | tuple[str, ...] = ()) -> list[Event]:
    out = []
    faults = []
    for spec in fault:
        kind, sep, rest = spec.partition(":")
        if not sep or kind not in ACTIONS or kind in ("crash", "reboot"):
            raise UserError(f"--fault {spec!r}: expected KIND:NODE@ROUND with KIND one of "
                            "nan-logits, e.g. nan-logits:2@100")
        faults.append((kind, rest, f"--fault {spec!r}"))
    for action, specs in (("crash", crash), ("reboot", reboot)):
        faults.extend((action, spec, f"--{action} {spec!r}") for spec in specs)
    for action, spec, where in faults:
        node, sep, rnd = spec.partition("@")
        try:
            if not sep:
                raise ValueError
            ev = Event(int(rnd), int(node), action)
        except ValueError:
            raise UserError(f"{where}: expected NODE@ROUND, e.g. 2@100") from None
        if ev.round_no < 0 or ev.node < 0:
            raise UserError(f"{where}: node and round must be >= 0")
        out.append(ev)
    return out


def run(args: argparse.Namespace) -> int:
    events = parse_events(args.crash, args.reboot, args.fault)
    ds = load_dataset(args)
    pl = fit_plan(args, ds)
    cfg = simulate.Config(mode=args.mode, epochs=args.epochs, batch=args.batch,
                          topology=args.topology, hops=args.hops, loss=args.loss,
                          radio=args.radio, events=events, seed=args.seed,
                          deadline_s=args.deadline, runtime=args.runtime, board=args.board,
                          profile=args.profile, heap_budget=args.heap_budget,
                          code_format=args.code, compute=args.compute, wire=args.wire,
                          keep=args.keep, pending=args.pending)
    con = Console()
    try:
        sim = simulate.Simulation(pl, ds, cfg)
    except (ValueError, RuntimeMissing) as exc:
        raise UserError(str(exc)) from None
    con.print(f"[bold]{ds.name}[/]: {pl.n_nodes} nodes, {pl.n_features} features, {args.mode} "
              f"head, {args.wire} partial logits, {args.epochs} epochs, {sim.topo.kind} "
              f"topology, loss {args.loss:g}, {args.radio} ({sim.sched.length} rounds); "
              f"every node runs rocknet.run()'s loop in {args.runtime}", soft_wrap=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("rounds"), TimeElapsedColumn(), console=con) as prog:
        task = prog.add_task(f"training, epoch 1/{args.epochs}", total=sim.sched.length)
        acc = "-"

        def on_progress(p: simulate.Progress) -> None:
            nonlocal acc
            if p.epoch is not None and p.accuracy is not None:
                acc = f"{p.accuracy:.3f}"
            if p.phase == "training":
                e = min(args.epochs, 1 + p.round_no // sim.sched.period)
                desc = f"training, epoch {e}/{args.epochs} (acc {acc})"
            elif p.phase == "predicting":
                desc = "predicting the test set"
            else:
                desc = "finishing: last decisions"
            prog.update(task, description=desc, completed=p.round_no)

        try:
            with capture(sim.fleet.medium, args.pcap):
                res = sim.run(on_progress)
        except (ValueError, RuntimeMissing) as exc:
            raise UserError(str(exc)) from None
    if not args.no_reference:
        with con.status("aeon MiniRocket + RidgeClassifierCV reference"):
            res["reference_accuracy"] = reference_accuracy(ds, args.seed)
    gone = [i for i in range(pl.n_nodes)
            if i not in res["members"] and i not in res["failed"]]
    res["features_lost"] = sum(len(pl.node_feature_index(i)) for i in gone)
    show(con, res)
    if gone and res["members"]:
        nodes = ",".join(map(str, gone))
        share = 100 * res["features_lost"] / pl.n_features
        con.print(f"node(s) {nodes} left the fleet: the others trained on without their "
                  f"{res['features_lost']} features ({share:.1f} % of the model) and their "
                  f"own series. With boards, re-plan onto the "
                  f"survivors and deploy again (training restarts from the new plans): "
                  f"rocknet plan {ds.name} --fleet fleet.toml --lost {nodes} --out plans",
                  soft_wrap=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        con.print(f"wrote {args.json}", soft_wrap=True)
    if args.report:
        html_report.write(res, args.report)
        con.print(f"wrote {args.report}", soft_wrap=True)
    return verdict(con, res)


def verdict(con: Console, res: dict[str, Any]) -> int:
    """Exit status: 0 only for a fleet that finished, agreed and lost no board to an error."""
    bad = []
    if res["stalled"]:
        bad.append(f"the fleet stalled: {res['stall_reason']}")
    if not res["consistent"]:
        bad.append("the live boards did not all apply the same updates")
    for p in res["per_node"]:
        if p["error"]:
            bad.append(f"node {p['node']} failed with {p['error_type']}: "
                       f"{p['error'].strip().splitlines()[-1]}")
    for b in bad:
        con.print(f"[red]{b}[/]", soft_wrap=True)
    return 1 if bad else 0


def show(con: Console, res: dict[str, Any]) -> None:
    t = Table(title=f"{res['dataset']}: {res['nodes']} nodes over simulated BLE",
              show_header=False)
    for label, value in html_report.summary_rows(res):
        if label == "all live nodes agree":
            value = "[green]yes[/]" if res["consistent"] else "[red]NO[/]"
        t.add_row(label, value)
    con.print(t)
    heap = html_report.heap_measured(res)
    nt = Table(title=f"per node (energy: {res['energy_model']})",
               caption=("peak heap: gc.mem_alloc() after collections at round boundaries in "
                        f"MicroPython (profile {res['profile'] or 'webassembly'}), code "
                        f"(.{res['code_format']}) included; board: floats as on the board"
                        + (f"; budget {res['heap_budget_bytes']} B"
                           if res["heap_budget_bytes"] else "")) if heap else None)
    cols = ["node", "state", "airtime s", "radio rx s", "energy J", "adverts tx", "commit",
            "drop"]
    if heap:
        cols += ["peak heap KB", "board KB"]
    for col in cols:
        nt.add_column(col, justify="right")
    for p in res["per_node"]:
        # removed: alive but cut off; JSON applied_through says where it stopped
        row = [str(p["node"]), html_report.node_state(p), f"{p['airtime_s']:.2f}",
               f"{p['radio_rx_s']:.1f}", f"{p['energy_j']:.2f}", str(p["tx_adverts"]),
               str(p["commits"]), str(p["drops"])]
        if heap:
            hb, bb = p.get("peak_heap_bytes"), p.get("peak_heap_board_bytes")
            row += ["-" if hb is None else f"{hb / 1024:.1f}",
                    "-" if bb is None else f"{bb / 1024:.1f}"]
        nt.add_row(*row)
    con.print(nt)
