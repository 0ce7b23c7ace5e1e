"""A test double of the network for the sans-I/O node core's protocol tests: step node cores
(`rocknet.node.Node`) through rounds in memory, each row lost on its own.

Not a fleet simulator (`rocknet simulate` runs boards' `Runner`s over the BLE medium,
`rocknet_host.sim.fleet`): it exists so that the agreement protocol is tested under omissions a
coded radio round hides (single rows lost, deaf and mute nodes), row by row.

Each round every live node contributes its rows; every live receiver then gets each row of the
round independently lost with probability ``loss`` (seeded), except its own rows, and takes the
round with `Node.end_round`. Events happen before a round: a crashed node misses rounds; a
rebooted node is built afresh by the factory and restores its last checkpoint (what its
``save`` callable stored); a deaf node hears nothing; a mute node is heard by nobody (a
one-way link).

Also here: `digest_at` and `outcomes` (compare nodes at a common sample), `chain_reference`
(the digest from its definition), `replay` (rebuild a head block from a node's log) and
`build_fleet` (node cores from a host plan and dataset).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rocknet_host.planning.board import owner_split
from rocknet_host.runtimes import import_device

Factory = Callable[[int, Callable[[bytes], None]], Any]


ACTIONS = ("crash", "reboot", "deaf", "hear", "mute", "unmute")


@dataclass(frozen=True)
class Event:
    """Before round ``round_no``, node ``node``: crashes, reboots (from its checkpoint), goes
    deaf (receives nothing but its own rows) or hears again, goes mute (nobody receives its
    rows, a one-way link) or speaks again."""

    round_no: int
    node: int
    action: str


@dataclass
class FleetRun:
    """N node cores, a lossy in-memory broadcast, and a fault schedule."""

    n: int
    factory: Factory  # factory(node id, save callable) -> Node
    loss: float = 0.0
    seed: int = 0
    events: Iterable[Event] = ()
    nodes: list[Any] = field(init=False)
    alive: list[bool] = field(init=False)
    checkpoints: dict[int, bytes] = field(init=False, default_factory=dict)
    round_no: int = field(init=False, default=0)
    reboots: dict[int, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")
        self._rng = random.Random(f"rocknet-fleet-run/{self.seed}")
        self._events: dict[int, list[Event]] = {}
        for ev in self.events:
            if ev.action not in ACTIONS:
                raise ValueError(f"event action must be one of {ACTIONS}, got {ev.action!r}")
            self._events.setdefault(ev.round_no, []).append(ev)
        self.nodes = [self._build(i) for i in range(self.n)]
        self.alive = [True] * self.n
        self.deaf = [False] * self.n
        self.mute = [False] * self.n

    def _build(self, i: int) -> Any:
        def save(parts: list[bytes], i: int = i) -> None:  # `Node.checkpoint`'s parts
            self.checkpoints[i] = b"".join(bytes(p) for p in parts)

        return self.factory(i, save)

    def _fault(self, ev: Event) -> None:
        if ev.action in ("deaf", "hear"):
            self.deaf[ev.node] = ev.action == "deaf"
            return
        if ev.action in ("mute", "unmute"):
            self.mute[ev.node] = ev.action == "mute"
            return
        if ev.action == "crash":
            self.alive[ev.node] = False
            return
        node = self._build(ev.node)
        body = self.checkpoints.get(ev.node)
        if body is not None:
            node.restore(body)
        else:
            node.rejoin()  # no checkpoint yet: fresh weights, back in through a decision
        self.nodes[ev.node] = node
        self.alive[ev.node] = True
        self.reboots[ev.node] = self.reboots.get(ev.node, 0) + 1

    def step(self) -> None:
        """One round: faults due now, then contributions, lossy delivery, and end_round."""
        r = self.round_no
        for ev in self._events.get(r, ()):
            self._fault(ev)
        live = [i for i in range(self.n) if self.alive[i]]
        m = self.nodes[live[0]].m if live else 0
        truth: list[bytes | None] = [None] * m
        own: dict[int, set[int]] = {}
        muted: set[int] = set()
        for i in live:
            rows = self.nodes[i].begin_round(r)
            own[i] = set(rows)
            if self.mute[i]:
                muted |= own[i]
            for k, data in rows.items():
                truth[k] = bytes(data)
        for i in live:
            got: list[bytes | None] = []
            for k, row in enumerate(truth):
                if k in own[i]:
                    got.append(row)
                elif row is None or self.deaf[i] or k in muted:
                    got.append(None)
                else:
                    got.append(row if self._rng.random() >= self.loss else None)
            self.nodes[i].end_round(r, got)
        self.round_no += 1

    def run(self, rounds: int) -> FleetRun:
        for _ in range(rounds):
            self.step()
        return self

    # ----- what the fleet agreed on -----

    def live_nodes(self) -> list[Any]:
        return [self.nodes[i] for i in range(self.n) if self.alive[i]]

    def digests(self, nodes: Iterable[int] | None = None) -> dict[int, str]:
        ids = range(self.n) if nodes is None else nodes
        return {i: self.nodes[i].digest.hex() for i in ids if self.alive[i]}

    def consistent(self, nodes: Iterable[int] | None = None) -> bool:
        """All given live nodes (default: all live) applied exactly the same updates, up to
        the last sample all of them have processed."""
        ids = [i for i in (range(self.n) if nodes is None else nodes) if self.alive[i]]
        if not ids:
            return True
        s = self.common_sample(ids)
        return len({digest_at(self.nodes[i], s) for i in ids}) == 1

    def common_sample(self, ids: Iterable[int]) -> int:
        return min(self.nodes[i].applied_through for i in ids)


def digest_at(node: Any, sample: int) -> bytes:
    """A node's digest once it had processed ``sample`` (needs ``log=True``): the digest after
    its last logged entry at or before that sample."""
    out = None
    for entry in node.applied:
        if entry[1] > sample:
            break
        out = entry[3]
    return out if out is not None else bytes(16)


def chain_reference(prev: bytes, entry: bytes) -> bytes:
    """The consistency digest from its definition (docs/protocol.md), independent of the device
    code: the last block of AES-128-CBC under the public key "rocknet-digest-1", IV ``prev``,
    over len(entry) (4 bytes, little-endian) || entry, zero padded to whole blocks."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    msg = len(entry).to_bytes(4, "little") + entry
    msg += bytes(-len(msg) % 16)
    enc = Cipher(algorithms.AES(b"rocknet-digest-1"), modes.CBC(prev)).encryptor()
    return (enc.update(msg) + enc.finalize())[-16:]


