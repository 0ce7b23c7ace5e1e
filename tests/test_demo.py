"""`rocknet.demo()` trains and tests on one board in both runtimes (device/package.json, what
`mpremote mip install` reads: tests/test_packaging.py)."""

from __future__ import annotations


def test_demo_learns_in_both_runtimes(device):
    device.exec("import rocknet\n_r = rocknet.demo(n_train=8, n_test=6, verbose=False)")
    res = device.eval("_r")
    assert res["test"] == 18 and res["features"] == 108
    assert res["accuracy"] >= 0.8
    out = device.exec("rocknet.demo(n_train=4, n_test=2)")
    assert "accuracy" in out and "memory" in out
    if getattr(device, "name", "micropython") == "micropython":
        assert res["peak_bytes"] > 0
