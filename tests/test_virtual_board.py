"""The virtual board (WebAssembly MicroPython behind a TCP raw REPL) driven by real mpremote."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from rocknet_host.hardware.virtual_board import VirtualBoard
from rocknet_host.resources import DEVICE_DIR


def mpremote(url: str, *args: str, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mpremote", "connect", url, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    with VirtualBoard(tmp_path_factory.mktemp("vboard")) as b:
        yield b


def test_exec_and_runtime(board):
    out = mpremote(board.url, "exec", "import sys, ulab; print(sys.implementation.name, "
                   "ulab.__version__, '/lib' in sys.path, '' in sys.path)").stdout
    assert out.split() == ["micropython", "6.12.1-2D-c", "True", "True"]


def test_cp_ls_hash_and_import(board, tmp_path):
    src = tmp_path / "hello.py"
    src.write_bytes(b"GREETING = 'hi'\n" + bytes(range(32, 127)) * 20 + b"\n")
    mpremote(board.url, "fs", "cp", str(src), ":hello.txt")
    ls = mpremote(board.url, "fs", "ls").stdout
    assert f"{src.stat().st_size} hello.txt" in " ".join(ls.split())
    digest = mpremote(board.url, "fs", "sha256sum", ":hello.txt").stdout.split()[-1]
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    # `cp -r rocknet :` then `import rocknet` works, as on a board (a two-file package here;
    # the whole one goes through `rocknet deploy` in test_deploy)
    pkg = tmp_path / "rocknet"
    pkg.mkdir()
    (pkg / "__init__.py").write_bytes((DEVICE_DIR / "rocknet" / "__init__.py").read_bytes())
    (pkg / "xp.py").write_bytes((DEVICE_DIR / "rocknet" / "xp.py").read_bytes())
    mpremote(board.url, "fs", "cp", "-r", "rocknet", ":", cwd=tmp_path)
    out = mpremote(board.url, "exec", "import rocknet, rocknet.xp; print(rocknet.__version__,"
                   " rocknet.xp.ULAB)").stdout
    version = (DEVICE_DIR / "rocknet" / "__init__.py").read_text().split('__version__ = "')[1]
    assert out.split() == [version.split('"')[0], "True"]
    # the files are mirrored to the host folder
    assert (board.directory / "hello.txt").read_bytes() == src.read_bytes()
    assert (board.directory / "rocknet" / "__init__.py").exists()
    mpremote(board.url, "fs", "rm", "-r", ":rocknet")
    assert not (board.directory / "rocknet").exists()


def test_errno_is_micropythons(board):
    res = mpremote(board.url, "exec", "import os\ntry:\n os.stat('/nope')\n"
                   "except OSError as e:\n print(e.errno)")
    assert res.stdout.strip() == "2"  # ENOENT, not Emscripten's 44
    res = mpremote(board.url, "fs", "cat", ":nope", check=False)
    assert "No such file" in res.stdout + res.stderr
    res = mpremote(board.url, "fs", "mkdir", ":d1", "+", "fs", "mkdir", ":d1", check=False)
    assert "File exists" in res.stdout + res.stderr
    mpremote(board.url, "fs", "rmdir", ":d1")


def test_soft_reset_gives_a_fresh_interpreter(board):
    out = mpremote(board.url, "exec", "import os; os.rn_mark = 1; print(os.rn_mark)",
                   "+", "soft-reset", "+", "exec", "import os; print(hasattr(os, 'rn_mark'))")
    assert out.stdout.split() == ["1", "False"]
    # `resume` skips the reset: state from an earlier exec in the same session is kept
    out = mpremote(board.url, "exec", "x = 41", "+", "resume", "exec", "print(x + 1)")
    assert out.stdout.strip() == "42"


def test_files_survive_a_restart(tmp_path):
    with VirtualBoard(tmp_path / "b") as b:
        mpremote(b.url, "fs", "mkdir", ":lib", "+", "exec",
                 "open('/lib/keep.py','w').write('X = 7\\n')")
        b.kill()  # no clean shutdown: mirrored already
        b.start()
        out = mpremote(b.url, "exec", "import keep; print(keep.X)").stdout
        assert out.strip() == "7"


def test_repl_protocol_over_a_plain_socket(board):
    """Friendly REPL, raw REPL, refused raw-paste and soft reboot, byte for byte."""
    import socket

    def read_until(s: socket.socket, marker: bytes) -> bytes:
        buf = b""
        while marker not in buf:  # recv blocks; the socket's timeout only guards a hang
            got = s.recv(4096)
            assert got, buf  # the board closed the connection before the marker
            buf += got
        return buf

    with socket.create_connection((board.host, board.port), timeout=300) as s:
        s.sendall(b"\x02\r")                       # friendly REPL
        read_until(s, b">>> ")
        s.sendall(b"6 * 7\r")
        assert b"42" in read_until(s, b">>> ")
        s.sendall(b"\x01")                         # raw REPL
        read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        s.sendall(b"\x05A\x01")                    # raw-paste request: refused
        assert read_until(s, b"R\x00").endswith(b"R\x00")
        s.sendall(b"print('ok')\x04")
        assert b"OK" in read_until(s, b"ok\r\n\x04\x04>")
        s.sendall(b"\x04")                         # soft reboot, stays in raw mode
        out = read_until(s, b"raw REPL; CTRL-B to exit\r\n>")
        assert b"MPY: soft reboot\r\n" in out
        s.sendall(b"\x02")
        read_until(s, b">>> ")


# ----- `rocknet validate --port` on the virtual board -----


@pytest.fixture(scope="module")
def deployed(board):
    """The module's board with the whole rocknet package installed."""
    from rocknet_host.cli import main

    assert main(["deploy", "--port", board.url]) == 0
    return board


