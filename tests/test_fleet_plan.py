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
    # Feathers with rocknet frozen in: with its code in the heap a Feather of a 16-board fleet
    # holds next to nothing (test_a_board_whose_code_leaves_no_room_is_refused)
    pl, split = fp.fit(fleet, two_class, n_features=10_000, code_from="frozen")
    assert pl.n_nodes == 16 and sum(split.features) == pl.n_features
    assert split.combos == [sum(b - a for a, b in s) for s in pl.splits]
    geo = fp.plan_shape(150, 2, 10_000, "minirocket", 16, len(two_class.X_test))
    for i, (b, f, m) in enumerate(zip(split.boards, split.features, split.bytes, strict=True)):
        assert 0 < m <= b.heap_budget
        assert f <= fp.feature_capacity(b, geo, "frozen")
        combos = len(pl.node_features(i)["centre"])
        assert m == fp.node_bytes(b, geo, f, combos, "frozen")
    feather, s3 = split.features[:12], split.features[12:]
    assert min(s3) > max(feather)  # 240 MHz boards take more of the work
    # boards alike hold alike shares, within a (dilation, kernel) combination
    widest = max(pl.biases_per_dilation)
    assert max(feather) - min(feather) <= 2 * widest and max(s3) - min(s3) <= 2 * widest
    # at every dilation every kernel owned once, in node order
    for di in range(len(pl.dilations)):
        assert pl.splits[0][di][0] == 0 and pl.splits[-1][di][1] == 84
        assert all(pl.splits[i][di][1] == pl.splits[i + 1][di][0] for i in range(15))


def test_memory_model_grows_with_the_fleet_and_the_code(two_class):
    """The estimate holds the link's two Mixer rounds and the ring's partial-logit rows of
    every member (more boards, more bytes per node) and the code as the board gets it."""
    feather = boards.load("adafruit_feather_nrf52840")
    small, large = (fp.plan_shape(150, 2, 3000, "minirocket", n) for n in (3, 20))
    assert fp.node_bytes(feather, large, 300, 0, "files") > fp.node_bytes(
        feather, small, 300, 0, "files")
    assert (fp.node_bytes(feather, small, 300, 0, "files")
            - fp.node_bytes(feather, small, 300, 0, "frozen")
            == fp.code_heap_bytes("files") - fp.code_heap_bytes("frozen"))
    # the plans' default wire, int16: 2 bytes a class in the ring, 4 as float32
    assert fp.ring_bytes(20, 14) == fp.PENDING_SAMPLES * 20 * 14 * 2
    assert fp.ring_bytes(20, 14, wire="float32") == fp.PENDING_SAMPLES * 20 * 14 * 4
    assert fp.link_bytes(20, 131, 14) > fp.link_bytes(3, 131, 14) > 0
    # FaceAll/20: a round's rows are sized by the series (133 B), either wire; 60 classes:
    # the control message sizes them
    assert fp.link_bytes(20, 131, 14, wire="float32") == fp.link_bytes(20, 131, 14)
    assert fp.link_bytes(20, 131, 60, wire="float32") > fp.link_bytes(20, 131, 60)
    caps = [fp.feature_capacity(feather, small, c) for c in ("py", "files", "romfs", "frozen")]
    assert caps == sorted(caps) and caps[-1] > caps[0]


def test_keeping_series_instead_of_codes_costs_a_series_per_slot(two_class):
    """The ring of undecided samples holds a byte per feature a slot with keep="codes", a
    byte per series value a slot with keep="series": the estimate moves by exactly that, a
    board holds more features keeping series, and "auto" keeps series only where codes do not
    fit the board's budget (FaceAll/20's heaviest node on a Feather)."""
    import dataclasses

    feather = boards.load("adafruit_feather_nrf52840")
    faceall = fp.plan_shape(131, 14, 10_000, "minirocket", 20, 1690)
    series = dataclasses.replace(faceall, keep="series")
    for f in (100, 595):
        assert (fp.node_bytes(feather, faceall, f, 25, "files")
                - fp.node_bytes(feather, series, f, 25, "files")
                == fp.PENDING_SAMPLES * (f - 131))
    assert fp.feature_capacity(feather, series, "frozen") > fp.feature_capacity(
        feather, faceall, "frozen")
    assert fp.node_bytes(feather, faceall, 595, 25, "files") > feather.heap_budget
    assert fp.node_keep(feather, faceall, 595, 25, "files") == "series"
    assert fp.node_keep(feather, series, 100, 25, "files") == "codes"  # auto: codes fit
    assert fp.node_keep(feather, faceall, 595, 25, "files", "codes") == "codes"
    with pytest.raises(ValueError, match="keep must be one of"):
        fp.node_keep(feather, faceall, 595, 25, "files", "counts")


