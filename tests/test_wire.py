"""wire: advert layout and sizes, HMAC-SHA256 tags (hashlib and the pure-Python fallback),
round extension, replay window, and cheap rejection of foreign adverts before any crypto."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rocknet_host.runtime import import_device

mixer = import_device("rocknet.mixer")
wire = import_device("rocknet.wire")
compat = import_device("rocknet._compat")
Sha256 = import_device("rocknet.sha256").Sha256

KEY = b"fleet key for tests"


def codec(m=22, row_size=68, profile="extended", **kw):
    return wire.Codec(KEY, m, row_size, profile, **kw)


def packet(c, round_no=7, sender=3, flags=0, cv=1, info=0, seq=0, fill=0xAB):
    return mixer.Packet(round_no, sender, flags, cv, info, bytes([fill]) * c.row_size, seq)


# ----- sizes -----


def test_row_sizes_per_profile():
    for m in range(21, 25):  # the FaceAll geometries: 3 bytes of coding and of info vector
        assert wire.overhead(m) == 20
        assert wire.max_row_size("legacy", m) == 11
        assert wire.max_row_size("extended", m) == 234
    assert wire.max_row_size("legacy", 8) == 15 and wire.max_row_size("legacy", 16) == 13
    for m in range(1, 65):
        for profile, limit in wire.ADV_DATA_MAX.items():
            assert wire.packet_size(m, wire.max_row_size(profile, m)) == limit


def test_row_that_does_not_fit_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="use 1..11 .*extended"):
        codec(m=22, row_size=12, profile="legacy")
    with pytest.raises(ValueError, match="'legacy' or 'extended'"):
        wire.max_row_size("coded", 4)


def test_layout_bytes():
    c = codec(m=22, row_size=68, company_id=0x0822, network_id=0x5A)
    data = c.pack(packet(c, round_no=0x12345, sender=9, flags=mixer.FLAG_FULL_RANK, cv=0x30201,
                         info=0x5, seq=17))
    assert len(data) == 88 and data[0] == 87
    assert data[1:5] == bytes([0xFF, 0x22, 0x08, 0x5A])
    assert data[5:7] == (0x2345).to_bytes(2, "little")  # low 16 bits of the round
    assert data[7:10] == bytes([9, mixer.FLAG_FULL_RANK, 17])
    assert data[10:13] == bytes([1, 2, 3]) and data[13:16] == bytes([5, 0, 0])
    assert data[16:84] == bytes([0xAB]) * 68
    mac = hmac.new(KEY, b"rocknet/mac/v1" + data[1:5], hashlib.sha256).digest()
    expected = hmac.new(mac, (0x12345).to_bytes(4, "little") + data[:84], hashlib.sha256)
    assert data[84:] == expected.digest()[:4]
    assert c.scan_prefix == bytes([4, 0xFF, 0x22, 0x08, 0x5A])


@settings(max_examples=200, deadline=None)
@given(
    m=st.integers(1, 64), profile=st.sampled_from(["legacy", "extended"]), data=st.data(),
)
def test_pack_unpack_round_trip(m, profile, data):
    row_size = data.draw(st.integers(1, wire.max_row_size(profile, m)))
    c = wire.Codec(KEY, m, row_size, profile)
    full = data.draw(st.booleans())
    kind = data.draw(st.sampled_from([mixer.INFO_NONE, mixer.INFO_FULL_MAP]
                                     + ([] if full else [mixer.INFO_REQUEST])))
    p = mixer.Packet(
        data.draw(st.integers(0, 2**20)), data.draw(st.integers(0, 255)),
        kind | (mixer.FLAG_FULL_RANK if full else 0), data.draw(st.integers(0, 2**m - 1)),
        data.draw(st.integers(0, 2**m - 1)), data.draw(st.binary(min_size=row_size,
                                                                 max_size=row_size)),
        data.draw(st.integers(0, 255)),
    )
    adv = c.pack(p)
    assert len(adv) == c.size <= wire.ADV_DATA_MAX[profile]
    back = c.unpack(adv, p.round_no + data.draw(st.integers(-30000, 30000)))
    assert back is not None, c.rejected
    assert (back.round_no, back.sender, back.flags, back.cv, back.info, back.payload, back.seq) \
        == (p.round_no, p.sender, p.flags, p.cv, p.info, p.payload, p.seq)
    assert c.unpack(adv, p.round_no) is None and c.rejected == {"replay": 1}


# ----- hashing -----


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 70))
def test_pure_python_sha256_matches_hashlib(data, split):
    h = Sha256(data[:split])
    h.update(data[split:])
    assert h.digest() == hashlib.sha256(data).digest()
    assert h.copy().digest() == h.digest()


class NoCopySha:
    """MicroPython's hashlib.sha256: no copy()."""

    def __init__(self, data=b""):
        self._h = hashlib.sha256(data)

    def update(self, data):
        self._h.update(data)

    def digest(self):
        return self._h.digest()


@settings(max_examples=100, deadline=None)
@given(key=st.binary(min_size=1, max_size=100), msg=st.binary(max_size=300))
def test_mac_is_rfc2104_hmac_with_any_sha256(key, msg):
    expected = hmac.new(key, msg, hashlib.sha256).digest()
    for sha in (None, Sha256, NoCopySha):
        mac = wire.Mac(key, sha256=sha)
        assert mac.digest(msg[:5], msg[5:]) == expected
        assert mac.tag(msg) == expected[:4]


MAC_ON_DEVICE = """
from rocknet import wire
from rocknet.sha256 import Sha256
_mac = wire.Mac(key, context=b"ctx")
_pure = wire.Mac(key, context=b"ctx", sha256=Sha256)
result = [_mac.digest(msg), _pure.digest(msg), Sha256(msg).digest()]
"""


