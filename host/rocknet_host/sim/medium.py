"""Discrete-event model of a fleet advertising and scanning (deterministic for a seed).

Each node runs an endpoint (anything with ``on_advert(data, now_ms)`` and
``next_advert(now_ms) -> bytes | None``) behind a model of its radio adapter (radio.RadioModel):

- Advertising events: advInterval + advDelay (uniform 0-10 ms), the three primary channels in
  turn; extended adverts add an AUX_ADV_IND (and AUX_CHAIN_IND fragments) on a random
  secondary channel at 1M or 2M.
- Scanning: one primary channel at a time, the next one every scan interval, listening for the
  scan window. A scanner that catches an ADV_EXT_IND follows its AuxPtr (leaving the primary
  channel until the AUX ends).
- Half duplex: no reception while transmitting. Alternate mode (nRF52840 CircuitPython):
  advertise bursts and scan phases alternate, with a turnaround; concurrent mode (ESP32): the
  controller scans between its own advertising events.
- Reception: the receiver must listen on the PDU's channel for its whole airtime; any overlap
  with another PDU that the receiver can hear on the same channel destroys both (no capture);
  then the link loss (topology) drops a data-carrying PDU with its probability (ADV_EXT_IND
  headers are short and only subject to collisions).
- The board: received adverts enter a ring buffer of limited bytes (full = dropped) and a
  single CPU serves them one at a time (proc_ms each) before the endpoint sees them; preparing
  an advert (next_advert) costs prep_ms on the same CPU.
- Clocks: each node has an offset and a drift (ppm); its intervals and its now_ms are local.
- Faults: crash (node silent, state lost) and reboot (a fresh endpoint from the owner).

Time is integer microseconds. Every random choice comes from a per-node stream seeded by
(seed, purpose, node), so runs repeat exactly.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import phy
from .radio import EventPlan, RadioModel, plan_event
from .topology import NO_LINK, Topology


class Endpoint(Protocol):
    def on_advert(self, data: bytes, now_ms: int) -> None: ...

    def next_advert(self, now_ms: int) -> bytes | None: ...


@dataclass
class NodeStats:
    """Counters and time totals of one node (times in microseconds)."""

    tx_adverts: int = 0  # next_advert() answers that went on air
    tx_events: int = 0  # advertising events (one advert on all three primaries)
    tx_pdus: int = 0
    airtime_us: int = 0  # time on air (sum of PDU airtimes)
    tx_us: int = 0  # radio in TX (airtime + ramp-up)
    rx_us: int = 0  # radio in RX (scan windows, following AUX pointers)
    cpu_us: int = 0
    work_us: int = 0  # part of cpu_us reported by the driver's work_ms hook
    alive_us: int = 0
    rx_pdus: int = 0  # PDUs received intact
    rx_adverts: int = 0  # complete adverts put into the scan buffer
    rx_delivered: int = 0  # adverts handed to the endpoint (on_advert calls)
    rx_collisions: int = 0  # receptions destroyed by an overlapping PDU
    rx_lost: int = 0  # receptions dropped by link loss
    rx_aborted: int = 0  # receptions cut by the receiver's own retune / TX / scan stop
    rx_dropped: int = 0  # complete adverts dropped: scan buffer full
    crashes: int = 0
    reboots: int = 0

    def minus(self, other: NodeStats) -> NodeStats:
        return NodeStats(**{k: v - getattr(other, k) for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class TxRecord:
    """One PDU on air, enough to rebuild its bytes (pcap) and compare traces."""

    t_us: int
    sender: int
    channel: int
    kind: str  # 'adv' | 'ext' | 'aux'
    phy_rate: int  # on-air rate of an 'aux' PDU; for 'ext' the AUX PHY its AuxPtr names
    did: int
    data: bytes  # AdvData of this PDU (empty for 'ext')
    aux_channel: int = -1
    aux_offset_us: int = 0
    first: bool = True  # 'aux': AUX_ADV_IND (True) or AUX_CHAIN_IND
    next_offset_us: int = -1  # 'aux': offset to the next chain fragment, -1 = last

    def pdu(self) -> bytes:
        addr = phy.node_address(self.sender)
        if self.kind == "adv":
            return phy.legacy_pdu(addr, self.data)
        if self.kind == "ext":
            return phy.ext_ind_pdu(self.did, self.aux_channel, self.aux_offset_us, self.phy_rate)
        nxt = None if self.next_offset_us < 0 else (self.channel, self.next_offset_us,
                                                    self.phy_rate)
        return phy.aux_pdu(addr if self.first else None, self.did, self.data, nxt)


class _Pdu:
    __slots__ = ("sender", "channel", "start", "end", "kind", "event", "index", "last",
                 "receivers")

    def __init__(self, sender: int, channel: int, start: int, end: int, kind: str,
                 event: _AdvEvent, index: int, last: bool) -> None:
        self.sender = sender
        self.channel = channel
        self.start = start
        self.end = end
        self.kind = kind
        self.event = event
        self.index = index  # data fragment index for 'aux'
        self.last = last  # last data-carrying PDU of the event
        self.receivers: list[SimNode] = []


class _AdvEvent:
    __slots__ = ("sender", "data", "plan", "did", "aux_channel", "start")

    def __init__(self, sender: int, data: bytes, plan: EventPlan, did: int, aux_channel: int,
                 start: int) -> None:
        self.sender = sender
        self.data = data
        self.plan = plan
        self.did = did
        self.aux_channel = aux_channel
        self.start = start


@dataclass
class SimNode:
    id: int
    endpoint: Any
    ppm: float
    offset_us: int
    rng: random.Random  # MAC choices: advDelay, secondary channel
    loss_rng: random.Random  # link-loss draws at this receiver
    stats: NodeStats = field(default_factory=NodeStats)
    alive: bool = True
    epoch: int = 0  # bumped by crash/reboot: stale scheduled callbacks are ignored
    scan_gen: int = 0  # bumped when a scan phase ends: stale scan ticks are ignored
    adv_gen: int = 0  # bumped when the advertising loop is restarted early
    scan_on: bool = False
    window_open: bool = False
    scan_ch: int = 37
    tx_on: bool = False
    in_burst: bool = False
    quiet: bool = False
    listen: int | None = None
    lock: _Pdu | None = None
    lock_bad: bool = False
    follow: _AdvEvent | None = None
    rx_since: int | None = None
    rxq: deque[bytes] = field(default_factory=deque)
    rxq_bytes: int = 0
    cpu_busy: bool = False
    cpu_rx: bool = False  # the CPU job in progress is a received advert
    prep_pending: bool = False
    alive_since: int = 0
    did: int = 0
    # driven mode (sim.fleet): the node's own adapter code starts and stops its radio
    driven: bool = False
    adv_data: bytes = b""
    adv_interval_ms: float = 0.0
    scan_interval_ms: float | None = None  # None: the model's
    scan_window_ms: float | None = None
    rx_cap: int = 0  # scan buffer bytes (0: unbounded; the adapter bounds its own inbox)
    rx_log: list[tuple[int, bytes]] = field(default_factory=list)  # (local us, advert)

    def local_us(self, t_us: int) -> int:
        return self.offset_us + t_us + int(t_us * self.ppm * 1e-6)

    def now_ms(self, t_us: int) -> int:
        return self.local_us(t_us) // 1000

    def dur(self, local_ms: float) -> int:
        """A duration measured by this node's clock, in global microseconds."""
        return round(local_ms * self.us_per_local_ms)

    @property
    def us_per_local_ms(self) -> float:
        return 1000.0 / (1.0 + self.ppm * 1e-6)