def test_auto_keep_fits_a_fleet_that_codes_do_not():
    """Five Feathers (code frozen in) hold FaceAll-sized series' 10,000 features only keeping
    series; seven keep codes with "auto", as with "codes"; the plans say what each keeps."""
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=2)

    def feathers(n):
        return fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": n}]})

    with pytest.raises(fp.FleetTooSmall):
        fp.fit(feathers(5), many, n_features=10_000, code_from="frozen", keep="codes")
    pl, split = fp.fit(feathers(5), many, n_features=10_000, code_from="frozen", keep="auto")
    assert split.keeps == ["series"] * 5 and sum(split.features) == pl.n_features
    assert all(m <= b.heap_budget for m, b in zip(split.bytes, split.boards, strict=True))
    assert [r["keep"] for r in split.rows()] == ["series"] * 5
    _, seven = fp.fit(feathers(7), many, n_features=10_000, code_from="frozen", keep="auto")
    _, codes = fp.fit(feathers(7), many, n_features=10_000, code_from="frozen")
    assert seven.keeps == codes.keeps == ["codes"] * 7 and seven.bytes == codes.bytes


def test_cli_plan_writes_what_each_node_keeps(tmp_path, monkeypatch, capsys):
    """`rocknet plan --keep`: the node plans' ``run.keep`` and fleet_plan.json say what each
    node keeps; "auto" (the default) keeps series where codes do not fit, "codes" refuses
    such a fleet."""
    from rocknet_host.planning import features as plan

    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=2)
    monkeypatch.setattr(data, "load", lambda *a, **k: many)
    (tmp_path / "fleet.toml").write_text('[[group]]\nboard = "adafruit_feather_nrf52840"\n'
                                         'count = 5\n')
    argv = ["plan", "x", "--fleet", str(tmp_path / "fleet.toml"), "--code-from", "frozen"]
    out = tmp_path / "auto"
    assert main(argv + ["--out", str(out)]) == 0
    assert "series" in capsys.readouterr().out
    assert [plan.read_node(out / f"node_{i:02d}.plan")["run"]["keep"] for i in range(5)] == [
        "series"] * 5
    info = json.loads((out / "fleet_plan.json").read_text())
    assert [r["keep"] for r in info["nodes"]] == ["series"] * 5
    assert main(argv + ["--keep", "codes", "--pending", "12", "--out",
                        str(tmp_path / "codes")]) == 2
    assert "Smallest fleet that works" in capsys.readouterr().err
    # without a fleet: "auto" on the board the radio stands for (a Feather), here codes fit
    assert main(["plan", "x", "--nodes", "3", "--features", "600", "--out",
                 str(tmp_path / "small")]) == 0
    assert "every node keeps the codes" in " ".join(capsys.readouterr().out.split())
    assert plan.read_node(tmp_path / "small" / "node_02.plan")["run"]["keep"] == "codes"
    assert main(["plan", "x", "--nodes", "3", "--features", "600", "--keep", "series",
                 "--out", str(tmp_path / "small")]) == 0
    assert plan.read_node(tmp_path / "small" / "node_02.plan")["run"]["keep"] == "series"


