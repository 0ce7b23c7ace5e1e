"""On-air format of a Mixer packet: one BLE manufacturer-data AD structure, authenticated.

Layout (byte offsets; nb = ceil(M/8), P = row size, all little-endian):

    0      AD length (= total - 1)           1
    1      AD type 0xFF (manufacturer data)  1
    2      company id                        2   (0xFFFF = testing, configurable)
    4      network id                        1
    5      round number, low 16 bits         2   (the tag binds the full 32-bit round)
    7      sender node id                    1
    8      flags                             1   (mixer.FLAG_* / INFO_*)
    9      seq: sender's packet number       1   (per round; replay window)
    10     coding vector                     nb  (bit i = row i)
    10+nb  info vector                       nb  (missing rows or full-rank node map)
    10+2nb row payload                       P
    end-4  tag: HMAC-SHA256(key, round32 | everything before the tag), first 4 bytes

Overhead = 14 + 2*nb bytes. Legacy adverts carry 31 bytes of advertising data, extended ones
up to 254: `max_row_size` says what is left for a row. A receiver extends the 16-bit round to
32 bits around its own round (serial arithmetic, +-32767), so nodes must stay within that many
rounds of each other; a node without a round takes the first round at or after its hint (its
last checkpointed round, 0 on a fresh board), i.e. it can join a fleet up to 65535 rounds on.

Receiving is ordered cheapest first: length, AD type, company, network, round window, field
sanity and the per-sender replay window are checked before any hashing, so foreign adverts
and repeats of one advertising event cost a few byte compares. `Codec.unpack` never raises:
it returns None and counts the reason in `Codec.rejected`.
"""

import struct

from ._compat import const
from ._compat import sha256 as _sha256
from .mixer import FLAGS_KNOWN, INFO_MASK, INFO_REQUEST, Packet

AD_MANUFACTURER = const(0xFF)
COMPANY_TESTING = const(0xFFFF)
TAG_SIZE = const(4)
HEADER_SIZE = const(10)
LEGACY = "legacy"
EXTENDED = "extended"
ADV_DATA_MAX = {LEGACY: 31, EXTENDED: 254}
REPLAY_WINDOW = const(32)  # out-of-order packets accepted this far behind a sender's newest
MAX_SEQ = const(255)
_ROUNDS_KEPT = const(4)  # replay windows are kept for this many rounds


def vector_bytes(m):
    return (m + 7) // 8


def overhead(m):
    """Bytes of a packet that are not row payload."""
    return HEADER_SIZE + 2 * vector_bytes(m) + TAG_SIZE


def max_row_size(profile, m):
    """Largest row (bytes) a packet of `profile` ('legacy' or 'extended') holds for M rows."""
    if profile not in ADV_DATA_MAX:
        raise ValueError("profile must be 'legacy' or 'extended', not %r" % (profile,))
    return ADV_DATA_MAX[profile] - overhead(m)


def packet_size(m, row_size):
    return overhead(m) + row_size


def extend_round(low16, ref, forward=False):
    """The 32-bit round whose low 16 bits are `low16`: the closest to `ref` (None if < 0), or
    with `forward` the first at or after `ref` (a node with no round yet, `ref` = its hint:
    the fleet can only be ahead of its last checkpoint)."""
    if forward:
        return ref + ((low16 - ref) & 0xFFFF)
    r = (ref & ~0xFFFF) | low16
    if r - ref > 0x8000:
        r -= 0x10000
    elif ref - r >= 0x8000:
        r += 0x10000
    return r if r >= 0 else None


# ----- HMAC -----


class Mac:
    """HMAC-SHA256 truncated to TAG_SIZE bytes (RFC 2104, built on hashlib: CircuitPython
    has no hmac module). The key is first bound to its network so one fleet key serves
    several networks without cross-talk."""

    def __init__(self, key, context=b"", sha256=None):
        if not key:
            raise ValueError("the fleet key must be non-empty bytes")
        self._sha = sha256 or _sha256
        self._set_key(bytes(key))
        if context:
            self._set_key(self.digest(b"rocknet/mac/v1", bytes(context)))

    def _set_key(self, key):
        if len(key) > 64:
            key = self._sha(key).digest()
        key = key + bytes(64 - len(key))
        self._ipad = bytes(b ^ 0x36 for b in key)
        self._opad = bytes(b ^ 0x5C for b in key)
        self._inner = None
        self._outer = None
        probe = self._sha(self._ipad)
        if hasattr(probe, "copy"):  # cache keyed states (MicroPython's sha256 cannot copy)
            self._inner = probe
            self._outer = self._sha(self._opad)

    def digest(self, *parts):
        """Full 32-byte HMAC of the concatenated parts."""
        h = self._inner.copy() if self._inner is not None else self._sha(self._ipad)
        for p in parts:
            h.update(p)
        o = self._outer.copy() if self._outer is not None else self._sha(self._opad)
        o.update(h.digest())
        return o.digest()

    def tag(self, *parts):
        return self.digest(*parts)[:TAG_SIZE]


