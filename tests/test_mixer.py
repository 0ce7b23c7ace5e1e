"""mixer.Round: exact recovery whatever the packet order, duplicates or losses; the transmit
policy (systematic start, requests, smart shutdown, deadline); same results on MicroPython."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rocknet_host.runtimes import import_device

mixer = import_device("rocknet.mixer")


def gf2_rank(vectors: list[int]) -> int:
    """Rank over GF(2), by a different elimination than the mixer's (lowest-bit pivots)."""
    basis: dict[int, int] = {}
    for v in vectors:
        while v:
            low = v & -v
            if low not in basis:
                basis[low] = v
                break
            v ^= basis[low]
    return len(basis)


def xor_rows(rows: list[bytes], cv: int) -> bytes:
    out = bytearray(len(rows[0]))
    for i, r in enumerate(rows):
        if (cv >> i) & 1:
            for k, b in enumerate(r):
                out[k] ^= b
    return bytes(out)


def assert_consistent(rnd, truth: list[bytes]) -> None:
    """Every row the round claims to have decoded is the true row."""
    for i, got in enumerate(rnd.rows()):
        assert got is None or got == truth[i], f"row {i} decoded wrong"


@st.composite
def generations(draw):
    m = draw(st.integers(1, 40))
    p = draw(st.integers(1, 24))
    rows = [draw(st.binary(min_size=p, max_size=p)) for _ in range(m)]
    return m, p, rows


@settings(max_examples=150, deadline=None)
@given(gen=generations(), data=st.data())
def test_any_packets_decode_exactly(gen, data):
    """Random coded packets in any order, with duplicates, zero vectors and losses: the rank is
    the true GF(2) rank of what arrived, decoded rows are always right, full rank = all rows."""
    m, p, truth = gen
    cvs = data.draw(st.lists(st.integers(0, (1 << m) - 1), min_size=1, max_size=3 * m + 6))
    cvs += data.draw(st.lists(st.sampled_from(cvs), max_size=m))  # duplicates
    order = data.draw(st.permutations(cvs))
    rnd = mixer.Round(node_id=200, round_no=3, owners=list(range(m)), row_size=p)
    seen: list[int] = []
    for cv in order:
        pkt = mixer.Packet(3, 1, 0, cv, 0, xor_rows(truth, cv))
        innovative = rnd.receive(pkt, now_ms=0)
        before = gf2_rank(seen)
        seen.append(cv)
        assert innovative == (gf2_rank(seen) > before)
        assert rnd.rank == gf2_rank(seen)
        assert_consistent(rnd, truth)
    if rnd.full_rank:
        assert rnd.rows() == truth
    # Complete it with the unit vectors it misses: it must then hold exactly the truth.
    for i in range(m):
        rnd.receive(mixer.Packet(3, 1, 0, 1 << i, 0, truth[i]), now_ms=0)
    assert rnd.full_rank and rnd.rows() == truth


def run_fleet(owners, truth, loss, rng, steps=4000, now_step=10):
    """Rounds exchange packets over a lossy full mesh, random speaking order, duplicates."""
    nodes = sorted(set(owners))
    rounds = {n: mixer.Round(n, 9, owners, len(truth[0]), seed=n) for n in nodes}
    for n, r in rounds.items():
        r.add_own_rows({i: truth[i] for i, o in enumerate(owners) if o == n})
    now = 0
    sent = 0
    for _ in range(steps):
        now += now_step
        speaker = rng.choice(nodes)
        pkt = rounds[speaker].next_packet(now)
        if pkt is None:
            if all(r.full_rank for r in rounds.values()):
                break
            continue
        sent += 1
        copies = 2 if rng.random() < 0.2 else 1  # the same advert heard twice
        for n, r in rounds.items():
            if n != speaker and rng.random() >= loss:
                for _ in range(copies):
                    r.receive(pkt, now)
                assert_consistent(r, truth)
    return rounds, sent


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 8), extra=st.integers(0, 6), p=st.integers(1, 40),
    loss=st.floats(0.0, 0.7), seed=st.integers(0, 2**32 - 1),
)
def test_fleet_recovers_every_row(n, extra, p, loss, seed):
    rng = random.Random(seed)
    owners = list(range(n)) + [rng.randrange(n) for _ in range(extra)]
    rng.shuffle(owners)
    truth = [rng.randbytes(p) for _ in owners]
    rounds, _ = run_fleet(owners, truth, loss, rng)
    for r in rounds.values():
        assert r.full_rank
        assert r.rows() == truth


