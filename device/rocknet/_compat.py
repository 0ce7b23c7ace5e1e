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
    """The port's AES under ``key`` (16 bytes) as ``new(mode, iv=None) -> run(src, dst)``:
    ``run`` encrypts ``src`` into the bytearray ``dst`` of the same length (``dst`` may be
    ``src``; ECB and CBC: whole 16-byte blocks; CTR: any length, the counter block ``iv``
    incremented big-endian). ``new`` raises ValueError or NotImplementedError for a mode the
    port lacks (cryptolib builds without CTR)."""
    key = bytes(key)
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key, got %d bytes" % len(key))
    try:
        import aesio  # CircuitPython
    except ImportError:
        aesio = None
    if aesio is not None:
        modes = (aesio.MODE_ECB, aesio.MODE_CBC, aesio.MODE_CTR)

        def new(mode, iv=None):
            c = aesio.AES(key, modes[mode], iv)
            if mode:
                return c.encrypt_into

            def ecb(src, dst):  # aesio's ECB takes one block per call
                s, d = memoryview(src), memoryview(dst)
                for o in range(0, len(src), 16):
                    c.encrypt_into(s[o:o + 16], d[o:o + 16])

            return ecb

        return new
    try:
        import cryptolib  # MicroPython
    except ImportError:
        cryptolib = None
    if cryptolib is not None:

        def new(mode, iv=None):
            c = cryptolib.aes(key, (2, 6)[mode - 1], iv) if mode else cryptolib.aes(key, 1)
            return c.encrypt

        return new
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise ImportError("no AES on this port: needs aesio (CircuitPython), cryptolib "
                          "(MicroPython) or the cryptography package (CPython)") from None
    alg = algorithms.AES(key)

    def new(mode, iv=None):
        m = modes.CBC(bytes(iv)) if mode == CBC else modes.CTR(bytes(iv)) if mode else modes.ECB()
        e = Cipher(alg, m).encryptor()

        def run(src, dst):
            dst[:] = e.update(bytes(src))

        return run

    return new
