"""`rocknet simulate`: a fleet of node cores with the real head learns GunPoint over the
simulated BLE medium, agrees, and survives a crash and a reboot."""

from __future__ import annotations

import json

import pytest
from rocknet_host.runtime import import_device

try:
    import_device("rocknet.head")
    from rocknet_host import head_plan  # noqa: F401
except ImportError:  # pragma: no cover - the head lands separately
    pytest.skip("rocknet.head not available", allow_module_level=True)

from rocknet_host.cli import main  # noqa: E402

KEYS = ("accuracy", "reference_accuracy", "consistent", "sim_time_s", "rounds", "per_node")


def simulate(tmp_path, *argv):
    out = tmp_path / "sim.json"
    assert main(["simulate", "GunPoint", "--nodes", "5", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_five_nodes_learn_gunpoint_over_the_simulated_radio(tmp_path, capsys):
    res = simulate(tmp_path, "--epochs", "6", "--features", "2000", "--loss", "0.1")
    assert all(k in res for k in KEYS)
    assert res["accuracy"] >= 0.95 and res["predicted"] == res["n_test"] == 150
    assert 0.9 <= res["reference_accuracy"] <= 1.0
    assert res["consistent"] is True
    assert res["rounds"] >= 6 * 50 + 150 and res["sim_time_s"] > 0
    assert res["committed"] >= 0.9 * res["rounds"]
    assert len(res["per_node"]) == 5
    for p in res["per_node"]:
        assert p["airtime_s"] > 0 and p["energy_j"] > 0 and p["peak_heap_bytes"] is None
    assert "all live nodes agree" in capsys.readouterr().out


def test_a_crash_and_a_reboot_the_fleet_finishes(tmp_path):
    res = simulate(tmp_path, "--epochs", "3", "--features", "1000", "--topology", "grid",
                   "--crash", "3@40", "--crash", "1@60", "--reboot", "1@90",
                   "--no-reference")
    assert res["crashed"] == [3] and res["members"] == [0, 1, 2, 4]
    assert res["reference_accuracy"] is None
    node3, node1 = res["per_node"][3], res["per_node"][1]
    assert not node3["alive"] and node3["crashes"] == 1
    assert node1["alive"] and node1["reboots"] == 1 and node1["synced"]
    assert res["consistent"] is True
    # node 3 owned 30 of the 150 test series: they never go on air
    assert res["predicted"] == 120 and res["accuracy"] >= 0.8
    assert res["accuracy_all"] == pytest.approx(res["accuracy"] * 120 / 150)


def test_ridge_over_a_lossy_line_every_round_completes(tmp_path):
    """Four hops of 10 %-loss links: the round deadline grows with the hop diameter, so
    rounds complete and nearly every sample commits."""
    res = simulate(tmp_path, "--mode", "ridge", "--epochs", "4", "--features", "1000",
                   "--topology", "line", "--loss", "0.1", "--no-reference")
    assert res["topology"]["hops"] == 4 and res["deadline_s"] > 1.0
    assert res["consistent"] is True and res["predicted"] == 150
    assert res["committed"] >= 0.95 * (4 * 50 + 150) and res["accuracy"] >= 0.8


def test_bad_event_spec_is_a_user_error(capsys):
    assert main(["simulate", "--crash", "two@5"]) == 2
    assert "NODE@ROUND" in capsys.readouterr().err
    assert main(["simulate", "--nodes", "3", "--crash", "7@5", "--epochs", "1"]) == 2
