"""Air traffic as a pcap file with LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR (256), which Wireshark and
tshark decode as BLE advertisements (manufacturer data included). The reader parses what the
writer writes, for round-trip tests and quick inspection without Wireshark.

Record = 10-byte pseudo header (RF channel, signal/noise power, access-address offenses,
reference access address, flags) + access address + PDU + CRC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import phy

LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256
_MAGIC = 0xA1B2C3D4  # microsecond timestamps

# PHDR flags (https://www.tcpdump.org/linktypes/LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR.html)
FLAG_DEWHITENED = 0x0001
FLAG_REF_AA_VALID = 0x0010
FLAG_PDU_AUX = 1 << 7  # PDU type field (bits 7-9) = 1: auxiliary advertising
FLAG_CRC_CHECKED = 0x0400
FLAG_CRC_VALID = 0x0800
FLAG_PHY_2M = 1 << 14


@dataclass(frozen=True)
class PcapRecord:
    t_us: int
    rf_channel: int
    flags: int
    access_address: int
    pdu: bytes
    crc: bytes

    @property
    def crc_ok(self) -> bool:
        return phy.crc24(self.pdu) == self.crc

    @property
    def aux(self) -> bool:
        return (self.flags >> 7) & 0x7 == 1

    @property
    def phy(self) -> int:
        return 2 if self.flags & FLAG_PHY_2M else 1

    @property
    def pdu_type(self) -> int:
        return self.pdu[0] & 0x0F

    def adv_data(self) -> bytes:
        """AdvData of a legacy ADV_NONCONN_IND or of an AUX_ADV_IND/AUX_CHAIN_IND fragment."""
        if self.pdu_type == phy.ADV_NONCONN_IND:
            return self.pdu[2 + 6 : 2 + self.pdu[1]]
        fields = phy.parse_ext_header(self.pdu)
        data = fields["adv_data"]
        assert isinstance(data, bytes)
        return data


class PcapWriter:
    """Streams records to a file; use as a context manager or call close()."""

    def __init__(self, target: str | Path | BinaryIO) -> None:
        if isinstance(target, (str, Path)):
            self._fh: BinaryIO = open(target, "wb")  # noqa: SIM115 (closed in close())
            self._own = True
        else:
            self._fh = target
            self._own = False
        self._fh.write(
            struct.pack("<IHHiIII", _MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR)
        )
        self.count = 0

    def write(self, t_us: int, channel: int, pdu: bytes, *, phy_rate: int = 1, aux: bool = False,
              ) -> None:
        flags = FLAG_DEWHITENED | FLAG_REF_AA_VALID | FLAG_CRC_CHECKED | FLAG_CRC_VALID
        if aux:
            flags |= FLAG_PDU_AUX
        if phy_rate == 2:
            flags |= FLAG_PHY_2M
        # signal/noise power not valid (flags say so), so their bytes are 0
        phdr = struct.pack("<BbbBIH", phy.rf_channel(channel), 0, 0, 0, phy.ADV_ACCESS_ADDRESS,
                           flags)
        body = phdr + struct.pack("<I", phy.ADV_ACCESS_ADDRESS) + pdu + phy.crc24(pdu)
        sec, usec = divmod(t_us, 1_000_000)
        self._fh.write(struct.pack("<IIII", sec, usec, len(body), len(body)) + body)
        self.count += 1

    def close(self) -> None:
        self._fh.flush()
        if self._own:
            self._fh.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TraceSink:
    """A medium's trace that streams to a pcap instead of a list: every PDU goes to the file
    as the medium sends it (a whole run's air traffic without holding it in memory).

        with TraceSink(path) as sink:
            medium.trace = sink      # `Medium` appends a TxRecord per PDU
            ... run ...
    """

    def __init__(self, target: str | Path | BinaryIO) -> None:
        self._w = PcapWriter(target)

    def append(self, rec: Any) -> None:
        """One `medium.TxRecord`."""
        self._w.write(rec.t_us, rec.channel, rec.pdu(),
                      phy_rate=rec.phy_rate if rec.kind == "aux" else 1, aux=rec.kind == "aux")

    def __len__(self) -> int:
        return self._w.count

    def close(self) -> None:
        self._w.close()

    def __enter__(self) -> TraceSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def capture(medium: Any, path: str | Path | None) -> Iterator[TraceSink | None]:
    """The medium's air traffic into the pcap at ``path`` while the block runs (nothing
    when ``path`` is None): `rocknet simulate --pcap`, `bench protocol --pcap`."""
    if path is None:
        yield None
        return
    with TraceSink(path) as sink:
        medium.trace = sink
        try:
            yield sink
        finally:
            medium.trace = None


def read_pcap(path: str | Path) -> Iterator[PcapRecord]:
    """Records of a pcap written by PcapWriter (or any LINKTYPE 256 capture)."""
    data = Path(path).read_bytes()
    magic, _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack_from("<IHHiIII", data, 0)
    if magic != _MAGIC:
        raise ValueError(f"{path}: not a little-endian microsecond pcap (magic {magic:#x})")
    if linktype != LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR:
        raise ValueError(f"{path}: link type {linktype}, expected 256 (BLE LL with PHDR)")
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        rf, _sig, _noise, _off, _ref, flags = struct.unpack_from("<BbbBIH", body, 0)
        (aa,) = struct.unpack_from("<I", body, 10)
        pdu_len = 2 + body[15]
        pdu = bytes(body[14 : 14 + pdu_len])
        crc = bytes(body[14 + pdu_len : 14 + pdu_len + 3])
        yield PcapRecord(sec * 1_000_000 + usec, rf, flags, aa, pdu, crc)
