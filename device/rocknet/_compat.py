"""The one place that picks port-specific modules (CPython, MicroPython, CircuitPython).

- ``const``: ``micropython.const`` on boards, the identity on CPython.
- ``sha256(data=b"")``: a SHA-256 object (``update``, ``digest``; ``copy`` where the port has
  it): ``hashlib.sha256`` (CPython, MicroPython, CircuitPython builds that have it),
  ``hashlib.new("sha256", data)`` (CircuitPython 10.1+, whose hashlib has only ``new``), else
  the pure-Python `rocknet.sha256.Sha256` (CircuitPython 9.x / 10.0: no hashlib at all),
  imported on each call (after the first, a look-up in ``sys.modules``): set-up and checkpoint
  code hash files with it and drop it again (`rocknet.forget`), so a training node, which
  hashes nothing per round (its consistency digest is `ccm.Chain`, on AES), does not hold it.
- ``aes(key)``: AES-128 in ECB, CBC and CTR modes over whole buffers (what AES-CCM in
  `rocknet.ccm` needs): ``aesio`` (CircuitPython), ``cryptolib`` (MicroPython), the
  ``cryptography`` package (CPython).

Only what a caller uses is imported: the pure-Python SHA-256 only where no hashlib answers
and only when ``sha256`` is called, the AES modules only when ``aes`` is called.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


def pick_sha256():
    """The SHA-256 constructor of this port (see the module docstring for the order)."""
    try:
        import hashlib
    except ImportError:
        hashlib = None
    if hashlib is not None:
        if hasattr(hashlib, "sha256"):
            return hashlib.sha256
        if hasattr(hashlib, "new"):  # CircuitPython 10.1+
            new = hashlib.new
            return lambda data=b"": new("sha256", data)

    def sha256(data=b""):
        from .sha256 import Sha256

        return Sha256(data)

    return sha256


sha256 = pick_sha256()
del pick_sha256  # run once: its code leaves the heap


ECB = const(0)
CBC = const(1)
CTR = const(2)


def aes(key):
    """The port's AES under ``key`` (16 bytes) as ``new(mode, iv=None) -> run(src, dst)``
    (`rocknet._compat_aes.aes`; that module is set-up code, dropped once the runner is
    built: the ciphers it made stay, through the closures below)."""
    from ._compat_aes import aes

    return aes(key)


# The run-time halves of `_compat_aes`'s ports, here because the closures they return live as
# long as their `ccm.Ccm`: a function defined in _compat_aes would keep all of its code alive.

def aesio_new(aesio, key):
    """aesio's cipher object of each mode (ECB, CBC, CTR), made on the mode's first ``new``
    (a CCM codec needs CBC and CTR, the digest chain CBC only) and re-keyed per ``new``."""
    zero = bytes(16)
    objs = [None, None, None]

    def ecb(src, dst):  # aesio's ECB takes one block per call
        s, d, e = memoryview(src), memoryview(dst), objs[0].encrypt_into
        for o in range(0, len(src), 16):
            e(s[o:o + 16], d[o:o + 16])

    def new(mode, iv=None):
        c = objs[mode]
        if c is None:
            c = objs[mode] = aesio.AES(key, (aesio.MODE_ECB, aesio.MODE_CBC,
                                             aesio.MODE_CTR)[mode], iv or zero)
        else:
            c.rekey(key, iv or zero)
        return c.encrypt_into if mode else ecb

    return new


def cryptolib_new(cipher, key):
    """cryptolib's ``aes`` type: a cipher object per ``new`` (it has no rekey)."""

    def new(mode, iv=None):
        return cipher(key, (1, 2, 6)[mode], iv).encrypt  # cryptolib's ECB, CBC, CTR

    return new
