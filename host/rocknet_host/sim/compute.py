"""What a board's compute costs on its own clock, priced per device call.

A simulated board runs the real device code on the host, so its compute takes no simulated
time by itself. The virtual board (`sim.vboard.meter`) counts the calls that do the work:

- ``series``: one sample's series through the node's slice (`Slice.transform`, the head's
  codes and partial logits), for every sample, training or prediction (`Node._take_series`);
- ``apply``: one agreed sample's logits summed and applied to the head (`Head.apply`; on a
  node whose plan keeps series, ``run.keep``, its series through the slice again first), and
  its entry (the summed rows) chained into the node's consistency digest (`ccm.Chain`: one
  CBC call into the port's AES, counted as AES);
- ``step``: one optimizer step (once per batch);
- ``rx`` / ``tx``: one advert opened and decoded by the Link / one coded advert built and
  sealed.

`call_costs` prices one call of each kind with the board clock model (`board_clock`: the
device code's ulab calls and bytecode counted on the host, priced with the board's measured
costs; AES blocks at the model's stated assumption). Each call moves the board's clock on by
its cost, and the fleet holds the board busy that long before its next radio command: a
single-core nRF52840 neither starts an advert nor a scan while Python computes. The costs do
not depend on the values (the same ulab calls and bytecode run for every series), so one call
of each stands for all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..runtimes import board_clock as bc
from ..runtimes import import_device

KINDS = ("series", "apply", "step", "rx", "tx")


class _Quiet:
    """The radio adapter a Runner is built with while its calls are priced (never used)."""

    def __init__(self, link: Any) -> None:
        self.link = link

    def now_ms(self) -> int:
        return 0

    def step(self) -> None:
        raise RuntimeError("the pricing board has no radio")


def call_costs(paths: dict[str, str], board: str) -> dict[str, float]:
    """Board microseconds of one call of each of `KINDS` for the board whose files (plan, key,
    data) are ``paths``, on ``board``'s clock (`boards/*.toml` ``[clock]``)."""
    clock = bc.BoardClock.for_board(board)
    board_mod = import_device("rocknet.board")
    link_mod = import_device("rocknet.link")
    work: dict[str, bc.Work] = {}
    with bc.instrument() as meter:
        plan, _, key, samples = board_mod.load(paths["plan"], paths["key"], paths["data"])
        runner = board_mod.Runner(plan, key, samples, radio=_Quiet, checkpoint=None,
                                  result=None, out=lambda _line: None, every=0)
        node, head, link = runner.node, runner.node.head, runner.link
        run = plan["run"]
        other = link_mod.Link((node.id + 1) % max(2, node.n), key, node.geo.owners(),
                              run["row_size"], run.get("profile", "extended"),
                              timeout_ms=10 ** 9)
        series = bytes(node.slice.length)
        counts = node._counts

        def one_series() -> Any:
            node.slice.transform(series, counts)
            codes = head.codes(counts)
            head.partial_logits(counts)
            return codes

        codes, work["series"] = meter.call(one_series)
        summed = bytes(node.logit_bytes * node.c * node.n)

        entry = bytes(4 + node.geo.nb) + summed  # label, phase, epoch, members, the rows

        def one_apply() -> None:
            z = node.sum_logits(summed)
            za = np.array(z, dtype=np.float32).view(bc.Tracked)
            if node.keep == "series":  # the kept series transformed again (`Node._use`)
                node.slice.transform(memoryview(series), counts)
                head.apply(za, 0, counts=counts)
            else:
                head.apply(za, 0, codes=codes)
            node._record(b"A", 0, entry)

        _, work["apply"] = meter.call(one_apply)
        for _ in range(max(0, getattr(head, "batch", 1) - 2)):
            one_apply()  # a full batch, as the fleet steps (the step's work does not
        _, work["step"] = meter.call(head.step)  # depend on the values)
        work["rx"], work["tx"] = _advert_work(meter, link, other, node.geo.m)
    return {k: 1000.0 * clock.ms(w) for k, w in work.items()}


def _advert_work(meter: bc.Meter, link: Any, other: Any, m: int) -> tuple[bc.Work, bc.Work]:
    """Mean work of one advert received and one sent over a whole round: ``other``, holding
    every row, floods the round to ``link`` until it decodes."""
    rows = {k: bytes((k * 7 + j) & 0xFF for j in range(link.row_size)) for k in range(m)}
    other.start_round(1, rows, 0)
    link.start_round(1, None, 0)
    rx, tx = bc.Work(), bc.Work()
    n_rx = n_tx = 0
    for t in range(1, 4 * m + 8):
        data = other.next_advert(t)
        if data is not None:
            _, w = meter.call(link.on_advert, data, t)
            rx += w
            n_rx += 1
        out, w = meter.call(link.next_advert, t)
        if out is not None:
            tx += w
            n_tx += 1
        if link.done:
            break
    return rx.scaled(1.0 / max(1, n_rx)), tx.scaled(1.0 / max(1, n_tx))


def sample_ms(costs: dict[str, float], batch: int) -> float:
    """Board ms one training sample costs a node: its series, its update, its share of a
    step."""
    return (costs["series"] + costs["apply"] + costs["step"] / max(1, batch)) / 1000.0
