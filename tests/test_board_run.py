"""The board runner (`rocknet.board`, `rocknet.run()`) without hardware: runners wired to the
in-memory medium (`rocknet.radio.sim`) train a small fleet from the files `rocknet plan`
writes, in CPython and in MicroPython; boards switched on late or reset mid-training; clear
refusals of missing or damaged files; and `rocknet deploy` putting the data file (and the
autostart file) on a virtual board, where `rocknet.run()` loads everything and then says that
this runtime has no radio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WRITE_FILES
from rocknet_host import data
from rocknet_host.cli import main
from rocknet_host.hardware import deploy as dp
from rocknet_host.hardware.virtual_board import VirtualBoard
from rocknet_host.planning import board as board_plan
from rocknet_host.planning import features as plan
from rocknet_host.runtimes import import_device, open_runtime

board = import_device("rocknet.board")
rocknet = import_device("rocknet")
sim = import_device("rocknet.radio.sim")
store = import_device("rocknet.store")

KEY = bytes(range(16))


def write_fleet(out: Path, n: int = 3, epochs: int = 3) -> Path:
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    p = plan.fit(ds, n, n_features=336, seed=0)
    t = board_plan.Training(epochs=epochs, batch=8, deadline_ms=500)
    plan.write(p, out, board_plan.node_plans(p, ds, t))
    board_plan.write_data(p, ds, t, out)
    (out / "fleet.key").write_bytes(KEY)
    return out


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory) -> Path:
    return write_fleet(tmp_path_factory.mktemp("plans"))


def files_of(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())
            if f.suffix in (".plan", ".data", ".key")}


SETUP = WRITE_FILES + """
from rocknet import board
from rocknet.radio import sim
air = sim.Air(loss=0.05, seed=1)
lines = []
runners = []
for i in range(3):
    p, pid, k, d = board.load(base + "/node_%02d.plan" % i, base + "/fleet.key",
                              base + "/node_%02d.data" % i)
    runners.append(board.Runner(p, k, d, radio=air.radio, clock=air.now_ms, pid=pid,
                                checkpoint=base + "/ckpt%d" % i, result=base + "/res%d.json" % i,
                                out=lines.append, every=40))
"""

STEPS = """
_n = 0
alive = [True]
while _n < 400 and any(alive):
    alive = [r.step() for r in runners]
    air.tick()
    _n += 1
