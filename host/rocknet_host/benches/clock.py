"""`rocknet bench clock`: the board clock model (`rocknet_host.runtimes.board_clock`) against the
end-to-end instruction counts of rocknet's own calls in ``../shared/notes/board-costs.md``,
which the model was not fitted on.

The calls run for real on CPython under `board_clock.instrument`, on the figures' set-up:
a FaceAll ``--nodes 20`` plan (node 0: its slice, head and node, the board plan's head and
radio sections) and a 20-node round of the board plan's geometry with 10 % loss per link (the
on_advert figure is the mean over every packet node 0 decodes until it is at full rank; the
encode figure the mean over node 0's coded packets after it reached full rank). The notes'
on_advert and encode figures were measured on an older wire (HMAC-SHA256 tags); the code
counted here seals adverts with AES-CCM (AES calls and blocks counted, AES cycles assumed),
and the notes' tag figures have no counterpart any more. Each row: model instructions,
measured instructions, model / measured, and the model's milliseconds on ``--board``.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
from typing import Any

import numpy as np

from .. import data
from ..planning import features as plan
from ..runtimes import board_clock as bc
from ..runtimes import import_device

KEY = b"rocknet board clock key"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clock", help="board clock model vs the emulated board's instruction counts",
        description="Predicts the board instructions of rocknet's own device calls (FaceAll "
        "N=20 node 0) with the board clock model and compares them with the figures measured "
        "on an emulated Cortex-M4F (../shared/notes/board-costs.md), which it was not fitted "
        "on.")
    p.add_argument("--dataset", default="FaceAll")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--board", default="adafruit_feather_nrf52840")
    p.add_argument("--loss", type=float, default=0.1, help="per-link loss of the round (0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ds = data.load(args.dataset, args.data_dir)
    result = validate(ds, args.nodes, args.board, args.loss, args.seed)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"board clock model vs emulated board: {result['dataset']} N="
                    f"{result['nodes']} node 0, {args.board}")
    for col in ("call", "model instr.", "measured instr.", "model / measured", "board ms"):
        t.add_column(col, justify="right")
    for r in result["calls"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        meas = f"{r['measured']:,}" if r["measured"] is not None else "-"
        t.add_row(r["call"], f"{r['model']:,.0f}", meas, ratio, f"{r['board_ms']:.2f}")
    Console().print(t)
    return 0


def node_plan(ds: data.Dataset, nodes: int, node: int = 0) -> tuple[Any, dict[str, Any]]:
    """The fleet plan and node ``node``'s board plan (head, schedule, run sections), with
    float32 partial logits: the notes' ``sum_logits`` figure summed float32 rows."""
    from ..planning.board import Training, node_plans

    pl = plan.fit(ds, nodes)
    return pl, node_plans(pl, ds, Training(wire="float32"))[node]


def _calls(ds: data.Dataset, nodes: int, loss: float, seed: int) -> dict[str, bc.Work]:
    """Work of each validated call (and of the transform, reported beside them)."""
    pl, p0 = node_plan(ds, nodes)
    Q = pl.quantizer(ds.X_train)
    out: dict[str, bc.Work] = {}
    with bc.instrument("native") as meter:
        minirocket = import_device("rocknet.minirocket")
        head_mod = import_device("rocknet.head")
        node_mod = import_device("rocknet.node")
        s = minirocket.Slice(p0["features"])
        h = head_mod.Head(p0)
        counts = bc.Meter.array(np.zeros(s.n_features, dtype=np.uint16))
        _, out["Slice.transform (not in the figures)"] = meter.call(
            s.transform, Q[0].astype(np.int8).tobytes(), counts)
        _, out["Head.codes"] = meter.call(h.codes, counts)
        _, out["Head.partial_logits"] = meter.call(h.partial_logits, counts)
        rng = np.random.default_rng(seed)
        z = bc.Meter.array(rng.normal(size=pl.n_classes))
        _, out["Head.apply"] = meter.call(h.apply, z, int(ds.y_train[0]))
        for i in range(1, h.batch):
            s.transform(Q[i].astype(np.int8).tobytes(), counts)
            h.partial_logits(counts)
            h.apply(z, int(ds.y_train[i]))
        _, out["Head.step (batch of 8)"] = meter.call(h.step)
        run = p0["run"]
        node = node_mod.Node(0, nodes, None, h, pl.n_classes, run["row_size"],
                             node_mod.Schedule.from_dict(p0["schedule"]), slice_=s)
        summed = b"".join(struct.pack(f"<{pl.n_classes}f", *rng.normal(size=pl.n_classes))
                          for _ in range(nodes))
        _, out["Node.sum_logits (20 rows)"] = meter.call(node.sum_logits, summed)
        # the plans' default rows, int16 codes: no figure in the notes
        node16 = node_mod.Node(0, nodes, None, h, pl.n_classes, run["row_size"],
                               node_mod.Schedule.from_dict(p0["schedule"]), slice_=s,
                               logit_scale=p0["head"]["logit_scale"])
        codes = rng.integers(-32767, 32768, size=(nodes, pl.n_classes))
        _, out["Node.sum_logits, int16 rows (not in the figures)"] = meter.call(
            node16.sum_logits, struct.pack(f"<{nodes * pl.n_classes}h", *codes.ravel()))
        geo = node.geo
        rx, tx = _round(meter, geo, run, nodes, loss, seed)
        out["Link.on_advert (mean, 10 % loss round)"] = rx
        out["encode one coded packet (next_packet + pack)"] = tx
    return out


