"""`rocknet simulate`: a fleet of node cores with the real head learns GunPoint over the
simulated BLE medium, agrees, and survives a crash and a reboot."""

from __future__ import annotations

import json

import pytest
from rocknet_host.runtime import import_device

import_device("rocknet.head")  # a broken head fails this module, never skips it

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


def test_a_crash_and_a_reboot_the_fleet_finishes(tmp_path, capsys):
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
    # the summary says what the fleet lost and how to re-plan it onto the survivors
    assert 0 < res["features_lost"] < res["features"]
    assert "--lost 3" in capsys.readouterr().out


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


def test_micropython_node_cores_learn_gunpoint_on_the_same_path(tmp_path):
    """Every node core (Node + Head + Link) in its own MicroPython 1.29 + ulab, node 1 crashed
    and rebooted from its checkpoint: the whole GunPoint test set predicted over the air at
    >= 0.95, the fleet agrees, every node reports its peak heap, and the air traffic is the
    CPython run's to the microsecond (same rounds, same decisions: the device code path
    decides the same in both runtimes)."""
    argv = ("--nodes", "3", "--epochs", "2", "--features", "1000", "--no-reference",
            "--crash", "1@40", "--reboot", "1@70")
    report = tmp_path / "mpy.html"
    res = simulate_n(tmp_path, *argv, "--runtime", "micropython", "--report", str(report))
    assert res["runtime"] == "micropython"
    assert res["accuracy"] >= 0.95 and res["predicted"] == res["n_test"] == 150
    assert res["consistent"] is True and res["members"] == [0, 1, 2]
    assert res["per_node"][1]["reboots"] == 1 and res["per_node"][1]["synced"]
    for p in res["per_node"]:
        heap, board = p["peak_heap_bytes"], p["peak_heap_board_bytes"]
        assert isinstance(heap, int) and isinstance(board, int)
        assert 10_000 < board <= heap < 1_000_000
    ref = simulate_n(tmp_path, *argv)
    assert ref["runtime"] == "cpython"
    for k in ("rounds", "committed", "dropped", "sim_time_s", "rounds_complete", "predicted"):
        assert res[k] == ref[k], k
    assert [p["tx_adverts"] for p in res["per_node"]] == [p["tx_adverts"] for p in ref["per_node"]]
    assert abs(res["accuracy"] - ref["accuracy"]) <= 0.02  # float64 here, float32 boards
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 4  # accuracy, memory, energy, rounds
    assert "float64" in page


def simulate_n(tmp_path, *argv):
    out = tmp_path / "sim_n.json"
    assert main(["simulate", "GunPoint", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_html_report_is_self_contained(tmp_path, capsys):
    from html.parser import HTMLParser

    report = tmp_path / "report.html"
    res = simulate_n(tmp_path, "--nodes", "3", "--epochs", "2", "--features", "500",
                     "--no-reference", "--crash", "2@30", "--report", str(report))
    assert f"wrote {report}" in capsys.readouterr().out
    assert len(res["accuracy_by_sim_time"]) == 2 and len(res["round_elapsed_s"]) == res["rounds"]
    (e1, t1, a1), (e2, t2, a2) = res["accuracy_by_sim_time"]
    assert (e1, e2) == (1, 2) and 0 < t1 < t2 < res["sim_time_s"]
    assert [e1, a1] == list(res["accuracy_estimate_by_epoch"][0])
    page = report.read_text()

    class Check(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.imgs, self.text = [], [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.imgs.append(dict(attrs))
            elif tag not in ("meta", "br"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack.pop() == tag, tag

        def handle_data(self, data):
            self.text.append(data)

    chk = Check()
    chk.feed(page)
    chk.close()
    assert page.startswith("<!DOCTYPE html>") and chk.stack == []
    srcs = [i["src"] for i in chk.imgs]
    assert len(srcs) == 3  # accuracy, energy, rounds (no heap: CPython node cores)
    assert all(s.startswith("data:image/png;base64,iVBORw0KGgo") for s in srcs)
    assert {i["alt"] for i in chk.imgs} == {"accuracy", "energy", "round times"}
    text = " ".join(chk.text)
    assert "Accuracy over simulated time" in text and f"{res['accuracy']:.3f}" in text
    assert "Not measured" in text and "http" not in page  # nothing fetched from the network
