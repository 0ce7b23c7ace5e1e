"""The device head (CPython+numpy and MicroPython+ulab) against its numpy twin, float32 and
float64: same int16 weights, moment codes and bias within tolerances that hold in both."""

import numpy as np
import pytest
from head_cases import case
from rocknet_host.sim import in_memory as train

CASES = [
    ("GunPoint", "gradient", "sgd", "float32"),
    ("GunPoint", "gradient", "momentum", "float32"),
    ("GunPoint", "gradient", "adam", "int16"),
    ("GunPoint", "ridge", "momentum", "float32"),
    ("OSULeaf", "gradient", "momentum", "float32"),  # length > 255: codes are PPV in 1/255
]
N_TRAIN = 24


@pytest.mark.parametrize("name,mode,optimizer,wire", CASES)
def test_device_head_matches_twin(device, name, mode, optimizer, wire):
    c = case(name, 3, 600, n_train=N_TRAIN)
    opts = dict(mode=mode, optimizer=optimizer, wire=wire, batch=4, passes=2, solver="sgd")
    secs = c.sections(**opts)
    order = np.arange(N_TRAIN)
    with train.InMemoryFleet(c.node_plans(**opts), device) as fleet:
        fleet.load_train(c.counts, c.y)
        for _ in range(2):
            fleet.train_pass(order)
        W = np.hstack([np.asarray(device.eval(f"_H[{i}]._W")) for i in range(3)]).astype(int)
        moments = optimizer != "sgd"
        M = np.hstack([np.asarray(device.eval(f"_H[{i}]._m")) for i in range(3)]).astype(int) \
            if moments else None
        MS = np.hstack([np.asarray(device.eval(f"_H[{i}]._ms")) for i in range(3)]) \
            if moments else None
        b = fleet.bias()
        steps = device.eval("[_h.t for _h in _H]")
    assert steps == [12, 12, 12]
    assert np.abs(W).max() > 10  # it learned something
    U = c.codes()
    for dtype in (np.float32, np.float64):
        tw = c.twin(secs, dtype)
        for _ in range(2):
            tw.train_epoch(U, c.y, order)
        dw = np.abs(W - tw.W.astype(int))
        assert dw.max() <= 2 and np.mean(dw > 0) <= 0.05, dtype
        if moments:
            dm = np.abs(M - tw.m.astype(int))
            assert np.mean(dm > 0) <= 0.05, dtype
            # codes within 2, but where a block (one (dilation, kernel): here often a single
            # feature) holds only cancellation noise, scaled to full range: there the decoded
            # moments agree to 1e-3 of the row's largest
            table = tw.tables["s"][0].astype(np.float64)
            dev = table[M] * MS[:, tw.block]
            twn = table[tw.m.astype(int)] * tw.ms.astype(np.float64)[:, tw.block]
            top = np.abs(twn).max(axis=1, keepdims=True)
            assert np.all((dm <= 2) | (np.abs(dev - twn) <= 1e-3 * top)), dtype
            assert np.mean(dm > 2) <= 0.005, dtype
        assert np.allclose(b, tw.b, rtol=1e-4, atol=1e-6), dtype


def test_partial_logits_and_predictions_match_twin(device):
    c = case("GunPoint", 4, 800, n_train=24, n_test=16)
    opts = dict(mode="gradient", batch=8, passes=1)
    secs = c.sections(**opts)
    with train.InMemoryFleet(c.node_plans(**opts), device) as fleet:
        fleet.load_train(c.counts, c.y)
        fleet.train_pass(np.arange(24))
        device.set(_x=c.counts_test[2][3])
        row = np.asarray(device.eval("_H[2].partial_logits(_x)"))
        pred = fleet.predict(c.counts_test)
    pl = c.plan
    Ut = np.hstack([np.asarray(c.counts_test[i], dtype=np.uint8) for i in range(4)])
    for dtype in (np.float32, np.float64):
        tw = c.twin(secs, dtype)
        tw.train_epoch(c.codes(), c.y, np.arange(24))
        parts = tw.partial_logits(tw.x(Ut[3:4]))
        assert np.allclose(row, parts[2][0], rtol=1e-3, atol=1e-4)  # a weight step or two
        agree = np.mean(tw.predict(Ut) == pred)
        assert agree >= 15 / 16, dtype
    assert pl.n_nodes == 4


def test_dual_solve_matches_twin(device):
    c = case("GunPoint", 3, 600, n_train=30)
    opts = dict(mode="ridge", solver="dual")
    secs = c.sections(**opts)
    with train.InMemoryFleet(c.node_plans(**opts), device) as fleet:
        fleet.load_train(c.counts, c.y)
        lam = fleet.dual(30)
        lams = device.eval("_lams")
        W = np.hstack(fleet.weights())
        b = fleet.bias()
    assert lams == [lam] * 3  # every node chose the same lambda
    for dtype in (np.float32, np.float64):
        tw = c.twin(secs, dtype)
        assert tw.solve_dual(c.codes(), c.y, c.plan.n_features) == lam
        ws = secs[0]["w_scale"]
        assert np.abs(W - tw.weights()).max() <= 2 * ws + 1e-3 * np.abs(W).max()
        assert np.allclose(b, tw.b)
