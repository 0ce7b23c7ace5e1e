"""`rocknet validate` and `rocknet bench features` as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import has_faceall
from rocknet_host import cli, data
from rocknet_host.reference import minirocket as reference

ROCKNET = str(Path(sys.executable).with_name("rocknet"))
DATASETS = list(data.BUNDLED) + (["FaceAll"] if has_faceall() else [])


def run_cli(*args):
    return subprocess.run([ROCKNET, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_validate_micropython_every_dataset(name):
    """Every node of N in {1, 5, 20}, a few train and test series each, inside MicroPython.
    (The full sets are validated by the same command without --limit; see README.)"""
    for n in (1, 5, 20):
        proc = run_cli("validate", "--runtime", "micropython", "--dataset", name, "--nodes",
                       str(n), "--limit", "2", "--json")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        res = json.loads(proc.stdout)
        assert res["features_bitexact"] is True and res["mismatches"] == 0
        assert res["nodes"] == n and res["series"] == 4
        assert sum(p["features"] for p in res["per_node"]) == res["features"]


@pytest.mark.slow
def test_validate_cpython_whole_dataset():
    proc = run_cli("validate", "--runtime", "cpython", "--dataset", "GunPoint", "--nodes", "5",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["series"] == 200 and res["features_bitexact"] is True


def test_validate_by_path_and_rocknet_variant(tmp_path):
    src = Path(data.resolve("GunPoint")[0]).parent
    for split in ("TRAIN", "TEST"):
        (tmp_path / f"Gun_{split}.tsv").write_text(
            "\n".join(
                "\t".join([str(y + 1)] + [repr(float(v)) for v in x])
                for x, y in zip(*_split(src, split), strict=True)
            )
        )
    proc = run_cli("validate", "--runtime", "micropython", "--dataset",
                   str(tmp_path / "Gun_TRAIN.tsv"), "--nodes", "3", "--variant", "rocknet",
                   "--limit", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["features_bitexact"] is True


def _split(src, split):
    ds = data.load("GunPoint")
    return (ds.X_train[:10], ds.y_train[:10]) if split == "TRAIN" else (ds.X_test[:10],
                                                                       ds.y_test[:10])


def test_validate_exits_nonzero_on_mismatch(monkeypatch, capsys):
    real = reference.slice_counts
    monkeypatch.setattr(reference, "slice_counts", lambda Q, f: real(Q, f) + np.uint16(1))
    code = cli.main(["validate", "--runtime", "cpython", "--dataset", "GunPoint", "--nodes",
                     "2", "--limit", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["features_bitexact"] is False and out["mismatches"] > 0


def test_unknown_dataset_is_a_clear_error():
    proc = run_cli("validate", "--dataset", "NoSuchSet", "--runtime", "cpython")
    assert proc.returncode == 2
    assert "unknown dataset" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_bench_features_json():
    proc = run_cli("bench", "features", "--dataset", "GunPoint", "--nodes", "4", "--series", "4",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    for key in ("ms_per_series", "heap_bytes_per_node", "reference_series_per_s",
                "aeon_series_per_s"):
        assert key in res
    assert set(res["ms_per_series"]) == {"cpython", "micropython"}
    assert res["ms_per_series"]["micropython"] > 0
    # the board clock model beside the host figures
    assert res["board_clock"]["board"] == "adafruit_feather_nrf52840"
    assert 0 < res["board_ms_per_series"] <= res["board_ms_per_series_max"]
    assert res["board_instructions_per_series_max"] > 0
    # code imported from the ROMFS image keeps its bytecode out of the heap
    by = res["code_heap_bytes_by_source"]
    assert by["files"] == res["code_heap_bytes"] > by["romfs"] > 0
    # the planner's slice estimate (head_plan.slice_bytes) stays within 25 % of the measured heap
    from rocknet_host import data
    from rocknet_host.planning import features as plan
    from rocknet_host.planning import head as head_plan

    pl = plan.fit(data.load("GunPoint"), 4)
    estimate = max(head_plan.slice_bytes(pl.node_features(i)) for i in range(4))
    assert 0.75 * estimate <= res["heap_bytes_per_node"] <= 1.25 * estimate
    assert res["features_bitexact"] is True


@pytest.mark.slow
def test_plan_command_writes_files(tmp_path):
    proc = run_cli("plan", "GunPoint", "--nodes", "4", "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "p").glob("node_*.plan"))) == 4
    assert (tmp_path / "p" / "fleet.json").exists()


# ----- `rocknet validate --port`: the board side run in this process -----


class CPythonBoard:
    """The board side of `validate_board` executed in this process (the device package on
    CPython+numpy, float64), as a session; ``tamper`` is appended to the code that builds the
    head (after its weights are set), to play a board that disagrees."""

    def __init__(self, tamper: str = "") -> None:
        from rocknet_host.runtimes import import_device

        import_device("rocknet.head")
        self.ns: dict = {}
        self.tamper = tamper

    def exec(self, code: str, timeout: float = 60) -> str:
        import contextlib
        import io

        if self.tamper and "Head(_p)" in code:
            code += "\n" + self.tamper + "\n"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(code, self.ns)
        return buf.getvalue()


def _small_fleet(nodes=2, n_features=840, limit=4):
    from rocknet_host.planning import features as plan

    ds = data.load("GunPoint")
    pl = plan.fit(ds, nodes, n_features=n_features)
    return pl, pl.quantizer(np.vstack([ds.X_train[:limit], ds.X_test[:limit]]))


def test_board_head_check_passes_in_cpython():
    from rocknet_host.hardware.validate import validate_board

    pl, Q = _small_fleet()
    rep = validate_board("cpython", pl, Q, session=CPythonBoard())
    assert rep.ok and rep.float_bits == 64 and rep.impl == "cpython"
    assert [(c.node, c.name) for c in rep.checks] == [
        (0, "features bit-exact"), (0, "head partial logits"),
        (1, "features bit-exact"), (1, "head partial logits")]
    head = rep.checks[1]
    # 8 series in two batches of 4: 8 rows before `apply` + the last one after the last step
    assert "2 momentum steps of 4, 18 logits vs twin float64" in head.detail
    assert head.max_error is not None and head.max_error <= 1e-12  # same arithmetic


def _worst_after_first_batch(detail: str, batch: int) -> bool:
    """The worst value of a failed head check is not in the first batch (which runs on the
    initial weights): series >= batch, or the row after the last step."""
    if "after the last step" in detail:
        return True
    return int(detail.split("worst: series ")[1].split(",")[0]) >= batch


@pytest.mark.parametrize("tamper,trained", [
    ("_h.lr *= 1.5", True),  # another learning rate: rows after the first step differ
    ("_h.mom = 0.5", True),  # another momentum: shows only after the second (last) step
    ("_h.smooth = 0.0", False),  # another loss (no label smoothing)
    ("_h._W[1] = _h._W[0]", False),  # other weights from the start
    ("_h._b[0] += 0.01", False),  # a bias the twin does not have
])
def test_board_head_check_fails_on_a_board_that_disagrees(tamper, trained):
    from rocknet_host.hardware.validate import validate_board

    pl, Q = _small_fleet()
    rep = validate_board("cpython", pl, Q, session=CPythonBoard(tamper))
    assert not rep.ok
    by = {(c.node, c.name): c for c in rep.checks}
    for node in (0, 1):
        assert by[node, "features bit-exact"].ok
        head = by[node, "head partial logits"]
        assert not head.ok and "x tol (worst: " in head.detail, tamper
        if trained:
            assert _worst_after_first_batch(head.detail, 4), head.detail


def test_board_head_check_fails_when_the_twin_disagrees(monkeypatch):
    from rocknet_host.hardware.validate import validate_board
    from rocknet_host.reference import head as rh

    real = rh.Twin.grad

    def wrong_labels(self, z, labels):
        return real(self, z, (labels + 1) % self.C)

    pl, Q = _small_fleet()
    monkeypatch.setattr(rh.Twin, "grad", wrong_labels)
    rep = validate_board("cpython", pl, Q, session=CPythonBoard())
    heads = [c for c in rep.checks if c.name == "head partial logits"]
    assert len(heads) == 2 and not any(c.ok for c in heads) and not rep.ok
    assert all(_worst_after_first_batch(c.detail, 4) for c in heads)


def test_twin_rows_hold_the_tolerance_across_float_widths():
    """What a float32 board is held to: the twin in float32 stays well inside rtol/atol of
    the same sequence in float64 (GunPoint; OSULeaf, whose codes are PPV in 1/255)."""
    from rocknet_host.hardware import validate as bv
    from rocknet_host.planning import features as plan
    from rocknet_host.planning import head as head_plan
    from rocknet_host.reference import head as rh

    for name, nodes, nf in (("GunPoint", 2, 840), ("OSULeaf", 2, 1000)):
        ds = data.load(name)
        pl = plan.fit(ds, nodes, n_features=nf)
        Q = pl.quantizer(np.vstack([ds.X_train[:8], ds.X_test[:8]]))
        n, C = len(Q), pl.n_classes
        codes = [rh.codes(reference.slice_counts(Q, pl.node_features(i)),
                          rh.node_layout(pl.node_features(i))[0]) for i in range(nodes)]
        feats, U = pl.node_features(1), codes[1]
        sec = head_plan.sections(pl, Q, batch=bv.check_batch(n), train_codes=codes,
                                 **bv.HEAD_OPTS)[1]
        mu, sc = rh.quantise_scaling(sec.pop("mean"), sec.pop("std"))
        W0 = bv.initial_weights(C, U.shape[1], 5)
        labels = np.arange(n) % C
        r64, t64 = bv.twin_rows(feats, C, sec, mu, sc, W0, U, labels, np.float64)
        r32, t32 = bv.twin_rows(feats, C, sec, mu, sc, W0, U, labels, np.float32)
        assert t64 == t32 == 2 and r64.shape == (n + 1, C)
        assert np.abs(r64).max() > 0.5  # logits of order one: the check is not of zeros
        ratio = np.abs(r32 - r64) / (bv.ATOL + bv.RTOL * np.abs(r64))
        assert ratio.max() < 0.1, name
        # training moved the weights: the last row after the final step is another one
        assert np.abs(r64[-1] - r64[n - 1]).max() > 1e-3
