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
_H0 = (0x6a09, 0xe667, 0xbb67, 0xae85, 0x3c6e, 0xf372, 0xa54f, 0xf53a,
       0x510e, 0x527f, 0x9b05, 0x688c, 0x1f83, 0xd9ab, 0x5be0, 0xcd19)  # 16-bit halves
_KH = tuple(k >> 16 for k in _K)
_KL = tuple(k & 0xFFFF for k in _K)
del _K


class Sha256:
    """Pure-Python SHA-256 (FIPS 180-4) for boards without hashlib (CircuitPython 10.0 and
    older on nRF52840; newer builds have hashlib.new("sha256")); `rocknet._compat` picks it
    only there. Slow: a 64-byte block is about a thousand small-int operations. `copy()`
    lets HMAC cache its keyed states."""

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
        return struct.pack(">16H", *c._h)

    def _block(self, block):
        # 32-bit words as 16-bit halves (hi, lo): every value stays a small int, so a board
        # (31-bit small ints) allocates no big int per operation.
        v = struct.unpack(">32H", block)
        wh = [v[i] for i in range(0, 32, 2)]
        wl = [v[i] for i in range(1, 32, 2)]
        for t in range(16, 64):
            xh = wh[t - 15]
            xl = wl[t - 15]
            yh = wh[t - 2]
            yl = wl[t - 2]
            # sigma0 = rotr7 ^ rotr18 ^ shr3, sigma1 = rotr17 ^ rotr19 ^ shr10
            s0l = (((xl >> 7) | ((xh & 0x7F) << 9)) ^ ((xh >> 2) | ((xl & 3) << 14))
                   ^ ((xl >> 3) | ((xh & 7) << 13)))
            s0h = (((xh >> 7) | ((xl & 0x7F) << 9)) ^ ((xl >> 2) | ((xh & 3) << 14))
                   ^ (xh >> 3))
            s1l = (((yh >> 1) | ((yl & 1) << 15)) ^ ((yh >> 3) | ((yl & 7) << 13))
                   ^ ((yl >> 10) | ((yh & 0x3FF) << 6)))
            s1h = (((yl >> 1) | ((yh & 1) << 15)) ^ ((yl >> 3) | ((yh & 7) << 13))
                   ^ (yh >> 10))
            lo = wl[t - 16] + wl[t - 7] + s0l + s1l
            wl.append(lo & 0xFFFF)
            wh.append((wh[t - 16] + wh[t - 7] + s0h + s1h + (lo >> 16)) & 0xFFFF)
        H = self._h
        ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl = H
        kh = _KH
        kl = _KL
        for t in range(64):
            # T1 = h + Sigma1(e) + Ch(e, f, g) + K[t] + W[t]; Sigma1 = rotr6 ^ rotr11 ^ rotr25
            lo = (hl + (((el >> 6) | ((eh & 0x3F) << 10)) ^ ((el >> 11) | ((eh & 0x7FF) << 5))
                        ^ ((eh >> 9) | ((el & 0x1FF) << 7)))
                  + ((el & fl) ^ (~el & gl)) + kl[t] + wl[t])
            t1h = (hh + (((eh >> 6) | ((el & 0x3F) << 10)) ^ ((eh >> 11) | ((el & 0x7FF) << 5))
                         ^ ((el >> 9) | ((eh & 0x1FF) << 7)))
                   + ((eh & fh) ^ (~eh & gh)) + kh[t] + wh[t] + (lo >> 16))
            t1l = lo & 0xFFFF
            # T2 = Sigma0(a) + Maj(a, b, c); Sigma0 = rotr2 ^ rotr13 ^ rotr22
            lo = ((((al >> 2) | ((ah & 3) << 14)) ^ ((al >> 13) | ((ah & 0x1FFF) << 3))
                   ^ ((ah >> 6) | ((al & 0x3F) << 10)))
                  + ((al & bl) ^ (al & cl) ^ (bl & cl)))
            t2h = ((((ah >> 2) | ((al & 3) << 14)) ^ ((ah >> 13) | ((al & 0x1FFF) << 3))
                    ^ ((al >> 6) | ((ah & 0x3F) << 10)))
                   + ((ah & bh) ^ (ah & ch) ^ (bh & ch)) + (lo >> 16))
            t2l = lo & 0xFFFF
            hh, hl, gh, gl, fh, fl = gh, gl, fh, fl, eh, el
            lo = dl + t1l
            el = lo & 0xFFFF
            eh = (dh + t1h + (lo >> 16)) & 0xFFFF
            dh, dl, ch, cl, bh, bl = ch, cl, bh, bl, ah, al
            lo = t1l + t2l
            al = lo & 0xFFFF
            ah = (t1h + t2h + (lo >> 16)) & 0xFFFF
        out = (ah, al, bh, bl, ch, cl, dh, dl, eh, el, fh, fl, gh, gl, hh, hl)
        for i in range(0, 16, 2):
            lo = H[i + 1] + out[i + 1]
            H[i + 1] = lo & 0xFFFF
            H[i] = (H[i] + out[i] + (lo >> 16)) & 0xFFFF