def test_tags_agree_on_micropython(device):
    key, msg = b"k" * 70, bytes(range(256)) * 2
    got = device.call(MAC_ON_DEVICE, key=key, msg=msg)
    want = wire.Mac(key, context=b"ctx").digest(msg)
    assert got == [want, want, hashlib.sha256(msg).digest()]


def test_empty_key_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        wire.Mac(b"")


# ----- rounds and replay -----


def test_extend_round_picks_the_nearest_32_bit_round():
    assert wire.extend_round(5, 3) == 5
    assert wire.extend_round(0xFFFF, 0x10002) == 0xFFFF  # just before a 16-bit wrap
    assert wire.extend_round(0x0001, 0x1FFFE) == 0x20001  # just after one
    assert wire.extend_round(0x9000, 0x10) is None  # would be negative
    assert wire.extend_round(0x8010, 0x10) == 0x8010  # 32768 ahead is still ahead
    assert wire.extend_round(0xFFFB, 0, forward=True) == 0xFFFB  # no round yet: look ahead
    assert wire.extend_round(0x0003, 0x1FFFE, forward=True) == 0x20003
    assert wire.extend_round(0x0003, 0x10003, forward=True) == 0x10003


def test_tag_binds_the_full_round():
    c = codec()
    adv = c.pack(packet(c, round_no=0x20005))
    assert c.unpack(adv, 0x10005) is None and c.rejected == {"auth": 1}  # same low 16 bits
    relabelled = bytearray(adv)
    relabelled[5] ^= 1  # round 0x20004 on the air, tag for 0x20005
    assert c.unpack(bytes(relabelled), 0x20005) is None and c.rejected["auth"] == 2
    assert c.unpack(adv, 0x20005) is not None


def test_replay_window_per_sender_and_round():
    w = wire.ReplayWindow()
    assert w.fresh(1, 2, 0)
    w.mark(1, 2, 0)
    assert not w.fresh(1, 2, 0)
    assert w.fresh(1, 3, 0) and w.fresh(2, 2, 0)  # other sender, other round
    w.mark(1, 2, 40)
    assert not w.fresh(1, 2, 8)  # more than the window behind the newest
    assert w.fresh(1, 2, 9) and w.fresh(1, 2, 39)  # out of order inside the window
    w.mark(1, 2, 30)
    assert not w.fresh(1, 2, 30) and not w.fresh(1, 2, 40) and w.fresh(1, 2, 41)
    for r in range(2, 8):
        w.mark(r, 0, 0)
    assert len(w._rounds) == 4 and 1 not in w._rounds  # bounded: oldest rounds evicted
    w.forget_before(6)
    assert sorted(w._rounds) == [6, 7]


class CountingMac:
    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def tag(self, *parts):
        self.calls += 1
        return self.inner.tag(*parts)


def test_foreign_adverts_are_rejected_before_any_crypto():
    c = codec(company_id=0x0822, network_id=3)
    good = c.pack(packet(c))
    c._mac = CountingMac(c._mac)
    other_net = codec(company_id=0x0822, network_id=4).pack(packet(c))
    other_company = codec(company_id=0x0059, network_id=3).pack(packet(c))
    flags_ad = bytes([2, 0x01, 0x06]) + good[:-3]
    cases = {
        "short": [b"", good[:4]],
        "ad_type": [flags_ad, bytes([len(good) - 1, 0x09]) + good[2:]],
        "company": [other_company],
        "network": [other_net],
        "length": [good[:-1], good + b"\0", bytes([0]) + good[1:]],
        "round": [],
    }
    for reason, advs in cases.items():
        for adv in advs:
            assert c.unpack(adv, 7) is None
        assert c.rejected.get(reason, 0) == len(advs), reason
    assert c._mac.calls == 0
    assert c.unpack(good, 7) is not None and c._mac.calls == 1
    assert c.unpack(good, 7) is None and c.rejected["replay"] == 1 and c._mac.calls == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=260), st.integers(0, 2**32 - 1))
def test_unpack_never_raises(data, ref):
    c = codec(m=5, row_size=8)
    assert c.unpack(data, ref) is None
    assert sum(c.rejected.values()) == 1


def test_malformed_fields_are_rejected_before_the_tag():
    c = codec(m=10, row_size=4)
    bad = []
    for offset, value in ((8, 0x08), (8, 0x06), (8, mixer.FLAG_FULL_RANK | mixer.INFO_REQUEST),
                          (11, 0x04), (13, 0x80)):  # flags; cv bit 10 and info bit 15 of M=10
        adv = bytearray(c.pack(packet(c, cv=1)))
        adv[offset] = value
        bad.append(bytes(adv))
    c._mac = CountingMac(c._mac)
    for adv in bad:
        assert c.unpack(adv, 7) is None
    assert c.rejected == {"malformed": 5} and c._mac.calls == 0


def test_circuitpython_style_hashlib_is_used(monkeypatch):
    """CircuitPython's hashlib has only new("sha256"); the tags must not change."""

    class CircuitPythonHashlib:
        @staticmethod
        def new(name, data=b""):
            assert name == "sha256"
            return NoCopySha(data)

    monkeypatch.setitem(__import__("sys").modules, "hashlib", CircuitPythonHashlib)
    sha = compat.pick_sha256()
    assert sha is not Sha256 and sha(b"abc").digest() == hashlib.sha256(b"abc").digest()
    assert wire.Mac(KEY, sha256=sha).digest(b"m") == hmac.new(KEY, b"m", hashlib.sha256).digest()
