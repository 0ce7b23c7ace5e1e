"""`rocknet bench features`: speed and memory of the feature slices, measured in one run.

- ms per series per node inside MicroPython 1.29 + ulab (WebAssembly) and CPython + numpy
  (the device code, timed around its transform calls, mean over nodes);
- the host reference's whole-transform throughput next to aeon's MiniRocket (numba, after a
  warm-up call so compilation is not counted) on the same series and machine;
- MicroPython heap held by one node's slice (its arrays, buffers and objects, not the plan
  dict it is built from): gc.mem_alloc() after a collection with the slice built and used,
  minus before, in a fresh interpreter per node; the maximum over nodes.
  The slice holds only int16/uint16 arrays and small objects, so the WebAssembly figure
  (32-bit pointers like a Cortex-M4) stands for the board without float correction;
- board ms per series per node (`board_ms_per_series`): the board clock model
  (`runtimes.board_clock`: the transform's ulab calls and bytecode, counted in CPython, at
  the costs measured on an emulated Cortex-M4F, x CPI / MHz of ``--board``), mean over nodes
  like ``ms_per_series``; the host figures stay under ``ms_per_series`` (host clock);
- MicroPython heap held by the code of a training node (`code_heap_bytes`): the modules
  `rocknet.run()` imports, loaded from mpy-cross 1.29 .mpy files as `rocknet deploy` installs
  them (MicroPython copies .mpy bytecode into the heap); `code_heap_bytes_by_source` adds the
  same modules imported from the ROMFS image `rocknet deploy --romfs` writes (bytecode stays
  in the image). Frozen modules cannot be measured here (see FROZEN_PER_ROMFS).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..cli.common import add_dataset_args, add_plan_args, fit_plan, load_dataset
from ..reference import minirocket as reference
from ..reference.validate import device_counts
from ..runtimes import board_clock, open_runtime
from ..runtimes.heap import budget_fields

HEAP_CODE = """
from rocknet.minirocket import Slice
from rocknet.xp import np
_s = Slice(features)
_out = np.zeros(_s.n_features, dtype=np.uint16)
_s.transform(series, _out)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="feature-slice speed and memory, device vs reference")
    add_dataset_args(p, default="FaceAll")
    add_plan_args(p)
    p.set_defaults(nodes=20)
    p.add_argument("--series", type=int, default=64,
                   help="series timed per node in the device runtimes (default 64)")
    p.add_argument("--board", default="adafruit_feather_nrf52840",
                   help="board whose clock the board_ms_per_series model uses")
    p.add_argument("--json", action="store_true")
    p.add_argument("--heap-budget", type=int, metavar="BYTES",
                   help="heap budget the node (code + slice) must fit (default: --board's)")
    p.set_defaults(func=run)


def slice_heap_bytes(features: dict[str, Any], series: np.ndarray) -> int:
    """Measured in a fresh interpreter: in a long-lived one, objects of earlier runs that the
    conservative collector still sees at the baseline and frees later would be subtracted.
    The slice's set-up code (`minirocket_init`) is imported before the baseline: it is code,
    which `code_heap_bytes` counts, and its qstrs would shift the figure with every change to
    the package."""
    from ..runtimes.micropython import MicroPython

    with MicroPython() as mpy:
        mpy.exec("import gc\nimport rocknet.minirocket, rocknet.minirocket_init")
        mpy.set(features=features, series=series.astype(np.int8).tobytes())
        before = mpy.mem_alloc()  # the plan data and the series are the caller's
        mpy.exec(HEAP_CODE)
        return mpy.mem_alloc() - before