def tags_equal(a, b):
    """Compare without an early exit (no timing hint on how much of a forged tag matched)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


class ReplayWindow:
    """Per round and sender: the newest seq seen plus a bitmap of the REPLAY_WINDOW before it
    (IPsec-style). Only authenticated packets are marked, so forgeries cannot block seqs."""

    def __init__(self):
        self._rounds = {}  # round -> {sender: [newest seq, bitmap; bit k = newest - k seen]}

    def fresh(self, round_no, sender, seq):
        senders = self._rounds.get(round_no)
        if senders is None:
            return True
        w = senders.get(sender)
        if w is None:
            return True
        back = w[0] - seq
        if back < 0:
            return True
        return back < REPLAY_WINDOW and not (w[1] >> back) & 1

    def mark(self, round_no, sender, seq):
        senders = self._rounds.get(round_no)
        if senders is None:
            if len(self._rounds) >= _ROUNDS_KEPT:
                del self._rounds[min(self._rounds)]
            senders = {}
            self._rounds[round_no] = senders
        w = senders.get(sender)
        if w is None:
            senders[sender] = [seq, 1]
            return
        back = w[0] - seq
        if back < 0:
            w[1] = ((w[1] << -back) | 1) & ((1 << REPLAY_WINDOW) - 1)
            w[0] = seq
        else:
            w[1] |= 1 << back

    def forget_before(self, round_no):
        for r in [r for r in self._rounds if r < round_no]:
            del self._rounds[r]


class Codec:
    """Packs `mixer.Packet`s into advertising data and back, for one network and geometry."""

    def __init__(self, key, m, row_size, profile=EXTENDED, company_id=COMPANY_TESTING,
                 network_id=0):
        if not 0 <= company_id <= 0xFFFF or not 0 <= network_id <= 0xFF:
            raise ValueError("company_id is 16 bits and network_id 8 bits")
        limit = max_row_size(profile, m)
        if not 1 <= row_size <= limit:
            hint = " (or use the extended profile)" if profile == LEGACY else ""
            raise ValueError("row_size %d does not fit a %s advert with M=%d: use 1..%d%s"
                             % (row_size, profile, m, limit, hint))
        self.m = m
        self.row_size = row_size
        self.profile = profile
        self.company_id = company_id
        self.network_id = network_id
        self.nb = vector_bytes(m)
        self.size = packet_size(m, row_size)
        self.header = bytes((self.size - 1, AD_MANUFACTURER, company_id & 0xFF,
                             company_id >> 8, network_id))
        self._mac = Mac(key, context=self.header[1:])
        self.replay = ReplayWindow()
        self.rejected = {}

    @property
    def scan_prefix(self):
        """Filter for CircuitPython's start_scan(prefixes=...): one length byte, then the AD
        structure's first bytes (type, company, network), matched in C before Python runs."""
        return bytes((4,)) + self.header[1:5]

    def pack(self, p):
        nb = self.nb
        if not 0 <= p.seq <= MAX_SEQ or not 0 <= p.sender <= 0xFF or p.flags & ~FLAGS_KNOWN:
            raise ValueError("seq and sender are one byte each; flags use bits 0-2")
        if len(p.payload) != self.row_size:
            raise ValueError("payload is %d bytes, row_size is %d"
                             % (len(p.payload), self.row_size))
        buf = bytearray(self.size)
        buf[0:5] = self.header
        struct.pack_into("<HBBB", buf, 5, p.round_no & 0xFFFF, p.sender, p.flags, p.seq)
        o = HEADER_SIZE
        buf[o:o + nb] = p.cv.to_bytes(nb, "little")
        buf[o + nb:o + 2 * nb] = p.info.to_bytes(nb, "little")
        buf[o + 2 * nb:o + 2 * nb + self.row_size] = p.payload
        end = self.size - TAG_SIZE
        buf[end:] = self._mac.tag(struct.pack("<I", p.round_no & 0xFFFFFFFF), buf[:end])
        return bytes(buf)

    def _reject(self, reason):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return None

    def unpack(self, data, round_ref, forward=False):
        """Advertising data -> authenticated, fresh Packet (round extended around round_ref,
        see `extend_round`), or None with the reason counted. Marks it in the replay window."""
        try:
            return self._unpack(data, round_ref, forward)
        except Exception:  # belt and braces: malformed input must never escape
            return self._reject("malformed")

    def _unpack(self, data, round_ref, forward):
        n = len(data)
        h = self.header
        if n < 5:
            return self._reject("short")
        if data[1] != AD_MANUFACTURER:
            return self._reject("ad_type")
        if data[2] != h[2] or data[3] != h[3]:
            return self._reject("company")
        if data[4] != h[4]:
            return self._reject("network")
        if n != self.size or data[0] != n - 1:
            return self._reject("length")
        low, sender, flags, seq = struct.unpack_from("<HBBB", data, 5)
        round_no = extend_round(low, round_ref, forward)
        if round_no is None:
            return self._reject("round")
        nb = self.nb
        o = HEADER_SIZE
        cv = int.from_bytes(bytes(data[o:o + nb]), "little")
        info = int.from_bytes(bytes(data[o + nb:o + 2 * nb]), "little")
        kind = flags & INFO_MASK
        # Both info kinds fit in M bits (node maps index the <= M distinct owners).
        if flags & ~FLAGS_KNOWN or cv >> self.m or info >> self.m or kind == INFO_MASK:
            return self._reject("malformed")
        if kind == INFO_REQUEST and flags & 1:
            return self._reject("malformed")  # a full-rank node has nothing to request
        if not self.replay.fresh(round_no, sender, seq):
            return self._reject("replay")
        end = n - TAG_SIZE
        tag = self._mac.tag(struct.pack("<I", round_no), data[:end])
        if not tags_equal(tag, data[end:]):
            return self._reject("auth")
        self.replay.mark(round_no, sender, seq)
        payload = bytes(data[o + 2 * nb:end])
        return Packet(round_no, sender, flags, cv, info, payload, seq)
