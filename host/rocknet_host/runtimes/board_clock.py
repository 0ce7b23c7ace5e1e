"""The board's clock: how long a device call takes on a board, from a cost model.

board instructions = sum over the call's ulab operations of (fixed + per_element x n)
                   + SHA-256 blocks x block cost (native ``hashlib``)
                   + Python opcodes x instructions per opcode
board ms           = instructions x CPI / (MHz x 1000)

The costs come from ``../shared/notes/board-costs.md`` (MicroPython 1.29 + ulab 6.12 on an
emulated Cortex-M4F, hardware float32; figures are instructions): its per-operation table and
its single-operation figures, nothing else (`fit`). Its end-to-end figures of rocknet's own calls
are kept apart for validation (`VALIDATION`, tests/test_board_clock.py, README).

What is counted, by running the real device code (``device/rocknet``) on CPython:

- **ulab calls**: `instrument` replaces the ``np`` every loaded ``rocknet.*`` module imported
  from ``rocknet.xp`` by a recording stand-in for numpy whose arrays are a numpy subclass. Every
  operator, ufunc, numpy function, slice read and slice write of a device array is recorded as
  (kind, dtype class, element count); the values computed are numpy's, unchanged.
- **Python-level work**: opcodes executed in device frames (``sys.settrace`` opcode events),
  leaving out CPython 3.11's bookkeeping opcodes that MicroPython's bytecode has no counterpart
  for (RESUME, PRECALL, PUSH_NULL, KW_NAMES, CACHE, NOP, ...), minus one per recorded ulab call
  (the table's fixed costs include the opcode that dispatches the operation). One opcode costs
  ``python_per_opcode`` instructions, calibrated on the table's "Python loop of 1,000 float
  operations" (876,000): the loop ``for _ in range(1000): x = x * y`` traced the same way.
- **hashing**: the port's SHA-256 (`_compat.sha256`) becomes a counting wrapper without
  ``copy()`` (MicroPython's cannot copy), priced per 64-byte block; with ``hash="python"``
  the device uses `rocknet.sha256.Sha256` (CircuitPython 9: no hashlib), whose bytecode is
  then counted. Only set-up and checkpoint code hashes (file checks, checkpoint headers): a
  round hashes nothing, the node's consistency digest being an AES chain (`ccm.Chain`,
  counted as AES below).
- **AES** (`_compat.aes`, under AES-CCM in `rocknet.ccm` and the digest chain
  `ccm.Chain`: one re-keyed CBC call per applied entry): cipher objects built (key
  schedules), calls into C and 16-byte blocks are counted; a call costs
  ``benches.protocol.C_CALL_INSTRUCTIONS`` and blocks and key schedules the cycles
  ``benches.protocol.AES_ASSUMED`` gives for the board's runtime (aesio: tiny-AES-c's
  instructions counted in qemu-arm; cryptolib: assumed; board-costs.md has no AES figure).
  The AES itself runs on CPython's ``cryptography`` here, so the ECB keystream of a
  cryptolib without CTR is not what is counted (`benches.protocol.auth_cost` runs the
  board's module API).

Use (the simulator's API: build the device objects inside `instrument`, so that they pick up
the instrumented backend and hash; then count each call)::

    clock = BoardClock.for_board("adafruit_feather_nrf52840")
    with instrument() as meter:
        link = Link(...)
        with meter.count() as work:
            link.on_advert(data, now_ms)
    clock.ms(work)            # board milliseconds of that call
    clock.breakdown(work)     # instructions by part (ulab kinds, sha256, aes, python)

Not measured, assumed (and why): unary ufuncs (exp, floor, sqrt, abs, isfinite) cost like
``a * 3`` (one pass producing a new array; libm's expf would add tens of cycles per element:
C <= 255 elements here); ``clip`` like two ``a * 3``; reductions other than sum (max, min, all,
argmax) like ``np.sum``; ``np.take`` and ``a.copy()`` like ``a[:] = b`` (an element-wise copy
loop); ``np.zeros``/``empty`` like the fixed part of ``a * 3`` (one allocation) + 1 instruction
per element (memset); ``np.array`` from a list or another dtype like ``a[:] = b``; a scalar read
``a[i]`` like the fixed part of a view; ``reshape``/``transpose``/``frombuffer``/``tobytes`` like
a view. Native SHA-256 costs 35,000 / 5 = 7,000 instructions per 64-byte block (the table's
254-byte digest hashes 5 blocks with padding). Radio calls (``_bleio``, ``bluetooth``) are not
in the device code this counts: the simulator's radio model keeps their time (its per-advert
CPU figures). AES: see above. Unknown numpy functions are costed like
``a * 3`` and listed by name in `breakdown` under ``other:NAME``.

CPI and clock per board: ``[clock] cpu_mhz`` and ``cpi`` of ``boards/*.toml``.
"""