def ulab_calls_per_series(features: dict[str, Any]) -> int:
    """Array calls one transform makes, counted from the slice's loop structure."""
    L = features["length"]
    calls = 3  # load x, load 3x, scale 3x
    combo = 0
    slots = reference.slice_slots(features)
    for di, d in enumerate(features["dilations"]):
        if slots[di, 0] == slots[di, 1]:
            continue
        calls += 9
        nb = features["biases_per_dilation"][di]
        for _ in range(slots[di, 0], slots[di, 1]):
            n = L - 8 * d if features["centre"][combo] else L
            chunks = -(-nb // max(1, 4096 // n))
            blocks = -(-n // 255)
            calls += 6 + chunks * (2 + 3 * blocks)
            combo += 1
    return calls


# The modules a training board holds (besides `rocknet` and `xp`): what `rocknet.run()` keeps
# once its set-up code is dropped (`rocknet.start` forgets board, the *_init constructors,
# store, checkpoint, report), for a plain-SGD plan; a checkpoint write loads and drops
# checkpoint, store and head_state again, a status line report. A momentum/Adam plan adds
# head_moments, a dual ridge plan head_dual; the radio adapter (radio/bleio.py or
# radio/bluetooth.py) comes on top. tests/test_board_run.py checks this list against a
# MicroPython node after a status line, an epoch and a checkpoint.
NODE_MODULES = ("_compat", "ccm", "mixer", "wire", "link", "minirocket", "logits", "schedule",
                "messages", "node", "head", "runner", "samples")
_IMPORT_NODE = "import rocknet, rocknet.xp\n" + "\n".join(f"import rocknet.{m}"
                                                           for m in NODE_MODULES)


# Frozen modules cannot be measured here (the WebAssembly firmware cannot be rebuilt with
# rocknet frozen in): the frozen figure is the ROMFS figure measured here times the ratio
# frozen / ROMFS measured on an emulated Cortex-M4F (../shared/notes/board-costs.md: 14.8 KB
# frozen, 34.1 KB ROMFS, MicroPython 1.29 qemu port).
FROZEN_PER_ROMFS = 14.8 / 34.1


def code_heap_bytes(code_from: str = "files") -> int:
    """MicroPython heap held by the modules a training node imports (bytecode, qstrs,
    function objects, module dicts), loaded the way `code_from` names:

    - "files": the .mpy files `rocknet deploy` installs (read into the heap);
    - "romfs": the same files in the ROMFS image `rocknet deploy --romfs` writes, mounted with
      MicroPython's VfsRom (the image's bytes are allocated before the baseline, so what is
      counted is what importing from ROM keeps, bytecode and constants staying in the image);
    - "frozen": derived, not measured (FROZEN_PER_ROMFS);
    - "py": the .py sources, compiled at import, under the `circuitpython-9` profile (what
      `rocknet deploy` installs on CircuitPython without its own mpy-cross; that profile has
      no hashlib, yet a training node does not import the pure-Python SHA-256: its digest
      runs on AES, and only set-up and checkpoint code load the SHA-256, then drop it).

    The package's __init__ and xp count too: every node imports them (the interpreter the
    baseline is taken in has imported none of rocknet)."""
    from ..boards import CODE_SOURCES
    from ..hardware.deploy import ROM_PACKAGE_DIR, compile_mpy, package_sources, romfs_image
    from ..runtimes.micropython import MicroPython

    if code_from not in (*CODE_SOURCES, "py"):
        raise ValueError(f"code_from must be one of {CODE_SOURCES} or py, got {code_from!r}")
    if code_from == "frozen":
        return round(code_heap_bytes("romfs") * FROZEN_PER_ROMFS)
    if code_from == "py":
        with MicroPython(profile="circuitpython-9", code_format="py") as mpy:
            before = mpy.mem_alloc()
            mpy.exec(_IMPORT_NODE)
            return mpy.mem_alloc() - before
    package = compile_mpy(package_sources())
    with tempfile.TemporaryDirectory() as tmp:
        for rel, body in package.items():
            f = Path(tmp) / "rocknet" / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(body)
        with MicroPython(device_dir=Path(tmp)) as mpy:
            if code_from == "romfs":  # /rom/lib ahead of /lib on sys.path, as on the board
                mpy.put_file("/rocknet.romfs", romfs_image(package))
                mpy.exec("import vfs, sys\n_rn_img = open('/rocknet.romfs', 'rb').read()\n"
                         "vfs.mount(vfs.VfsRom(_rn_img), '/rom')\n"
                         f"sys.path.insert(0, {ROM_PACKAGE_DIR.rsplit('/', 1)[0]!r})")
            before = mpy.mem_alloc()  # the interpreter before rocknet (the image included)
            mpy.exec(_IMPORT_NODE)
            held = mpy.mem_alloc() - before
            where = mpy.eval("rocknet.runner.__file__")
    if code_from == "romfs" and not where.startswith(ROM_PACKAGE_DIR + "/"):
        raise RuntimeError(f"rocknet.runner imported from {where}, not from the ROMFS image")
    return held


def run(args: argparse.Namespace) -> int:
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    t = Table(title=f"features: {result['dataset']}, {result['nodes']} nodes, "
                    f"{result['features']} features ({result['variant']})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("ms/series/node, MicroPython+ulab", f"{result['ms_per_series']['micropython']:.2f}")
    t.add_row("ms/series/node, CPython+numpy", f"{result['ms_per_series']['cpython']:.2f}")
    t.add_row(f"ms/series/node on {result['board_clock']['board']} (board clock model)",
              f"{result['board_ms_per_series']:.1f}")
    t.add_row("reference series/s (whole transform)", f"{result['reference_series_per_s']:.0f}")
    t.add_row("aeon MiniRocket series/s", f"{result['aeon_series_per_s']:.0f}")
    t.add_row("reference / aeon", f"{result['reference_vs_aeon']:.2f}")
    t.add_row("MicroPython heap per node (max)", f"{result['heap_bytes_per_node']} B")
    t.add_row("MicroPython heap of a training node's code (.mpy)",
              f"{result['code_heap_bytes']} B")
    t.add_row("ulab calls per series (max node)", str(result["ulab_calls_per_series"]))
    t.add_row("device counts bit-exact (timed series)", str(result["features_bitexact"]))
    Console().print(t)
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from aeon.transformations.collection.convolution_based import MiniRocket

    ds = load_dataset(args)
    pl = fit_plan(args, ds)
    X = np.vstack([ds.X_train, ds.X_test])
    Q = pl.quantizer(X)
    sample = Q[: args.series]
    ms: dict[str, float] = {}
    exact = True
    heap = 0
    for name in ("cpython", "micropython"):
        rt = open_runtime(name)
        per_node = []
        try:
            for node in range(pl.n_nodes):
                feats = pl.node_features(node)
                counts, spent = device_counts(rt, feats, sample)
                exact &= bool(np.array_equal(counts, reference.slice_counts(sample, feats)))
                per_node.append(1000 * spent / len(sample))
                if name == "micropython":
                    heap = max(heap, slice_heap_bytes(feats, sample[0]))
        finally:
            rt.close()
        ms[name] = float(np.mean(per_node))

    clock = board_clock.BoardClock.for_board(args.board)
    series = sample[0].astype(np.int8).tobytes()
    works = [board_clock.slice_work(pl.node_features(node), series)
             for node in range(pl.n_nodes)]
    board_ms = [clock.ms(w) for w in works]

    t0 = time.perf_counter()
    for node in range(pl.n_nodes):
        reference.slice_counts(Q, pl.node_features(node))
    ref_rate = len(Q) / (time.perf_counter() - t0)

    mr = MiniRocket(n_kernels=pl.n_features, random_state=args.seed, n_jobs=1)
    mr.fit(ds.X_train[:, None, :])
    mr.transform(X[:2, None, :])  # compile outside the timing
    t0 = time.perf_counter()
    mr.transform(X[:, None, :])
    aeon_rate = len(X) / (time.perf_counter() - t0)

    return {
        "dataset": ds.name,
        "variant": pl.variant,
        "nodes": pl.n_nodes,
        "features": pl.n_features,
        "series_timed": int(len(sample)),
        "ms_per_series": ms,
        "ms_per_series_clock": "host: this machine's CPU (MicroPython 1.29 + ulab WebAssembly "
                               "under Node.js; CPython + numpy)",
        "board_ms_per_series": float(np.mean(board_ms)),
        "board_ms_per_series_max": float(np.max(board_ms)),
        "board_instructions_per_series_max": round(max(clock.instructions(w) for w in works)),
        "board_clock": clock.as_dict(),
        "reference_series_per_s": ref_rate,
        "aeon_series_per_s": aeon_rate,
        "reference_vs_aeon": ref_rate / aeon_rate,
        "heap_bytes_per_node": int(heap),
        "ulab_calls_per_series": max(ulab_calls_per_series(pl.node_features(i))
                                     for i in range(pl.n_nodes)),
        "features_bitexact": bool(exact),
        "code_heap_bytes": (code := code_heap_bytes()),
        "code_heap_bytes_by_source": {"files": code, "romfs": code_heap_bytes("romfs")},
        **budget_fields(args, code + int(heap)),  # node = its code (.mpy) + its slice
    }
