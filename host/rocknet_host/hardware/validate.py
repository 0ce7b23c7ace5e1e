"""Cross-validation on a connected board (`rocknet validate --port P`): the installed rocknet
package computes test vectors on the board, the host compares them with the numpy references.

Checks, per node of the plan:
- features: PPV counts of every series, bit for bit (integer arithmetic must agree exactly);
- head: the real device head (`rocknet.head.Head`, built from the node's plan with a head
  section from `head_plan.sections`: gradient mode, momentum, int16 weights, 8-bit moment
  codes, standardisation stats from the series' own codes) starts from fixed pseudo-random
  int16 weights and trains on the series in order: per series `partial_logits` of the board's
  counts, `apply` with that row as the summed logits and the pseudo-label i % C, `step` at
  every batch boundary (two batches of up to 8 by default) and at the end. The board reports
  every row it computed plus the last series' row after the final step; the host replays the
  same sequence on `reference_head.Twin` in the board's float width (float32 or float64) and
  compares every row within rtol 1e-3 / atol 1e-4 (a weight step or two), and the step count.

Arrays cross the serial line as hex bytes, never as printed floats. Per node: one exec builds
the slice and head, one per SERIES_PER_CALL series, one finishes.

Heap: a board that runs out of heap fails the node's "heap budget" check with the board's
MemoryError and the run stops there; a virtual board with a budget (`rocknet virtual-board
--board B`) reports its heap figures (`heap.HEAP_KEYS`, from its ``_rn_heap`` tracker) in
``heap``; real boards have no tracker (``heap`` is None).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ToolError
from ..planning import head as head_plan
from ..planning.features import Plan
from ..reference import head as rh
from ..reference import minirocket as reference

SERIES_PER_CALL = 4
MAX_BATCH = 8  # the plan's default batch; also bounds the board's batch buffer (B x F bytes)
# The head options the check trains with (head_plan.sections fills in the rest, the plans'
# default wire included: the check sends no rows, so the wire does not enter it).
HEAD_OPTS: dict[str, Any] = {"mode": "gradient", "optimizer": "momentum", "passes": 1,
                             "solver": "sgd"}
RTOL, ATOL = 1e-3, 1e-4  # a weight step or two, in float32 and float64 (tests/test_head_twin)
HEAD_KEYS = ("node", "nodes", "classes", "features", "head")  # what Head reads of a node plan

_SETUP = """
import json, gc
try:
    b''.hex()
    _hx = lambda b: bytes(b).hex()
    _uh = bytes.fromhex
except AttributeError:  # ports without bytes.hex
    import binascii
    _hx = lambda b: binascii.hexlify(bytes(b)).decode()
    _uh = binascii.unhexlify
try:
    import rocknet
    from rocknet.minirocket import Slice
    from rocknet.head import Head
    from rocknet import xp
    from rocknet.xp import np
    print(json.dumps({'ok': 1, 'version': rocknet.__version__, 'file': rocknet.__file__,
                      'impl': __import__('sys').implementation.name,
                      'fbytes': np.zeros(1, dtype=xp.float_).itemsize}))
except ImportError as e:
    print(json.dumps({'ok': 0, 'error': str(e)}))
"""

# The node plan goes as JSON without the head's means and stds: those travel as the fixed
# point the head keeps (int16 mean in 1/128 code, uint16 1/std in 1/4096, hex) and are turned
# back into floats that quantise to exactly the same values. The initial weights come from a
# small LCG on the board (`initial_weights` on the host), so no matrix crosses the line.
_SLICE = """
gc.collect()
_p = json.loads({plan!r})
_s = Slice(_p['features'])
_b = np.zeros(_s.n_features, dtype=xp.uint16)
_p['head']['mean'] = np.array(np.frombuffer(_uh({mu!r}), dtype=xp.int16), dtype=xp.float_) / 128
_p['head']['std'] = 4096 / (np.array(np.frombuffer(_uh({sc!r}), dtype=xp.uint16),
                                     dtype=xp.float_) + 1e-6)
_h = Head(_p)
del _p
gc.collect()
_x = {seed}
for _i in range(_h.n_classes):
    _r = []
    for _j in range(_h.n_features):
        _x = (_x * 75 + 74) % 65537
        _r.append((_x % 129 - 64) * 128)
    _h._W[_i] = np.array(_r, dtype=xp.int16)
del _r
print(_s.n_features, _h.n_features)
"""

_RUN = """
for _q, _y in {series!r}:
    _s.transform(_uh(_q), _b)
    _z = _h.partial_logits(_b)
    print(_hx(_b.tobytes()), _hx(_z.tobytes()))
    _h.apply(_z, _y)
    if _h.k == _h.batch:
        _h.step()
"""

_HEAP = """
try:
    import _rn_heap
    print(json.dumps(_rn_heap.report()))
except ImportError:
    print('null')
"""
_FORGET = """
for _k in ('_s', '_b', '_h', '_p', '_r', '_q', '_y', '_z', '_x', '_i', '_j'):
    globals().pop(_k, None)
