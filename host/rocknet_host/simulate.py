"""A whole fleet learning over the simulated BLE medium: N node cores (`rocknet.node`, CPython)
with the real head (`rocknet.head`), each behind its own Link on `sim.medium` (`FleetSim`).

The schedule trains ``epochs`` passes over the training set (one sample per round, owners
round-robin) and then predicts the test set once over the air (the predict phase: series
travel without labels; the host scores the agreed predictions). Between epochs the host
estimates test accuracy from the live members' head blocks (summed partial logits of the
bit-exact reference counts): a progress figure only, the reported accuracy is the fleet's.

Ridge trains round by round with the head's local updates (``solver="sgd"``); its dual closed
form needs a Gram all-reduce the node protocol does not carry yet.

``runtime="micropython"``: every node core (Node + Head + Link) runs in its own MicroPython
1.29 + ulab interpreter (`fleet_mpy`), the device's code path; the medium stays here and
adverts cross as bytes. Each node then reports its peak heap (``peak_heap_bytes``, measured
in the WebAssembly build where floats are float64, and ``peak_heap_board_bytes`` with the
head's floats counted as float32; method in `fleet_mpy`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reference
from .data import Dataset
from .fleet_run import Event, owner_split
from .fleet_sim import FleetSim, row_size_for
from .plan import Plan
from .runtime import import_device
from .sim import energy, topology
from .sim.radio import profile

MODES = ("gradient", "ridge")
RUNTIMES = ("cpython", "micropython")
TOPOLOGIES = ("full", "line", "grid", "random")
WINDOW = 4  # decision entries relayed per control message (Node's default)


@dataclass
class Config:
    mode: str = "gradient"
    epochs: int = 20
    batch: int = 8
    topology: str = "full"
    hops: int | None = None
    loss: float = 0.0
    radio: str = "nrf52840-ext"
    events: list[Event] = field(default_factory=list)
    seed: int = 0
    deadline_s: float | None = None  # round deadline; None: by hop diameter (deadline_for)
    tail: int = 64  # extra rounds at most for the last decisions to land
    runtime: str = "cpython"  # where node cores run: cpython or micropython


@dataclass
class Progress:
    round_no: int
    total: int  # rounds in the schedule
    epoch: int | None = None  # set when an epoch just ended
    accuracy: float | None = None  # host estimate at that point


def deadline_for(topo: topology.Topology) -> float:
    """Round deadline: 1 s for one hop, 0.6 s more per further hop (a round floods the whole
    fleet; a round cut short by its deadline drops its sample)."""
    return 1.0 + 0.6 * max(0, topo.diameter - 1)


def reference_accuracy(ds: Dataset, seed: int = 0) -> float:
    """aeon MiniRocket (10,000 features) + StandardScaler(with_mean=False) + RidgeClassifierCV
    (alphas logspace(-3, 3, 10)): the float baseline."""
    from aeon.transformations.collection.convolution_based import (  # type: ignore[import-untyped]
        MiniRocket,
    )
    from sklearn.linear_model import RidgeClassifierCV  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    mr = MiniRocket(random_state=seed, n_jobs=1)
    Ftr = mr.fit_transform(ds.X_train[:, None, :])
    Fte = mr.transform(ds.X_test[:, None, :])
    sc = StandardScaler(with_mean=False).fit(Ftr)
    clf = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(sc.transform(Ftr), ds.y_train)
    return float(clf.score(sc.transform(Fte), ds.y_test))


class Simulation:
    """Plan + dataset + config -> a ready `FleetSim`; `run()` returns the result dict."""

    def __init__(self, plan: Plan, ds: Dataset, cfg: Config) -> None:
        if cfg.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {cfg.mode!r}")
        if cfg.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if cfg.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {cfg.runtime!r}")
        n = plan.n_nodes
        for ev in cfg.events:
            if not 0 <= ev.node < n:
                raise ValueError(f"{ev.action} of node {ev.node}: nodes are 0..{n - 1}")
        self.plan, self.ds, self.cfg, self.n = plan, ds, cfg, n
        from . import head_plan  # lands with the head; imported here so the CLI loads without

        node_mod = import_device("rocknet.node")
        head_mod = import_device("rocknet.head")
        secs = head_plan.sections(plan, ds.X_train, mode=cfg.mode, batch=cfg.batch,
                                  passes=cfg.epochs, solver="sgd")
        nps = head_plan.node_plans(plan, secs)
        self.model = profile(cfg.radio)
        lb = 2 if secs[0]["wire"] == "int16" else 4
        self.row_size = row_size_for(self.model, lambda rs: node_mod.Geometry(
            n, ds.length, plan.n_classes, rs, WINDOW, lb))
        Qtr = plan.quantizer(ds.X_train).astype("int8")
        Qte = plan.quantizer(ds.X_test).astype("int8")
        tr, te = owner_split(len(Qtr), n), owner_split(len(Qte), n)
        self.sched = node_mod.Schedule([b - a for a, b in tr], [], [b - a for a, b in te],
                                       epochs=cfg.epochs, batch=cfg.batch)
        self.test_index = {}  # predict sample -> test series index
        for s in range(cfg.epochs * self.sched.period, self.sched.length):
            _, o, k, _ = self.sched.at(s)
            self.test_index[s] = te[o][0] + k
        reboots = any(ev.action == "reboot" for ev in cfg.events)
        c = plan.n_classes
        every = 4 * cfg.batch if reboots else 0
        self.mpy: Any = None
        if cfg.runtime == "micropython":
            from .fleet_mpy import MpyFleet

            self.mpy = MpyFleet(n)
            sched_d = self.sched.to_dict()

        def make(i: int, row_size: int, save: Callable[[bytes], None]) -> Any:
            d = {"train": [(Qtr[k].tobytes(), int(ds.y_train[k])) for k in range(*tr[i])],
                 "predict": [Qte[k].tobytes() for k in range(*te[i])]}
            if self.mpy is not None:
                return self.mpy.node(i, n_nodes=n, node_plan=nps[i], n_classes=c,
                                     row_size=row_size, schedule=sched_d, data=d, save=save,
                                     window=WINDOW, checkpoint_every=every,
                                     twin=lambda: head_mod.Head(nps[i]))
            return node_mod.Node(i, n, plan.node_features(i), head_mod.Head(nps[i]), c,
                                 row_size, self.sched, data=d, save=save, log=True,
                                 window=WINDOW, checkpoint_every=every)

        topo = topology.build(cfg.topology, n, hops=cfg.hops, loss=cfg.loss, seed=cfg.seed)
        if not topo.connected:
            raise ValueError(f"the {cfg.topology} topology of {n} nodes is not connected; "
                             "raise --hops or choose another topology")
        self.topo = topo
        self.deadline_s = cfg.deadline_s or deadline_for(topo)
        try:
            self.fleet = FleetSim(topo, self.model, make, self.row_size, seed=cfg.seed,
                                  deadline_s=self.deadline_s, events=cfg.events)
        except BaseException:
            self.close()
            raise
        self.test_counts = [reference.slice_counts(Qte, plan.node_features(i))
                            for i in range(n)]

    def close(self) -> None:
        """Stop the MicroPython interpreters (if any); `run` does it when it finishes."""
        if self.mpy is not None:
            self.mpy.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- views -----

    def _reference_node(self) -> int | None:
        """A live node applying decisions (the one furthest along)."""
        fs = self.fleet
        live = [i for i in range(self.n) if fs.alive[i] and fs.nodes[i].synced]
        steady = [i for i in live if not any(e[0] in "RJ" for e in fs.nodes[i].applied)]
        pool = steady or live  # prefer a node that never left (its counters span the run)
        return max(pool, key=lambda i: fs.nodes[i].applied_through) if pool else None

    def estimate_accuracy(self) -> float | None:
        """Test accuracy of the members' current blocks, summed on the host."""
        ref = self._reference_node()
        if ref is None:
            return None
        fs = self.fleet
        members = [i for i in range(self.n) if fs.nodes[ref].members >> i & 1]
        z = np.zeros((len(self.ds.y_test), self.plan.n_classes))
        for i in members:
            h = fs.nodes[i].head
            for j, cnt in enumerate(self.test_counts[i]):
                z[j] += np.asarray(h.unpack(h.pack(h.partial_logits(cnt))), dtype=float)
        return float(np.mean(np.argmax(z, axis=1) == self.ds.y_test))

    def consistent(self) -> bool:
        """Live nodes that never left applied the same updates (equal digests at a common
        sample); a node that rejoined applied the same decisions from its joining sample. A
        live node the fleet removed (cut off) counts up to where it stopped."""
        fs = self.fleet
        live = [i for i in range(self.n) if fs.alive[i]]
        if not live:
            return True
        if not all(fs.nodes[i].synced for i in live):
            return False
        steady = [i for i in live if not any(e[0] in "RJ" for e in fs.nodes[i].applied)]
        back = [i for i in live if i not in steady]
        if steady and not fs.consistent(steady):
            return False
        s = min(fs.nodes[i].applied_through for i in live)
        ref = fs.nodes[(steady or live)[0]]

        def log(nd: Any, since: int) -> list[tuple[str, int, bytes]]:
            return [(e[0], e[1], e[2]) for e in nd.applied
                    if e[0] in "ADS" and since <= e[1] <= s]

        for i in back:
            nd = fs.nodes[i]
            joined = max((e[1] for e in nd.applied if e[0] == "J"), default=s + 1)
            if log(nd, joined) != log(ref, joined):
                return False
        return True

    # ----- run -----

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> dict[str, Any]:
        try:
            return self._run(on_progress)
        finally:
            self.close()

    def _run(self, on_progress: Callable[[Progress], None] | None) -> dict[str, Any]:
        fs, sched, cfg = self.fleet, self.sched, self.cfg
        t0 = time.perf_counter()
        curve: list[tuple[int, float | None]] = []
        timed: list[tuple[int, float, float | None]] = []  # (epoch, sim time s, accuracy)
        period = sched.period
        for r in range(sched.length):
            fs.step()
            p = Progress(r + 1, sched.length)
            if (r + 1) % period == 0 and (r + 1) // period <= cfg.epochs:
                p.epoch = (r + 1) // period
                p.accuracy = self.estimate_accuracy()
                curve.append((p.epoch, p.accuracy))
                timed.append((p.epoch, fs.medium.now / 1e6, p.accuracy))
            if on_progress is not None:
                on_progress(p)
        last = sched.length - 1
        for _ in range(cfg.tail):  # idle rounds until every live member decided the last sample
            live = [i for i in range(self.n) if fs.alive[i] and fs.nodes[i].synced]
            if all(fs.nodes[i].applied_through >= last for i in live):
                break
            fs.step()
        res = self._result(curve, time.perf_counter() - t0)
        res["accuracy_by_sim_time"] = timed
        return res

    def _result(self, curve: list[tuple[int, float | None]], wall_s: float) -> dict[str, Any]:
        fs = self.fleet
        ref = self._reference_node()
        preds = fs.nodes[ref].predictions if ref is not None else {}
        y = self.ds.y_test
        correct = sum(1 for s, c in preds.items() if c == int(y[self.test_index[s]]))
        cur = energy.current_model()
        members = fs.nodes[ref].members if ref is not None else 0
        per_node = []
        if self.mpy is not None:
            self.mpy.sample(fs.alive)
        for i, st in enumerate(fs.medium.snapshot()):
            nd = fs.nodes[i]
            e_mj = cur.energy_mj(st.tx_us / 1e6, st.rx_us / 1e6, st.cpu_us / 1e6,
                                 st.alive_us / 1e6)
            per_node.append({
                "node": i, "alive": bool(fs.alive[i]), "synced": bool(nd.synced),
                "member": bool(members >> i & 1), "applied_through": nd.applied_through,
                "crashes": st.crashes, "reboots": st.reboots,
                "airtime_s": st.airtime_us / 1e6, "radio_rx_s": st.rx_us / 1e6,
                "energy_j": e_mj / 1000.0, "tx_adverts": st.tx_adverts,
                "rx_delivered": st.rx_delivered, "commit": nd.stats["commit"],
                "drop": nd.stats["drop"], "peak_heap_bytes": None,
            })
            if self.mpy is not None:
                heap, board = self.mpy.peak_heap(i)
                per_node[-1]["peak_heap_bytes"] = heap  # WebAssembly build: float64 floats
                per_node[-1]["peak_heap_board_bytes"] = board  # head floats as float32
        stats = fs.nodes[ref].stats if ref is not None else {"commit": 0, "drop": 0}
        rounds = fs.rounds
        return {
            "dataset": self.ds.name, "nodes": self.n, "mode": self.cfg.mode,
            "epochs": self.cfg.epochs, "features": self.plan.n_features,
            "variant": self.plan.variant, "topology": self.topo.describe(),
            "loss": self.cfg.loss, "radio": self.cfg.radio, "row_size": self.row_size,
            "deadline_s": self.deadline_s,
            "events": [[e.node, e.round_no, e.action] for e in self.cfg.events],
            # accuracy over the test series the fleet predicted (a crashed node's own series
            # never go on air); accuracy_all counts the unpredicted ones as wrong
            "accuracy": correct / len(preds) if preds else 0.0,
            "accuracy_all": correct / len(y), "predicted": len(preds), "n_test": int(len(y)),
            "reference_accuracy": None, "accuracy_estimate_by_epoch": curve,
            "consistent": self.consistent(),
            "sim_time_s": fs.medium.now / 1e6, "rounds": len(rounds),
            "rounds_complete": sum(1 for x in rounds if x.complete),
            "mean_round_s": float(np.mean([x.elapsed_s for x in rounds])) if rounds else 0.0,
            "round_elapsed_s": [x.elapsed_s for x in rounds],
            "committed": stats["commit"], "dropped": stats["drop"],
            "crashed": [i for i in range(self.n) if not fs.alive[i]],
            "members": [i for i in range(self.n) if members >> i & 1],
            "energy_model": cur.source, "wall_s": wall_s, "runtime": self.cfg.runtime,
            "per_node": per_node,
        }
