"""Pure-Python SHA-256, imported only by `rocknet._compat` on ports without hashlib."""

import struct

_K = (
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
)
_H0 = (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)


class Sha256:
    """Pure-Python SHA-256 (FIPS 180-4) for boards without hashlib (CircuitPython 10.0 and
    older on nRF52840; newer builds have hashlib.new("sha256")); `rocknet._compat` picks it
    only there. Slow: ~30 ms per 250-byte
    tag in the WebAssembly MicroPython, far more on a 64 MHz board. `copy()` lets HMAC cache
    its keyed states."""

    def __init__(self, data=b""):
        self._h = list(_H0)
        self._buf = b""
        self._n = 0
        if data:
            self.update(data)

    def copy(self):
        c = Sha256()
        c._h = list(self._h)
        c._buf = self._buf
        c._n = self._n
        return c

    def update(self, data):
        data = self._buf + bytes(data)
        self._n += len(data) - len(self._buf)
        end = len(data) - len(data) % 64
        for i in range(0, end, 64):
            self._block(data[i:i + 64])
        self._buf = data[end:]

    def digest(self):
        c = self.copy()
        bits = c._n * 8
        pad = b"\x80" + bytes((55 - c._n) % 64) + struct.pack(">II", bits >> 32, bits & 0xFFFFFFFF)
        c.update(pad)
        return struct.pack(">8I", *c._h)

    def _block(self, block):
        w = list(struct.unpack(">16I", block))
        M = 0xFFFFFFFF
        for t in range(16, 64):
            a = w[t - 15]
            b = w[t - 2]
            s0 = ((a >> 7 | a << 25) ^ (a >> 18 | a << 14) ^ (a >> 3)) & M
            s1 = ((b >> 17 | b << 15) ^ (b >> 19 | b << 13) ^ (b >> 10)) & M
            w.append((w[t - 16] + s0 + w[t - 7] + s1) & M)
        a, b, c, d, e, f, g, h = self._h
        for t in range(64):
            s1 = ((e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7)) & M
            ch = (e & f) ^ (~e & g)
            t1 = (h + s1 + ch + _K[t] + w[t]) & M
            s0 = ((a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)) & M
            t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) & M
            h, g, f, e, d, c, b, a = g, f, e, (d + t1) & M, c, b, a, (t1 + t2) & M
        hs = self._h
        for i, v in enumerate((a, b, c, d, e, f, g, h)):
            hs[i] = (hs[i] + v) & M