def test_a_round_keeps_its_rows_in_storage_made_with_it():
    """Coding vectors and payloads live in an array and a bytearray the round makes once (a
    slot per row, one for the freshest packet): packets are taken in place, so a board's heap
    between rounds does not depend on what a round heard. 40 rows: vectors above 2**30 too."""
    rng = random.Random(3)
    m, p = 40, 9
    truth = [rng.randbytes(p) for _ in range(m)]
    r = mixer.Round(1, 5, list(range(m)), p)
    cv, pl = r._cv, r._pl
    sizes = (len(cv), len(pl))
    assert sizes == (m + 1, (m + 1) * p)
    while not r.full_rank:
        v = rng.getrandbits(m) | 1 << rng.randrange(30, m)
        r.receive(mixer.Packet(5, 2, 0, v, 0, xor_rows(truth, v)), 0)
    assert r._cv is cv and r._pl is pl and (len(cv), len(pl)) == sizes
    assert r.rows() == truth


def test_systematic_start_sends_own_rows_uncoded_first():
    owners = [0, 1, 1, 2, 1]
    rnd = mixer.Round(1, 0, owners, 4)
    rnd.add_own_rows({4: b"dddd", 1: b"bbbb", 2: b"cc"})
    first = [rnd.next_packet(t) for t in (1, 2, 3)]
    assert [p.cv for p in first] == [1 << 1, 1 << 2, 1 << 4]
    assert [p.payload for p in first] == [b"bbbb", b"cc\0\0", b"dddd"]
    assert all(p.sender == 1 and p.round_no == 0 for p in first)


def test_request_is_answered_with_an_innovative_packet():
    m = 12
    owners = [0] * (m - 1) + [1]
    truth = [bytes([i]) * 5 for i in range(m)]
    helper = mixer.Round(2, 1, owners, 5)  # a helper that has heard every row
    for i in range(m):
        helper.receive(mixer.Packet(1, 0, 0, 1 << i, 0, truth[i]), 0)
    asker = mixer.Round(1, 1, owners, 5)
    rng = random.Random(4)
    while asker.rank < m - 3:  # random combos until three rows are missing
        cv = rng.randrange(1, 1 << m)
        asker.receive(mixer.Packet(1, 0, 0, cv, 0, xor_rows(truth, cv)), 0)
    answers = 0
    for t in range(200, 210):
        req = asker.next_packet(t)
        assert req.flags & mixer.INFO_MASK == mixer.INFO_REQUEST
        assert req.info == asker.missing_mask()
        assert bin(req.info).count("1") == m - asker.rank
        helper.receive(req, t)
        answer = helper.next_packet(t)
        assert answer.cv and answer.cv & ~req.info == 0  # only rows that were asked for
        assert asker.receive(answer, t)  # ... so it is innovative for the asker
        answers += 1
        if asker.full_rank:
            break
    assert asker.full_rank and asker.rows() == truth and answers <= 3


def test_smart_shutdown_quiet_when_done_and_wakes_for_unfinished_neighbour():
    owners = [0, 1]
    a = mixer.Round(0, 5, owners, 3)
    b = mixer.Round(1, 5, owners, 3)
    a.add_own_rows({0: b"aaa"})
    b.add_own_rows({1: b"bbb"})
    t = 0
    while not (a.full_rank and b.full_rank):
        t += 1
        for x, y in ((a, b), (b, a)):
            p = x.next_packet(t)
            if p is not None:
                y.receive(p, t)
    quiet_at = None
    start = t
    for t in range(start + 1, start + 20):  # both learn the other is done, linger, then go quiet
        pa, pb = a.next_packet(t), b.next_packet(t)
        for p, r in ((pa, b), (pb, a)):
            if p is not None:
                assert p.flags & mixer.FLAG_FULL_RANK
                r.receive(p, t)
        if pa is None and pb is None:
            quiet_at = t
            break
    assert quiet_at is not None
    assert a._finished == 0b11  # a knows both nodes are full rank
    # A third node that is not finished speaks up: a wakes up and helps it.
    a.receive(mixer.Packet(5, 7, mixer.INFO_REQUEST, 0, 0b11, b"\0\0\0"), quiet_at + 1)
    p = a.next_packet(quiet_at + 2)
    assert p is not None and p.cv and not p.cv & ~0b11
    # Once the stranger has been silent for the neighbour TTL, a goes quiet again.
    late = quiet_at + 10_000
    assert [a.next_packet(late + k) for k in range(4)][-1] is None


