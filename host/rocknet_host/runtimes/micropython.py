"""Run device code inside the pinned MicroPython 1.29 + ulab (WebAssembly, via Node.js).

One `MicroPython` object owns one Node.js process holding one MicroPython instance with the
device package installed under ``/lib``. Arrays cross the boundary as raw bytes (hex, which
both sides encode in C), so integer results compare bit for bit; device exceptions come back
as `DeviceError` carrying the device traceback.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..resources import DEVICE_DIR, REPO_ROOT

RUNTIME_PACKAGE = "@micropython/micropython-webassembly-pyscript"
RUNTIME_VERSION = "1.29.0-6"
_BRIDGE = Path(__file__).with_name("mpy_bridge.mjs")

# dtype names understood on both sides (ulab has no int32/int64/float32 arrays).
_DTYPES = {"int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "float": "d"}

# Injected once into the device interpreter: decodes inputs and encodes outputs.
_PRELUDE = """
import json, gc
from ulab import numpy as _np  # not rocknet's: the baseline holds none of rocknet
def _rn_dec(v):
    if isinstance(v, dict) and '__nd__' in v:
        a = _np.frombuffer(bytes.fromhex(v['hex']), dtype=getattr(_np, v['__nd__']))
        if len(v['shape']) == 2:
            a = a.reshape(tuple(v['shape']))
        return a
    if isinstance(v, dict) and '__bytes__' in v:
        return bytes.fromhex(v['__bytes__'])
    if isinstance(v, dict):
        return {k: _rn_dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rn_dec(x) for x in v]
    return v
_RN_NAMES = {_np.int8: 'int8', _np.uint8: 'uint8', _np.int16: 'int16',
             _np.uint16: 'uint16', _np.float: 'float'}
def _rn_enc(v):
    if isinstance(v, _np.ndarray):
        v = v.copy()  # tobytes() needs a dense array; slices may be strided views
        return {'__nd__': _RN_NAMES[v.dtype], 'shape': list(v.shape),
                'hex': bytes(v.tobytes()).hex()}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {'__bytes__': bytes(v).hex()}
    if isinstance(v, dict):
        return {k: _rn_enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_rn_enc(x) for x in v]
    return v
