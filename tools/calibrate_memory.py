"""Write boards/memory_model.json: the planner's RUNTIME_BYTES, calibrated on measured nodes.

    PYTHONPATH=host python tools/calibrate_memory.py          # measure and rewrite it
    PYTHONPATH=host python tools/calibrate_memory.py --check  # a plan it was not fitted on:
                                                              # exit 1 if the estimate is off

The planner's estimate of a training node's peak heap (`planning.capacity.node_bytes`) is
rocknet's code, the link, the ring, the slice and the per-feature state, each from the
plan's geometry, plus RUNTIME_BYTES for everything else. This tool runs `rocknet bench
memory` (each node built as `rocknet.run()` builds it in MicroPython 1.29 + ulab, WebAssembly,
under the Feather's circuitpython-9 profile, code from .mpy) on fleets of different shapes and
sets RUNTIME_BYTES to the largest remainder (peak need less the modelled parts) over every
measured node, so the planner is not optimistic about any node it was calibrated on. Re-run it
when the device package changes what a node holds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

import numpy as np
from rocknet_host.benches import memory
from rocknet_host.cli import build_parser
from rocknet_host.planning.board import Training, full_pending
from rocknet_host.planning.capacity import MEMORY_MODEL_FILE, runtime_bytes
from rocknet_host.resources import REPO_ROOT
from rocknet_host.runtimes.micropython import RUNTIME_VERSION

# FaceAll is not among aeon's bundled sets: RockNet's copy, beside the checkout (or
# ROCKNET_DATA_DIR)
UCR = os.environ.get("ROCKNET_DATA_DIR") or str(REPO_ROOT.parent / "shared" / "data" / "ucr")
BOARD = "adafruit_feather_nrf52840"
# (arguments of `rocknet bench memory`): 3 and 20 boards, 2 to 14 classes, short and long series
# (GunPoint at 1,500 features on 3 and 5 boards: nodes whose heap holds ~2.5 KB more than
# their neighbours' in size, set-up garbage that nothing the runner reaches refers to, yet
# kept: the estimate covers them too)
CONFIGS = [
    ["--dataset", "GunPoint", "--nodes", "3", "--features", "600"],
    ["--dataset", "GunPoint", "--nodes", "3", "--features", "1500"],
    ["--dataset", "GunPoint", "--nodes", "5", "--features", "1500"],
    ["--dataset", "GunPoint", "--nodes", "3", "--features", "3000"],
    ["--dataset", "FaceAll", "--data-dir", UCR, "--nodes", "20", "--measure", "heaviest"],
    ["--dataset", "OSULeaf", "--nodes", "20", "--measure", "heaviest"],
]
# the same nodes with rocknet from .py files (CircuitPython without its mpy-cross): compiling
# source at import, set-up and every checkpoint holds more than loading .mpy (py_extra_bytes)
PY_CONFIGS = [CONFIGS[0], CONFIGS[4]]
# not calibrated on: the estimate must cover it, and not by more than TOLERANCE
CHECK = ["--dataset", "GunPoint", "--nodes", "3", "--features", "1000"]
TOLERANCE = 0.20


def measure(config: list[str], code: str = "mpy") -> dict[str, Any]:
    """`rocknet bench memory` of ``config``, every node keeping the codes of its undecided
    samples in the full ring, 2 x window + 4 slots (what the calibration has always measured:
    a ring of series holds fewer objects, so its estimate errs high by their headers, ~60 B a
    slot; and with ``--pending auto`` whether a ring shrinks would hang on the model being
    calibrated). Each node's ``estimate_bytes`` counts the ring its plan has."""
    args = build_parser().parse_args(["bench", "memory", *config, "--board", BOARD,
                                      "--code", code, "--keep", "codes",
                                      "--pending", str(full_pending(Training.window))])
    return memory.measure(args)


