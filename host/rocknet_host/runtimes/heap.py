"""A board's heap budget, enforced in the WebAssembly MicroPython (virtual boards, the runner).

The WebAssembly heap grows on demand and is collected only between calls, so a fixed heap
cannot stand in for a board's. Instead the bridges (``board_profile.mjs``: ``heapCheck``)
measure at *checkpoints*: after every call (``heap_check="call"``) or where the caller marks
one (`MicroPython.checkpoint_heap`). A checkpoint, with the device tracker below
(``_rn_heap``, installed next to the profile's modules):

1. before collecting: ``micropython.mem_info()``'s ``max blk sz`` is the largest single block
   in the heap; as nothing was collected since the previous checkpoint, a block larger than
   the largest one that survived that collection was allocated in between: the step's
   largest transient allocation;
2. ``gc.collect()`` (twice: one in a call of its own first, so that the figure does not
   depend on what the previous call left on the stack), then ``gc.mem_alloc()``: the live
   heap, code included (the device package is loaded as the board loads it: ``.mpy`` for
   MicroPython profiles, ``.py`` for CircuitPython ones, see `profiles.Profile.code_format`);
3. board-equivalent bytes: ulab float arrays reachable from the interpreter's globals count
   ``float_bits / 64`` of their bytes (float64 here, float32 on boards), and on CircuitPython
   (packed 30-bit floats, no heap) every reachable Python float saves its 16-byte box. Shared
   views are counted as if they owned their data, so this can undercount the board heap by a
   view's size; nothing else differs (WebAssembly is a 32-bit port with 16-byte GC blocks);
4. the node needs at least ``max(live, live at the previous checkpoint + new largest
   block)`` board bytes, less what the interpreter held before rocknet was imported (a
   checkpoint labelled ``boot``, where the caller takes one: the simulator's fleet does; a
   board's budget is what it has free for rocknet, and the baseline also holds the
   simulator's virtual radio and clock, C on a board, and what a checkpoint labelled
   ``harness`` adds to the one before: the simulator's clock meter); above ``budget`` the
   checkpoint raises
   ``MemoryError`` in the device,
   which the caller sees as that call's exception (`micropython.DeviceError` with
   ``exc_type == "MemoryError"``, or the REPL's traceback on a virtual board).

A checkpoint leaves nothing behind in the heap it measures: its label's trailing number
crosses as an int (``check("round", 12, ...)``), as MicroPython interns a short string literal
of compiled code for good (a qstr: a ``"round12"`` literal per round grew the heap ~9 B a
round), and the tracker keeps its labels in place.

Each checkpoint's own figures (live, board-equivalent, largest block) come back to the
caller (`MicroPython.checkpoint_heap`; the tracker's ``last``, updated in place). Reported
(`HEAP_KEYS`): peak live bytes (measured and board-equivalent) and where, the largest
transient block, steady-state growth per round (least squares over checkpoints labelled
``round...``, the first one left out), and the first checkpoint over the budget.
"""

from __future__ import annotations

from typing import Any

BLOCK_BYTES = 16  # GC block of a 32-bit MicroPython (WebAssembly and the boards alike)
HEAP_KEYS = ("heap_budget_bytes", "peak_heap_bytes", "peak_heap_board_bytes", "peak_label",
             "code_bytes", "largest_alloc_bytes", "largest_alloc_label",
             "growth_per_round_bytes", "checkpoints", "out_of_memory", "base_bytes")

