"""Shared fixtures. Device tests take the `device` fixture and run once per runtime:
CPython+numpy and MicroPython 1.29+ulab (WebAssembly via Node.js)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rocknet_host.paths import REPO_ROOT
from rocknet_host.runtime import RUNTIMES, open_runtime

SHARED_UCR = REPO_ROOT.parent / "shared" / "data" / "ucr"
if SHARED_UCR.is_dir():
    # Tests and CI reach FaceAll through the configured data directory, never a copy.
    os.environ.setdefault("ROCKNET_DATA_DIR", str(SHARED_UCR))

_MPY = {}


@pytest.fixture(params=RUNTIMES)
def device(request):
    """A device runtime; the MicroPython interpreter is shared per worker (fresh namespace
    hygiene is the test's job: bind what you use)."""
    name = request.param
    if name == "micropython":
        if "mpy" not in _MPY:
            _MPY["mpy"] = open_runtime("micropython")
        yield _MPY["mpy"]
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
