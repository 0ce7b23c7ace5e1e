"""Runtime profiles (`rocknet_host.runtimes.profiles`) and the board's heap budget
(`rocknet_host.runtimes.heap`):
device code under a board's module set (CircuitPython 9 has no hashlib), the one place that
picks SHA-256 and AES (`rocknet._compat`), and MemoryError where a board would run out."""

from __future__ import annotations

import pytest
from conftest import DEVICE_PROFILES
from rocknet_host.runtimes.micropython import DeviceError, MicroPython
from rocknet_host.runtimes.profiles import PROFILES, get
from test_board_run import SETUP, files_of, write_fleet

# FIPS-197 appendix C.1 (AES-128)
AES_KEY = bytes(range(16))
AES_IN = bytes.fromhex("00112233445566778899aabbccddeeff")
AES_OUT = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


def profile_of(device) -> str:
    return getattr(getattr(device, "profile", None), "name", "cpython")


def test_fixture_covers_the_strict_profiles():
    assert set(DEVICE_PROFILES) <= set(PROFILES)
    assert get("circuitpython-9").hashlib == "absent"
    with pytest.raises(ValueError, match="circuitpython-9"):
        get("circuitpython-8")


def test_board_load_path_without_hashlib(device, tmp_path):
    """store.encode, the plan load of `rocknet.run()` (board.load) and Head(plan) through a
    Runner: on CircuitPython 9 (no hashlib) they used to die with ImportError/AttributeError."""
    files = files_of(write_fleet(tmp_path, epochs=1))
    base = "/tmp/profile_load" if profile_of(device) != "cpython" else str(tmp_path / "b")
    code = SETUP + """
from rocknet import _compat, store
_f = store.encode("plan", store.PLAN_VERSION, b"body")
result = [store.decode(_f, "plan")[1] == b"body", len(runners), runners[0].node.head.n_classes,
          type(_compat.sha256(b"")).__name__]
try:
    import hashlib
    result.append(hasattr(hashlib, "sha256"))
except ImportError:
    result.append(None)
"""
    ok, n, classes, sha_type, has_sha = device.call(code, files=files, base=base)
    assert ok and n == 3 and classes == 3
    if profile_of(device) == "circuitpython-9":
        assert has_sha is None and sha_type == "Sha256"  # the pure-Python fallback
    else:
        assert has_sha is True


def test_aes_ecb_is_fips197_on_every_port(device):
    """aesio (CircuitPython profile), cryptolib (MicroPython ESP32 profile) and cryptography
    (CPython) give the same block (`_compat.aes`, ECB)."""
    got = device.call("from rocknet import _compat\n_b = bytearray(block)\n"
                      "_compat.aes(key)(_compat.ECB)(_b, _b)\nresult = bytes(_b)",
                      key=AES_KEY, block=AES_IN)
    assert got == AES_OUT


def test_circuitpython10_and_nrf_module_sets():
    probe = """
result = []
for _n in ('hashlib', 'aesio', 'cryptolib'):
    try:
        _m = __import__(_n)
        result.append(sorted(k for k in ('new', 'sha256', 'AES', 'aes') if hasattr(_m, k)))
    except ImportError:
        result.append(None)
from ulab import numpy as _np
from rocknet import _compat
result += [hasattr(_np, 'take'), _compat.sha256(b'abc').digest().hex()[:8]]
"""
    with MicroPython(profile="circuitpython-10") as mpy:
        assert mpy.call(probe) == [["new"], ["AES"], None, False, "ba7816bf"]
        assert mpy.eval("__import__('rocknet.wire').__file__").endswith(".py")
    # the hook for the simulated radio: a module installed with the profile's
    with MicroPython(profile="micropython-nrf", modules={"bluetooth.py": "SIM = 1\n"}) as mpy:
        assert mpy.call(probe) == [["sha256"], None, None, True, "ba7816bf"]
        assert mpy.eval("__import__('bluetooth').SIM") == 1 and mpy.profile.radio == "bluetooth"
        assert mpy.eval("__import__('rocknet.wire').__file__").endswith(".mpy")


# ----- the heap budget -----

def test_node_over_budget_fails_with_memoryerror_and_the_report_names_it():
    with MicroPython(profile="micropython-esp32", heap_budget=60_000) as mpy:
        mpy.exec("from rocknet import wire")
        mpy.checkpoint_heap("code")
        mpy.exec("_keep = [bytearray(4000)]")
        mpy.checkpoint_heap("round 1")
        with pytest.raises(DeviceError) as err:
            mpy.exec("_keep.append(bytearray(70_000))")  # checked after the call
        assert err.value.exc_type == "MemoryError"
        assert "heap budget 60000" in str(err.value)
        rep = mpy.heap_report()
    assert rep["heap_budget_bytes"] == 60_000 and rep["out_of_memory"][0] == "call"
    assert rep["out_of_memory"][1] > 60_000 and rep["peak_heap_bytes"] > 70_000
    assert 0 < rep["code_bytes"] < rep["peak_heap_bytes"]


