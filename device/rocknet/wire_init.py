"""`wire.Codec`'s construction: checks, header and advert key, and the advert sizes (what
fits an advert; the host's planner asks them too). Set-up code, dropped by `rocknet.start`
once the runner is built."""

from . import ccm
from .keys import derive
from .wire import AD_MANUFACTURER, EXTENDED, HEADER_SIZE, MIC_SIZE, ReplayWindow

MIC_SIZES = (4, 8)
LEGACY = "legacy"
ADV_DATA_MAX = {LEGACY: 31, EXTENDED: 254}  # advertising data bytes by profile


def vector_bytes(m):
    return (m + 7) // 8


def overhead(m, mic=MIC_SIZE):
    """Bytes of a packet that are not row payload."""
    return HEADER_SIZE + 2 * vector_bytes(m) + mic


def max_row_size(profile, m, mic=MIC_SIZE):
    """Largest row (bytes) a packet of `profile` ('legacy' or 'extended') holds for M rows."""
    if profile not in ADV_DATA_MAX:
        raise ValueError("profile must be 'legacy' or 'extended', not %r" % (profile,))
    return ADV_DATA_MAX[profile] - overhead(m, mic)


def packet_size(m, row_size, mic=MIC_SIZE):
    return overhead(m, mic) + row_size


def init(self, key, m, row_size, profile, company_id, network_id, mic, boot, floor):
    if not 0 <= company_id <= 0xFFFF or not 0 <= network_id <= 0xFF:
        raise ValueError("company_id is 16 bits and network_id 8 bits")
    if mic not in MIC_SIZES:
        raise ValueError("mic must be 4 or 8 bytes, not %r" % (mic,))
    limit = max_row_size(profile, m, mic)
    if limit < 1:
        raise ValueError("M=%d rows leave no room for a row in a %s advert: use fewer rows "
                         "or the extended profile" % (m, profile))
    if not 1 <= row_size <= limit:
        hint = " (or use the extended profile)" if profile == LEGACY else ""
        raise ValueError("row_size %d does not fit a %s advert with M=%d: use 1..%d%s"
                         % (row_size, profile, m, limit, hint))
    self.m = m
    self.row_size = row_size
    self.profile = profile
    self.company_id = company_id
    self.network_id = network_id
    self.mic = mic
    self.nb = vector_bytes(m)
    self.size = packet_size(m, row_size, mic)
    self.header = bytes((self.size - 1, AD_MANUFACTURER, company_id & 0xFF,
                         company_id >> 8, network_id))
    self.scan_prefix = bytes((4,)) + self.header[1:5]
    self._ccm = ccm.Ccm(derive(key, b"rocknet/advert/v2" + self.header), mic)
    self._nonce = bytearray(ccm.NONCE_SIZE)
    self.boot = _random16() if boot is None else boot & 0xFFFF
    self.floor = floor
    self.replay = ReplayWindow()
    self.rejected = {}


def _random16():
    """A boot salt: the board's random source (os.urandom), else `random`."""
    try:
        from os import urandom

        b = urandom(2)
        return b[0] << 8 | b[1]
    except ImportError:
        from random import getrandbits

        return getrandbits(16)