# The device-side tracker: a module of its own so its state survives between calls (it is a
# few hundred bytes of heap itself, counted like the rest).
TRACKER = '''import gc
budget = 0
fscale = 1.0
packed = False
peak = peak_board = 0
# labels as (name, number or -1), kept in place: the tracker allocates nothing per checkpoint
peak_label = [None, -1]
largest = 0
largest_label = [None, -1]
prev_live = 0
code = None
base = 0  # the "boot" checkpoint: the interpreter before rocknet (not the board's to give)
checks = 0
over = None
_r = [0, 0.0, 0.0, 0.0, 0.0]
last = [0, 0, 0]  # the latest checkpoint: live, board-equivalent, largest block (in place)


def configure(budget_bytes, float_bits, packed_floats):
    global budget, fscale, packed
    budget = budget_bytes
    fscale = float_bits / 64
    packed = packed_floats


def _savings(roots):
    try:
        from ulab import numpy as np
        nd, fl = np.ndarray, np.float
    except ImportError:
        nd = fl = None
    mod, cls = type(gc), type
    seen = set()
    stack = list(roots)
    arr = nfl = 0
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen:
            continue
        seen.add(i)
        if nd is not None and isinstance(o, nd):
            if o.dtype == fl:
                arr += o.size * o.itemsize
        elif isinstance(o, float):
            nfl += 1
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif not isinstance(o, (mod, cls)):
            d = getattr(o, "__dict__", None)
            if isinstance(d, dict):
                stack.extend(d.values())
    return int(arr * (1 - fscale)) + (16 * nfl if packed else 0)


def _name(label, n):
    return label if n < 0 else "%s%d" % (label, n)


def check(label, n, big, prev_big, roots):
    global peak, peak_board, largest, prev_live, code, checks, over, base
    gc.collect()
    live = gc.mem_alloc()
    board = live - _savings(roots)
    checks += 1
    if label == "boot" and checks == 1:
        base = board
    if label == "harness":  # the simulator's objects made since the last checkpoint
        base += board - prev_live
    if label == "code" and code is None:
        code = live
    if live > peak:
        peak = live
    if board > peak_board:
        peak_board = board
        peak_label[0] = label
        peak_label[1] = n
    if big > largest:
        largest = big
        largest_label[0] = label
        largest_label[1] = n
    need = board
    if big > prev_big and checks > 1:
        need = max(need, prev_live + big)
    prev_live = board
    last[0] = live
    last[1] = board
    last[2] = big
    if label.startswith("round"):
        r = _r
        r[0] += 1
        if r[0] > 1:
            x = r[0]
            r[1] += x
            r[2] += board
            r[3] += x * board
            r[4] += x * x
    need -= base
    if budget and need > budget and over is None:
        over = [_name(label, n), need]
    if budget and need > budget:
        raise MemoryError("memory allocation failed: heap budget %d B exceeded, %s needs %d B "
                          "(board-equivalent, above the %d B the interpreter held before "
                          "rocknet)" % (budget, _name(label, n), need, base))


def report():
    r = _r
    n = r[0] - 1
    growth = None
    if n >= 2:
        den = n * r[4] - r[1] * r[1]
        growth = (n * r[3] - r[1] * r[2]) / den if den else 0.0
    return {"heap_budget_bytes": budget or None, "peak_heap_bytes": peak,
            "peak_heap_board_bytes": peak_board, "peak_label": _name(*peak_label),
            "code_bytes": code,
            "largest_alloc_bytes": largest, "largest_alloc_label": _name(*largest_label),
            "growth_per_round_bytes": growth, "checkpoints": checks, "out_of_memory": over,
            "base_bytes": base}
'''


def tracker_setup(budget: int | None, float_bits: int, packed_floats: bool) -> str:
    """Python that configures the tracker in a fresh interpreter (after the profile)."""
    return (f"import _rn_heap\n_rn_heap.configure({int(budget or 0)}, {int(float_bits)}, "
            f"{bool(packed_floats)})\ndel _rn_heap\n")


def board_bytes_note(float_bits: int, packed: bool) -> str:
    """How the board-equivalent figure is made (for reports)."""
    note = f"ulab float arrays counted at float{float_bits}"
    if packed:
        note += ", Python floats unboxed (CircuitPython)"
    return note


def summary(report: dict[str, Any]) -> str:
    """One line for humans: peak (board), budget, largest block, growth."""
    if not report or not report.get("checkpoints"):
        return "heap: not measured"
    txt = f"peak heap {report['peak_heap_board_bytes']:,} B (board)"
    if report.get("heap_budget_bytes"):
        txt += f" of {report['heap_budget_bytes']:,} B"
    txt += f", largest block {report['largest_alloc_bytes']:,} B"
    if report.get("growth_per_round_bytes") is not None:
        txt += f", {report['growth_per_round_bytes']:+.0f} B/round"
    if report.get("out_of_memory"):
        label, need = report["out_of_memory"]
        txt += f"; OUT OF MEMORY at {label} ({need:,} B)"
    return txt


def budget_fields(args: Any, node_heap_bytes: int) -> dict[str, Any]:
    """Heap-budget fields for a bench report: the budget (``--heap-budget``, else the
    ``--board``'s), the node's heap and whether it fits (None without a budget)."""
    budget = getattr(args, "heap_budget", None)
    board = getattr(args, "board", None)
    if budget is None and board:
        from ..boards import load

        budget = load(board).heap_budget
    return {"heap_budget_bytes": budget, "node_heap_bytes": int(node_heap_bytes),
            "heap_budget_ok": None if budget is None else node_heap_bytes <= budget}
