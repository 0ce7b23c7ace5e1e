"""AES-CCM (RFC 3610, NIST SP 800-38C) and AES-CMAC (RFC 4493), as Bluetooth Mesh uses them.

    c = Ccm(key16, mic=4)                     # 13-byte nonces (L = 2), MIC of 4..16 bytes
    sealed = c.seal(nonce, aad, data)         # ciphertext + MIC
    data = c.open(nonce, aad, sealed)         # None if the MIC does not match
    key = derive(fleet_key, b"context")       # a 16-byte AES key from any secret (CMAC)

The block cipher is the board's (`_compat.aes`): `aesio` on CircuitPython, `cryptolib` on
MicroPython, `cryptography` on CPython. CCM is two bulk passes, a CBC-MAC (one CBC call over
the formatted blocks) and a CTR pass that encrypts the MIC and the data together (one CTR
call), so a 254-byte advert costs a few calls into C, not a Python loop over blocks; a port
without those modes gets them from its ECB (`Aes`). Buffers are kept per message size, so a
codec of fixed geometry allocates them once.
"""

from ._compat import CBC, CTR, ECB, const
from ._compat import aes as _port_aes

NONCE_SIZE = const(13)
_L = const(2)  # bytes of the message length: 13-byte nonces, messages up to 65535 bytes
_ZERO = bytes(16)


class Aes:
    """The two bulk operations CCM and CMAC need, on the port's AES (`_compat.aes`):
    ``mac(src, dst)``, the CBC-MAC of a buffer of whole blocks (zero IV, the CBC output
    written to the bytearray ``dst``, which may be ``src``; returns the last block), and
    ``ctr(a0, src, dst)``, ``src`` XOR the keystream from counter block ``a0`` into ``dst``.
    Each is one call into C where the port has CBC and CTR modes (aesio, cryptolib's CBC,
    cryptography); a port without them (cryptolib builds without CTR) gets them from its
    ECB."""

    def __init__(self, key):
        new = self._new = _port_aes(key)
        self._cbc = _has(new, CBC)
        self._ctr = _has(new, CTR)
        self._ks = None

    def mac(self, src, dst):
        if self._cbc:
            self._new(CBC, _ZERO)(src, dst)
            return dst[-16:]
        ecb = self._new(ECB)
        x = bytearray(16)
        for o in range(0, len(src), 16):
            v = int.from_bytes(x, "big") ^ int.from_bytes(src[o:o + 16], "big")
            x[:] = v.to_bytes(16, "big")
            ecb(x, x)
        return x

    def ctr(self, a0, src, dst):
        if self._ctr:
            self._new(CTR, a0)(src, dst)
            return
        n = len(src)
        nb = (n + 15) // 16
        ks = self._ks
        if ks is None or len(ks) != 16 * nb:
            ks = self._ks = bytearray(16 * nb)
        i0 = a0[14] << 8 | a0[15]
        for b in range(nb):
            o = 16 * b
            ks[o:o + 14] = a0[:14]
            ks[o + 14] = (i0 + b) >> 8 & 255
            ks[o + 15] = (i0 + b) & 255
        self._new(ECB)(ks, ks)
        x = int.from_bytes(src, "big") ^ (int.from_bytes(ks, "big") >> 8 * (16 * nb - n))
        dst[:] = x.to_bytes(n, "big")


def _has(new, mode):
    try:
        new(mode, _ZERO)
        return True
    except (ValueError, NotImplementedError):
        return False


