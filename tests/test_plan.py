"""Plan fitting, splitting and the checked plan files."""

import json

import numpy as np
import pytest
from rocknet_host import data
from rocknet_host.planning import features as plan
from rocknet_host.reference import minirocket as reference
from rocknet_host.runtimes import import_device

store = import_device("rocknet.store")


def test_quantizer_rule():
    X = np.linspace(-3, 3, 1001)[None, :]
    q = plan.fit_quantizer(X, "nearest")
    assert q.offset == pytest.approx(0.0)
    assert q.scale == pytest.approx(np.percentile(np.abs(X), 99.9))
    Q = q(X)
    assert Q.dtype == np.int8 and Q.min() == -127 and Q.max() == 127


def test_trunc_vs_nearest_rounding():
    Q_near = reference.quantize(np.array([0.6, -0.6, 1.5, 2.5]), 0.0, 127.0, "nearest")
    Q_trunc = reference.quantize(np.array([0.6, -0.6, 1.5, 2.5]), 0.0, 127.0, "trunc")
    assert Q_near.tolist() == [1, -1, 2, 2]
    assert Q_trunc.tolist() == [0, 0, 1, 2]


def test_quantize_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        reference.quantize(np.array([0.0, np.nan]), 0.0, 1.0)


# FaceAll's minirocket shape: 15 dilations of 30..3 biases, 1260 (dilation, kernel) combinations
FACEALL_PER_DIL = [30, 19, 12, 8, 8, 8, 8, 4, 4, 3, 3, 3, 3, 3, 3]


def _features(splits, per_dil):
    return [sum((b - a) * nb for (a, b), nb in zip(s, per_dil, strict=True)) for s in splits]


def _check_cover(splits, nd):
    for di in range(nd):  # every dilation's kernels once, in node order
        assert splits[0][di][0] == 0 and splits[-1][di][1] == 84
        assert all(splits[i][di][1] == splits[i + 1][di][0] for i in range(len(splits) - 1))


@pytest.mark.parametrize("n", [1, 2, 5, 20, 40, 84, 300])
def test_even_split_balances_features_and_dilations(n):
    splits = plan.split_kernels(FACEALL_PER_DIL, n)
    _check_cover(splits, len(FACEALL_PER_DIL))
    feats = _features(splits, FACEALL_PER_DIL)
    assert min(feats) > 0 and max(feats) - min(feats) <= max(FACEALL_PER_DIL)
    if n == 20:  # was 595 / 476 features with whole kernels; 499.8 each
        assert max(feats) <= 510 and min(feats) >= 490
        # every node at every dilation, 4 or 5 kernels there: the same mix of work
        assert {b - a for s in splits for a, b in s} == {4, 5}


def test_weighted_split_follows_weights():
    splits = plan.split_kernels(FACEALL_PER_DIL, 4, [3, 1, 1, 1])
    _check_cover(splits, len(FACEALL_PER_DIL))
    feats = _features(splits, FACEALL_PER_DIL)
    assert sum(feats) == 84 * sum(FACEALL_PER_DIL) and feats[0] > 2.9 * feats[1]


def test_split_keeps_every_node_within_its_cap():
    per_dil = [5, 2]
    splits = plan.split_kernels(per_dil, 3, [1, 1, 1], caps=[100, 400, 400])
    feats = _features(splits, per_dil)
    assert feats[0] <= 100 and sum(feats) == 84 * 7 and max(feats[1:]) <= 400
    with pytest.raises(ValueError, match="fewer features or use more nodes"):
        plan.split_kernels(per_dil, 3, caps=[100, 100, 100])


def test_split_refuses_impossible():
    with pytest.raises(ValueError, match="at most 168"):
        plan.split_kernels([1, 1], 169)


def test_node_features_name_their_kernels_per_dilation():
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 5, n_features=2000)
    for i in range(5):
        f = pl.node_features(i)
        kr = f["kernel_range"]
        assert len(kr) == len(pl.dilations) and kr == [list(r) for r in pl.splits[i]]
        held = [(di, k) for di, (a, b) in enumerate(kr) for k in range(a, b)]
        assert f["kernels"] == [list(pl.kernels[k]) for k in sorted({k for _, k in held})]
        assert len(f["centre"]) == len(held)
        idx = pl.node_feature_index(i)
        assert np.array_equal(np.asarray(f["biases"]), pl.biases[idx])
        assert np.all(np.diff(idx) > 0)
    # some node's ranges differ between dilations (it names more kernels than one range)
    assert any(len(pl.node_features(i)["kernels"]) > max(b - a for a, b in pl.splits[i])
               for i in range(5))