def outcomes(node: Any, since: int = 0, until: int | None = None) -> list[tuple[int, str]]:
    """(sample, 'A' applied | 'D' dropped) a node processed in [since, until]."""
    return [(e[1], e[0]) for e in node.applied if e[0] in "AD" and e[1] >= since
            and (until is None or e[1] <= until)]


def replay(node: Any, head: Any, series_of: Callable[[int], bytes]) -> Any:
    """Rebuild a node's head block from what it logged (``log=True``): every applied training
    sample (its summed logit bytes, in the logged member order, with the features recomputed
    from ``series_of(sample)``) and every optimizer step, in order, on a fresh ``head``. The
    host's view of the global model is the replayed blocks side by side. A node that restored
    a checkpoint starts from that checkpoint instead: replay it from there (not done here)."""
    schedule_mod = import_device("rocknet.schedule")
    xp = import_device("rocknet.xp")
    nb = node.geo.nb
    counts = xp.np.zeros(node.slice.n_features, dtype=xp.uint16)
    for kind, s, payload, _ in node.applied:
        if kind == "R":
            raise ValueError(f"node {node.id} restored a checkpoint at sample {s}; replay "
                             "from that checkpoint instead of a fresh head")
        if kind == "S":
            head.step()
        elif kind == "A" and payload[1] == schedule_mod.TRAIN:
            z = node.sum_logits(payload[4 + nb:])
            node.slice.transform(series_of(s), counts)
            head.apply(xp.np.array(z, dtype=xp.float_), payload[0], counts)
    return head


def build_fleet(plan: Any, dataset: Any, head_factory: Callable[[int, int, int], Any], *,
                row_size: int, epochs: int = 1, batch: int = 128, gap: int = 0,
                **node_kw: Any) -> tuple[Factory, Any]:
    """Node cores for a host `plan.Plan` and a `data.Dataset`: node i computes its plan slice,
    owns a contiguous share of the training and test series (quantized with the plan's
    quantizer; the test series are the evaluation phase) and holds the head block
    ``head_factory(i, n_features_i, n_classes)``. Returns (factory(i, save) -> Node,
    schedule); ``gap`` idle rounds follow each batch (`node.Schedule`); ``node_kw`` goes to
    `Node` (agreement, window, gone_after, checkpoint_every, log, ...)."""
    node_mod = import_device("rocknet.node")
    n = plan.n_nodes
    Qtr = plan.quantizer(dataset.X_train).astype("int8")
    Qte = plan.quantizer(dataset.X_test).astype("int8")
    tr = owner_split(len(Qtr), n)
    te = owner_split(len(Qte), n)
    sched = node_mod.Schedule([b - a for a, b in tr], [b - a for a, b in te], epochs=epochs,
                              batch=batch, gap=gap)
    c = plan.n_classes

    def make(i: int, save: Callable[[bytes], None] | None = None) -> Any:
        feats = plan.node_features(i)
        data = {
            "train": [(Qtr[k].tobytes(), int(dataset.y_train[k])) for k in range(*tr[i])],
            "eval": [(Qte[k].tobytes(), int(dataset.y_test[k])) for k in range(*te[i])],
        }
        head = head_factory(i, len(feats["biases"]), c)
        return node_mod.Node(i, n, feats, head, c, row_size, sched, data=data, save=save,
                             **node_kw)

    return make, sched
