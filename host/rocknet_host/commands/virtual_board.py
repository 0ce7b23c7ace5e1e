"""`rocknet virtual-board [--port N] [--dir D]`: a MicroPython 1.29 + ulab board (WebAssembly)
serving its REPL over TCP for mpremote, with its files kept in a host folder."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from rich.console import Console

from ..virtual_board import DEFAULT_HEAPSIZE, VirtualBoard
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
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the board like Ctrl-C: through `finally`


def run(args: argparse.Namespace) -> int:
    board = VirtualBoard(args.dir, port=args.port, host=args.host, heapsize=args.heapsize)
    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        board.start()
        con = Console()
        con.print(f"virtual board on [bold]{board.url}[/] (files in {board.directory})")
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
