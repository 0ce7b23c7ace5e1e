"""The BLE advertising simulator: timing, collisions, loss, faults, energy, determinism."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rocknet_host import boards
from rocknet_host.runtimes import import_device
from rocknet_host.sim import phy
from rocknet_host.sim import topology as topo
from rocknet_host.sim.energy import DEFAULT, CurrentModel, current_model
from rocknet_host.sim.medium import Medium
from rocknet_host.sim.radio import PROFILES, plan_event, profile
from rocknet_host.sim.run import Fault, Generation, run_rounds

KEY = b"test fleet key"


class Recorder:
    """A silent endpoint that keeps what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[bytes, int]] = []

    def on_advert(self, data: bytes, now_ms: int) -> None:
        self.heard.append((data, now_ms))

    def next_advert(self, now_ms: int) -> bytes | None:
        return None


def adv(tag: int, size: int = 20) -> bytes:
    body = bytes((0xFF, 0xFF, 0xFF, tag)) + bytes(size - 5)
    return bytes((len(body),)) + body


def link_run(n: int, kind: str = "full", loss: float = 0.0, rounds: int = 3, seed: int = 1,
             faults: tuple[Fault, ...] = (), pcap=None, deadline_s: float = 1.0,
             radio: str = "nrf52840-ext"):
    link = import_device("rocknet.link")
    owners = [0] + list(range(n))
    row = 48

    def gen(r: int) -> Generation:
        rng = random.Random(r)
        return Generation([r % n] + list(range(n)), row, [rng.randbytes(row) for _ in owners])

    boots: dict[int, int] = {}

    def factory(i: int):  # called again when a node reboots: a new boot salt, as on a board
        boots[i] = boots.get(i, -1) + 1
        return link.Link(i, KEY, owners, row, "extended", seed=i + 1, timeout_ms=1000,
                         boot=(i + 1) << 8 | boots[i])

    t = topo.build(kind, n, hops=None if kind == "full" else 3, loss=loss)
    return run_rounds(t, profile(radio), factory, gen, rounds, seed=seed, faults=faults,
                      pcap_path=pcap, deadline_s=deadline_s)


# ----- PHY and airtime -----


def test_airtime_matches_the_spec_figures():
    # legacy ADV_NONCONN_IND with 31 bytes of AdvData: 2 + 6 + 31 PDU bytes -> 376 us at 1M
    assert phy.airtime_us(2 + 6 + 31, 1) == 376
    # 2M: 2-byte preamble, 4 us per byte
    assert phy.airtime_us(2 + 100, 2) == (2 + 4 + 102 + 3) * 4
    legacy = plan_event(profile("nrf52840-legacy"), adv(1, 31))
    assert [p[2] for p in legacy.pdus] == [37, 38, 39]
    assert all(p[1] == 376 for p in legacy.pdus)
    ext = plan_event(profile("nrf52840-ext"), adv(1, 200), aux_channel=9)
    kinds = [p[3] for p in ext.pdus]
    assert kinds == ["ext", "ext", "ext", "aux"]
    aux = ext.pdus[-1]
    assert aux[2] == 9 and aux[1] == phy.airtime_us(2 + 10 + 200, 2)
    assert aux[0] >= ext.pdus[2][0] + ext.pdus[2][1] + phy.T_MAFS_US
    with pytest.raises(ValueError, match="extended"):
        plan_event(profile("nrf52840-legacy"), adv(1, 40))


def test_long_adverts_chain_and_every_fragment_fits():
    frags = phy.split_adv_data(bytes(254))
    assert len(frags) == 2 and sum(map(len, frags)) == 254
    ext = plan_event(profile("nrf52840-ext"), bytes(254))
    assert [p[3] for p in ext.pdus].count("aux") == 2


def test_crc_matches_a_bitwise_reference():
    def reference(data: bytes) -> bytes:  # MSB-first register, bytes bit-reversed on output
        crc = 0x555555
        for byte in data:
            for i in range(8):
                top = (crc >> 23) & 1
                crc = (crc << 1) & 0xFFFFFF
                if ((byte >> i) & 1) ^ top:
                    crc ^= 0x65B
        return bytes(int(f"{(crc >> s) & 0xFF:08b}"[::-1], 2) for s in (16, 8, 0))

    rng = random.Random(0)
    for size in (2, 9, 39, 257):
        data = rng.randbytes(size)
        assert phy.crc24(data) == reference(data)


# ----- collisions, half duplex, loss -----


def _scanners(n: int, loss: float = 0.0, seed: int = 0, **over):
    model = profile("esp32-legacy").with_overrides(clock_drift_ppm=0.0, **over)
    m = Medium(topo.full(n, loss), model, seed=seed, record=True)
    eps = [Recorder() for _ in range(n)]
    for ep in eps:
        m.add_node(ep)
    return m, eps