from __future__ import annotations

import contextlib
import dis
import hashlib
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import boards
from ..resources import REPO_ROOT

DEVICE_DIR = str((REPO_ROOT / "device" / "rocknet").resolve())

# ----- the measured costs (../shared/notes/board-costs.md), instructions -----

# Per-call costs of ulab operations: instructions = fixed + per_element x n.
# (kind, dtype class) -> (fixed, per_element); "int" rows are the table's int16 ones.
PER_OP_TABLE: dict[tuple[str, str], tuple[float, float]] = {
    ("binary", "int"): (1636, 15.29),     # a + b
    ("scalar", "int"): (2788, 15.29),     # a * 3
    ("compare", "int"): (1515, 17.79),    # a > b
    ("sum", "int"): (556, 25.00),         # np.sum(a)
    ("view", "int"): (1324, 0.03),        # a[1:]
    ("inplace", "int"): (696, 10.01),     # a += b
    ("assign", "int"): (2826, 71.00),     # a[:] = b
    ("binary", "float"): (1935, 21.41),
    ("scalar", "float"): (2784, 23.40),
    ("compare", "float"): (1577, 18.60),
    ("sum", "float"): (673, 23.00),
    ("view", "float"): (1281, 0.04),
    ("inplace", "float"): (680, 9.01),
    ("assign", "float"): (3016, 88.73),
}

# Single operations of the table: (description, elements, instructions).
DOT_FLOAT = (14 * 595, 227_660)        # np.dot (14 x 595) float32 by 595 float32
DOT_INT = (14 * 595, 243_962)          # the same with an int16 matrix
COMPARE_BROADCAST = ((255, 6_205), (4_000, 80_300))  # (1 x n) > (k x 1) int16 -> uint8
SUM_AXIS = ((255, 4_231), (4_000, 43_000))            # np.sum(mask, axis=1), uint8 mask
SHA256_254 = (254, 35_000)             # hashlib.sha256(254 bytes).digest(), native
PY_FLOAT_LOOP = (1000, 876_000)        # a Python loop of 1,000 float operations

# End-to-end figures of rocknet's own calls: for validation only, never fitted on.
# FaceAll --nodes 20, node 0 (595 features, 14 classes); board radio layout 21 rows of 234 B.
VALIDATION: dict[str, int] = {
    "Head.codes": 92_500,
    "Head.partial_logits": 457_000,
    "Head.apply": 172_000,
    "Head.step (batch of 8)": 6_250_000,
    "Node.sum_logits (20 rows)": 400_000,
    "Link.on_advert (mean, 10 % loss round)": 248_000,
    "encode one coded packet (next_packet + pack)": 357_000,
}
# The notes' on_advert and encode figures were taken on the HMAC-SHA256 wire; its tag alone
# (110,000 native, 15,380,000 pure Python) has no counterpart in the AES-CCM wire counted now.

DEFAULT_CPI = 1.55  # board-costs.md: measured from the instruction mix of the feature transform

# CPython 3.11 opcodes without a MicroPython counterpart (frame set-up, call protocol halves).
SKIP_OPCODES = frozenset(dis.opmap[n] for n in (
    "RESUME", "PRECALL", "PUSH_NULL", "KW_NAMES", "CACHE", "NOP", "EXTENDED_ARG",
    "COPY_FREE_VARS", "MAKE_CELL", "RETURN_GENERATOR") if n in dis.opmap)


# ----- the fitted model -----


