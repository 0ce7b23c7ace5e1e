"""`rocknet bench protocol`: the Mixer link against naive flooding in the fleet radio simulator.

Each configuration (nodes, topology, hops, loss) runs the same rounds twice on the same
simulated medium and seed: once with `rocknet.link.Link` (GF(2) network coding) and once with
naive flooding (every node rebroadcasts every row it has, uncoded, `--flood-repeats` times,
same packet format). The payload is RockNet's FaceAll round: the sample owner's 131-byte int8
series plus its label byte, and one partial-logit row per node (14 classes x float32).

All figures are simulated; the model parameters are printed with them (--json: "model").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtimes import board_clock, import_device
from ..runtimes.board_clock import SKIP_OPCODES
from ..sim import topology as topo_mod
from ..sim.energy import current_model
from ..sim.flooding import FloodingEndpoint
from ..sim.radio import PROFILES, RadioModel, profile
from ..sim.report import summarise
from ..sim.run import Generation, run_rounds

SERIES_LENGTH = 131  # FaceAll
CLASSES = 14
SWEEP_NODES = (5, 10, 20)
SWEEP_LOSS = (0.0, 0.1, 0.3)
SWEEP_TOPOLOGIES = (("full", None), ("line", 3), ("grid", 3))
KEY = b"rocknet bench protocol key"

# the targets (nRF52840 extended profile)
TARGET_MEAN_ROUND_S = 0.6  # N=20, full mesh, 10 % loss
TARGET_COMPLETION = 0.999  # N=20, full mesh, 30 % loss, within the deadline
TARGET_TX_RATIO = 2.0  # flooding transmissions / coded transmissions at 3 hops


@dataclass(frozen=True)
class Config:
    nodes: int
    topology: str
    hops: int | None
    loss: float
    rounds: int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocol",
        help="Mixer link vs naive flooding in the BLE advertising simulator",
        description="Round completion, round time, packets, airtime and energy per node for "
        "the network-coded link and naive flooding. Without --nodes/--topology/--hops/--loss "
        "it sweeps N in {5,10,20}, full mesh and 3-hop line/grid, loss in {0,0.1,0.3}.",
    )
    p.add_argument("--nodes", type=int, help="number of nodes (sweep 5,10,20 if omitted)")
    p.add_argument("--topology", choices=topo_mod.KINDS, help="full, line, grid, random, matrix")
    p.add_argument("--hops", type=int, help="network diameter for line/grid/random (default 3)")
    p.add_argument("--loss", type=float, help="per-link packet loss probability, 0..1")
    p.add_argument("--matrix", type=Path, help="loss matrix file for --topology matrix")
    p.add_argument("--rounds", type=int, default=50,
                   help="rounds of the coded link per configuration (default 50)")
    p.add_argument("--flood-rounds", type=int, default=20,
                   help="rounds of the flooding baseline per configuration (default 20, at "
                   "most --rounds): flooding is slow to simulate and its counts vary little")
    p.add_argument("--target-rounds", type=int, default=1000,
                   help="rounds for the 30%%-loss completion target in the sweep (1000; "
                   "99.9%% needs >= 1000 rounds to be shown)")
    p.add_argument("--radio", choices=sorted(PROFILES), default="nrf52840-ext",
                   help="radio/adapter profile (default nrf52840-ext)")
    p.add_argument("--deadline", type=float, default=1.0,
                   help="round deadline in s for the coded link (default 1.0)")
    p.add_argument("--flood-deadline", type=float, default=5.0,
                   help="round deadline in s for flooding (default 5.0, so its transmission "
                   "count is what it needs rather than cut off)")
    p.add_argument("--flood-repeats", type=int, default=3,
                   help="times each flooding node sends each row (default 3, Bluetooth Mesh's "
                   "default network transmit count)")
    p.add_argument("--logit-bytes", type=int, choices=(2, 4), default=4,
                   help="bytes per partial logit: 4 (float32, RockNet) or 2 (int16)")
    p.add_argument("--proc-ms", type=float, help="CPU ms per received advert (model override)")
    p.add_argument("--prep-ms", type=float, help="CPU ms per prepared advert (model override)")
    p.add_argument("--scan-ms", type=float, help="scan phase between bursts (model override)")
    p.add_argument("--scan-jitter-ms", type=float,
                   help="random extra scan time per phase, 0..this (model override)")
    p.add_argument("--auth-ms", type=float, default=0.0,
                   help="extra CPU ms per authentication tag the endpoint computes (checking a "
                   "received advert or signing one); 0 = included in --proc-ms/--prep-ms. "
                   "Models boards without native SHA-256")
    p.add_argument("--board", help="also report what sealing and authenticating one advert "
                   "costs on this board's clock (auth_ms_per_advert; boards/*.toml name)")
    p.add_argument("--aes-cycles-per-block", type=float,
                   help="AES-128 cycles per block on the board (default: the assumption for "
                   "its runtime, printed with the figure)")
    p.add_argument("--start-skew-ms", type=float, default=10.0,
                   help="nodes start a round up to this late (uniform; default 10)")
    p.add_argument("--no-flooding", action="store_true", help="skip the flooding baseline")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes for a sweep (default: up to 2)")
    p.add_argument("--pcap", type=Path, help="write the coded link's air traffic (one config)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


# ----- payload -----


@dataclass(frozen=True)
class Layout:
    """How the FaceAll round maps onto rows: the series in `series_rows` rows (owned by the
    sample owner), then `logit_rows` rows per node, all `row_size` bytes."""

    nodes: int
    row_size: int
    series_rows: int
    logit_rows: int

    @property
    def m(self) -> int:
        return self.series_rows + self.nodes * self.logit_rows

    def owners(self, sample_owner: int = 0) -> list[int]:
        return [sample_owner] * self.series_rows + [
            i for i in range(self.nodes) for _ in range(self.logit_rows)]


def layout_for(model: RadioModel, nodes: int, logit_bytes: int,
               series_bytes: int = SERIES_LENGTH + 1, classes: int = CLASSES) -> Layout:
    """The fewest rows that fit the radio's adverts (then the smallest row size) for a round
    of the owner's series + label and one partial-logit row set per node (default: FaceAll)."""
    sizes = import_device("rocknet.wire_init")  # the advert sizes
    logits = classes * logit_bytes
    best: Layout | None = None
    for rows_series in range(1, 65):
        for rows_logit in range(1, 65):
            lay = Layout(nodes, max(-(-series_bytes // rows_series), -(-logits // rows_logit)),
                         rows_series, rows_logit)
            if lay.m > 64:
                break
            if lay.row_size <= sizes.max_row_size(model.wire_profile, lay.m) and (
                    best is None or (lay.m, lay.row_size) < (best.m, best.row_size)):
                best = lay
    if best is None:
        raise ValueError(
            f"a round of {nodes} nodes does not fit {model.wire_profile} adverts within 64 "
            "rows: use an extended radio profile (--radio nrf52840-ext), fewer nodes or "
            "2-byte partial logits"
        )
    return best


def faceall_generation(lay: Layout, round_no: int, seed: int, logit_bytes: int) -> Generation:
    """Round round_no's rows: the series of sample owner round_no % nodes, then the logits."""
    rng = random.Random(f"faceall/{seed}/{round_no}")
    series = bytes(rng.randrange(256) for _ in range(SERIES_LENGTH + 1))  # int8 series + label
    if logit_bytes == 4:
        logits = [struct.pack(f"<{CLASSES}f", *(rng.uniform(-4, 4) for _ in range(CLASSES)))
                  for _ in range(lay.nodes)]
    else:
        logits = [struct.pack(f"<{CLASSES}h", *(rng.randrange(-32768, 32768)
                                                for _ in range(CLASSES)))
                  for _ in range(lay.nodes)]
    size = lay.row_size
    rows = [series[k * size:(k + 1) * size] for k in range(lay.series_rows)]
    for logit in logits:
        rows += [logit[k * size:(k + 1) * size] for k in range(lay.logit_rows)]
    rows = [r + bytes(size - len(r)) for r in rows]
    return Generation(lay.owners(round_no % lay.nodes), size, rows)


# ----- one configuration -----


class SealCounter:
    """Counts the AES-CCM operations (seal or open, one per advert sent or received) an
    endpoint's codec does (wraps its `ccm.Ccm`)."""

    def __init__(self, ccm: Any) -> None:
        self._ccm = ccm
        self.count = 0

    def seal(self, *args: Any) -> bytes:
        self.count += 1
        return self._ccm.seal(*args)

    def open(self, *args: Any) -> bytes | None:
        self.count += 1
        return self._ccm.open(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ccm, name)


def count_tags(endpoint: Any) -> Any:
    codec = getattr(endpoint, "codec", None)
    if codec is None or not hasattr(codec, "_ccm"):
        raise ValueError("--auth-ms needs an endpoint whose codec seals adverts (rocknet.wire)")
    codec._ccm = SealCounter(codec._ccm)
    return endpoint


def auth_work(auth_ms: float) -> Any:
    """work_ms hook: auth_ms per advert sealed or opened since the node's last endpoint
    call."""
    last: dict[int, tuple[int, int]] = {}

    def work(node: int, endpoint: Any) -> float:
        counter = endpoint.codec._ccm
        seen_id, seen = last.get(node, (0, 0))
        if seen_id != id(counter):  # a rebooted node has a fresh endpoint
            seen = 0
        last[node] = (id(counter), counter.count)
        return (counter.count - seen) * auth_ms

    return work


# ----- what authenticating one advert costs on a board -----

# CPI per board (boards/*.toml [clock]) and the price of one bytecode (calibrated on
# board-costs.md's Python loop) come from the board clock model, `runtimes.board_clock`.
# One call into C with buffer arguments (constructing a cipher, encrypt_into): assumed like
# the fixed cost of ulab's in-place `a += b`, the cheapest buffer call measured (696).
C_CALL_INSTRUCTIONS = 700
# board-costs.md has no AES figure. Cycles per AES-128 block and per key schedule, by the
# board's runtime (override with --aes-cycles-per-block): aesio's instruction counts measured
# (see "why"), cryptolib's assumed.
AES_ASSUMED: dict[str, dict[str, Any]] = {
    "circuitpython": {
        # 4,450 / 1,170 instructions x CPI 1.55 (board-costs.md)
        "cycles_per_block": 6900, "cycles_per_key_schedule": 1810,
        "why": "aesio is CircuitPython's portable C AES (shared-module/aesio/aes.c, tiny-AES-c: "
               "byte-wise S-box and xtime, no T-tables), not the nRF52840's ECB/CCM peripheral. "
               "Measured here on its encrypt path retyped (Cipher, KeyExpansion, CBC and CTR "
               "loops as aes.c has them), compiled by gcc 12 -O2 -mcpu=cortex-m4 -mthumb and "
               "counted in qemu-arm 7.2 (-singlestep): 4,450 instructions a block (an 11-block "
               "CBC call: 48,930), 1,170 a key expansion (each aesio rekey or constructor), CTR "
               "about 6 more a byte; x CPI 1.55 (board-costs.md; not a measured firmware binary, "
               "no flash wait states: +-25 %)"},
    "micropython": {
        "cycles_per_block": 1000, "cycles_per_key_schedule": 800,
        "why": "assumed, not measured: cryptolib runs a table-driven C AES (mbedTLS/axTLS, "
               "~40-60 cycles a byte on a Cortex-M4; the ESP32's mbedTLS uses its AES "
               "accelerator, faster still)"},
}


class _AesMeter:
    """Wraps a `ccm.Ccm`'s port factory (`_compat.aes`): cipher objects built or re-keyed
    (key schedules), calls into C and 16-byte blocks processed."""

    def __init__(self, new: Any) -> None:
        self._new = new
        self.key_schedules = self.calls = self.blocks = 0

    def __call__(self, mode: int, iv: Any = None) -> Any:
        self.key_schedules += 1
        self.calls += 1
        run = self._new(mode, iv)

        def counted(src: Any, dst: Any) -> None:
            self.calls += 1
            self.blocks += -(-len(src) // 16)
            run(src, dst)

        return counted


def _opcodes(fn: Any, files: tuple[str, ...]) -> int:
    """Python opcodes executed by fn() in frames of the given source files (CPython's
    bookkeeping opcodes left out)."""
    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "opcode" and frame.f_code.co_code[frame.f_lasti] not in SKIP_OPCODES:
            count += 1
        return local

    def glob(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename.endswith(files):
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return local
        return None

    prev = sys.gettrace()
    sys.settrace(glob)
    try:
        fn()
    finally:
        sys.settrace(prev)
    return count


def _board_aes_module(runtime: str) -> types.ModuleType:
    """The board's AES module for the measurement, with its API and the state it keeps
    (CircuitPython's ``aesio``, MicroPython's ``cryptolib`` with the modes of the runtime's
    stock firmware: no CTR), computed by the cryptography package (`profiles.host_aes_module`):
    `rocknet._compat` then takes the board's code path."""
    from ..runtimes.profiles import host_aes_module

    if runtime == "circuitpython":
        return host_aes_module("aesio")  # type: ignore[no-any-return]
    return host_aes_module("cryptolib", (1, 2))  # type: ignore[no-any-return]


def auth_cost(board_name: str, m: int, row_size: int, profile_name: str,
              aes_cycles_per_block: float | None = None) -> dict[str, Any]:
    """Board milliseconds to seal (send) and to open (receive: decrypt and check the MIC) one
    advert of M rows of row_size bytes: the AES glue's Python opcodes (counted on CPython
    through the board's AES API, priced like board-costs.md's Python loop) + its calls into C
    + AES blocks and key schedules (assumed, `AES_ASSUMED`), x CPI / MHz."""
    from ..boards import load

    board = load(board_name)
    runtime = "circuitpython" if board.runtime == "circuitpython" else "micropython"
    assumed = dict(AES_ASSUMED[runtime])
    if aes_cycles_per_block is not None:
        assumed.update(cycles_per_block=aes_cycles_per_block,
                       why="given (--aes-cycles-per-block)")
    wire = import_device("rocknet.wire")
    mixer = import_device("rocknet.mixer")
    files = ("rocknet/ccm.py", "rocknet/_compat.py")  # the port glue: its closures
    per_opcode = board_clock.costs().python_per_opcode
    board_mod = _board_aes_module(runtime)
    saved = sys.modules.get(board_mod.__name__)
    sys.modules[board_mod.__name__] = board_mod
    try:
        tx = wire.Codec(KEY, m, row_size, profile_name, boot=1)
        rx = wire.Codec(KEY, m, row_size, profile_name)
    finally:
        if saved is None:
            del sys.modules[board_mod.__name__]
        else:
            sys.modules[board_mod.__name__] = saved
    p = mixer.Packet(7, 1, 0, (1 << m) - 1, 0, bytes(i & 255 for i in range(row_size)), 0)
    rx.unpack(tx.pack(p), 7)  # the first advert formats the codec's buffers, once
    p.seq = 1
    adv = tx.pack(p)
    out: dict[str, Any] = {"board": board.key, "aes_module": board_mod.__name__,
                           "advert_bytes": tx.size, "mic_bytes": tx.mic}
    # only the AES-CCM part is counted (frames of ccm.py and _compat.py), not the header
    for name, codec, call in (("seal", tx, lambda: tx.pack(p)),
                              ("open", rx, lambda: rx.unpack(adv, 7))):
        meter = _AesMeter(codec._ccm._new)
        codec._ccm._new = meter
        opcodes = _opcodes(call, files)
        codec._ccm._new = meter._new
        instr = opcodes * per_opcode + meter.calls * C_CALL_INSTRUCTIONS
        cycles = (instr * board.cpi + meter.blocks * assumed["cycles_per_block"]
                  + meter.key_schedules * assumed["cycles_per_key_schedule"])
        out[name] = {"python_opcodes": opcodes, "c_calls": meter.calls,
                     "aes_blocks": meter.blocks, "key_schedules": meter.key_schedules,
                     "aes_ms": (meter.blocks * assumed["cycles_per_block"] + meter.key_schedules
                                * assumed["cycles_per_key_schedule"]) / (board.cpu_mhz * 1000),
                     "python_ms": opcodes * per_opcode * board.cpi / (board.cpu_mhz * 1000),
                     "c_call_ms": meter.calls * C_CALL_INSTRUCTIONS * board.cpi
                     / (board.cpu_mhz * 1000),
                     "ms": cycles / (board.cpu_mhz * 1000)}
    out["auth_ms_per_advert"] = out["open"]["ms"]
    out["model"] = {"cpu_mhz": board.cpu_mhz, "cpi": board.cpi,
                    "python_instructions_per_opcode": round(per_opcode, 1),
                    "c_call_instructions": C_CALL_INSTRUCTIONS, "aes_assumed": assumed,
                    "measured_here": "opcodes, C calls, AES blocks and key schedules of "
                                     "rocknet.ccm on CPython (the same code paths a board runs "
                                     "when its AES has CBC and CTR modes)"}
    return out


def _model(args: Any) -> RadioModel:
    model = profile(args.radio)
    overrides = {k: v for k, v in (("proc_ms", args.proc_ms), ("prep_ms", args.prep_ms),
                                   ("scan_ms", args.scan_ms),
                                   ("scan_jitter_ms", getattr(args, "scan_jitter_ms", None)))
                 if v is not None}
    return model.with_overrides(**overrides) if overrides else model


def measure(cfg: Config, args: Any) -> dict[str, Any]:
    """Both protocols on one configuration: a flat dict of figures."""
    link_mod = import_device("rocknet.link")
    model = _model(args)
    current = current_model(model.board)
    topology = topo_mod.build(cfg.topology, cfg.nodes, hops=cfg.hops, loss=cfg.loss,
                              seed=args.seed, path=getattr(args, "matrix", None))
    n = topology.n
    lay = layout_for(model, n, args.logit_bytes)
    owners, row_size, m = lay.owners(), lay.row_size, lay.m

    def gen(r: int) -> Generation:
        return faceall_generation(lay, r, args.seed, args.logit_bytes)

    own = [lay.series_rows / n + lay.logit_rows] * n  # the series owner rotates
    deadline_ms = int(args.deadline * 1000)

    auth_ms = getattr(args, "auth_ms", 0.0) or 0.0
    wrap = count_tags if auth_ms > 0 else (lambda ep: ep)
    work = auth_work(auth_ms) if auth_ms > 0 else None

    boots: dict[int, int] = {}

    def link_factory(i: int) -> Any:
        # fixed boot salts keep a run (and its pcap) reproducible; a reboot gets a new one
        boots[i] = boots.get(i, -1) + 1
        return wrap(link_mod.Link(i, KEY, owners, row_size, model.wire_profile,
                                  seed=(args.seed * 7919 + i + 1) & 0xFFFFFFFF,
                                  timeout_ms=deadline_ms, boot=(i + 1) << 8 | boots[i]))

    run = run_rounds(topology, model, link_factory, gen, cfg.rounds, seed=args.seed,
                     deadline_s=args.deadline, start_skew_ms=args.start_skew_ms,
                     current=current, pcap_path=getattr(args, "pcap", None), work_ms=work)
    out: dict[str, Any] = {
        "nodes": n, "topology": cfg.topology, "hops": topology.diameter, "loss": cfg.loss,
        "m_rows": m, "row_size": row_size,
        "advert_bytes": import_device("rocknet.wire_init").packet_size(m, row_size),
        "mean_degree": topology.describe()["mean_degree"],
    }
    out.update(summarise(run, m, own))
    if not args.no_flooding:
        flood_ms = int(args.flood_deadline * 1000)

        def flood_factory(i: int) -> Any:
            return wrap(FloodingEndpoint(i, KEY, owners, row_size, model.wire_profile,
                                         repeats=args.flood_repeats, timeout_ms=flood_ms))

        flood_rounds = max(1, min(cfg.rounds, args.flood_rounds))
        frun = run_rounds(topology, model, flood_factory, gen, flood_rounds, seed=args.seed,
                          deadline_s=args.flood_deadline, start_skew_ms=args.start_skew_ms,
                          current=current, work_ms=auth_work(auth_ms) if auth_ms > 0 else None)
        fsum = summarise(frun, m, own)
        for key in ("rounds", "completion_rate", "mean_round_s", "p95_round_s", "tx_per_node",
                    "rx_per_node", "airtime_ms_per_node", "energy_mj_per_node", "wrong_rows"):
            out[f"flooding_{key}"] = fsum[key]
        out["flooding_tx_over_coded_tx"] = (
            fsum["tx_per_node"] / out["tx_per_node"] if out["tx_per_node"] else None)
    return out


def _measure_star(item: tuple[Config, Any]) -> dict[str, Any]:
    return measure(*item)


# ----- sweep, targets, output -----


def configs(args: Any) -> list[Config]:
    single = any(v is not None for v in (args.nodes, args.topology, args.hops, args.loss))
    if single:
        kind = args.topology or ("line" if args.hops is not None else "full")
        hops = args.hops if args.hops is not None else (None if kind == "full" else 3)
        if kind != "matrix" and args.nodes is None:
            args.nodes = 20
        nodes = args.nodes if args.nodes is not None else 0
        return [Config(nodes, kind, hops, args.loss if args.loss is not None else 0.0,
                       args.rounds)]
    out = []
    for nodes in SWEEP_NODES:
        for kind, hops in SWEEP_TOPOLOGIES:
            for loss in SWEEP_LOSS:
                rounds = args.rounds
                if nodes == 20 and kind == "full" and loss == 0.3:
                    rounds = max(rounds, args.target_rounds)
                out.append(Config(nodes, kind, hops, loss, rounds))
    return out


def targets(results: list[dict[str, Any]], radio: str) -> list[dict[str, Any]]:
    """The issue's three targets, judged on what was measured (None = not measured here)."""
    out = []

    def find(nodes: int, kind: str, loss: float) -> dict[str, Any] | None:
        return next((r for r in results if r["nodes"] == nodes and r["topology"] == kind
                     and abs(r["loss"] - loss) < 1e-9), None)

    ok_radio = radio == "nrf52840-ext"
    r = find(20, "full", 0.1)
    mean = r["mean_round_s"] if r else None
    out.append({
        "target": "mean round <= 0.6 s (N=20, full mesh, 10% loss, nRF52840 extended)",
        "measured": mean, "threshold": TARGET_MEAN_ROUND_S,
        "met": None if mean is None or not ok_radio else mean <= TARGET_MEAN_ROUND_S,
    })
    r = find(20, "full", 0.3)
    rate = r["completion_rate"] if r else None
    enough = r is not None and r["rounds"] >= 1000
    out.append({
        "target": ">= 99.9% of rounds complete within the deadline (N=20, full mesh, 30% loss)",
        "measured": rate, "rounds": r["rounds"] if r else None, "threshold": TARGET_COMPLETION,
        "met": (None if rate is None or not ok_radio else
                (rate >= TARGET_COMPLETION if enough or rate < TARGET_COMPLETION else None)),
        "note": None if enough or r is None else "fewer than 1000 rounds cannot show 99.9%",
    })
    # the issue states its targets for N=20; smaller fleets are in the table
    ratios = [(x["nodes"], x["topology"], x["loss"], x.get("flooding_tx_over_coded_tx"))
              for x in results if x["hops"] == 3 and x["nodes"] == 20
              and x.get("flooding_tx_over_coded_tx")]
    worst = min((q[3] for q in ratios if q[3] is not None), default=None)
    out.append({
        "target": "at 3 hops (N=20), flooding needs >= 2x the transmissions of network coding",
        "measured": worst, "threshold": TARGET_TX_RATIO,
        "configs": [{"nodes": a, "topology": b, "loss": c, "ratio": d} for a, b, c, d in ratios],
        "met": None if worst is None else worst >= TARGET_TX_RATIO,
    })
    return out


def _params(args: Any) -> dict[str, Any]:
    model = _model(args)
    cur = current_model(model.board)
    return {
        "radio": model.as_dict(), "current": cur.as_dict(),
        "payload": {"dataset": "FaceAll", "series_bytes": SERIES_LENGTH + 1,
                    "logit_row_bytes": CLASSES * args.logit_bytes, "rows": "series + 1 per node"},
        "deadline_s": args.deadline, "flood_deadline_s": args.flood_deadline,
        "auth_ms": args.auth_ms,
        "flood_repeats": args.flood_repeats, "start_skew_ms": args.start_skew_ms,
        "seed": args.seed, "loss_applies_to": "each data-carrying PDU at each receiver",
        "tx_counts": "advertising events (one advert on all three primary channels)",
    }


def measure_all(args: Any) -> dict[str, Any]:
    cfgs = configs(args)
    if args.pcap is not None and len(cfgs) > 1:
        from ..errors import UserError

        raise UserError("--pcap writes one configuration: add --nodes/--topology/--loss")
    if len(cfgs) > 1 and args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            # longest first so the pool stays busy
            order = sorted(range(len(cfgs)), key=lambda k: -cfgs[k].nodes * cfgs[k].rounds)
            done = dict(zip(order, pool.map(_measure_star, [(cfgs[k], args) for k in order]),
                            strict=True))
        results = [done[k] for k in range(len(cfgs))]
    else:
        results = [measure(c, args) for c in cfgs]
    out: dict[str, Any] = {"bench": "protocol", "model": _params(args), "configs": results,
           "targets": targets(results, args.radio)}
    if args.board:
        model = _model(args)
        lay = layout_for(model, args.nodes or 20, args.logit_bytes)
        out["auth"] = auth_cost(args.board, lay.m, lay.row_size, model.wire_profile,
                                args.aes_cycles_per_block)
        out["auth_ms_per_advert"] = out["auth"]["auth_ms_per_advert"]
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError

    if args.loss is not None and not 0.0 <= args.loss <= 1.0:
        raise UserError(f"--loss must be a probability between 0 and 1, got {args.loss}")
    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    if args.topology == "matrix" and args.matrix is None:
        raise UserError("--topology matrix needs --matrix FILE (a loss matrix)")
    try:
        result = measure_all(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    _print_table(result)
    return 0


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if console.width < 170:  # the table is wide; let it run past a narrow terminal
        console = Console(width=170)
    table = Table(title="rocknet bench protocol: Mixer link (coded) vs naive flooding, simulated")
    for col in ("N", "topology", "hops", "loss", "M", "rounds", "done", "mean s", "p95 s",
                "tx/node", "rx/node", "rx min", "air ms", "mJ/node", "fl done", "fl mean s",
                "fl tx", "fl mJ", "fl/coded tx"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in result["configs"]:
        table.add_row(
            str(r["nodes"]), r["topology"], str(r["hops"]), f"{r['loss']:.2f}", str(r["m_rows"]),
            str(r["rounds"]), _fmt(r["completion_rate"]), _fmt(r["mean_round_s"]),
            _fmt(r["p95_round_s"]), _fmt(r["tx_per_node"], 1), _fmt(r["rx_per_node"], 1),
            _fmt(r["rx_lower_bound_per_node"], 1), _fmt(r["airtime_ms_per_node"], 1),
            _fmt(r["energy_mj_per_node"], 1), _fmt(r.get("flooding_completion_rate")),
            _fmt(r.get("flooding_mean_round_s")), _fmt(r.get("flooding_tx_per_node"), 1),
            _fmt(r.get("flooding_energy_mj_per_node"), 1),
            _fmt(r.get("flooding_tx_over_coded_tx"), 2),
        )
    console.print(table)
    p = result["model"]
    radio = p["radio"]
    console.print(
        f"model: {radio['name']} ({'extended' if radio['extended'] else 'legacy'} adverts, AUX "
        f"{radio['aux_phy']}M), adv interval {radio['adv_interval_ms']} ms + 0-"
        f"{radio['adv_delay_max_ms']} ms, scan phase {radio['scan_ms']} ms, "
        f"{radio['proc_ms']} ms CPU per received advert, {radio['prep_ms']} ms per sent advert; "
        f"deadline {p['deadline_s']} s (flooding {p['flood_deadline_s']} s, "
        f"{p['flood_repeats']} sends per row); energy {p['current']['source']}"
    )
    for t in result["targets"]:
        met = {True: "[green]met[/]", False: "[red]missed[/]", None: "[yellow]not shown[/]"}
        console.print(f"target: {t['target']}: measured {_fmt(t['measured'])} -> {met[t['met']]}")
    auth = result.get("auth")
    if auth is not None:
        aes = auth["model"]["aes_assumed"]
        console.print(
            f"AES-CCM on {auth['board']} ({auth['aes_module']}), {auth['advert_bytes']}-byte "
            f"advert: open (authenticate + decrypt) {auth['open']['ms']:.2f} ms, seal "
            f"{auth['seal']['ms']:.2f} ms on the board clock ({auth['open']['aes_blocks']} AES "
            f"blocks at {aes['cycles_per_block']:.0f} cycles each: "
            f"{auth['open']['aes_ms']:.2f} ms; {auth['open']['python_opcodes']} Python opcodes: "
            f"{auth['open']['python_ms']:.2f} ms). AES cost: {aes['why']}")
