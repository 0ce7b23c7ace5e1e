"""Node cores in real MicroPython for `FleetSim`: each node's `rocknet.node.Node` (with its
`rocknet.head.Head`) and its `rocknet.link.Link` live in a MicroPython 1.29 + ulab interpreter
of their own (WebAssembly, one Node.js process per node), the same code path a board runs.
The medium stays on the host; adverts cross the bridge as bytes.

Host side, `MpyNode` and `MpyLink` stand in for the node and link objects `FleetSim` drives:

- ``on_advert`` calls are queued and handed over, in order and with their own timestamps,
  with the next call that can observe the link (``next_advert``, ``start_round``, ``rows``,
  ``done``, ``round_no``): the device sees exactly the same calls in the same order, with
  one bridge round trip per advert the medium asks for instead of one per advert received.
- Every call returns the link's ``done`` and ``round_no`` with its answer, so `FleetSim`'s
  end-of-round test costs nothing while nothing is queued.
- After each ``end_round`` the node's ``applied`` log, its new ``predictions`` and its last
  checkpoint are drained to the host (a board would write them to its serial log and flash,
  not keep them in RAM); the host mirrors ``synced``, ``applied_through``, ``members``,
  ``stats`` and the log, so consistency checks read the mirror.
- ``head`` gives a CPython twin of the device head loaded from the device head's checkpoint
  (``Head.save``), for the host's between-epoch accuracy estimate.

Heap (``peak_heap_bytes``): ``gc.mem_alloc()`` after a collection (the bridge collects between
calls), minus the same figure taken in that interpreter after importing the device modules
and before anything of the node existed. It counts what the node keeps of its plan, its own
data (train and predict series), the Slice, Head, Node and Link with their rounds; not the
modules' code (frozen or in flash on a board). Sampled when the node and its link are built,
after the first rounds' ``end_round`` and then every ``heap_every`` rounds (a collection costs
~5 ms here) and at the end: the peak of the live heap at round boundaries, not transient
allocations inside a round. Floats are float64 in this WebAssembly build (float32 on boards):
the board figure (``peak_heap_board_bytes``) subtracts 4 bytes per float element of the head's
arrays, as `benches/accuracy.py` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .runtime import import_device, open_runtime

# Device side: globals _n (Node), _l (Link), helpers the host calls with literals.
DEVICE_SETUP = """
import gc
from rocknet.node import Node, Schedule
from rocknet.head import Head
from rocknet.link import Link
_n = _l = None
_saved = []
def _save(body):
    _saved.append(bytes(body))
def _rx(q):
    for d, t in q:
        _l.on_advert(d, t)
def _ls():
    return [_l.done, _l.round_no]
def _na(q, t):
    _rx(q)
    return [_l.next_advert(t)] + _ls()
def _st(q, r, rows, t):
    _rx(q)
    _l.start_round(r, rows, t)
    return _ls()
def _rows(q):
    _rx(q)
    return [_l.rows()] + _ls()
def _sy(q):
    _rx(q)
    return _ls()
def _begin(r):
    return [[k, v] for k, v in _n.begin_round(r).items()]
def _state():
    # drained each round: the log, new predictions and the last checkpoint (a board writes
    # them to its serial log and flash; keeping them would grow the heap with the run)
    a = _n.applied
    _n.applied = []
    p = _n.predictions
    _n.predictions = {}
    s = _saved[-1] if _saved else None
    del _saved[:]
    return {"synced": _n.synced, "at": _n.applied_through, "members": _n.members,
            "stats": _n.stats, "pred": [[k, v] for k, v in p.items()], "saved": s,
            "applied": [[e[0], e[1], e[2], e[3]] for e in a]}
def _end(r, rows):
    _n.end_round(r, rows)
    return _state()
"""

BUILD_NODE = """
_d = {"train": [tuple(x) for x in _dt], "predict": _dp}
_n = Node(_id, _nn, _pl["features"], Head(_pl), _nc, _rs, Schedule.from_dict(_sch), data=_d,
          save=_save, log=True, window=_win, checkpoint_every=_ce)
