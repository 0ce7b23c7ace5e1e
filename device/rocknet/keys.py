"""Key derivation, as Bluetooth Mesh's k2 does it: AES-CMAC (RFC 4493) over the port's AES.
Set-up code: a codec derives its advert key once (`wire_init`), then `rocknet.start` drops
this module."""

from ._compat import CBC
from ._compat import aes as _port_aes

_ZERO = bytes(16)


def cmac(key, msg):
    """AES-CMAC (RFC 4493) of ``msg`` under the 16-byte ``key``."""
    cbc = _port_aes(key)
    sub = bytearray(16)
    cbc(CBC, _ZERO)(sub, sub)
    k1 = _dbl(sub)
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
    cbc(CBC, _ZERO)(buf, buf)
    return bytes(buf[o:])


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
    salt = cmac(_ZERO, b"rocknet")
    t = cmac(salt, bytes(secret))
    return cmac(t, bytes(context) + b"\x01")
