"""The naive-flooding baseline: same packet format as the link, uncoded rows, bounded repeats."""

from __future__ import annotations

import random

from rocknet_host.runtimes import import_device
from rocknet_host.sim import topology as topo
from rocknet_host.sim.flooding import FloodingEndpoint
from rocknet_host.sim.radio import profile
from rocknet_host.sim.run import Generation, run_rounds

KEY = b"flood key"


def test_flooding_sends_each_row_repeats_times_then_stays_quiet():
    a = FloodingEndpoint(0, KEY, [0, 1, 2], 16, repeats=2)
    b = FloodingEndpoint(1, KEY, [0, 1, 2], 16, repeats=2)
    a.start_round(3, {0: b"A" * 16}, 0)
    b.start_round(3, {1: b"B" * 16}, 0)
    sent = []
    while (adv := a.next_advert(10)) is not None:
        sent.append(adv)
        b.on_advert(adv, 10)
    assert len(sent) == 2 and len(set(sent)) == 2  # same row twice, fresh seq each time
    assert b.rows()[:2] == [b"A" * 16, b"B" * 16] and not b.done
    # b now repeats both rows; the freshest (a's) goes first
    out = [b.next_advert(20) for _ in range(5)]
    assert out[-1] is None and all(x is not None for x in out[:4])
    a.on_advert(out[0], 20)
    assert a.stats["rx"] == 1 and a.stats["innovative"] == 0  # a's own row came back
    a.on_advert(out[1], 20)
    assert a.rows()[1] == b"B" * 16 and a.stats["innovative"] == 1


def test_flooding_packets_are_link_packets():
    sizes = import_device("rocknet.wire_init")
    link = import_device("rocknet.link")
    f = FloodingEndpoint(0, KEY, [0, 1], 20, profile="extended")
    f.start_round(1, {0: bytes(range(20))}, 0)
    adv = f.next_advert(0)
    assert len(adv) == sizes.packet_size(2, 20)
    rx = link.Link(1, KEY, [0, 1], 20, "extended")
    rx.start_round(1, {1: bytes(20)}, 0)
    rx.on_advert(adv, 1)
    assert rx.row(0) == bytes(range(20))  # the coded link decodes a flooding packet
    forged = bytearray(adv)
    forged[-1] ^= 1
    g = FloodingEndpoint(1, KEY, [0, 1], 20)
    g.start_round(1, {}, 0)
    g.on_advert(bytes(forged), 1)
    assert g.rows()[0] is None and g.codec.rejected.get("auth") == 1


def test_flooding_completes_a_lossless_mesh_in_the_simulator():
    n, row = 4, 24
    owners = list(range(n))

    def gen(r: int) -> Generation:
        rng = random.Random(r)
        return Generation(owners, row, [rng.randbytes(row) for _ in owners])

    res = run_rounds(topo.full(n), profile("nrf52840-ext"),
                     lambda i: FloodingEndpoint(i, KEY, owners, row, repeats=3), gen, 2, seed=2)
    assert all(r.complete and r.wrong_rows == 0 for r in res.rounds)
    # no coding, no feedback: each node sends each of the M rows at most `repeats` times
    for r in res.rounds:
        assert all(s.tx_adverts <= 3 * n for s in r.stats)