def test_a_done_node_speaks_up_when_a_map_does_not_know_it_is_done():
    owners = [0, 1]
    a = mixer.Round(0, 5, owners, 1)
    a.add_own_rows({0: b"a"})
    a.receive(mixer.Packet(5, 1, mixer.FLAG_FULL_RANK | mixer.INFO_FULL_MAP, 2, 0b10, b"b"), 1)
    sent = [a.next_packet(t) for t in range(2, 8)]
    assert sent[-1] is None  # own row, linger, then quiet: b is known to be done
    # b's map still lacks a: a tells it once more, then goes quiet again.
    a.receive(mixer.Packet(5, 1, mixer.FLAG_FULL_RANK | mixer.INFO_FULL_MAP, 1, 0b10, b"b"), 9)
    again = a.next_packet(10)
    assert again is not None and again.flags & mixer.FLAG_FULL_RANK and again.info == 0b11
    assert a.next_packet(11) is None


def test_deadline_silences_the_round():
    r = mixer.Round(0, 0, [0, 1], 2, now_ms=1000, timeout_ms=500)
    r.add_own_rows({0: b"xy"})
    assert r.deadline_ms == 1500
    assert r.next_packet(1499) is not None
    assert r.next_packet(1500) is None


def test_other_rounds_and_bad_packets_are_ignored():
    r = mixer.Round(0, 4, [0, 1, 2], 2)
    assert not r.receive(mixer.Packet(5, 1, 0, 1, 0, b"zz"), 0)  # another round
    assert not r.receive(mixer.Packet(4, 1, 0, 1 << 3, 0, b"zz"), 0)  # row outside M
    assert not r.receive(mixer.Packet(4, 1, 0, 1, 0, b"zzz"), 0)  # wrong row size
    assert r.rank == 0 and r.received == 0


def test_bad_own_rows_raise_actionable_errors():
    r = mixer.Round(0, 0, [0, 1], 2)
    with pytest.raises(ValueError, match="row index 5"):
        r.add_own_rows({5: b"ab"})
    with pytest.raises(ValueError, match="row_size is 2"):
        r.add_own_rows({0: b"abc"})
    with pytest.raises(ValueError, match="1..64 rows"):
        mixer.Round(0, 0, [], 2)


SCENARIO = """
from rocknet import mixer
def _scenario(n_nodes, extra, p, loss_pct, seed):
    rng = mixer.Rng(seed)
    owners = list(range(n_nodes)) + [rng.below(n_nodes) for _ in range(extra)]
    truth = [bytes([rng.below(256) for _ in range(p)]) for _ in owners]
    rounds = [mixer.Round(n, 2, owners, p, seed=n + 7) for n in range(n_nodes)]
    for n in range(n_nodes):
        rounds[n].add_own_rows({i: truth[i] for i in range(len(owners)) if owners[i] == n})
    now = 0
    trace = 0
    while now < 3000 and not all(r.full_rank for r in rounds):
        now += 10
        s = rng.below(n_nodes)
        pkt = rounds[s].next_packet(now)
        if pkt is None:
            continue
        trace = (trace * 31 + pkt.cv * 7 + pkt.info + pkt.flags + pkt.payload[0]) % 1000000007
        for k in range(n_nodes):
            if k != s and rng.below(100) >= loss_pct:
                rounds[k].receive(pkt, now)
    rows_ok = all(r.rows() == truth for r in rounds)
    return [now, trace, rows_ok, [r.sent for r in rounds], [r.innovative for r in rounds],
            [r.received for r in rounds], rounds[0].rows()]
"""


@pytest.mark.parametrize("case", [(5, 3, 16, 30, 11), (10, 14, 48, 10, 12), (3, 0, 1, 60, 13)])
def test_same_results_on_micropython_as_on_cpython(device, case):
    """The same seeded scenario on the device runtime and in this CPython: identical packets
    (trace), packet counts and decoded rows."""
    host: dict = {}
    exec(SCENARIO, host)
    expected = host["_scenario"](*case)
    device.exec(SCENARIO)
    got = device.eval("_scenario({}, {}, {}, {}, {})".format(*case))
    assert expected[2] is True  # everyone decoded everything
    assert got == expected
