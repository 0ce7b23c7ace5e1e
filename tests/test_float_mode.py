"""Float mode of the reference equals aeon's MiniRocket transform on aeon's parameters."""

import numpy as np
import pytest
from aeon.transformations.collection.convolution_based import MiniRocket
from rocknet_host import data
from rocknet_host.reference import minirocket as reference


@pytest.mark.parametrize("name", ["GunPoint", "ItalyPowerDemand"])
def test_float_features_equal_aeon(name):
    ds = data.load(name)
    mr = MiniRocket(random_state=1).fit(ds.X_train[:, None, :])
    want = np.asarray(mr.transform(ds.X_test[:40, None, :]))
    _, _, dilations, per_dilation, biases = mr.parameters
    got = reference.float_features(ds.X_test[:40], dilations, per_dilation, biases)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_quantized_pipeline_tracks_float_features():
    """int8 input changes few PPV values: the quantized transform stays close to float."""
    from rocknet_host.planning import features as plan

    ds = data.load("GunPoint")
    pl = plan.fit(ds, 1, n_features=2000)
    feats = pl.node_features(0)
    Q = pl.quantizer(ds.X_test[:20])
    ppv = reference.slice_counts(Q, feats) / reference.slice_denominators(feats)
    assert ppv.shape == (20, pl.n_features)
    assert 0.2 < ppv.mean() < 0.8
