"""Board descriptions: one TOML file per board under ``boards/`` (see any file there).

>>> b = load("adafruit_feather_nrf52840")
>>> b.heap_budget, b.runtime, b.flash.method, b.power.tx_ma
(100000, 'circuitpython', 'uf2', 13.63)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import UserError
from .resources import BOARDS_DIR
from .runtimes.profiles import PROFILES

RUNTIME_KINDS = ("circuitpython", "micropython")
# How a board gets rocknet's code: .mpy/.py files (`rocknet deploy`), a ROMFS image (`rocknet
# deploy --romfs`) or frozen into its firmware; the planner's code allowance follows it
# (fleet_plan.code_heap_bytes).
CODE_SOURCES = ("files", "romfs", "frozen")
FLASH_METHODS = ("uf2", "esptool", "jlink-drive", "none")
ESP_CHIPS = ("esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6")


class BoardError(UserError):
    """A board file is missing, malformed or incomplete (the message names file and key)."""


@dataclass(frozen=True)
class Radio:
    legacy_adv: bool
    extended_adv: bool
    max_adv_bytes: int
    scan_while_advertising: bool


@dataclass(frozen=True)
class Flash:
    method: str
    volume: str | None = None       # uf2 / jlink-drive: the drive's volume label
    uf2_family: int | None = None   # uf2: family id every block must carry
    chip: str | None = None         # esptool
    baud: int = 460800
    offset: int = 0
    erase: bool = True


@dataclass(frozen=True)
class Power:
    """Current draw in mA at voltage_v (the simulator's energy model reads these)."""

    voltage_v: float
    tx_ma: float
    rx_ma: float
    cpu_ma: float
    sleep_ma: float


@dataclass(frozen=True)
class Board:
    key: str            # file stem, e.g. "adafruit_feather_nrf52840"
    name: str
    mcu: str
    runtime: str        # circuitpython | micropython
    port: str           # nordic, zephyr, esp32, webassembly, ...
    min_version: str
    mpy_cross: str      # which mpy-cross its .mpy files need
    heap_budget: int    # bytes available to rocknet
    float_bits: int
    cpu_mhz: float
    cpi: float          # cycles per instruction of MicroPython + ulab code (board clock model)
    usb_vid: int
    usb_pid: int
    radio: Radio
    flash: Flash
    power: Power
    path: Path = field(compare=False, repr=False)
    profile: str = "webassembly"  # runtime profile (profiles.py) a virtual twin runs under
    code_from: str = "files"      # CODE_SOURCES: how the board gets rocknet's code

    @property
    def usb_id(self) -> str:
        return f"{self.usb_vid:04X}:{self.usb_pid:04X}"


def _get(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise BoardError(f"{where}: missing key `{key}`")
    value = d[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        name = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise BoardError(f"{where}: `{key}` must be {name}, got {value!r}")
    return value


def _table(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    return _get(d, key, dict, where)


def parse(data: dict[str, Any], key: str, path: Path) -> Board:
    """Validate a parsed board file and build the Board."""
    w = str(path)
    rt, mem, radio, usb = (_table(data, k, w) for k in ("runtime", "memory", "radio", "usb"))
    fl, clock, power = (_table(data, k, w) for k in ("flash", "clock", "power"))
    kind = _get(rt, "kind", str, f"{w} [runtime]")
    if kind not in RUNTIME_KINDS:
        raise BoardError(f"{w} [runtime]: kind must be one of {RUNTIME_KINDS}, got {kind!r}")
    method = _get(fl, "method", str, f"{w} [flash]")
    if method not in FLASH_METHODS:
        raise BoardError(f"{w} [flash]: method must be one of {FLASH_METHODS}, got {method!r}")
    fw = f"{w} [flash]"
    flash = Flash(method=method)
    if method in ("uf2", "jlink-drive"):
        flash = Flash(method=method, volume=_get(fl, "volume", str, fw),
                      uf2_family=_get(fl, "uf2_family", int, fw) if method == "uf2" else None)
    elif method == "esptool":
        chip = _get(fl, "chip", str, fw)
        if chip not in ESP_CHIPS:
            raise BoardError(f"{fw}: chip must be one of {ESP_CHIPS}, got {chip!r}")
        flash = Flash(method=method, chip=chip, baud=_get(fl, "baud", int, fw),
                      offset=_get(fl, "offset", int, fw), erase=bool(fl.get("erase", True)))
    heap = _get(mem, "heap_budget", int, f"{w} [memory]")
    if heap <= 0:
        raise BoardError(f"{w} [memory]: heap_budget must be positive bytes, got {heap}")
    bits = _get(mem, "float_bits", int, f"{w} [memory]")
    if bits not in (32, 64):
        raise BoardError(f"{w} [memory]: float_bits must be 32 or 64, got {bits}")
    mhz, cpi = (_get(clock, k, float, f"{w} [clock]") for k in ("cpu_mhz", "cpi"))
    if mhz <= 0 or cpi <= 0:
        raise BoardError(f"{w} [clock]: cpu_mhz and cpi must be positive, got {mhz}, {cpi}")
    pw = f"{w} [power]"
    pwr = Power(**{k: _get(power, k, float, pw)
                   for k in ("voltage_v", "tx_ma", "rx_ma", "cpu_ma", "sleep_ma")})
    if any(v < 0 for v in vars(pwr).values()):
        raise BoardError(f"{pw}: currents and voltage must not be negative")
    rw = f"{w} [radio]"
    profile = str(rt.get("profile", "webassembly"))
    if profile not in PROFILES:
        raise BoardError(f"{w} [runtime]: profile must be one of {tuple(PROFILES)}, got "
                         f"{profile!r}")
    code_from = str(rt.get("code_from", "files"))
    if code_from not in CODE_SOURCES:
        raise BoardError(f"{w} [runtime]: code_from must be one of {CODE_SOURCES}, got "
                         f"{code_from!r}")
    if code_from == "romfs" and kind == "circuitpython":
        raise BoardError(f"{w} [runtime]: CircuitPython has no ROMFS: code_from must be "
                         "\"files\" or \"frozen\"")
    return Board(
        key=key,
        name=_get(data, "name", str, w),
        mcu=_get(data, "mcu", str, w),
        runtime=kind,
        port=_get(rt, "port", str, f"{w} [runtime]"),
        min_version=str(rt.get("min_version", "")),
        mpy_cross=str(rt.get("mpy_cross", kind)),
        heap_budget=heap,
        float_bits=bits,
        cpu_mhz=mhz,
        cpi=cpi,
        usb_vid=_get(usb, "vid", int, f"{w} [usb]"),
        usb_pid=_get(usb, "pid", int, f"{w} [usb]"),
        radio=Radio(
            legacy_adv=_get(radio, "legacy_adv", bool, rw),
            extended_adv=_get(radio, "extended_adv", bool, rw),
            max_adv_bytes=_get(radio, "max_adv_bytes", int, rw),
            scan_while_advertising=_get(radio, "scan_while_advertising", bool, rw),
        ),
        flash=flash,
        power=pwr,
        path=path,
        profile=profile,
        code_from=code_from,
    )


def names(directory: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load(name: str, directory: Path = BOARDS_DIR) -> Board:
    """A board by file stem (``adafruit_feather_nrf52840``) or by path to a .toml file."""
    path = Path(name) if name.endswith(".toml") else directory / f"{name}.toml"
    if not path.exists():
        raise BoardError(f"unknown board {name!r}: choose one of {', '.join(names(directory))} "
                         f"or add {directory}/{name}.toml")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path.stem, path)


def load_all(directory: Path = BOARDS_DIR) -> dict[str, Board]:
    return {n: load(n, directory) for n in names(directory)}
