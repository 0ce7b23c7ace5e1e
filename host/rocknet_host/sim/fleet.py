"""The one fleet loop: every node is a board running ``rocknet.run()``'s own `Runner`, built
from the files ``rocknet plan`` writes for boards, talking to the simulated BLE medium through
the board's own radio adapter (`rocknet.radio.bleio` over a virtual ``_bleio`` on nRF52840
profiles, `rocknet.radio.bluetooth` over a virtual ``bluetooth`` on ESP32 ones).

Each node's program runs in its own runtime: a CPython thread (``runtime="cpython"``) or its
own MicroPython 1.29 + ulab process (``"micropython"``; with ``mpy_nodes``, only those boards,
the others in CPython threads: boards meet only on the medium, so a board's heap does not
depend on where its peers run). Whenever the program does something
that takes time on a board (sleeps, scans), it blocks and hands control to this scheduler
(`vboard`); the scheduler runs the medium (`sim.medium`, driven mode: advertising events,
channels, airtime, collisions, loss, drift) until that node's wake-up time, then resumes it
with the adverts it received. One node runs at a time, so a run repeats exactly for a seed.

Compute: with ``costs`` (`sim.compute.call_costs` per board), each compute call moves the
board's clock on by its cost (`vboard.meter`), and the scheduler holds the board busy that
long before its radio commands take effect and its wait starts; the time counts as CPU time
for energy.
Without, compute takes no simulated time.

Faults are board events at a fleet round (the highest round a live board is in): ``crash``
(power off for good), ``reboot`` (power-cycle: a running board loses its RAM and restarts from
its files, checkpoints included; a crashed one is switched back on) and ``nan-logits`` (the
board's head from then on yields NaN partial logits: a bug or a bit flip; it goes on air).
"""

from __future__ import annotations

import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtimes import import_device
from ..runtimes.micropython import DeviceError, MicroPython
from . import compute, vboard
from .medium import Medium
from .radio import RadioModel
from .topology import Topology

ACTIONS = ("crash", "reboot", "nan-logits")
OFF_MS = 200  # a power-cycled board stays off this long
_VBOARD = Path(vboard.__file__)


@dataclass(frozen=True)
class Event:
    """Node ``node`` does ``action`` once the fleet reaches round ``round_no``."""

    round_no: int
    node: int
    action: str


# ----- a node's program, in its runtime -----