class Medium:
    """The fleet on one shared medium. Add nodes, then `run(until_us)`; read `nodes[i].stats`."""

    def __init__(self, topology: Topology, model: RadioModel, seed: int = 0,
                 record: bool = False) -> None:
        self.topology = topology
        self.model = model
        self.seed = seed
        self.now = 0
        self.nodes: list[SimNode] = []
        self.trace: list[TxRecord] | None = [] if record else None
        self._heap: list[tuple[int, int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._air: dict[int, list[_Pdu]] = {}
        self._loss: list[list[float]] = topology.loss.tolist()  # [sender][receiver]
        self._audible = [[p < NO_LINK for p in row] for row in self._loss]
        self._hearers = [topology.neighbours(i) for i in range(topology.n)]
        self.pending_pdus = 0  # scheduled or on air
        self.pending_rx = 0  # adverts buffered or being processed
        self.quiet_alive = 0
        self.on_delivered: Callable[[int, int], None] | None = None  # (node, t_us) after on_advert
        self.on_reboot: Callable[[int, int], Any] | None = None  # (node, t_us) -> new endpoint
        # (node, endpoint) -> extra CPU ms of the endpoint call just made (None: model only)
        self.work_ms: Callable[[int, Any], float] | None = None

    # ----- set-up -----

    def _rng(self, purpose: str, node: int) -> random.Random:
        return random.Random(f"rocknet-sim/{self.seed}/{purpose}/{node}")

    def add_node(self, endpoint: Any, start_us: int = 0) -> SimNode:
        i = len(self.nodes)
        if i >= self.topology.n:
            raise ValueError(f"topology has {self.topology.n} nodes; cannot add node {i}")
        clock = self._rng("clock", i)
        drift = self.model.clock_drift_ppm
        node = SimNode(
            id=i, endpoint=endpoint, ppm=clock.uniform(-drift, drift),
            offset_us=clock.randrange(0, 10_000_000), rng=self._rng("mac", i),
            loss_rng=self._rng("loss", i), alive_since=start_us,
        )
        node.did = node.rng.randrange(0, 4096)
        self.nodes.append(node)
        self._at(start_us, self._boot, node, node.epoch)
        return node

    def add_driven(self) -> SimNode:
        """A node whose radio its own adapter code drives (`adv_start`, `scan_start`, ...):
        the node's program runs elsewhere and tells the medium what the radio does."""
        node = self.add_node(None)
        node.driven = True
        return node

    # ----- driven mode: what a radio adapter asks of the controller -----

    def adv_start(self, i: int, data: bytes, interval_ms: float) -> None:
        """start_advertising / gap_advertise: an advertising event every interval + advDelay
        until `adv_stop`; the first after the controller's start-up and an advDelay."""
        node = self.nodes[i]
        node.adv_gen += 1
        node.adv_data = data
        node.adv_interval_ms = interval_ms
        node.stats.tx_adverts += 1
        m = self.model
        t = self.now + node.dur(m.adv_start_ms + node.rng.uniform(0.0, m.adv_delay_max_ms))
        self._at(t, self._adv_tick, node, node.epoch, node.adv_gen)

    def _adv_tick(self, node: SimNode, epoch: int, gen: int) -> None:
        if epoch != node.epoch or gen != node.adv_gen:
            return
        end = self._schedule_event(node, node.adv_data, self.now)
        nxt = self.now + node.dur(node.adv_interval_ms
                                  + node.rng.uniform(0.0, self.model.adv_delay_max_ms))
        self._at(max(end, nxt), self._adv_tick, node, epoch, gen)

    def adv_stop(self, i: int) -> None:
        """stop_advertising: no new event starts; one on air completes."""
        self.nodes[i].adv_gen += 1

    def scan_start(self, i: int, interval_ms: float, window_ms: float, buffer: int) -> None:
        """start_scan / gap_scan: listen ``window_ms`` of every ``interval_ms``, the next
        primary channel each interval; complete adverts go to a buffer of ``buffer`` bytes
        (0: unbounded) that `take_rx` empties."""
        node = self.nodes[i]
        node.scan_interval_ms = interval_ms
        node.scan_window_ms = min(window_ms, interval_ms)
        node.rx_cap = buffer
        self._start_scan(node)

    def scan_stop(self, i: int) -> None:
        node = self.nodes[i]
        if node.scan_on:
            node.scan_gen += 1
            node.scan_on = node.window_open = False
            node.follow = None
            self._retune(node)

    def take_rx(self, i: int) -> list[tuple[int, bytes]]:
        """The adverts received since the last call, with their local arrival times (us)."""
        node = self.nodes[i]
        got, node.rx_log = node.rx_log, []
        node.rxq_bytes = 0
        node.stats.rx_delivered += len(got)
        return got

    def send(self, node: int, data: bytes, t_us: int) -> None:
        """Inject one advertising event of `node` carrying `data` at t_us, outside its
        endpoint's schedule (tests, probes, a foreign advertiser)."""
        self._at(t_us, self._send_now, self.nodes[node], data)

    def _send_now(self, node: SimNode, data: bytes) -> None:
        if node.alive:
            node.stats.tx_adverts += 1
            self._schedule_event(node, data, self.now)

    def crash(self, node: int, t_us: int) -> None:
        """Schedule node's crash at t_us: radio off, buffered adverts and state gone."""
        self._at(t_us, self._crash, self.nodes[node])

    def reboot(self, node: int, t_us: int) -> None:
        """Schedule node's return at t_us with a fresh endpoint from `on_reboot`."""
        self._at(t_us, self._reboot, self.nodes[node])

    # ----- event loop -----

    def call_at(self, t_us: int, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) at simulated time t_us (for drivers: round starts, probes)."""
        self._at(t_us, fn, *args)

    def _at(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, 1, self._seq, fn, args))

    def _at_first(self, t: int, fn: Callable[..., None], *args: Any) -> None:
        """Like _at, but before anything else at the same microsecond (PDU ends, so a PDU
        starting as another ends does not overlap it)."""
        self._seq += 1
        heapq.heappush(self._heap, (t, 0, self._seq, fn, args))

    def run(self, until_us: int, stop: Callable[[], bool] | None = None) -> int:
        """Process events up to until_us (or until stop() is true); returns the time reached."""
        heap = self._heap
        while heap and heap[0][0] <= until_us:
            t, _, _, fn, args = heapq.heappop(heap)
            self.now = t
            fn(*args)
            # a round can only be over when nothing is in flight: test that inline first
            if (stop is not None and self.pending_pdus == 0 and self.pending_rx == 0
                    and stop()):
                return self.now
        self.now = max(self.now, until_us)
        return self.now

    @property
    def idle(self) -> bool:
        """No PDU scheduled or on air and no advert waiting for a CPU."""
        return self.pending_pdus == 0 and self.pending_rx == 0

    def snapshot(self) -> list[NodeStats]:
        """Stats with running time totals closed at the current time."""
        out = []
        for n in self.nodes:
            s = NodeStats(**n.stats.__dict__)
            if n.rx_since is not None:
                s.rx_us += self.now - n.rx_since
            if n.alive:
                s.alive_us += self.now - n.alive_since
            out.append(s)
        return out

    # ----- node life -----

    def _boot(self, node: SimNode, epoch: int) -> None:
        if epoch != node.epoch or not node.alive or node.driven:
            return
        if self.model.alternate:
            self._cycle(node, epoch)
        else:
            self._start_scan(node)
            self._cycle(node, epoch)

    def _crash(self, node: SimNode) -> None:
        if not node.alive:
            return
        t = self.now
        node.stats.crashes += 1
        node.stats.alive_us += t - node.alive_since
        if node.quiet:
            self.quiet_alive -= 1
        node.alive = False
        node.epoch += 1
        node.scan_gen += 1
        node.adv_gen += 1
        node.scan_on = node.window_open = node.tx_on = node.in_burst = False
        node.follow = None
        node.quiet = False
        self._retune(node)
        self.pending_rx -= len(node.rxq) + int(node.cpu_rx)
        node.rxq.clear()
        node.rx_log = []
        node.rxq_bytes = 0
        node.cpu_busy = node.prep_pending = node.cpu_rx = False
        node.endpoint = None

    def _reboot(self, node: SimNode) -> None:
        if node.alive:
            return
        node.stats.reboots += 1
        node.alive = True
        node.alive_since = self.now
        node.epoch += 1
        if self.on_reboot is not None:
            node.endpoint = self.on_reboot(node.id, self.now)
        if node.endpoint is None and not node.driven:
            raise RuntimeError(f"node {node.id} rebooted without an endpoint: set on_reboot")
        self._boot(node, node.epoch)

    def wake(self, node_id: int) -> None:
        """The endpoint has something new (e.g. a round started): a quiet node asks for an
        advert now instead of at the end of its scan phase."""
        node = self.nodes[node_id]
        if not node.alive or not node.quiet or node.prep_pending:
            return
        if self.model.alternate:
            if node.scan_on and not node.in_burst:
                self._end_scan(node, node.scan_gen)
        else:
            node.adv_gen += 1
            self._cycle(node, node.epoch)

    # ----- CPU -----

    def _cpu_kick(self, node: SimNode) -> None:
        """Start the next CPU job. The endpoint runs at the job's start and the job lasts the
        model's cost plus any extra work the driver's `work_ms` hook reports (e.g. a slow
        authentication per tag computed); its effect (advert ready, delivery counted) lands
        at the end. The CPU is one thread, so nothing else sees the endpoint in between."""
        if node.cpu_busy or not node.alive:
            return
        # alternate mode: the adapter's scan loop drains the buffer before the next burst
        if node.prep_pending and not (self.model.alternate and node.rxq):
            node.cpu_busy = True
            data = node.endpoint.next_advert(node.now_ms(self.now))
            dur = self._job_us(node, self.model.prep_ms)
            self._at(self.now + dur, self._prep_done, node, node.epoch, dur, data)
        elif node.rxq:
            data = node.rxq.popleft()
            node.rxq_bytes -= len(data) + self.model.rx_entry_overhead
            node.cpu_busy = node.cpu_rx = True
            node.endpoint.on_advert(data, node.now_ms(self.now))
            dur = self._job_us(node, self.model.proc_ms)
            self._at(self.now + dur, self._rx_done, node, node.epoch, dur)

    def _job_us(self, node: SimNode, base_ms: float) -> int:
        if self.work_ms is None:
            return node.dur(base_ms)
        extra = node.dur(float(self.work_ms(node.id, node.endpoint)))
        node.stats.work_us += extra
        return node.dur(base_ms) + extra

    def _rx_done(self, node: SimNode, epoch: int, dur: int) -> None:
        if epoch != node.epoch:
            return
        node.cpu_busy = node.cpu_rx = False
        node.stats.cpu_us += dur
        node.stats.rx_delivered += 1
        self.pending_rx -= 1
        if self.on_delivered is not None:
            self.on_delivered(node.id, self.now)
        self._cpu_kick(node)

    def _prep_done(self, node: SimNode, epoch: int, dur: int, data: bytes | None) -> None:
        if epoch != node.epoch:
            return
        node.cpu_busy = False
        node.prep_pending = False
        node.stats.cpu_us += dur
        was_quiet = node.quiet
        node.quiet = data is None
        self.quiet_alive += int(node.quiet) - int(was_quiet)
        if data is not None:
            node.stats.tx_adverts += 1
        self._after_prep(node, data)
        self._cpu_kick(node)

    # ----- MAC: the adapter's loop -----

    def _cycle(self, node: SimNode, epoch: int, adv_gen: int | None = None) -> None:
        """Ask the endpoint for the next advert (costs a CPU job)."""
        if epoch != node.epoch or (adv_gen is not None and adv_gen != node.adv_gen):
            return
        node.prep_pending = True
        self._cpu_kick(node)

    def _after_prep(self, node: SimNode, data: bytes | None) -> None:
        """Advertise `data` for one burst (alternate) or slot (concurrent): the events that
        fit in burst_ms, at least one; then scan (alternate) or take the next slot."""
        m = self.model
        t = self.now
        if data is None:
            if m.alternate:
                self._start_scan(node)
            else:
                self._at(t + node.dur(m.burst_ms), self._cycle, node, node.epoch, node.adv_gen)
            return
        if m.alternate:
            node.in_burst = True
        # stop_advertising() at `end`: events that started by then complete, later ones never
        # happen (a burst shorter than start-up + advDelay may send nothing)
        end = t + node.dur(m.burst_ms)
        start = t + node.dur(m.adv_start_ms + node.rng.uniform(0.0, m.adv_delay_max_ms))
        last_end = end
        while start < end:
            last_end = self._schedule_event(node, data, start)
            start += node.dur(m.adv_interval_ms + node.rng.uniform(0.0, m.adv_delay_max_ms))
        if m.alternate:
            self._at(max(end, last_end) + node.dur(m.switch_ms), self._end_burst, node,
                     node.epoch)
        else:
            self._at(max(end, last_end), self._cycle, node, node.epoch, node.adv_gen)

    def _end_burst(self, node: SimNode, epoch: int) -> None:
        if epoch != node.epoch:
            return
        node.in_burst = False
        self._start_scan(node)

    def _start_scan(self, node: SimNode) -> None:
        m = self.model
        node.scan_gen += 1
        node.scan_on = True
        if m.scan_restart_37 or node.scan_ch not in phy.PRIMARY_CHANNELS:
            node.scan_ch = 37
        self._scan_tick(node, node.epoch, node.scan_gen, first=True)
        if m.alternate and not node.driven:
            jitter = node.rng.uniform(0.0, m.scan_jitter_ms) if m.scan_jitter_ms > 0 else 0.0
            # start_scan(timeout=...) needs timeout >= interval
            phase = max(m.scan_ms + jitter, m.scan_interval_ms)
            self._at(self.now + node.dur(phase), self._end_scan, node, node.scan_gen)

    def _scan_tick(self, node: SimNode, epoch: int, gen: int, first: bool = False) -> None:
        if epoch != node.epoch or gen != node.scan_gen or not node.scan_on:
            return
        m = self.model
        if not first:
            node.scan_ch = 37 + (node.scan_ch - 37 + 1) % 3
        node.window_open = True
        self._retune(node)
        interval = m.scan_interval_ms if node.scan_interval_ms is None else node.scan_interval_ms
        window = m.scan_window_ms if node.scan_window_ms is None else node.scan_window_ms
        if window < interval:
            self._at(self.now + node.dur(window), self._close_window, node, epoch, gen)
        self._at(self.now + node.dur(interval), self._scan_tick, node, epoch, gen)

    def _close_window(self, node: SimNode, epoch: int, gen: int) -> None:
        if epoch != node.epoch or gen != node.scan_gen:
            return
        node.window_open = False
        self._retune(node)

    def _end_scan(self, node: SimNode, gen: int) -> None:
        if gen != node.scan_gen or not node.scan_on or not node.alive:
            return
        node.scan_gen += 1
        node.scan_on = node.window_open = False
        node.follow = None  # stop_scan() abandons an AUX being followed
        self._retune(node)
        self._cycle(node, node.epoch)

    def _retune(self, node: SimNode) -> None:
        """Recompute what the radio listens to; a change aborts a reception in progress."""
        if not node.alive or node.tx_on:
            want = None
        elif node.follow is not None:
            want = node.listen if node.lock is not None else None
        elif node.scan_on and node.window_open:
            want = node.scan_ch
        else:
            want = None
        if want != node.listen and node.lock is not None:
            node.lock = None
            node.stats.rx_aborted += 1
        if node.follow is not None and (node.tx_on or not node.alive):
            node.follow = None
        node.listen = want
        radio_rx = node.alive and not node.tx_on and (
            node.follow is not None or (node.scan_on and node.window_open))
        if radio_rx and node.rx_since is None:
            node.rx_since = self.now
        elif not radio_rx and node.rx_since is not None:
            node.stats.rx_us += self.now - node.rx_since
            node.rx_since = None

    # ----- advertising events and PDUs -----

    def _schedule_event(self, node: SimNode, data: bytes, start: int) -> int:
        """Schedule one advertising event; returns its end time."""
        aux_ch = node.rng.randrange(0, 37) if self.model.extended else -1
        plan = plan_event(self.model, data, max(aux_ch, 0))
        node.did = (node.did + 1) & 0x0FFF
        ev = _AdvEvent(node.id, data, plan, node.did, aux_ch, start)
        n_data = len(plan.fragments)
        self.pending_pdus += len(plan.pdus)
        self._at(start, self._event_on, node, node.epoch, ev)
        frag = 0
        for off, dur, ch, kind in plan.pdus:
            index = -1 if kind == "ext" else 0 if kind == "adv" else frag
            if kind == "aux":
                frag += 1
            # a legacy copy on each primary is complete by itself; AUX ends with its last part
            last = kind == "adv" or (kind == "aux" and index == n_data - 1)
            pdu = _Pdu(node.id, ch, start + off, start + off + dur, kind, ev, index, last)
            self._at(start + off, self._pdu_start, node, node.epoch, pdu)
        end = start + plan.duration_us
        self._at(end, self._event_off, node, node.epoch)
        return end

    def _event_on(self, node: SimNode, epoch: int, ev: _AdvEvent) -> None:
        if epoch != node.epoch:
            return
        node.stats.tx_events += 1
        node.tx_on = True
        self._retune(node)

    def _event_off(self, node: SimNode, epoch: int) -> None:
        if epoch != node.epoch:
            return
        node.tx_on = False
        self._retune(node)

    def _pdu_start(self, node: SimNode, epoch: int, pdu: _Pdu) -> None:
        if epoch != node.epoch:  # the sender crashed: this PDU never goes out
            self.pending_pdus -= 1
            return
        m = self.model
        dur = pdu.end - pdu.start
        rate = m.aux_phy if pdu.kind == "aux" else 1
        st = node.stats
        st.tx_pdus += 1
        st.airtime_us += dur
        st.tx_us += dur + m.ramp_us
        if self.trace is not None:
            self.trace.append(self._record(pdu, rate))
        air = self._air.setdefault(pdu.channel, [])
        audible = self._audible
        for rid in self._hearers[pdu.sender]:
            r = self.nodes[rid]
            if not r.alive:
                continue
            if pdu.kind == "aux" and r.follow is pdu.event:
                r.listen = pdu.channel  # the scanner tuned to the AuxPtr's channel
            if r.listen != pdu.channel:
                continue
            busy = False
            for other in air:
                if audible[other.sender][rid]:
                    busy = True
                    break
            if busy:
                st_r = r.stats
                st_r.rx_collisions += 1
                if r.lock is not None and r.lock.channel == pdu.channel:
                    r.lock_bad = True
                if r.follow is pdu.event:
                    r.follow = None
                    r.listen = None
                    self._retune(r)
                continue
            r.lock = pdu
            r.lock_bad = False
            pdu.receivers.append(r)
        air.append(pdu)
        self._at_first(pdu.end, self._pdu_end, pdu)

    def _record(self, pdu: _Pdu, rate: int) -> TxRecord:
        ev = pdu.event
        plan = ev.plan
        if pdu.kind == "ext":
            aux_start = ev.start + next(off for off, _, _, k in plan.pdus if k == "aux")
            return TxRecord(pdu.start, pdu.sender, pdu.channel, "ext", self.model.aux_phy,
                            ev.did, b"", ev.aux_channel, aux_start - pdu.start)
        frag = plan.fragments[pdu.index]
        if pdu.kind == "adv":
            return TxRecord(pdu.start, pdu.sender, pdu.channel, "adv", 1, ev.did, frag)
        nxt = -1
        if not pdu.last:
            offs = [off for off, _, _, k in plan.pdus if k == "aux"]
            nxt = ev.start + offs[pdu.index + 1] - pdu.start
        return TxRecord(pdu.start, pdu.sender, pdu.channel, "aux", rate, ev.did, frag,
                        first=pdu.index == 0, next_offset_us=nxt)

    def _pdu_end(self, pdu: _Pdu) -> None:
        self.pending_pdus -= 1
        air = self._air[pdu.channel]
        air.remove(pdu)
        loss = self._loss
        for r in pdu.receivers:
            if r.lock is not pdu:
                continue  # aborted by a retune, TX or crash
            r.lock = None
            if r.lock_bad:
                r.lock_bad = False
                r.stats.rx_collisions += 1
                self._drop_follow(r, pdu)
                continue
            if pdu.kind != "ext":
                p = loss[pdu.sender][r.id]
                if p > 0.0 and r.loss_rng.random() < p:
                    r.stats.rx_lost += 1
                    self._drop_follow(r, pdu)
                    continue
            r.stats.rx_pdus += 1
            if pdu.kind == "ext":
                if r.follow is None:
                    r.follow = pdu.event  # chase the AUX: off the primary channel until it ends
                    r.listen = None
                    self._retune(r)
            elif pdu.last:
                self._drop_follow(r, pdu)
                self._buffer(r, pdu.event.data)
            else:
                r.listen = None  # between chain fragments
        if not air:
            del self._air[pdu.channel]

    def _drop_follow(self, r: SimNode, pdu: _Pdu) -> None:
        if r.follow is pdu.event and pdu.kind != "ext":
            r.follow = None
            self._retune(r)
        elif r.follow is None and pdu.kind == "aux":
            self._retune(r)

    def _buffer(self, r: SimNode, data: bytes) -> None:
        need = len(data) + self.model.rx_entry_overhead
        if r.driven:
            if r.rx_cap and r.rxq_bytes + need > r.rx_cap:
                r.stats.rx_dropped += 1
                return
            r.stats.rx_adverts += 1
            r.rxq_bytes += need
            r.rx_log.append((r.local_us(self.now), data))
            return
        cap = self.model.rx_buffer_entries
        if r.rxq_bytes + need > self.model.rx_buffer_bytes or (cap and len(r.rxq) >= cap):
            r.stats.rx_dropped += 1
            return
        r.stats.rx_adverts += 1
        r.rxq.append(data)
        r.rxq_bytes += need
        self.pending_rx += 1
        self._cpu_kick(r)
