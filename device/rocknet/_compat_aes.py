"""`rocknet._compat.aes`: AES-128 of this port, chosen and built once per key at set-up
(`rocknet.start` drops this module afterwards; the cipher objects and the closures it returned
stay with their `ccm.Ccm`)."""

from ._compat import CBC, aesio_new, cryptolib_new


def aes(key):
    """The port's AES under ``key`` (16 bytes) as ``new(mode, iv=None) -> run(src, dst)``:
    ``run`` encrypts ``src`` into the bytearray ``dst`` of the same length (``dst`` may be
    ``src``; ECB and CBC: whole 16-byte blocks; CTR: any length, the counter block ``iv``
    incremented big-endian). ``new`` re-keys the cipher (one key schedule, as the port's
    constructor does) and raises ValueError or NotImplementedError for a mode the port lacks:
    every port has ECB and CBC, CTR only ``aesio`` and ``cryptolib`` builds with
    MICROPY_PY_CRYPTOLIB_CTR (stock esp32 and nrf firmware do not set it).

    aesio (CircuitPython): a cipher object per mode, made on the mode's first ``new`` and
    re-keyed per later ``new`` with ``rekey`` (tiny-AES keeps the CBC chain and CTR counter in
    the object between calls), so a message allocates nothing; its ECB takes one block per
    call (``run`` loops). cryptolib
    (MicroPython): a cipher object per ``new`` (it has no rekey; ECB runs whole buffers)."""
    key = bytes(key)
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key, got %d bytes" % len(key))
    try:
        import aesio  # CircuitPython
    except ImportError:
        aesio = None
    if aesio is not None:
        return aesio_new(aesio, key)
    try:
        import cryptolib  # MicroPython
    except ImportError:
        cryptolib = None
    if cryptolib is not None:
        return cryptolib_new(cryptolib.aes, key)
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
