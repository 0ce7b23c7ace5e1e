"""`rocknet bench memory`: the figures made from a node's heap checkpoints, and the JSON of a
small run end to end (GunPoint, 2 boards, few features, MicroPython under the Feather's
CircuitPython profile), a mixed fleet measuring one node (``--measure``) and its refusals."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from rocknet_host.benches.memory import node_figures
from rocknet_host.cli import main
from rocknet_host.runtimes import heap


def _cp(board: int, big: int = 0) -> dict[str, int]:
    return {"live": board, "board": board, "big": big}


def test_figures_from_checkpoints():
    trace = [("boot", _cp(1000)), ("code", _cp(5000, 3000)), ("built", _cp(9000, 500)),
             ("round0", _cp(9500)), ("round1", _cp(9600, 4000)), ("round2", _cp(9600)),
             ("round3", _cp(9600))]
    fig = node_figures(trace, {"live": 700, "board": 700}, warmup=2,
                       report={"largest_alloc_bytes": 4000, "largest_alloc_label": "round1"})
    assert fig["base_bytes"] == 1000 and fig["code_bytes"] == 4000
    assert fig["built_bytes"] == 8000 and fig["own_data_bytes"] == 700
    assert fig["state_bytes"] == 8600 - 4000 - 700
    assert fig["peak_heap_bytes"] == 8600
    # round1's 4000-byte block on top of round0's heap (8500) is the most the node needed
    assert fig["peak_need_bytes"] == 8500 + 4000
    assert fig["growth_bytes_per_round"] == 0 and fig["steady"]
    assert fig["round_heap_bytes"] == [8500, 8600, 8600, 8600]
    # the simulator's clock meter, measured by a "harness" checkpoint after "built", counts
    # with the baseline: every figure above the baseline is that much lower
    metered = trace[:3] + [("harness", _cp(9300))] + [(k, _cp(f["board"] + 300, f["big"]))
                                                      for k, f in trace[3:]]
    same = node_figures(metered, {"live": 700, "board": 700}, warmup=2, report={})
    assert same["base_bytes"] == 1300 and same["round_heap_bytes"] == fig["round_heap_bytes"]
    assert same["peak_heap_bytes"] == fig["peak_heap_bytes"] and same["steady"]
    grow = node_figures(trace + [("round4", _cp(9700)), ("round5", _cp(9800))], None, 2, {})
    assert not grow["steady"] and grow["growth_bytes_per_round"] > 0
    assert grow["own_data_bytes"] is None and grow["state_bytes"] is None


@pytest.mark.slow  # two boards in MicroPython for 26 rounds
def test_bench_memory_json():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["bench", "memory", "--dataset", "GunPoint", "--nodes", "2",
                   "--features", "168", "--rounds", "26", "--json"])
    assert rc == 0
    out = json.loads(buf.getvalue())
    assert out["board"] == "adafruit_feather_nrf52840"
    assert out["profile"] == "circuitpython-9" and out["code_format"] == "py"
    assert out["float_bits"] == 32 and out["rounds"] == 26
    assert out["warmup_rounds"] < out["rounds"]
    nodes = out["per_node"]
    assert [n["node"] for n in nodes] == [0, 1]
    for n in nodes:
        assert n["error"] is None
        assert n["rounds_measured"] == out["rounds"] + 1  # rounds 0..R, R where it stopped
        assert 0 < n["code_bytes"] < n["peak_heap_bytes"] <= n["peak_need_bytes"]
        assert n["own_data_bytes"] > 0 and n["state_bytes"] > 0
        assert n["peak_heap_bytes"] >= max(n["round_heap_bytes"])
        assert n["growth_bytes_per_round"] is not None
        # zeroing data frees what it kept alive (one GC block of noise: the call's own)
        assert -heap.BLOCK_BYTES <= n["false_retained_bytes"] < n["state_bytes"]
        assert n["fits"] == (n["peak_need_bytes"] <= out["heap_budget_bytes"])
    for key in ("peak_heap_bytes", "peak_need_bytes", "code_bytes", "own_data_bytes",
                "largest_alloc_bytes", "growth_bytes_per_round"):
        assert out[key] == max(n[key] for n in nodes)
    assert out["fits"] == all(n["fits"] for n in nodes)
    # boards meet only on the radio: node 1 measures the same with its peer in CPython
    mixed = _bench("--nodes", "2", "--features", "168", "--rounds", "26", "--measure", "1")
    assert mixed["per_node"] == [nodes[1]]


def _bench(*argv: str) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["bench", "memory", "--dataset", "GunPoint", *argv, "--json"])
    assert rc == 0
    return json.loads(buf.getvalue())


def test_a_mixed_fleet_measures_only_the_chosen_node():
    """Node 1 in MicroPython, nodes 0 and 2 running the same loop in CPython threads: only
    node 1 is measured, and the fleet decides samples (a majority of 3 votes). ``--pending``
    sets every node's ring, which the bench reports and the planner's estimate counts."""
    from rocknet_host import boards, data
    from rocknet_host.planning import capacity as fp
    from rocknet_host.planning import features as plan

    out = _bench("--nodes", "3", "--features", "168", "--rounds", "26", "--measure", "1",
                 "--pending", "7")
    assert out["pending"] == [7] * 3 and out["ring_capacity"] == 7
    ds = data.load("GunPoint")
    pl = plan.fit(ds, 3, n_features=168, seed=0)
    geo = fp.plan_shape(pl.length, pl.n_classes, pl.n_features, pl.variant, 3,
                        len(ds.X_test), "extended", out["wire"], out["keep"][1], 7)
    assert out["per_node"][0]["estimate_bytes"] == fp.node_bytes(
        boards.load(out["board"]), geo, len(pl.node_feature_index(1)),
        len(pl.node_features(1)["centre"]), "py")  # .py: the Feather's profile loads them
    assert out["measured_nodes"] == [1] and out["nodes"] == 3
    assert out["others"] == "the same loop in CPython threads"
    [n] = out["per_node"]
    assert n["node"] == 1 and n["error"] is None and n["pending"] == 7
    assert n["rounds_measured"] == out["rounds"] + 1
    assert 0 < n["code_bytes"] < n["peak_heap_bytes"] <= n["peak_need_bytes"]
    assert n["own_data_bytes"] > 0 and n["state_bytes"] > 0
    assert n["growth_bytes_per_round"] is not None
    assert n["applied_through"] > 0  # decisions need the CPython peers' votes
    for key in ("peak_heap_bytes", "code_bytes", "state_bytes", "own_data_bytes"):
        assert out[key] == n[key]


@pytest.mark.parametrize(("spec", "needle"), [
    ("3", "no node 3; the fleet's nodes are 0..2"),
    ("0,x", "give node numbers separated by commas"),
])
def test_measure_refuses_unknown_nodes(capsys, spec, needle):
    rc = main(["bench", "memory", "--dataset", "GunPoint", "--nodes", "3", "--features",
               "168", "--measure", spec, "--json"])
    assert rc == 2
    assert needle in capsys.readouterr().err
