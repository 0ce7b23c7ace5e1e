"""`rocknet virtual-board [--port N] [--dir D] [--board B] [--profile P] [--heap-budget BYTES]`:
a MicroPython 1.29 + ulab board (WebAssembly) serving its REPL over TCP for mpremote, with its
files kept in a host folder; with --board as strict as that board (its module set and its
heap budget, enforced after every command)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from rich.console import Console

from ..boards import BoardError
from ..boards import load as load_board
from ..errors import UserError
from ..hardware.virtual_board import DEFAULT_HEAPSIZE, VirtualBoard
from ..runtimes.profiles import PROFILES
from .common import at_least, port_number


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("virtual-board",
                       help="run a virtual MicroPython board that mpremote can drive over TCP")
    p.add_argument("--port", type=port_number, default=0, help="TCP port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--dir", default=".rocknet-board",
                   help="host folder holding the board's files (default ./.rocknet-board)")
    p.add_argument("--heapsize", type=at_least(64 * 1024), default=DEFAULT_HEAPSIZE,
                   help="initial MicroPython heap in bytes (it grows on demand)")
    p.add_argument("--board", help="be as strict as this board (boards/*.toml): its runtime "
                                   "profile and heap budget")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="module set of the board (default: the --board's, else webassembly)")
    p.add_argument("--heap-budget", type=int, metavar="BYTES",
                   help="fail a command with MemoryError when the heap after it (collected, "
                        "board-equivalent) or its largest block exceeds this (default: the "
                        "--board's budget, else none)")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the board like Ctrl-C: through `finally`


def run(args: argparse.Namespace) -> int:
    kw: dict[str, object] = {"port": args.port, "host": args.host, "heapsize": args.heapsize}
    if args.profile:
        kw["profile"] = args.profile
    if args.heap_budget is not None:
        if args.heap_budget <= 0:
            raise UserError("--heap-budget must be a positive number of bytes")
        kw["heap_budget"] = args.heap_budget
    if args.board:
        try:
            load_board(args.board)
        except BoardError as exc:
            raise UserError(str(exc)) from None
        board = VirtualBoard.for_board(args.board, args.dir, **kw)
    else:
        board = VirtualBoard(args.dir, **kw)  # type: ignore[arg-type]
    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        board.start()
        con = Console()
        con.print(f"virtual board on [bold]{board.url}[/] (files in {board.directory})")
        budget = f"heap budget {board.heap_budget:,} B" if board.heap_budget else "no heap budget"
        con.print(f"  profile {board.profile.name}, {budget}")
        con.print(f"  try: mpremote connect {board.url} exec \"import sys; print(sys.platform)\"")
        con.print("  Ctrl-C (or SIGTERM) stops it.")
        sys.stdout.flush()  # visible at once when stdout is a log file
        while board.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        signal.signal(signal.SIGTERM, old)
    return 0