def test_rocknet_first_sample_biases():
    """RockNet: sorted C of the first training series, floor index min(int(L*q), L-1)."""
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 1, variant="rocknet")
    Q = pl.quantizer(ds.X_train)
    q = plan.golden_quantiles(pl.n_features)
    assert q[:3] == pytest.approx([0.618034, 0.236068, 0.854102], abs=1e-6)
    nb = pl.biases_per_dilation[0]
    k = 3  # dilation index 0, kernel 3
    C = np.sort(reference.conv(Q[0], 1, pl.kernels[k])[0])
    want = [C[min(int(np.float32(150) * q[k * nb + b]), 149)] for b in range(nb)]
    assert pl.biases[k * nb:(k + 1) * nb].tolist() == want
    assert pl.quantizer.rounding == "trunc" and not pl.alternating


def test_plan_files_round_trip_and_are_atomic(tmp_path):
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 3, n_features=1000)
    paths = plan.write(pl, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    node = plan.read_node(tmp_path / "node_01.plan")
    assert node["features"] == pl.node_features(1)
    assert node["quantizer"]["scale"] == pl.quantizer.scale
    fleet = json.loads((tmp_path / "fleet.json").read_text())
    assert fleet["nodes"] == 3 and sum(fleet["features_per_node"]) == pl.n_features


def test_corrupt_plan_detected_on_device(device, tmp_path):
    ds = data.load("GunPoint")
    plan.write(plan.fit(ds, 2, n_features=1000), tmp_path)
    raw = bytearray((tmp_path / "node_00.plan").read_bytes())
    raw[len(raw) // 2] ^= 0x20
    with pytest.raises(Exception) as info:
        device.call("from rocknet import store\nresult = store.decode(raw, 'plan', 'p')",
                    raw=bytes(raw))
    assert "checksum" in str(info.value)
    good = (tmp_path / "node_00.plan").read_bytes()
    version = device.call("from rocknet import store\nresult = store.decode(raw, 'plan')[0]",
                          raw=good)
    assert version == plan.PLAN_VERSION


def test_a_plan_of_whole_kernels_is_refused_with_the_fix(device, tmp_path):
    """Format 1 plans split whole kernels (``kernel_range`` one pair): refused by the file
    version, and by the section itself, both saying to re-run `rocknet plan`."""
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 2, n_features=1000)
    old = store.encode("plan", 1, plan.plan_body(pl.node_plan(0)))
    with pytest.raises(Exception) as info:
        device.call("from rocknet import store\nresult = store.decode(raw, 'plan')[0]", raw=old)
    assert "plan format 1" in str(info.value) and "rocknet plan" in str(info.value)
    feats = pl.node_features(0)
    feats["kernel_range"] = [0, 42]
    with pytest.raises(Exception) as info:
        device.call("from rocknet.minirocket import Slice\nresult = Slice(f).n_features",
                    f=feats)
    assert "older rocknet" in str(info.value) and "rocknet plan" in str(info.value)


def test_torn_write_keeps_the_previous_plan(tmp_path):
    path = str(tmp_path / "node_00.plan")
    store.write(path, "plan", store.PLAN_VERSION, b'{"a": 1}')
    with open(path + ".tmp", "wb") as fh:  # a crash half-way through the next write
        fh.write(store.encode("plan", store.PLAN_VERSION, b'{"a": 2, "b": [1, 2, 3]}')[:30])
    version, body, used = store.read_newest(path, "plan")
    assert body == b'{"a": 1}' and used == path


def test_bad_inputs_name_the_fix():
    ds = data.load("GunPoint")
    with pytest.raises(ValueError, match="variant"):
        plan.fit(ds, 2, variant="other")
    empty = data.Dataset("e", np.zeros((0, 20)), np.zeros(0, int), np.zeros((0, 20)),
                         np.zeros(0, int), [], "x")
    with pytest.raises(ValueError, match="empty training set"):
        plan.fit(empty, 2)


def test_plans_go_without_training_sections_only_when_rounds_do_not_fit(tmp_path):
    from rocknet_host.planning import board

    ds = data.synthetic(n_train=40, n_test=10, length=64, n_classes=3, seed=0)
    pl = plan.fit(ds, 20, n_features=840, seed=0)
    why = board.write_plans(pl, ds, board.Training(radio="legacy"), tmp_path / "legacy")
    assert isinstance(why, board.RoundsDoNotFit) and "--radio extended" in str(why)
    assert len(list((tmp_path / "legacy").glob("node_*.plan"))) == 20
    assert not list((tmp_path / "legacy").glob("node_*.data"))
    assert board.write_plans(pl, ds, board.Training(), tmp_path / "ext") is None
    assert len(list((tmp_path / "ext").glob("node_*.data"))) == 20
    assert "schedule" not in plan.read_node(tmp_path / "legacy" / "node_00.plan")
    assert "schedule" in plan.read_node(tmp_path / "ext" / "node_00.plan")
