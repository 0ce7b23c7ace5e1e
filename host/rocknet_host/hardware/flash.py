"""Put firmware on a board: esptool for ESP32 boards, a UF2 copy for nRF52840 boards, a .hex
copy onto the J-Link drive for the nRF52840 DK. Every image is checked against the board first.

Seams for tests: `run_esptool(argv)` is the one call into esptool, `mount_points()` lists drives.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..boards import Board
from ..errors import ToolError, UserError

# ESP image header (esptool's IMAGE_CHIP_ID of each target; byte 12-13 of the header).
ESP_IMAGE_MAGIC = 0xE9
ESP_CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9, "esp32c2": 12,
                "esp32c6": 13, "esp32h2": 16, "esp32p4": 18}
UF2_MAGIC = (0x0A324655, 0x9E5D5157, 0x0AB16F30)
UF2_FLAG_FAMILY = 0x00002000


class FirmwareMismatch(UserError):
    """The firmware file is not for this board (the message says why and what to get)."""


def run_esptool(argv: list[str]) -> None:
    """The single call into esptool (tests replace this to inspect the command)."""
    import esptool

    esptool.main(argv)


def esptool_argv(board: Board, port: str, firmware: Path, baud: int | None = None,
                 erase: bool | None = None) -> list[str]:
    """esptool v5 arguments that write `firmware` at the board's offset."""
    fl = board.flash
    if fl.method != "esptool" or fl.chip is None:
        raise ValueError(f"{board.key} is not flashed with esptool (method {fl.method})")
    argv = ["--chip", fl.chip, "--port", port, "--baud", str(baud or fl.baud), "write-flash"]
    if fl.erase if erase is None else erase:
        argv.append("--erase-all")
    return [*argv, f"0x{fl.offset:x}", str(firmware)]


def check_esp_image(board: Board, data: bytes) -> None:
    chip = board.flash.chip
    if len(data) < 16 or data[0] != ESP_IMAGE_MAGIC:
        hint = " (this is a UF2 file)" if data[:4] == struct.pack("<I", UF2_MAGIC[0]) else ""
        raise FirmwareMismatch(
            f"not an ESP32 firmware image{hint}: expected magic 0xE9 at the start. Download the "
            f"{chip} .bin (e.g. ESP32_GENERIC{'_S3' if chip == 'esp32s3' else ''}-*.bin, built "
            "with ulab: tools/firmware/) for the " + board.name)
    chip_id = struct.unpack_from("<H", data, 12)[0]
    if chip_id != ESP_CHIP_IDS[chip or ""]:
        found = {v: k for k, v in ESP_CHIP_IDS.items()}.get(chip_id, f"chip id {chip_id}")
        raise FirmwareMismatch(
            f"this image is built for {found}, but the {board.name} is an {chip}: "
            f"use a firmware built for {chip}")


def uf2_families(data: bytes) -> set[int]:
    """Family ids of a UF2 file's blocks (raises FirmwareMismatch if it is not UF2)."""
    if len(data) < 512 or len(data) % 512:
        raise FirmwareMismatch("not a UF2 file: size is not a multiple of 512-byte blocks")
    fams = set()
    for off in range(0, len(data), 512):
        m0, m1, flags = struct.unpack_from("<III", data, off)
        (m2,) = struct.unpack_from("<I", data, off + 508)
        if (m0, m1, m2) != UF2_MAGIC:
            raise FirmwareMismatch(f"not a UF2 file: bad block magic at byte {off}")
        fams.add(struct.unpack_from("<I", data, off + 28)[0] if flags & UF2_FLAG_FAMILY else 0)
    return fams


def check_uf2(board: Board, data: bytes) -> None:
    want = board.flash.uf2_family
    fams = uf2_families(data)
    if fams != {want}:
        got = ", ".join(f"0x{f:08X}" for f in sorted(fams))
        raise FirmwareMismatch(
            f"this UF2 is for family {got}, but the {board.name} takes 0x{want:08X} "
            f"({board.mcu}): download the {board.name} CircuitPython .uf2 from circuitpython.org")


def check_hex(board: Board, data: bytes) -> None:
    if not data.lstrip()[:1] == b":":
        raise FirmwareMismatch(f"the {board.name} J-Link drive takes Intel HEX (.hex) files; "
                               "build zephyr.hex (tools/firmware/nrf52840-zephyr.md)")


