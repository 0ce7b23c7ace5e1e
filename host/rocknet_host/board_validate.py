"""Cross-validation on a connected board (`rocknet validate --port P`): the installed rocknet
package computes test vectors on the board, the host compares them with the numpy reference.

Checks, per node slice of the plan:
- features: PPV counts of every series, bit for bit (integer arithmetic must agree exactly);
- head: partial logits z = W f + b (f = PPV in the board's float) for a fixed pseudo-random W,
  against the float64 reference within the rounding bound of the board's float.

Arrays cross the serial line as hex bytes, never as printed floats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reference
from .plan import Plan

SERIES_PER_CALL = 4

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
    from rocknet.xp import np
    print(json.dumps({'ok': 1, 'version': rocknet.__version__, 'file': rocknet.__file__,
                      'impl': __import__('sys').implementation.name,
                      'fbytes': np.zeros(1, dtype=np.float).itemsize}))
except ImportError as e:
    print(json.dumps({'ok': 0, 'error': str(e)}))
"""

# W and b are generated on the board from a small LCG (as `head_weights` does on the host), so
# no matrix crosses the line; every value is k/64, exact in any float format.
_SLICE = """
gc.collect()
_s = Slice(json.loads({features!r}))
_b = np.zeros(_s.n_features, dtype=np.uint16)
_W = np.zeros(({c}, _s.n_features), dtype=np.float)
_x = {seed}
for _i in range({c}):
    for _j in range(_s.n_features):
        _x = (_x * 75 + 74) % 65537
        _W[_i, _j] = (_x % 129 - 64) / 64
_bias = np.array([(_i % 5 - 2) / 4 for _i in range({c})], dtype=np.float)
print(_s.n_features)
"""

_RUN = """
for _q in {series!r}:
    _s.transform(_uh(_q), _b)
    _z = np.dot(_W, _s.ppv(_b)) + _bias
    print(_hx(_b.tobytes()), _hx(_z.tobytes()))
"""


def head_weights(n_classes: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The W (C x F) and b the board generates for the head check (float64, exact)."""
    W = np.empty((n_classes, n_features))
    x = seed
    for i in range(n_classes):
        for j in range(n_features):
            x = (x * 75 + 74) % 65537
            W[i, j] = (x % 129 - 64) / 64
    b = np.array([(i % 5 - 2) / 4 for i in range(n_classes)])
    return W, b


class BoardValidationError(RuntimeError):
    """The board cannot be validated (not reachable, rocknet not installed, ...)."""


@dataclass
class Check:
    node: int
    name: str
    ok: bool
    detail: str


@dataclass
class BoardReport:
    port: str
    version: str = ""
    impl: str = ""
    float_bits: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "version": self.version, "runtime": self.impl,
                "float_bits": self.float_bits, "passed": self.ok,
                "checks": [vars(c) for c in self.checks]}


class _Session:
    def __init__(self, port: str) -> None:
        from mpremote.transport import TransportError

        from .repl import open_raw_repl

        try:
            self.t = open_raw_repl(port)
        except (TransportError, OSError) as exc:
            raise BoardValidationError(f"{port}: cannot reach the board's REPL ({exc})") from None
        self.port = port

    def exec(self, code: str, timeout: float = 60) -> str:
        from mpremote.transport import TransportError

        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except (TransportError, OSError) as exc:
            raise BoardValidationError(f"{self.port}: connection lost ({exc})") from None
        if err:
            raise BoardValidationError(f"{self.port}: board error: {err.decode().strip()}")
        return out.decode()

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
            self.t.close()
        except Exception:
            pass


def _dot_bound(W: np.ndarray, p: np.ndarray, eps: float) -> np.ndarray:
    """|fl(W fl(p)) - W p| <= (n + 1) eps sum|W_ij p_j| (rounded p, recursive summation),
    padded by a factor 2, plus eps for the bias add."""
    return 2 * (W.shape[1] + 1) * eps * (np.abs(W) @ np.abs(p)) + 2 * eps


def validate_board(port: str, plan: Plan, Q: np.ndarray, seed: int = 0,
                   on_step: Callable[[int], None] | None = None,
                   session: Any = None) -> BoardReport:
    """Run every node slice of `plan` on the series `Q` (int8 rows) on the board at `port`."""
    sess = session or _Session(port)
    rep = BoardReport(port)
    try:
        info = json.loads(sess.exec(_SETUP).strip().splitlines()[-1])
        if not info.get("ok"):
            raise BoardValidationError(
                f"{port}: rocknet is not installed on the board ({info.get('error')}); run "
                f"`rocknet deploy --port {port}` first")
        rep.version, rep.impl = info["version"], info["impl"]
        fbytes = int(info["fbytes"])
        rep.float_bits = 8 * fbytes
        fdt = np.dtype("<f8" if fbytes == 8 else "<f4")
        eps = float(np.finfo(fdt).eps)
        Q = np.ascontiguousarray(Q, dtype=np.int8)
        for node in range(plan.n_nodes):
            feats = plan.node_features(node)
            want = reference.slice_counts(Q, feats)
            den = reference.slice_denominators(feats)
            F, C = want.shape[1], plan.n_classes
            wseed = (seed * 7919 + node * 104729) % 65537
            W, bias = head_weights(C, F, wseed)
            out = sess.exec(_SLICE.format(features=json.dumps(feats, separators=(",", ":")),
                                          seed=wseed, c=C))
            got_f = int(out.strip().splitlines()[-1])
            counts, logits = [], []
            for i0 in range(0, len(Q), SERIES_PER_CALL):
                rows = [q.tobytes().hex() for q in Q[i0:i0 + SERIES_PER_CALL]]
                for line in sess.exec(_RUN.format(series=rows)).strip().splitlines():
                    c, z = (bytes.fromhex(h) for h in line.split())
                    counts.append(np.frombuffer(c, dtype="<u2"))
                    logits.append(np.frombuffer(z, dtype=fdt))
                if on_step:
                    on_step(len(rows))
            sess.exec("del _s, _b, _W, _bias")
            got = np.array(counts)
            ok = got.shape == want.shape and got_f == F
            bad = int(np.count_nonzero(got != want)) if ok else int(want.size)
            rep.checks.append(Check(node, "features bit-exact", ok and bad == 0,
                                    f"{len(Q)} series x {F} counts, {bad} differ"))
            if not ok:
                continue
            ref_p = want / den  # float64 reference PPV
            ref_z = ref_p @ W.T + bias
            # PPV rounded to the board's float (<= eps relative each), then summed in it
            bound = np.array([_dot_bound(W, p, eps) for p in ref_p])
            zerr = np.abs(np.array(logits, dtype=np.float64) - ref_z)
            worst = float(np.max(zerr / bound)) if zerr.size else 0.0
            rep.checks.append(Check(node, "head partial logits", worst <= 1.0,
                                    f"{C} classes, max |error| {float(np.max(zerr)):.2e} = "
                                    f"{worst:.2f} x bound"))
    finally:
        if session is None:
            sess.close()
    return rep
