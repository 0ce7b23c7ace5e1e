"""One Mixer round: GF(2) random linear network coding of a generation of rows (sans-I/O).

A round carries M rows of P bytes; row i belongs to node ``owners[i]``. Every packet holds a
random XOR of rows its sender knows plus the coding vector saying which. Receivers keep the
rows in reduced row-echelon form indexed by pivot (the highest set bit of the coding vector),
so a row is decoded as soon as its pivot row is a unit vector, and everything is decoded at
full rank.

Transmit policy (what `Round.next_packet` hands out), after Mixer (Herrmann et al. 2018):
- systematic start: own rows go out uncoded first, once each (only we have them);
- answer requests: a neighbour near full rank lists its missing pivots; we send an XOR of
  decoded rows from that list, which is innovative for it whatever else it holds;
- coded: a random half of the rows we hold, with the freshest innovative packet sideloaded;
- smart shutdown: once we are done and no recently heard neighbour is unfinished, send a few
  more done packets so the neighbours learn it, then stay quiet (None) until an unfinished
  neighbour speaks again (or a done map shows a neighbour missed our news).

"Done" is full rank, or, when the caller said which rows the round needs (`need`: rows of
boards that are gone never come), every needed row decoded. The "full rank" flag and map on
the wire mean done: a node that holds everything the round needs tells its neighbours so,
and they stop waiting for it to catch up.

Coding vectors and payloads are Python ints while computed (XOR is one C call either way);
bit i of a coding vector is row i. A round keeps them in storage sized once by its geometry (an
``array("Q")`` of vectors, a bytearray of payloads): a board's heap between rounds does not
depend on what the round heard. No clock, no radio: times are integer milliseconds handed in
by the caller.
"""

from array import array

from ._compat import const

# Flags byte (wire format too). Bit 0: sender is done. Bits 1-2: what the info vector is.
FLAG_FULL_RANK = const(0x01)
INFO_MASK = const(0x06)
INFO_NONE = const(0x00)
INFO_REQUEST = const(0x02)  # info = rows (pivots) the sender still misses
INFO_FULL_MAP = const(0x04)  # info = nodes (index into Round.nodes) known to be full rank
FLAGS_KNOWN = const(0x07)  # any other bit set: malformed

_MAX_ROWS = const(64)
DEFAULT_TIMEOUT_MS = const(5000)

_LINGER = const(2)  # full-rank packets still sent once the neighbourhood looks done
_FRESH_USES = const(2)  # how many coded packets sideload the freshest innovative packet
_REQUEST_GAP = const(3)  # request missing rows once at most this many remain (or M/8)
_REQUEST_TTL_MS = const(500)  # a heard request is answered only this long
_NEIGHBOUR_TTL_MS = const(2000)  # an unfinished neighbour silent this long is gone


class Packet:
    """One coded packet as the round sees it (the wire adds company, network, seq, tag)."""

    def __init__(self, round_no, sender, flags, cv, info, payload, seq=0):
        self.round_no = round_no
        self.sender = sender
        self.flags = flags
        self.cv = cv  # coding vector: bit i set = row i is in the XOR
        self.info = info  # missing rows (INFO_REQUEST) or full-rank node map (INFO_FULL_MAP)
        self.payload = payload  # bytes, exactly row_size long
        self.seq = seq  # per-sender packet number within the round (set by the link)


class Rng:
    """xorshift32: the same stream on CPython, MicroPython and CircuitPython (no `random`).
    The state lives in an ``array("I")``: a 32-bit int above 2**30 is a heap object on a
    board, so the heap would change with the state."""

    def __init__(self, seed):
        self._s = array("I", (0,))
        self.seed(seed)

    def seed(self, seed):
        """Restart the stream from ``seed``, as a new ``Rng(seed)`` would."""
        seed = (seed ^ 0x9E3779B9) & 0xFFFFFFFF
        self._s[0] = seed or 0x6D2B79F5

    def next32(self):
        x = self._s[0]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._s[0] = x
        return x

    def bits(self, n):
        """n independent fair coin flips as the low bits of an int."""
        r = 0
        k = 0
        while k < n:
            r |= self.next32() << k
            k += 32
        return r & ((1 << n) - 1)

    def below(self, n):
        return self.next32() % n