def test_transient_block_growth_and_board_bytes():
    """A temporary block counts against the budget (the board must hold it with the live
    heap); growth per round is the slope of the live heap; float arrays count float32."""
    with MicroPython(heap_budget=10_000_000, heap_check="manual") as mpy:
        mpy.exec("from ulab import numpy as np\n_rows = []")
        mpy.checkpoint_heap("code")
        for r in range(1, 6):
            mpy.exec("_rows.append(np.zeros(500))\n_t = bytearray(200_000)\ndel _t")
            mpy.checkpoint_heap(f"round {r}")
        rep = mpy.heap_report()
    assert rep["largest_alloc_bytes"] >= 200_000
    assert rep["peak_heap_bytes"] < 200_000  # the block was garbage at every checkpoint
    # 500 float64 = 4000 B measured a round, 2000 B of them on a float32 board
    assert 2000 <= rep["growth_per_round_bytes"] < 3000
    assert rep["peak_heap_bytes"] - rep["peak_heap_board_bytes"] == 5 * 2000
    with MicroPython(heap_budget=150_000, heap_check="manual") as mpy:
        mpy.checkpoint_heap("start")
        mpy.exec("_t = bytearray(200_000)\ndel _t")
        with pytest.raises(DeviceError, match="heap budget 150000"):
            mpy.checkpoint_heap("transient")


def test_checkpoints_leave_nothing_in_the_heap_they_measure():
    """A checkpoint a round adds nothing to the heap (its label interned no new qstr each
    round: the creep of `rocknet bench memory`'s nodes); the labels come back whole."""
    with MicroPython(heap_check="manual") as mpy:
        mpy.checkpoint_heap("code")
        lives = [mpy.checkpoint_heap(f"round{r}")["live"] for r in range(40)]
        mpy.exec("_keep = bytearray(4000)")
        mpy.checkpoint_heap("round1234")
        rep = mpy.heap_report()
    # (the tracker's sums become boxed floats at its second round: a step, then flat)
    assert len(set(lives[5:])) == 1, lives
    assert rep["peak_label"] == "round1234" and rep["largest_alloc_label"] == "round1234"


@pytest.mark.parametrize("name", ["circuitpython-9", "micropython-esp32"])
def test_the_heap_lies_where_the_boards_does(name):
    """The interpreter's heap starts at the board's address (the profile's ``heap_base``), so
    the words that look like pointers to the collector are the board's; a word spelling a
    block's address keeps the block alive, as on the board."""
    base = get(name).heap_base
    assert base
    with MicroPython(profile=name, heap_check="manual") as mpy:

        def live() -> int:  # collected in calls of their own (nothing left on the stack)
            mpy.exec("gc.collect()")
            mpy.exec("gc.collect()")
            return int(mpy.eval("gc.mem_alloc()"))

        mpy.exec("import gc, struct\n_big = bytearray(20000)\n"
                 "_at = id(_big) & 0xFFFFFFFF\n_word = bytearray(struct.pack('<I', _at))")
        at = mpy.eval("_at")
        assert base <= at < base + (1 << 20), hex(at)
        held = live()
        mpy.exec("_big = None")
        kept = live()
        mpy.exec("_word[:] = bytes(4)")
        freed = live()
    assert kept == held  # the word still points at it
    assert freed <= held - 20000


def test_bench_budget_fields_take_the_boards_budget():
    from argparse import Namespace

    from rocknet_host.runtimes.heap import budget_fields

    f = budget_fields(Namespace(heap_budget=None, board="adafruit_feather_nrf52840"), 120_000)
    assert f == {"heap_budget_bytes": 100_000, "node_heap_bytes": 120_000,
                 "heap_budget_ok": False}
    assert budget_fields(Namespace(), 5)["heap_budget_ok"] is None


@pytest.mark.slow
def test_virtual_feather_is_strict(tmp_path):
    """`rocknet virtual-board --board adafruit_feather_nrf52840`: no hashlib, and `validate
    --port` passes within the Feather's 100 KB and reports the heap; with a smaller budget
    the node fails with the board's MemoryError and the report names it."""
    from rocknet_host.cli import main
    from rocknet_host.hardware.validate import validate_board
    from rocknet_host.hardware.virtual_board import VirtualBoard
    from test_virtual_board import _gunpoint, mpremote

    with VirtualBoard.for_board("adafruit_feather_nrf52840", tmp_path / "b") as vb:
        assert vb.profile.name == "circuitpython-9" and vb.heap_budget == 100_000
        assert main(["deploy", "--port", vb.url]) == 0
        proc = mpremote(vb.url, "exec", "import hashlib", check=False)
        assert "no module named 'hashlib'" in proc.stdout + proc.stderr
        pl, Q = _gunpoint(nodes=2, limit=2)
        rep = validate_board(vb.url, pl, Q)
        assert rep.ok and rep.heap["heap_budget_bytes"] == 100_000
        assert 0 < rep.heap["peak_heap_board_bytes"] <= 100_000
        assert rep.to_dict()["heap"]["out_of_memory"] is None
    # the same board's files (a soft reset would restore the budget: a board's, not a run's)
    with VirtualBoard.for_board("adafruit_feather_nrf52840", tmp_path / "b",
                                heap_budget=60_000) as vb:
        rep = validate_board(vb.url, pl, Q)
    assert not rep.ok and rep.checks[-1].name == "heap budget"
    assert "MemoryError" in rep.checks[-1].detail and "60000" in rep.checks[-1].detail
    assert rep.heap["out_of_memory"][1] > 60_000