def check_firmware(board: Board, firmware: Path) -> None:
    """Refuse a firmware file that does not match the board."""
    data = Path(firmware).read_bytes()
    method = board.flash.method
    if method == "esptool":
        check_esp_image(board, data)
    elif method == "uf2":
        check_uf2(board, data)
    elif method == "jlink-drive":
        check_hex(board, data)
    else:
        raise FirmwareMismatch(f"the {board.name} has no firmware to flash")


def mount_points() -> list[Path]:
    """Mounted file systems (Linux /proc/mounts, macOS /Volumes, Windows drive letters)."""
    found: list[Path] = []
    mounts = Path("/proc/mounts")
    if mounts.exists():
        for line in mounts.read_text().splitlines():
            parts = line.split()
            if len(parts) > 1:
                found.append(Path(parts[1].replace("\\040", " ")))
    for base in ("/Volumes", "/media", f"/media/{os.environ.get('USER', '')}", "/run/media"):
        if Path(base).is_dir():
            found.extend(p for p in Path(base).iterdir() if p.is_dir())
    if sys.platform == "win32":  # pragma: no cover
        letters = (Path(f"{c}:\\") for c in "DEFGHIJKLMNOPQRSTUVWXYZ")
        found.extend(p for p in letters if p.exists())
    return found


def find_drive(volume: str, mounts: Callable[[], list[Path]] | None = None) -> Path | None:
    """The mounted drive named `volume` (its mount folder carries the volume label)."""
    for mp in (mounts or mount_points)():
        if mp.name == volume and mp.is_dir():
            return mp
    return None


def touch_1200(port: str) -> None:
    """Open and close the port at 1200 baud: CircuitPython then restarts into its bootloader."""
    import serial

    try:
        serial.Serial(port, 1200).close()
    except (OSError, serial.SerialException):
        pass


def copy_to_drive(board: Board, firmware: Path, port: str | None = None,
                  drive: Path | None = None, wait: float = 10.0,
                  log: Callable[[str], None] = print) -> Path:
    """Copy a UF2 (or .hex) onto the board's bootloader drive; returns the file written."""
    volume = board.flash.volume or ""
    target = Path(drive) if drive else find_drive(volume)
    if target is None and port:
        log(f"asking the board on {port} to start its bootloader (1200-baud touch)...")
        touch_1200(port)
        deadline = time.monotonic() + wait
        while target is None and time.monotonic() < deadline:
            time.sleep(0.5)
            target = find_drive(volume)
    if target is None or not target.is_dir():
        how = ("double-tap its reset button: the LED pulses and a drive named "
               f"{volume} appears" if board.flash.method == "uf2"
               else f"plug in the DK's J-Link USB port (the {volume} drive appears)")
        raise UserError(f"no {volume} drive found for the {board.name}. To flash it, {how}; "
                        f"then run this again (or pass --drive /path/to/{volume}).")
    dest = target / Path(firmware).name
    log(f"copying {Path(firmware).name} to {target} ...")
    shutil.copyfile(firmware, dest)
    if hasattr(os, "sync"):
        os.sync()
    return dest


def flash(board: Board, firmware: Path, port: str | None = None, *, drive: Path | None = None,
          baud: int | None = None, erase: bool | None = None,
          log: Callable[[str], None] = print) -> list[str] | Path:
    """Check the image against the board, then write it. Returns the esptool argv or the copy."""
    firmware = Path(firmware)
    if not firmware.is_file():
        raise UserError(f"firmware file {firmware} not found: give the path of a .bin, "
                        ".uf2 or .hex file (see tools/firmware/README.md)")
    check_firmware(board, firmware)
    if board.flash.method == "esptool":
        if not port:
            raise UserError(f"--port is needed to flash the {board.name} with esptool "
                            "(e.g. /dev/ttyUSB0 or /dev/ttyACM0)")
        argv = esptool_argv(board, port, firmware, baud, erase)
        log("esptool " + " ".join(argv))
        try:
            run_esptool(argv)
        except Exception as exc:  # esptool.FatalError and friends
            raise ToolError(f"esptool failed: {exc}. Check the port, then hold BOOT while "
                            "pressing RESET (download mode) and run this again.") from None
        return argv
    return copy_to_drive(board, firmware, port, drive, log=log)