def test_a_ring_shrinks_to_window_plus_4_only_where_the_budget_needs_it(two_class):
    """``pending`` (the ring of undecided samples, ``run.pending``): the estimate moves by
    exactly the slots' rows and kept codes or series; "auto" (None) keeps 2 w + 4 where that
    fits the board's budget and w + 4 where it does not (FaceAll/20's heaviest node on a
    Feather, which keeps series already); an explicit ring is kept as asked."""
    import dataclasses

    feather = boards.load("adafruit_feather_nrf52840")
    w = fp.WINDOW
    assert fp.PENDING_SAMPLES == fp.full_pending(w) == 2 * w + 4 and fp.floor_pending(w) == w + 4
    faceall = fp.plan_shape(131, 14, 10_000, "minirocket", 20, 1690, keep="series")
    small = dataclasses.replace(faceall, pending=w + 4)
    assert fp.ring_bytes(20, 14, pending=w + 4) == (w + 4) * 20 * 14 * 2
    for keep, per_slot in (("series", 20 * 14 * 2 + 131), ("codes", 20 * 14 * 2 + 595)):
        g = dataclasses.replace(faceall, keep=keep)
        assert (fp.node_bytes(feather, g, 595, 25, "files")
                - fp.node_bytes(feather, dataclasses.replace(g, pending=w + 4), 595, 25,
                                "files") == w * per_slot)
    assert fp.node_bytes(feather, faceall, 595, 25, "files") > feather.heap_budget
    assert fp.node_pending(feather, faceall, 595, 25, "files") == w + 4
    assert fp.node_pending(feather, small, 595, 25, "files") == w + 4  # weighed with 2w + 4
    assert fp.node_bytes(feather, faceall, 100, 25, "frozen") <= feather.heap_budget
    assert fp.node_pending(feather, faceall, 100, 25, "frozen") == 2 * w + 4
    assert fp.node_pending(feather, faceall, 595, 25, "files", pending=11) == 11
    assert fp.feature_capacity(feather, small, "frozen") > fp.feature_capacity(
        feather, faceall, "frozen")


def test_auto_ring_fits_a_fleet_that_the_full_ring_does_not():
    """Five Feathers (code frozen in) keeping codes hold FaceAll-sized series' 10,000
    features only with rings of w + 4; seven hold them with the full ring. The split, its
    rows and the estimate follow each node's ring."""
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=2)
    w = fp.WINDOW

    def feathers(n):
        return fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": n}]})

    with pytest.raises(fp.FleetTooSmall):
        fp.fit(feathers(5), many, n_features=10_000, code_from="frozen", keep="codes",
               pending=2 * w + 4)
    pl, split = fp.fit(feathers(5), many, n_features=10_000, code_from="frozen",
                       keep="codes", pending=None)
    assert split.keeps == ["codes"] * 5 and sum(split.features) == pl.n_features
    assert split.pendings == [w + 4] * 5 and [r["pending"] for r in split.rows()] == [w + 4] * 5
    assert all(m <= b.heap_budget for m, b in zip(split.bytes, split.boards, strict=True))
    _, seven = fp.fit(feathers(7), many, n_features=10_000, code_from="frozen", keep="codes",
                      pending=None)
    _, full = fp.fit(feathers(7), many, n_features=10_000, code_from="frozen", keep="codes")
    assert seven.pendings == full.pendings == [2 * w + 4] * 7 and seven.bytes == full.bytes


