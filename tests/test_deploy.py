"""`rocknet deploy` to virtual boards through mpremote's transport: three boards, plans and key,
idempotent re-runs, and a deploy interrupted half-way that the next run completes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from rocknet_host.cli import main
from rocknet_host.hardware import deploy as dp
from rocknet_host.hardware.virtual_board import VirtualBoard
from rocknet_host.runtimes import import_device

store = import_device("rocknet.store")


def mpremote(url: str, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "mpremote", "connect", url, *args],
                         capture_output=True, text=True, timeout=120)
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    bs = [VirtualBoard(tmp_path_factory.mktemp(f"b{i}")).start() for i in range(3)]
    yield bs
    for b in bs:
        b.close()


@pytest.mark.slow
def test_deploy_three_boards_then_plans_via_fleet(boards, tmp_path):
    urls = [b.url for b in boards]
    args = ["deploy"] + [x for u in urls for x in ("--port", u)]
    assert main(args) == 0
    version = dp.package_version()
    for u in urls:
        out = mpremote(u, "exec", "import rocknet; print(rocknet.__version__, rocknet.__file__)")
        assert out.split() == [version, "/lib/rocknet/__init__.mpy"]
    # no plan given: the package alone
    assert "rocknet_plan.bin" not in mpremote(urls[0], "fs", "ls", ":")

    plans = tmp_path / "plans"
    plans.mkdir()
    for i in range(3):
        (plans / f"node_{i:02d}.plan").write_bytes(store.encode("plan", store.PLAN_VERSION,
                                                                 bytes([i]) * 50))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[fleet]\nplan_dir = "plans"\n\n[[group]]\nboard = "virtual"\ncount = 3\n'
                     f"ports = {urls!r}\n".replace("'", '"'))
    assert main(["deploy", "--fleet", str(fleet)]) == 0
    key = (plans / dp.KEY_NAME).read_bytes()
    assert len(key) == 16
    for i, u in enumerate(urls):
        want = hashlib.sha256((plans / f"node_{i:02d}.plan").read_bytes()).hexdigest()
        out = mpremote(u, "fs", "sha256sum", ":" + dp.PLAN_FILE, ":" + dp.KEY_FILE).split()
        assert want in out and hashlib.sha256(key).hexdigest() in out

    # a second run sends nothing
    res = dp.deploy_one(urls[1], dp.read_plan(plans, 1), key)
    assert res.ok and res.up_to_date and res.uploaded == 0


class Unplugged:
    """A target whose board goes away after `k` file writes (`pull` pulls the plug)."""

    def __init__(self, inner: dp.Target, k: int, pull) -> None:
        self.inner, self.k, self.pull, self.writes = inner, k, pull, 0

    def write(self, path, data, on_bytes):
        if self.writes == self.k:
            self.pull()
        self.writes += 1
        return self.inner.write(path, data, on_bytes)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.slow
def test_interrupted_deploy_is_completed_by_the_next_run(tmp_path):
    with VirtualBoard(tmp_path / "b") as board:
        # 1. no install yet; the board is unplugged after 3 files: nothing importable
        res = dp.deploy_one(board.url, None, None, opener=lambda p: Unplugged(
            dp.ReplTarget(p), 3, board.kill))
        assert not res.ok and "connection lost" in res.message
        board.start()  # plugged back in: files written so far were kept
        assert "ImportError" in mpremote(board.url, "exec", "import rocknet")
        staged = dp.ReplTarget(board.url)
        assert len(staged.hashes([dp.STAGING_DIR], [])[dp.STAGING_DIR]) >= 3
        staged.close()
        res = dp.deploy_one(board.url, None, None)
        assert res.ok and res.reused >= 3, res
        out = mpremote(board.url, "exec", "import rocknet; print(rocknet.__version__)")
        assert out.strip() == dp.package_version()

        # 2. an update that fails after 2 files keeps the old install importable
        new = tmp_path / "new" / "rocknet"
        new.mkdir(parents=True)
        (new / "__init__.py").write_text('__version__ = "9.9.9"\n')
        for name in "abcd":
            (new / f"{name}.py").write_text(f"X = {name!r}\n")
        fail = lambda: (_ for _ in ()).throw(dp.DeployError("unplugged"))  # noqa: E731
        res = dp.deploy_one(board.url, None, None, device_dir=new.parent,
                            opener=lambda p: Unplugged(dp.ReplTarget(p), 2, fail))
        assert not res.ok
        out = mpremote(board.url, "exec", "import rocknet; print(rocknet.__version__)")
        assert out.strip() == dp.package_version()
        res = dp.deploy_one(board.url, None, None, device_dir=new.parent)
        assert res.ok and res.reused == 2 and res.uploaded == 3, res
        out = mpremote(board.url, "exec", "import rocknet; print(rocknet.__version__)",
                       "+", "fs", "ls", ":lib")
        assert "9.9.9" in out and ".rocknet-new" not in out and ".rocknet-old" not in out


def test_drive_target_and_refusals(tmp_path, capsys):
    drive = tmp_path / "CIRCUITPY"
    drive.mkdir()
    (drive / "boot_out.txt").write_text("Adafruit CircuitPython 9.2.1 on 2024-11-20; Adafruit "
                                        "Feather nRF52840 Express with nRF52840\n")
    res = dp.deploy_one(str(drive), None, None)
    assert res.ok and res.fmt == "py"
    assert (drive / "lib" / "rocknet" / "__init__.py").exists()
    assert dp.deploy_one(str(drive), None, None).up_to_date
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "node_00.plan").write_bytes(b"p")
    (plans / "node_01.plan").write_bytes(b"q")
    assert main(["deploy", "--port", str(drive), "--plan-dir", str(plans)]) == 2
    assert "re-plan with --nodes 1" in capsys.readouterr().err
    # a damaged plan or data file is refused before anything is sent, naming the fix
    (plans / "node_01.plan").unlink()
    good = store.encode("plan", store.PLAN_VERSION, b'{"format": "rocknet-plan"}')
    for name, raw in [("node_00.plan", good[:-1] + b"]"), ("node_00.plan", b"X" + good[1:]),
                      ("node_00.data", store.encode("data", 7, b"x"))]:
        (plans / "node_00.plan").write_bytes(good)
        (plans / name).write_bytes(raw)
        before = sorted(p.name for p in drive.rglob("*"))
        assert main(["deploy", "--port", str(drive), "--plan-dir", str(plans)]) == 2
        err = capsys.readouterr().err
        assert name in err and "rocknet plan" in err and "Nothing was sent" in err, err
        assert sorted(p.name for p in drive.rglob("*")) == before
        (plans / "node_00.data").unlink(missing_ok=True)


@pytest.mark.slow
def test_validate_on_each_board(boards, monkeypatch, capsys):
    """`rocknet validate --port socket://...` passes on every deployed board, and reports a
    failure when the board disagrees with the reference."""
    urls = [b.url for b in boards]
    assert main(["deploy"] + [x for u in urls for x in ("--port", u)]) == 0
    capsys.readouterr()
    args = ["validate", "--dataset", "GunPoint", "--nodes", "2", "--features", "840",
            "--limit", "2", "--json"]
    assert main(args + [x for u in urls for x in ("--port", u)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [b["passed"] for b in res["boards"]] == [True] * 3
    checks = res["boards"][0]["checks"]
    assert {c["name"] for c in checks} == {"features bit-exact", "head partial logits"}
    assert len(checks) == 4  # two nodes x two checks
    out = mpremote(urls[0], "exec", "import rocknet; rocknet.demo(n_train=4, n_test=2)")
    assert "accuracy" in out and "memory" in out

    from rocknet_host.reference import minirocket as reference

    real = reference.slice_counts
    monkeypatch.setattr(reference, "slice_counts", lambda Q, f: real(Q, f) + 1)
    assert main(args + ["--port", urls[0]]) == 1
    assert json.loads(capsys.readouterr().out)["boards"][0]["passed"] is False


def test_validate_needs_a_deployed_board(tmp_path, capsys):
    with VirtualBoard(tmp_path / "empty") as b:
        assert main(["validate", "--port", b.url, "--nodes", "1", "--limit", "1"]) == 2
    assert "rocknet deploy --port" in capsys.readouterr().err