class Program:
    """One board's program: `start` runs it to its first blocking call and returns that
    request; `resume(reply)` runs it to the next one. A request ``{"done": True}`` says the
    runner finished, ``{"error": text}`` that it failed."""

    def start(self) -> dict[str, Any]:
        raise NotImplementedError

    def resume(self, reply: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def query(self, code: str) -> Any:
        """Run ``code`` on the (blocked) board; returns what it assigned to ``answer``."""
        raise NotImplementedError

    def kill(self) -> None:
        """Power off: the program unwinds; its files stay."""

    def head_state(self) -> bytes:
        """The board's head, saved (`Head.save`)."""
        return bytes(self.query("answer = runner.node.head.save()"))


class ThreadProgram(Program):
    """The board's program in a CPython thread (baton passing: exactly one side runs)."""

    def __init__(self, paths: dict[str, str], radio: str, seed: int,
                 costs: list[float] | None = None, stop_round: int | None = None) -> None:
        self.paths, self.radio, self.seed, self.costs = paths, radio, seed, costs
        self.stop_round = stop_round  # finish at the start of this round (`rocknet bench`)
        self._to_node = threading.Semaphore(0)
        self._to_host = threading.Semaphore(0)
        self._reply: dict[str, Any] = {}
        self._req: dict[str, Any] = {}
        self.runner: Any = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _transport(self, req: dict[str, Any]) -> dict[str, Any]:
        self._req = req
        self._to_host.release()
        self._to_node.acquire()
        return self._reply

    def _main(self) -> None:
        host = vboard.Host(self._transport)
        try:
            self.runner = vboard.start(host, self.paths, self.radio, inject=True,
                                       seed=self.seed, costs=self.costs)
            if isinstance(self.runner, dict):
                raise RuntimeError("the board found a finished result file")
            stop = self.stop_round
            while self.runner.step():
                if stop is not None and self.runner.r is not None and self.runner.r >= stop:
                    break
            st = host.status() if host.status else None
            self._transport({"done": True, "st": st})
        except vboard.Crash:
            self._req = {"killed": True}
            self._to_host.release()
        except BaseException as exc:  # noqa: BLE001 - the host reports it as the node's failure
            self._transport({"error": traceback.format_exc(), "type": type(exc).__name__,
                             "st": host.status() if host.status else None})

    def start(self) -> dict[str, Any]:
        self._thread.start()
        self._to_host.acquire()
        return self._req

    def resume(self, reply: dict[str, Any]) -> dict[str, Any]:
        self._reply = reply
        self._to_node.release()
        self._to_host.acquire()
        return self._req

    def query(self, code: str) -> Any:
        g: dict[str, Any] = {"runner": self.runner}
        exec(code, g)  # the board is blocked: nothing else touches it
        return g.get("answer")

    def kill(self) -> None:
        if self._thread.is_alive():
            self.resume({"x": 1})
            self._thread.join(timeout=10)


_MPY_HOST = """
import vboard, rnhost, json
def _rn_transport(req):
    return json.loads(rnhost.call(json.dumps(req)))
host = vboard.Host(_rn_transport)
vboard.install(host, radio, seed)
"""
# what rocknet.run() imports (its code is in the heap on a board loading .py/.mpy files):
# the package and the one radio adapter of this board's runtime
_MPY_IMPORTS = """
from rocknet import board, head, link, node
__import__("rocknet.radio." + radio)
"""
# a board's code.py holds none of those modules itself: rocknet.start drops its set-up code.
# The step (`vboard.step`) is compiled with vboard, before the "boot" checkpoint: a function
# compiled here, in the set-up's call, kept up to 3 KB of the set-up's garbage alive in some
# runs (not the board's heap: a board runs `Runner.run`, no such function)
_MPY_SETUP = """
del board, head, link, node
runner = vboard.start(host, paths, radio, False, seed)
"""
# the clock model's meter (`vboard.meter`: a wrapper per compute call) is the simulator's, not
# the board's: its heap, measured by the "harness" checkpoint, counts as the baseline's
_MPY_METER = "if not isinstance(runner, dict):\n    vboard.meter(host, runner, costs)"


class MpyProgram(Program):
    """The board's program in its own MicroPython 1.29 + ulab process. Each runner step is
    one call into the interpreter (the WebAssembly build collects garbage only between
    calls, as a board would between its loop's iterations); blocking calls inside a step
    cross to the host over a synchronous channel."""

    def __init__(self, paths: dict[str, str], radio: str, files: dict[str, bytes],
                 seed: int, profile: str | None = None, heap_budget: int | None = None,
                 float_bits: int = 32, heapsize: int = 2 << 20,
                 code_format: str | None = None, stop_round: int | None = None,
                 costs: list[float] | None = None) -> None:
        self.paths = paths
        # the board's module set and heap budget (`profiles`, `heap`): heap checkpoints before
        # rocknet is imported ("boot"), after its code is ("code"), once built, and at every
        # round boundary; ``trace`` keeps each one's figures (label, `checkpoint_heap`'s)
        self.mpy = MicroPython(heapsize=heapsize, host_channel=True, profile=profile,
                               heap_budget=heap_budget, heap_check="manual",
                               float_bits=float_bits, code_format=code_format)
        self.stop_round = stop_round  # finish at the start of this round (`rocknet bench`)
        self.trace: list[tuple[str, dict[str, int]]] = []
        for path, body in files.items():
            self.mpy.put_file(path, body)
        self.mpy.put_file("/lib/vboard.py", _VBOARD.read_bytes())
        self.mpy.set(paths=paths, radio=radio, seed=seed, costs=costs)
        self.costs = costs
        self._round = None
        self._running = False
        self._held: list[Any] | None = None  # the status of a step's end, not handled yet
        self.report: dict[str, Any] | None = None

    def _boot(self) -> dict[str, Any] | None:
        """Import and build as ``rocknet.run()`` does; a board that runs out of memory on the
        way fails there, as the board would."""
        try:
            self.mpy.exec(_MPY_HOST)
            self._checkpoint("boot")
            self.mpy.exec(_MPY_IMPORTS)
            self._checkpoint("code")
            self.mpy.exec(_MPY_SETUP)
            self._checkpoint("built")
            if self.costs:
                self.mpy.exec(_MPY_METER)
                self._checkpoint("harness")
        except DeviceError as exc:
            return {"error": str(exc), "type": exc.exc_type or "DeviceError", "st": None}
        return None

    def _next(self) -> dict[str, Any]:
        """Run steps until the program blocks, finishes or fails."""
        while True:
            if not self._running:
                self.mpy.send_exec("vboard.step(host, runner)")
                self._running = True
            req = self.mpy.host_recv()
            if "error" in req:  # the step failed: let it return, the board is dead
                self.mpy.host_send({})
                self.mpy.read_reply()
                self._running = False
                return self._with_held(req)
            if "end" not in req:
                return self._with_held(req)
            self._held = self._with_held(req)["st"]
            self.mpy.host_send({})
            self.mpy.read_reply()
            self._running = False
            r = req.get("r")
            if r != self._round:  # a round boundary: the heap a board would hold now
                self._round = r
                try:
                    self._checkpoint(f"round{r}")
                except DeviceError as exc:
                    if exc.exc_type != "MemoryError":
                        raise
                    return self._with_held({"error": str(exc), "type": "MemoryError",
                                            "st": None})
                if self.stop_round is not None and r is not None and r >= self.stop_round:
                    return self._with_held({"done": True, "st": self._status()})
            if not req["end"]:
                return self._with_held({"done": True, "st": self._status()})

    def _with_held(self, req: dict[str, Any]) -> dict[str, Any]:
        """``req`` with the status a step's end carried merged in (its decision log and lines
        first; the rest is the newer status's): the fleet handles statuses only with the
        requests `_next` returns."""
        held, self._held = self._held, None
        st = req.get("st")
        if held is not None:
            if st is None:
                req["st"] = held
            else:
                st[10] = held[10] + st[10]
                st[11] = held[11] + st[11]
        return req

    def _checkpoint(self, label: str) -> None:
        self.trace.append((label, self.mpy.checkpoint_heap(label)))

    def _status(self) -> Any:
        return self.mpy.eval("host.status()")

    def data_heap(self) -> dict[str, int]:
        """Heap held by the node's own samples (``runner.node.data``) as the board holds them:
        a checkpoint against one with them dropped. Only once the runner is done (it finished
        or stopped at ``stop_round``): the node has no samples afterwards."""
        before = self.mpy.checkpoint_heap("data")
        self.mpy.exec("runner.node.data = {}")
        after = self.mpy.checkpoint_heap("no-data")
        return {k: before[k] - after[k] for k in ("live", "board")}

    def false_retained(self) -> dict[str, int]:
        """Heap kept alive only by data that looks like pointers: MicroPython's collector
        scans every block conservatively, ulab arrays and bytearrays included, so weights and
        codes that happen to spell an address inside the heap keep dead blocks alive. How
        often they do depends on where the heap lies: the WebAssembly heap's low addresses
        are spelled by small int16 weights and codes, a board's (0x2000_0000 on an
        nRF52840) by other values, so this is the WebAssembly build's figure, not a
        board's. Measured by zeroing the head's weights, current and batch codes, the node's
        counts, the ring's codes (or series) and partial-logit rows and collecting again: only
        once the runner is done (its state is lost)."""
        self.mpy.exec("_n = _k = None")  # its names interned before the first checkpoint
        before = self.mpy.checkpoint_heap("state")
        self.mpy.exec("_n = runner.node\n_n.head._W[:] = 0\n_n._rows[:] = bytes(len(_n._rows))\n"
                      "_n._counts[:] = 0\n_n.head._u[:] = 0\n"
                      "if _n.head._U is not None:\n    _n.head._U[:] = 0\n"
                      "if isinstance(_n._kept, bytearray):\n"
                      "    _n._kept[:] = bytes(len(_n._kept))\n"
                      "else:\n"
                      "    for _k in _n._kept:\n"
                      "        if _k is not None:\n            _k[:] = 0\n"
                      "del _n, _k")
        after = self.mpy.checkpoint_heap("zeroed")
        return {k: before[k] - after[k] for k in ("live", "board")}

    def start(self) -> dict[str, Any]:
        return self._boot() or self._next()

    def resume(self, reply: dict[str, Any]) -> dict[str, Any]:
        self.mpy.host_send(reply)
        return self._next()

    def head_state(self) -> bytes:
        if self._running:  # blocked inside a step
            return bytes.fromhex(self.query("answer = runner.node.head.save().hex()"))
        return bytes(self.mpy.eval("runner.node.head.save()"))

    def query(self, code: str) -> Any:
        self.mpy.host_send({"q": code})
        ans = self.mpy.host_recv()
        if "err" in ans:
            raise DeviceError(ans["err"])
        return ans.get("a")

    def kill(self) -> None:
        if self._running:
            self.mpy.host_send({"x": 1})
            try:
                self.mpy.read_reply()
            except DeviceError:
                pass  # the Crash unwinding the step, as intended
            self._running = False

    def files(self, paths: list[str]) -> dict[str, bytes]:
        """Those of ``paths`` that exist on the board (flash survives a power cut)."""
        self.mpy.set(_rn_paths=paths)
        found = self.mpy.eval("[vboard.read_file(p) for p in _rn_paths]")
        return {p: body for p, body in zip(paths, found, strict=True) if body is not None}

    def heap_report(self) -> dict[str, Any]:
        """`heap.HEAP_KEYS`: peak (code included), largest transient block, growth per round,
        out of memory (kept after `close`)."""
        if self.report is None:
            self.report = self.mpy.heap_report()
        return self.report

    def close(self) -> None:
        self.heap_report()
        self.mpy.close()


# ----- the fleet -----

@dataclass
class NodeState:
    id: int
    program: Program | None = None
    alive: bool = True
    finished: bool = False
    error: str | None = None
    error_type: str | None = None
    st: Any = None  # last status (vboard.status): a list, None before the first
    gen: int = 0  # bumped at every power-off: stale wake-ups are ignored
    begins: dict[int, int] = field(default_factory=dict)  # round -> global us it began
    ends: list[int] = field(default_factory=lambda: [0, 0, 0])
    round_end: dict[int, int] = field(default_factory=dict)  # round -> how it ended (0/1/2)
    log: list[tuple[str, int, bytes, bytes]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    reboots: int = 0
    rebooted_at: int | None = None  # fleet round of the last reboot
    rejoined_round: int | None = None
    nan_from: int | None = None
    heap: dict[str, Any] | None = None  # MicroPython: the board's heap report (`heap`)
    compute_us: int = 0  # global µs the board spent computing (with ``costs``)


class Fleet:
    """N boards on one medium (see the module docstring). ``plan_dir`` holds what ``rocknet
    plan`` writes (node_XX.plan, node_XX.data, fleet.key); ``work_dir`` becomes the boards'
    flash (CPython: a folder per node; MicroPython: each interpreter's own file system)."""

    def __init__(self, plan_dir: Path, work_dir: Path, topology: Topology, model: RadioModel,
                 runtime: str = "cpython", seed: int = 0, events: list[Event] | None = None,
                 skew_ms: float = 50.0, on_round: Callable[[int], None] | None = None,
                 profile: str | None = None, heap_budget: int | None = None,
                 float_bits: int = 32, code_format: str | None = None,
                 stop_round: int | None = None,
                 costs: list[dict[str, float]] | None = None,
                 mpy_nodes: set[int] | None = None) -> None:
        if runtime not in ("cpython", "micropython"):
            raise ValueError(f"runtime must be cpython or micropython, not {runtime!r}")
        if mpy_nodes is not None:
            if runtime != "micropython":
                raise ValueError("the boards to run in MicroPython need runtime micropython")
            bad = sorted(i for i in mpy_nodes if not 0 <= i < topology.n)
            if bad or not mpy_nodes:
                raise ValueError(f"boards to run in MicroPython {sorted(mpy_nodes)}: nodes "
                                 f"are 0..{topology.n - 1}, at least one")
        self.plan_dir, self.work_dir = Path(plan_dir), Path(work_dir)
        self.n = topology.n
        self.model = model
        self.runtime = runtime
        self.mpy_nodes = mpy_nodes  # micropython: the boards in it (None: all), others CPython
        self.seed = seed
        self.profile, self.heap_budget, self.float_bits = profile, heap_budget, float_bits
        # MicroPython: "py"/"mpy" instead of the profile's; boards finish at this round
        self.code_format, self.stop_round = code_format, stop_round
        self.costs = costs  # per board: µs of one compute call of each `compute.KINDS`
        self.radio = "bleio" if model.alternate else "bluetooth"
        self.medium = Medium(topology, model, seed=seed)
        self.on_round = on_round
        self.events = sorted(events or [], key=lambda e: e.round_no)
        self.fired: list[tuple[Event, int]] = []  # (event, global us)
        self.nodes = [NodeState(i) for i in range(self.n)]
        self.round = -1  # the fleet's round: the highest a live board is in
        self._mpy_files: dict[int, dict[str, bytes]] = {}
        skew = random.Random(f"rocknet-fleet/{seed}/power-on")
        for i in range(self.n):
            self.medium.add_driven()
            self.medium.call_at(int(skew.uniform(0, skew_ms) * 1000), self._power_on, i)

    # ----- files -----

    def in_mpy(self, i: int) -> bool:
        """Whether board i runs in its own MicroPython (else in a CPython thread)."""
        return self.runtime == "micropython" and (self.mpy_nodes is None or i in self.mpy_nodes)

    def paths(self, i: int) -> dict[str, str]:
        """Board i's files. MicroPython: where `rocknet deploy` puts them on a board (its own
        file system); CPython: the plan directory, and a folder per board for what it writes."""
        if self.in_mpy(i):
            b = import_device("rocknet.board")
            return {"plan": b.PLAN_FILE, "key": b.KEY_FILE, "data": b.DATA_FILE,
                    "ckpt": b.CHECKPOINT_FILE, "result": b.RESULT_FILE}
        own = self.work_dir / f"node_{i:02d}"
        own.mkdir(parents=True, exist_ok=True)
        return {"plan": str(self.plan_dir / f"node_{i:02d}.plan"),
                "key": str(self.plan_dir / "fleet.key"),
                "data": str(self.plan_dir / f"node_{i:02d}.data"),
                "ckpt": str(own / "rocknet_ckpt"), "result": str(own / "rocknet_result.json")}

    def _program(self, i: int) -> Program:
        paths = self.paths(i)
        seed = self.seed * 7919 + i + 1  # the board's scan jitter, the same in both runtimes
        if not self.in_mpy(i):
            return ThreadProgram(paths, self.radio, seed, costs=self._costs(i),
                                 stop_round=self.stop_round)
        files = self._mpy_files.get(i)
        if files is None:
            files = {paths["plan"]: (self.plan_dir / f"node_{i:02d}.plan").read_bytes(),
                     paths["key"]: (self.plan_dir / "fleet.key").read_bytes(),
                     paths["data"]: (self.plan_dir / f"node_{i:02d}.data").read_bytes()}
            self._mpy_files[i] = files
        return MpyProgram(paths, self.radio, files, seed=seed,
                          profile=self.profile, heap_budget=self.heap_budget,
                          float_bits=self.float_bits, code_format=self.code_format,
                          stop_round=self.stop_round, costs=self._costs(i))

    def _costs(self, i: int) -> list[float] | None:
        return None if self.costs is None else [self.costs[i][k] for k in compute.KINDS]

    # ----- the loop -----

    def run(self, limit_s: float) -> None:
        """Run until every live board finished (or failed), or ``limit_s`` simulated seconds."""
        self.medium.run(int(limit_s * 1e6), self._all_done)

    def _all_done(self) -> bool:
        return all(nd.finished or not nd.alive for nd in self.nodes)

    def _power_on(self, i: int) -> None:
        nd = self.nodes[i]
        nd.program = self._program(i)
        nd.alive = True
        nd.finished = False
        self._handle(i, nd.program.start())

    def _handle(self, i: int, req: dict[str, Any]) -> None:
        nd = self.nodes[i]
        med = self.medium
        if req.get("st") is not None:
            self._status(i, req["st"])
        if "done" in req or "error" in req or "killed" in req:
            if "error" in req:
                nd.error, nd.error_type = req["error"], req.get("type")
            nd.finished = "done" in req
            med.adv_stop(i)
            med.scan_stop(i)
            if "error" in req:
                self._power_off(i, failed=True)
            return
        if req.get("b"):  # the board computed first (its radio idle meanwhile)
            node = med.nodes[i]
            busy = node.dur(req["b"] / 1000)
            node.stats.cpu_us += busy
            nd.compute_us += busy
            med.call_at(med.now + busy, self._act, i, req, nd.gen)
        else:
            self._act(i, req, nd.gen)

    def _act(self, i: int, req: dict[str, Any], gen: int) -> None:
        """The board's radio commands, then its wait."""
        nd = self.nodes[i]
        if gen != nd.gen or not nd.alive:
            return
        med = self.medium
        for c in req["c"]:
            op = c[0]
            if op == "adv":
                med.adv_start(i, bytes.fromhex(c[1]), c[2] / 1000)
            elif op == "adv_stop":
                med.adv_stop(i)
            elif op == "scan":
                med.scan_start(i, c[1] / 1000, c[2] / 1000, c[3])
            elif op == "scan_stop":
                med.scan_stop(i)
        kind, us = req["w"]
        node = med.nodes[i]
        wake = med.now + node.dur((us if us is not None else 10000) / 1000)
        med.call_at(max(wake, med.now + 1), self._wake, i, nd.gen)

    def _wake(self, i: int, gen: int) -> None:
        nd = self.nodes[i]
        if gen != nd.gen or not nd.alive or nd.program is None:
            return
        med = self.medium
        rx = med.take_rx(i)
        reply = {"t": med.nodes[i].local_us(med.now), "rx": [[t, d.hex()] for t, d in rx]}
        self._handle(i, nd.program.resume(reply))

    def _status(self, i: int, st: list[Any]) -> None:
        nd = self.nodes[i]
        r, _, synced, members, ends, *_ = st
        nd.log.extend((e[0], e[1], bytes.fromhex(e[2]), bytes.fromhex(e[3])) for e in st[10])
        nd.lines.extend(st[11])
        if r is not None and r not in nd.begins:
            prev = max(nd.begins) if nd.begins else None
            if prev is not None:
                for k in range(3):
                    if ends[k] > nd.ends[k]:
                        nd.round_end[prev] = k
            nd.ends = list(ends)
            nd.begins[r] = self.medium.now
            if r > self.round:
                self.round = r
                if self.on_round is not None:
                    self.on_round(r)
                self._due()
        if (nd.rebooted_at is not None and nd.rejoined_round is None and synced
                and members >> i & 1 and nd.log and nd.log[-1][0] in "AD"):
            nd.rejoined_round = r
        nd.st = st

    def _due(self) -> None:
        while self.events and self.events[0].round_no <= self.round:
            ev = self.events.pop(0)
            self.fired.append((ev, self.medium.now))
            self.medium.call_at(self.medium.now, self._fire, ev)

    def _fire(self, ev: Event) -> None:
        nd = self.nodes[ev.node]
        if ev.action == "crash":
            if nd.alive:
                self._power_off(ev.node)
        elif ev.action == "reboot":
            if nd.alive:
                self._power_off(ev.node)
            nd.reboots += 1
            nd.rebooted_at = self.round
            nd.rejoined_round = None
            self.medium.reboot(ev.node, self.medium.now + OFF_MS * 1000)
            self.medium.call_at(self.medium.now + OFF_MS * 1000 + 1, self._power_on, ev.node)
        elif ev.action == "nan-logits":
            nd.nan_from = self.round
            if nd.alive and nd.program is not None and not nd.finished:
                nd.program.query(
                    "h = runner.node.head\nf = h.partial_logits\n"
                    "h.partial_logits = lambda c: f(c) * float('nan')\nanswer = 1")

    def _power_off(self, i: int, failed: bool = False) -> None:
        nd = self.nodes[i]
        nd.gen += 1
        nd.alive = False
        self.medium.crash(i, self.medium.now)
        prog = nd.program
        if prog is None:
            return
        if not failed:
            prog.kill()
        if isinstance(prog, MpyProgram):
            self._keep_heap(nd, prog)
            paths = self.paths(i)
            keep = [paths["ckpt"] + ".a", paths["ckpt"] + ".b", paths["result"]]
            self._mpy_files[i].update(prog.files(keep))
            prog.close()
        nd.program = None

    def close(self) -> None:
        """Stop every board's runtime (MicroPython processes)."""
        for nd in self.nodes:
            prog = nd.program
            if isinstance(prog, MpyProgram):
                self._keep_heap(nd, prog)
                prog.close()
            elif isinstance(prog, ThreadProgram) and not nd.finished:
                prog.kill()
            nd.program = None

    @staticmethod
    def _keep_heap(nd: NodeState, prog: MpyProgram) -> None:
        """The worst of the board's heap reports over its boots."""
        rep = prog.heap_report()
        if nd.heap is None or (rep.get("peak_heap_bytes") or 0) > (
                nd.heap.get("peak_heap_bytes") or 0):
            nd.heap = rep
        if rep.get("out_of_memory"):
            nd.heap["out_of_memory"] = rep["out_of_memory"]

    def head_states(self) -> list[bytes | None]:
        """Every live board's head as it stands (None for boards that are down)."""
        return [nd.program.head_state() if nd.alive and nd.program is not None else None
                for nd in self.nodes]


def log_digest_at(log: list[tuple[str, int, bytes, bytes]], s: int) -> bytes | None:
    """The digest after the last entry of sample <= s (None if the log has none)."""
    best = None
    for _kind, q, _, dig in log:
        if q <= s:
            best = dig
    return best

