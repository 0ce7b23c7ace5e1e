"""Who hears whom: a loss matrix (probability that a packet from i is lost at j; 1.0 = out of
range) with hop counts. Builders for full mesh, line, grid, random geometric, or a matrix file.

Multi-hop builders take a target diameter in hops: line and grid place nodes in space and pick
the smallest radio range whose network has that diameter (or less, when the node count cannot
stretch that far), so "3 hops" means the same thing for 5 or 20 nodes.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("full", "line", "grid", "random", "matrix")
NO_LINK = 1.0


@dataclass
class Topology:
    kind: str
    loss: np.ndarray  # (n, n) float, loss[i, j] = P(packet from i lost at j), diagonal 1
    positions: np.ndarray | None = None
    hops: np.ndarray = field(init=False)  # (n, n) int, -1 = unreachable

    def __post_init__(self) -> None:
        loss = np.asarray(self.loss, dtype=float)
        if loss.ndim != 2 or loss.shape[0] != loss.shape[1]:
            raise ValueError(f"loss matrix must be square, got shape {loss.shape}")
        if np.any((loss < 0) | (loss > 1)) or np.any(np.isnan(loss)):
            raise ValueError("loss probabilities must lie in [0, 1] (1 = no link)")
        np.fill_diagonal(loss, NO_LINK)
        self.loss = loss
        self.hops = _hop_matrix(loss < NO_LINK)

    @property
    def n(self) -> int:
        return int(self.loss.shape[0])

    def neighbours(self, i: int) -> list[int]:
        """Nodes that can hear node i (its packets reach them with probability > 0)."""
        return [int(j) for j in np.nonzero(self.loss[i] < NO_LINK)[0]]

    @property
    def connected(self) -> bool:
        return bool(np.all(self.hops >= 0))

    @property
    def diameter(self) -> int:
        """Largest hop count between two nodes; -1 if the network is partitioned."""
        return -1 if not self.connected else int(self.hops.max())

    def describe(self) -> dict[str, object]:
        links = int(np.sum(self.loss < NO_LINK))
        return {
            "topology": self.kind,
            "nodes": self.n,
            "hops": self.diameter,
            "links": links,
            "mean_degree": links / self.n if self.n else 0.0,
        }


def _hop_matrix(adj: np.ndarray) -> np.ndarray:
    n = adj.shape[0]
    hops = np.full((n, n), -1, dtype=int)
    nbrs = [np.nonzero(adj[i])[0] for i in range(n)]
    for s in range(n):
        hops[s, s] = 0
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if hops[s, v] < 0:
                    hops[s, v] = hops[s, u] + 1
                    queue.append(int(v))
    return hops


def _from_adjacency(kind: str, adj: np.ndarray, loss: float, positions: np.ndarray | None,
                    ) -> Topology:
    matrix = np.where(adj, loss, NO_LINK)
    return Topology(kind, matrix, positions)


def full(n: int, loss: float = 0.0) -> Topology:
    return _from_adjacency("full", ~np.eye(n, dtype=bool), loss, None)


def _smallest_range(kind: str, pos: np.ndarray, hops: int, loss: float) -> Topology:
    """The smallest range (among pairwise distances) whose unit-disk graph is connected with
    diameter <= hops; the largest such diameter is reached by the smallest range."""
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    candidates = np.unique(np.round(dist[np.triu_indices(len(pos), 1)], 9))
    lo, hi = 0, len(candidates) - 1
    # diameter is non-increasing in the range, so bisect for the first range meeting the target
    while lo < hi:
        mid = (lo + hi) // 2
        adj = (dist <= candidates[mid] + 1e-9) & ~np.eye(len(pos), dtype=bool)
        d = _hop_matrix(adj)
        if np.all(d >= 0) and d.max() <= hops:
            hi = mid
        else:
            lo = mid + 1
    adj = (dist <= candidates[lo] + 1e-9) & ~np.eye(len(pos), dtype=bool)
    return _from_adjacency(kind, adj, loss, pos)


def line(n: int, hops: int | None = None, loss: float = 0.0) -> Topology:
    """A chain. hops=None: n nodes evenly spaced, neighbours only (n-1 hops). Otherwise hops+1
    clusters along the line (node i in cluster i*(hops+1)//n); a node hears its own and the
    adjacent clusters, so the diameter is exactly `hops` whenever n > hops."""
    if n < 2:
        return full(n, loss)
    if hops is None:
        hops = n - 1
    clusters = min(max(1, hops) + 1, n)
    cluster = np.array([i * clusters // n for i in range(n)])
    adj = (np.abs(cluster[:, None] - cluster[None, :]) <= 1) & ~np.eye(n, dtype=bool)
    pos = np.stack([cluster.astype(float), np.zeros(n)], axis=1)
    return _from_adjacency("line", adj, loss, pos)


def grid(n: int, hops: int | None = None, loss: float = 0.0) -> Topology:
    """Nodes on a near-square grid (row-major, ceil(sqrt n) columns). hops=None: 4-neighbour
    links; otherwise the smallest range with that diameter."""
    if n < 2:
        return full(n, loss)
    cols = math.ceil(math.sqrt(n))
    pos = np.array([[i % cols, i // cols] for i in range(n)], dtype=float)
    if hops is None:
        dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        adj = (dist <= 1.0 + 1e-9) & ~np.eye(n, dtype=bool)
        return _from_adjacency("grid", adj, loss, pos)
    return _smallest_range("grid", pos, max(1, hops), loss)


def random_geometric(n: int, hops: int | None = None, loss: float = 0.0, seed: int = 0,
                     radius: float | None = None) -> Topology:
    """Nodes uniform in the unit square; links within `radius`, or (default) the smallest range
    giving diameter <= hops (hops default 3)."""
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    if n < 2:
        return full(n, loss)
    if radius is not None:
        dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        adj = (dist <= radius) & ~np.eye(n, dtype=bool)
        return _from_adjacency("random", adj, loss, pos)
    return _smallest_range("random", pos, 3 if hops is None else max(1, hops), loss)


def from_file(path: str | Path) -> Topology:
    """A measured loss matrix: JSON ({"loss": [[...]]} or a bare list of lists) or text (rows of
    whitespace/comma separated numbers, '#' comments). Entry [i][j] is the probability that a
    packet from i is lost at j; 1 (or a missing link) means out of range."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"loss matrix file {p} not found")
    text = p.read_text()
    if p.suffix == ".json":
        obj = json.loads(text)
        rows = obj["loss"] if isinstance(obj, dict) else obj
    else:
        rows = []
        for raw in text.splitlines():
            raw = raw.split("#", 1)[0].strip()
            if raw:
                rows.append([float(x) for x in raw.replace(",", " ").split()])
    return Topology("matrix", np.array(rows, dtype=float))


def build(kind: str, n: int, *, hops: int | None = None, loss: float = 0.0, seed: int = 0,
          path: str | Path | None = None) -> Topology:
    """One entry point for the CLI and the bench."""
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss must be a probability in [0, 1], got {loss}")
    if kind == "full":
        return full(n, loss)
    if kind == "line":
        return line(n, hops, loss)
    if kind == "grid":
        return grid(n, hops, loss)
    if kind == "random":
        return random_geometric(n, hops, loss, seed)
    if kind == "matrix":
        if path is None:
            raise ValueError("topology 'matrix' needs a loss matrix file (--matrix FILE)")
        return from_file(path)
    raise ValueError(f"unknown topology {kind!r}: choose one of {', '.join(KINDS)}")
