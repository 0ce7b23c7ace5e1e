"""AES-CCM (RFC 3610, NIST SP 800-38C), as Bluetooth Mesh uses it.

    c = Ccm(key16, mic=4)                     # 13-byte nonces (L = 2), MIC of 4..16 bytes
    sealed = c.seal(nonce, aad, data)         # ciphertext + MIC
    data = c.open(nonce, aad, sealed)         # None if the MIC does not match

Its keys come from `rocknet.keys.derive` (AES-CMAC, set-up code); its construction is set-up
code too (`ccm_init`).

`Chain` is the node's consistency digest, a CBC-MAC hash chain over the same AES (one CBC call
per 64 bytes of entry):

    chain = Chain(_compat.aes(DIGEST_KEY))    # the port's AES under the public DIGEST_KEY
    digest = chain(digest, entry)             # 16 bytes after 16 bytes and one entry

The block cipher is the board's (`_compat.aes`): `aesio` on CircuitPython, `cryptolib` on
MicroPython, `cryptography` on CPython. CCM is two bulk passes, a CBC-MAC (one CBC call over
the formatted blocks) and a CTR pass that encrypts the MIC and the data together (one CTR
call), so a 254-byte advert costs a few calls into C, not a Python loop over blocks. A port
whose AES has no CTR mode (cryptolib without MICROPY_PY_CRYPTOLIB_CTR) gets the keystream
from one ECB call over all the counter blocks, built and XORed as big integers. Buffers are
kept per message shape, so a codec of fixed geometry allocates them once.
"""

from ._compat import CBC, CTR, ECB, const

NONCE_SIZE = const(13)
_L = const(2)  # bytes of the message length: 13-byte nonces, messages up to 65535 bytes
_ZERO = bytes(16)
_CHAIN_BUF = const(64)  # the digest chain's buffer: 4 blocks a CBC call
DIGEST_KEY = b"rocknet-digest-1"  # public: the chain detects divergence, it guards nothing


class Ccm:
    """AES-CCM under one 16-byte key with 13-byte nonces and ``mic``-byte MICs (4, 6, ...,
    16; Mesh uses 4 for access messages and 8 for control ones). The formatted blocks of the
    last message shape (AAD and data lengths) are kept, so a codec of fixed geometry writes
    only the nonce, AAD and data of each message and allocates only the data it returns."""

    def __init__(self, key, mic=4):
        from .ccm_init import init  # set-up code: dropped once the runner is built

        init(self, key, mic)
        self._a0[0] = _L - 1  # counter block A0: flags, nonce, counter 0

    def _format(self, la, ld):
        if la >= 0xFF00 or ld > 0xFFFF:
            raise ValueError("CCM message too long")
        na = (la + 2 + 15) // 16 if la else 0
        size = 16 * (1 + na + (ld + 15) // 16)
        b = self._mb = bytearray(size)  # B0, the AAD blocks, the data blocks (zero padded)
        mo = bytearray(size)  # their CBC output
        self._t = memoryview(mo)[size - 16:size - 16 + self.mic]  # the MIC's bytes of T
        b[0] = (64 if la else 0) | (self.mic - 2) // 2 << 3 | (_L - 1)
        b[14] = ld >> 8
        b[15] = ld & 255
        if la:
            b[16] = la >> 8
            b[17] = la & 255
        self._mo = mo
        self._do = 16 * (1 + na)  # where the data starts
        cb = self._cb = bytearray(16 + ld)  # CTR input: the MIC (zero padded), then the data
        co = self._co = bytearray(16 + ld)  # CTR output
        self._cbd = memoryview(cb)[16:]
        self._cod = memoryview(co)[16:]
        if not self._native_ctr:  # the counter blocks A0..A(nb-1) as one integer: A0 x rep + inc
            nb = (ld + 31) // 16
            rep = inc = 0
            for i in range(nb):
                rep = rep << 128 | 1
                inc = inc << 128 | i
            self._rep, self._inc, self._ks = rep, inc, bytearray(16 * nb)
        self._la, self._ld = la, ld

    def _ctr(self):
        """The CTR pass: self._cb XOR the keystream from A0 into self._co."""
        if self._native_ctr:
            self._new(CTR, self._a0)(self._cb, self._co)
            return
        ks, src = self._ks, self._cb
        ks[:] = (int.from_bytes(self._a0, "big") * self._rep + self._inc).to_bytes(len(ks), "big")
        self._new(ECB)(ks, ks)
        x = int.from_bytes(src, "big") ^ int.from_bytes(ks, "big") >> 8 * (len(ks) - len(src))
        self._co[:] = x.to_bytes(len(src), "big")

    def _start(self, nonce, aad, ld):
        """Nonce and AAD into the formatted blocks (formatting them for a new shape)."""
        la = len(aad)
        if la != self._la or ld != self._ld:
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
        self._new(CBC, _ZERO)(b, self._mo)
        cb, co = self._cb, self._co
        cb[:16] = memoryview(self._mo)[-16:]  # T (its first ``mic`` bytes count), then the data
        self._cbd[:] = data
        self._ctr()
        return bytes(self._cod) + bytes(co[:self.mic])

    def open(self, nonce, aad, sealed):
        """The data of a `seal` output, or None when the MIC does not match (forged, another
        key, nonce or aad)."""
        m = self.mic
        n = len(sealed) - m
        if n < 0:
            return None
        b = self._start(nonce, aad, n)
        sealed = memoryview(sealed)
        self._cb[:m] = sealed[n:]
        self._cbd[:] = sealed[:n]
        self._ctr()
        o = self._do
        b[o:o + n] = self._cod
        self._new(CBC, _ZERO)(b, self._mo)
        # a 4..16-byte compare in C: no timing a radio could observe
        if bytes(self._t) != bytes(self._co[:m]):
            return None
        return bytes(self._cod)


class Chain:
    """The consistency digest (docs/protocol.md): ``chain(prev, entry)`` is the last block of
    AES-128-CBC under the public `DIGEST_KEY`, IV ``prev`` (the 16-byte digest so far), over
    the entry's length (4 bytes, little-endian) and the entry, zero padded to whole blocks:
    from 16 zero bytes, the CBC-MAC of the whole log so encoded, one CBC call into the port's
    AES per 64 bytes of entry (re-keyed per call, so aesio's CBC chain restarts from the IV
    given: ``prev``, then the last block so far). The same bytes on every port; a check that
    honest nodes applied the same updates, not a security primitive (the key is public:
    anyone can make two logs collide). ``new``: the port's AES under `DIGEST_KEY`
    (``_compat.aes(DIGEST_KEY)``, which `node_init` builds at set-up). One 64-byte buffer,
    encrypted in place, whatever the entry's length."""

    def __init__(self, new):
        self._new = new
        self._b = bytearray(_CHAIN_BUF)
        self._v = memoryview(self._b)

    def __call__(self, prev, entry):
        n = len(entry)
        b, v = self._b, self._v
        b[:4] = n.to_bytes(4, "little")
        entry = memoryview(entry)
        iv, i, o = prev, 0, 4  # the CBC chain so far, entry bytes taken, buffer filled
        while True:
            k = min(_CHAIN_BUF - o, n - i)
            b[o:o + k] = entry[i:i + k]
            o += k
            i += k
            if i == n:
                size = (o + 15) & ~15
                b[o:size] = _ZERO[:size - o]
                w = v[:size]
                self._new(CBC, iv)(w, w)  # the port refuses an IV (digest) other than 16 bytes
                return bytes(w[size - 16:])
            self._new(CBC, iv)(v, v)
            iv = bytes(v[_CHAIN_BUF - 16:])
            o = 0