@dataclass(frozen=True)
class Costs:
    """Instructions per unit of work; `fit` builds it from the table."""

    ops: dict[tuple[str, str], tuple[float, float]]
    sha256_block: float
    python_per_opcode: float
    source: str = "../shared/notes/board-costs.md (emulated Cortex-M4F, MicroPython 1.29 + ulab " \
                  "6.12, float32)"

    def op(self, kind: str, dtype: str, n: int) -> float:
        fixed, per = self.ops[(kind, dtype)]
        return fixed + per * n


def _line(p: tuple[tuple[float, float], tuple[float, float]]) -> tuple[float, float]:
    (n0, y0), (n1, y1) = p
    per = (y1 - y0) / (n1 - n0)
    return y0 - per * n0, per


def fit() -> Costs:
    """The model's costs from the per-operation table and the single-operation figures.

    Rows beyond the per-operation table: ``dot`` (fixed as ``a + b``'s, per multiply-add from
    the 14 x 595 figure), ``sum_axis`` (two-point line through the two uint8 figures; float
    rows assumed the same), ``create``/``convert``/``index``/``other`` (assumptions in the
    module docstring); Python per opcode from the traced calibration loop."""
    ops = dict(PER_OP_TABLE)
    for dt, (n, y) in (("float", DOT_FLOAT), ("int", DOT_INT)):
        fixed = PER_OP_TABLE[("binary", dt)][0]
        ops[("dot", dt)] = (fixed, (y - fixed) / n)
    ops[("sum_axis", "int")] = ops[("sum_axis", "float")] = _line(SUM_AXIS)
    for dt in ("int", "float"):
        ops[("create", dt)] = (PER_OP_TABLE[("scalar", dt)][0], 1.0)
        ops[("convert", dt)] = PER_OP_TABLE[("assign", dt)]
        ops[("index", dt)] = (PER_OP_TABLE[("view", dt)][0], 0.0)
    n_bytes, sha = SHA256_254
    blocks = sha256_blocks(n_bytes)
    loops, instr = PY_FLOAT_LOOP
    return Costs(ops=ops, sha256_block=sha / blocks,
                 python_per_opcode=instr / calibration_opcodes(loops))


def sha256_blocks(n_bytes: int) -> int:
    """64-byte blocks SHA-256 compresses for a message of n bytes (with its padding)."""
    return (n_bytes + 9 + 63) // 64


def _float_loop(n: int) -> float:
    x, y = 1.0, 1.0001
    for _ in range(n):
        x = x * y
    return x


def calibration_opcodes(n: int) -> int:
    """Opcodes of the calibration loop (n float multiplies), counted as device code is."""
    tracer = _Tracer(extra={_float_loop.__code__})
    with tracer:
        _float_loop(n)
    return tracer.opcodes


_COSTS: Costs | None = None


def costs() -> Costs:
    global _COSTS
    if _COSTS is None:
        _COSTS = fit()
    return _COSTS


# ----- what one call did -----


@dataclass
class Work:
    """What a device call did: ulab calls {(kind, dtype): [calls, elements]}, opcodes, SHA-256
    blocks, unknown numpy functions by name."""

    ops: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    opcodes: int = 0
    sha256_blocks: int = 0
    aes_blocks: int = 0
    aes_key_schedules: int = 0
    aes_calls: int = 0  # calls into the port's AES (cipher objects built, buffers run)
    other: dict[str, int] = field(default_factory=dict)

    @property
    def ulab_calls(self) -> int:
        return sum(c for c, _ in self.ops.values())

    def add(self, kind: str, dtype: str, n: int) -> None:
        slot = self.ops.setdefault((kind, dtype), [0, 0])
        slot[0] += 1
        slot[1] += int(n)

    def __iadd__(self, other: Work) -> Work:
        for key, (c, n) in other.ops.items():
            slot = self.ops.setdefault(key, [0, 0])
            slot[0] += c
            slot[1] += n
        self.opcodes += other.opcodes
        self.sha256_blocks += other.sha256_blocks
        self.aes_blocks += other.aes_blocks
        self.aes_key_schedules += other.aes_key_schedules
        self.aes_calls += other.aes_calls
        for k, v in other.other.items():
            self.other[k] = self.other.get(k, 0) + v
        return self

    def scaled(self, factor: float) -> Work:
        """This work x factor (e.g. a batch step / batch size), rounded per entry."""
        out = Work()
        out.ops = {k: [round(c * factor), round(n * factor)] for k, (c, n) in self.ops.items()}
        out.opcodes = round(self.opcodes * factor)
        out.sha256_blocks = round(self.sha256_blocks * factor)
        out.aes_blocks = round(self.aes_blocks * factor)
        out.aes_key_schedules = round(self.aes_key_schedules * factor)
        out.aes_calls = round(self.aes_calls * factor)
        out.other = {k: round(v * factor) for k, v in self.other.items()}
        return out


