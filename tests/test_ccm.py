"""ccm and keys: AES-CCM known answers (RFC 3610 packet vectors), AES-CMAC (RFC 4493,
Mesh's s1), the key derivation, the consistency digest's chain (`ccm.Chain`), and the same
results whichever AES modes the port has. Known answers are checked in every runtime (the
board's AES: aesio, cryptolib, cryptography)."""

from __future__ import annotations

import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st
from node_net import chain_reference
from rocknet_host.runtimes import import_device
from rocknet_host.runtimes.profiles import host_aes_module

ccm = import_device("rocknet.ccm")
keys = import_device("rocknet.keys")
compat = import_device("rocknet._compat")

KEY = bytes(range(0xC0, 0xD0))
AAD = bytes(range(8))
# RFC 3610 section 8, packet vectors #1-#3 (M = 8, L = 2): nonce, last payload byte, output
RFC3610 = [
    ("00000003020100a0a1a2a3a4a5", 0x1E,
     "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"),
    ("00000004030201a0a1a2a3a4a5", 0x1F,
     "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916"),
    ("00000005040302a0a1a2a3a4a5", 0x20,
     "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5"),
]
# RFC 4493 section 4 (key 2b7e...): empty, 16 and 40 bytes of the example message
CMAC_KEY = "2b7e151628aed2a6abf7158809cf4f3c"
CMAC_MSG = ("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
RFC4493 = [(0, "bb1d6929e95937287fa37d129b756746"), (16, "070a16b46b4d4144f79bdd9dd04a287c"),
           (40, "dfa66747de9ae63030ca32611497c827"), (64, "51f0bebf7e3b9d92fc49741779363cfe")]

# the digest chain from 16 zero bytes over entries of these lengths (empty, an S entry, whole
# blocks with the length, a 600-byte A entry over ten CBC calls, then shorter ones): digests
CHAIN_ENTRIES = [b"", b"S" + bytes(4), bytes(range(12)), bytes(range(256)) * 2 + bytes(88),
                 b"A\x07\x00\x00\x00" + bytes(range(27)), bytes(range(28))]
CHAIN_KAT = ["8ef6e011aa926a16f1ba7494a2f06e1a", "6a731cebc0e8d8c2912b735dc928d424",
             "3866de6d16cca74b14dcda3e14da0be7", "4e250730e5116ea4ef9419453f957619",
             "8891257cae14b2c12d9cd761956e1e3d", "9b58610e39b1097550ba39b9a6b28731"]


CHAIN_ON_DEVICE = """
from rocknet import _compat, ccm
_c = ccm.Chain(_compat.aes(ccm.DIGEST_KEY))
_d = bytes(16)
result = []
for _e in entries:
    _d = _c(_d, _e)
    result.append(_d.hex())
"""

KAT_ON_DEVICE = """
from rocknet import ccm, keys
_c = ccm.Ccm(key, mic=8)
_out = []
for _n, _end in vectors:
    _n = bytes.fromhex(_n)
    _data = bytes(range(8, _end + 1))
    _s = _c.seal(_n, aad, _data)
    _bad = bytearray(_s)
    _bad[3] ^= 1
    _out.append([_s.hex(), _c.open(_n, aad, _s) == _data, _c.open(_n, aad, bytes(_bad))])
_k16 = bytes.fromhex(cmac_key)
_msg = bytes.fromhex(cmac_msg)
result = [_out, [keys.cmac(_k16, _msg[:_k]).hex() for _k in cmac_lengths],
          keys.cmac(bytes(16), b"test").hex(), keys.derive(b"fleet", b"ctx").hex(),
          _c._native_ctr]
"""


def test_known_answers_in_every_runtime(device):
    got = device.call(KAT_ON_DEVICE, key=KEY, aad=AAD,
                      vectors=[[n, end] for n, end, _ in RFC3610], cmac_key=CMAC_KEY,
                      cmac_msg=CMAC_MSG, cmac_lengths=[k for k, _ in RFC4493])
    packets, cmacs, s1, derived, native_ctr = got
    for (_, _, want), (sealed, opened, forged) in zip(RFC3610, packets, strict=True):
        assert sealed == want and opened is True and forged is None
    assert cmacs == [want for _, want in RFC4493]
    assert s1 == "b73cefbd641ef2ea598c2b6efb62f79c"  # Mesh Profile 8.1.1: s1("test")
    assert derived == keys.derive(b"fleet", b"ctx").hex()
    # aesio and cryptography have CTR; the esp32 profile's cryptolib (stock build) has not, so
    # its known answers went through the ECB keystream
    profile = getattr(getattr(device, "profile", None), "name", "cpython")
    assert native_ctr is (profile != "micropython-esp32")


def test_digest_chain_known_answers_in_every_runtime(device):
    """The consistency digest is the same bytes on every port (a mixed fleet of ESP32 and
    Feather boards compares it): aesio, cryptolib and cryptography give the known answers."""
    d = bytes(16)
    for e, want in zip(CHAIN_ENTRIES, CHAIN_KAT, strict=True):
        d = chain_reference(d, e)
        assert d.hex() == want
    assert device.call(CHAIN_ON_DEVICE, entries=CHAIN_ENTRIES) == CHAIN_KAT


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.binary(max_size=200), min_size=1, max_size=6))
def test_digest_chain_matches_its_definition(entries):
    """Entry by entry, `chain_reference`; over the whole log, the CBC-MAC (zero IV) of the
    entries encoded one after the other (length, entry, zero padding)."""
    chain, d, r = ccm.Chain(compat.aes(ccm.DIGEST_KEY)), bytes(16), bytes(16)
    for e in entries:
        d, r = chain(d, e), chain_reference(r, e)
        assert d == r
    log = b"".join(len(e).to_bytes(4, "little") + e + bytes(-(4 + len(e)) % 16)
                   for e in entries)
    enc = Cipher(algorithms.AES(ccm.DIGEST_KEY), modes.CBC(bytes(16))).encryptor()
    assert d == (enc.update(log) + enc.finalize())[-16:]


