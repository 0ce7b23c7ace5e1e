"""Bad input to the head: clear errors, and the head's state unchanged. Both runtimes."""

import numpy as np
import pytest
from head_cases import case

SETUP = """
from rocknet.head import Head
from rocknet.head_sum import LogitSum, pack, unpack
from rocknet.logits import pack as pack_logits
from rocknet.xp import np
import struct
h = Head(P)
for j in range(3):
    h.partial_logits(C[j])
    h.apply(np.array([0.5, -0.5]), 1)
before = h.save()
"""


def raises(device, code):
    """The ValueError message device code raises (None if it does not)."""
    device.exec(f"try:\n    {code}\n    err = None\nexcept ValueError as e:\n    err = str(e)")
    return device.eval("err")


@pytest.fixture
def head(device):
    c = case("GunPoint", 3, 600, n_train=24)
    device.set(P=c.node_plans(mode="gradient", batch=8)[0], C=c.counts[0])
    device.exec(SETUP)
    return device


def test_label_out_of_range(head):
    assert "outside 0..1" in raises(head, "h.apply(np.array([0.1, 0.2]), 2)")
    assert "outside 0..1" in raises(head, "h.apply(np.array([0.1, 0.2]), -1)")
    assert "not an integer" in raises(head, "h.apply(np.array([0.1, 0.2]), 'x')")
    assert head.eval("h.save() == before")


def test_logits_of_another_class_count(head):
    msg = raises(head, "h.apply(np.array([0.1, 0.2, 0.3]), 0)")
    assert "3 logits" in msg and "2 classes" in msg
    assert "expected 8" in raises(head, "unpack(bytes(12), 2)")
    assert head.eval("h.save() == before")


def test_plan_class_count_mismatch(head):
    head.exec("Q = dict(P)\nQ['head'] = dict(P['head'])\nQ['head']['classes'] = 3")
    assert "re-run `rocknet plan`" in raises(head, "Head(Q)")


def test_nan_partial_logits(head):
    nan_row = "struct.pack('<2f', float('nan'), 1.0)"
    assert "NaN" in raises(head, f"unpack({nan_row}, 2)")
    head.exec("s = LogitSum(3, 2, 'float32')\ns.add(0, pack_logits([1.0, 2.0])[0])")
    assert "NaN" in raises(head, f"s.add(1, {nan_row})")
    assert head.eval("s.missing()") == [1, 2]  # the bad row was not taken
    # int16 (the plans' default): a node's non-finite row is all NONFINITE codes
    head.exec("q = LogitSum(3, 2, 'int16', h.logit_scale)\n"
              "bad = pack_logits([float('nan'), 1.0], 'int16', h.logit_scale)[0]")
    assert head.eval("list(struct.unpack('<2h', bad))") == [-32768, -32768]
    assert "non-finite" in raises(head, "q.add(1, bad)")
    assert head.eval("q.missing()") == [0, 1, 2]
    assert "NaN" in raises(head, "h.apply(np.array([float('nan'), 0.0]), 0)")
    assert "NaN" in raises(head, "pack(h, np.array([float('inf'), 0.0]))")
    assert head.eval("h.save() == before")


def test_duplicate_and_missing_rows(head):
    head.exec("s = LogitSum(3, 2, h.wire, h.logit_scale)\n"
              "s.add(2, pack(h, np.array([1.0, 2.0])))")
    assert "already added" in raises(head, "s.add(2, pack(h, np.array([1.0, 2.0])))")
    assert "missing from nodes [0, 1]" in raises(head, "s.total()")


def test_full_batch_and_missing_features(head):
    head.exec("for j in range(5):\n    h.apply(np.array([0.5, -0.5]), 0)")
    assert "call step()" in raises(head, "h.apply(np.array([0.5, -0.5]), 0)")
    head.exec("g = Head(P)")
    assert "partial_logits" in raises(head, "g.apply(np.array([0.5, -0.5]), 0)")


def test_counts_of_another_plan(head):
    assert "different plans" in raises(head, "h.partial_logits(np.zeros(7, dtype=np.uint16))")


def test_int16_rows_sum_exactly_in_any_order(device):
    """int16 rows are summed as integers: every node gets the same z bit for bit."""
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 5, (6, 5))  # within the int16 codes' +-32
    device.set(R=rows)
    device.exec("""
from rocknet.head_sum import LogitSum, pack, unpack
from rocknet.logits import pack as pack_logits
from rocknet.logits import pack
import struct
def total(order, wire):
    s = LogitSum(6, 5, wire, 2.0 ** -10)
    for i in order:
        s.add(i, pack(R[i], wire, 2.0 ** -10)[0])
    return s.total()
""")
    for wire in ("int16", "float32"):
        a = np.asarray(device.eval(f"total([0, 1, 2, 3, 4, 5], {wire!r})"))
        b = np.asarray(device.eval(f"total([5, 3, 1, 0, 2, 4], {wire!r})"))
        assert np.array_equal(a, b)
        assert np.allclose(a, rows.sum(axis=0), atol=6 * 2.0**-11 if wire == "int16" else 1e-4)


def test_one_int16_codec_rounds_half_up_and_counts_clipping(device):
    """Node, head and twin encode partial logits with `rocknet.logits`: +2.5 codes is 3
    (floor(v / scale + 0.5)), beyond +-32767 codes clipped, and the clip is counted."""
    device.exec("""
from rocknet.logits import pack
from rocknet.xp import np
import struct
row = np.array([2.5, -2.5, 1e6, -1e6])
data, clipped = pack(row, "int16", 1.0)
codes = list(struct.unpack("<4h", data))
small = pack(row[:2], "int16", 1.0)[1]
""")
    assert device.eval("codes") == [3, -2, 32767, -32767]
    assert device.eval("clipped") is True and device.eval("small") is False
