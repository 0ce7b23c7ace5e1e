"""Every script in examples/ runs as documented: the device ones on CPython and inside the
real MicroPython (through the `device` fixture, from the board's own file system there), the
host one as a script with either runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WRITE_FILES
from rocknet_host.resources import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def _host_env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO_ROOT / "host"), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> Path:
    """The files examples/host_api.py writes (run as a script, as its docstring says)."""
    out = tmp_path_factory.mktemp("plans")
    res = subprocess.run([sys.executable, str(EXAMPLES / "host_api.py"), str(out), "cpython"],
                         capture_output=True, text=True, env=_host_env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "features bit-exact: True" in res.stdout
    return out


def test_host_api_checks_in_micropython_too(tmp_path):
    res = subprocess.run([sys.executable, str(EXAMPLES / "host_api.py"), str(tmp_path),
                          "micropython"], capture_output=True, text=True, env=_host_env(),
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "micropython: 8 series x 3 nodes, features bit-exact: True" in res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fleet.json", "fleet.key", "node_00.data", "node_00.plan", "node_01.data",
        "node_01.plan", "node_02.data", "node_02.plan"]


def test_one_board_head(device):
    out = device.exec((EXAMPLES / "one_board_head.py").read_text())
    res = device.eval("result")
    assert res["features"] == 108 and res["steps"] > 0
    assert res["accuracy"] >= 0.8, out
    assert "test accuracy" in out


def test_three_nodes_on_the_air(device, plans):
    if getattr(device, "name", "") == "cpython":
        base = str(plans)
    else:  # the board's own file system
        base = "/rn_examples"
        device.set(base=base, files={p.name: p.read_bytes() for p in plans.iterdir()})
        device.exec(WRITE_FILES)
    device.set(PLANS=base)
    out = device.exec((EXAMPLES / "three_nodes_on_the_air.py").read_text())
    res = device.eval("result")
    assert res["agree"] is True, out
    correct, seen = res["accuracy"]
    assert seen >= 10 and correct >= 0.8 * seen, out
    assert "every node applied the same updates" in out


def test_three_nodes_script_on_cpython(plans):
    res = subprocess.run([sys.executable, str(EXAMPLES / "three_nodes_on_the_air.py"),
                          str(plans)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "every node applied the same updates" in res.stdout
