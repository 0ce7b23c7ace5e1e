"""A whole fleet learning over the simulated BLE medium, each node the board's own loop.

`Simulation` writes what ``rocknet plan`` writes for boards (node plans with their head,
schedule and run sections, data files, the fleet key), then runs `sim.fleet.Fleet`: every node
is a ``rocknet.run()`` `Runner` with its radio adapter over a virtual ``_bleio`` (nRF52840
profiles) or ``bluetooth`` (ESP32), in CPython threads or each in its own MicroPython
(``runtime="micropython"``, which also reports the peak heap per node; with ``mpy_nodes``
only those boards run in MicroPython and have heap figures, the others in CPython threads).

The schedule trains ``epochs`` passes over the training set (one sample per round, owners
round-robin) and then predicts the test set once over the air (the predict phase: series
travel without labels; the host scores the agreed predictions). Between epochs the host
estimates test accuracy from the live members' head blocks (CPython only: summed partial
logits of the bit-exact reference counts); a progress figure, the reported accuracy is the
fleet's.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import boards
from ..data import Dataset
from ..planning import board as board_plan
from ..planning import features as plan_mod
from ..planning import head as head_plan
from ..planning.features import Plan
from ..reference import minirocket as reference
from ..runtimes import import_device, profiles
from ..runtimes.heap import HEAP_KEYS
from . import compute, energy, topology
from .fleet import ACTIONS, Event, Fleet, ThreadProgram, log_digest_at
from .radio import profile

MODES = ("gradient", "ridge")
RUNTIMES = ("cpython", "micropython")
COMPUTE = ("board", "none")
TOPOLOGIES = ("full", "line", "grid", "random")
KEY = b"rocknet fleet sim key"


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
    runtime: str = "cpython"  # where the boards' programs run: cpython or micropython
    board: str | None = None  # boards/<board>.toml: profile, heap budget, current draw
    profile: str | None = None  # MicroPython module set (default: the board's)
    heap_budget: int | None = None  # bytes (default: the board's); MicroPython enforces it
    compute: str = "board"  # board: charge each board's compute on its clock model; none: free
    enforce_heap: bool = True  # False: measure the heap only (`rocknet bench memory`)
    code_format: str | None = None  # MicroPython: rocknet from "py" or "mpy" (else the profile's)
    mpy_nodes: set[int] | None = None  # MicroPython: only these boards (None: all), others CPython
    wire: str = head_plan.DEFAULT_WIRE  # partial logits on the air: int16 or float32
    keep: str = "auto"  # what a node keeps of a sample awaiting its decision: codes, series,
    #                     auto (series where codes exceed the budget of the board, `board` or
    #                     the radio's, its code as the boards load it)
    pending: int | None = None  # each node's ring of undecided samples; None: auto (2 w + 4,
    #                             or w + 4 where the heap estimate with 2 w + 4 exceeds the
    #                             budget, weighed as for keep)


@dataclass
class Progress:
    round_no: int
    total: int  # rounds in the schedule
    phase: str = "training"  # training | predicting | finishing
    epoch: int | None = None  # set when an epoch just ended
    accuracy: float | None = None  # host estimate at that point


def deadline_for(topo: topology.Topology) -> float:
    """Round deadline: 1 s for one hop, 0.6 s more per further hop (a round floods the whole
    fleet; a round cut short by its deadline drops its sample)."""
    return 1.0 + 0.6 * max(0, topo.diameter - 1)


def check_events(events: list[Event], n: int, rounds: int) -> None:
    """Refuse events that would mean nothing: unknown node or action, a round past the
    schedule, a crash of a node already crashed (without a reboot in between)."""
    down: set[int] = set()
    for ev in sorted(events, key=lambda e: e.round_no):
        where = f"{ev.action} {ev.node}@{ev.round_no}"
        if ev.action not in ACTIONS:
            raise ValueError(f"{where}: unknown fault; known are {', '.join(ACTIONS)}")
        if not 0 <= ev.node < n:
            raise ValueError(f"{where}: nodes are 0..{n - 1}")
        if not 0 <= ev.round_no < rounds:
            raise ValueError(f"{where}: the schedule has rounds 0..{rounds - 1}; choose a "
                             "round inside it (more --epochs make it longer)")
        if ev.action == "crash":
            if ev.node in down:
                raise ValueError(f"{where}: node {ev.node} is already crashed then; "
                                 f"add --reboot {ev.node}@R before it to crash it again")
            down.add(ev.node)
        elif ev.action == "reboot":
            down.discard(ev.node)
        elif ev.node in down:
            raise ValueError(f"{where}: node {ev.node} is crashed then and sends nothing")


class Simulation:
    """Plan + dataset + config -> boards ready to run; `run()` returns the result dict."""

    def __init__(self, plan: Plan, ds: Dataset, cfg: Config,
                 work_dir: str | Path | None = None) -> None:
        if cfg.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {cfg.mode!r}")
        if cfg.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if cfg.batch < 1:
            raise ValueError("--batch must be at least 1")
        if not 0.0 <= cfg.loss < 1.0:
            raise ValueError(f"--loss must be in [0, 1), not {cfg.loss}: at 1.0 nothing "
                             "arrives")
        if cfg.compute not in COMPUTE:
            raise ValueError(f"compute must be one of {COMPUTE}, not {cfg.compute!r}")
        if cfg.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, not {cfg.runtime!r}")
        n = plan.n_nodes
        self.plan, self.ds, self.cfg, self.n = plan, ds, cfg, n
        self.model = profile(cfg.radio)
        topo = topology.build(cfg.topology, n, hops=cfg.hops, loss=cfg.loss, seed=cfg.seed)
        if not topo.connected:
            raise ValueError(f"the {cfg.topology} topology of {n} nodes is not connected; "
                             "raise --hops or choose another topology")
        self.topo = topo
        self.head_states: list[bytes | None] = []
        # what `rocknet plan` writes for boards, with the test set as the predict phase
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rocknet-sim-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        plan_dir = self.work_dir / "plans"
        self.clock_board = cfg.board or self.model.board
        self.deadline_s = cfg.deadline_s or deadline_for(topo)
        self._write_plans(plan_dir)
        # each board's compute on its clock (board clock model), priced per device call
        self.costs = None if cfg.compute == "none" else [
            compute.call_costs({"plan": str(plan_dir / f"node_{i:02d}.plan"),
                                "key": str(plan_dir / "fleet.key"),
                                "data": str(plan_dir / f"node_{i:02d}.data")},
                               self.clock_board) for i in range(n)]
        if self.costs is not None and cfg.deadline_s is None:
            # a round may wait for a neighbour still computing its last sample
            self.deadline_s += max(compute.sample_ms(c, cfg.batch) for c in self.costs) / 1000
            self._write_plans(plan_dir)
        check_events(cfg.events, n, self.sched.length)
        tp = board_plan.owner_split(len(ds.X_test), n)
        self.test_index = {}  # predict sample -> test series index
        for s in range(cfg.epochs * self.sched.period, self.sched.length):
            _, o, k, _ = self.sched.at(s)
            self.test_index[s] = tp[o][0] + k
        self.board = boards.load(cfg.board) if cfg.board else None
        # the module set of the boards the radio profile stands for (CircuitPython 9 on an
        # nRF52840, MicroPython on an ESP32) unless a board or profile says otherwise
        self.profile = cfg.profile or (self.board.profile if self.board else None) or (
            "circuitpython-9" if self.model.alternate else "micropython-esp32")
        self.heap_budget = cfg.heap_budget or (self.board.heap_budget if self.board else None)
        if cfg.runtime != "micropython" and (cfg.profile or cfg.heap_budget or cfg.code_format):
            raise ValueError("--profile, --heap-budget and --code need --runtime micropython "
                             "(CPython has neither a board's module set nor its heap)")
        self.fleet = Fleet(plan_dir, self.work_dir / "boards", topo, self.model,
                           runtime=cfg.runtime, seed=cfg.seed, events=list(cfg.events),
                           on_round=self._on_round, profile=self.profile,
                           heap_budget=self.heap_budget if cfg.enforce_heap else None,
                           float_bits=self.board.float_bits if self.board else 32,
                           code_format=cfg.code_format, costs=self.costs,
                           mpy_nodes=cfg.mpy_nodes)
        Qte = plan.quantizer(ds.X_test).astype("int8")
        self.test_counts = [reference.slice_counts(Qte, plan.node_features(i))
                            for i in range(n)]
        self._progress: Callable[[Progress], None] | None = None
        self._curve: list[tuple[int, float | None]] = []
        self._timed: list[tuple[int, float, float | None]] = []

    def _write_plans(self, plan_dir: Path) -> None:
        """The boards' files, as `rocknet plan` writes them, with this run's deadline."""
        cfg = self.cfg
        self.training = board_plan.Training(
            mode=cfg.mode, epochs=cfg.epochs, batch=cfg.batch, eval=0, predict=True,
            radio=self.model.wire_profile, deadline_ms=int(self.deadline_s * 1000),
            seed=cfg.seed, wire=cfg.wire, keep=cfg.keep, pending=cfg.pending)
        code = {"mpy": "files", "py": "py"}.get(cfg.code_format or "")
        nps = board_plan.node_plans(self.plan, self.ds, self.training,
                                    board=boards.load(self.clock_board), code=code)
        self.node_plans = nps  # what every board was built from
        plan_mod.write(self.plan, plan_dir, nps)
        board_plan.write_data(self.plan, self.ds, self.training, plan_dir)
        (plan_dir / "fleet.key").write_bytes(KEY)
        self.row_size = nps[0]["run"]["row_size"]
        self.sched = import_device("rocknet.node").Schedule.from_dict(nps[0]["schedule"])

    def close(self) -> None:
        """Stop the boards' runtimes and remove the work files; `run` does it at the end."""
        self.fleet.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- progress -----

    def phase(self, r: int) -> str:
        last = self.sched.length - 1
        if r > last:
            return "finishing"
        return "training" if r < self.cfg.epochs * self.sched.period else "predicting"

    def _on_round(self, r: int) -> None:
        p = Progress(min(r + 1, self.sched.length), self.sched.length, self.phase(r))
        period = self.sched.period
        if r > 0 and r % period == 0 and r // period <= self.cfg.epochs:
            p.epoch = r // period
            p.accuracy = self.estimate_accuracy()
            self._curve.append((p.epoch, p.accuracy))
            self._timed.append((p.epoch, self.fleet.medium.now / 1e6, p.accuracy))
        if self._progress is not None:
            self._progress(p)

    def estimate_accuracy(self) -> float | None:
        """Test accuracy of the members' current blocks, summed on the host (CPython boards:
        their heads are read directly; None with MicroPython boards)."""
        nodes = self.fleet.nodes
        ref = self._reference_node()
        if ref is None or nodes[ref].st is None:
            return None
        members = [i for i in range(self.n) if nodes[ref].st[3] >> i & 1]
        z = np.zeros((len(self.ds.y_test), self.plan.n_classes))
        hs = import_device("rocknet.head_sum")
        for i in members:
            prog = nodes[i].program
            if not isinstance(prog, ThreadProgram) or prog.runner is None:
                return None
            h = prog.runner.node.head
            for j, cnt in enumerate(self.test_counts[i]):
                row = hs.pack(h, h.partial_logits(cnt))
                z[j] += np.asarray(hs.unpack(row, len(z[j]), h.wire, h.logit_scale), dtype=float)
        return float(np.mean(np.argmax(z, axis=1) == self.ds.y_test))

    # ----- run -----

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> dict[str, Any]:
        self._progress = on_progress
        t0 = time.perf_counter()
        try:
            # a generous bound: every round of the schedule and the tail at its deadline
            limit = (self.sched.length + self.cfg.tail + 16) * self.deadline_s * 2 + 30
            self.fleet.run(limit)
            self.head_states = self.fleet.head_states()  # what each board trained
            self.fleet.close()  # the boards' heap reports are read as they stop
            res = self._result(time.perf_counter() - t0)
        finally:
            self.close()
        return res

    # ----- the outcome -----

    def _steady(self) -> list[int]:
        """Live boards applying at the end that never left (no reboot, no rejoin)."""
        return [nd.id for nd in self.fleet.nodes if nd.alive and not nd.reboots
                and nd.st is not None and nd.st[2] and not any(e[0] in "JR" for e in nd.log)]

    def _reference_node(self) -> int | None:
        """A live board applying decisions, preferably one that never left."""
        nodes = self.fleet.nodes
        live = [nd.id for nd in nodes if nd.alive and nd.st is not None and nd.st[2]]
        pool = self._steady() or live
        return max(pool, key=lambda i: nodes[i].st[1]) if pool else None

    def consistent(self) -> bool:
        """Boards that never left applied the same updates (equal digests at a common sample);
        a board that rejoined applied the same decisions from its joining sample; a board the
        fleet removed applied, up to where it stopped, only what the fleet applied."""
        nodes = self.fleet.nodes
        steady = [nodes[i] for i in self._steady()]
        ref_id = self._reference_node()
        if ref_id is None:
            return True
        ref = nodes[ref_id]
        if steady:
            s = min(nd.st[1] for nd in steady)
            if len({log_digest_at(nd.log, s) for nd in steady}) > 1:
                return False
        theirs = {(e[0], e[1]): e[2] for e in ref.log if e[0] in "AD"}
        top = ref.st[1]
        for nd in nodes:
            if not nd.alive or nd.st is None or nd in steady:
                continue
            joined = max((e[1] for e in nd.log if e[0] == "J"), default=-1)
            mine = [e for e in nd.log if e[0] in "AD" and joined <= e[1] <= top]
            if any(theirs.get((e[0], e[1])) != e[2] for e in mine):
                return False  # applied something the fleet did not
            if nd.st[2] and joined >= 0:  # rejoined and applying: nothing skipped either
                end = min(nd.st[1], top)
                want = {k for k in theirs if joined <= k[1] <= end}
                if want != {(e[0], e[1]) for e in mine if e[1] <= end}:
                    return False
        return True

    def _stall(self) -> tuple[bool, str | None]:
        """The fleet stalled when no live board applied the schedule's last sample."""
        nodes = self.fleet.nodes
        last = self.sched.length - 1
        live = [nd for nd in nodes if nd.alive and nd.st is not None]
        done = [nd for nd in live if nd.st[1] >= last]
        if done:
            return False, None
        if not live:
            return True, "every board is down"
        reached = max(nd.st[1] for nd in live)
        down = [nd.id for nd in nodes if not nd.alive]
        members = max(live, key=lambda nd: nd.st[1]).st[3]
        m = [i for i in range(self.n) if members >> i & 1]
        lost = [i for i in m if i in down]
        why = (f"no sample was decided after sample {reached}: {len(lost)} of the "
               f"{len(m)} members ({', '.join(map(str, lost))}) are down, and a leader "
               "needs a majority of the members' votes" if 2 * len(lost) >= len(m)
               else f"no sample was decided after sample {reached}")
        return True, why

    def _rounds(self) -> list[dict[str, Any]]:
        """Per fleet round: mean time the live boards spent in it, and whether every board
        ended it with every expected row decoded (rather than at its deadline)."""
        out = []
        nodes = self.fleet.nodes
        top = max((max(nd.begins) for nd in nodes if nd.begins), default=-1)
        for r in range(top):
            spans = [nd.begins[r + 1] - nd.begins[r] for nd in nodes
                     if r in nd.begins and r + 1 in nd.begins]
            if not spans:
                continue
            ends = [nd.round_end.get(r) for nd in nodes if r in nd.round_end]
            start = min(nd.begins[r] for nd in nodes if r in nd.begins)
            out.append({"round": r, "start_s": start / 1e6,
                        "elapsed_s": float(np.mean(spans)) / 1e6,
                        "complete": bool(ends) and all(k == 0 for k in ends)})
        return out

    def _compute_note(self) -> dict[str, Any]:
        """How board compute entered the simulated time (the summary names it)."""
        if self.costs is None:
            return {"clock": "none: board compute took no simulated time"}
        c = boards.load(self.clock_board)
        return {"clock": f"board clock model, {c.key} ({c.cpu_mhz:g} MHz)",
                "board": c.key,
                "ms_per_call": {k: round(float(np.mean([cs[k] for cs in self.costs])) / 1000, 3)
                                for k in compute.KINDS},
                "calls": "series: one sample's slice transform + partial logits; apply: "
                         "logits summed + head update (+ the slice transform again on a node "
                         "keeping series) + the digest chained (AES); step: optimizer step; "
                         "rx/tx: one advert opened / sealed by the Link (mean over nodes)"}

    def _result(self, wall_s: float) -> dict[str, Any]:
        fl = self.fleet
        nodes = fl.nodes
        ref = self._reference_node()
        last = self.sched.length - 1
        preds: dict[int, int] = {}
        if ref is not None:
            st = nodes[ref].st
            preds = {int(s): int(c) for s, c in (st[13] if st else [])}
        y = self.ds.y_test
        correct = sum(1 for s, c in preds.items() if c == int(y[self.test_index[s]]))
        cur = energy.current_model(self.cfg.board or self.model.board)
        members = nodes[ref].st[3] if ref is not None else 0
        per_node = []
        for i, st in enumerate(fl.medium.snapshot()):
            nd = nodes[i]
            e_mj = cur.energy_mj(st.tx_us / 1e6, st.rx_us / 1e6, st.cpu_us / 1e6,
                                 st.alive_us / 1e6)
            commits = sum(1 for e in nd.log if e[0] == "A" and e[1] <= last)
            drops = sum(1 for e in nd.log if e[0] == "D" and e[1] <= last)
            per_node.append({
                "node": i, "alive": nd.alive, "synced": bool(nd.st and nd.st[2]),
                "member": bool(members >> i & 1),
                "applied_through": nd.st[1] if nd.st else -1,
                "crashes": st.crashes, "reboots": nd.reboots,
                "rejoined_round": nd.rejoined_round, "commits": commits, "drops": drops,
                "airtime_s": st.airtime_us / 1e6, "radio_rx_s": st.rx_us / 1e6,
                "energy_j": e_mj / 1000.0, "compute_s": nd.compute_us / 1e6,
                "tx_adverts": st.tx_adverts,
                "rx_delivered": st.rx_delivered,
                # MicroPython: the board's heap (`heap`): gc.mem_alloc() after collections at
                # every round boundary, code included; board bytes: floats as on the board
                **{k: (nd.heap or {}).get(k) for k in HEAP_KEYS},
                "error": nd.error, "error_type": nd.error_type,
            })
        why: dict[str, int] = {}
        flagged = set()
        for nd in nodes:
            if nd.st is None:
                continue
            for k, v in nd.st[12].items():
                why[k] = why.get(k, 0) + v
            flagged |= {j for j in range(self.n) if nd.st[7] >> j & 1}
        stalled, stall_reason = self._stall()
        rounds = self._rounds()
        committed = per_node[ref]["commits"] if ref is not None else 0
        dropped = per_node[ref]["drops"] if ref is not None else 0
        return {
            "dataset": self.ds.name, "nodes": self.n, "mode": self.cfg.mode,
            "epochs": self.cfg.epochs, "features": self.plan.n_features,
            "variant": self.plan.variant, "topology": self.topo.describe(),
            "loss": self.cfg.loss, "radio": self.cfg.radio, "row_size": self.row_size,
            "wire": self.node_plans[0]["head"]["wire"],
            "keep": [p["run"]["keep"] for p in self.node_plans],
            "pending": [p["run"]["pending"] for p in self.node_plans],
            "deadline_s": self.deadline_s, "loop": "rocknet.runner.Runner",
            "adapter": "rocknet.radio." + ("bleio over a virtual _bleio" if fl.radio == "bleio"
                                           else "bluetooth over a virtual bluetooth"),
            "events": [[e.node, e.round_no, e.action] for e in self.cfg.events],
            "fired": [[e.node, e.round_no, e.action, t / 1e6] for e, t in fl.fired],
            # accuracy over the test series the fleet predicted (a crashed node's own series
            # never go on air); accuracy_all counts the unpredicted ones as wrong
            "accuracy": correct / len(preds) if preds else 0.0,
            "accuracy_all": correct / len(y), "predicted": len(preds), "n_test": int(len(y)),
            "reference_accuracy": None, "accuracy_estimate_by_epoch": self._curve,
            "accuracy_by_sim_time": self._timed,
            "consistent": self.consistent(), "stalled": stalled, "stall_reason": stall_reason,
            "drop_reasons": dict(sorted(why.items())), "flagged": sorted(flagged),
            "failed": [i for i in range(self.n) if nodes[i].error],
            "out_of_memory": [i for i in range(self.n) if nodes[i].error_type == "MemoryError"
                              or (nodes[i].heap or {}).get("out_of_memory")],
            "board": self.cfg.board, "profile": self.profile,
            "code_format": (self.cfg.code_format or profiles.get(self.profile).code_format
                            if self.cfg.runtime == "micropython" else None),
            "heap_budget_bytes": self.heap_budget,
            "sim_time_s": fl.medium.now / 1e6, "rounds": len(rounds),
            "rounds_complete": sum(1 for x in rounds if x["complete"]),
            "mean_round_s": float(np.mean([x["elapsed_s"] for x in rounds])) if rounds else 0.0,
            "round_elapsed_s": [x["elapsed_s"] for x in rounds],
            "committed": committed, "dropped": dropped,
            "crashed": [i for i in range(self.n) if not nodes[i].alive],
            "members": [i for i in range(self.n) if members >> i & 1],
            "energy_model": cur.source, "compute": self._compute_note(),
            "wall_s": wall_s, "runtime": self.cfg.runtime,
            "micropython_nodes": [i for i in range(self.n) if fl.in_mpy(i)],
            "per_node": per_node,
        }
