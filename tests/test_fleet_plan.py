"""Capacity-aware planning: a mixed fleet gets a split within every budget; an impossible fleet
is refused with the smallest fleet that works; a lost node is planned around."""

from __future__ import annotations

import json
import sys

import pytest
from rocknet_host import boards, data
from rocknet_host.cli import main
from rocknet_host.hardware import fleet_toml as fl
from rocknet_host.planning import capacity as fp
from rocknet_host.resources import REPO_ROOT

MIXED = """
[[group]]
board = "adafruit_feather_nrf52840"
count = 12

[[group]]
board = "esp32_s3_devkitc"
count = 4
"""


@pytest.fixture(scope="module")
def two_class():
    return data.synthetic(n_train=20, n_test=4, length=150, n_classes=2)


def test_mixed_fleet_split_respects_every_budget(two_class):
    fleet = fl.parse(__import__("tomllib").loads(MIXED))
    pl, split = fp.fit(fleet, two_class, n_features=10_000)
    assert pl.n_nodes == 16 and sum(split.kernels) == 84
    assert pl.splits == fp.ranges(split.kernels)
    for i, (b, f, m) in enumerate(zip(split.boards, split.features, split.bytes, strict=True)):
        assert 0 < m <= b.heap_budget
        combos = len(pl.node_features(i)["centre"])
        assert m == fp.node_bytes(b, f, 2, 150, max(pl.dilations), combos,
                                  fp.samples_per_node(20, 16))
    feather, s3 = split.kernels[0], split.kernels[-1]
    assert s3 > feather  # 240 MHz boards take more of the work
    assert len(set(split.kernels[:12])) == 1 and len(set(split.kernels[12:])) == 1
    # every kernel owned once, contiguous
    assert pl.splits[0][0] == 0 and pl.splits[-1][1] == 84


def test_allocate_caps_and_clocks():
    assert fp.allocate([84, 84], [1.0, 3.0]) == [21, 63]
    k = fp.allocate([5, 100, 100], [1.0, 1.0, 1.0])
    assert k[0] == 5 and sum(k) == 84 and abs(k[1] - k[2]) <= 1
    with pytest.raises(fp.FleetTooSmall):
        fp.allocate([10, 10], [1.0, 1.0])


def test_impossible_fleet_names_the_minimum(tmp_path, capsys):
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=14)
    fleet = fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": 3}]})
    with pytest.raises(fp.FleetTooSmall) as err:
        fp.fit(fleet, many, n_features=10_000)
    msg = str(err.value)
    geo = fp.plan_shape(131, 14, 10_000, "minirocket", fp.samples_per_node(28, 3))
    cap = fp.kernel_capacity(fleet.groups[0].board, geo)
    minimum = -(-84 // cap)
    assert f"holds {3 * cap} of the 84 kernels" in msg
    assert f"Smallest fleet that works: {minimum} x adafruit_feather_nrf52840" in msg
    assert "--features" in msg
    # the minimum really works, one fewer does not
    ok = fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": minimum}]})
    assert sum(fp.split_for(ok, geo)) == 84
    with pytest.raises(fp.FleetTooSmall):
        fp.split_for(fl.parse({"group": [{"board": "adafruit_feather_nrf52840",
                                          "count": minimum - 1}]}), geo)


def test_cli_plan_fleet_and_replan_after_a_loss(tmp_path, monkeypatch, two_class, capsys):
    monkeypatch.setattr(data, "load", lambda *a, **k: two_class)
    (tmp_path / "fleet.toml").write_text(MIXED)
    out = tmp_path / "plans"
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"),
                 "--out", str(out)]) == 0
    assert len(list(out.glob("node_*.plan"))) == 16
    info = json.loads((out / "fleet_plan.json").read_text())
    assert [r["board"] for r in info["nodes"]][11:13] == ["adafruit_feather_nrf52840",
                                                         "esp32_s3_devkitc"]
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--lost",
                 "0,15", "--out", str(out)]) == 0
    info = json.loads((out / "fleet_plan.json").read_text())
    assert len(info["nodes"]) == 14 and len(list(out.glob("node_*.plan"))) == 14
    assert info["renumbered"]["1"] == 0 and "15" not in info["renumbered"]
    assert sum(r["kernels"] for r in info["nodes"]) == 84
    assert all(r["bytes"] <= r["budget"] for r in info["nodes"])
    (tmp_path / "tiny.toml").write_text('[[group]]\nboard = "seeed_xiao_nrf52840"\ncount = 1\n')
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=14)
    monkeypatch.setattr(data, "load", lambda *a, **k: many)
    capsys.readouterr()
    assert main(["plan", "x", "--fleet", str(tmp_path / "tiny.toml"), "--out",
                 str(tmp_path / "p2")]) == 2
    assert "Smallest fleet that works" in capsys.readouterr().err


