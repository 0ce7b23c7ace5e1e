"""wire: advert layout and sizes, AES-CCM sealing (checked against the cryptography package),
encrypted rows, round extension, replay window and reboots, the replay floor, and cheap
rejection of foreign adverts before any AES. (The CCM known answers: test_ccm.py.)"""

from __future__ import annotations

import hashlib
import importlib
import random

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import given, settings
from hypothesis import strategies as st
from rocknet_host.runtimes import import_device

mixer = import_device("rocknet.mixer")
wire = import_device("rocknet.wire")
sizes = import_device("rocknet.wire_init")  # the advert sizes
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
        assert sizes.overhead(m) == 22 and sizes.overhead(m, mic=8) == 26
        assert sizes.max_row_size("legacy", m) == 9
        assert sizes.max_row_size("extended", m) == 232
    assert sizes.max_row_size("legacy", 8) == 13 and sizes.max_row_size("legacy", 16) == 11
    for m in range(1, 65):
        for profile, limit in sizes.ADV_DATA_MAX.items():
            for mic in sizes.MIC_SIZES:
                assert sizes.packet_size(m, sizes.max_row_size(profile, m, mic), mic) == limit


def test_row_that_does_not_fit_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="use 1..9 .*extended"):
        codec(m=22, row_size=12, profile="legacy")
    with pytest.raises(ValueError, match="'legacy' or 'extended'"):
        sizes.max_row_size("coded", 4)


def cmac(key: bytes, msg: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


def test_layout_bytes():
    c = codec(m=22, row_size=68, company_id=0x0822, network_id=0x5A, boot=0xBEEF)
    data = c.pack(packet(c, round_no=0x12345, sender=9, flags=mixer.FLAG_FULL_RANK, cv=0x30201,
                         info=0x5, seq=17))
    assert len(data) == 90 and data[0] == 89
    assert data[1:5] == bytes([0xFF, 0x22, 0x08, 0x5A])
    assert data[5:7] == (0x2345).to_bytes(2, "little")  # low 16 bits of the round
    assert data[7:10] == bytes([9, mixer.FLAG_FULL_RANK, 17])
    assert data[10:12] == (0xBEEF).to_bytes(2, "little")  # the sender's boot salt
    assert data[12:15] == bytes([1, 2, 3]) and data[15:18] == bytes([5, 0, 0])
    # independently: Mesh k2-style key from the fleet key, 13-byte nonce, CCM with 4-byte MIC
    t = cmac(cmac(bytes(16), b"rocknet"), KEY)
    key = cmac(t, b"rocknet/advert/v2" + data[0:5] + b"\x01")
    nonce = bytes([0x5A]) + (0x12345).to_bytes(4, "big") + bytes([9, 17, 0xBE, 0xEF, 0, 0, 0, 0])
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, bytes([0xAB]) * 68, data[8:18])
    assert data[18:] == sealed
    assert bytes([0xAB]) * 4 not in data  # the row is encrypted
    assert c.scan_prefix == bytes([4, 0xFF, 0x22, 0x08, 0x5A])


@settings(max_examples=200, deadline=None)
@given(
    m=st.integers(1, 64), profile=st.sampled_from(["legacy", "extended"]), data=st.data(),
)
def test_pack_unpack_round_trip(m, profile, data):
    if sizes.max_row_size(profile, m) < 1:  # legacy adverts hold at most M = 56 rows
        with pytest.raises(ValueError, match="no room for a row"):
            wire.Codec(KEY, m, 1, profile)
        return
    row_size = data.draw(st.integers(1, sizes.max_row_size(profile, m)))
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
    assert len(adv) == c.size <= sizes.ADV_DATA_MAX[profile]
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


ADVERT_ON_DEVICE = """
from rocknet import mixer, wire
from rocknet._compat import sha256
from rocknet.sha256 import Sha256
_c = wire.Codec(key, 22, 68, network_id=3, boot=0x1234)
_adv = _c.pack(mixer.Packet(70000, 4, 1, 0x2F, 0, bytes(range(68)), 9))
_p = _c.unpack(theirs, 70000)
result = [_adv, _p is not None and [_p.round_no, _p.sender, _p.cv, _p.payload, _p.seq],
          sha256(msg).digest(), Sha256(msg).digest()]
"""


