"""Ridge in dual on the device against scikit-learn's RidgeClassifierCV (an independent
reference), local feature statistics, and the plan's dual capacity."""

import numpy as np
from head_cases import case
from rocknet_host.planning import head as head_plan
from rocknet_host.reference import head as rh
from rocknet_host.sim import in_memory as train
from sklearn.linear_model import RidgeClassifierCV


def test_dual_solve_is_ridgeclassifiercv(device):
    c = case("GunPoint", 5, 1000, n_test=150)
    secs = c.sections(mode="ridge", solver="dual")
    r = train.train(c.node_plans(mode="ridge", solver="dual"), c.counts, c.y,
                    c.counts_test, c.ds.y_test, runtime=device)
    tw = c.twin(secs, np.float64)
    X = tw.x(c.codes())  # the standardised features the nodes use
    ref = RidgeClassifierCV(alphas=rh.LAMBDAS).fit(X, c.y)
    assert r.lam == ref.alpha_
    W = np.hstack(r.weights)  # the nodes' blocks side by side, as the columns of X
    scale = np.abs(ref.coef_).max()
    coef = np.atleast_2d(ref.coef_)
    if len(coef) == 1:  # binary: scikit-learn keeps the positive class's column only
        coef = np.vstack([-coef, coef])
    assert np.abs(W - coef).max() <= 0.01 * scale
    Ut = np.hstack([rh.codes(ct, s.den) for ct, s in zip(c.counts_test, tw.slices, strict=True)])
    assert abs(r.accuracy - ref.score(tw.x(Ut), c.ds.y_test)) <= 0.02
    assert r.passes == 1 and r.bytes_per_node == 4 * 50 * 51 // 2


def test_local_statistics_match_twin(device):
    c = case("OSULeaf", 3, 600, n_train=20)
    plans = c.node_plans(mode="gradient", scaling="local")
    assert "mean" not in plans[1]["head"]
    device.set(P=plans[1], C=c.counts[1])
    device.exec("from rocknet.head import Head\nfrom rocknet.head_init import finish_stats, "
                "observe\nh = Head(P)\nfor j in range(len(C)):\n    observe(h, C[j])\n"
                "finish_stats(h)")
    U = rh.codes(c.counts[1], rh.node_layout(c.plan.node_features(1))[0])
    mu, sc = rh.quantise_scaling(*rh.code_stats(U))
    got_mu = np.asarray(device.eval("h._mu")).astype(int)
    got_sc = np.asarray(device.eval("h._sc")).astype(int)
    assert np.abs(got_mu - mu.astype(int)).max() <= 1
    assert np.mean(np.abs(got_sc - sc.astype(int)) <= 1) == 1.0


def test_plan_states_the_dual_capacity():
    c = case("GunPoint", 20, 10_000, n_train=50)
    secs = c.sections(mode="ridge", budget=100_000)
    cap = secs[0]["dual_max"]
    feats = c.plan.node_features(0)
    F0 = len(feats["biases"])
    assert head_plan.dual_bytes(cap, F0, 2, feats) <= 100_000
    assert head_plan.dual_bytes(cap + 1, F0, 2, feats) > 100_000
    assert secs[0]["solver"] == ("dual" if 50 <= cap else "sgd")
    small = c.sections(mode="ridge", budget=60_000)
    assert small[0]["dual_max"] < cap and small[0]["solver"] == "sgd"