def test_cli_pending_flows_to_the_node_plans(tmp_path, monkeypatch, capsys):
    """`rocknet plan --pending N|auto`: ``run.pending`` in every node plan and in
    fleet_plan.json; "auto" says when it shrank a ring; a ring below window + 2 is refused
    with the reason and what to use, by `plan`, `simulate` and `bench memory` alike."""
    from rocknet_host.planning import features as plan

    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=2)
    monkeypatch.setattr(data, "load", lambda *a, **k: many)
    w = fp.WINDOW
    small = ["plan", "x", "--nodes", "3", "--features", "600"]
    assert main(small + ["--out", str(tmp_path / "auto")]) == 0
    assert "a ring of 12 undecided samples on every node" in " ".join(
        capsys.readouterr().out.split())
    assert plan.read_node(tmp_path / "auto" / "node_02.plan")["run"]["pending"] == 2 * w + 4
    assert main(small + ["--pending", "7", "--out", str(tmp_path / "seven")]) == 0
    assert [plan.read_node(tmp_path / "seven" / f"node_{i:02d}.plan")["run"]["pending"]
            for i in range(3)] == [7] * 3
    for cmd in (small + ["--out", str(tmp_path / "five")],
                ["simulate", "x", "--nodes", "3", "--features", "600", "--epochs", "1"],
                ["bench", "memory", "--dataset", "x", "--nodes", "3", "--features", "600"]):
        assert main(cmd + ["--pending", str(w + 1)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"--pending {w + 1}: a node's ring must hold at least window + 2 = {w + 2}" in err
        assert "use --pending auto" in err
    with pytest.raises(SystemExit):  # argparse's usage error
        main(small + ["--pending", "many", "--out", str(tmp_path / "x")])
    assert "expected a number of samples or 'auto'" in capsys.readouterr().err
    (tmp_path / "fleet.toml").write_text('[[group]]\nboard = "adafruit_feather_nrf52840"\n'
                                         'count = 5\n')
    out = tmp_path / "fleet"
    assert main(["plan", "x", "--fleet", str(tmp_path / "fleet.toml"), "--code-from", "frozen",
                 "--keep", "codes", "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "ring of undecided samples shrunk from 12 to 8" in said
    assert [plan.read_node(out / f"node_{i:02d}.plan")["run"]["pending"] for i in range(5)] == [
        w + 4] * 5
    info = json.loads((out / "fleet_plan.json").read_text())
    assert [r["pending"] for r in info["nodes"]] == [w + 4] * 5


def test_allocate_caps_and_clocks():
    assert fp.allocate([84, 84], [1.0, 3.0], 84) == [21, 63]
    k = fp.allocate([5, 100, 100], [1.0, 1.0, 1.0], 84)
    assert k[0] == 5 and sum(k) == 84 and abs(k[1] - k[2]) <= 1
    with pytest.raises(fp.FleetTooSmall):
        fp.allocate([10, 10], [1.0, 1.0], 84)


def test_impossible_fleet_names_the_minimum(tmp_path, capsys):
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=2)
    fleet = fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": 3}]})
    with pytest.raises(fp.FleetTooSmall) as err:
        fp.fit(fleet, many, n_features=10_000, code_from="frozen")
    msg = str(err.value)
    geo = fp.plan_shape(131, 2, 10_000, "minirocket", 3, 4)
    cap = fp.feature_capacity(fleet.groups[0].board, geo, "frozen")
    assert f"holds {3 * cap:,} of the {geo.n_features:,} features" in msg
    minimum = int(msg.split("Smallest fleet that works: ")[1].split(" x ")[0])
    assert "--features" in msg
    # the minimum really works, one fewer does not (each with its own fleet's rounds)

    def feathers(n):
        return fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": n}]})

    ok = fp.plan_shape(131, 2, 10_000, "minirocket", minimum, 4)
    assert sum(fp.split_for(feathers(minimum), ok, code_from="frozen")) == ok.n_features
    with pytest.raises(fp.FleetTooSmall):
        fp.split_for(feathers(minimum - 1), fp.plan_shape(131, 2, 10_000, "minirocket",
                                                           minimum - 1, 4), code_from="frozen")
    # 40 classes: every board added costs each node more than the features it takes over
    wide = data.synthetic(n_train=28, n_test=4, length=131, n_classes=40)
    with pytest.raises(fp.FleetTooSmall) as err:
        fp.fit(fleet, wide, n_features=10_000, code_from="frozen")
    msg = " ".join(str(err.value).split())
    assert "No number of adafruit_feather_nrf52840 boards holds all 9,996 features" in msg
    nf = int(msg.split("--features ")[1].split()[0])
    fp.fit(fleet, wide, n_features=nf, code_from="frozen")  # the advice holds


def test_a_board_whose_code_leaves_no_room_is_refused(monkeypatch):
    """A Feather given rocknet as .py files (CircuitPython without its mpy-cross) holds the
    code and a node's fixed state and nothing more: the refusal says so and names the fix."""
    monkeypatch.delenv("ROCKNET_CIRCUITPY_MPY_CROSS", raising=False)
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=14)
    fleet = fl.parse({"group": [{"board": "adafruit_feather_nrf52840", "count": 20}]})
    with pytest.raises(fp.FleetTooSmall) as err:
        fp.fit(fleet, many, n_features=10_000)
    msg = " ".join(str(err.value).split())
    assert "cannot hold even one (dilation, kernel) combination" in msg
    assert f"rocknet's code {fp.code_heap_bytes('py'):,} B of it from .py files" in msg
    assert "ROCKNET_CIRCUITPY_MPY_CROSS" in msg and "frozen" in msg


def test_cli_plan_fleet_and_replan_after_a_loss(tmp_path, monkeypatch, two_class, capsys):
    monkeypatch.setattr(data, "load", lambda *a, **k: two_class)
    (tmp_path / "fleet.toml").write_text(MIXED)
    out = tmp_path / "plans"
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"),
                 "--code-from", "frozen", "--out", str(out)]) == 0
    assert len(list(out.glob("node_*.plan"))) == 16
    info = json.loads((out / "fleet_plan.json").read_text())
    assert [r["board"] for r in info["nodes"]][11:13] == ["adafruit_feather_nrf52840",
                                                         "esp32_s3_devkitc"]
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--lost",
                 "0,15", "--code-from", "frozen", "--out", str(out)]) == 0
    info = json.loads((out / "fleet_plan.json").read_text())
    assert len(info["nodes"]) == 14 and len(list(out.glob("node_*.plan"))) == 14
    assert info["renumbered"]["1"] == 0 and "15" not in info["renumbered"]
    assert sum(r["features"] for r in info["nodes"]) == 10_000 // 84 * 84
    assert info["nodes"][0]["holds"].startswith("k0-")
    assert all(r["bytes"] <= r["budget"] for r in info["nodes"])
    (tmp_path / "tiny.toml").write_text('[[group]]\nboard = "seeed_xiao_nrf52840"\ncount = 1\n')
    many = data.synthetic(n_train=28, n_test=4, length=131, n_classes=14)
    monkeypatch.setattr(data, "load", lambda *a, **k: many)
    capsys.readouterr()
    assert main(["plan", "x", "--fleet", str(tmp_path / "tiny.toml"), "--code-from", "frozen",
                 "--out", str(tmp_path / "p2")]) == 2
    assert "plan fewer features (--features" in capsys.readouterr().err


