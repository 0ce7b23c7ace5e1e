"""Device feature slice vs the numpy reference, bit for bit, on both runtimes."""

import numpy as np
import pytest
from conftest import has_faceall
from rocknet_host import data
from rocknet_host.planning import features as plan
from rocknet_host.reference import minirocket as reference
from rocknet_host.reference.validate import device_counts

CASES = [("GunPoint", "minirocket", 5), ("ItalyPowerDemand", "rocknet", 3),
         ("ArrowHead", "minirocket", 20), ("OSULeaf", "rocknet", 20)]


@pytest.mark.parametrize("name,variant,nodes", CASES)
def test_slice_counts_bitexact(device, name, variant, nodes):
    ds = data.load(name)
    pl = plan.fit(ds, nodes, variant=variant, n_features=2000)
    Q = pl.quantizer(np.vstack([ds.X_train[:6], ds.X_test[:6]]))
    for node in (0, nodes - 1):
        feats = pl.node_features(node)
        got, _ = device_counts(device, feats, Q)
        assert np.array_equal(got, reference.slice_counts(Q, feats))


@pytest.mark.skipif(not has_faceall(), reason="FaceAll not in ../shared/data/ucr")
def test_faceall_rocknet_variant_parameters_and_exactness(device):
    ds = data.load("FaceAll")
    pl = plan.fit(ds, 20, variant="rocknet")
    # RockNet's FaceAll configuration (rocket_config.h): 5 dilations x 23 biases, 9660 features.
    assert pl.dilations == [1, 2, 4, 8, 16]
    assert pl.biases_per_dilation == [23] * 5
    assert pl.n_features == 9660
    # 420 (dilation, kernel) combinations of 23 features: 21 a node (4 or 5 kernels at each
    # dilation), 483 features each (whole kernels: 575 and 460)
    assert [r[0] for r in pl.splits[0]] == [0] * 5
    assert [b - a for a, b in pl.splits[0]] == [5, 4, 4, 4, 4]
    assert {len(pl.node_feature_index(i)) for i in range(20)} == {483}
    Q = pl.quantizer(ds.X_test[:8])
    feats = pl.node_features(7)
    got, _ = device_counts(device, feats, Q)
    assert np.array_equal(got, reference.slice_counts(Q, feats))


def test_slice_of_uneven_kernel_ranges_bitexact(device):
    """A node whose kernel ranges differ per dilation, skip dilations and name kernels that
    are not one range (84 nodes and more give such nodes): bit-exact, denominators too."""
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 2, n_features=2000)
    nd = len(pl.dilations)
    pl.splits = [[(60, 84), (0, 10)] + [(0, 0)] * (nd - 3) + [(83, 84)],
                 [(0, 60), (10, 84)] + [(0, 84)] * (nd - 3) + [(0, 83)]]
    feats = pl.node_features(0)
    assert len(feats["kernels"]) == 34 and len(feats["centre"]) == 35  # k83 twice
    Q = pl.quantizer(np.vstack([ds.X_train[:4], ds.X_test[:4]]))
    got, _ = device_counts(device, feats, Q)
    assert np.array_equal(got, reference.slice_counts(Q, feats))
    den = device.call("from rocknet.minirocket_init import denominators\n"
                      "result = denominators(f)", f=feats)
    assert np.array_equal(np.asarray(den), reference.slice_denominators(feats))
    idx = np.concatenate([pl.node_feature_index(i) for i in range(2)])
    assert np.array_equal(np.sort(idx), np.arange(pl.n_features))


def test_slices_cover_the_whole_transform():
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 7, n_features=3000)
    idx = np.concatenate([pl.node_feature_index(i) for i in range(pl.n_nodes)])
    assert np.array_equal(np.sort(idx), np.arange(pl.n_features))


def test_counts_fit_denominators(device):
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 2, n_features=1000)
    feats = pl.node_features(0)
    Q = pl.quantizer(ds.X_train[:4])
    got, _ = device_counts(device, feats, Q)
    den = device.call("from rocknet.minirocket_init import denominators\n"
                      "result = denominators(f)", f=feats)
    assert np.array_equal(np.asarray(den), reference.slice_denominators(feats))
    assert np.all(got <= den) and got.max() > 0


def test_wrong_length_is_refused_with_the_fix(device):
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 2, n_features=1000)
    device.set(f=pl.node_features(0), short=bytes(100))
    device.exec("from rocknet.minirocket import Slice\ns = Slice(f)")
    with pytest.raises(Exception) as info:
        device.exec("s.transform(short)")
    assert "length 150" in str(info.value) and "re-plan" in str(info.value)


def test_corrupt_plan_features_are_refused(device):
    ds = data.load("GunPoint")
    feats = plan.fit(ds, 2, n_features=1000).node_features(0)
    feats["biases"] = feats["biases"][:-3]
    with pytest.raises(Exception) as info:
        device.call("from rocknet.minirocket import Slice\nresult = Slice(f).n_features", f=feats)
    assert "rocknet plan" in str(info.value)
