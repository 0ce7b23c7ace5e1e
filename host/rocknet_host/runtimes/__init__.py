"""Device runtimes behind one small interface: the same device code string runs on CPython+numpy
(`CPythonRuntime`) or on MicroPython 1.29 + ulab (`micropython.MicroPython`).

Interface: ``exec(code)``, ``set(**values)``, ``eval(expr)``, ``call(code, result, **inputs)``,
``mem_alloc()`` (None where meaningless) and ``close()``. MicroPython also takes a board's
runtime profile and heap budget: ``open_runtime("micropython", profile="circuitpython-9",
heap_budget=100_000)`` (see `micropython.MicroPython`, `profiles`, `heap`).
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any

from ..resources import DEVICE_DIR

RUNTIMES = ("cpython", "micropython")


def _device_on_path() -> None:
    path = str(DEVICE_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)


class CPythonRuntime:
    """Device code on CPython with numpy as the array backend (fast tests, host reference)."""

    name = "cpython"

    def __init__(self) -> None:
        _device_on_path()
        self.namespace: dict[str, Any] = {"__name__": "__device__"}
        self.last_stdout = ""

    def exec(self, code: str, *, asynchronous: bool = False) -> str:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<device>", "exec"), self.namespace)
        self.last_stdout = buf.getvalue()
        return self.last_stdout

    def set(self, **values: Any) -> None:
        self.namespace.update(values)

    def eval(self, expr: str) -> Any:
        return eval(expr, self.namespace)

    def call(self, code: str, result: str = "result", **inputs: Any) -> Any:
        self.set(**inputs)
        self.exec(code)
        return self.eval(result)

    def mem_alloc(self) -> int | None:
        return None

    def close(self) -> None:
        self.namespace.clear()

    def __enter__(self) -> CPythonRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_runtime(name: str, **kwargs: Any) -> Any:
    """A fresh runtime by name: 'cpython' or 'micropython' (keyword arguments go to
    `micropython.MicroPython`: ``profile``, ``heap_budget``, ``heap_check``, ``float_bits``)."""
    if name == "cpython":
        return CPythonRuntime()
    if name == "micropython":
        from .micropython import MicroPython

        return MicroPython(**kwargs)
    raise ValueError(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")


def import_device(module: str) -> Any:
    """Import a device module (e.g. 'rocknet.minirocket') into this CPython process."""
    _device_on_path()
    import importlib

    return importlib.import_module(module)
