"""The one place that picks port-specific modules (CPython, MicroPython, CircuitPython).

- ``const``: ``micropython.const`` on boards, the identity on CPython.
- ``sha256(data=b"")``: a SHA-256 object (``update``, ``digest``; ``copy`` where the port has
  it): ``hashlib.sha256`` (CPython, MicroPython, CircuitPython builds that have it),
  ``hashlib.new("sha256", data)`` (CircuitPython 10.1+, whose hashlib has only ``new``), else
  the pure-Python `rocknet.sha256.Sha256` (CircuitPython 9.x / 10.0: no hashlib at all).
- ``aes(key)``: AES-128 in ECB, CBC and CTR modes over whole buffers (what AES-CCM in
  `rocknet.ccm` needs): ``aesio`` (CircuitPython), ``cryptolib`` (MicroPython), the
  ``cryptography`` package (CPython).

Only what a caller uses is imported: the pure-Python SHA-256 only where no hashlib answers,
the AES modules only when ``aes`` is called.
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
    from .sha256 import Sha256

    return Sha256


sha256 = pick_sha256()


ECB = const(0)
CBC = const(1)
CTR = const(2)


def aes(key):
    """The port's AES under ``key`` (16 bytes) as ``new(mode, iv=None) -> run(src, dst)``
    (`rocknet._compat_aes.aes`; that module is set-up code, dropped once the runner is
    built: the ciphers it made stay)."""
    from ._compat_aes import aes

    return aes(key)