def cmac(aes_, msg):
    """AES-CMAC (RFC 4493) of ``msg`` under the key of ``aes_`` (an `Aes`)."""
    sub = bytearray(16)
    k1 = _dbl(aes_.mac(sub, sub))
    n = len(msg)
    nb = max(1, (n + 15) // 16)
    buf = bytearray(16 * nb)
    buf[:n] = msg
    if n == 16 * nb:
        last = k1
    else:
        buf[n] = 0x80
        last = _dbl(k1)
    o = 16 * nb - 16
    for i in range(16):
        buf[o + i] ^= last[i]
    return bytes(aes_.mac(buf, buf))


def _dbl(block):
    """Doubling in GF(2^128) (CMAC subkeys)."""
    v = int.from_bytes(bytes(block), "big") << 1
    if v >> 128:
        v ^= 0x100000000000000000000000000000087
    return v.to_bytes(16, "big")


def derive(secret, context):
    """A 16-byte key for ``context`` from a secret of any length, as Mesh's k2 does:
    T = CMAC_salt(secret) with salt = CMAC_0("rocknet"), key = CMAC_T(context | 0x01)."""
    if not secret:
        raise ValueError("the fleet key must be non-empty bytes")
    salt = cmac(Aes(_ZERO), b"rocknet")
    t = cmac(Aes(salt), bytes(secret))
    return cmac(Aes(t), bytes(context) + b"\x01")


class Ccm:
    """AES-CCM under one 16-byte key with 13-byte nonces and ``mic``-byte MICs (4, 6, ...,
    16; Mesh uses 4 for access messages and 8 for control ones). The formatted blocks of the
    last message shape (AAD and data lengths) are kept, so a codec of fixed geometry writes
    only the nonce, AAD and data of each message."""

    def __init__(self, key, mic=4):
        if mic not in (4, 6, 8, 10, 12, 14, 16):
            raise ValueError("MIC of %r bytes: CCM allows 4, 6, 8, 10, 12, 14 or 16" % (mic,))
        if len(key) != 16:
            raise ValueError("AES-CCM here takes a 16-byte key (use ccm.derive)")
        self.mic = mic
        self._aes = Aes(bytes(key))
        self._shape = None  # (AAD length, data length) the buffers are formatted for
        self._a0 = bytearray(16)  # counter block A0: flags, nonce, counter 0
        self._a0[0] = _L - 1

    def _format(self, la, ld):
        if la >= 0xFF00 or ld > 0xFFFF:
            raise ValueError("CCM message too long")
        na = (la + 2 + 15) // 16 if la else 0
        size = 16 * (1 + na + (ld + 15) // 16)
        b = self._mb = bytearray(size)  # B0, the AAD blocks, the data blocks (zero padded)
        self._mo = bytearray(size)  # their CBC output
        b[0] = (64 if la else 0) | (self.mic - 2) // 2 << 3 | (_L - 1)
        b[14] = ld >> 8
        b[15] = ld & 255
        if la:
            b[16] = la >> 8
            b[17] = la & 255
        self._do = 16 * (1 + na)  # where the data starts
        self._cb = bytearray(16 + ld)  # CTR input: the MIC (zero padded), then the data
        self._co = bytearray(16 + ld)  # CTR output
        self._shape = (la, ld)

    def _start(self, nonce, aad, ld):
        """Nonce and AAD into the formatted blocks (formatting them for a new shape)."""
        la = len(aad)
        if self._shape != (la, ld):
            self._format(la, ld)
        if len(nonce) != NONCE_SIZE:
            raise ValueError("CCM nonce of %d bytes, expected 13" % len(nonce))
        b = self._mb
        b[1:14] = nonce
        b[18:18 + la] = aad
        self._a0[1:14] = nonce
        return b

    def seal(self, nonce, aad, data):
        """Ciphertext of ``data`` followed by the MIC over (nonce, aad, data)."""
        ld = len(data)
        b = self._start(nonce, aad, ld)
        o = self._do
        b[o:o + ld] = data
        aes = self._aes
        cb, co = self._cb, self._co
        cb[:16] = aes.mac(b, self._mo)  # T (its first ``mic`` bytes count), then the data
        cb[16:] = data
        aes.ctr(self._a0, cb, co)
        return bytes(co[16:]) + bytes(co[:self.mic])

    def open(self, nonce, aad, sealed):
        """The data of a `seal` output, or None when the MIC does not match (forged, another
        key, nonce or aad)."""
        m = self.mic
        n = len(sealed) - m
        if n < 0:
            return None
        b = self._start(nonce, aad, n)
        aes = self._aes
        cb, co = self._cb, self._co
        cb[:m] = sealed[n:]
        cb[16:] = memoryview(sealed)[:n]
        aes.ctr(self._a0, cb, co)
        data = bytes(co[16:])
        o = self._do
        b[o:o + n] = data
        # a 4..16-byte compare in C: no timing a radio could observe
        if aes.mac(b, self._mo)[:m] != co[:m]:
            return None
        return data
