"""A virtual board: MicroPython 1.29 + ulab (WebAssembly) behind a TCP raw REPL.

Real ``mpremote connect socket://127.0.0.1:PORT ...`` drives it unchanged (exec, fs cp/ls/
sha256sum, soft-reset). Its files live in a host folder, so they survive a restart.

A board's strictness: ``profile`` installs that board's module set at every boot
(`profiles.py`), ``heap_budget`` takes a heap checkpoint after every raw-REPL execution and
fails the execution with the device's MemoryError over the budget (`heap.py`); the figures
are read on the board with ``import _rn_heap; _rn_heap.report()``. `for_board` takes both
from a ``boards/*.toml``.

>>> with VirtualBoard() as board:          # picks a free port and a temporary folder
...     subprocess.run(["mpremote", "connect", board.url, "exec", "print(1)"])
"""

from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..runtimes.micropython import RuntimeMissing, runtime_dir

_BRIDGE = Path(__file__).with_name("virtual_board.mjs")
DEFAULT_HEAPSIZE = 32 * 1024 * 1024


class VirtualBoard:
    """One virtual board process. Use as a context manager, or call start()/stop()."""

    def __init__(
        self,
        directory: str | Path | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        heapsize: int = DEFAULT_HEAPSIZE,
        profile: str | None = None,
        heap_budget: int | None = None,
        float_bits: int = 32,
    ) -> None:
        from ..runtimes import heap, profiles

        self.profile = profiles.get(profile or profiles.DEFAULT)
        self.heap_budget = heap_budget
        spec = profiles.install_spec(self.profile)
        spec["code"] += heap.tracker_setup(heap_budget, float_bits,
                                           self.profile.float_repr == "packed")
        self._spec = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the board)
            "w", prefix="rocknet-profile-", suffix=".json", delete=False)
        self._spec.write(json.dumps(spec))
        self._spec.close()
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="rocknet-board-"))
        self.host = host
        self.port = port
        self.heapsize = heapsize
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The pyserial URL mpremote connects to."""
        return f"socket://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> VirtualBoard:
        if self.running:
            return self
        cmd = [
            "node", str(_BRIDGE), f"runtime={runtime_dir()}", f"port={self.port}",
            f"host={self.host}", f"dir={self.directory}", f"heapsize={self.heapsize}",
            f"profile={self._spec.name}", f"heapcheck={'exec' if self.heap_budget else 'off'}",
        ]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if ready else ""
        hello = json.loads(line) if line.strip() else {}
        if not hello.get("ready"):
            err = hello.get("error") or self._stderr_tail()
            self.kill()
            raise RuntimeMissing(f"virtual board failed to start: {err}")
        self.port = int(hello["port"])
        return self

    def _stderr_tail(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        if self._proc.poll() is None:
            return "(no answer)"
        return self._proc.stderr.read()[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (files are mirrored to the folder first)."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Pull the plug: no goodbye, the folder keeps whatever was mirrored so far."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> VirtualBoard:
        """Stop and start again on the same port and folder (power cycle)."""
        self.stop()
        deadline = time.monotonic() + 5
        while True:
            try:
                return self.start()
            except RuntimeMissing:
                if time.monotonic() > deadline:  # port still taken: take any
                    self.port = 0
                    return self.start()
                time.sleep(0.2)

    @classmethod
    def for_board(cls, board: str, directory: str | Path | None = None, **kwargs: object
                  ) -> VirtualBoard:
        """A virtual board as strict as ``board`` (a boards/*.toml key): its profile and its
        heap budget (keyword arguments override them)."""
        from ..boards import load

        b = load(board)
        kw: dict[str, object] = {"profile": b.profile, "heap_budget": b.heap_budget,
                                 "float_bits": b.float_bits}
        kw.update(kwargs)
        return cls(directory, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.stop()
        Path(self._spec.name).unlink(missing_ok=True)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"VirtualBoard({self.url}, dir={self.directory}, profile={self.profile.name}, "
                f"heap_budget={self.heap_budget})")
