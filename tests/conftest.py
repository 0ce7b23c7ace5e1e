"""Shared fixtures. Device tests take the `device` fixture and run once per runtime: CPython+numpy
and MicroPython 1.29+ulab (WebAssembly via Node.js) under two board profiles
(`rocknet_host.runtimes.profiles`): circuitpython-9 (no hashlib, aesio, ulab 6.5 subset, .py) and
micropython-esp32 (hashlib, cryptolib, package loaded from .mpy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rocknet_host.resources import REPO_ROOT
from rocknet_host.runtimes import open_runtime

SHARED_UCR = REPO_ROOT.parent / "shared" / "data" / "ucr"
if SHARED_UCR.is_dir():
    # Tests and CI reach FaceAll through the configured data directory, never a copy.
    os.environ.setdefault("ROCKNET_DATA_DIR", str(SHARED_UCR))

_MPY = {}
DEVICE_PROFILES = ("circuitpython-9", "micropython-esp32")


# device code: the host's files into the runtime's file system under `base` (tests that
# give a device runtime the files a board would hold: `device.set(files=..., base=...)`)
WRITE_FILES = """
import os
try:
    os.mkdir(base)
except OSError:
    pass
for _name in files:
    with open(base + "/" + _name, "wb") as _fh:
        _fh.write(files[_name])
"""


@pytest.fixture(params=("cpython", *DEVICE_PROFILES))
def device(request):
    """A device runtime; each profile's MicroPython interpreter is shared per worker (fresh
    namespace hygiene is the test's job: bind what you use)."""
    name = request.param
    if name in DEVICE_PROFILES:
        if name not in _MPY:
            _MPY[name] = open_runtime("micropython", profile=name)
        yield _MPY[name]
    else:
        rt = open_runtime("cpython")
        yield rt
        rt.close()


@pytest.fixture
def mpy():
    """A fresh MicroPython interpreter of its own (for memory figures and isolation)."""
    rt = open_runtime("micropython")
    yield rt
    rt.close()


def pytest_sessionfinish(session, exitstatus):
    for rt in _MPY.values():
        rt.close()


def has_faceall() -> bool:
    return (SHARED_UCR / "FaceAll" / "FaceAll_TRAIN.tsv").exists()


def data_dir() -> Path:
    return SHARED_UCR