def test_overlapping_adverts_collide_and_separate_ones_arrive():
    m, eps = _scanners(3)
    m.send(0, adv(1), 5_000)
    m.send(1, adv(2), 5_000)  # same instant, same channels: destroyed at node 2
    m.send(0, adv(3), 40_000)
    m.send(1, adv(4), 40_000 + 150)  # partial overlap (a PDU lasts 288 us)
    m.send(0, adv(5), 80_000)  # alone
    m.run(200_000)
    heard = [d[4] for d, _ in eps[2].heard]
    assert heard == [5]
    assert m.nodes[2].stats.rx_collisions >= 4
    # half duplex: while node 0 transmits it cannot hear node 1's simultaneous advert
    assert all(d[4] != 2 for d, _ in eps[0].heard)
    assert m.nodes[0].stats.tx_events == 3 and m.nodes[0].stats.tx_pdus == 9


def test_link_loss_rate_is_applied_per_packet():
    m, eps = _scanners(2, loss=0.3, seed=3)
    for k in range(600):
        m.send(0, adv(k % 256), 10_000 + k * 30_000)
    m.run(10_000 + 600 * 30_000 + 50_000)
    st = m.nodes[1].stats
    tried = st.rx_lost + st.rx_pdus
    assert tried >= 550
    assert abs(st.rx_lost / tried - 0.3) < 5 * np.sqrt(0.21 / tried)
    assert st.rx_delivered == st.rx_pdus  # everything that arrived was handed to the endpoint


def test_out_of_range_nodes_never_hear_each_other():
    t = topo.line(3)  # 0 - 1 - 2
    m = Medium(t, profile("esp32-legacy"), seed=0)
    eps = [Recorder() for _ in range(3)]
    for ep in eps:
        m.add_node(ep)
    for k in range(20):
        m.send(0, adv(k), 1_000 + 25_000 * k)
    m.run(600_000)
    assert eps[1].heard and not eps[2].heard


def test_busy_cpu_fills_the_scan_buffer_and_drops():
    m, eps = _scanners(6, proc_ms=40.0, rx_buffer_bytes=200)
    for k in range(200):
        m.send(k % 5, adv(k % 256), 2_000 + k * 1_500 + (k % 5) * 400)
    m.run(2_000_000)
    st = m.nodes[5].stats
    assert st.rx_dropped > 0
    assert st.rx_delivered == st.rx_adverts  # buffered ones are all processed eventually
    assert st.cpu_us >= st.rx_delivered * 40_000 * 0.99


def test_alternating_node_does_not_scan_while_advertising():
    r = link_run(4, rounds=2)
    for rnd in r.rounds:
        for s in rnd.stats:
            # radio time in RX and TX never exceeds the time alive; scanning has gaps
            assert s.rx_us + s.tx_us <= s.alive_us
            assert s.rx_us < s.alive_us


# ----- rounds, determinism, faults -----


