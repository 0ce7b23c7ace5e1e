"""On-air format of a Mixer packet: one BLE manufacturer-data AD structure, sealed with
AES-CCM as Bluetooth Mesh seals its network PDUs.

Layout (byte offsets; nb = ceil(M/8), P = row size, T = MIC size, all little-endian):

    0      AD length (= total - 1)           1
    1      AD type 0xFF (manufacturer data)  1
    2      company id                        2   (0xFFFF = testing, configurable)
    4      network id                        1
    5      round number, low 16 bits         2   (the nonce binds the full 32-bit round)
    7      sender node id                    1
    8      flags                             1   (mixer.FLAG_* / INFO_*)
    9      seq: sender's packet number       1   (per round and boot; replay window)
    10     boot: sender's per-boot salt      2   (random at start-up)
    12     coding vector                     nb  (bit i = row i)
    12+nb  info vector                       nb  (missing rows or full-rank node map)
    12+2nb row payload, encrypted            P
    end-T  MIC                               T   (4 bytes by default, 8 as an option)

AES-CCM (`ccm`): the key is derived per fleet and network from the fleet key (Mesh's k2
construction on AES-CMAC, bound to the AD header: company, network and packet size); the
13-byte nonce is network | round (32 bits) | sender | seq | boot; the header from the flags
on (flags, seq, boot, coding and info vectors) is authenticated in clear, the row payload is
encrypted, so no training series (nor partial logit) crosses the air in the clear, and every
field of the advert is covered by the MIC. A node that reboots within a round draws a new
boot salt: its restarted seqs make new nonces (no keystream is reused) and open a new replay
window (its packets are not taken for replays of its previous boot's).

Overhead = 16 + 2*nb bytes with a 4-byte MIC. Legacy adverts carry 31 bytes of advertising
data, extended ones up to 254: `wire_init.max_row_size` says what is left for a row. A
receiver extends the 16-bit round to 32 bits around its own round (serial arithmetic,
+-32767), so nodes must stay within that many rounds of each other; a node without a round
takes the first round at or after its hint (its last checkpointed round, 0 on a fresh
board), i.e. it can join a fleet up to 65535 rounds on. Rounds before the codec's ``floor``
(a rebooted node's checkpointed round) are refused.

Receiving is ordered cheapest first: length, AD type, company, network, round window and
floor, field sanity and the per-sender replay window are checked before any AES, so foreign
adverts and repeats of one advertising event cost a few byte compares. `Codec.unpack` never
raises: it returns None and counts the reason in `Codec.rejected`.
"""

import struct

from ._compat import const
from .mixer import FLAGS_KNOWN, INFO_MASK, INFO_REQUEST, Packet

AD_MANUFACTURER = const(0xFF)  # BLE AD type: manufacturer-specific data
COMPANY_TESTING = const(0xFFFF)
MIC_SIZE = const(4)  # bytes of the AES-CCM MIC by default (8: the stronger option)
HEADER_SIZE = const(12)
EXTENDED = "extended"  # the advert profile by default ("legacy": 31 bytes, `wire_init`)
# out-of-order packets accepted this far behind a sender's newest: 22 so that the newest seq (8
# bits) and the bitmap share one small int (30 bits), which MicroPython stores unboxed
_REPLAY_WINDOW = const(22)
_REPLAY_MASK = const((1 << _REPLAY_WINDOW) - 1)
MAX_SEQ = const(255)
_ROUNDS_KEPT = const(4)  # replay windows are kept for this many rounds


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


class ReplayWindow:
    """Per round and stream: the newest seq seen plus a bitmap of the 22 seqs before it
    (IPsec-style). A stream is one boot of one sender (`Codec` passes sender << 16 | boot),
    so a sender that rebooted within a round starts a new window. Only authenticated packets
    are marked, so forgeries cannot block seqs. The rounds' dicts are made once and reused,
    emptied (a dict keeps its table): marking allocates nothing once each has held a round's
    streams (`board.build_runner` sizes them for the fleet up front)."""

    def __init__(self):
        # round -> {stream: newest seq << 22 | bitmap, bit k = newest - k seen}
        self._rounds = {}
        self._spare = [{}, {}, {}, {}]  # _ROUNDS_KEPT dicts for rounds to come, empty

    def fresh(self, round_no, sender, seq):
        senders = self._rounds.get(round_no)
        if senders is None:
            return True
        w = senders.get(sender)
        if w is None:
            return True
        back = (w >> _REPLAY_WINDOW) - seq
        if back < 0:
            return True
        return back < _REPLAY_WINDOW and not (w >> back) & 1

    def mark(self, round_no, sender, seq):
        senders = self._rounds.get(round_no)
        if senders is None:
            if len(self._rounds) >= _ROUNDS_KEPT:
                self.forget_before(min(self._rounds) + 1)
            senders = self._spare.pop()
            self._rounds[round_no] = senders
        w = senders.get(sender)
        if w is None:
            senders[sender] = seq << _REPLAY_WINDOW | 1
            return
        back = (w >> _REPLAY_WINDOW) - seq
        if back < 0:
            bits = ((w & _REPLAY_MASK) << -back | 1) & _REPLAY_MASK
            senders[sender] = seq << _REPLAY_WINDOW | bits
        elif back < _REPLAY_WINDOW:
            senders[sender] = w | 1 << back

    def forget_before(self, round_no):
        for r in list(self._rounds):
            if r >= round_no:
                continue
            senders = self._rounds.pop(r)
            for k in list(senders):
                del senders[k]  # not clear(): that frees the table, a later round regrows it
            self._spare.append(senders)


