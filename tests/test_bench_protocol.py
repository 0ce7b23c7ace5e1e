"""`rocknet bench protocol` through the CLI (small runs; figures come from the bench itself)."""

from __future__ import annotations

import json

import pytest
from rocknet_host.benches.protocol import faceall_generation, layout_for, targets
from rocknet_host.cli import main
from rocknet_host.sim.radio import profile

KEYS = ("completion_rate", "mean_round_s", "p95_round_s", "tx_per_node", "flooding_tx_per_node",
        "rx_per_node", "rx_lower_bound_per_node", "airtime_ms_per_node", "energy_mj_per_node",
        "flooding_completion_rate", "flooding_energy_mj_per_node")


def test_bench_protocol_json_full_mesh_lossless(capsys):
    rc = main(["bench", "protocol", "--nodes", "5", "--topology", "full", "--loss", "0",
               "--rounds", "4", "--json", "--workers", "1"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "protocol"
    (cfg,) = out["configs"]
    for key in KEYS:
        assert key in cfg, key
    assert cfg["completion_rate"] == 1.0 and cfg["wrong_rows"] == 0
    assert cfg["nodes"] == 5 and cfg["hops"] == 1 and cfg["m_rows"] == 6
    assert 0 < cfg["mean_round_s"] <= cfg["p95_round_s"] <= 1.0
    assert cfg["rx_per_node"] >= cfg["rx_lower_bound_per_node"] > 0
    model = out["model"]
    assert model["radio"]["name"] == "nrf52840-ext"
    assert model["current"]["tx_ma"] > 0 and model["deadline_s"] == 1.0
    assert {t["target"][:10] for t in out["targets"]}  # targets are always listed


def test_bench_protocol_table_and_user_errors(capsys):
    rc = main(["bench", "protocol", "--nodes", "4", "--topology", "line", "--hops", "2",
               "--loss", "0.1", "--rounds", "2", "--no-flooding"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "rocknet bench protocol" in text and "line" in text and "target" in text
    assert main(["bench", "protocol", "--loss", "1.5", "--rounds", "1"]) == 2
    assert "--loss" in capsys.readouterr().err
    assert main(["bench", "protocol", "--topology", "matrix", "--rounds", "1"]) == 2
    assert "--matrix" in capsys.readouterr().err
    assert main(["bench", "protocol", "--radio", "nrf52840-legacy", "--nodes", "5",
                 "--rounds", "1"]) == 2
    assert "extended" in capsys.readouterr().err


def test_faceall_layout_fits_the_advert():
    lay = layout_for(profile("nrf52840-ext"), 20, 4)
    assert lay.m == 21 and lay.row_size == 132  # series + label in one row, 20 logit rows
    gen = faceall_generation(lay, 7, 0, 4)
    assert gen.owners[0] == 7 and gen.owners[1:] == list(range(20))
    assert all(len(r) == 132 for r in gen.rows)
    assert len(gen.own_rows(7)) == 2 and len(gen.own_rows(3)) == 1


@pytest.mark.parametrize("ratio,met", [(2.5, True), (1.5, False)])
def test_targets_judge_only_what_was_measured(ratio, met):
    base = {"nodes": 20, "topology": "full", "loss": 0.1, "hops": 1, "mean_round_s": 0.5,
            "completion_rate": 1.0, "rounds": 100}
    three = {"nodes": 20, "topology": "line", "loss": 0.0, "hops": 3, "mean_round_s": 0.5,
             "completion_rate": 1.0, "rounds": 100, "flooding_tx_over_coded_tx": ratio}
    lossy = dict(base, loss=0.3)
    t = targets([base, three, lossy], "nrf52840-ext")
    assert t[0]["met"] is True
    assert t[1]["met"] is None  # 100 rounds cannot show 99.9 %
    assert t[2]["met"] is met
    assert targets([], "nrf52840-ext")[0]["met"] is None


def test_auth_cost_on_a_board(capsys):
    """`--board` adds what sealing / authenticating one advert costs on the board's clock:
    the AES blocks are CCM's for the advert's geometry, the AES part scales with the assumed
    cycles per block, and the figure is what `auth_ms_per_advert` reports."""
    args = ["bench", "protocol", "--nodes", "5", "--topology", "full", "--loss", "0",
            "--rounds", "1", "--no-flooding", "--json", "--workers", "1",
            "--board", "adafruit_feather_nrf52840"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    auth = out["auth"]
    (cfg,) = out["configs"]
    assert auth["advert_bytes"] == cfg["advert_bytes"] and auth["aes_module"] == "aesio"
    payload = cfg["row_size"]
    aad = 4 + 2 * -(-cfg["m_rows"] // 8)  # flags, seq, boot, coding and info vectors
    blocks = 1 + -(-(2 + aad) // 16) + -(-payload // 16)  # CBC-MAC: B0, AAD, payload
    for side in ("seal", "open"):
        assert auth[side]["aes_blocks"] == blocks + 1 + -(-payload // 16)  # + CTR: A0, data
        assert auth[side]["ms"] > auth[side]["aes_ms"] > 0
    assert out["auth_ms_per_advert"] == auth["open"]["ms"]
    assert main(args + ["--aes-cycles-per-block", "1500"]) == 0
    half = json.loads(capsys.readouterr().out)["auth"]
    assert half["open"]["aes_blocks"] == auth["open"]["aes_blocks"]
    assert half["open"]["ms"] < auth["open"]["ms"]
