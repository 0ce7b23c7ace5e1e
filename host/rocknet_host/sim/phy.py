"""BLE link-layer facts the simulator needs: advertising PDUs as bytes, their airtime, channel
numbering and the CRC. Both the medium (durations) and the pcap writer (bytes) use these, so
what is timed is exactly what is written.

Spec references: Core 5.x Vol 6 Part B §2.1 (packet format), §2.3 (advertising PDUs),
§2.3.4 (common extended advertising payload format), §4.5.3 (AuxPtr).
"""

from __future__ import annotations

PRIMARY_CHANNELS = (37, 38, 39)
ADV_ACCESS_ADDRESS = 0x8E89BED6
ADV_CRC_INIT = 0x555555

# PDU types (header bits 0-3)
ADV_NONCONN_IND = 0x2
ADV_EXT_IND = 0x7  # AUX_ADV_IND and AUX_CHAIN_IND share this type on the secondary channel

LEGACY_ADV_DATA_MAX = 31
PDU_PAYLOAD_MAX = 255  # extended advertising PDU payload (header length byte)
T_MAFS_US = 300  # minimum AUX frame space (spec: 300 us)
AUX_OFFSET_UNIT_US = 30


def rf_channel(channel: int) -> int:
    """BLE channel index (0-39) to RF channel (0-39, 2402 + 2k MHz) as pcap's PHDR wants."""
    if channel == 37:
        return 0
    if channel == 38:
        return 12
    if channel == 39:
        return 39
    if 0 <= channel <= 10:
        return channel + 1
    if 11 <= channel <= 36:
        return channel + 2
    raise ValueError(f"BLE channel index must be 0-39, got {channel}")


def airtime_us(pdu_len: int, phy: int = 1) -> int:
    """On-air time of a packet whose PDU (2-byte header + payload) is pdu_len bytes.
    1M: 1 B preamble + 4 B access address + PDU + 3 B CRC at 8 us/byte; 2M: 2 B preamble at
    4 us/byte."""
    if phy == 1:
        return (1 + 4 + pdu_len + 3) * 8
    if phy == 2:
        return (2 + 4 + pdu_len + 3) * 4
    raise ValueError(f"phy must be 1 (1M) or 2 (2M), got {phy}")


def _header(pdu_type: int, length: int, tx_add: bool = True) -> bytes:
    if not 0 <= length <= PDU_PAYLOAD_MAX:
        raise ValueError(f"PDU payload of {length} bytes does not fit (max {PDU_PAYLOAD_MAX})")
    return bytes(((pdu_type & 0x0F) | (0x40 if tx_add else 0), length))


def node_address(node_id: int) -> bytes:
    """A static random device address (two top bits set) derived from the node id, in air order
    (little-endian)."""
    return (0xC0_00_52_4B_00_00 | (node_id & 0xFFFF)).to_bytes(6, "little")


def legacy_pdu(adv_addr: bytes, adv_data: bytes) -> bytes:
    """ADV_NONCONN_IND: AdvA + AdvData (<= 31 bytes)."""
    if len(adv_data) > LEGACY_ADV_DATA_MAX:
        raise ValueError(
            f"legacy advertising data is at most {LEGACY_ADV_DATA_MAX} bytes, got "
            f"{len(adv_data)}: use the extended profile"
        )
    return _header(ADV_NONCONN_IND, 6 + len(adv_data)) + adv_addr + adv_data


def _adi(did: int, sid: int = 0) -> bytes:
    return ((did & 0x0FFF) | ((sid & 0x0F) << 12)).to_bytes(2, "little")


def _aux_ptr(channel: int, offset_us: int, phy: int) -> bytes:
    units = 0 if offset_us < (1 << 13) * AUX_OFFSET_UNIT_US else 1
    step = AUX_OFFSET_UNIT_US if units == 0 else 300
    offset = offset_us // step
    if offset >= 1 << 13:
        raise ValueError(f"AUX offset {offset_us} us is too large")
    phy_code = {1: 0, 2: 1}[phy]
    # channel(6) | CA(1)=1 (0-50 ppm) | offset units(1) | offset(13) | phy(3)
    value = (channel & 0x3F) | (1 << 6) | (units << 7) | (offset << 8) | (phy_code << 21)
    return value.to_bytes(3, "little")


