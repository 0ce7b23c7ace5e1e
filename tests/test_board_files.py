"""The board reads its plan a section at a time (`board.Plan`) and its own samples a sample at a
time from flash (`samples.Phase`): the same values as parsing the whole files (`json.loads`,
`board.decode_data`), in every runtime; old one-line plans still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import WRITE_FILES
from rocknet_host import data
from rocknet_host.planning import board as board_plan
from rocknet_host.planning import features as plan
from rocknet_host.runtimes import import_device

store = import_device("rocknet.store")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    out: Path = tmp_path_factory.mktemp("plans")
    ds = data.synthetic(n_train=24, n_test=12, length=40, n_classes=3, seed=3)
    p = plan.fit(ds, 2, n_features=168, seed=0)
    t = board_plan.Training(epochs=1, batch=4, eval=4, predict=True)
    plan.write(p, out, board_plan.node_plans(p, ds, t))
    board_plan.write_data(p, ds, t, out)
    got = {f.name: f.read_bytes() for f in out.iterdir() if f.suffix in (".plan", ".data")}
    got["fleet.key"] = bytes(range(16))
    # the same plan as an older rocknet wrote it: one line
    _, body = store.decode(got["node_01.plan"], "plan")
    got["oneline.plan"] = store.encode("plan", store.PLAN_VERSION,
                                       json.dumps(json.loads(body)).encode())
    return got


CODE = WRITE_FILES + """
import json
from rocknet import board, store
_p, _pid, _k, _s = board.load(base + "/node_01.plan", base + "/fleet.key",
                              base + "/node_01.data")
_old = json.loads(store.read(base + "/node_01.plan", "plan")[1])
_one = board.Plan(base + "/oneline.plan", *store.check(base + "/oneline.plan", "plan")[1:3])
_ds = board.decode_data(store.read(base + "/node_01.data", "data")[1])[1]
_lens = [len(_s[k]) for k in ("train", "eval", "predict")]
try:
    _s["train"][_lens[0]]
    _past = False
except IndexError:
    _past = True
result = [
    sorted(_old) == sorted(k for k in _old if k in _p),
    [k for k in _old if _p[k] != _old[k] or _one[k] != _old[k]],
    _p.get("no such section", 7), "no such section" in _p,
    _pid == board.plan_id(store.read(base + "/node_01.plan", "plan")[1]),
    [list(_s[k]) == _ds[k] for k in ("train", "eval", "predict")],
    _lens, [len(_ds[k]) for k in ("train", "eval", "predict")],
    _s["train"][-1] == _ds["train"][-1], _s.get("predict")[0] == _ds["predict"][0], _past,
]
del _p, _old, _one, _ds, _s
"""


def test_plan_sections_and_flash_samples_match_whole_file_parsing(device, files, tmp_path):
    base = str(tmp_path / "b") if getattr(device, "name", "") == "cpython" else "/rn_files"
    same_keys, differ, default, has, pid_ok, phases, lens, want, last, pred, past = device.call(
        CODE, files=files, base=base)
    assert same_keys and differ == [] and default == 7 and has is False and pid_ok
    assert phases == [True, True, True] and lens == want and min(lens) > 0
    assert last and pred and past


def test_plan_file_has_a_section_per_line(files):
    _, body = store.decode(files["node_00.plan"], "plan")
    lines = body.split(b"\n")
    assert lines[0] == b"{" and lines[-1] == b"}"
    assert [json.loads(b"{" + ln.rstrip(b",") + b"}").popitem()[0] for ln in lines[1:-1]] == \
        list(json.loads(body))
