"""RockNetClassifier: a scikit-learn estimator that trains what a fleet trains."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from rocknet_host import RockNetClassifier, data
from rocknet_host.planning import features as plan
from rocknet_host.runtimes import import_device
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

SMALL = {"n_nodes": 3, "features": 1000, "epochs": 3, "random_state": 0}


@pytest.fixture(scope="module")
def gunpoint():
    return data.load("GunPoint")


@pytest.fixture(scope="module")
def fitted(gunpoint):
    return RockNetClassifier(**SMALL).fit(gunpoint.X_train, gunpoint.y_train)


def test_fit_predict_score_proba(fitted, gunpoint):
    X = gunpoint.X_test
    pred = fitted.predict(X)
    assert set(pred) <= set(fitted.classes_)
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(fitted.classes_[proba.argmax(axis=1)], pred)
    assert fitted.score(X, gunpoint.y_test) > 0.6  # two classes: well above chance
    assert fitted.plan_.n_nodes == 3 and fitted.plan_.n_features == 924  # 84 * (1000 // 84)


def test_aeon_3d_input_and_pickle_give_the_same_predictions(fitted, gunpoint):
    X = gunpoint.X_test[:20]
    want = fitted.predict(X)
    assert np.array_equal(fitted.predict(X[:, None, :]), want)
    assert np.array_equal(pickle.loads(pickle.dumps(fitted)).predict(X), want)
    with pytest.raises(ValueError, match="univariate"):
        fitted.predict(np.stack([X, X], axis=1))


def test_same_seed_same_model_and_clone_keeps_params(gunpoint):
    est = RockNetClassifier(**SMALL)
    assert clone(est).get_params() == est.get_params()
    a = est.fit(gunpoint.X_train, gunpoint.y_train).predict_proba(gunpoint.X_test[:10])
    b = clone(est).fit(gunpoint.X_train, gunpoint.y_train).predict_proba(gunpoint.X_test[:10])
    assert np.array_equal(a, b)


def test_short_series_are_zero_padded_to_nine():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 5))
    y = np.array(["a", "b"] * 12)
    X[y == "b"] += 2.0
    est = RockNetClassifier(n_nodes=2, features=168, epochs=2).fit(X, y)
    assert est.plan_.length == 9
    assert est.predict(X).shape == (24,)


def test_ridge_has_no_predict_proba_and_bad_params_say_so(gunpoint):
    assert not hasattr(RockNetClassifier(mode="ridge"), "predict_proba")
    with pytest.raises(ValueError, match="fleet='simulate'"):
        RockNetClassifier(loss=0.1).fit(gunpoint.X_train, gunpoint.y_train)
    with pytest.raises(ValueError, match="fleet must be one of"):
        RockNetClassifier(fleet="radio").fit(gunpoint.X_train, gunpoint.y_train)
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        RockNetClassifier(fleet="simulate", optimizer="adam").fit(gunpoint.X_train,
                                                                  gunpoint.y_train)
    RockNetClassifier(fleet="simulate", wire="float32")._check_params()  # either wire flies


def test_pipeline_and_grid_search(gunpoint):
    X, y = gunpoint.X_train[:30], gunpoint.y_train[:30]
    pipe = make_pipeline(FunctionTransformer(lambda v: v * 2.0),
                         RockNetClassifier(n_nodes=2, features=500, epochs=2))
    grid = GridSearchCV(pipe, {"rocknetclassifier__n_nodes": [1, 2]}, cv=2).fit(X, y)
    assert grid.best_params_["rocknetclassifier__n_nodes"] in (1, 2)
    assert 0.0 <= grid.score(gunpoint.X_test, gunpoint.y_test) <= 1.0


def test_to_plans_writes_what_rocknet_plan_writes_plus_the_trained_heads(fitted, gunpoint,
                                                                         tmp_path):
    files = {p.name for p in fitted.to_plans(tmp_path)}
    assert {"fleet.json", "node_00.plan", "node_02.plan", "node_00.data"} <= files
    assert json.loads((tmp_path / "fleet.json").read_text())["nodes"] == 3
    Head = import_device("rocknet.head").Head
    ckpt = import_device("rocknet.checkpoint")
    node_plan = plan.read_node(tmp_path / "node_01.plan")
    assert node_plan["schedule"]["epochs"] == 3  # training sections as `rocknet plan` writes
    head = Head(node_plan)
    assert ckpt.restore(str(tmp_path / "node_01.head"), head.load)[3] is None
    assert np.array_equal(head.weights, fitted._heads()[1].weights)
    assert np.abs(head.weights).max() > 0  # trained, not the initial zeros


@pytest.mark.slow
def test_check_estimator():
    """Every scikit-learn estimator check passes; none is skipped (the array-API check skips
    itself unless SCIPY_ARRAY_API is set: an environment switch, not an estimator choice)."""
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(RockNetClassifier(n_nodes=3, features=1000), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed
    assert len(results) > 40


@pytest.mark.slow
def test_cross_val_score_gunpoint(gunpoint):
    X = np.vstack([gunpoint.X_train, gunpoint.X_test])
    y = np.concatenate([gunpoint.y_train, gunpoint.y_test])
    scores = cross_val_score(RockNetClassifier(n_nodes=5), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.8


@pytest.mark.slow
def test_simulated_fleet_equals_rocknet_simulate(gunpoint, tmp_path):
    """Same seed, same fleet: the estimator's test accuracy is `rocknet simulate --json`'s
    (2 epochs instead of 20 to keep the test short; the construction does not depend on it)."""
    from rocknet_host.cli import main

    out = tmp_path / "sim.json"
    assert main(["simulate", "GunPoint", "--nodes", "5", "--loss", "0.1", "--seed", "0",
                 "--epochs", "2", "--no-reference", "--json", str(out)]) == 0
    cli = json.loads(out.read_text())
    est = RockNetClassifier(n_nodes=5, fleet="simulate", loss=0.1, random_state=0, epochs=2)
    est.fit(gunpoint.X_train, gunpoint.y_train, gunpoint.X_test, gunpoint.y_test)
    assert est.fleet_result_["accuracy"] == cli["accuracy"]
    assert est.head_sections_[0]["wire"] == cli["wire"] == "int16"  # the plans' default
    assert est.fleet_result_["committed"] == cli["committed"]
    assert cli["predicted"] == len(gunpoint.y_test)  # every test series went over the air
    # the heads the fleet trained, summed on the host, predict what the fleet predicted
    assert est.score(gunpoint.X_test, gunpoint.y_test) == cli["accuracy"]
