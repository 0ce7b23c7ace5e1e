"""The one place that picks port-specific modules (CPython, MicroPython, CircuitPython).

- ``const``: ``micropython.const`` on boards, the identity on CPython.
- ``sha256(data=b"")``: a SHA-256 object (``update``, ``digest``; ``copy`` where the port has
  it): ``hashlib.sha256`` (CPython, MicroPython, CircuitPython builds that have it),
  ``hashlib.new("sha256", data)`` (CircuitPython 10.1+, whose hashlib has only ``new``), else
  the pure-Python `rocknet.sha256.Sha256` (CircuitPython 9.x / 10.0: no hashlib at all).
- ``aes_ecb(key)``: AES-128 block encryption, ``f(block16) -> bytes16``: ``aesio``
  (CircuitPython), ``cryptolib`` (MicroPython), the ``cryptography`` package (CPython).

Only what a caller uses is imported: the pure-Python SHA-256 only where no hashlib answers,
the AES modules only when ``aes_ecb`` is called.
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


def aes_ecb(key):
    """AES-128 ECB encryption of single 16-byte blocks under ``key`` (16 bytes)."""
    key = bytes(key)
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key, got %d bytes" % len(key))
    try:
        import aesio  # CircuitPython
    except ImportError:
        aesio = None
    if aesio is not None:
        aes = aesio.AES(key, aesio.MODE_ECB)

        def enc(block):
            out = bytearray(16)
            aes.encrypt_into(_block(block), out)
            return bytes(out)

        return enc
    try:
        import cryptolib  # MicroPython
    except ImportError:
        cryptolib = None
    if cryptolib is not None:
        c = cryptolib.aes(key, 1)  # 1 = ECB
        return lambda block: c.encrypt(_block(block))
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise ImportError("no AES on this port: needs aesio (CircuitPython), cryptolib "
                          "(MicroPython) or the cryptography package (CPython)") from None
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return lambda block: e.update(_block(block))


def _block(block):
    block = bytes(block)
    if len(block) != 16:
        raise ValueError("an AES block is 16 bytes, got %d" % len(block))
    return block
