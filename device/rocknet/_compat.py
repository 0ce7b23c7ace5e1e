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
_ZERO = bytes(16)


def aes(key):
    """The port's AES under ``key`` (16 bytes) as ``new(mode, iv=None) -> run(src, dst)``:
    ``run`` encrypts ``src`` into the bytearray ``dst`` of the same length (``dst`` may be
    ``src``; ECB and CBC: whole 16-byte blocks; CTR: any length, the counter block ``iv``
    incremented big-endian). ``new`` re-keys the cipher (one key schedule, as the port's
    constructor does) and raises ValueError or NotImplementedError for a mode the port lacks:
    every port has ECB and CBC, CTR only ``aesio`` and ``cryptolib`` builds with
    MICROPY_PY_CRYPTOLIB_CTR (stock esp32 and nrf firmware do not set it).

    aesio (CircuitPython): three cipher objects made once and re-keyed per ``new`` with
    ``rekey`` (tiny-AES keeps the CBC chain and CTR counter in the object between calls), so a
    message allocates nothing; its ECB takes one block per call (``run`` loops). cryptolib
    (MicroPython): a cipher object per ``new`` (it has no rekey; ECB runs whole buffers)."""
    key = bytes(key)
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key, got %d bytes" % len(key))
    try:
        import aesio  # CircuitPython
    except ImportError:
        aesio = None
    if aesio is not None:
        objs = [aesio.AES(key, m, _ZERO) for m in (aesio.MODE_ECB, aesio.MODE_CBC, aesio.MODE_CTR)]

        def ecb(src, dst):  # aesio's ECB takes one block per call
            s, d, e = memoryview(src), memoryview(dst), objs[0].encrypt_into
            for o in range(0, len(src), 16):
                e(s[o:o + 16], d[o:o + 16])

        def new(mode, iv=None):
            c = objs[mode]
            c.rekey(key, iv or _ZERO)
            return c.encrypt_into if mode else ecb

        return new
    try:
        import cryptolib  # MicroPython
    except ImportError:
        cryptolib = None
    if cryptolib is not None:
        modes = (1, 2, 6)  # cryptolib's ECB, CBC, CTR

        def new(mode, iv=None):
            return cryptolib.aes(key, modes[mode], iv).encrypt

        return new
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise ImportError("no AES on this port (AES-CCM needs it): CircuitPython has aesio; "
                          "MicroPython needs a firmware with cryptolib (MICROPY_PY_CRYPTOLIB, "
                          "on with MICROPY_PY_SSL: the stock esp32 and unix ports); on CPython "
                          "pip install cryptography") from None
    alg = algorithms.AES(key)

    def new(mode, iv=None):
        m = modes.CBC(bytes(iv)) if mode == CBC else modes.CTR(bytes(iv)) if mode else modes.ECB()
        e = Cipher(alg, m).encryptor()

        def run(src, dst):
            dst[:] = e.update(bytes(src))

        return run

    return new