@dataclass(frozen=True)
class BoardClock:
    """A board's clock: MHz and CPI (``boards/*.toml`` ``[clock]``) over the fitted costs."""

    board: str
    cpu_mhz: float
    cpi: float
    runtime: str = "circuitpython"  # whose AES (aesio / cryptolib) the assumed cycles are

    @classmethod
    def for_board(cls, name: str) -> BoardClock:
        b = boards.load(name)
        return cls(board=b.key, cpu_mhz=b.cpu_mhz, cpi=b.cpi, runtime=b.runtime)

    def aes_assumed(self) -> dict[str, Any]:
        """Cycles per AES-128 block and key schedule on this board's AES module (not
        measured: `benches.protocol.AES_ASSUMED`, which says why)."""
        from ..benches.protocol import AES_ASSUMED

        return AES_ASSUMED["circuitpython" if self.runtime == "circuitpython" else "micropython"]

    def breakdown(self, work: Work, model: Costs | None = None) -> dict[str, float]:
        """Instructions by part: ``ulab:KIND:DTYPE``, ``sha256``, ``aes``, ``python``."""
        c = model or costs()
        out: dict[str, float] = {}
        for (kind, dt), (calls, n) in sorted(work.ops.items()):
            fixed, per = c.ops[(kind, dt)]
            out[f"ulab:{kind}:{dt}"] = fixed * calls + per * n
        out["sha256"] = c.sha256_block * work.sha256_blocks
        if work.aes_calls:
            from ..benches.protocol import C_CALL_INSTRUCTIONS

            aes = self.aes_assumed()
            # assumed cycles, as instructions at this board's CPI
            out["aes"] = (work.aes_calls * C_CALL_INSTRUCTIONS
                          + (work.aes_blocks * aes["cycles_per_block"]
                             + work.aes_key_schedules * aes["cycles_per_key_schedule"])
                          / self.cpi)
        # the table's fixed costs include the opcode dispatching each ulab call
        out["python"] = c.python_per_opcode * max(0, work.opcodes - work.ulab_calls)
        return out

    def instructions(self, work: Work, model: Costs | None = None) -> float:
        return sum(self.breakdown(work, model).values())

    def ms(self, work: Work, model: Costs | None = None) -> float:
        """Board milliseconds of the work."""
        return self.instructions(work, model) * self.cpi / (self.cpu_mhz * 1000.0)

    def as_dict(self) -> dict[str, Any]:
        c = costs()
        return {"board": self.board, "cpu_mhz": self.cpu_mhz, "cpi": self.cpi,
                "aes_assumed": self.aes_assumed(),
                "python_instructions_per_opcode": round(c.python_per_opcode, 1),
                "sha256_block_instructions": c.sha256_block, "costs_from": c.source,
                "model": "board ms = (sum of ulab calls' fixed + per_element x n + SHA-256 "
                         "blocks x block cost + device Python opcodes x per-opcode cost + AES "
                         "calls x C-call cost) x CPI / MHz + AES blocks and key schedules x "
                         "assumed cycles / MHz (rocknet_host.runtimes.board_clock)"}


# ----- counting Python opcodes -----


_IS_DEVICE: dict[types.CodeType, bool] = {}


class _Tracer:
    """Counts opcodes executed in device frames (and in ``extra`` code objects)."""

    def __init__(self, extra: set[types.CodeType] | None = None) -> None:
        self.opcodes = 0
        self.extra = extra or set()
        self._prev: Any = None

    def _is_device(self, code: types.CodeType) -> bool:
        if code in self.extra:
            return True
        hit = _IS_DEVICE.get(code)
        if hit is None:
            hit = _IS_DEVICE[code] = code.co_filename.startswith(DEVICE_DIR)
        return hit

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "call" and self._is_device(frame.f_code):
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return self._local
        return None

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "opcode" and frame.f_code.co_code[frame.f_lasti] not in SKIP_OPCODES:
            self.opcodes += 1
        return self._local

    def __enter__(self) -> _Tracer:
        self._prev = sys.gettrace()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._prev)


