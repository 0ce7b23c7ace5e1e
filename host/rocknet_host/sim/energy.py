"""Energy per node from a current-draw model.

A board's figures are its board file's ``[power]`` table, read by `rocknet_host.boards` (the
one board-file loader: an unknown or malformed board is a `boards.BoardError` naming the fix).
Without a board, `DEFAULT` is the default radio board's (``adafruit_feather_nrf52840``:
RockNet's nRF52840 figures).

Accounting: component currents add (the radio and CPU draw on top of the chip's floor), and the
sleep current covers the time in which neither radio nor CPU is active:
E = V * (I_tx*t_tx + I_rx*t_rx + I_cpu*t_cpu + I_sleep*max(0, T - t_tx - t_rx - t_cpu)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import boards
from ..resources import BOARDS_DIR


@dataclass(frozen=True)
class CurrentModel:
    """Supply voltage and current draw per state (mA). Source names where figures came from."""

    voltage_v: float
    tx_ma: float
    rx_ma: float
    cpu_ma: float
    sleep_ma: float
    source: str = "given"

    def energy_mj(self, tx_s: float, rx_s: float, cpu_s: float, total_s: float) -> float:
        """Energy in millijoules (V * mA * s = mJ)."""
        idle = max(0.0, total_s - tx_s - rx_s - cpu_s)
        charge = self.tx_ma * tx_s + self.rx_ma * rx_s + self.cpu_ma * cpu_s + self.sleep_ma * idle
        return self.voltage_v * charge

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def current_model(board: str | None = None, boards_dir: Path = BOARDS_DIR) -> CurrentModel:
    """Current model for a board (its file's ``[power]`` table); `DEFAULT` without one."""
    if not board:
        return DEFAULT
    b = boards.load(board, boards_dir)
    pw = b.power
    return CurrentModel(voltage_v=pw.voltage_v, tx_ma=pw.tx_ma, rx_ma=pw.rx_ma,
                        cpu_ma=pw.cpu_ma, sleep_ma=pw.sleep_ma,
                        source=f"{b.path.name} [power]")


DEFAULT_BOARD = "adafruit_feather_nrf52840"  # sim.radio's default board
DEFAULT = current_model(DEFAULT_BOARD)
