"""Energy per node from a current-draw model.

Defaults are RockNet's nRF52840 figures (3 V; TX 13.63 mA, RX 6.4 mA, CPU 3.71 mA, sleep
0.205 mA). A board file `boards/<name>.toml` overrides them when present; the loader is tolerant
about layout (a [current] / [power] / [energy] table or top-level keys, names like tx_ma, rx_ma,
cpu_ma, sleep_ma, voltage_v) because the board files are written elsewhere.

Accounting: component currents add (the radio and CPU draw on top of the chip's floor), and the
sleep current covers the time in which neither radio nor CPU is active:
E = V * (I_tx*t_tx + I_rx*t_rx + I_cpu*t_cpu + I_sleep*max(0, T - t_tx - t_rx - t_cpu)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..resources import BOARDS_DIR

try:  # Python 3.11+
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python 3.10 without tomli: defaults only
    _toml = None  # type: ignore[assignment]


@dataclass(frozen=True)
class CurrentModel:
    """Supply voltage and current draw per state (mA). Source names where figures came from."""

    voltage_v: float = 3.0
    tx_ma: float = 13.63
    rx_ma: float = 6.4
    cpu_ma: float = 3.71
    sleep_ma: float = 0.205
    source: str = "RockNet nRF52840 model (defaults)"

    def energy_mj(self, tx_s: float, rx_s: float, cpu_s: float, total_s: float) -> float:
        """Energy in millijoules (V * mA * s = mJ)."""
        idle = max(0.0, total_s - tx_s - rx_s - cpu_s)
        charge = self.tx_ma * tx_s + self.rx_ma * rx_s + self.cpu_ma * cpu_s + self.sleep_ma * idle
        return self.voltage_v * charge

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = CurrentModel()

# accepted spellings per field, matched against lower-cased keys
_ALIASES = {
    "voltage_v": ("voltage_v", "voltage", "supply_v", "vdd", "v", "supply_voltage_v"),
    "tx_ma": ("tx_ma", "tx", "radio_tx_ma", "tx_current_ma", "current_tx_ma"),
    "rx_ma": ("rx_ma", "rx", "radio_rx_ma", "rx_current_ma", "current_rx_ma"),
    "cpu_ma": ("cpu_ma", "cpu", "active_ma", "run_ma", "compute_ma", "current_cpu_ma"),
    "sleep_ma": ("sleep_ma", "sleep", "idle_ma", "low_power_ma", "current_sleep_ma"),
}
_TABLES = ("current", "current_ma", "power", "energy", "currents")


def _lookup(table: dict[str, Any], strict: bool = False) -> dict[str, float]:
    """Figures found in one table; strict (top level) accepts only unit-suffixed names."""
    found: dict[str, float] = {}
    lowered = {str(k).lower(): v for k, v in table.items()}
    for field, names in _ALIASES.items():
        for name in names:
            if strict and not name.endswith(("_ma", "_v")):
                continue
            value = lowered.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[field] = float(value)
                break
        else:  # micro-amp spellings (sleep currents are often given in uA)
            ua = lowered.get(field.replace("_ma", "_ua"))
            if field.endswith("_ma") and isinstance(ua, (int, float)):
                found[field] = float(ua) / 1000.0
    return found


def board_path(board: str, boards_dir: Path = BOARDS_DIR) -> Path | None:
    for candidate in (boards_dir / f"{board}.toml", boards_dir / board):
        if candidate.is_file():
            return candidate
    return None


def load_board_table(board: str, boards_dir: Path = BOARDS_DIR) -> dict[str, Any]:
    """The parsed board file, or {} when there is none (or it cannot be parsed)."""
    path = board_path(board, boards_dir)
    if path is None or _toml is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return dict(_toml.load(fh))
    except (OSError, ValueError):
        return {}


def current_model(board: str | None = None, boards_dir: Path = BOARDS_DIR) -> CurrentModel:
    """Current model for a board: its boards/ file where it names figures, defaults elsewhere."""
    if not board:
        return DEFAULT
    data = load_board_table(board, boards_dir)
    if not data:
        return DEFAULT
    found: dict[str, float] = {}
    for name in _TABLES:  # nested tables first, then top-level keys fill gaps
        sub = data.get(name)
        if isinstance(sub, dict):
            found = {**_lookup(sub), **found}
    found = {**_lookup(data, strict=True), **found}
    if not found:
        return DEFAULT
    return replace(DEFAULT, **found, source=f"boards/{board}.toml (+ defaults for the rest)")


def list_boards(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.toml")) if boards_dir.is_dir() else []