class Codec:
    """Packs `mixer.Packet`s into sealed advertising data and back, for one network and
    geometry. ``key``: the fleet key (any non-empty bytes); ``mic``: 4 or 8 bytes; ``boot``:
    this node's boot salt (16 bits; default random, as a board needs: fix it only to make a
    simulation reproducible); ``floor``: rounds before it are refused (the checkpointed
    round of a rebooted node)."""

    # what `wire_init.init` sets (bare annotations compile to nothing on a board)
    m: int
    row_size: int
    profile: str
    company_id: int
    network_id: int
    mic: int
    nb: int  # bytes of a coding (and info) vector
    size: int  # bytes of a packet
    header: bytes  # AD length, type, company id, network id
    # filter for CircuitPython's start_scan(prefixes=...): one length byte, then the AD
    # structure's first bytes (type, company, network), matched in C before Python runs
    scan_prefix: bytes
    boot: int
    floor: int
    replay: ReplayWindow
    rejected: dict

    def __init__(self, key, m, row_size, profile=EXTENDED, company_id=COMPANY_TESTING,
                 network_id=0, mic=MIC_SIZE, boot=None, floor=0):
        from .wire_init import init  # set-up code: dropped once the runner is built

        init(self, key, m, row_size, profile, company_id, network_id, mic, boot, floor)

    def _nonce_for(self, round_no, sender, seq, boot):
        n = self._nonce
        struct.pack_into(">BIBBH", n, 0, self.network_id, round_no & 0xFFFFFFFF, sender, seq,
                         boot)
        return n

    def pack(self, p):
        nb = self.nb
        if not 0 <= p.seq <= MAX_SEQ or not 0 <= p.sender <= 0xFF or p.flags & ~FLAGS_KNOWN:
            raise ValueError("seq and sender are one byte each; flags use bits 0-2")
        if len(p.payload) != self.row_size:
            raise ValueError("payload is %d bytes, row_size is %d"
                             % (len(p.payload), self.row_size))
        buf = bytearray(self.size)
        buf[0:5] = self.header
        struct.pack_into("<HBBBH", buf, 5, p.round_no & 0xFFFF, p.sender, p.flags, p.seq,
                         self.boot)
        o = HEADER_SIZE
        buf[o:o + nb] = p.cv.to_bytes(nb, "little")
        buf[o + nb:o + 2 * nb] = p.info.to_bytes(nb, "little")
        o += 2 * nb
        nonce = self._nonce_for(p.round_no, p.sender, p.seq, self.boot)
        buf[o:] = self._ccm.seal(nonce, memoryview(buf)[8:o], p.payload)
        return bytes(buf)

    def _reject(self, reason):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return None

    def unpack(self, data, round_ref, forward=False):
        """Advertising data -> authenticated, decrypted, fresh Packet (round extended around
        round_ref, see `extend_round`), or None with the reason counted. Marks it in the
        replay window."""
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
        low, sender, flags, seq, boot = struct.unpack_from("<HBBBH", data, 5)
        round_no = extend_round(low, round_ref, forward)
        if round_no is None or round_no < self.floor:
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
        stream = sender << 16 | boot
        if not self.replay.fresh(round_no, stream, seq):
            return self._reject("replay")
        o += 2 * nb
        mv = memoryview(data)
        payload = self._ccm.open(self._nonce_for(round_no, sender, seq, boot), mv[8:o], mv[o:])
        if payload is None:
            return self._reject("auth")
        self.replay.mark(round_no, stream, seq)
        return Packet(round_no, sender, flags, cv, info, payload, seq)

