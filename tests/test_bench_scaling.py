"""`rocknet bench scaling` through the CLI on a small bundled set (GunPoint, N = 1, 2, 4, a few
series): JSON structure and the relations between its figures."""

from __future__ import annotations

import json
import math

import pytest
from rocknet_host.benches.scaling import (
    ROCKNET_HEADLINE,
    compute_factor,
    parse_nodes,
    representative,
)
from rocknet_host.cli import main


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    png = tmp_path_factory.mktemp("scaling") / "scaling.png"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["bench", "scaling", "--dataset", "GunPoint", "--nodes", "4,1,2",
                   "--series", "4", "--rounds", "3", "--max-measured", "3", "--json",
                   "--plot", str(png)])
    assert rc == 0
    return json.loads(buf.getvalue()), png


@pytest.mark.slow  # the study fixture runs the bench end to end
def test_structure(study):
    out, png = study
    assert out["bench"] == "scaling" and out["dataset"] == "GunPoint"
    assert out["nodes"] == [1, 2, 4] and [r["nodes"] for r in out["rows"]] == [1, 2, 4]
    assert out["series_per_node"] == 4
    assert out["board"]["name"] == "adafruit_feather_nrf52840"
    assert out["rocknet_headline"]["memory_pct"] == 93.0
    for key in ("memory", "compute", "round", "latency", "energy"):
        assert key in out["model"]
    assert out["clock"]["board"] == "adafruit_feather_nrf52840" and out["clock"]["cpi"] > 0
    for r in out["rows"]:
        assert r["extrapolated"] is False and r["series_timed"] == 4
        for key in ("memory", "compute", "latency", "energy", "fits_board", "per_node",
                    "compute_board_ms", "latency_ms", "energy_mj", "host", "board_compute"):
            assert key in r, key
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the study fixture runs the bench end to end
def test_subset_and_nodes(study):
    out, _ = study
    by_n = {r["nodes"]: r for r in out["rows"]}
    assert by_n[1]["measured_nodes"] == [0] and not by_n[1]["subset"]
    assert by_n[2]["measured_nodes"] == [0, 1] and not by_n[2]["subset"]
    four = by_n[4]
    assert four["subset"] and 0 in four["measured_nodes"] and 3 in four["measured_nodes"]
    assert len(four["measured_nodes"]) == 3
    assert [p["node"] for p in four["per_node"]] == four["measured_nodes"]


@pytest.mark.slow  # the study fixture runs the bench end to end
def test_memory_falls_with_n_and_board_figure(study):
    out, _ = study
    rows = out["rows"]
    budget = out["board"]["heap_budget"]
    for a, b in zip(rows, rows[1:], strict=False):
        assert b["memory"]["board_bytes"] < a["memory"]["board_bytes"]
        assert b["memory"]["heap_bytes"] < a["memory"]["heap_bytes"]
        assert b["features_per_node_max"] < a["features_per_node_max"]
    for r in rows:
        m = r["memory"]
        # float64 in WebAssembly, float32 on the board: the board figure is smaller
        assert 0 < m["board_bytes"] < m["heap_bytes"]
        assert m["board_bytes"] == max(p["board_bytes"] for p in r["per_node"])
        assert r["fits_board"] == (m["board_bytes"] <= budget)
    # 10,000 features on one node cannot fit a 100 KB budget
    assert rows[0]["fits_board"] is False


