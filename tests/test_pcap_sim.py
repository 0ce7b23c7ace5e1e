"""Simulator air traffic as pcap (LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR): our own reader, and
tshark where installed (Debian/Ubuntu: `apt-get install tshark`)."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from rocknet_host.runtimes import import_device
from rocknet_host.sim import phy
from rocknet_host.sim import topology as topo
from rocknet_host.sim.pcap import LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR, PcapWriter, read_pcap
from rocknet_host.sim.radio import profile
from rocknet_host.sim.run import Generation, run_rounds

COMPANY = 0xFFFF


def _run(path, radio: str = "nrf52840-ext", n: int = 3):
    link = import_device("rocknet.link")
    sizes = import_device("rocknet.wire_init")
    owners = list(range(n))
    row = 8 if radio != "nrf52840-ext" else 40
    prof = "legacy" if radio != "nrf52840-ext" else "extended"
    assert row <= sizes.max_row_size(prof, n)

    def gen(r: int) -> Generation:
        rng = random.Random(r)
        return Generation(owners, row, [rng.randbytes(row) for _ in owners])

    def factory(i: int):
        return link.Link(i, b"pcap key", owners, row, prof, company_id=COMPANY, seed=i + 1)

    return run_rounds(topo.full(n), profile(radio), factory, gen, 1, seed=4, pcap_path=path)


def test_pcap_round_trip_extended(tmp_path):
    path = tmp_path / "air.pcap"
    result = _run(path)
    assert result.rounds[0].complete
    raw = path.read_bytes()
    assert int.from_bytes(raw[20:24], "little") == LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR
    recs = list(read_pcap(path))
    assert len(recs) == result.trace_pdus > 0
    assert all(r.crc_ok and r.access_address == phy.ADV_ACCESS_ADDRESS for r in recs)
    assert [r.t_us for r in recs] == sorted(r.t_us for r in recs)
    ext = [r for r in recs if not r.aux]
    aux = [r for r in recs if r.aux]
    assert {r.rf_channel for r in ext} == {0, 12, 39}  # channels 37, 38, 39
    assert len(ext) == 3 * len(aux)
    for r in aux:
        data = r.adv_data()
        assert data[1] == 0xFF and int.from_bytes(data[2:4], "little") == COMPANY
        assert data[0] == len(data) - 1
        assert r.phy == 2
    # each ADV_EXT_IND points at its AUX_ADV_IND: channel and offset agree with the capture
    first = ext[0]
    hdr = phy.parse_ext_header(first.pdu)
    target = next(r for r in aux if r.t_us > first.t_us)
    assert phy.rf_channel(int(hdr["aux_channel"])) == target.rf_channel
    assert 0 <= target.t_us - (first.t_us + int(hdr["aux_offset_us"])) < 30
    # the link's own endpoint accepts what the pcap carries
    link = import_device("rocknet.link")
    probe = link.Link(0, b"pcap key", [0, 1, 2], 40, "extended", company_id=COMPANY, seed=9)
    for r in aux:
        probe.on_advert(r.adv_data(), 0)
    assert probe.stats["rx"] > 0 and not probe.codec.rejected.get("auth")


def test_pcap_round_trip_legacy(tmp_path):
    path = tmp_path / "legacy.pcap"
    result = _run(path, radio="nrf52840-legacy")
    recs = list(read_pcap(path))
    assert len(recs) == result.trace_pdus and recs
    assert all(r.pdu_type == phy.ADV_NONCONN_IND and not r.aux and r.crc_ok for r in recs)
    datas = [r.adv_data() for r in recs]
    assert all(len(d) <= 31 and d[1] == 0xFF for d in datas)
    # one advertising event = the same advert on 37, 38, 39
    mine = [r for r in recs if r.pdu[2:8] == phy.node_address(0)][:3]
    assert [r.rf_channel for r in mine] == [0, 12, 39]
    assert len({r.adv_data() for r in mine}) == 1


def test_reader_rejects_other_captures(tmp_path):
    bad = tmp_path / "x.pcap"
    with open(bad, "wb") as fh:
        PcapWriter(fh).close()
    raw = bytearray(bad.read_bytes())
    raw[20:24] = (1).to_bytes(4, "little")  # Ethernet
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="256"):
        list(read_pcap(bad))


@pytest.mark.skipif(shutil.which("tshark") is None,
                    reason="tshark not installed (apt-get install tshark)")
def test_tshark_decodes_our_adverts(tmp_path):
    path = tmp_path / "air.pcap"
    _run(path)
    recs = list(read_pcap(path))
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "btle.advertising_header.pdu_type",
         "-e", "btcommon.eir_ad.entry.company_id", "-e", "btcommon.eir_ad.entry.data"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()
    assert len(out) == len(recs)
    with_data = [line.split("\t") for line in out if "0xffff" in line.lower()]
    assert len(with_data) == sum(1 for r in recs if r.aux)
    payloads = {r.adv_data()[4:].hex() for r in recs if r.aux}
    seen = {cols[2].replace(":", "").lower() for cols in with_data}
    assert seen == payloads
    summary = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True,
                             timeout=120, check=True).stdout
    assert "ADV_EXT_IND" in summary and "AUX_ADV_IND" in summary