done = not any(alive)
"""


def test_three_runners_train_a_fleet_and_agree(device, fleet_dir, tmp_path):
    base = str(tmp_path / "board") if getattr(device, "name", "") == "cpython" else "/rn_run"
    device.set(files=files_of(fleet_dir), base=base)
    device.exec(SETUP)
    for _ in range(40):  # chunks: the WebAssembly runtime collects garbage between calls
        device.exec(STEPS)
        if device.eval("done"):
            break
    res = device.eval("[r.result for r in runners]")
    assert all(r is not None for r in res), "the fleet did not finish"
    assert len({r["digest"] for r in res}) == 1  # every board applied the same updates
    assert all(r["accuracy"] == res[0]["accuracy"] for r in res)
    assert [a[0] for a in res[0]["accuracy"]] == [0, 1, 2]
    _, correct, seen = res[0]["accuracy"][-1]
    assert seen >= 10 and correct >= 0.9 * seen
    assert res[0]["commit"] >= 100 and res[0]["members"] == 7
    lines = device.eval("lines")
    assert any(x.startswith("epoch 1/3: accuracy") for x in lines)
    assert any(x.startswith("round 40/") and "commits" in x for x in lines)
    assert any(x.startswith("final accuracy:") for x in lines)
    saved = json.loads(device.eval("open(base + '/res1.json').read()"))
    assert saved["digest"] == res[1]["digest"]
    predicted = device.eval("[[s, c] for s, c in runners[1].node.predicted()]")
    assert saved["predictions"] == predicted
    # the board reads its result file back (all but the predictions) instead of training again
    again = device.eval("board.setup(base + '/node_01.plan', base + '/fleet.key', "
                        "base + '/node_01.data', result=base + '/res1.json', out=lines.append)")
    assert again == {k: v for k, v in saved.items() if k != "predictions"}
    assert device.eval("len([f for f in os.listdir(base) if f.startswith('ckpt0')])") >= 1


def test_late_board_and_reset_board(tmp_path):
    """Board 2 is switched on 15 s after the others (they wait in round 0), board 1 is reset
    mid-training and resumes from its checkpoint: the fleet finishes together, the two that
    never left agree, and the reset board applied what they applied from its joining sample."""
    d = write_fleet(tmp_path / "plans")
    air = sim.Air(loss=0.05, seed=1)
    out: list[str] = []

    def make(i: int):
        p, pid, k, samples = board.load(str(d / f"node_{i:02d}.plan"), str(d / "fleet.key"),
                                        str(d / f"node_{i:02d}.data"))
        return board.Runner(p, k, samples, radio=air.radio, clock=air.now_ms, pid=pid,
                            checkpoint=str(tmp_path / f"ckpt{i}"), result=None,
                            out=out.append, every=0, log=True)

    rs = [make(0), make(1), None]
    alive = [True]
    for step in range(20000):
        if step == 3000:
            rs[2] = make(2)
        if step == 3400:
            air.remove(rs[1].radio)
            rs[1] = None
        if step == 3500:
            rs[1] = make(1)
        alive = [r.step() if r is not None else True for r in rs]
        air.tick()
        if not any(alive):
            break
    assert not any(alive)
    assert "rocknet: waiting for node(s) 2 to start" in out
    assert any(x.startswith("rocknet: resumed from") for x in out)
    res = [r.result for r in rs]
    assert res[0]["digest"] == res[2]["digest"]
    assert all(r["members"] == 7 and r["synced"] for r in res)
    nd, ref = rs[1].node, rs[0].node
    joined = max(e[1] for e in nd.applied if e[0] == "J")
    last = rs[0].schedule.length - 1

    def log(node):
        return [e[:3] for e in node.applied if e[0] in "ADS" and joined <= e[1] <= last]

    assert log(nd) and log(nd) == log(ref)
    assert res[1]["accuracy"][-1] == res[0]["accuracy"][-1]


REFUSE = WRITE_FILES + """
from rocknet import board
def refusal(plan, key, data):
    try:
        board.load(plan, key, data)
    except board.SetupError as exc:
        return str(exc)
    return None
P, K, D = base + "/node_00.plan", base + "/fleet.key", base + "/node_00.data"
result = {
    "no_plan": refusal(base + "/nothing.plan", K, D),
    "bad_plan": refusal(base + "/bad.plan", K, D),
    "old_plan": refusal(base + "/old.plan", K, D),
    "no_key": refusal(P, base + "/nokey", D),
    "short_key": refusal(P, base + "/short.key", D),
    "no_data": refusal(P, K, base + "/nothing.data"),
    "other_data": refusal(P, K, base + "/node_01.data"),
    "ok": refusal(P, K, D),
}
import rocknet
try:
    rocknet.run(plan=P, key=K, data=D)
except board.SetupError as exc:
    result["run"] = str(exc)