del _d, _dt, _dp, _pl, _sch
"""

FORGET = """
_n = _l = None
del _saved[:]
"""


def _lit(v: Any) -> str:
    """A MicroPython literal for ints, bytes, None and lists/tuples of them."""
    return repr(v)


class Device:
    """One MicroPython interpreter holding one node (rebuilt in place on a reboot), with the
    heap baseline and the peak seen over the run."""

    def __init__(self, heapsize: int = 16 * 1024 * 1024, heap_every: int = 8) -> None:
        self.rt = open_runtime("micropython", heapsize=heapsize)
        self.heap_every = heap_every
        self.rounds = 0
        self.rt.exec(DEVICE_SETUP)
        self.base = self.rt.mem_alloc()
        self.peak = 0
        self.peak_board = 0
        self._float_extra = 0  # bytes float64 arrays of the head hold beyond float32

    def sample(self) -> int:
        held = self.rt.mem_alloc() - self.base
        if held > self.peak:
            self.peak = held
            self.peak_board = held - self._float_extra
        return held

    def round_ended(self) -> None:
        self.rounds += 1
        if self.rounds <= 2 or self.rounds % self.heap_every == 0:
            self.sample()

    def measure_floats(self) -> None:
        b8 = self.rt.eval("_n.head.state_bytes(8)")
        b4 = self.rt.eval("_n.head.state_bytes(4)")
        self._float_extra = int(sum(b8.values()) - sum(b4.values()))

    def close(self) -> None:
        self.rt.close()


class MpyLink:
    """Host stand-in for the device `Link` of an `MpyNode` (endpoint of the medium)."""

    def __init__(self, node: MpyNode) -> None:
        self._node = node
        self._q: list[tuple[bytes, int]] = []
        self._done = False
        self._round_no: int | None = None

    def _call(self, expr: str) -> Any:
        out = self._node.dev.rt.eval(expr)
        self._done, self._round_no = bool(out[-2]), out[-1]
        return out

    def _queued(self) -> str:
        q = _lit(self._q)
        self._q = []
        return q

    def on_advert(self, data: bytes, now_ms: int) -> None:
        self._q.append((bytes(data), int(now_ms)))

    def next_advert(self, now_ms: int) -> bytes | None:
        out = self._call(f"_na({self._queued()}, {int(now_ms)})")
        return out[0]

    def start_round(self, round_no: int, own_rows: dict[int, bytes] | None = None,
                    now_ms: int = 0) -> None:
        rows = _lit({int(k): bytes(v) for k, v in (own_rows or {}).items()})
        self._call(f"_st({self._queued()}, {int(round_no)}, {rows}, {int(now_ms)})")

    def rows(self) -> list[bytes | None]:
        return list(self._call(f"_rows({self._queued()})")[0])

    def _sync(self) -> None:
        if self._q:
            self._call(f"_sy({self._queued()})")

    @property
    def done(self) -> bool:
        self._sync()
        return self._done

    @property
    def round_no(self) -> int | None:
        self._sync()
        return self._round_no


class _Geo:
    def __init__(self, m: int) -> None:
        self.m = m


class MpyNode:
    """Host stand-in for a device `Node`: calls go to the device, state comes back mirrored
    (see the module docstring)."""

    def __init__(self, dev: Device, node_id: int, n_nodes: int, node_plan: dict[str, Any],
                 n_classes: int, row_size: int, schedule: dict[str, Any],
                 data: dict[str, Any], save: Callable[[bytes], None], window: int,
                 checkpoint_every: int, twin: Callable[[], Any]) -> None:
        self.dev = dev
        self.id = node_id
        self._save = save
        self._twin_factory = twin
        self._twin: Any = None
        self._twin_at = -2
        self._version = 0
        rt = dev.rt
        rt.exec(FORGET)
        dev.sample()  # the old node's objects are gone; baseline unchanged
        rt.set(_id=node_id, _nn=n_nodes, _pl=node_plan, _nc=n_classes, _rs=row_size,
               _sch=schedule, _dt=[list(x) for x in data["train"]], _dp=list(data["predict"]),
               _win=window, _ce=checkpoint_every)
        rt.exec(BUILD_NODE)
        self.m = int(rt.eval("_n.m"))
        self.geo = _Geo(self.m)
        dev.measure_floats()
        dev.sample()
        self.synced = True
        self.applied_through = -1
        self.members = (1 << n_nodes) - 1
        self.stats: dict[str, int] = dict(rt.eval("_n.stats"))
        self.applied: list[tuple[str, int, bytes, bytes]] = []
        self.predictions: dict[int, int] = {}

    # ----- the link lives beside the node -----

    def make_link(self, node_id: int, key: bytes, row_size: int, profile: str, *, seed: int,
                  timeout_ms: int, round_hint: int) -> MpyLink:
        self.dev.rt.exec(
            f"_l = Link({node_id}, {_lit(bytes(key))}, _n.geo.owners(), {row_size}, "
            f"{profile!r}, seed={seed}, timeout_ms={timeout_ms}, round_hint={round_hint})")
        self.dev.sample()
        link = MpyLink(self)
        link._call("_ls()")
        return link

    # ----- round I/O -----

    def begin_round(self, r: int) -> dict[int, bytes]:
        return {int(k): v for k, v in self.dev.rt.eval(f"_begin({int(r)})")}

    def end_round(self, r: int, rows: list[bytes | None]) -> None:
        rows_lit = _lit([None if x is None else bytes(x) for x in rows])
        self._mirror(self.dev.rt.eval(f"_end({int(r)}, {rows_lit})"))
        self.dev.round_ended()

    def _mirror(self, out: dict[str, Any]) -> None:
        self._version += 1
        self.synced = bool(out["synced"])
        self.applied_through = int(out["at"])
        self.members = int(out["members"])
        self.stats = dict(out["stats"])
        self.applied += [(str(k), int(s), bytes(p), bytes(d)) for k, s, p, d in out["applied"]]
        self.predictions.update({int(s): int(c) for s, c in out["pred"]})
        if out["saved"] is not None:
            self._save(out["saved"])

    # ----- faults -----

    def restore(self, body: bytes) -> None:
        self._mirror(self.dev.rt.eval(f"_n.restore({_lit(bytes(body))}) or _state()"))

    def rejoin(self) -> None:
        self._mirror(self.dev.rt.eval("_n.rejoin() or _state()"))

    # ----- host views -----

    @property
    def head(self) -> Any:
        """A CPython twin of the device head with the device head's current state."""
        if self._twin_at != self._version:
            body = self.dev.rt.eval("_n.head.save()")
            if self._twin is None:
                self._twin = self._twin_factory()
            self._twin.load(body)
            self._twin_at = self._version
        return self._twin



class MpyFleet:
    """One `Device` per node id, kept across reboots; builds `MpyNode`s for `FleetSim`."""

    def __init__(self, n: int, heapsize: int = 16 * 1024 * 1024, heap_every: int = 8) -> None:
        self.devices: list[Device] = []
        try:
            for _ in range(n):
                self.devices.append(Device(heapsize, heap_every))
        except BaseException:
            self.close()
            raise
        self.head_mod = import_device("rocknet.head")

    def node(self, i: int, **kw: Any) -> MpyNode:
        return MpyNode(self.devices[i], i, **kw)

    def sample(self, alive: list[bool]) -> None:
        """A last heap sample of every live node (call before `peak_heap`)."""
        for d, up in zip(self.devices, alive, strict=True):
            if up:
                d.sample()

    def peak_heap(self, i: int) -> tuple[int, int]:
        d = self.devices[i]
        return int(d.peak), int(d.peak_board)

    def close(self) -> None:
        for d in self.devices:
            d.close()
