"""`rocknet simulate`: every node is a board running ``rocknet.run()``'s loop (`Runner`) over the
simulated BLE medium, through its own radio adapter: the fleet learns GunPoint and agrees, a
power-cycled board rejoins, a board sending NaN logits is flagged, a fleet that lost its
majority says it stalled (exit 1), rounds stop waiting for a crashed board once it is
removed, and a MicroPython fleet decides exactly what the CPython one does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rocknet_host.cli import main

KEYS = ("accuracy", "reference_accuracy", "consistent", "stalled", "drop_reasons", "flagged",
        "sim_time_s", "rounds", "rounds_complete", "per_node")
NODE_KEYS = ("reboots", "rejoined_round", "commits", "drops", "energy_j", "airtime_s")


def simulate(tmp_path, *argv, status=0, nodes="5"):
    out = tmp_path / "sim.json"
    assert main(["simulate", "GunPoint", "--nodes", nodes, *argv, "--json", str(out)]) == status
    return json.loads(out.read_text())


@pytest.mark.slow
def test_five_boards_learn_gunpoint_over_the_simulated_radio(tmp_path, capsys):
    res = simulate(tmp_path, "--epochs", "4", "--features", "1000", "--loss", "0.1")
    assert all(k in res for k in KEYS) and res["loop"] == "rocknet.runner.Runner"
    assert res["wire"] == "int16"  # the plans' default
    # 10 % loss: a few samples may be dropped, each with its reason
    assert res["accuracy"] >= 0.95 and res["n_test"] == 150 and res["predicted"] >= 140
    assert 0.9 <= res["reference_accuracy"] <= 1.0
    assert res["consistent"] is True and res["stalled"] is False
    assert res["rounds"] >= 4 * 50 + 150 and res["sim_time_s"] > 0
    # every drop has a reason, and lossy rounds are not counted as fully decoded for free
    assert sum(res["drop_reasons"].values()) >= res["dropped"]
    assert res["committed"] + res["dropped"] == 4 * 50 + 150
    assert res["rounds_complete"] <= res["rounds"]
    assert len(res["per_node"]) == 5
    for p in res["per_node"]:
        assert all(k in p for k in NODE_KEYS)
        assert p["airtime_s"] > 0 and p["energy_j"] > 0 and p["peak_heap_bytes"] is None
        assert p["commits"] == res["committed"] and p["reboots"] == 0
    out = capsys.readouterr().out
    assert "all live nodes agree" in out and "stalled" in out


def test_boards_send_float32_logits_on_request(tmp_path, capsys):
    """The plans' default wire is int16 (the other runs here); --wire float32 still trains a
    fleet that agrees."""
    res = simulate(tmp_path, "--epochs", "1", "--features", "200", "--no-reference",
                   "--wire", "float32", nodes="3")
    assert res["wire"] == "float32" and "float32 partial logits" in capsys.readouterr().out
    assert res["consistent"] is True and res["stalled"] is False
    # no loss, yet the fleet may agree to drop a sample or two whose logits or decision came
    # too late for their round (which ones depends on the boards' priced compute and advert
    # times); every other test series is predicted
    assert res["committed"] + res["dropped"] == 50 + 150  # one epoch, then the test set
    assert res["dropped"] <= 2 and res["predicted"] >= res["n_test"] - res["dropped"]
    assert set(res["drop_reasons"]) <= {"logits missing", "undecided", "acks incomplete"}


@pytest.mark.slow
def test_a_power_cycled_board_rejoins_and_commits_again(tmp_path):
    res = simulate(tmp_path, "--epochs", "3", "--features", "1000", "--reboot", "1@80",
                   "--no-reference", nodes="3")
    node1 = res["per_node"][1]
    assert node1["reboots"] == 1 and node1["alive"] and node1["synced"]
    assert node1["rejoined_round"] is not None and node1["rejoined_round"] - 80 <= 20
    assert res["consistent"] is True and res["members"] == [0, 1, 2]
    assert node1["commits"] > 80 and res["accuracy"] >= 0.9


@pytest.mark.slow
def test_a_board_sending_nan_logits_is_flagged_and_the_others_agree(tmp_path):
    res = simulate(tmp_path, "--epochs", "3", "--features", "1000", "--no-reference",
                   "--fault", "nan-logits:2@60")
    assert res["flagged"] == [2] and 2 not in res["members"]
    assert res["consistent"] is True and res["stalled"] is False
    assert res["accuracy"] >= 0.9


@pytest.mark.slow
def test_a_fleet_that_lost_its_majority_says_it_stalled(tmp_path, capsys):
    res = simulate(tmp_path, "--epochs", "1", "--features", "500", "--no-reference",
                   "--crash", "2@30", "--crash", "3@30", "--crash", "4@30", status=1)
    assert res["stalled"] is True and "majority" in res["stall_reason"]
    assert res["crashed"] == [2, 3, 4]
    out = capsys.readouterr().out
    assert "stalled" in out and "majority" in out


@pytest.mark.slow
def test_rounds_return_to_their_pace_after_a_crash(tmp_path):
    """Once the agreed membership removed the crashed board, rounds stop waiting for its
    rows: the mean round from 20 rounds after the crash is within 15 % of before it."""
    res = simulate(tmp_path, "--epochs", "3", "--features", "1000", "--no-reference",
                   "--crash", "3@100", nodes="8")
    e = res["round_elapsed_s"]
    assert np.mean(e[120:]) <= 1.15 * np.mean(e[:100])
    assert res["consistent"] is True and res["members"] == [0, 1, 2, 4, 5, 6, 7]


@pytest.mark.parametrize("argv,needle", [
    (["--crash", "two@5"], "NODE@ROUND"),
    (["--crash", "7@5"], "nodes are 0..2"),
    (["--reboot", "1@100000"], "the schedule has rounds"),
    (["--crash", "1@5", "--crash", "1@9"], "already crashed"),
    (["--fault", "bitflip:1@5"], "KIND:NODE@ROUND"),
    (["--fault", "nan-logits:1"], "NODE@ROUND"),
    (["--loss", "1.0"], "--loss"),
    (["--batch", "0"], "--batch"),
    (["--code", "mpy"], "need --runtime micropython"),
])
def test_options_that_mean_nothing_are_refused(capsys, argv, needle):
    assert main(["simulate", "--nodes", "3", "--epochs", "1", "--features", "200", *argv]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.slow
def test_micropython_boards_decide_what_cpython_boards_decide(tmp_path):
    """Every board's program in its own MicroPython 1.29 + ulab, node 1 power-cycled, every
    ring of undecided samples the smallest ``--pending auto`` makes (window + 4 = 8): the
    test set predicted over the air, the fleet agrees, every board reports its peak heap,
    and the air traffic is the CPython run's (same rounds, same decisions)."""
    argv = ("--nodes", "3", "--epochs", "1", "--features", "600", "--no-reference",
            "--reboot", "1@30", "--pending", "8")
    report = tmp_path / "mpy.html"
    res = simulate_n(tmp_path, *argv, "--runtime", "micropython", "--report", str(report))
    assert res["runtime"] == "micropython" and res["code_format"] == "py"  # CircuitPython 9's
    assert res["pending"] == [8] * 3
    # every test series predicted over the air, but for samples the fleet agreed to drop (a
    # radio round's acks or logits late: how many depends on the boards' priced compute time)
    assert res["n_test"] == 150 and res["committed"] + res["dropped"] == 200
    # (node 1's reboot costs a few: a sample whose logits were on their way when it went down)
    assert res["accuracy"] >= 0.9 and res["predicted"] >= 150 - res["dropped"]
    assert res["dropped"] <= 4
    assert set(res["drop_reasons"]) <= {"acks incomplete", "logits missing", "undecided"}
    assert res["consistent"] is True and res["members"] == [0, 1, 2]
    assert res["per_node"][1]["reboots"] == 1 and res["per_node"][1]["synced"]
    for p in res["per_node"]:
        heap, board = p["peak_heap_bytes"], p["peak_heap_board_bytes"]
        assert isinstance(heap, int) and isinstance(board, int)
        assert 5_000 < board <= heap < 1_000_000
    ref = simulate_n(tmp_path, *argv)
    assert ref["runtime"] == "cpython" and ref["code_format"] is None
    for k in ("rounds", "committed", "dropped", "sim_time_s", "rounds_complete", "predicted"):
        assert res[k] == ref[k], k
    assert [p["tx_adverts"] for p in res["per_node"]] == [p["tx_adverts"] for p in ref["per_node"]]
    assert abs(res["accuracy"] - ref["accuracy"]) <= 0.02  # float64 here, float32 boards
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert "float64" in page