gc.collect()
"""

_END = """
_h.step()
print(_h.t, _hx(_h.partial_logits(_b).tobytes()))
del _s, _b, _h
gc.collect()
"""


def initial_weights(n_classes: int, n_features: int, seed: int) -> np.ndarray:
    """The int16 weights (C x F) the board starts the head check from: multiples of 128
    steps in +-8192, so the first batch already has partial logits of order one."""
    W = np.empty((n_classes, n_features), dtype=np.int16)
    x = seed
    for i in range(n_classes):
        for j in range(n_features):
            x = (x * 75 + 74) % 65537
            W[i, j] = (x % 129 - 64) * 128
    return W


def check_batch(n_series: int) -> int:
    """Batch of the head check: two batches for up to 16 series, else batches of 8."""
    return max(1, min(MAX_BATCH, math.ceil(n_series / 2)))


def twin_rows(feats: dict[str, Any], n_classes: int, head: dict[str, Any], mu: np.ndarray,
              sc: np.ndarray, W0: np.ndarray, U: np.ndarray, labels: np.ndarray,
              dtype: Any) -> tuple[np.ndarray, int]:
    """What the board's head reports for the check, from the numpy twin in ``dtype``: the
    partial-logit row of each series (before its `apply`) and, last, the last series' row
    after the final step; and the number of optimizer steps taken."""
    tw = rh.Twin([feats], n_classes, dict(head, bias_node=0), dtype)  # one slice, owns b
    tw.mu, tw.sc = mu.copy(), sc.copy()
    tw.W = W0.copy()
    rows: list[np.ndarray] = []  # each row is also the summed logits its `apply` gets
    start = 0

    def step(stop: int) -> None:
        G = tw.grad(np.array(rows[start:stop]), labels[start:stop]).T
        tw.step(G, U[start:stop])

    for i in range(len(U)):
        rows.append(tw.partial_logits(tw.x(U[i:i + 1]))[0][0])
        if i + 1 - start == tw.batch:
            step(i + 1)
            start = i + 1
    if start < len(U):
        step(len(U))
    rows.append(tw.partial_logits(tw.x(U[-1:]))[0][0])
    return np.array(rows, dtype=np.float64), tw.t


class BoardValidationError(ToolError):
    """The board cannot be validated (not reachable, rocknet not installed, ...)."""

    stdout = ""  # a failed command's output before its error


@dataclass
class Check:
    node: int
    name: str
    ok: bool
    detail: str
    max_error: float | None = None  # head: largest |board - twin| over the compared values


@dataclass
class BoardReport:
    port: str
    version: str = ""
    impl: str = ""
    float_bits: int = 0
    checks: list[Check] = field(default_factory=list)
    heap: dict[str, Any] | None = None  # a virtual board's heap figures (heap.HEAP_KEYS)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "version": self.version, "runtime": self.impl,
                "float_bits": self.float_bits, "passed": self.ok,
                "checks": [vars(c) for c in self.checks], "heap": self.heap}


class _Session:
    def __init__(self, port: str) -> None:
        from ..runtimes.repl import Repl, ReplError

        try:
            self.repl = Repl(port)
        except ReplError as exc:
            raise BoardValidationError(str(exc)) from None
        self.port = port

    def exec(self, code: str, timeout: float = 60) -> str:
        from ..runtimes.repl import BoardError, ReplError

        try:
            return self.repl.exec(code, timeout=timeout)
        except BoardError as exc:
            failure = BoardValidationError(f"{self.port}: board error: {exc.stderr}")
            failure.stdout = exc.stdout  # what the command printed before it failed
            raise failure from None
        except ReplError as exc:
            raise BoardValidationError(str(exc)) from None

    def close(self) -> None:
        self.repl.close()


def _hex16(a: np.ndarray, dt: str) -> str:
    return np.ascontiguousarray(a, dtype=dt).tobytes().hex()


def _head_check(node: int, got_rows: np.ndarray, got_t: int, ref_rows: np.ndarray,
                ref_t: int, n: int, batch: int, dtype: Any) -> Check:
    err = np.abs(got_rows - ref_rows)
    ratio = err / (ATOL + RTOL * np.abs(ref_rows))
    k = int(np.argmax(ratio))
    worst = float(ratio.flat[k])
    row, cls = divmod(k, ref_rows.shape[1])
    where = f"series {row}" if row < n else "after the last step"
    ok = got_t == ref_t and bool(np.all(np.isfinite(got_rows))) and worst <= 1.0
    detail = (f"{got_t} {HEAD_OPTS['optimizer']} steps of {batch}, {ref_rows.size} logits vs "
              f"twin {np.dtype(dtype).name}: max |error| {float(err.max()):.1e} = "
              f"{worst:.2f} x tol")
    if not worst <= 1.0:  # (NaN included)
        detail += f" (worst: {where}, class {cls})"
    if got_t != ref_t:
        detail += f"; twin took {ref_t} steps"
    return Check(node, "head partial logits", ok, detail, float(err.max()))


def validate_board(port: str, plan: Plan, Q: np.ndarray, seed: int = 0,
                   on_step: Callable[[int], None] | None = None,
                   session: Any = None) -> BoardReport:
    """Run every node of `plan` on the series `Q` (int8 rows) on the board at `port`."""
    sess = session or _Session(port)
    rep = BoardReport(port)
    try:
        try:
            info = json.loads(sess.exec(_SETUP).strip().splitlines()[-1])
        except BoardValidationError as exc:
            if "MemoryError" not in str(exc):
                raise
            # importing rocknet alone exceeds the board's heap
            info = {"ok": 1, "version": "?", "impl": "?", "fbytes": 0}
            rep.checks.append(Check(-1, "heap budget", False,
                                    "importing rocknet: " + str(exc).strip().splitlines()[-1]))
        if not info.get("ok"):
            raise BoardValidationError(
                f"{port}: rocknet is not installed on the board ({info.get('error')}); run "
                f"`rocknet deploy --port {port}` first")
        rep.version, rep.impl = info["version"], info["impl"]
        fbytes = int(info["fbytes"]) or 4
        rep.float_bits = 8 * fbytes
        fdt = np.dtype("<f8" if fbytes == 8 else "<f4")
        Q = np.ascontiguousarray(Q, dtype=np.int8)
        n, C = len(Q), plan.n_classes
        labels = np.arange(n) % C
        batch = check_batch(n)
        feats = [plan.node_features(i) for i in range(plan.n_nodes)]
        wants = [reference.slice_counts(Q, f) for f in feats]
        dens = [rh.node_layout(f)[0] for f in feats]
        secs = head_plan.sections(plan, Q, batch=batch,
                                  train_codes=[rh.codes(w, d) for w, d in zip(wants, dens,
                                                                              strict=True)],
                                  **HEAD_OPTS)
        for node, (nplan, want) in enumerate(zip(head_plan.node_plans(plan, secs), wants,
                                                 strict=True)):
            if rep.checks and rep.checks[-1].name == "heap budget":
                break
            try:
                _check_node(sess, rep, node, nplan, want, feats[node], dens[node], Q, labels,
                            C, batch, seed, fbytes, fdt, on_step)
            except BoardValidationError as exc:
                if "MemoryError" not in str(exc):
                    raise
                rep.checks.append(Check(node, "heap budget", False,
                                        str(exc).strip().splitlines()[-1]))
                sess.exec(_FORGET)
                break
        try:
            out = sess.exec(_HEAP)
        except BoardValidationError as exc:  # still over the budget: printed, then failed
            out = getattr(exc, "stdout", "")
        try:
            rep.heap = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            rep.heap = None
    finally:
        if session is None:
            sess.close()
    return rep


def _check_node(sess: Any, rep: BoardReport, node: int, nplan: dict[str, Any],
                want: np.ndarray, feats: dict[str, Any], den: Any, Q: np.ndarray,
                labels: np.ndarray, plan_classes: int, batch: int, seed: int, fbytes: int,
                fdt: np.dtype, on_step: Callable[[int], None] | None) -> None:
    """The features and head checks of one node (appended to ``rep.checks``)."""
    n, C = len(Q), plan_classes
    F = want.shape[1]
    head = nplan["head"]
    mu, sc = rh.quantise_scaling(head.pop("mean"), head.pop("std"))
    head["bias_node"] = node  # every board owns the bias of its check
    wseed = (seed * 7919 + node * 104729) % 65537
    out = sess.exec(_SLICE.format(
        plan=json.dumps({k: nplan[k] for k in HEAD_KEYS}, separators=(",", ":")),
        mu=_hex16(mu, "<i2"), sc=_hex16(sc, "<u2"), seed=wseed))
    got_f = [int(v) for v in out.strip().splitlines()[-1].split()]
    counts, rows = [], []
    for i0 in range(0, n, SERIES_PER_CALL):
        part = [(q.tobytes().hex(), int(y)) for q, y in
                zip(Q[i0:i0 + SERIES_PER_CALL], labels[i0:i0 + SERIES_PER_CALL],
                    strict=True)]
        for line in sess.exec(_RUN.format(series=part)).strip().splitlines():
            c, z = (bytes.fromhex(h) for h in line.split())
            counts.append(np.frombuffer(c, dtype="<u2"))
            rows.append(np.frombuffer(z, dtype=fdt))
        if on_step:
            on_step(len(part))
    t_txt, z_txt = sess.exec(_END).strip().splitlines()[-1].split()
    rows.append(np.frombuffer(bytes.fromhex(z_txt), dtype=fdt))
    got = np.array(counts)
    ok = got.shape == want.shape and got_f == [F, F]
    bad = int(np.count_nonzero(got != want)) if ok else int(want.size)
    rep.checks.append(Check(node, "features bit-exact", ok and bad == 0,
                            f"{n} series x {F} counts, {bad} differ"))
    if not ok:
        return
    # the twin replays the head on the board's own counts: this check is the head's
    dtype = np.float64 if fbytes == 8 else np.float32
    ref_rows, ref_t = twin_rows(feats, C, head, mu, sc,
                                initial_weights(C, F, wseed),
                                rh.codes(got, den), labels, dtype)
    rep.checks.append(_head_check(node, np.array(rows, dtype=np.float64),
                                  int(t_txt), ref_rows, ref_t, n, batch, dtype))
