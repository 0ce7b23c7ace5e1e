"""Node cores over the simulated BLE advertising medium: each node's `Node` talks through its
own `link.Link` (GF(2)-coded Mixer rounds in authenticated adverts) on `sim.medium.Medium`.

Round r: every live node calls ``begin_round(r)`` and starts round r on its link (each after a
small random skew), the medium runs until every live link decoded everything and the air is
quiet, or the round deadline passes; then every live node takes its link's rows of round r
with ``end_round``. Nobody starts round r+1 before that, so each link still holds round r.
Faults are per round, like `fleet_run.Event`: a crash silences the node's radio; a reboot
builds a fresh node and link and restores the node's last checkpoint.

Node cores run in CPython (the factory returns `rocknet.node.Node`s) or elsewhere: a node
object with ``make_link(...)`` builds its own link in its runtime (`fleet_mpy.MpyNode`,
MicroPython), and the medium talks to that link's stand-in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .fleet_run import Event, digest_at
from .runtime import import_device
from .sim.medium import Medium
from .sim.radio import RadioModel
from .sim.topology import Topology

NodeFactory = Callable[[int, int, Callable[[bytes], None]], Any]  # (id, row_size, save)


def row_size_for(model: RadioModel, make_geometry: Callable[[int], Any]) -> int:
    """The largest row size whose round still fits one advert of the radio's profile
    (``make_geometry(row_size)`` -> `node.Geometry`)."""
    wire = import_device("rocknet.wire")
    size = wire.ADV_DATA_MAX[model.wire_profile]
    while size > 1:
        geo = make_geometry(size)
        if size <= wire.max_row_size(model.wire_profile, geo.m):
            return size
        size -= 1
    raise ValueError(f"a round of this geometry does not fit {model.wire_profile} adverts at "
                     "any row size (at most 64 rows); use extended adverts, fewer nodes or a "
                     "smaller relay window")


@dataclass
class SimRound:
    round_no: int
    start_s: float
    elapsed_s: float
    complete: bool  # every live node decoded every row a live node contributed


@dataclass
class FleetSim:
    """N nodes with links on a simulated medium (see the module docstring)."""

    topology: Topology
    model: RadioModel
    factory: NodeFactory  # (node id, row size, save) -> Node
    row_size: int
    key: bytes = b"rocknet fleet sim key"
    seed: int = 0
    deadline_s: float = 1.0
    start_skew_ms: float = 10.0
    gap_ms: float = 5.0
    events: Iterable[Event] = ()
    nodes: list[Any] = field(init=False)
    links: list[Any] = field(init=False)
    checkpoints: dict[int, bytes] = field(init=False, default_factory=dict)
    rounds: list[SimRound] = field(init=False, default_factory=list)
    round_no: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._link_mod = import_device("rocknet.link")
        self.n = self.topology.n
        self.medium = Medium(self.topology, self.model, seed=self.seed)
        self._skew = random.Random(f"rocknet-fleet-sim/{self.seed}/skew")
        self._events: dict[int, list[Event]] = {}
        for ev in self.events:
            if ev.action not in ("crash", "reboot"):
                raise ValueError(f"the simulator models crash and reboot, not {ev.action!r}")
            self._events.setdefault(ev.round_no, []).append(ev)
        self.nodes, self.links = [], []
        for i in range(self.n):
            node, link = self._build(i)
            self.nodes.append(node)
            self.links.append(link)
            self.medium.add_node(link)
        self.medium.on_reboot = self._rebooted
        self._t0 = 0

    def _build(self, i: int) -> tuple[Any, Any]:
        def save(body: bytes, i: int = i) -> None:
            self.checkpoints[i] = bytes(body)

        node = self.factory(i, self.row_size, save)
        kw = {"seed": (self.seed * 7919 + i + 1) & 0xFFFFFFFF,
              "timeout_ms": int(self.deadline_s * 1000), "round_hint": self.round_no}
        if hasattr(node, "make_link"):  # a node in another runtime builds its link there
            return node, node.make_link(i, self.key, self.row_size, self.model.wire_profile,
                                        **kw)
        link = self._link_mod.Link(i, self.key, node.geo.owners(), self.row_size,
                                   self.model.wire_profile, **kw)
        return node, link

    def _rebooted(self, i: int, t_us: int) -> Any:
        node, link = self._build(i)
        body = self.checkpoints.get(i)
        if body is not None:
            node.restore(body)
        else:
            node.rejoin()  # no checkpoint yet: fresh weights, back in through a decision
        self.nodes[i] = node
        self.links[i] = link
        return link

    @property
    def alive(self) -> list[bool]:
        return [nd.alive for nd in self.medium.nodes]

    def step(self) -> SimRound:
        r = self.round_no
        med = self.medium
        t0 = self._t0
        for ev in self._events.get(r, ()):
            (med.crash if ev.action == "crash" else med.reboot)(ev.node, t0)
        med.run(t0)  # apply the faults before the round starts
        started: set[int] = set()
        contributed: set[int] = set()  # row indices some live node put into this round

        def start(i: int) -> None:
            sn = med.nodes[i]
            if not sn.alive:
                return
            rows = self.nodes[i].begin_round(r)
            self.links[i].start_round(r, rows, sn.now_ms(med.now))
            started.add(i)
            contributed.update(rows)
            med.wake(i)

        for i in range(self.n):
            skew = int(self._skew.uniform(0.0, self.start_skew_ms) * 1000)
            med.call_at(t0 + skew, start, i)

        def done() -> bool:
            live = [i for i in range(self.n) if med.nodes[i].alive]
            # cheap host-side tests first: a link in another runtime answers over a bridge
            return (all(i in started for i in live) and med.quiet_alive >= len(live)
                    and all(self.links[i].done and self.links[i].round_no == r for i in live))

        end = med.run(t0 + int(self.deadline_s * 1e6), done)
        complete = True
        for i in range(self.n):
            if not med.nodes[i].alive or i not in started:
                continue
            link = self.links[i]
            rows = link.rows() if link.round_no == r else [None] * self.nodes[i].m
            complete = complete and all(rows[k] is not None for k in contributed)
            self.nodes[i].end_round(r, rows)
        res = SimRound(r, t0 / 1e6, (end - t0) / 1e6, complete)
        self.rounds.append(res)
        self._t0 = max(end, t0 + 1) + int(self.gap_ms * 1000)
        self.round_no += 1
        return res

    def run(self, rounds: int) -> FleetSim:
        for _ in range(rounds):
            self.step()
        return self

    def consistent(self, nodes: Iterable[int] | None = None) -> bool:
        ids = [i for i in (range(self.n) if nodes is None else nodes) if self.alive[i]]
        if not ids:
            return True
        s = min(self.nodes[i].applied_through for i in ids)
        return len({digest_at(self.nodes[i], s) for i in ids}) == 1