"""


class DeviceError(RuntimeError):
    """An exception raised by device code inside MicroPython (message holds its traceback)."""

    def __init__(self, traceback: str, exc_type: str | None = None) -> None:
        super().__init__(traceback)
        self.device_traceback = traceback
        self.exc_type = exc_type


class RuntimeMissing(RuntimeError):
    pass


def runtime_dir() -> Path:
    """Folder of the pinned npm package (override with ROCKNET_MPY_RUNTIME)."""
    env = os.environ.get("ROCKNET_MPY_RUNTIME")
    path = Path(env) if env else REPO_ROOT / "node_modules" / RUNTIME_PACKAGE
    if not (path / "micropython-ulab.wasm").exists():
        raise RuntimeMissing(
            f"MicroPython WebAssembly runtime not found at {path}. Run `npm ci` in {REPO_ROOT} "
            f"(installs {RUNTIME_PACKAGE}@{RUNTIME_VERSION}) or set ROCKNET_MPY_RUNTIME."
        )
    if shutil.which("node") is None:
        raise RuntimeMissing("Node.js >= 18 is required to run MicroPython: install `nodejs`.")
    return path


def encode(value: Any) -> Any:
    """Host value -> JSON for the device side (numpy arrays become typed byte blobs)."""
    if isinstance(value, np.ndarray):
        name = "float" if value.dtype.kind == "f" else value.dtype.name
        if name not in _DTYPES:
            raise TypeError(f"dtype {value.dtype} has no ulab equivalent; use one of "
                            f"{list(_DTYPES)}")
        arr = value.astype(np.float64 if name == "float" else value.dtype, copy=False)
        if arr.ndim > 2:
            raise ValueError("ulab in this runtime is built with 2 dimensions at most")
        raw = np.ascontiguousarray(arr).tobytes()
        return {"__nd__": name, "shape": list(arr.shape), "hex": raw.hex()}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any) -> Any:
    """Device JSON -> host values (typed blobs become numpy arrays of the same dtype)."""
    if isinstance(value, dict) and "__nd__" in value:
        dt = np.dtype(_DTYPES[value["__nd__"]])
        return np.frombuffer(bytes.fromhex(value["hex"]), dtype=dt).reshape(value["shape"])
    if isinstance(value, dict) and "__bytes__" in value:
        return bytes.fromhex(value["__bytes__"])
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class MicroPython:
    """A MicroPython 1.29 + ulab interpreter with the rocknet device package on its path.

    ``profile`` (`profiles.PROFILES`, default "webassembly": the build as it is) installs a
    board's module set before rocknet is imported, and loads the package as that board does
    (``.mpy`` from mpy-cross for MicroPython profiles). ``heap_budget`` (bytes) enforces a
    board's heap (`heap.py`): a heap checkpoint after every call (``heap_check="call"``) or
    only where `checkpoint_heap` is called (``"manual"``); over the budget the call raises
    `DeviceError` with ``exc_type == "MemoryError"``. `heap_report` gives the figures
    (`heap.HEAP_KEYS`); ``float_bits`` is the board's ulab float width for them.
    ``modules`` ({"name.py": source}) are installed with the profile's, before rocknet is
    imported: the hook for a simulated radio module (``profile.radio`` names it).
    ``code_format`` ("py" or "mpy") overrides how the profile loads the package.

    >>> with MicroPython() as mpy:
    ...     mpy.eval("1 + 1")
    2
    >>> with MicroPython(profile="circuitpython-9", heap_budget=100_000) as mpy:
    ...     mpy.exec("from rocknet import store")
    ...     mpy.checkpoint_heap("code")
    ...     mpy.heap_report()["code_bytes"]  # doctest: +SKIP
    """

    def __init__(self, heapsize: int = 64 * 1024 * 1024, device_dir: Path = DEVICE_DIR, *,
                 profile: str | None = None, heap_budget: int | None = None,
                 heap_check: str | None = None, float_bits: int = 32,
                 modules: dict[str, str] | None = None, host_channel: bool = False,
                 code_format: str | None = None) -> None:
        from . import heap, profiles

        rt = runtime_dir()
        self.profile = profiles.get(profile or profiles.DEFAULT)
        self.heap_budget = heap_budget
        if heap_check is None:
            heap_check = "call" if heap_budget else "manual"
        if heap_check not in ("call", "manual"):
            raise ValueError(f"heap_check must be 'call' or 'manual', got {heap_check!r}")
        if heap_budget is not None and heap_budget <= 0:
            raise ValueError(f"heap_budget must be positive bytes, got {heap_budget}")
        self._tmp = tempfile.TemporaryDirectory(prefix="rocknet-mpy-")
        tmp = Path(self._tmp.name)
        pkg = device_dir / "rocknet"
        self.code_format = code_format or self.profile.code_format
        if self.code_format not in ("py", "mpy"):
            raise ValueError(f"code_format must be 'py' or 'mpy', got {self.code_format!r}")
        if self.code_format == "mpy":  # as a MicroPython board loads it
            from ..hardware.deploy import compile_mpy, package_sources

            for rel, data in compile_mpy(package_sources(device_dir)).items():
                (tmp / "rocknet" / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / "rocknet" / rel).write_bytes(data)
            pkg = tmp / "rocknet"
        spec = profiles.install_spec(self.profile)
        spec["files"].update(modules or {})  # e.g. the simulator's `bluetooth.py` / `_bleio.py`
        spec["code"] += heap.tracker_setup(heap_budget, float_bits,
                                           self.profile.float_repr == "packed")
        (tmp / "profile.json").write_text(json.dumps(spec))
        cmd = [
            "node",
            str(_BRIDGE),
            f"runtime={rt}",
            f"heapsize={heapsize}",
            f"pkg0={pkg}:/lib/rocknet",
            f"profile={tmp / 'profile.json'}",
            f"heapcheck={heap_check}",
        ]
        # host channel: device code calls ``rnhost.call(str) -> str`` synchronously (a pipe
        # pair beside stdin/stdout) while a call into the interpreter is in progress
        self._host_in = self._host_out = None
        keep: tuple[int, ...] = ()
        if host_channel:
            to_dev_r, to_dev_w = os.pipe()
            to_host_r, to_host_w = os.pipe()
            cmd.append(f"hostfd={to_dev_r},{to_host_w}")
            keep = (to_dev_r, to_host_w)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, pass_fds=keep,
        )
        if host_channel:
            os.close(to_dev_r)
            os.close(to_host_w)
            self._host_out = os.fdopen(to_dev_w, "w", buffering=1)
            self._host_in = os.fdopen(to_host_r, "r")
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeMissing(f"MicroPython bridge failed to start: {hello}")
        self.last_stdout = ""
        self.exec(_PRELUDE)

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise RuntimeMissing(f"MicroPython bridge exited: {err.strip()[-2000:]}")
        return json.loads(line)

    def _request(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        rep = self._read()
        self.last_stdout = rep.get("stdout", "") or ""
        if not rep.get("ok"):
            raise DeviceError(rep.get("error", "unknown device error"), rep.get("type"))
        return rep

    def send_exec(self, code: str) -> None:
        """Start running statements without waiting (see `read_reply`, `host_recv`)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": "exec", "code": code, "async": False}) + "\n")
        self._proc.stdin.flush()

    def read_reply(self) -> dict[str, Any]:
        """The reply to a `send_exec`; DeviceError if the statements raised."""
        rep = self._read()
        self.last_stdout = rep.get("stdout", "") or ""
        if not rep.get("ok"):
            raise DeviceError(rep.get("error", "unknown device error"), rep.get("type"))
        return rep

    def host_recv(self) -> Any:
        """The next message device code sent with ``rnhost.call`` (it waits for our answer)."""
        assert self._host_in is not None, "MicroPython(host_channel=True) has the channel"
        line = self._host_in.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise RuntimeMissing(f"MicroPython bridge exited: {err.strip()[-2000:]}")
        return json.loads(line)

    def host_send(self, value: Any) -> None:
        """Answer the pending ``rnhost.call``."""
        assert self._host_out is not None
        self._host_out.write(json.dumps(value) + "\n")
        self._host_out.flush()

    def exec(self, code: str, *, asynchronous: bool = False) -> str:
        """Run statements; returns what they printed."""
        self._request({"op": "exec", "code": code, "async": asynchronous})
        return self.last_stdout

    def set(self, **values: Any) -> None:
        """Bind host values (arrays, bytes, JSON-able) to globals in the interpreter."""
        payload = json.dumps(encode(values))
        self.exec(f"_rn_in = _rn_dec(json.loads({payload!r}))\n"
                  "globals().update(_rn_in)\ndel _rn_in")

    def eval(self, expr: str) -> Any:
        """Evaluate an expression and bring its value back (arrays as numpy, same dtype)."""
        rep = self._request({"op": "exec", "code": f"_rn_out = json.dumps(_rn_enc({expr}))"})
        return decode(json.loads(rep["out"]))

    def call(self, code: str, result: str = "result", **inputs: Any) -> Any:
        """Bind `inputs`, run `code`, return the global named `result`."""
        if inputs:
            self.set(**inputs)
        self.exec(code)
        return self.eval(result)

    def mem_alloc(self) -> int:
        """gc.mem_alloc() after a real collection (this port collects only between calls)."""
        return int(self._request({"op": "mem_alloc"})["mem_alloc"])

    def checkpoint_heap(self, label: str) -> dict[str, int]:
        """A heap checkpoint (see `heap.py`); labels "code" (code_bytes) and "round..."
        (growth per round) mean something. Raises DeviceError (MemoryError) over budget.
        Returns its figures: ``live`` (gc.mem_alloc() after the collection), ``board``
        (board-equivalent) and ``big`` (largest block before the collection)."""
        rep = self._request({"op": "heap", "label": label})
        return {k: int(rep[k]) for k in ("live", "board", "big")}

    def heap_report(self) -> dict[str, Any]:
        """Peak, largest transient block, growth per round, out-of-memory (`heap.HEAP_KEYS`)."""
        rep = self._request({"op": "exec", "nocheck": True, "code":
                             "_rn_out = json.dumps(__import__('_rn_heap').report())"})
        report: dict[str, Any] = json.loads(rep["out"])
        return report

    def put_file(self, path: str, data: bytes) -> None:
        self._request({"op": "put", "path": path, "b64": base64.b64encode(data).decode()})

    def close(self) -> None:
        for f in (self._host_out, self._host_in):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._host_in = self._host_out = None
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._tmp.cleanup()

    def __enter__(self) -> MicroPython:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
