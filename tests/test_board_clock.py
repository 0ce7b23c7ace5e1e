"""The board clock model (rocknet_host.runtimes.board_clock): the fit reproduces the per-operation
table it was fitted on, a known ulab sequence is counted as written, instrumenting leaves the
device's results unchanged, and on FaceAll N=20 node 0 the model predicts rocknet's own calls
within a stated band of the emulated board's end-to-end instruction counts (figures it was
not fitted on)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import has_faceall
from rocknet_host import boards, data
from rocknet_host.planning import features as plan
from rocknet_host.reference import minirocket as reference
from rocknet_host.runtimes import board_clock as bc
from rocknet_host.runtimes import import_device

# Generous: the model prices CPython opcodes at one calibrated cost and misses type
# conversions and big-integer work inside single calls; the link's figures were measured on
# the HMAC wire, the code is AES-CCM (see README, "The board's clock").
BAND = (0.4, 2.5)


def test_fit_reproduces_the_per_operation_table():
    c = bc.fit()
    for (kind, dt), (fixed, per) in bc.PER_OP_TABLE.items():
        for n in (1, 64, 256, 1024, 4096):  # the sizes the table was measured at
            assert c.op(kind, dt, n) == pytest.approx(fixed + per * n)
    # the single operations fitted on: np.dot 14 x 595 and the uint8 axis sum
    assert c.op("dot", "float", 14 * 595) == pytest.approx(bc.DOT_FLOAT[1])
    assert c.op("dot", "int", 14 * 595) == pytest.approx(bc.DOT_INT[1])
    for n, instr in bc.SUM_AXIS:
        assert c.op("sum_axis", "int", n) == pytest.approx(instr)
    assert c.sha256_block * bc.sha256_blocks(bc.SHA256_254[0]) == pytest.approx(bc.SHA256_254[1])
    # the Python calibration: the traced float loop costs the table's 876,000 instructions,
    # and twice the loop about twice that (a cost per opcode, not per call)
    loops, instr = bc.PY_FLOAT_LOOP
    assert c.python_per_opcode * bc.calibration_opcodes(loops) == pytest.approx(instr)
    assert c.python_per_opcode * bc.calibration_opcodes(2 * loops) == pytest.approx(
        2 * instr, rel=0.01)


def test_broadcast_compare_is_predicted_from_the_elementwise_rows():
    """The transform's biggest ulab call, (1 x n) > (k x 1), is priced by the int16 `a > b`
    row; the table's separate broadcast figures (not fitted on) stay within 10 %."""
    c = bc.fit()
    for n, instr in bc.COMPARE_BROADCAST:
        assert c.op("compare", "int", n) == pytest.approx(instr, rel=0.10)