def remainders(result: dict[str, Any], runtime: int) -> list[dict[str, Any]]:
    """Per measured node: its peak need, the estimate, and the remainder the model leaves."""
    out = []
    for n in result["per_node"]:
        if n["error"] is not None:
            raise SystemExit(f"node {n['node']} failed while measured: {n['error']}")
        modelled = n["estimate_bytes"] - runtime
        out.append({"node": n["node"], "peak_need_bytes": n["peak_need_bytes"],
                    "modelled_bytes": modelled,
                    "remainder_bytes": n["peak_need_bytes"] - modelled})
    return out


def check() -> int:
    result = measure(CHECK)
    bad = []
    for n in result["per_node"]:
        need, est = n["peak_need_bytes"], n["estimate_bytes"]
        print(f"node {n['node']}: measured {need:,} B, estimated {est:,} B")
        if n["error"] is not None or not need <= est <= need * (1 + TOLERANCE):
            bad.append(n["node"])
    if bad:
        print(f"{MEMORY_MODEL_FILE}: the planner's estimate misses {' '.join(CHECK)} on "
              f"node(s) {bad} (it must cover the measured peak need, within "
              f"{TOLERANCE:.0%}): run `PYTHONPATH=host python tools/calibrate_memory.py` "
              "and commit it", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    if p.parse_args(argv).check:
        return check()
    if not os.path.isdir(UCR):
        print(f"no UCR data folder at {UCR} (FaceAll is calibrated on): set ROCKNET_DATA_DIR "
              "to a folder holding FaceAll/FaceAll_TRAIN.tsv", file=sys.stderr)
        return 2
    runs = []
    for code, configs in (("mpy", CONFIGS), ("py", PY_CONFIGS)):
        for config in configs:
            result = measure(config, code)
            runtime = runtime_bytes(result["nodes"], result["length"],
                                    "files" if code == "mpy" else "py")
            runs.append({"bench": " ".join(config), "code": code,
                         "features": result["features"], "n_nodes": result["nodes"],
                         "length": result["length"], "nodes": remainders(result, runtime)})
            print(runs[-1], flush=True)
    # the remainder grows with the fleet (per-member state: decision history, replay windows,
    # schedule) and with the series' length: a plane through the worst remainder of each
    # fleet shape (least squares), then raised until it covers every measured node
    worst: dict[tuple[int, int], int] = {}
    for r in runs:
        if r["code"] != "mpy":
            continue
        key = (r["n_nodes"], r["length"])
        for n in r["nodes"]:
            worst[key] = max(worst.get(key, n["remainder_bytes"]), n["remainder_bytes"])
    keys = sorted(worst)
    A = np.array([[1.0, n, length] for n, length in keys])
    coef = np.linalg.lstsq(A, np.array([float(worst[k]) for k in keys]), rcond=None)[0]
    per_node, per_sample = max(0, math.ceil(coef[1])), max(0, math.ceil(coef[2]))
    base = -(-max(w - per_node * n - per_sample * length for (n, length), w in worst.items())
             // 256) * 256
    # .py nodes: what they hold beyond the plane, at the worst
    py_extra = max([0] + [n["remainder_bytes"] - base - per_node * r["n_nodes"]
                          - per_sample * r["length"]
                          for r in runs if r["code"] == "py" for n in r["nodes"]])
    table = {
        "format": "rocknet-memory-model",
        "runtime_bytes": {"base": base, "per_node": per_node, "per_sample": per_sample,
                          "py_extra": -(-py_extra // 256) * 256},
        "measured": {
            "what": "`rocknet bench memory ... --board adafruit_feather_nrf52840 --code mpy` "
                    "peak_need_bytes per measured node, less the planner's modelled parts "
                    "(code from .mpy files, link, ring, slice, per-feature state): "
                    "runtime_bytes = base + per_node x nodes + per_sample x series length "
                    "covers every remainder; with --code py (.py files) py_extra more",
            "runtime": f"MicroPython 1.29 + ulab, WebAssembly ({RUNTIME_VERSION}), "
                       "circuitpython-9 profile, float32-equivalent bytes",
            "runs": runs,
        },
    }
    MEMORY_MODEL_FILE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {MEMORY_MODEL_FILE}: runtime_bytes {table['runtime_bytes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
