"""The sans-I/O radio endpoint of a node: Mixer rounds (`mixer.Round`) behind the advert codec
(`wire.Codec`). Radio adapters, the simulator and the node state machine drive it with bytes
and integer-millisecond timestamps:

    link = Link(node_id=3, key=b"fleet key", owners=[0, 1, 2, 3], row_size=40)
    link.start_round(7, {3: my_row}, now_ms)
    link.on_advert(adv_data, now_ms)        # every advert the scanner reports
    adv = link.next_advert(now_ms)          # bytes to advertise next, or None = stay quiet
    if link.done: rows = link.rows()

Rounds are loose epochs. An authenticated packet from a newer round makes the link align to
it (a late joiner, or a node whose neighbours started first); a later `start_round` with that
number just adds the node's own rows. The previous round stays alive beside the current one,
so neighbours still finishing it keep getting help (the two take turns on the air). A new
round reuses the storage of one nobody needs any more (`mixer.Round.reset`), so a board
allocates no round storage per round.
"""

from . import mixer, wire

_MAX_PACKETS = wire.MAX_SEQ + 1  # seq is one byte: a round sends at most this many packets


class Link:
    """One node's end of the Mixer flood for a fixed round geometry (owners, row size).

    `stats`: adverts (all handed in), rx (authenticated and taken by a round), innovative,
    tx, joined (rounds aligned to from the air), rejected {reason: count} with the codec's
    reasons (short, ad_type, company, network, length, round, malformed, replay, auth) plus
    stale (a round older than the two kept) and future (newer round, auto_join off).

    ``round_hint``: the round of the node's last checkpoint (0 on a fresh board); rounds
    before it are refused (the replay floor survives a reboot through the checkpoint).
    ``mic``: 4 or 8 bytes of AES-CCM MIC; ``boot``: the boot salt (random by default, as a
    board needs; simulations fix it to stay reproducible), see `wire`.
    """

    def __init__(self, node_id, key, owners, row_size, profile=wire.EXTENDED,
                 company_id=wire.COMPANY_TESTING, network_id=0, seed=None,
                 timeout_ms=mixer.DEFAULT_TIMEOUT_MS, auto_join=True, round_hint=0,
                 mic=wire.MIC_SIZE, boot=None):
        if not 0 <= node_id <= 0xFF:
            raise ValueError("node_id must fit one byte (0..255), got %r" % (node_id,))
        self.node_id = node_id
        self.owners = list(owners)
        self.row_size = row_size
        # rounds before the hint (a rebooted node's checkpoint) are refused before any AES
        self.codec = wire.Codec(key, len(self.owners), row_size, profile, company_id, network_id,
                                mic, boot, floor=round_hint)
        self.seed = node_id if seed is None else seed
        self.timeout_ms = timeout_ms
        self.auto_join = auto_join
        self.round_hint = round_hint  # last round this node knew (checkpoint); 0 = fresh
        self.round = None  # current mixer.Round
        self.previous = None  # the round before, still served
        self._held = None  # the round `start_round` last returned (its caller may hold it)
        self._turn = 0
        self.stats = {"adverts": 0, "rx": 0, "innovative": 0, "tx": 0, "joined": 0,
                      "rejected": self.codec.rejected}

    # ----- state -----

    @property
    def round_no(self):
        return self.round.round_no if self.round is not None else None

    @property
    def done(self):
        """The current round is at full rank: every row decoded."""
        return self.round is not None and self.round.full_rank

    @property
    def deadline_ms(self):
        return self.round.deadline_ms if self.round is not None else None

    def rows(self):
        """Decoded rows of the current round (None where not decoded yet)."""
        return self.round.rows() if self.round is not None else [None] * len(self.owners)

    def row(self, i):
        return self.round.row(i) if self.round is not None else None

    # ----- rounds -----

    def start_round(self, round_no, own_rows=None, now_ms=0):
        """Begin round `round_no` contributing `own_rows` {row index: bytes}. Joining a round
        the link already aligned to keeps everything heard so far."""
        target = self._round(round_no)
        if target is None:
            if self.round is not None and round_no < self.round.round_no:
                raise ValueError("round %d is older than the current round %d"
                                 % (round_no, self.round.round_no))
            target = self._begin(round_no, now_ms)
        if own_rows:
            target.add_own_rows(own_rows, now_ms)
        self._held = target
        return target

    def add_own_rows(self, rows, now_ms=None):
        """Contribute rows to the current round after it started (e.g. late partial logits)."""
        if self.round is None:
            raise ValueError("no round yet: call start_round first")
        self.round.add_own_rows(rows, now_ms)

    def _round(self, round_no):
        if self.round is not None and self.round.round_no == round_no:
            return self.round
        if self.previous is not None and self.previous.round_no == round_no:
            return self.previous
        return None

    def _begin(self, round_no, now_ms):
        cur, old = self.round, self.previous
        self.previous = cur if cur is not None and cur.round_no == round_no - 1 else None
        # a round nobody needs any more becomes the new one: neither the one still served nor
        # the caller's (`start_round` returned it: a runner one round behind still ends it)
        for spare in (old, cur):
            if spare is not None and spare is not self.previous and spare is not self._held:
                spare.reset(round_no, now_ms)
                break
        else:
            spare = mixer.Round(self.node_id, round_no, self.owners, self.row_size,
                                seed=self.seed, now_ms=now_ms, timeout_ms=self.timeout_ms,
                                like=cur or old)
        self.round = spare
        self.codec.replay.forget_before(round_no - 1)
        return self.round

    # ----- radio side -----

    def on_advert(self, data, now_ms):
        """Feed one advert's data as a scanner delivers it; foreign or bad ones are counted."""
        self.stats["adverts"] += 1
        if self.round is not None:
            p = self.codec.unpack(data, self.round.round_no)
        else:
            p = self.codec.unpack(data, self.round_hint, forward=True)
        if p is None:
            return
        target = self._round(p.round_no)
        if target is None:
            if self.round is not None and p.round_no < self.round.round_no:
                self.codec._reject("stale")
                return
            if not self.auto_join:
                self.codec._reject("future")
                return
            target = self._begin(p.round_no, now_ms)
            self.stats["joined"] += 1
        self.stats["rx"] += 1
        if target.receive(p, now_ms):
            self.stats["innovative"] += 1

    def next_advert(self, now_ms):
        """Advertising data to send next, or None: nothing useful to say (smart shutdown, the
        round's deadline passed, or no round yet)."""
        order = (self.round, self.previous)
        if self._turn and self.previous is not None:
            order = (self.previous, self.round)
        self._turn ^= 1
        for r in order:
            if r is None or r.sent >= _MAX_PACKETS:
                continue
            p = r.next_packet(now_ms)
            if p is not None:
                p.seq = r.sent - 1
                self.stats["tx"] += 1
                return self.codec.pack(p)
        return None