def test_counts_a_known_ulab_sequence():
    n = 1024
    a = bc.Meter.array(np.arange(n, dtype=np.int16))
    b = bc.Meter.array(np.ones(n, dtype=np.int16))
    f = bc.Meter.array(np.ones((4, n // 4), dtype=np.float64))
    with bc.instrument() as meter:
        xnp = sys.modules["rocknet.xp"].np  # what device code calls np
        with meter.count() as work:
            _ = a + b
            _ = a * 3
            _ = a > b
            _ = xnp.sum(a)
            _ = a[1:]
            a += b
            a[:] = b
            _ = xnp.dot(f, f[0])
            _ = f.sum(axis=1)
    want = {("binary", "int"): [1, n], ("scalar", "int"): [1, n], ("compare", "int"): [1, n],
            ("sum", "int"): [1, n], ("view", "int"): [1, n - 1], ("inplace", "int"): [1, n],
            ("assign", "int"): [1, n], ("dot", "float"): [1, n],
            ("view", "float"): [1, n // 4], ("sum_axis", "float"): [1, n]}
    assert work.ops == want
    assert work.opcodes == 0 and work.sha256_blocks == 0  # no device bytecode ran
    clock = bc.BoardClock.for_board("adafruit_feather_nrf52840")
    c = bc.costs()
    expect = sum(c.op(k, dt, m) for (k, dt), (_, m) in want.items())
    assert clock.instructions(work) == pytest.approx(expect)
    assert clock.ms(work) == pytest.approx(expect * 1.55 / 64_000)
    # the backend is restored afterwards
    assert sys.modules["rocknet.xp"].np is np and not bc._METER


def test_instrumented_device_code_computes_the_same():
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 3, n_features=1000)
    Q = pl.quantizer(ds.X_train[:2])
    feats = pl.node_features(1)
    work = bc.slice_work(feats, Q[0].astype(np.int8).tobytes())
    assert work.ulab_calls > 0 and work.opcodes > 0
    minirocket = import_device("rocknet.minirocket")
    with bc.instrument() as meter:
        s = minirocket.Slice(feats)
        with meter.count():
            got = s.transform(Q[0].astype(np.int8).tobytes())
    assert type(got) is bc.Tracked
    assert np.array_equal(np.asarray(got), reference.slice_counts(Q[:1], feats)[0])
    # the work is the same for any series (the transform does not branch on values)
    again = bc.slice_work(feats, Q[1].astype(np.int8).tobytes())
    assert again.ops == work.ops and again.opcodes == work.opcodes


def test_modules_first_imported_inside_instrument_get_numpy_back(monkeypatch):
    """Set-up code imports on demand (`minirocket_init` takes ``np`` from `xp` as it loads):
    loaded inside the block, it must not keep the recorder afterwards, or every device object
    built later (a simulated fleet's boards) runs through it."""
    import_device("rocknet.minirocket")
    name = "rocknet.minirocket_init"
    monkeypatch.delitem(sys.modules, name, raising=False)
    with bc.instrument():
        mod = import_device(name)
        assert mod.np is not np  # the recorder, while the block runs
    assert mod.np is np


def test_native_hash_counts_blocks_python_hash_counts_bytecode():
    import_device("rocknet.board")
    for hash_, native in (("native", True), ("python", False)):
        with bc.instrument(hash_) as meter:
            sha = sys.modules["rocknet.board"]._sha256  # the port's, as _compat picked it
            _, work = meter.call(lambda: sha(bytes(254)).digest())  # noqa: B023
        assert (work.sha256_blocks == bc.sha256_blocks(254)) is native
        assert (work.opcodes > 1000) is not native  # rocknet.sha256 runs as bytecode
    assert sys.modules["rocknet.board"]._sha256 is sys.modules["rocknet._compat"].sha256


def test_the_nodes_digest_is_counted_as_aes_not_sha256():
    """An applied entry chains into the digest with one re-keyed CBC call (`ccm.Chain`): a
    key schedule and two calls into C, ceil((4 + entry) / 16) blocks; no SHA-256."""
    node_mod = import_device("rocknet.node")
    with bc.instrument() as meter:  # native SHA-256: any hashing would count blocks
        nd = node_mod.Node(0, 2, None, None, 3, 40, node_mod.Schedule([4, 4], [1, 1]),
                           slice_=_Slice())
        entry = bytes(4 + 1 + 2 * 3 * 4)  # an A entry's payload: 2 float32 rows of 3
        _, work = meter.call(nd._record, b"A", 7, entry)
    assert work.sha256_blocks == 0
    assert (work.aes_calls, work.aes_key_schedules) == (2, 1)
    assert work.aes_blocks == -(-(4 + 5 + len(entry)) // 16)
    clock = bc.BoardClock.for_board("adafruit_feather_nrf52840")
    assert clock.breakdown(work)["aes"] > 0 and len(nd.digest) == 16


class _Slice:
    """The least a Node needs of a feature slice (its length and feature count)."""

    length = 16
    n_features = 4
    with pytest.raises(ValueError, match="hash must be one of"):
        with bc.instrument("md5"):
            pass


def test_aes_ccm_is_counted():
    wire = import_device("rocknet.wire")
    mixer = import_device("rocknet.mixer")
    with bc.instrument() as meter:
        codec = wire.Codec(b"fleet key", 8, 40, boot=1)
        p = mixer.Packet(3, 1, 0, 0xFF, 0, bytes(40), 0)
        _, work = meter.call(codec.pack, p)
    assert work.aes_calls > 0 and work.aes_blocks >= 40 // 16
    clock = bc.BoardClock.for_board("adafruit_feather_nrf52840")
    assert clock.breakdown(work)["aes"] > 0


def test_every_board_has_a_clock():
    for b in boards.load_all().values():
        clock = bc.BoardClock.for_board(b.key)
        assert clock.cpu_mhz > 0 and clock.cpi > 0


@pytest.mark.skipif(not has_faceall(), reason="FaceAll not in ../shared/data/ucr")
def test_model_within_band_of_the_emulated_board():
    from rocknet_host.benches.clock import validate

    res = validate(data.load("FaceAll"), 20, "adafruit_feather_nrf52840")
    rows = {r["call"]: r for r in res["calls"]}
    assert set(bc.VALIDATION) <= set(rows)
    for name, measured in bc.VALIDATION.items():
        r = rows[name]
        assert r["measured"] == measured
        assert BAND[0] <= r["ratio"] <= BAND[1], (name, r["model"], measured)
        assert r["board_ms"] > 0 and not r["unmodelled_numpy"]
