"""`rocknet.demo()` trains and tests on one board in both runtimes; device/package.json lists
real files for `mpremote mip install`."""

from __future__ import annotations

import json

from rocknet_host.paths import DEVICE_DIR


def test_demo_learns_in_both_runtimes(device):
    device.exec("import rocknet\n_r = rocknet.demo(n_train=8, n_test=6, verbose=False)")
    res = device.eval("_r")
    assert res["test"] == 18 and res["features"] == 108
    assert res["accuracy"] >= 0.8
    out = device.exec("rocknet.demo(n_train=4, n_test=2)")
    assert "accuracy" in out and "memory" in out
    if getattr(device, "name", "micropython") == "micropython":
        assert res["peak_bytes"] > 0


def test_package_json_for_mip():
    pkg = json.loads((DEVICE_DIR / "package.json").read_text())
    dests = [d for d, _ in pkg["urls"]]
    assert "rocknet/__init__.py" in dests and "rocknet/quickstart.py" in dests
    for dest, url in pkg["urls"]:
        assert dest == url and (DEVICE_DIR / url).is_file(), url