def _mean(works: list[bc.Work]) -> bc.Work:
    total = bc.Work()
    for w in works:
        total += w
    return total.scaled(1.0 / max(1, len(works)))


def _round(meter: bc.Meter, geo: Any, run: dict[str, Any], nodes: int, loss: float,
           seed: int) -> tuple[bc.Work, bc.Work]:
    """One round of the board plan's geometry among ``nodes`` links, full mesh, ``loss``
    per link, in turns: node 0's on_advert calls until full rank, and its coded packets after
    (each counted)."""
    link_mod = import_device("rocknet.link")
    rng = random.Random(f"clock/{seed}")
    owners = geo.owners(0)
    links = [link_mod.Link(i, KEY, owners, run["row_size"], run["profile"], seed=i + 1,
                           boot=i + 1) for i in range(nodes)]
    for i, link in enumerate(links):
        first = geo.ctrl_index(i)
        own = {first + k: bytes(rng.randrange(256) for _ in range(run["row_size"]))
               for k in range(geo.ctrl_rows)}
        if i == 0:
            own.update({k: bytes(rng.randrange(256) for _ in range(run["row_size"]))
                        for k in range(geo.series_rows)})
        link.start_round(1, own, 0)
    rx: list[bc.Work] = []
    tx: list[bc.Work] = []
    now = 0
    for _ in range(200 * nodes):
        if all(link.done for link in links):
            break
        for i, link in enumerate(links):
            now += 1
            if i == 0 and link.done:
                with meter.count() as w:
                    adv = link.next_advert(now)
                if adv is not None:
                    tx.append(w)
            else:
                adv = link.next_advert(now)
            if adv is None:
                continue
            for j, other in enumerate(links):
                if j == i or rng.random() < loss:
                    continue
                if j == 0 and not other.done:
                    with meter.count() as w:
                        other.on_advert(adv, now)
                    rx.append(w)
                else:
                    other.on_advert(adv, now)
    if not rx or not tx:
        raise RuntimeError("the round ended before node 0 decoded or coded a packet")
    return _mean(rx), _mean(tx)


def validate(ds: data.Dataset, nodes: int = 20, board: str = "adafruit_feather_nrf52840",
             loss: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Model vs measured instructions per call (measured: None where the notes have none)."""
    clock = bc.BoardClock.for_board(board)
    rows = []
    for name, work in _calls(ds, nodes, loss, seed).items():
        model = clock.instructions(work)
        measured = bc.VALIDATION.get(name)
        parts = clock.breakdown(work)
        rows.append({"call": name, "model": round(model), "measured": measured,
                     "ratio": model / measured if measured else None,
                     "board_ms": clock.ms(work), "ulab_calls": work.ulab_calls,
                     "opcodes": work.opcodes, "sha256_blocks": work.sha256_blocks,
                     "aes_blocks": work.aes_blocks, "aes_calls": work.aes_calls,
                     "parts": {k: round(v) for k, v in parts.items() if v},
                     "unmodelled_numpy": dict(work.other)})
    return {"bench": "clock", "dataset": ds.name, "nodes": nodes, "node": 0,
            "loss": loss, "clock": clock.as_dict(), "calls": rows,
            "measured_from": "../shared/notes/board-costs.md (QEMU mps2-an386 Cortex-M4F, "
                             "MicroPython 1.29 + ulab 6.12, float32; instructions per call)"}