def test_same_seed_same_trace_other_seed_other_trace(tmp_path):
    a, b, c = (tmp_path / f"{k}.pcap" for k in "abc")
    ra = link_run(4, loss=0.1, rounds=2, seed=5, pcap=a)
    rb = link_run(4, loss=0.1, rounds=2, seed=5, pcap=b)
    link_run(4, loss=0.1, rounds=2, seed=6, pcap=c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert [x.stats for x in ra.rounds] == [x.stats for x in rb.rounds]
    assert [x.done_s for x in ra.rounds] == [x.done_s for x in rb.rounds]


def test_rounds_complete_in_a_lossless_full_mesh_and_rows_are_exact():
    r = link_run(5, rounds=3)
    assert all(x.complete and x.wrong_rows == 0 for x in r.rounds)
    assert all(0 < x.duration_s < 1.0 for x in r.rounds)
    # every node took in at least the information lower bound of innovative packets
    for x in r.rounds:
        assert all(v is not None and v >= 6 - 2 for v in x.innovative)


def test_multi_hop_line_completes_and_reports_hops():
    r = link_run(6, kind="line", rounds=2)
    assert r.topology.diameter == 3
    assert all(x.complete for x in r.rounds)


def test_crash_stops_a_node_and_reboot_brings_it_back():
    n = 4
    faults = (Fault(0.0, 3, "crash"), Fault(2.3, 3, "reboot"))
    r = link_run(n, rounds=5, faults=faults)
    first, later = r.rounds[0], r.rounds[-1]
    assert not first.alive[3] and first.stats[3].tx_events == 0
    # node 3 owned a row nobody else has: the live nodes cannot finish without it
    assert not first.complete and all(d is None for d in first.done_s[:3])
    assert later.alive[3] and later.complete
    assert sum(x.stats[3].reboots for x in r.rounds) == 1
    assert sum(x.stats[3].crashes for x in r.rounds) == 1
    down = first.stats[3].alive_us
    assert down == 0 and first.energy_mj[3] == 0.0


def test_clock_drift_gives_each_node_its_own_time():
    model = profile("nrf52840-ext").with_overrides(clock_drift_ppm=100.0)
    m = Medium(topo.full(3), model, seed=2)
    nodes = [m.add_node(Recorder()) for _ in range(3)]
    assert len({nd.ppm for nd in nodes}) == 3
    assert all(abs(nd.ppm) <= 100.0 for nd in nodes)
    # a second of global time is a second +- drift on each node's clock
    for nd in nodes:
        assert abs((nd.local_us(1_000_000) - nd.local_us(0)) - 1_000_000) <= 101
    still = Medium(topo.full(2), model.with_overrides(clock_drift_ppm=0.0), seed=2)
    assert all(still.add_node(Recorder()).ppm == 0.0 for _ in range(2))


# ----- energy -----


def test_energy_is_the_current_model_over_measured_times():
    cur = CurrentModel(voltage_v=3.0, tx_ma=10.0, rx_ma=5.0, cpu_ma=2.0, sleep_ma=0.1)
    # 1 ms TX, 10 ms RX, 2 ms CPU, 100 ms in all: the rest (87 ms) at sleep current
    assert cur.energy_mj(0.001, 0.010, 0.002, 0.100) == pytest.approx(
        3.0 * (10 * 0.001 + 5 * 0.010 + 2 * 0.002 + 0.1 * 0.087))
    r = link_run(4, rounds=2)
    model = r.model
    for x in r.rounds:
        for s, e in zip(x.stats, x.energy_mj, strict=True):
            assert s.tx_us == s.airtime_us + s.tx_pdus * model.ramp_us
            assert e == pytest.approx(DEFAULT.energy_mj(
                s.tx_us / 1e6, s.rx_us / 1e6, s.cpu_us / 1e6, s.alive_us / 1e6))
            assert e > DEFAULT.voltage_v * DEFAULT.sleep_ma * s.alive_us / 1e6


def test_board_current_draw_comes_from_the_board_file(tmp_path):
    for name, model in PROFILES.items():
        cur, pw = current_model(model.board), boards.load(model.board).power
        assert (cur.voltage_v, cur.tx_ma, cur.rx_ma, cur.cpu_ma, cur.sleep_ma) == (
            pw.voltage_v, pw.tx_ma, pw.rx_ma, pw.cpu_ma, pw.sleep_ma), name
        assert cur.source == f"{model.board}.toml [power]"
    assert current_model(None) == DEFAULT
    (tmp_path / "broken.toml").write_text("this is = = not toml")
    with pytest.raises(boards.BoardError, match="not valid TOML"):
        current_model("broken", tmp_path)
    with pytest.raises(boards.BoardError, match="unknown board 'missing'"):
        current_model("missing", tmp_path)


# ----- topologies -----


@pytest.mark.parametrize("kind", ["line", "grid", "random"])
@pytest.mark.parametrize("n", [5, 10, 20])
def test_multi_hop_builders_reach_the_asked_diameter(kind, n):
    t = topo.build(kind, n, hops=3, loss=0.1, seed=1)
    assert t.connected and t.diameter == 3
    links = t.loss[t.loss < topo.NO_LINK]
    assert np.allclose(links, 0.1)
    assert np.all(np.diag(t.loss) == topo.NO_LINK)


def test_hop_counts_and_matrix_files(tmp_path):
    t = topo.line(4)
    assert t.hops[0].tolist() == [0, 1, 2, 3] and t.diameter == 3
    assert topo.full(5).diameter == 1
    (tmp_path / "m.txt").write_text("# measured\n1 0.2 1\n0.2 1 0.5\n1 0.5 1\n")
    (tmp_path / "m.json").write_text('{"loss": [[1, 0.1], [0.3, 1]]}')
    m = topo.build("matrix", 0, path=tmp_path / "m.txt")
    assert m.n == 3 and m.hops[0, 2] == 2 and m.loss[1, 2] == 0.5
    assert topo.from_file(tmp_path / "m.json").loss[1, 0] == 0.3
    with pytest.raises(ValueError, match="square"):
        topo.Topology("matrix", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="choose one of"):
        topo.build("ring", 4)
    assert topo.Topology("matrix", np.ones((3, 3))).diameter == -1


def test_bleio_profiles_follow_the_adapter_defaults():
    import inspect

    bleio = import_device("rocknet.radio.bleio")
    d = {k: p.default for k, p in inspect.signature(bleio.BleioRadio.__init__).parameters.items()}
    m = profile("nrf52840-ext-bleio")
    assert m.burst_ms == d["burst_ms"] and m.scan_ms == d["scan_ms"]
    assert m.scan_jitter_ms == d["jitter_ms"] and m.adv_interval_ms == d["interval"] * 1000
    assert m.alternate and m.extended and "BleioRadio" in m.adapter
    esp = profile("esp32-legacy")
    assert not esp.alternate and not esp.extended and esp.rx_buffer_entries > 0


def test_a_burst_too_short_for_any_event_sends_nothing():
    model = profile("esp32-legacy").with_overrides(burst_ms=0.5, adv_start_ms=1.0,
                                                   clock_drift_ppm=0.0)

    class Talker(Recorder):
        def next_advert(self, now_ms: int) -> bytes | None:
            return adv(1)

    m = Medium(topo.full(2), model, seed=0)
    m.add_node(Talker())
    m.add_node(Recorder())
    m.run(500_000)
    st = m.nodes[0].stats
    assert st.tx_adverts > 10 and st.tx_events == 0 and st.tx_pdus == 0