@pytest.mark.slow
def test_code_heap_table_matches_the_measurement(capsys):
    """The planner's figures for rocknet's code (boards/code_heap.json) are what MicroPython
    holds after a training node imported the package from the .mpy files deploy sends and from
    the ROMFS image deploy --romfs writes (within 10 %; tools/measure_code_heap.py --check)."""
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import measure_code_heap
    finally:
        sys.path.remove(str(REPO_ROOT / "tools"))
    assert measure_code_heap.main(["--check"]) == 0, capsys.readouterr().err
    have = {k: fp.code_heap_bytes(k) for k in ("files", "romfs", "frozen")}
    assert have["files"] > have["romfs"] > have["frozen"] > 0


def test_code_allowance_follows_how_the_board_gets_its_code(two_class):
    fleet = fl.parse(__import__("tomllib").loads(MIXED))
    _, split = fp.fit(fleet, two_class, n_features=20_000)
    assert fp.code_shortfall(split) == fp.code_shortfall(split, "files")  # the boards' default
    by = {k: dict(fp.code_shortfall(split, k)) for k in ("files", "romfs", "frozen")}
    for less, more in (("files", "romfs"), ("romfs", "frozen")):
        assert set(by[more]) <= set(by[less])
        for node, short in by[more].items():
            b = split.boards[node]
            assert by[less][node] - short == (fp.code_heap_bytes(fp.code_source(b, less))
                                              - fp.code_heap_bytes(fp.code_source(b, more)))
    with pytest.raises(ValueError, match="code_from must be one of"):
        fp.code_heap_bytes("flash")


def test_plan_warns_when_the_code_does_not_fit_beside_it(tmp_path, monkeypatch, two_class,
                                                           capsys):
    monkeypatch.setattr(data, "load", lambda *a, **k: two_class)
    (tmp_path / "fleet.toml").write_text(MIXED)
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"),
                 "--features", "20000", "--out", str(tmp_path / "plans")]) == 0
    out = capsys.readouterr().out
    fleet = fl.parse(__import__("tomllib").loads(MIXED))
    _, split = fp.fit(fleet, two_class, n_features=20_000)
    short = fp.code_shortfall(split)
    assert short  # 20,000 features over 16 boards leave no board room for the code
    assert f"on {len(short)} of 16 nodes" in out and "frozen" in out and "--romfs" in out
    # the Feathers (CircuitPython, no mpy-cross of its own here) get .py files, the ESP32s .mpy
    flat = " ".join(out.split())
    assert f"{fp.code_heap_bytes('py') / 1000:.1f} KB from .py files" in flat
    assert f"{fp.code_heap_bytes('files') / 1000:.1f} KB from .mpy files" in flat
    # the Feathers run CircuitPython: no ROMFS to plan for
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--features",
                 "20000", "--code-from", "romfs", "--out", str(tmp_path / "plans")]) == 2
    assert "CircuitPython has no ROMFS" in capsys.readouterr().err


def test_circuitpython_files_are_py_unless_deploy_has_its_mpy_cross(tmp_path, monkeypatch):
    """`rocknet deploy` installs .py sources on CircuitPython unless it has CircuitPython's
    own mpy-cross: the planner counts the code the board will hold."""
    feather, esp = boards.load("adafruit_feather_nrf52840"), boards.load("esp32_s3_devkitc")
    monkeypatch.delenv("ROCKNET_CIRCUITPY_MPY_CROSS", raising=False)
    assert fp.code_source(feather) == "py" and fp.code_source(esp) == "files"
    assert fp.code_source(feather, "frozen") == "frozen"
    assert fp.code_heap_bytes("py") > fp.code_heap_bytes("files")
    exe = tmp_path / "mpy-cross"
    exe.write_bytes(b"")
    monkeypatch.setenv("ROCKNET_CIRCUITPY_MPY_CROSS", str(exe))
    assert fp.code_source(feather) == "files"