@pytest.mark.slow  # the study fixture runs the bench end to end
def test_latency_and_energy_add_up(study):
    out, _ = study
    cur = out["current"]
    for r in out["rows"]:
        lat, en, comp = r["latency"], r["energy"], r["compute"]
        assert comp["compute_ms"] == max(p["compute_ms"] for p in r["per_node"])
        assert comp["head_ms"] == pytest.approx(max(0.0, comp["compute_ms"] - comp["features_ms"]))
        # latency and energy on the board clock; the host clock's under "host"
        bcomp = r["board_compute"]
        assert lat["clock"] == en["clock"] == "board"
        assert lat["compute_ms"] == r["compute_board_ms"] == bcomp["compute_ms"]
        assert bcomp["compute_ms"] == max(p["compute_ms"] for p in bcomp["per_node"])
        assert 0 < bcomp["features_ms"] < bcomp["compute_ms"]
        assert r["latency_ms"] == lat["latency_ms"] and r["energy_mj"] == en["energy_mj"]
        host = r["host"]
        assert host["compute_ms"] == comp["compute_ms"]
        assert host["latency_ms"] == pytest.approx(host["compute_ms"] + host["round_ms"])
        assert lat["latency_ms"] == pytest.approx(lat["compute_ms"] + lat["round_ms"])
        assert en["compute_mj"] == pytest.approx(
            cur["voltage_v"] * cur["cpu_ma"] * lat["compute_ms"] / 1000)
        assert en["energy_mj"] == pytest.approx(en["compute_mj"] + en["radio_mj"])
        assert en["energy_mj"] > 0 and lat["latency_ms"] > 0
        if r["nodes"] == 1:
            assert r["radio"] is None and lat["round_ms"] == 0 and en["radio_mj"] == 0
        else:
            assert r["radio"]["completion_rate"] == 1.0  # lossless full mesh
            assert r["radio"]["m_rows"] >= r["nodes"] + 1
            assert 0 < lat["round_ms"] < 2000 and en["radio_mj"] > 0
            # every Link call costs its board clock time on top of the simulator's figure
            assert (r["radio"]["radio_cpu_ms_per_node"]
                    > r["radio_host"]["radio_cpu_ms_per_node"] > 0)


@pytest.mark.slow  # the study fixture runs the bench end to end
def test_reduction_consistent(study):
    out, _ = study
    red = out["reduction"]
    assert red["to_nodes"] == 4
    by_n = {r["nodes"]: r for r in out["rows"]}
    x = red["from_smallest_n"]
    a, b = by_n[x["from_nodes"]], by_n[x["to_nodes"]]
    assert x["from_nodes"] == 1 and x["base_fits_board"] is False
    assert x["memory_pct"] == pytest.approx(
        100 * (1 - b["memory"]["board_bytes"] / a["memory"]["board_bytes"]))
    assert x["latency_pct"] == pytest.approx(
        100 * (1 - b["latency"]["latency_ms"] / a["latency"]["latency_ms"]))
    assert x["energy_pct"] == pytest.approx(
        100 * (1 - b["energy"]["energy_mj"] / a["energy"]["energy_mj"]))
    assert 50 < x["memory_pct"] < 100  # a quarter of the features per node
    # the break-even compute factor really makes latency equal
    k = x["compute_factor_needed"]["latency"]["0"]
    if k is not None:
        la, lb = a["latency"], b["latency"]
        assert k * la["compute_ms"] + la["round_ms"] == pytest.approx(
            k * lb["compute_ms"] + lb["round_ms"])
    if out["smallest_feasible_nodes"] is None:
        assert "from_smallest_feasible" not in red and out["extrapolated_central"] is None


def test_helpers():
    assert parse_nodes("20,1,5,5") == [1, 5, 20]
    for bad in ("0", "85", "x", ""):
        with pytest.raises(ValueError):
            parse_nodes(bad)
    assert representative([10, 10], 5) == [0, 1]
    pick = representative([5, 9, 5, 5, 5, 5, 5, 5, 5, 4], 5)
    assert pick[:2] == [0, 1] and 9 in pick and len(pick) == 5
    # cost = K c + r; from (c=10, r=0) to (c=1, r=5): equal at K = 5/9, -50 % at K = 10/8
    assert compute_factor(10, 0, 1, 5, 0) == pytest.approx(5 / 9)
    assert compute_factor(10, 0, 1, 5, 50) == pytest.approx(5 / 4)
    assert compute_factor(10, 0, 1, 5, 95) is None  # beyond 1 - c_t / c_b = 90 %
    assert not math.isnan(ROCKNET_HEADLINE["energy_pct"])


def test_bad_nodes_is_a_user_error(capsys):
    assert main(["bench", "scaling", "--dataset", "GunPoint", "--nodes", "0,2"]) == 2
    assert "--nodes" in capsys.readouterr().err
