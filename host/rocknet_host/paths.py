"""Where the repository's parts live (the host package is installed editable from the repo)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVICE_DIR = REPO_ROOT / "device"
BOARDS_DIR = REPO_ROOT / "boards"
