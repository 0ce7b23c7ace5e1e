"""Where rocknet's resources live: the device package (``device/rocknet``) and the board files
(``boards/*.toml``).

An installed wheel ships them inside this package (``rocknet_host/_device``,
``rocknet_host/_boards``; see pyproject.toml), found through `importlib.resources`; a checkout
(an editable install, or ``PYTHONPATH=host``) uses the repository's own folders.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The repository root of a checkout (node_modules/ with the MicroPython runtime lives there).
REPO_ROOT = Path(__file__).resolve().parents[2]


def _resource(shipped: str, in_checkout: str) -> Path:
    res = resources.files(__package__) / shipped
    if res.is_dir():  # an installed wheel: files on disk inside site-packages
        return Path(str(res))
    return REPO_ROOT / in_checkout


DEVICE_DIR = _resource("_device", "device")  # holds the `rocknet` device package
BOARDS_DIR = _resource("_boards", "boards")  # one TOML file per board
