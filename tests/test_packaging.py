"""Packaging: the wheel ships the device package and the board files (so `pip install .`, not
editable, works from any folder), pyproject's package list covers the host tree, and
device/package.json (what `mpremote mip install` reads) lists every file `rocknet.run()` needs:
checked by the generator and by a real `mpremote mip install` into a virtual board."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from rocknet_host.cli import main
from rocknet_host.hardware.virtual_board import VirtualBoard
from rocknet_host.resources import REPO_ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEVICE = REPO_ROOT / "device"


def test_pyproject_lists_every_package_of_the_tree():
    cfg = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]

    def packages(root: Path, prefix: str = "") -> set[str]:
        return {prefix + ".".join(p.parent.relative_to(root).parts)
                for p in root.rglob("__init__.py") if "__pycache__" not in p.parts}

    want = (packages(REPO_ROOT / "host") | packages(DEVICE, "rocknet_host._device.")
            | {"rocknet_host._boards"})
    assert set(cfg["packages"]) == want, "update [tool.setuptools] packages in pyproject.toml"
    assert cfg["package-dir"]["rocknet_host._device"] == "device"


def test_package_json_lists_the_device_tree():
    res = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_package_json.py"),
                          "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    pkg = json.loads((DEVICE / "package.json").read_text())
    listed = {d for d, _ in pkg["urls"]}
    for needed in ("rocknet/board.py", "rocknet/head.py", "rocknet/node.py", "rocknet/link.py",
                   "rocknet/radio/sim.py", "rocknet/radio/bleio.py", "rocknet/store.py"):
        assert needed in listed
    for dest, url in pkg["urls"]:
        assert dest == url and (DEVICE / url).is_file(), url


def test_manifest_freezes_exactly_the_device_package():
    """device/manifest.py (MicroPython's FROZEN_MANIFEST format), run with its commands as
    MicroPython's manifest tool defines them (package(): every .py file under
    base_path/name, recursively), names the files package.json lists and deploy sends."""
    from rocknet_host.hardware.deploy import package_sources

    frozen: list[str] = []

    def package(name: str, files: list[str] | None = None, base_path: str = ".",
                opt: int | None = None) -> None:
        root = DEVICE / base_path
        assert files is None, "list no files: the folder is the one list of them"
        frozen.extend(p.relative_to(root).as_posix() for p in (root / name).rglob("*.py")
                      if "__pycache__" not in p.parts)

    code = (DEVICE / "manifest.py").read_text()
    exec(compile(code, str(DEVICE / "manifest.py"), "exec"), {"package": package})
    pkg = json.loads((DEVICE / "package.json").read_text())
    assert sorted(frozen) == sorted(d for d, _ in pkg["urls"])
    assert sorted(frozen) == sorted(f"rocknet/{rel}" for rel in package_sources())


def test_package_json_check_fails_when_out_of_date(tmp_path):
    """--check exits 1 naming the missing file (run on a copy of the tree with a new module)."""
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO_ROOT / "tools" / "make_package_json.py", tmp_path / "tools")
    shutil.copytree(DEVICE, tmp_path / "device", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "device" / "rocknet" / "extra.py").write_text("X = 1\n")
    res = subprocess.run([sys.executable, str(tmp_path / "tools" / "make_package_json.py"),
                          "--check"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1 and "rocknet/extra.py" in res.stderr, res.stderr


@pytest.fixture(scope="module")
def mip_board(tmp_path_factory):
    """A virtual board with nothing but what `mpremote mip install device/package.json` put on
    it."""
    with VirtualBoard(tmp_path_factory.mktemp("board")) as board:
        res = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.url, "mip",
                              "install", "--target", "/lib", str(DEVICE / "package.json")],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        yield board


def exec_on(board: VirtualBoard, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", board.url, "exec", code],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_mip_install_into_a_virtual_board_then_validate(mip_board, capsys):
    """The mip-installed board imports the runner and passes `rocknet validate --port`."""
    res = exec_on(mip_board, "import rocknet, rocknet.board, rocknet.head, rocknet.radio.sim\n"
                             "print(rocknet.__version__, rocknet.board.__file__)")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split()[1] == "/lib/rocknet/board.py"
    assert main(["validate", "--port", mip_board.url, "--nodes", "1", "--features", "84",
                 "--limit", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["boards"][0]["passed"] is True


@pytest.mark.slow
def test_a_failing_run_makes_mpremote_exec_fail(mip_board):
    """`rocknet.run()` on a board without its plan files names the fix AND fails, so that
    `mpremote exec "import rocknet; rocknet.run()"` (and a script around it) sees exit 1."""
    res = exec_on(mip_board, "import rocknet; rocknet.run()")
    assert "rocknet plan" in res.stdout + res.stderr
    assert res.returncode != 0, res.stdout + res.stderr


@pytest.mark.slow
def test_wheel_install_outside_the_checkout_validates(tmp_path):
    """`pip install .` (not editable) into a fresh venv, then `rocknet validate` from another
    folder. No downloads: the venv sees this interpreter's packages through a .pth file, and
    the build runs without isolation."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src)
    for name in ("host", "device", "boards"):  # a copy: the build writes into its tree
        shutil.copytree(REPO_ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "_rocknet_test_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", str(src)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    where = subprocess.run([str(py), "-c",
                            "import rocknet_host.resources as p; print(p.DEVICE_DIR)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    res = subprocess.run([str(venv / "bin" / "rocknet"), "validate", "--runtime", "cpython",
                          "--dataset", "GunPoint", "--nodes", "2", "--limit", "2"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "features bit-exact" in res.stdout