# ----- counting ulab calls: a recording numpy -----

_METER: list[Meter] = []  # the active meter (innermost last)


def _dtype_class(*operands: Any) -> str:
    for a in operands:
        if isinstance(a, float) or (isinstance(a, np.ndarray | np.generic)
                                    and a.dtype.kind == "f"):
            return "float"
    return "int"


def _plain(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, Tracked) else a


def _wrap(r: Any) -> Any:
    if type(r) is np.ndarray:
        return r.view(Tracked)
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    return r


def _record(kind: str, dtype: str, n: int) -> bool:
    """Record one call if a meter is counting at depth 0; True if it did (caller nests)."""
    if not _METER:
        return False
    m = _METER[-1]
    if m.depth:
        return False
    if m.work is not None:
        m.work.add(kind, dtype, n)
    return True


@contextlib.contextmanager
def _nested() -> Iterator[None]:
    m = _METER[-1] if _METER else None
    if m is not None:
        m.depth += 1
    try:
        yield
    finally:
        if m is not None:
            m.depth -= 1


_COMPARES = frozenset({np.greater, np.greater_equal, np.less, np.less_equal, np.equal,
                       np.not_equal})


class Tracked(np.ndarray):
    """A numpy array whose operations are recorded as the ulab calls they stand for."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kw: Any) -> Any:
        out = kw.get("out")
        if out is not None:
            kw["out"] = tuple(_plain(o) for o in out)
        args = [_plain(a) for a in inputs]
        if method == "__call__":
            n = int(np.broadcast(*args).size) if len(args) > 1 else int(np.size(args[0]))
            dt = _dtype_class(*args)
            if out is not None and len(inputs) == 2 and out[0] is inputs[0]:
                kind = "inplace"
            elif ufunc in _COMPARES:
                kind = "compare"
            elif len(args) == 2 and all(np.ndim(a) > 0 for a in args):
                kind = "binary"
            else:
                kind = "scalar"  # array op scalar, and unary functions (assumed)
        elif method == "reduce":
            a = args[0]
            n, dt = int(np.size(a)), _dtype_class(a)
            axis = kw.get("axis", 0)
            kind = "sum" if np.ndim(a) <= 1 or axis is None else "sum_axis"
        else:
            n, dt, kind = int(np.size(args[0])), _dtype_class(*args), "scalar"
        _record(kind, dt, n)
        with _nested():
            result = getattr(ufunc, method)(*args, **kw)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __getitem__(self, key: Any) -> Any:
        with _nested():
            r = np.ndarray.__getitem__(self.view(np.ndarray), key)
        if isinstance(r, np.ndarray):
            _record("view", _dtype_class(r), r.size)
            return r.view(Tracked)
        _record("index", _dtype_class(r), 1)
        return r

    def __setitem__(self, key: Any, value: Any) -> None:
        base = self.view(np.ndarray)
        with _nested():
            n = int(np.size(np.ndarray.__getitem__(base, key)))
        _record("assign", _dtype_class(base), n)
        with _nested():
            np.ndarray.__setitem__(base, key, _plain(value))

    def _method(self, kind: str, name: str, *a: Any, **kw: Any) -> Any:
        base = self.view(np.ndarray)
        _record(kind, _dtype_class(base), base.size)
        with _nested():
            return _wrap(getattr(base, name)(*a, **kw))

    def reshape(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        return self._method("view", "reshape", *a, **kw)

    def transpose(self, *a: Any) -> Any:  # type: ignore[override]
        return self._method("view", "transpose", *a)

    def tobytes(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        return self._method("view", "tobytes", *a, **kw)

    def copy(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        return self._method("assign", "copy", *a, **kw)

    def sum(self, axis: Any = None, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
        base = self.view(np.ndarray)
        kind = "sum" if axis is None or base.ndim <= 1 else "sum_axis"
        _record(kind, _dtype_class(base), base.size)
        with _nested():
            return _wrap(base.sum(axis, *a, **kw))


def _dot_macs(a: Any, b: Any) -> int:
    a, b = np.asarray(a), np.asarray(b)
    inner = a.shape[-1] if a.ndim else 1
    return int(a.size * b.size // max(1, inner))


_REDUCTIONS = ("sum", "max", "min", "all", "any", "argmax", "argmin", "mean")
_CREATE = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like")
_FREE = ("dtype", "frombuffer")  # frombuffer: a view of bytes


class _Numpy(types.ModuleType):
    """numpy as the device modules see it under `instrument`: the same values, recorded."""

    def __init__(self) -> None:
        super().__init__("numpy")
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        cache = self.__dict__.get("_cache")
        if cache is not None and name in cache:
            return cache[name]
        obj = getattr(np, name)
        if isinstance(obj, np.ufunc) or not callable(obj) or isinstance(obj, type):
            return obj  # ufuncs reach Tracked.__array_ufunc__; dtypes and modules as they are
        wrapped = self._wrapper(name, obj)
        self._cache[name] = wrapped
        return wrapped

    @staticmethod
    def _wrapper(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **kw: Any) -> Any:
            with _nested():
                r = fn(*[_plain(x) for x in a], **{k: _plain(v) for k, v in kw.items()})
            first: Any = a[0] if a else ()
            if name == "dot":
                _record("dot", _dtype_class(*a[:2]), _dot_macs(a[0], a[1]))
            elif name in _REDUCTIONS:
                axis = kw.get("axis", a[1] if len(a) > 1 else None)
                kind = "sum" if axis is None or np.ndim(first) <= 1 else "sum_axis"
                _record(kind, _dtype_class(first), int(np.size(first)))
            elif name == "clip":
                for _ in range(2):
                    _record("scalar", _dtype_class(first), int(np.size(first)))
            elif name == "take":
                _record("assign", _dtype_class(first), int(np.size(r)))
            elif name in _CREATE:
                _record("create", _dtype_class(r), int(np.size(r)))
            elif name == "array":
                _record("convert", _dtype_class(r), int(np.size(r)))
            elif name in _FREE:
                _record("view", _dtype_class(r), 0)
            elif _record("scalar", _dtype_class(r), int(np.size(r))):
                m = _METER[-1]
                if m.work is not None:
                    m.work.other[name] = m.work.other.get(name, 0) + 1
            return _wrap(r)

        return call


class _CountingSha256:
    """hashlib.sha256 as MicroPython's: update/digest, no copy(); counts 64-byte blocks."""

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashlib.sha256()
        self._n = 0
        if data:
            self.update(data)

    def update(self, data: Any) -> None:
        self._h.update(bytes(data))
        self._n += len(data)

    def digest(self) -> bytes:
        m = _METER[-1] if _METER else None
        if m is not None and m.work is not None:
            m.work.sha256_blocks += sha256_blocks(self._n)
        return self._h.digest()


