"""`rocknet deploy --port P [--port P2 ...] | --fleet fleet.toml [--plan-dir DIR] [--autostart]
[--romfs]`:
install the package (and each node's plan, data file and the fleet key) on every board,
verified by hash on the board."""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.table import Table

from ..errors import UserError
from ..hardware import deploy as dp
from ..hardware import fleet_toml as fl
from .common import at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy", help="install rocknet (+ plans, fleet key) on boards via mpremote or a drive",
        description="Install rocknet on each board. A port is a serial device (/dev/ttyACM0, "
                    "COM5), a URL (socket://127.0.0.1:PORT for `rocknet virtual-board`) or a "
                    "mounted CIRCUITPY drive folder. With --plan-dir, board i (in --port or "
                    "fleet order) also gets node_XX.plan and node_XX.data for node i and the "
                    "fleet key.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", action="append", metavar="PORT", help="a board (repeatable)")
    src.add_argument("--fleet", metavar="FLEET.TOML", help="fleet file with boards and ports")
    p.add_argument("--plan-dir", metavar="DIR", help="folder written by `rocknet plan --out`")
    p.add_argument("--key-file", metavar="FILE",
                   help=f"fleet network key (default DIR/{dp.KEY_NAME}, made if missing)")
    p.add_argument("--format", choices=("auto", "mpy", "py"), default="auto",
                   help="package files: .mpy from mpy-cross (MicroPython) or .py (default auto)")
    p.add_argument("--romfs", action="store_true",
                   help="MicroPython boards with a ROMFS partition get the package as a ROMFS "
                        "image (bytecode runs from flash, much less heap), checked by hash and "
                        "imported from /rom; plan, data and key stay files. A board without "
                        "ROMFS gets the file install and a message naming the fix")
    p.add_argument("--jobs", type=at_least(1), default=4,
                   help="boards deployed at once (default 4)")
    p.add_argument("--autostart", action="store_true",
                   help="also install code.py (CircuitPython) or main.py (MicroPython) holding "
                        "`import rocknet; rocknet.run()`: the board trains at every boot "
                        "(replaces an existing code.py/main.py)")
    p.set_defaults(func=run)


def _nodes(args: argparse.Namespace) -> tuple[list[str], Path | None, Path | None]:
    plan_dir = Path(args.plan_dir) if args.plan_dir else None
    key_file = Path(args.key_file) if args.key_file else None
    if args.fleet:
        fleet = fl.load(args.fleet)
        nodes = fleet.nodes()
        missing = [n.index for n in nodes if not n.port]
        if missing:
            raise UserError(f"{args.fleet}: no port for node(s) {missing}: list one `ports` entry "
                            "per board in each [[group]]")
        ports = [n.port or "" for n in nodes]
        plan_dir = plan_dir or fleet.plan_dir
        key_file = key_file or fleet.key_file
    else:
        ports = list(args.port)
    if len(set(ports)) != len(ports):
        raise UserError("the same port is listed twice")
    return ports, plan_dir, key_file


def run(args: argparse.Namespace) -> int:
    ports, plan_dir, key_file = _nodes(args)
    plans: list[bytes | None] = [None] * len(ports)
    datas: list[bytes | None] = [None] * len(ports)
    key = None
    if plan_dir is not None:
        if not plan_dir.is_dir():
            raise UserError(f"plan folder {plan_dir} not found: run `rocknet plan DATASET "
                            f"--nodes {len(ports)} --out {plan_dir}` first")
        n_plans = len(list(plan_dir.glob("node_*.plan")))
        if n_plans != len(ports):
            raise UserError(f"{plan_dir} holds {n_plans} node plans but {len(ports)} boards are "
                            f"given: re-plan with --nodes {len(ports)}")
        try:
            plans = [dp.read_plan(plan_dir, i) for i in range(len(ports))]
            datas = [dp.read_data(plan_dir, i) for i in range(len(ports))]
            key = dp.fleet_key(key_file or plan_dir / dp.KEY_NAME)
        except dp.DeployError as exc:
            raise UserError(str(exc)) from None
    fmt = None if args.format == "auto" else args.format
    con = Console()
    results: list[dp.Result] = []
    lock = threading.Lock()
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=con, transient=False) as prog:
        tasks = [prog.add_task(f"{p}: connecting", total=None) for p in ports]

        def one(i: int) -> dp.Result:
            rep = _Bar(prog, tasks[i], ports[i], i if plan_dir else None)
            res = dp.deploy_one(ports[i], plans[i], key, rep, fmt, data=datas[i],
                                autostart=args.autostart, romfs=args.romfs)
            desc = ("[green]up to date[/]" if res.up_to_date else
                    "[green]installed[/]" if res.ok else "[red]failed[/]")
            prog.update(tasks[i], description=f"{ports[i]}: {desc}",
                        total=prog.tasks[tasks[i]].total or 1,
                        completed=prog.tasks[tasks[i]].total or 1 if res.ok else None)
            with lock:
                results.append(res)
            return res

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, range(len(ports))))
    results.sort(key=lambda r: ports.index(r.port))
    table = Table(title="rocknet deploy")
    for col in ("node", "board", "result", "format", "files sent", "files kept"):
        table.add_column(col)
    for i, r in enumerate(results):
        state = ("[green]up to date[/]" if r.up_to_date else "[green]installed[/]" if r.ok
                 else "[red]FAILED[/]")
        table.add_row(str(i) if plan_dir else "-", r.port, state, r.fmt or "-",
                      str(r.uploaded), str(r.reused))
    con.print(table)
    for r in results:
        if r.ok and r.message:
            con.print(f"[yellow]{r.port}[/]: {r.message}", highlight=False)
    failed = [r for r in results if not r.ok]
    for r in failed:
        con.print(f"[red]{r.port}[/]: {r.message}", highlight=False)
    if failed:
        con.print(f"[red]{len(failed)} board(s) not done[/]: fix the problem above and run the "
                  "same command again; finished files are kept and only the rest is sent.")
        return 1
    return 0


class _Bar(dp.Reporter):
    def __init__(self, prog: Progress, task: TaskID, port: str, node: int | None) -> None:
        self.prog, self.task, self.port = prog, task, port
        self.label = f"{port}" + (f" (node {node})" if node is not None else "")

    def start(self, total_bytes: int, files: int) -> None:
        what = f"sending {files} file(s)" if files else "checking"
        self.prog.update(self.task, description=f"{self.label}: {what}", total=total_bytes or 1,
                         completed=0 if total_bytes else 1)

    def advance(self, nbytes: int) -> None:
        self.prog.advance(self.task, nbytes)

    def note(self, text: str) -> None:
        self.prog.console.print(f"{self.port}: {text}")