"""


def test_runner_refuses_missing_or_damaged_files_naming_the_fix(device, fleet_dir, tmp_path):
    files = files_of(fleet_dir)
    raw = bytearray(files["node_00.plan"])
    raw[-5] ^= 1
    files["bad.plan"] = bytes(raw)
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    old = tmp_path / "old"
    plan.write(plan.fit(ds, 3, n_features=336, seed=0), old)  # no training sections
    files["old.plan"] = (old / "node_00.plan").read_bytes()
    files["short.key"] = b"12345"
    base = str(tmp_path / "board") if getattr(device, "name", "") == "cpython" else "/rn_refuse"
    device.set(files=files, base=base)
    printed = device.exec(REFUSE)
    got = device.eval("result")
    assert got["ok"] is None
    fix = "rocknet deploy --plan-dir"
    assert got["no_plan"].startswith("no " + base + "/nothing.plan") and fix in got["no_plan"]
    assert "failed its checksum" in got["bad_plan"] and fix in got["bad_plan"]
    assert "no head/schedule/run section" in got["old_plan"] and "rocknet plan" in got["old_plan"]
    assert "the fleet key" in got["no_key"] and fix in got["no_key"]
    assert "a fleet key needs 16" in got["short_key"]
    assert "this node's data" in got["no_data"] and fix in got["no_data"]
    assert "belongs to another plan or node" in got["other_data"]
    # every file is good, but neither runtime here has a BLE radio: printed, and raised
    assert "rocknet: no BLE radio on this runtime" in printed, printed
    assert "rocknet simulate" in got["run"]


def test_data_file_round_trip_and_checks():
    body = board.encode_data(2, "abc", 4, train=[(b"\x01\x02\x03\x04", 1)],
                             eval=[(b"\xff\xfe\xfd\xfc", 0)], predict=[b"abcd"])
    head, samples = board.decode_data(body)
    assert head["node"] == 2 and head["plan"] == "abc"
    assert samples == {"train": [(b"\x01\x02\x03\x04", 1)], "eval": [(b"\xff\xfe\xfd\xfc", 0)],
                       "predict": [b"abcd"]}
    with pytest.raises(board.SetupError, match="wrong size"):
        board.decode_data(body[:-1])
    with pytest.raises(ValueError):
        board.encode_data(0, "x", 4, train=[(b"\x01", 0)])


def test_plan_cli_writes_training_sections_and_deploy_puts_data_on_the_board(tmp_path):
    plans = tmp_path / "plans"
    assert main(["plan", "GunPoint", "--nodes", "1", "--features", "840", "--epochs", "2",
                 "--mode", "ridge", "--eval", "10", "--out", str(plans)]) == 0
    p = store.load_plan(str(plans / "node_00.plan"))
    assert p["head"]["mode"] == "ridge" and p["head"]["solver"] == "sgd"
    assert p["schedule"]["epochs"] == 2 and p["schedule"]["eval"] == [10]
    assert p["run"]["profile"] == "extended" and p["run"]["row_size"] > 100
    # an ESP32's module set (cryptolib for the fleet's AES-CCM), without its radio
    with VirtualBoard(tmp_path / "vb", profile="micropython-esp32") as vb:
        assert main(["deploy", "--port", vb.url, "--plan-dir", str(plans), "--autostart"]) == 0
        on_board = vb.directory / dp.DATA_FILE.lstrip("/")
        assert on_board.read_bytes() == (plans / "node_00.data").read_bytes()
        assert (vb.directory / "main.py").read_bytes() == dp.AUTOSTART_CODE
        res = dp.deploy_one(vb.url, dp.read_plan(plans, 0), (plans / dp.KEY_NAME).read_bytes(),
                            data=dp.read_data(plans, 0), autostart=True)
        assert res.ok and res.up_to_date
        proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", vb.url, "exec",
                               "import rocknet; rocknet.run()"],
                              capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert "rocknet: node 0 of 1, GunPoint, 840 features, 50 train / 10 eval samples" in out
    assert "no BLE radio on this runtime (webassembly)" in out
    assert proc.returncode != 0  # rocknet.run() raised: mpremote exec fails too


def test_a_finished_board_prints_its_result_instead_of_training_again(fleet_dir, tmp_path,
                                                                     capsys):
    d = fleet_dir
    _, body = store.read(str(d / "node_00.plan"), "plan")
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"plan": board.plan_id(body), "rounds": 142, "commit": 135,
                               "drop": 0, "digest": "ab" * 16, "accuracy": [[0, 14, 15]]}))
    got = rocknet.run(plan=str(d / "node_00.plan"), key=str(d / "fleet.key"),
                      data=str(d / "node_00.data"), result=str(res))
    assert got["rounds"] == 142
    assert "finished this plan already" in capsys.readouterr().out
    with pytest.raises(board.SetupError, match="no BLE radio"):
        rocknet.run(plan=str(d / "node_00.plan"), key=str(d / "fleet.key"),
                    data=str(d / "node_00.data"), result=str(res), again=True)
    assert "no BLE radio" in capsys.readouterr().out


TRAINING = WRITE_FILES + """
import sys
import rocknet
from rocknet.radio import sim
air = sim.Air(seed=1)
lines = []
runners = [rocknet.start(plan=base + "/node_%02d.plan" % i, key=base + "/fleet.key",
                         data=base + "/node_%02d.data" % i, radio=air.radio, clock=air.now_ms,
                         checkpoint=base + "/ckpt%d" % i, result=None, out=lines.append,
                         every=10)
           for i in range(3)]
