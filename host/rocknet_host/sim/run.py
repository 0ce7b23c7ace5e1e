"""Rounds of all-to-all exchange on the simulated medium, measured.

`run_rounds` starts a round at every node (each after its own small skew), lets the medium run
until every live node has decoded every row and the air is quiet, or the deadline passes, and
records per round: completion, time to the last node's completion, and per node packets,
airtime, radio/CPU time and energy. Endpoints are protocol-agnostic: anything with
``start_round(round_no, own_rows, now_ms)``, ``on_advert``, ``next_advert``, ``done`` and
``rows()`` (a list indexed by row, or a dict).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .energy import DEFAULT, CurrentModel
from .medium import Medium, NodeStats
from .pcap import TraceSink
from .radio import RadioModel
from .topology import Topology

Rows = dict[int, bytes]


@dataclass(frozen=True)
class Generation:
    """The rows of one round: owners[i] is the node that contributes row i."""

    owners: list[int]
    row_size: int
    rows: list[bytes]

    @property
    def m(self) -> int:
        return len(self.owners)

    def own_rows(self, node: int) -> Rows:
        return {i: self.rows[i] for i, o in enumerate(self.owners) if o == node}


@dataclass(frozen=True)
class Fault:
    """A scheduled fault: at t_s seconds into the run, node crashes or reboots."""

    t_s: float
    node: int
    action: str  # "crash" | "reboot"


@dataclass
class RoundResult:
    round_no: int
    start_s: float
    complete: bool  # every live node decoded every row, correctly, before the deadline
    duration_s: float | None  # round start -> last live node complete (None if incomplete)
    elapsed_s: float  # round start -> end of the episode (quiet air, or the deadline)
    done_s: list[float | None]  # per node: time to completion after the round start
    wrong_rows: int  # decoded rows that differ from what was sent (must be 0)
    stats: list[NodeStats]  # per node, over this round's episode
    energy_mj: list[float]
    alive: list[bool]
    innovative: list[int | None]  # per node, if the endpoint counts stats["innovative"]
    first_owner: int = 0  # owner of row 0 (e.g. the sample's series): hop counts start there


@dataclass
class RunResult:
    rounds: list[RoundResult]
    topology: Topology
    model: RadioModel
    current: CurrentModel
    trace_pdus: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def _rows_of(endpoint: Any, m: int) -> list[bytes | None]:
    got = endpoint.rows()
    if isinstance(got, dict):
        return [got.get(i) for i in range(m)]
    return list(got)


def _innovative(endpoint: Any) -> int | None:
    stats = getattr(endpoint, "stats", None)
    value = stats.get("innovative") if isinstance(stats, dict) else None
    return value if isinstance(value, int) else None


def run_rounds(
    topology: Topology,
    model: RadioModel,
    factory: Callable[[int], Any],
    generation: Callable[[int], Generation],
    rounds: int,
    *,
    seed: int = 0,
    deadline_s: float = 2.0,
    start_skew_ms: float = 10.0,
    gap_ms: float = 0.0,
    faults: Sequence[Fault] = (),
    current: CurrentModel = DEFAULT,
    pcap_path: str | Path | None = None,
    work_ms: Callable[[int, Any], float] | None = None,
) -> RunResult:
    """Run `rounds` rounds; factory(node) builds a node's endpoint (again after a reboot),
    generation(round_no) gives the rows to exchange in that round; work_ms(node, endpoint),
    if given, adds CPU time for the endpoint call just made (see Medium.work_ms)."""
    medium = Medium(topology, model, seed=seed, record=pcap_path is not None)
    n = topology.n
    endpoints = [factory(i) for i in range(n)]
    for ep in endpoints:
        medium.add_node(ep)
    skew_rng = random.Random(f"rocknet-sim/{seed}/skew")
    state: dict[str, Any] = {"gen": None, "round": -1, "done_at": [None] * n, "started": 0,
                             "n_done": 0}

    def mark_done(i: int, t: int) -> None:
        if state["done_at"][i] is None and medium.nodes[i].alive:
            ep = medium.nodes[i].endpoint
            if ep is None or getattr(ep, "round_no", state["round"]) != state["round"]:
                return  # still on the previous round (it has not started this one)
            if ep.done:
                state["done_at"][i] = t
                state["n_done"] += 1

    def start_node(i: int) -> None:
        node = medium.nodes[i]
        state["started"] += 1
        if not node.alive:
            return
        gen: Generation = state["gen"]
        node.endpoint.start_round(state["round"], gen.own_rows(i), node.now_ms(medium.now))
        medium.wake(i)
        mark_done(i, medium.now)

    def rebooted(i: int, t: int) -> Any:
        ep = factory(i)
        if state["gen"] is not None and state["round"] >= 0:
            gen: Generation = state["gen"]
            ep.start_round(state["round"], gen.own_rows(i), medium.nodes[i].now_ms(t))
        return ep

    medium.on_delivered = mark_done
    medium.work_ms = work_ms
    medium.on_reboot = rebooted
    for f in faults:
        t = int(round(f.t_s * 1e6))
        if f.action == "crash":
            medium.crash(f.node, t)
        elif f.action == "reboot":
            medium.reboot(f.node, t)
        else:
            raise ValueError(f"fault action must be 'crash' or 'reboot', got {f.action!r}")

    def finished() -> bool:
        alive = sum(1 for nd in medium.nodes if nd.alive)
        return (state["started"] == n and state["n_done"] >= alive
                and all(state["done_at"][i] is not None for i in range(n) if medium.nodes[i].alive)
                and medium.quiet_alive >= alive and medium.idle)

    def stop() -> bool:
        return state["started"] == n and finished()

    results: list[RoundResult] = []
    t0 = 0
    deadline_us = int(round(deadline_s * 1e6))
    for r in range(rounds):
        gen = generation(r)
        state.update(gen=gen, round=r, done_at=[None] * n, started=0, n_done=0)
        before = medium.snapshot()
        innov_before = [_innovative(nd.endpoint) for nd in medium.nodes]
        for i in range(n):
            skew = int(skew_rng.uniform(0.0, start_skew_ms) * 1000)
            medium.call_at(t0 + skew, start_node, i)
        medium.run(t0 + deadline_us, stop)
        end = medium.now
        after = medium.snapshot()
        alive = [nd.alive for nd in medium.nodes]
        done_s = [None if d is None else (d - t0) / 1e6 for d in state["done_at"]]
        wrong = 0
        for i in range(n):
            if done_s[i] is not None and alive[i]:
                got = _rows_of(medium.nodes[i].endpoint, gen.m)
                pairs = zip(got, gen.rows, strict=False)
                wrong += sum(1 for a, b in pairs if a is None or a[: len(b)] != b)
        complete = all(done_s[i] is not None for i in range(n) if alive[i]) and wrong == 0
        last = max((d for i, d in enumerate(done_s) if alive[i] and d is not None), default=None)
        stats = [a.minus(b) for a, b in zip(after, before, strict=True)]
        innov = []
        for nd, b0 in zip(medium.nodes, innov_before, strict=True):
            a0 = _innovative(nd.endpoint)
            # a reboot resets the endpoint's counters: count from zero then
            innov.append(None if a0 is None else a0 - (b0 or 0) if a0 >= (b0 or 0) else a0)
        energy = [current.energy_mj(s.tx_us / 1e6, s.rx_us / 1e6, s.cpu_us / 1e6,
                                    s.alive_us / 1e6) for s in stats]
        results.append(RoundResult(
            round_no=r, start_s=t0 / 1e6, complete=complete,
            duration_s=last if complete else None, elapsed_s=(end - t0) / 1e6, done_s=done_s,
            wrong_rows=wrong, stats=stats, energy_mj=energy, alive=alive, innovative=innov,
            first_owner=gen.owners[0] if gen.owners else 0,
        ))
        t0 = max(end, t0 + 1) + int(round(gap_ms * 1000))
    pdus = 0
    if pcap_path is not None and medium.trace is not None:
        write_trace(medium.trace, pcap_path)
        pdus = len(medium.trace)
    return RunResult(results, topology, model, current, trace_pdus=pdus)


def write_trace(trace: Sequence[Any], path: str | Path) -> int:
    """Write medium trace records (TxRecord) as a pcap; returns the number of packets."""
    with TraceSink(path) as sink:
        for rec in trace:
            sink.append(rec)
        return len(sink)