class _CountingAes:
    """`_compat.aes` counted: each ``new(mode, iv)`` builds a cipher (one key schedule, one
    call into C), each run is one call over ceil(len / 16) blocks."""

    def __init__(self, port_aes: Callable[[Any], Any]) -> None:
        self._port_aes = port_aes

    def __call__(self, key: Any) -> Callable[..., Any]:
        new = self._port_aes(key)

        def counted_new(mode: int, iv: Any = None) -> Callable[[Any, Any], None]:
            run = new(mode, iv)
            w = _METER[-1].work if _METER else None
            if w is not None:
                w.aes_key_schedules += 1
                w.aes_calls += 1

            def counted(src: Any, dst: Any) -> None:
                w = _METER[-1].work if _METER else None
                if w is not None:
                    w.aes_calls += 1
                    w.aes_blocks += -(-len(src) // 16)
                run(src, dst)

            return counted

        return counted_new


HASHES = ("native", "python")


class Meter:
    """The active instrumentation: `count` records one stretch of device work."""

    def __init__(self) -> None:
        self.depth = 0
        self.work: Work | None = None

    @contextlib.contextmanager
    def count(self) -> Iterator[Work]:
        """Record the device work done inside the block into the yielded `Work`."""
        if self.work is not None:
            raise RuntimeError("board_clock: count() blocks do not nest")
        work = Work()
        tracer = _Tracer()
        self.work = work
        try:
            with tracer:
                yield work
        finally:
            self.work = None
            work.opcodes += tracer.opcodes

    def call(self, fn: Callable[..., Any], *a: Any, **kw: Any) -> tuple[Any, Work]:
        """fn(*a, **kw) counted: (its result, its work)."""
        with self.count() as work:
            r = fn(*a, **kw)
        return r, work

    @staticmethod
    def array(a: Any) -> Any:
        """A host array as a device array (its operations are then recorded)."""
        return np.asarray(a).view(Tracked)


def _device_modules() -> list[types.ModuleType]:
    from . import import_device

    for name in ("rocknet._compat", "rocknet.xp", "rocknet.minirocket", "rocknet.head",
                 "rocknet.mixer", "rocknet.ccm", "rocknet.wire", "rocknet.link", "rocknet.node",
                 "rocknet.board"):
        import_device(name)
    return _loaded_device_modules()


def _loaded_device_modules() -> list[types.ModuleType]:
    return [m for k, m in sorted(sys.modules.items())
            if (k == "rocknet" or k.startswith("rocknet.")) and m is not None
            and str(getattr(m, "__file__", "") or "").startswith(DEVICE_DIR)]


@contextlib.contextmanager
def instrument(hash: str = "native") -> Iterator[Meter]:
    """Device modules with the recording numpy and the board's hash while the block runs
    (``hash``: "native" = hashlib.sha256 without copy(), counted per block; "python" =
    `rocknet.sha256.Sha256`, counted as bytecode) and a counting AES. Patched: the globals of
    every loaded ``rocknet.*`` device module that hold numpy (``np``), `_compat.sha256`
    (``sha256``, ``_sha256``) or `_compat.aes` (``aes``, ``_port_aes``); _compat, xp,
    minirocket, head, mixer, ccm, wire, link, node and board are imported first. Device
    objects built inside keep the backend's arrays, hash and AES after the block; count their
    calls inside it. Not thread-safe."""
    if hash not in HASHES:
        raise ValueError(f"hash must be one of {HASHES}, not {hash!r}")
    mods = _device_modules()
    compat = sys.modules["rocknet._compat"]
    if hash == "native":
        sha: Any = _CountingSha256
    else:
        from . import import_device

        sha = import_device("rocknet.sha256").Sha256
    port_sha, port_aes = compat.sha256, compat.aes
    aes = _CountingAes(port_aes)
    fake = _Numpy()
    saved: list[tuple[types.ModuleType, str, Any]] = []
    for m in mods:
        for attr, value in list(vars(m).items()):
            new = (fake if value is np else sha if value is port_sha
                   else aes if value is port_aes else None)
            if new is not None and attr in ("np", "sha256", "_sha256", "aes", "_port_aes"):
                saved.append((m, attr, value))
                setattr(m, attr, new)
    meter = Meter()
    _METER.append(meter)
    try:
        yield meter
    finally:
        _METER.remove(meter)
        for m, attr, value in reversed(saved):
            setattr(m, attr, value)
        # modules first imported inside the block (the `*_init` set-up code imports on
        # demand) took the fakes with `from .xp import np`: give them the backend's too
        real = {id(fake): np, id(sha): port_sha, id(aes): port_aes}
        for m in _loaded_device_modules():
            for attr in ("np", "sha256", "_sha256", "aes", "_port_aes"):
                orig = real.get(id(getattr(m, attr, None)))
                if orig is not None:
                    setattr(m, attr, orig)


def device_path() -> Path:
    return Path(DEVICE_DIR)


def slice_work(features: dict[str, Any], series: bytes) -> Work:
    """The work of one `Slice.transform` of ``series`` (int8 bytes). The transform's ulab calls
    and bytecode do not depend on the values, so one series stands for all."""
    from . import import_device

    minirocket = import_device("rocknet.minirocket")
    with instrument() as meter:
        s = minirocket.Slice(features)
        out = Meter.array(np.zeros(s.n_features, dtype=np.uint16))
        _, work = meter.call(s.transform, series, out)
    return work
