"""`rocknet sweep`: grid specs, cells that never raise, a resumable Parquet table on Dask."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rocknet_host import sweep
from rocknet_host.cli import main

SPEC = """
[grid]
kind = ["simulate", "accuracy"]
datasets = ["Tiny", "NoSuchSet"]
seeds = 1
nodes = [2]

[options]
epochs = 1
features = 500
reference = false
data_dir = ["DATA"]
"""


def tiny_dataset(root: Path) -> Path:
    """A UCR folder of 12 training and 6 test series (a simulated fleet runs it in seconds)."""
    rng = np.random.default_rng(0)
    folder = root / "Tiny"
    folder.mkdir(parents=True)
    for part, n in (("TRAIN", 12), ("TEST", 6)):
        y = np.arange(n) % 2
        X = rng.normal(size=(n, 24)) + 2.0 * y[:, None] * np.sin(np.arange(24) / 3.0)
        lines = ["\t".join([str(int(c) + 1)] + [f"{v:.5f}" for v in x])
                 for c, x in zip(y, X, strict=True)]
        (folder / f"Tiny_{part}.tsv").write_text("\n".join(lines) + "\n")
    return root


def write_spec(tmp_path: Path, text: str = SPEC) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text.replace("DATA", str(tiny_dataset(tmp_path / "data"))))
    return p


def test_spec_grid_is_the_product_of_its_axes(tmp_path):
    text = SPEC.replace("seeds = 1", "seeds = 3").replace("nodes = [2]", "nodes = [2, 4]")
    spec = sweep.load_spec(write_spec(tmp_path, text))
    assert len(spec.cells) == 2 * 2 * 3 * 2
    assert len({c["cell"] for c in spec.cells}) == len(spec.cells)
    assert {c["seed"] for c in spec.cells} == {0, 1, 2}
    assert all(c["epochs"] == 1 and c["loss"] == 0.0 for c in spec.cells)


@pytest.mark.parametrize("text, message", [
    ("[grid]\nnodes = [2]\n", "needs datasets"),
    ("[grid]\ndatasets = ['GunPoint']\nnode = [2]\n", "unknown \\[grid\\] keys"),
    ("[grid]\ndatasets = ['GunPoint']\nkind = ['bench']\n", "kind 'bench'"),
    ("[grid]\ndatasets = ['GunPoint']\n[options]\nepoch = 2\n", "unknown \\[options\\]"),
])
def test_bad_specs_name_the_key(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        sweep.load_spec(p)


def test_a_failing_cell_returns_its_error_instead_of_raising(tmp_path):
    cells = {(c["kind"], c["dataset"]): c for c in sweep.load_spec(write_spec(tmp_path)).cells}
    row = sweep.run_cell(cells[("simulate", "NoSuchSet")])
    assert "NoSuchSet" in row["error"] and row["accuracy"] is None
    bad = dict(cells[("accuracy", "Tiny")], loss=0.1)
    assert "kind 'simulate'" in sweep.run_cell(bad)["error"]


@pytest.mark.slow
def test_sweep_on_a_local_cluster_resumes_only_missing_or_failed_cells(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    args = ["sweep", str(spec), "--out", str(out), "--workers", "1", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["cells"], first["computed"], first["failed"]) == (4, 4, 2)
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 4
    ok = df[df.error.isna()]
    assert set(ok.kind) == {"simulate", "accuracy"} and set(ok.dataset) == {"Tiny"}
    assert ok.accuracy.between(0, 1).all()
    assert ok[ok.kind == "simulate"].agreement.all()
    assert main(args) == 0  # again: only the two failed cells are computed
    again = json.loads(capsys.readouterr().out)
    assert (again["computed"], again["skipped"]) == (2, 2)
    df2 = pd.read_parquet(out / "results.parquet")
    assert len(df2) == 4
    keep = df2[df2.error.isna()].set_index("cell").accuracy
    assert keep.equals(ok.set_index("cell").accuracy)