def test_adverts_agree_across_runtimes(device):
    c = wire.Codec(KEY, 22, 68, network_id=3, boot=0x1234)
    mine = c.pack(mixer.Packet(70000, 4, 1, 0x2F, 0, bytes(range(68)), 9))
    theirs = wire.Codec(KEY, 22, 68, network_id=3, boot=7).pack(
        mixer.Packet(70000, 5, 0, 0x3, 0, bytes(68), 2))
    msg = bytes(range(256)) * 2
    got = device.call(ADVERT_ON_DEVICE, key=KEY, theirs=theirs, msg=msg)
    assert got[0] == mine
    assert got[1] == [70000, 5, 0x3, bytes(68), 2]
    assert got[2] == got[3] == hashlib.sha256(msg).digest()


def test_empty_key_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        wire.Codec(b"", 4, 8)
    with pytest.raises(ValueError, match="mic must be 4 or 8"):
        codec(mic=6)


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
    assert not w.fresh(1, 2, 18)  # more than the window (22) behind the newest
    assert w.fresh(1, 2, 19) and w.fresh(1, 2, 39)  # out of order inside the window
    w.mark(1, 2, 30)
    assert not w.fresh(1, 2, 30) and not w.fresh(1, 2, 40) and w.fresh(1, 2, 41)
    for r in range(2, 8):
        w.mark(r, 0, 0)
    assert len(w._rounds) == 4 and 1 not in w._rounds  # bounded: oldest rounds evicted
    w.forget_before(6)
    assert sorted(w._rounds) == [6, 7]


def test_replay_window_reuses_its_round_dicts_emptied():
    """A round's windows go into one of the dicts made with the window, emptied when its round
    is forgotten: a sender's seqs of an old round are not replays in a new one."""
    w = wire.ReplayWindow()
    made = {id(d) for d in w._spare}
    for r in range(40):
        for s in range(5):
            assert w.fresh(r, s, 3)
            w.mark(r, s, 3)
            assert not w.fresh(r, s, 3)
        if r % 3 == 0:
            w.forget_before(r)
        assert {id(d) for d in [*w._rounds.values(), *w._spare]} == made


REPLAY_ON_DEVICE = """
from rocknet import wire
_w = wire.ReplayWindow()
result = []
for _r, _s, _q in ops:
    result.append(_w.fresh(_r, _s, _q))
    _w.mark(_r, _s, _q)
"""


def test_replay_window_runs_alike_on_the_device(device):
    """The same marks and checks give the same answers in every runtime (the window is one
    small int there: newest seq and bitmap packed together)."""
    rng = random.Random(5)
    ops = [(rng.randrange(3), rng.randrange(3), rng.randrange(256)) for _ in range(300)]
    ops += [(9, 0, q) for q in (0, 21, 22, 255, 233, 234, 255)]
    w = wire.ReplayWindow()
    want = []
    for r, s, q in ops:
        want.append(w.fresh(r, s, q))
        w.mark(r, s, q)
    assert device.call(REPLAY_ON_DEVICE, ops=ops) == want