_n = 0
while _n < 5000 and not (any(f.startswith("ckpt0") for f in os.listdir(base))
                         and any(x.startswith("epoch 1/") for x in lines)):
    for r in runners:
        r.step()
    air.tick()
    _n += 1
held = sorted(m for m in sys.modules if m.startswith("rocknet"))


# the modules whose code the objects reachable from x keep alive: their classes' and their
# functions' (a module dropped from sys.modules stays in the heap while one is reachable)
def _code_of(x, seen, out):
    if id(x) in seen or isinstance(x, (int, float, str, bytes, bytearray, type(None))):
        return
    seen.add(id(x))
    t = type(x)
    out.add(getattr(t, "__module__", None))
    g = getattr(x, "__globals__", None)
    if g is not None:
        out.add(g.get("__name__"))
    f = getattr(x, "__func__", None)  # a bound method: its function, then its instance
    if f is not None:
        _code_of(f, seen, out)
        _code_of(getattr(x, "__self__", None), seen, out)
    items = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ()
    for v in items:
        _code_of(v, seen, out)
    d = getattr(x, "__dict__", None)
    if isinstance(d, dict) and t is not type(sys):
        _code_of(d, seen, out)


reached = set()
_code_of(runners[0], set(), reached)
reached = sorted(m for m in reached if m and m.startswith("rocknet"))
"""


@pytest.mark.parametrize("profile", ["micropython-esp32", "circuitpython-9"])
def test_a_training_node_holds_only_the_loops_modules(fleet_dir, profile):
    """`rocknet.run()`'s set-up code (board, store, checkpoint) is dropped once the runner is
    built, and a checkpoint write drops what it loaded: after a status line, an epoch line and
    a checkpoint, a plain-SGD node holds exactly the modules `rocknet bench features` counts
    as its code (``code_heap_bytes``). On CircuitPython 9 (no hashlib) that leaves out the
    pure-Python SHA-256 the file checks and the checkpoint's header loaded: the rounds hash
    nothing (the digest chain runs on AES, `ccm.Chain`)."""
    from rocknet_host.benches.features import NODE_MODULES

    with open_runtime("micropython", profile=profile) as mpy:  # a fresh one
        mpy.set(files=files_of(fleet_dir), base="/rn_held")
        mpy.exec(TRAINING)
        assert mpy.eval("any(x.startswith('round 10/') for x in lines)")
        assert mpy.eval("any(f.startswith('ckpt0') for f in os.listdir(base))")
        assert mpy.eval("len(runners[0].node.digest)") == 16
        held = set(mpy.eval("held")) - {"rocknet.radio", "rocknet.radio.sim"}  # the test's air
        reached = set(mpy.eval("reached")) - {"rocknet.radio.sim"}
    node = {"rocknet", "rocknet.xp", *("rocknet." + m for m in NODE_MODULES)}
    assert held == node
    # nor does anything the runner holds keep a dropped module's code alive (a class defined
    # in rocknet.board once kept all of board.py's 18 KB in the heap)
    assert reached and reached <= node, reached - node
