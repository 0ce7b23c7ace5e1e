"""`rocknet validate` and `rocknet bench features` as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import has_faceall
from rocknet_host import cli, data, reference

ROCKNET = str(Path(sys.executable).with_name("rocknet"))
DATASETS = list(data.BUNDLED) + (["FaceAll"] if has_faceall() else [])


def run_cli(*args):
    return subprocess.run([ROCKNET, *args], capture_output=True, text=True, timeout=600)


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


def test_bench_features_json():
    proc = run_cli("bench", "features", "--dataset", "GunPoint", "--nodes", "4", "--series", "4",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    for key in ("ms_per_series", "heap_bytes_per_node", "reference_series_per_s",
                "aeon_series_per_s"):
        assert key in res
    assert set(res["ms_per_series"]) == {"cpython", "micropython"}
    assert res["ms_per_series"]["micropython"] > 0 and res["heap_bytes_per_node"] > 1000
    assert res["features_bitexact"] is True


def test_plan_command_writes_files(tmp_path):
    proc = run_cli("plan", "GunPoint", "--nodes", "4", "--out", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "p").glob("node_*.plan"))) == 4
    assert (tmp_path / "p" / "fleet.json").exists()
