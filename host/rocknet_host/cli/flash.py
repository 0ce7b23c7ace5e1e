"""`rocknet flash --board NAME --port P --firmware FILE`: check and write board firmware."""

from __future__ import annotations

import argparse

from .. import boards
from ..errors import UserError
from ..hardware import flash as fl
from .common import at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flash", help="flash firmware (esptool for ESP32, UF2 copy for nRF52840)")
    p.add_argument("--board", required=True, help=f"board file name: {', '.join(boards.names())}")
    p.add_argument("--port", help="serial port (ESP32: required; nRF52840: optional, used to "
                                  "restart the board into its UF2 bootloader)")
    p.add_argument("--firmware", required=True, help=".bin (ESP32), .uf2 (nRF52840) or .hex (DK)")
    p.add_argument("--drive", help="bootloader drive folder, if it is not found by its name")
    p.add_argument("--baud", type=at_least(1),
                   help="esptool baud rate (default from the board file)")
    p.add_argument("--no-erase", action="store_true", help="esptool: do not erase flash first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        board = boards.load(args.board)
        fl.flash(board, args.firmware, args.port, drive=args.drive, baud=args.baud,
                 erase=False if args.no_erase else None)
    except (boards.BoardError, fl.FirmwareMismatch) as exc:
        raise UserError(str(exc)) from None
    print(f"flashed {args.firmware} to the {board.name}")
    return 0