def _ext_pdu(fields: int, body: bytes, adv_data: bytes = b"") -> bytes:
    # extended header: length(6) | AdvMode(2)=0 (non-connectable, non-scannable), flags, fields
    ext_len = 1 + len(body)
    payload = bytes((ext_len & 0x3F, fields)) + body + adv_data
    return _header(ADV_EXT_IND, len(payload)) + payload


_F_ADVA, _F_ADI, _F_AUXPTR = 0x01, 0x08, 0x10


def ext_ind_pdu(did: int, aux_channel: int, aux_offset_us: int, aux_phy: int) -> bytes:
    """ADV_EXT_IND on a primary channel: ADI + AuxPtr, no data."""
    return _ext_pdu(_F_ADI | _F_AUXPTR, _adi(did) + _aux_ptr(aux_channel, aux_offset_us, aux_phy))


def aux_pdu(
    adv_addr: bytes | None,
    did: int,
    fragment: bytes,
    next_ptr: tuple[int, int, int] | None = None,
) -> bytes:
    """AUX_ADV_IND (with AdvA) or AUX_CHAIN_IND (adv_addr None), optionally pointing at the next
    fragment with next_ptr = (channel, offset_us, phy)."""
    fields = _F_ADI
    body = b""
    if adv_addr is not None:
        fields |= _F_ADVA
        body += adv_addr
    body += _adi(did)
    if next_ptr is not None:
        fields |= _F_AUXPTR
        body += _aux_ptr(*next_ptr)
    return _ext_pdu(fields, body, fragment)


def aux_overhead(first: bool, more: bool) -> int:
    """Payload bytes of an AUX PDU that are not AdvData (length/mode, flags, AdvA, ADI, AuxPtr)."""
    return 2 + (6 if first else 0) + 2 + (3 if more else 0)


def split_adv_data(adv_data: bytes) -> list[bytes]:
    """Fragments of extended AdvData: AUX_ADV_IND first, AUX_CHAIN_IND for what does not fit."""
    frags: list[bytes] = []
    rest = adv_data
    first = True
    while True:
        room = PDU_PAYLOAD_MAX - aux_overhead(first, more=False)
        if len(rest) <= room:
            frags.append(rest)
            return frags
        room = PDU_PAYLOAD_MAX - aux_overhead(first, more=True)
        frags.append(rest[:room])
        rest = rest[room:]
        first = False


def crc24(pdu: bytes, init: int = ADV_CRC_INIT) -> bytes:
    """BLE CRC over the PDU, as the three bytes that follow it on air (capture order).
    Computed in the bit-reflected form (LSB-first bits, reflected polynomial and preset), which
    makes the output simply little-endian."""
    state = int(f"{init:024b}"[::-1], 2)
    for byte in pdu:
        for _ in range(8):
            feedback = (state ^ byte) & 1
            byte >>= 1
            state >>= 1
            if feedback:
                state ^= 0xDA6000  # x^24 + x^10 + x^9 + x^6 + x^4 + x^3 + x + 1, reflected
    return state.to_bytes(3, "little")


def parse_ext_header(pdu: bytes) -> dict[str, object]:
    """The fields of an extended advertising PDU (for tests and the pcap reader)."""
    payload = pdu[2 : 2 + pdu[1]]
    ext_len = payload[0] & 0x3F
    out: dict[str, object] = {"adv_mode": payload[0] >> 6}
    if ext_len == 0:
        out["adv_data"] = payload[1:]
        return out
    flags = payload[1]
    pos = 2
    if flags & _F_ADVA:
        out["adv_addr"] = payload[pos : pos + 6]
        pos += 6
    if flags & 0x02:
        pos += 6
    if flags & 0x04:
        pos += 1
    if flags & _F_ADI:
        adi = int.from_bytes(payload[pos : pos + 2], "little")
        out["did"], out["sid"] = adi & 0x0FFF, adi >> 12
        pos += 2
    if flags & _F_AUXPTR:
        v = int.from_bytes(payload[pos : pos + 3], "little")
        unit = 300 if (v >> 7) & 1 else AUX_OFFSET_UNIT_US
        out["aux_channel"] = v & 0x3F
        out["aux_offset_us"] = ((v >> 8) & 0x1FFF) * unit
        out["aux_phy"] = {0: 1, 1: 2, 2: 3}.get(v >> 21, 0)
        pos += 3
    out["adv_data"] = payload[1 + ext_len :]
    return out