class CountingCcm:
    """Counts the AES-CCM operations of a codec."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def seal(self, *args):
        self.calls += 1
        return self.inner.seal(*args)

    def open(self, *args):
        self.calls += 1
        return self.inner.open(*args)


def test_foreign_adverts_are_rejected_before_any_crypto():
    c = codec(company_id=0x0822, network_id=3)
    good = c.pack(packet(c))
    c._ccm = CountingCcm(c._ccm)
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
    assert c._ccm.calls == 0
    assert c.unpack(good, 7) is not None and c._ccm.calls == 1
    assert c.unpack(good, 7) is None and c.rejected["replay"] == 1 and c._ccm.calls == 1


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
                          (13, 0x04), (15, 0x80)):  # flags; cv bit 10 and info bit 15 of M=10
        adv = bytearray(c.pack(packet(c, cv=1)))
        adv[offset] = value
        bad.append(bytes(adv))
    c._ccm = CountingCcm(c._ccm)
    for adv in bad:
        assert c.unpack(adv, 7) is None
    assert c.rejected == {"malformed": 5} and c._ccm.calls == 0


def test_circuitpython_style_hashlib_is_used(monkeypatch):
    """CircuitPython's hashlib has only new("sha256"); _compat picks it, not the slow one."""

    class CircuitPythonHashlib:
        @staticmethod
        def new(name, data=b""):
            assert name == "sha256"
            return hashlib.sha256(data)

    monkeypatch.setitem(__import__("sys").modules, "hashlib", CircuitPythonHashlib)
    try:  # the choice is made once, when _compat is imported
        sha = importlib.reload(compat).sha256
    finally:
        monkeypatch.undo()
        importlib.reload(compat)
    assert sha is not Sha256 and sha(b"abc").digest() == hashlib.sha256(b"abc").digest()


# ----- encryption, reboots, floor, MIC size -----


def test_rows_cross_the_air_encrypted():
    c = codec(m=4, row_size=100, boot=1)
    row = b"SERIES!!" * 12 + b"abcd"
    adv = c.pack(mixer.Packet(3, 1, 0, 0b0001, 0, row, 0))
    assert b"SERIES" not in adv and row[40:48] not in adv
    assert codec(m=4, row_size=100).unpack(adv, 3).payload == row


def test_a_sender_rebooted_within_a_round_is_not_locked_out():
    rx = codec(boot=1)
    before = codec(boot=0x1111)  # the sender before its reboot ...
    after = codec(boot=0x2222)  # ... and after it: seqs restart at 0 in the same round
    first = [before.pack(packet(before, round_no=50, seq=s, fill=s)) for s in range(40)]
    for adv in first:
        assert rx.unpack(adv, 50) is not None
    again = [after.pack(packet(after, round_no=50, seq=s, fill=s)) for s in range(40)]
    for old, new in zip(first, again, strict=True):  # new nonces: no keystream reused
        assert old[18:-4] != new[18:-4]
    assert all(rx.unpack(adv, 50) is not None for adv in again)
    assert all(rx.unpack(adv, 50) is None for adv in first + again)  # replays, both boots
    assert rx.rejected == {"replay": 80}
    forged = bytearray(again[5])
    forged[10] ^= 1  # another boot claimed for a genuine packet: the MIC covers the salt
    assert rx.unpack(bytes(forged), 50) is None and rx.rejected["auth"] == 1


def test_boot_salts_are_random_by_default():
    salts = {codec().boot for _ in range(8)}
    assert len(salts) > 1 and all(0 <= b <= 0xFFFF for b in salts)


def test_floor_refuses_rounds_before_the_checkpoint_before_any_aes():
    tx = codec(boot=3)
    rx = codec(floor=100)
    rx._ccm = CountingCcm(rx._ccm)
    assert rx.unpack(tx.pack(packet(tx, round_no=99)), 100) is None
    assert rx.rejected == {"round": 1} and rx._ccm.calls == 0
    assert rx.unpack(tx.pack(packet(tx, round_no=100)), 100) is not None


def test_mic_of_8_bytes():
    c8 = codec(row_size=60, mic=8, boot=2)
    adv = c8.pack(packet(c8))
    assert len(adv) == c8.size == sizes.packet_size(22, 60, 8) == len(
        codec(row_size=60).pack(packet(c8))) + 4
    assert codec(row_size=60, mic=8).unpack(adv, 7).payload == bytes([0xAB]) * 60
    assert codec(row_size=64).unpack(adv, 7) is None  # a 4-byte-MIC codec: not its geometry
    bad = bytearray(adv)
    bad[-8] ^= 1
    rx = codec(row_size=60, mic=8)
    assert rx.unpack(bytes(bad), 7) is None and rx.rejected == {"auth": 1}