def _gunpoint(nodes=2, n_features=840, limit=4):
    import numpy as np
    from rocknet_host import data
    from rocknet_host.planning import features as plan

    ds = data.load("GunPoint")
    pl = plan.fit(ds, nodes, n_features=n_features)
    return pl, pl.quantizer(np.vstack([ds.X_train[:limit], ds.X_test[:limit]]))


class _Tampered:
    """A real session to the board that also runs ``tamper`` once the head is built (after
    its initial weights): a board whose head disagrees with the twin."""

    def __init__(self, url: str, tamper: str) -> None:
        from rocknet_host.hardware.validate import _Session

        self.s = _Session(url)
        self.tamper = tamper

    def exec(self, code: str, timeout: float = 60) -> str:
        if "Head(_p)" in code:
            code += "\n" + self.tamper + "\n"
        return self.s.exec(code, timeout)

    def close(self) -> None:
        self.s.close()


def test_validate_head_against_the_twin(deployed):
    """The device head on the board trains two momentum steps and matches the numpy twin:
    exactly here, since the WebAssembly build's floats are 64-bit and the head's fixed point
    makes the partial logits exact sums (only exp may differ by an ulp)."""
    from rocknet_host.hardware.validate import validate_board

    pl, Q = _gunpoint()
    rep = validate_board(deployed.url, pl, Q)
    assert rep.ok and rep.impl == "micropython" and rep.float_bits == 64
    heads = [c for c in rep.checks if c.name == "head partial logits"]
    assert len(heads) == 2 and len(rep.checks) == 4
    for c in heads:
        assert c.ok and "2 momentum steps of 4, 18 logits vs twin float64" in c.detail
        assert c.max_error is not None and c.max_error <= 1e-9, c.detail


@pytest.mark.parametrize("tamper", ["_h.lr *= 1.5", "_h._W[1] = _h._W[0]"])
def test_validate_head_fails_on_a_tampered_board(deployed, tamper):
    from rocknet_host.hardware.validate import validate_board

    pl, Q = _gunpoint(nodes=1, limit=3)
    sess = _Tampered(deployed.url, tamper)
    try:
        rep = validate_board(deployed.url, pl, Q, session=sess)
    finally:
        sess.close()
    feats, head = rep.checks
    assert feats.ok and feats.name == "features bit-exact"
    assert not head.ok and "x tol (worst: " in head.detail and not rep.ok


def test_validate_cli_fails_when_the_twin_disagrees(deployed, monkeypatch, capsys):
    """`rocknet validate --port` exits 1 when the twin expects another training (here: other
    labels), the features still pass."""
    import json

    from rocknet_host.cli import main
    from rocknet_host.reference import head as rh

    real = rh.Twin.grad
    monkeypatch.setattr(rh.Twin, "grad", lambda self, z, y: real(self, z, (y + 1) % self.C))
    capsys.readouterr()
    code = main(["validate", "--dataset", "GunPoint", "--nodes", "1", "--features", "840",
                 "--limit", "2", "--json", "--port", deployed.url])
    out = json.loads(capsys.readouterr().out)
    checks = out["boards"][0]["checks"]
    assert code == 1 and out["boards"][0]["passed"] is False
    assert [(c["name"], c["ok"]) for c in checks] == [("features bit-exact", True),
                                                     ("head partial logits", False)]
    assert checks[1]["max_error"] > 1e-3


def test_sigterm_stops_the_command_and_its_runtime(tmp_path):
    """`rocknet virtual-board` stopped with SIGTERM (as a service manager or `kill` does) takes
    its Node.js process with it: nothing keeps serving the port."""
    import os
    import re
    import signal
    import socket

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "rocknet_host.cli", "virtual-board", "--dir",
                             str(tmp_path / "b")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(re.search(r"socket://127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # serving
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not Path(f"/proc/{children[0]}").exists() or "Z" in Path(
        f"/proc/{children[0]}/stat").read_text().split()[2]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
