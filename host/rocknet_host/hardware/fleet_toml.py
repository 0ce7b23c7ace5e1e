"""A fleet description (``fleet.toml``): which boards, how many, and where they are plugged in.

    [fleet]
    plan_dir = "plans"            # optional: node_XX.plan files (from `rocknet plan`)
    key_file = "fleet.key"        # optional: the fleet's network key (made on first deploy)

    [[group]]
    board = "adafruit_feather_nrf52840"
    count = 3
    ports = ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyACM2"]   # optional (deploy needs them)

Nodes are numbered in file order: group 1's boards first. Relative paths are relative to the
fleet file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[no-redef]

from .. import boards
from ..boards import Board
from ..errors import UserError


class FleetError(UserError):
    """The fleet file is malformed (the message names the file and the fix)."""


@dataclass(frozen=True)
class Group:
    board: Board
    count: int
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoardSlot:
    """One board of the fleet file: its node index, board and port (None: not given)."""

    index: int
    board: Board
    port: str | None


@dataclass
class FleetFile:
    """A parsed ``fleet.toml`` (not the simulator's `sim.fleet.Fleet`, the fleet loop)."""

    groups: list[Group]
    plan_dir: Path | None = None
    key_file: Path | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return sum(g.count for g in self.groups)

    def nodes(self) -> list[BoardSlot]:
        out: list[BoardSlot] = []
        for g in self.groups:
            for j in range(g.count):
                out.append(BoardSlot(len(out), g.board, g.ports[j] if j < len(g.ports) else None))
        return out

    def describe(self) -> str:
        return " + ".join(f"{g.count} x {g.board.key}" for g in self.groups)


def parse(data: dict[str, Any], where: str = "fleet", base: Path | None = None) -> FleetFile:
    head = data.get("fleet", {})
    groups_raw = data.get("group")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise FleetError(f"{where}: no [[group]] tables; add one per board type, e.g.\n"
                         '[[group]]\nboard = "adafruit_feather_nrf52840"\ncount = 3')
    groups = []
    for i, g in enumerate(groups_raw, 1):
        w = f"{where} [[group]] #{i}"
        if not isinstance(g, dict) or "board" not in g:
            raise FleetError(f"{w}: missing `board` (one of {', '.join(boards.names())})")
        try:
            board = boards.load(str(g["board"]))
        except boards.BoardError as exc:
            raise FleetError(f"{w}: {exc}") from None
        ports = g.get("ports", [])
        if not isinstance(ports, list) or not all(isinstance(p, str) for p in ports):
            raise FleetError(f"{w}: `ports` must be a list of strings")
        count = g.get("count", len(ports))
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FleetError(f"{w}: `count` must be a positive integer, got {count!r}")
        if len(ports) > count:
            raise FleetError(f"{w}: {len(ports)} ports listed for count = {count}")
        groups.append(Group(board, count, tuple(ports)))

    def rel(key: str) -> Path | None:
        v = head.get(key)
        if v is None:
            return None
        p = Path(str(v))
        return p if p.is_absolute() or base is None else base / p

    return FleetFile(groups, plan_dir=rel("plan_dir"), key_file=rel("key_file"))


def load(path: str | Path) -> FleetFile:
    path = Path(path)
    if not path.exists():
        raise FleetError(f"fleet file {path} not found (see `rocknet deploy --help` for its form)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"{path}: not valid TOML: {exc}") from None
    fleet = parse(data, str(path), path.parent)
    fleet.path = path
    return fleet