@pytest.mark.slow
def test_ridge_over_a_lossy_line_nearly_every_sample_commits(tmp_path):
    """Four hops of 10 %-loss links: the round deadline grows with the hop diameter and a
    complete round stays open while a neighbour is unfinished, so rounds complete and every
    sample commits. The protocol alone (`--compute none`): with the Feather's compute
    (245 ms a sample here), boards that end rounds hops apart still drop some (README)."""
    res = simulate(tmp_path, "--mode", "ridge", "--epochs", "4", "--features", "1000",
                   "--topology", "line", "--loss", "0.1", "--no-reference", "--compute", "none")
    assert res["topology"]["hops"] == 4 and res["deadline_s"] > 1.0
    assert res["consistent"] is True and res["predicted"] >= 0.98 * 150
    assert res["committed"] >= 0.98 * (4 * 50 + 150) and res["accuracy"] >= 0.8


def simulate_n(tmp_path, *argv):
    out = tmp_path / "sim_n.json"
    assert main(["simulate", "GunPoint", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.slow
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


def test_board_compute_runs_on_the_board_clock(tmp_path):
    """Each board's compute takes the board clock model's time on its board: a single-core
    board is busy (radio idle) for every series it transforms, which shows in the simulated
    time and in the CPU share of the energy; `--compute none` takes it out."""
    argv = ("--nodes", "2", "--epochs", "1", "--features", "400", "--no-reference")
    on = simulate(tmp_path, *argv, "--board", "adafruit_feather_nrf52840", nodes="2")
    off = simulate(tmp_path, *argv, "--compute", "none", nodes="2")
    ms = on["compute"]["ms_per_call"]
    assert on["compute"]["board"] == "adafruit_feather_nrf52840"
    assert ms["series"] > ms["apply"] > 0
    assert off["compute"] == {"clock": "none: board compute took no simulated time"}
    samples = on["committed"] + on["dropped"]  # every sample's series went through each slice
    for p, q in zip(on["per_node"], off["per_node"], strict=True):
        assert p["compute_s"] * 1000 >= samples * ms["series"] * 0.95 and q["compute_s"] == 0
        assert p["energy_j"] > q["energy_j"]
    # the deadline makes room for a neighbour still computing its last sample
    assert on["deadline_s"] > off["deadline_s"] and on["sim_time_s"] > off["sim_time_s"] + (
        samples * ms["series"] / 1000) * 0.9
    assert on["consistent"] and min(on["committed"], off["committed"]) >= 0.97 * samples


def test_keeping_series_trains_what_keeping_codes_does_for_a_transform_more():
    """Boards whose plans keep series (``run.keep``) instead of codes: with compute free (the
    same radio timing) the whole run is the same, every board's log of decisions and digests
    and the head it trained; priced on the board clock, an update costs a slice transform
    more (the kept series transformed again), so the deadline makes room for it."""
    from rocknet_host import data
    from rocknet_host.planning import features as plan
    from rocknet_host.sim import simulate as sm

    ds = data.load("GunPoint")
    pl = plan.fit(ds, 3, n_features=200)
    got = {}
    for keep in ("codes", "series"):
        sim = sm.Simulation(pl, ds, sm.Config(epochs=1, compute="none", keep=keep))
        res = sim.run()
        assert res["keep"] == [keep] * 3 and res["consistent"] and res["committed"] > 100
        assert all(sim.head_states) and all(nd.log for nd in sim.fleet.nodes)
        got[keep] = ([nd.log for nd in sim.fleet.nodes], sim.head_states)
    assert got["series"] == got["codes"]
    costs = {}
    for keep in ("codes", "series"):
        with sm.Simulation(pl, ds, sm.Config(epochs=1, keep=keep)) as sim:
            costs[keep] = (sim.costs[0], sim.deadline_s)
    codes, series = costs["codes"][0], costs["series"][0]
    assert series["series"] == codes["series"] and series["step"] == codes["step"]
    # the transform again: most of a sample's series work (not its partial logits)
    assert codes["apply"] + 0.5 * codes["series"] < series["apply"] < (codes["apply"]
                                                                       + codes["series"])
    assert costs["series"][1] > costs["codes"][1]
