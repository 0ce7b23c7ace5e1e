"""A whole simulated training run's air traffic as pcap (`sim.pcap.capture`, what
`rocknet simulate --pcap` writes): no training series appears in it in the clear, yet the
series did cross the air (the fleet key decrypts them), and tshark still decodes every
advert's header."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from rocknet_host.data import Dataset
from rocknet_host.planning import features as plan_mod
from rocknet_host.runtimes import import_device
from rocknet_host.sim import phy, simulate
from rocknet_host.sim.pcap import capture, read_pcap

WINDOW = 8  # bytes of a series that would give it away


def patterned(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Series whose int8 bytes are easy to spot: a class-dependent sawtooth per sample."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(length)
    X = np.array([((t * (3 + c) + 11 * k) % 40) - 20.0 + rng.normal(0, 0.01, length)
                  for k, c in enumerate(y)])
    return X, y


def adverts(path) -> list[bytes]:
    """Whole advertising data of each advert in a capture: an AUX_ADV_IND's fragment plus
    its AUX_CHAIN_IND fragments (matched by their ADI), or a legacy advert's."""
    out, open_ = [], {}
    for r in read_pcap(path):
        if not r.aux:
            if r.pdu_type == phy.ADV_NONCONN_IND:
                out.append(r.adv_data())
            continue
        f = phy.parse_ext_header(r.pdu)
        key = (f.get("did"), f.get("sid"))
        data = f["adv_data"]
        buf = data if "adv_addr" in f else open_.pop(key, b"") + data
        if buf and len(buf) >= buf[0] + 1:
            out.append(buf)
        elif buf:
            open_[key] = buf
    return out


def windows(Q: np.ndarray) -> set[bytes]:
    return {row.tobytes()[i:i + WINDOW] for row in Q for i in range(len(row) - WINDOW + 1)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    Xtr, ytr = patterned(12, 40, 0)
    Xte, yte = patterned(6, 40, 1)
    ds = Dataset("Patterns", Xtr, ytr, Xte, yte, ["a", "b"], "tests/test_pcap_private.py")
    pl = plan_mod.fit(ds, 3, n_features=168, seed=0)
    path = tmp_path_factory.mktemp("air") / "run.pcap"
    sim = simulate.Simulation(pl, ds, simulate.Config(epochs=1, batch=4, seed=3))
    with capture(sim.fleet.medium, path) as sink:
        result = sim.run()
    assert sink is not None and len(sink) > 0
    key = simulate.KEY  # the fleet key the simulated boards were given
    return path, windows(pl.quantizer(Xtr).astype(np.int8)), result, sim, key


def test_no_training_series_in_the_clear(run):
    path, secret, result, _, _ = run
    assert result["rounds"] > 0 and len(secret) > 100
    raw = path.read_bytes()
    assert not [w for w in secret if w in raw]


def test_the_series_did_cross_the_air(run):
    """Positive control: opened with the fleet key, the captured adverts carry the series
    (the systematic packets send each owner's rows uncoded)."""
    path, secret, _, sim, key = run
    wire = import_device("rocknet.wire")
    p0 = sim.node_plans[0]
    geo = import_device("rocknet.node").Geometry(
        sim.n, sim.ds.length, sim.plan.n_classes, sim.row_size, p0["run"]["window"],
        2 if p0["head"]["wire"] == "int16" else 4)
    codec = wire.Codec(key, geo.m, sim.row_size, sim.model.wire_profile)
    opened = [codec.unpack(d, 0, forward=True) for d in adverts(path)]
    payloads = b"".join(p.payload for p in opened if p is not None)
    assert payloads and [w for w in secret if w in payloads]


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark not installed (apt-get install tshark)")
def test_tshark_decodes_the_headers(run):
    path, _, _, sim, _ = run
    recs = list(read_pcap(path))
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "btle.advertising_header.pdu_type",
         "-e", "btcommon.eir_ad.entry.company_id", "-e", "btcommon.eir_ad.entry.data"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.splitlines()
    assert len(out) == len(recs)
    ours = [line.split("\t") for line in out if "0xffff" in line.lower()]
    firsts = [r for r in recs if r.aux and "adv_addr" in phy.parse_ext_header(r.pdu)]
    assert len(ours) == len(firsts) > 0  # every advert: its AD header, company id decoded
    for adv in adverts(path):  # network id 0; in clear: round, sender, flags, seq, boot
        assert adv[1] == 0xFF and adv[4] == 0 and adv[7] < sim.n
