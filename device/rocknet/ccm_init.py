"""`ccm.Ccm`'s construction: the checks, the port's AES under the key, whether it has a CTR
mode. Set-up code (a codec builds its Ccm once, in `wire_init`), dropped by `rocknet.start`
once the runner is built; the cipher it made stays with its Ccm.
"""

from ._compat import CTR
from ._compat import aes as _port_aes


def init(self, key, mic):
    """`ccm.Ccm.__init__` (see `ccm.Ccm`)."""
    if mic not in (4, 6, 8, 10, 12, 14, 16):
        raise ValueError("MIC of %r bytes: CCM allows 4, 6, 8, 10, 12, 14 or 16" % (mic,))
    if len(key) != 16:
        raise ValueError("AES-CCM here takes a 16-byte key (use keys.derive)")
    self.mic = mic
    new = self._new = _port_aes(bytes(key))
    self._native_ctr = _has(new, CTR)
    self._la = self._ld = -1  # the AAD and data lengths the buffers are formatted for
    self._a0 = bytearray(16)  # counter block A0: flags (`Ccm.__init__` sets them), nonce, 0


def _has(new, mode):
    try:
        new(mode, bytes(16))
        return True
    except (ValueError, NotImplementedError, TypeError):
        return False