def test_digest_chain_refuses_a_digest_of_another_size():
    chain = ccm.Chain(compat.aes(ccm.DIGEST_KEY))
    with pytest.raises(ValueError):  # the port's AES refuses the 32-byte IV
        chain(bytes(32), b"S\x00\x00\x00\x00")


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), nonce=st.binary(min_size=13, max_size=13),
       aad=st.binary(max_size=40), data=st.binary(max_size=300), mic=st.sampled_from([4, 8]))
def test_matches_the_cryptography_package(key, nonce, aad, data, mic):
    sealed = ccm.Ccm(key, mic).seal(nonce, aad, data)
    assert sealed == AESCCM(key, tag_length=mic).encrypt(nonce, data, aad or None)
    assert ccm.Ccm(key, mic).open(nonce, aad, sealed) == data


@pytest.mark.parametrize(("module", "modes"), [("aesio", ()), ("cryptolib", (1, 2)),
                                               ("cryptolib", (1, 2, 6))])
def test_board_aes_modules_give_the_same_bytes(monkeypatch, module, modes):
    """The board APIs as the profiles emulate them (aesio re-keyed objects; cryptolib without
    CTR: the keystream from one ECB call), on messages of several shapes in a row."""
    monkeypatch.setitem(sys.modules, module, host_aes_module(module, modes))
    c = ccm.Ccm(KEY, mic=8)
    assert c._native_ctr is (module == "aesio" or 6 in modes)
    for nonce, end, want in RFC3610 * 2:
        data = bytes(range(8, end + 1))
        assert c.seal(bytes.fromhex(nonce), AAD, data).hex() == want
        assert c.open(bytes.fromhex(nonce), AAD, bytes.fromhex(want)) == data
    for k, want in RFC4493:
        assert keys.cmac(bytes.fromhex(CMAC_KEY), bytes.fromhex(CMAC_MSG)[:k]).hex() == want
    chain = ccm.Chain(compat.aes(ccm.DIGEST_KEY))
    for _ in range(2):  # the same Chain twice: aesio's CBC chain restarts for every entry
        d, got = bytes(16), []
        for e in CHAIN_ENTRIES:
            d = chain(d, e)
            got.append(d.hex())
        assert got == CHAIN_KAT


def test_reused_buffers_do_not_leak_between_messages():
    c = ccm.Ccm(KEY, mic=4)
    nonce = bytes(13)
    long = c.seal(nonce, b"x" * 20, b"\xff" * 50)
    short = c.seal(nonce, b"y", b"\x01" * 3)  # smaller padding after a larger message
    assert short == AESCCM(KEY, tag_length=4).encrypt(nonce, b"\x01" * 3, b"y")
    assert c.open(nonce, b"x" * 20, long) == b"\xff" * 50


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="4, 6, 8"):
        ccm.Ccm(KEY, mic=5)
    with pytest.raises(ValueError, match="16-byte key"):
        ccm.Ccm(b"short")
    with pytest.raises(ValueError, match="13"):
        ccm.Ccm(KEY).seal(bytes(12), b"", b"x")
    with pytest.raises(ValueError, match="non-empty"):
        keys.derive(b"", b"ctx")
    assert ccm.Ccm(KEY).open(bytes(13), b"", b"abc") is None  # shorter than a MIC


def test_a_port_without_aes_is_told_the_fix(monkeypatch):
    """micropython-nrf (and the plain WebAssembly build) have no cryptolib: building a codec
    names what to flash or install instead of failing deep inside."""
    compat = import_device("rocknet._compat")
    for name in ("aesio", "cryptolib", "cryptography.hazmat.primitives.ciphers"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="MICROPY_PY_CRYPTOLIB"):
        compat.aes(KEY)
