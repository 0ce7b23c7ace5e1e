"""`rocknet.run()` (`board.setup`) failures raise `board.SetupError` naming the fix, so that a
script or `mpremote exec` sees them (end to end on a virtual board: tests/test_packaging.py)."""

from __future__ import annotations

import pytest
from rocknet_host.runtimes import import_device

board = import_device("rocknet.board")
rocknet = import_device("rocknet")


def test_run_without_files_raises_naming_the_fix(tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(board.SetupError, match="rocknet plan"):
        rocknet.run(plan=missing + ".plan", key=missing + ".key", data=missing + ".data",
                   result=None)