def mask_bits(mask, n):
    """Indices of the set bits of `mask` below n, ascending."""
    out = []
    for i in range(n):
        if (mask >> i) & 1:
            out.append(i)
    return out


class Round:
    """State of one round at one node: what it knows, what it has heard, what to send next."""

    def __init__(self, node_id, round_no, owners, row_size, seed=0, now_ms=0,
                 timeout_ms=DEFAULT_TIMEOUT_MS, like=None):
        # ``like``: a round of the same owners whose node list and index this one shares
        # (they never change: a link's rounds hold one copy, not one each)
        m = len(owners)
        if not 0 < m <= _MAX_ROWS:
            raise ValueError("a round needs 1..%d rows, got %d owners" % (_MAX_ROWS, m))
        if row_size < 1:
            raise ValueError("row_size must be >= 1 byte")
        self.node_id = node_id
        self.m = m
        self.row_size = row_size
        # Nodes = distinct owners, sorted: position = bit in full-rank maps (N <= M bits fit).
        if like is not None:
            self.nodes, self._index = like.nodes, like._index
        else:
            self.nodes = sorted(set(owners))
            self._index = {}
            for i, n in enumerate(self.nodes):
                self._index[n] = i
        self._all_rows = (1 << m) - 1
        self._all_nodes = (1 << len(self.nodes)) - 1
        # pivot-indexed reduced rows: coding vector (0 = no row) and payload (row_size bytes
        # each, big-endian as the ints computed with); slot m: the freshest innovative
        # packet as received (sideload)
        self._cv = array("Q", [0] * (m + 1))
        self._pl = bytearray((m + 1) * row_size)
        self._rng = Rng(0)
        self._own_unsent = []  # own row indices not yet sent uncoded, ascending
        self._last_ms = [0] * len(self.nodes)  # when each neighbour was last heard
        self._strangers = {}  # sender id not among owners -> (full rank?, last heard ms)
        self._seed = seed
        self._timeout_ms = timeout_ms
        self.reset(round_no, now_ms)

    def reset(self, round_no, now_ms=0):
        """Start afresh as round ``round_no``, in this round's storage: `rocknet.link` reuses
        a round nobody needs any more, so a board allocates no round storage per round. It
        behaves as a new ``Round`` would: the payloads left in ``_pl`` are never read (a slot
        counts only once its coding vector is set)."""
        self.round_no = round_no
        self._need = self._all_rows  # rows the round needs (`need`)
        cv = self._cv
        for i in range(len(cv)):
            cv[i] = 0
        self.rank = 0
        self._rng.seed(self._seed ^ ((round_no * 0x2545F491) & 0xFFFFFFFF))
        del self._own_unsent[:]
        self._fresh_left = 0
        self._heard = 0  # node mask: neighbours heard this round
        self._finished = 0  # node mask: nodes known to be full rank
        last = self._last_ms
        for i in range(len(last)):
            last[i] = 0
        self._strangers.clear()
        self._requests = 0  # row mask requested by neighbours
        self._request_ms = 0
        self._linger = _LINGER
        self.started_ms = now_ms
        self.deadline_ms = now_ms + self._timeout_ms
        self.full_rank_ms = None  # when this node reached full rank
        self.done_ms = None  # when it held every row the round needs
        self.sent = 0  # packets handed out
        self.received = 0  # packets of this round taken in
        self.innovative = 0  # ... of which raised the rank

    # ----- state -----

    @property
    def full_rank(self):
        return self.rank == self.m

    def row(self, i):
        """Row i as bytes once decoded, else None."""
        if self._cv[i] == 1 << i:
            return self._get(i).to_bytes(self.row_size, "big")

    def _get(self, i):
        """Payload of slot i as an int."""
        o = i * self.row_size
        return int.from_bytes(self._pl[o:o + self.row_size], "big")

    def _put(self, i, cv, pl):
        self._cv[i] = cv
        o = i * self.row_size
        self._pl[o:o + self.row_size] = pl.to_bytes(self.row_size, "big")

    def rows(self):
        """All rows, None where not decoded yet."""
        out = []
        for i in range(self.m):
            out.append(self.row(i))
        return out

    def decoded_mask(self):
        mask = 0
        for i in range(self.m):
            if self._cv[i] == 1 << i:
                mask |= 1 << i
        return mask

    def missing_mask(self):
        """Pivots with no row yet: what a request asks for (exactly M - rank bits)."""
        mask = 0
        for i in range(self.m):
            if not self._cv[i]:
                mask |= 1 << i
        return mask

    def need(self, rows, now_ms):
        """Only the rows in mask ``rows`` are needed: done once they are decoded."""
        self._need = rows & self._all_rows
        self._check_done(now_ms)

    def _check_done(self, now_ms):
        if self.done_ms is None and (self.rank == self.m or (
                self._need != self._all_rows and not self._need & ~self.decoded_mask())):
            self.done_ms = now_ms
            i = self._index.get(self.node_id)
            if i is not None:
                self._finished |= 1 << i

    def neighbourhood_done(self, now_ms):
        """Done and no neighbour heard within the TTL is unfinished (smart shutdown)."""
        if self.done_ms is None:
            return False
        unfinished = self._heard & ~self._finished
        i = 0
        while unfinished:
            if unfinished & 1 and now_ms - self._last_ms[i] < _NEIGHBOUR_TTL_MS:
                return False
            unfinished >>= 1
            i += 1
        for full, ms in self._strangers.values():
            if not full and now_ms - ms < _NEIGHBOUR_TTL_MS:
                return False
        return True

    def settled(self, now_ms):
        """Done, no neighbour heard within the TTL unfinished, and our news went out: a
        packet saying so was handed out after the neighbourhood looked done."""
        return self._linger < _LINGER and self.neighbourhood_done(now_ms)

    # ----- input -----

    def add_own_rows(self, rows, now_ms=None):
        """Contribute rows {index: bytes} (zero-padded to row_size); they go out uncoded first."""
        for i in sorted(rows):
            data = rows[i]
            if not 0 <= i < self.m:
                raise ValueError("row index %d outside 0..%d" % (i, self.m - 1))
            if len(data) > self.row_size:
                raise ValueError("row %d has %d bytes; row_size is %d"
                                 % (i, len(data), self.row_size))
            pl = int.from_bytes(bytes(data) + bytes(self.row_size - len(data)), "big")
            self._insert(1 << i, pl, now_ms if now_ms is not None else self.started_ms)
            if i not in self._own_unsent:
                self._own_unsent.append(i)
        self._own_unsent.sort()

    def receive(self, packet, now_ms):
        """Take in a packet of any sender; True if it raised the rank."""
        if packet.round_no != self.round_no:
            return False
        cv = packet.cv
        if cv >> self.m or len(packet.payload) != self.row_size:
            return False
        self.received += 1
        self._note_sender(packet.sender, packet.flags, packet.info, now_ms)
        if not cv:
            return False  # a pure info packet (beacon / request)
        pl = int.from_bytes(packet.payload, "big")
        if not self._insert(cv, pl, now_ms):
            return False
        self.innovative += 1
        self._put(self.m, cv, pl)
        self._fresh_left = _FRESH_USES
        return True

    def _note_sender(self, sender, flags, info, now_ms):
        full = flags & FLAG_FULL_RANK
        i = self._index.get(sender)
        if i is None:
            if sender != self.node_id:
                self._strangers[sender] = (full, now_ms)
        elif sender != self.node_id:
            bit = 1 << i
            self._heard |= bit
            self._last_ms[i] = now_ms
            if full:
                self._finished |= bit
        kind = flags & INFO_MASK
        if kind == INFO_FULL_MAP:
            self._finished |= info & self._all_nodes  # full rank never undoes itself
            me = self._index.get(self.node_id)
            if me is not None and self.done_ms is not None and not (info >> me) & 1:
                self._linger = max(self._linger, 1)  # it does not know we are done: say so
        elif kind == INFO_REQUEST and not full:
            if now_ms - self._request_ms >= _REQUEST_TTL_MS:
                self._requests = 0  # forget requests nobody repeated
            self._requests |= info & self._all_rows
            self._request_ms = now_ms

    def _insert(self, cv, pl, now_ms):
        """Online Gauss-Jordan step; keeps the table in reduced row-echelon form."""
        rows_cv = self._cv
        for q in range(self.m - 1, -1, -1):
            if (cv >> q) & 1 and rows_cv[q]:
                cv ^= rows_cv[q]
                pl ^= self._get(q)
        if not cv:
            return False
        p = self.m - 1
        while not (cv >> p) & 1:
            p -= 1
        # The new row has zeros in every existing pivot column; clear column p elsewhere.
        for q in range(p + 1, self.m):
            if (rows_cv[q] >> p) & 1:
                self._put(q, rows_cv[q] ^ cv, self._get(q) ^ pl)
        self._put(p, cv, pl)
        self.rank += 1
        if self.rank == self.m:
            self.full_rank_ms = now_ms
        self._check_done(now_ms)
        return True

    # ----- output -----

    def next_packet(self, now_ms):
        """The packet to send now, or None to stay quiet (deadline passed or smart shutdown)."""
        if now_ms >= self.deadline_ms:
            return None
        if self.neighbourhood_done(now_ms):
            if self._linger <= 0:
                return None
            self._linger -= 1
        else:
            self._linger = _LINGER
        cv = 0
        pl = 0
        if self._own_unsent:  # row i as a unit vector (own rows stay decoded: units)
            i = self._own_unsent.pop(0)
            if self._cv[i] == 1 << i:
                cv, pl = self._cv[i], self._get(i)
        if not cv:
            cv, pl = self._answer_request(now_ms)
        if not cv:
            cv, pl = self._coded()
        flags, info = self._info()
        self.sent += 1
        return Packet(self.round_no, self.node_id, flags, cv, info,
                      pl.to_bytes(self.row_size, "big"))

    def _info(self):
        if self.done_ms is not None:
            return INFO_FULL_MAP | FLAG_FULL_RANK, self._finished
        missing = self.m - self.rank
        if missing and missing <= max(_REQUEST_GAP, self.m >> 3):
            return INFO_REQUEST, self.missing_mask()
        return INFO_FULL_MAP, self._finished

    def _answer_request(self, now_ms):
        if not self._requests:
            return 0, 0
        wanted = self._requests & self.decoded_mask()
        fresh = now_ms - self._request_ms < _REQUEST_TTL_MS
        self._requests = 0  # requesters repeat themselves in every packet
        if not wanted or not fresh:
            return 0, 0
        # Any non-empty XOR of rows the requester misses is innovative for it.
        pick = wanted & self._rng.bits(self.m)
        if not pick:
            pick = wanted
        cv = 0
        pl = 0
        for i in mask_bits(pick, self.m):
            cv ^= self._cv[i]
            pl ^= self._get(i)
        return cv, pl

    def _coded(self):
        """A random XOR of the rows held, with the freshest innovative packet sideloaded."""
        cv = 0
        pl = 0
        if self._fresh_left > 0:
            self._fresh_left -= 1
            cv = self._cv[self.m]
            pl = self._get(self.m)
        coins = self._rng.bits(self.m)
        rows_cv = self._cv
        for i in range(self.m):
            if (coins >> i) & 1 and rows_cv[i]:
                cv ^= rows_cv[i]
                pl ^= self._get(i)
        if cv or not self.rank:
            return cv, pl  # rank 0: a pure info packet, so neighbours know we are here
        k = self._rng.below(self.rank)  # a row held, at random (rank = rows held)
        for i in range(self.m):
            if rows_cv[i]:
                if not k:
                    return rows_cv[i], self._get(i)
                k -= 1
