"""Naive flooding: the baseline the coded protocol is compared with, in the same simulator.

Every node rebroadcasts every row it has, uncoded, `repeats` times each (freshest first, then
round-robin), and stays quiet once it has nothing left to repeat. There is no feedback, no
coding and no shutdown logic beyond that. Packets use the same wire format as the Mixer link
(`rocknet.wire`: same header, coding vector = a unit vector, same HMAC tag, same size), so
airtime, processing and authentication cost are identical and only the policy differs.

Same endpoint interface as `rocknet.link.Link`: start_round, on_advert, next_advert, done,
rows(), stats.
"""

from __future__ import annotations

from typing import Any

from ..runtimes import import_device


class _FloodRound:
    def __init__(self, round_no: int, m: int, now_ms: int, timeout_ms: int) -> None:
        self.round_no = round_no
        self.rows: dict[int, bytes] = {}
        self.sends: dict[int, int] = {}  # row -> times sent
        self.order: list[int] = []  # rows in the order learnt (freshest last)
        self.deadline_ms = now_ms + timeout_ms
        self.sent = 0
        self.m = m

    def learn(self, i: int, payload: bytes) -> bool:
        if i in self.rows:
            return False
        self.rows[i] = payload
        self.sends[i] = 0
        self.order.append(i)
        return True


class FloodingEndpoint:
    """One node of a naive flood with the Mixer link's packet format and interface."""

    def __init__(self, node_id: int, key: bytes, owners: list[int], row_size: int,
                 profile: str = "extended", company_id: int = 0xFFFF, network_id: int = 0,
                 repeats: int = 1, timeout_ms: int = 5000, seed: int | None = None) -> None:
        wire = import_device("rocknet.wire")
        self._mixer = import_device("rocknet.mixer")
        self.node_id = node_id
        self.owners = list(owners)
        self.m = len(self.owners)
        self.row_size = row_size
        self.repeats = max(1, repeats)
        self.timeout_ms = timeout_ms
        self.codec = wire.Codec(key, self.m, row_size, profile, company_id, network_id)
        self._max_packets = wire.MAX_SEQ + 1
        self.round: _FloodRound | None = None
        self.stats: dict[str, Any] = {"adverts": 0, "rx": 0, "innovative": 0, "tx": 0,
                                      "joined": 0, "rejected": self.codec.rejected}

    @property
    def round_no(self) -> int | None:
        return self.round.round_no if self.round is not None else None

    @property
    def done(self) -> bool:
        return self.round is not None and len(self.round.rows) == self.m

    def rows(self) -> list[bytes | None]:
        if self.round is None:
            return [None] * self.m
        return [self.round.rows.get(i) for i in range(self.m)]

    def start_round(self, round_no: int, own_rows: dict[int, bytes] | None = None,
                    now_ms: int = 0) -> None:
        if self.round is None or self.round.round_no != round_no:
            if self.round is not None and round_no < self.round.round_no:
                raise ValueError(f"round {round_no} is older than the current round")
            self.round = _FloodRound(round_no, self.m, now_ms, self.timeout_ms)
        for i, data in sorted((own_rows or {}).items()):
            self.round.learn(i, bytes(data) + bytes(self.row_size - len(data)))

    def on_advert(self, data: bytes, now_ms: int) -> None:
        self.stats["adverts"] += 1
        ref = self.round.round_no if self.round is not None else 0
        p = self.codec.unpack(data, ref)
        if p is None:
            return
        if self.round is None or p.round_no > self.round.round_no:
            self.round = _FloodRound(p.round_no, self.m, now_ms, self.timeout_ms)
            self.stats["joined"] += 1
        elif p.round_no < self.round.round_no:
            return
        self.stats["rx"] += 1
        cv = p.cv
        if cv & (cv - 1) or not cv:
            return  # not a single uncoded row
        if self.round.learn(cv.bit_length() - 1, bytes(p.payload)):
            self.stats["innovative"] += 1

    def next_advert(self, now_ms: int) -> bytes | None:
        r = self.round
        if r is None or now_ms >= r.deadline_ms or r.sent >= self._max_packets:
            return None
        best = None
        for i in reversed(r.order):  # fewest sends wins; among equals the freshest
            if r.sends[i] < self.repeats and (best is None or r.sends[i] < r.sends[best]):
                best = i
        if best is None:
            return None
        r.sends[best] += 1
        full = self._mixer.FLAG_FULL_RANK if len(r.rows) == self.m else 0
        p = self._mixer.Packet(r.round_no, self.node_id, full, 1 << best, 0, r.rows[best],
                               r.sent)
        r.sent += 1
        self.stats["tx"] += 1
        return bytes(self.codec.pack(p))
