"""Distributed equals centralised: 20 nodes trained together end with the model one node
trains on the same data in the same order (float32 partial logits on the air)."""

import numpy as np
import pytest
from head_cases import case
from rocknet_host.sim import in_memory as train


def fleet_model(device, nodes, n_features, n_train, passes, **opts):
    opts.setdefault("wire", "float32")  # the central model sums unrounded logits
    c = case("GunPoint", nodes, n_features, n_train=n_train)
    secs = c.sections(passes=passes, **opts)
    r = train.train(c.node_plans(passes=passes, **opts), c.counts, c.y, runtime=device,
                    shuffle=False)
    return c.global_weights(r.weights), r.bias, secs[0]["w_scale"], r.lam


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_twenty_nodes_train_the_central_model(device, optimizer):
    big = getattr(device, "name", "") == "cpython"
    n_features, n_train, passes = (2000, 50, 3) if big else (1000, 24, 1)
    opts = dict(mode="gradient", optimizer=optimizer, batch=8)
    W1, b1, ws, _ = fleet_model(device, 1, n_features, n_train, passes, **opts)
    W20, b20, _, _ = fleet_model(device, 20, n_features, n_train, passes, **opts)
    assert np.abs(W1).max() > 5 * ws  # trained
    d = np.abs(W1 - W20) / ws  # in weight steps
    assert d.max() <= 1 and np.mean(d > 0) <= 0.01
    assert np.allclose(b1, b20, rtol=1e-6, atol=1e-9)


def test_twenty_nodes_ridge_sgd_equals_one(device):
    opts = dict(mode="ridge", solver="sgd", batch=8)
    W1, b1, ws, _ = fleet_model(device, 1, 1000, 24, 2, **opts)
    W20, b20, _, _ = fleet_model(device, 20, 1000, 24, 2, **opts)
    d = np.abs(W1 - W20) / ws
    assert np.abs(W1).max() > 20 * ws
    assert d.max() <= 1 and np.mean(d > 0) <= 0.01
    assert np.allclose(b1, b20, rtol=1e-6, atol=1e-9)


def test_twenty_nodes_dual_equals_one(device):
    opts = dict(mode="ridge", solver="dual")
    W1, b1, ws, lam1 = fleet_model(device, 1, 1000, 24, 1, **opts)
    W20, b20, _, lam20 = fleet_model(device, 20, 1000, 24, 1, **opts)
    assert lam1 == lam20
    # N integer Gram contributions are rounded separately: a weight step or two apart
    d = np.abs(W1 - W20) / ws
    assert d.max() <= 2 + 1e-4 * np.abs(W1).max() / ws
    assert np.array_equal(b1, b20)
