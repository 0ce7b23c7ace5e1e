"""Summaries of a simulated run: completion, round-time statistics and per-node costs."""

from __future__ import annotations

import math
from typing import Any

from .run import RunResult


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(run: RunResult, m_rows: int | None = None,
              own_rows: list[float] | None = None) -> dict[str, Any]:
    """Per-round and per-node averages. Per-node figures average over nodes, then rounds.
    own_rows[i] (rows node i contributes per round, averaged) gives the information lower
    bound on receptions: a node must take in at least M - own innovative packets."""
    rounds = run.rounds
    n = run.topology.n
    done = [r.duration_s for r in rounds if r.complete and r.duration_s is not None]

    def per_node(getter: Any) -> float:
        vals = [sum(getter(r, i) for i in range(n)) / n for r in rounds]
        return sum(vals) / len(vals) if vals else 0.0

    out: dict[str, Any] = {
        "rounds": len(rounds),
        "completion_rate": (len(done) / len(rounds)) if rounds else 0.0,
        "mean_round_s": _mean(done),
        "p95_round_s": percentile(done, 0.95),
        "max_round_s": max(done) if done else None,
        "mean_elapsed_s": _mean([r.elapsed_s for r in rounds]),
        "wrong_rows": sum(r.wrong_rows for r in rounds),
        "tx_per_node": per_node(lambda r, i: r.stats[i].tx_events),
        "tx_adverts_per_node": per_node(lambda r, i: r.stats[i].tx_adverts),
        "rx_per_node": per_node(lambda r, i: r.stats[i].rx_delivered),
        "rx_collisions_per_node": per_node(lambda r, i: r.stats[i].rx_collisions),
        "rx_lost_per_node": per_node(lambda r, i: r.stats[i].rx_lost),
        "rx_dropped_per_node": per_node(lambda r, i: r.stats[i].rx_dropped),
        "airtime_ms_per_node": per_node(lambda r, i: r.stats[i].airtime_us / 1000.0),
        "radio_rx_ms_per_node": per_node(lambda r, i: r.stats[i].rx_us / 1000.0),
        "cpu_ms_per_node": per_node(lambda r, i: r.stats[i].cpu_us / 1000.0),
        "work_ms_per_node": per_node(lambda r, i: r.stats[i].work_us / 1000.0),
        "energy_mj_per_node": per_node(lambda r, i: r.energy_mj[i]),
    }
    # latency by hop distance from the owner of row 0 (the sample's series in a FaceAll round)
    by_hops: dict[int, list[float]] = {}
    for r in rounds:
        for i, d in enumerate(r.done_s):
            h = int(run.topology.hops[r.first_owner, i])
            if d is not None and h >= 0:
                by_hops.setdefault(h, []).append(d)
    out["done_s_by_hops"] = {str(h): sum(v) / len(v) for h, v in sorted(by_hops.items())}
    if all(v is not None for r in rounds for v in r.innovative):
        out["innovative_per_node"] = per_node(lambda r, i: r.innovative[i])
    if m_rows is not None:
        own = own_rows or [0] * n
        out["m_rows"] = m_rows
        out["rx_lower_bound_per_node"] = m_rows - sum(own) / n
    return out
