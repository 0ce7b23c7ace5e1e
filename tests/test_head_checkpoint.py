"""Checkpoints (`rocknet.checkpoint`, the one format; here with a bare head's payload as
``RockNetClassifier.to_plans`` writes them, the runner's node payload in test_board_run and
test_store_corruption): a restored head continues exactly where it stopped; a torn or corrupt
newest checkpoint falls back to the previous good one with a message; a checkpoint of another
plan is refused and the head is left unchanged. Both runtimes."""

import itertools

import numpy as np
import pytest
from head_cases import case

_PATHS = itertools.count()

SETUP = """
from rocknet.head import Head
from rocknet import checkpoint, store
from rocknet.xp import np
def save(h, path):
    return checkpoint.save(path, h.save())[1]
def restore(h, path):
    return checkpoint.restore(path, h.load)[3]
def run(h, lo, hi, B=4):
    for j in range(lo, hi):
        h.partial_logits(C[j])
        h.apply(Z[j], Y[j])
        if h.k == B:
            h.step()
"""


def setup(device, tmp_path, optimizer="adam", **opts):
    c = case("GunPoint", 3, 600, n_train=24)
    plans = c.node_plans(mode="gradient", optimizer=optimizer, batch=4, passes=2, **opts)
    rng = np.random.default_rng(1)
    device.set(P=plans[0], P2=plans[1], C=c.counts[0], Y=[int(v) for v in c.y],
               Z=[list(v) for v in rng.normal(0, 1, (24, 2))])
    device.exec(SETUP)
    on_host = getattr(device, "name", "") == "cpython"
    base = str(tmp_path / "head.ckpt") if on_host else f"/ck{next(_PATHS)}"
    device.set(path=base)
    return c


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_restore_continues_exactly(device, tmp_path, optimizer):
    setup(device, tmp_path, optimizer)
    device.exec("""
a = Head(P)
run(a, 0, 10)              # mid-batch: two samples in flight
save(a, path)
run(a, 10, 24)
b = Head(P)
note = restore(b, path)
run(b, 10, 24)
""")
    assert device.eval("note") is None
    assert device.eval("a.t == b.t == 6 and a.k == b.k")
    assert device.eval("a.save() == b.save()")  # weights, moments, batch, counters: equal


def test_corrupt_newest_falls_back_to_previous(device, tmp_path):
    setup(device, tmp_path)
    device.exec("""
a = Head(P)
run(a, 0, 8)
first = save(a, path)
t_first = a.t
saved = a.save()
run(a, 8, 16)
second = save(a, path)
f = open(second, "rb")
raw = bytearray(f.read())
f.close()
raw[len(raw) // 2] ^= 0x40      # one flipped bit
f = open(second, "wb")
f.write(raw)
f.close()
b = Head(P)
note = restore(b, path)
""")
    note = device.eval("note")
    assert "checksum" in note and "restored the last good one" in note
    assert device.eval("first") in note and device.eval("second") in note
    assert device.eval("b.t == t_first and b.save() == saved")


def test_torn_write_falls_back_to_previous(device, tmp_path):
    setup(device, tmp_path)
    device.exec("""
a = Head(P)
run(a, 0, 8)
save(a, path)
saved = a.save()
run(a, 8, 12)
second = save(a, path)
f = open(second, "rb")
raw = f.read()
f.close()
f = open(second, "wb")
f.write(raw[:len(raw) // 3])    # power lost mid-write
f.close()
b = Head(P)
note = restore(b, path)
""")
    assert "restored the last good one" in device.eval("note")
    assert device.eval("b.save() == saved")


def test_checkpoint_of_another_plan_is_refused(device, tmp_path):
    setup(device, tmp_path)
    device.exec("""
a = Head(P)
run(a, 0, 8)
save(a, path)
other = Head(P2)                 # node 1's head: another slice
before = other.save()
try:
    restore(other, path)
    err = None
except ValueError as e:
    err = str(e)
""")
    assert "another plan" in device.eval("err")
    assert device.eval("other.save() == before")


def test_no_good_checkpoint_is_an_error(device, tmp_path):
    setup(device, tmp_path)
    device.exec("""
a = Head(P)
p = save(a, path)
f = open(p, "wb")
f.write(b"ROCKNET checkpoint 1 00\\n junk")
f.close()
try:
    restore(Head(P), path)
    err = None
except store.CorruptFile as e:
    err = str(e)
""")
    assert "no good checkpoint" in device.eval("err")