@pytest.mark.slow
def test_memory_model_covers_a_node_it_was_not_calibrated_on(capsys):
    """The planner's estimate (boards/memory_model.json, tools/calibrate_memory.py) covers
    every node of a plan it was not fitted on, measured by `rocknet bench memory` in
    MicroPython under the Feather's profile, and not by more than 20 % (the WebAssembly
    heap's garbage, kept alive by pointer-looking data, moves figures by several KB)."""
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import calibrate_memory
    finally:
        sys.path.remove(str(REPO_ROOT / "tools"))
    assert calibrate_memory.main(["--check"]) == 0, capsys.readouterr()


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


def test_plan_sends_int16_logits_by_default_and_float32_on_request(tmp_path, monkeypatch,
                                                                     two_class, capsys):
    """`rocknet plan --fleet`: the plans' head says int16 unless --wire float32, and the
    planner counts the wire's rows (a float32 node holds more)."""
    from rocknet_host.planning import features as plan

    monkeypatch.setattr(data, "load", lambda *a, **k: two_class)
    (tmp_path / "fleet.toml").write_text('[[group]]\nboard = "adafruit_feather_nrf52840"\n'
                                         'count = 3\n')
    got = {}
    for wire in ("int16", "float32"):
        out = tmp_path / wire
        argv = ["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--features",
                "2000", "--code-from", "frozen", "--out", str(out)]
        assert main(argv + (["--wire", wire] if wire == "float32" else [])) == 0
        assert f"{wire} partial logits" in capsys.readouterr().out
        assert plan.read_node(out / "node_00.plan")["head"]["wire"] == wire
        got[wire] = json.loads((out / "fleet_plan.json").read_text())["nodes"]
    assert [r["features"] for r in got["int16"]] == [r["features"] for r in got["float32"]]
    assert all(a["bytes"] < b["bytes"] for a, b in zip(got["int16"], got["float32"],
                                                        strict=True))


def test_plan_counts_the_code_as_the_boards_get_it(tmp_path, monkeypatch, two_class, capsys):
    monkeypatch.setattr(data, "load", lambda *a, **k: two_class)
    (tmp_path / "fleet.toml").write_text(MIXED)
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--features",
                 "2000", "--code-from", "frozen", "--out", str(tmp_path / "plans")]) == 0
    flat = " ".join(capsys.readouterr().out.split())
    assert f"{fp.code_heap_bytes('frozen') / 1000:.1f} KB from frozen modules" in flat
    info = json.loads((tmp_path / "plans" / "fleet_plan.json").read_text())
    assert all(r["bytes"] <= r["budget"] for r in info["nodes"])
    # the Feathers run CircuitPython: no ROMFS to plan for
    assert main(["plan", "synthetic", "--fleet", str(tmp_path / "fleet.toml"), "--features",
                 "2000", "--code-from", "romfs", "--out", str(tmp_path / "plans")]) == 2
    assert "CircuitPython has no ROMFS" in capsys.readouterr().err
    with pytest.raises(ValueError, match="code_from must be one of"):
        fp.code_heap_bytes("flash")


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
