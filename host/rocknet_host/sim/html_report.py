"""`rocknet simulate --report FILE.html`: one self-contained HTML page of a simulate result (the
dict `simulate.Simulation.run` returns): the summary table, accuracy over simulated time,
per-node memory and energy, and round times. Figures are matplotlib (Agg) PNGs embedded as
base64 data URIs: no scripts, no network, one file to mail around.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from .report import percentile

CSS = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; }
"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(rows: Sequence[Sequence[object]], header: tuple[str, ...] | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def node_state(p: dict[str, Any]) -> str:
    """One per_node entry's end state: failed, crashed, removed (alive but cut off),
    rejoined, up."""
    if p.get("error"):
        return "failed"
    if not p["alive"]:
        return "crashed"
    if not p["member"]:
        return "removed"
    return "rejoined" if p["reboots"] else "up"


def heap_measured(res: dict[str, Any]) -> bool:
    return any(p.get("peak_heap_bytes") is not None for p in res["per_node"])


def summary_rows(res: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (label, value) rows (the CLI's table, as text)."""
    ref = res.get("reference_accuracy")
    rows = [
        ("test accuracy (fleet, over the air)",
         f"{res['accuracy']:.3f} ({res['predicted']}/{res['n_test']} predicted)"),
        ("reference (aeon MiniRocket + RidgeCV)", "-" if ref is None else f"{ref:.3f}"),
        ("simulated time", f"{res['sim_time_s']:.1f} s (mean round "
                           f"{1000 * res['mean_round_s']:.0f} ms)"),
        ("board compute", compute_text(res)),
        ("rounds", f"{res['rounds']} ({res['rounds_complete']} fully decoded before their "
                   "deadline)"),
        ("samples committed / dropped", f"{res['committed']} / {res['dropped']}"
         + (" (" + ", ".join(f"{k} {v}" for k, v in res["drop_reasons"].items()) + ")"
            if res.get("drop_reasons") else "")),
        ("crashed nodes", ", ".join(map(str, res["crashed"])) or "none"),
        ("members at the end", ", ".join(map(str, res["members"])) or "none"),
        ("all live nodes agree", "yes" if res["consistent"] else "NO"),
        ("stalled", f"YES: {res['stall_reason']}" if res.get("stalled") else "no"),
    ]
    if res.get("flagged"):
        rows.append(("flagged (non-finite partial logits)",
                     ", ".join(map(str, res["flagged"]))))
    rejoined = [p for p in res["per_node"] if p.get("reboots")]
    for p in rejoined:
        back = p.get("rejoined_round")
        rows.append((f"node {p['node']} rebooted {p['reboots']}x",
                     f"rejoined in round {back}" if back is not None else "never rejoined"))
    if heap_measured(res):
        rows.append(("peak heap per node (max)", heap_text(res)))
    rows.append(("wall-clock", f"{res['wall_s']:.1f} s (boards' programs in {res['runtime']})"))
    return rows


def compute_text(res: dict[str, Any]) -> str:
    """Which clock the boards' compute ran on, and what a call cost there."""
    c = res.get("compute") or {}
    ms = c.get("ms_per_call")
    if not ms:
        return str(c.get("clock", "not charged"))
    busy = [p.get("compute_s") or 0.0 for p in res["per_node"]]
    return (f"{c['clock']}: {ms['series']:.0f} ms a sample's series, {ms['apply']:.0f} ms "
            f"an update, {ms['step']:.0f} ms a step, {ms['rx']:.1f} / {ms['tx']:.1f} ms an "
            f"advert in / out; busy {max(busy):.0f} s per node (max)")


def heap_text(res: dict[str, Any]) -> str:
    """Max peak heap over nodes: measured (float64 build) and board-equivalent (float32)."""
    heaps = [p["peak_heap_bytes"] for p in res["per_node"] if p.get("peak_heap_bytes")]
    boards = [p.get("peak_heap_board_bytes") or 0 for p in res["per_node"]]
    txt = (f"{max(heaps) / 1024:.1f} KB in MicroPython (WebAssembly: float64 floats); "
           f"{max(boards) / 1024:.1f} KB on a float32 board")
    above = [(p.get("peak_heap_board_bytes") or 0) - p["base_bytes"] for p in res["per_node"]
             if p.get("base_bytes") is not None]
    if above:  # what a heap budget counts: the interpreter's own baseline is not rocknet's
        txt += (f", {max(above) / 1024:.1f} KB of it above the interpreter's baseline "
                "before rocknet (what the budget counts)")
    return txt


def figures(res: dict[str, Any]) -> dict[str, str]:
    """name -> base64 PNG: accuracy, memory (when measured), energy, rounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    nodes = [p["node"] for p in res["per_node"]]

    timed = [(t, a) for _, t, a in res.get("accuracy_by_sim_time", []) if a is not None]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if timed:
        ax.plot([t for t, _ in timed], [a for _, a in timed], "o-",
                label="fleet estimate after each epoch")
        ax.axvspan(timed[-1][0], res["sim_time_s"], color="C2", alpha=0.08,
                   label="predict phase (test series over the air)")
    ax.plot([res["sim_time_s"]], [res["accuracy"]], "s", color="C2",
            label=f"final: the fleet's predictions over the air ({res['accuracy']:.3f})")
    if res.get("reference_accuracy") is not None:
        ax.axhline(res["reference_accuracy"], color="C3", ls=":",
                   label=f"aeon MiniRocket + RidgeCV ({res['reference_accuracy']:.3f})")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{res['dataset']}: accuracy over simulated time")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    out["accuracy"] = _png(fig)

    if heap_measured(res):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        w = 0.4
        ax.bar([i - w / 2 for i in nodes],
               [(p["peak_heap_bytes"] or 0) / 1024 for p in res["per_node"]], w,
               label="measured (WebAssembly MicroPython, float64)")
        ax.bar([i + w / 2 for i in nodes],
               [(p.get("peak_heap_board_bytes") or 0) / 1024 for p in res["per_node"]], w,
               label="head floats as float32 (boards)")
        ax.set_xlabel("node")
        ax.set_ylabel("peak heap (KB)")
        ax.set_title("peak MicroPython heap per node")
        ax.set_xticks(nodes)
        top = max((p["peak_heap_bytes"] or 0) for p in res["per_node"]) / 1024
        ax.set_ylim(0, 1.35 * top)
        ax.legend(fontsize=8, loc="upper right")
        out["memory"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(nodes, [p["energy_j"] for p in res["per_node"]],
           color=["C0" if p["alive"] else "C7" for p in res["per_node"]])
    ax.set_xlabel("node (grey: crashed)")
    ax.set_ylabel("energy (J)")
    ax.set_title("energy per node over the run")
    ax.set_xticks(nodes)
    out["energy"] = _png(fig)

    times = [1000 * t for t in res.get("round_elapsed_s", [])]
    if times:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
        a1.plot(range(len(times)), times, lw=0.6)
        for k, (node, rnd, action) in enumerate(res.get("events", [])):
            a1.axvline(rnd, color="C3" if action == "crash" else "C2", ls=":", lw=1,
                       label=f"{action} {node}" if k < 6 else None)
        if res.get("events"):
            a1.legend(fontsize=7)
        a1.set_xlabel("round")
        a1.set_ylabel("round time (ms)")
        a1.set_title("round times")
        a2.hist(times, bins=40)
        a2.axvline(res["deadline_s"] * 1000, color="C3", ls=":", label="deadline")
        a2.set_xlabel("round time (ms)")
        a2.set_ylabel("rounds")
        a2.legend(fontsize=8)
        out["rounds"] = _png(fig)
    return out


def render(res: dict[str, Any]) -> str:
    """The whole page as a string."""
    figs = figures(res)
    title = f"rocknet simulate: {res['dataset']}, {res['nodes']} nodes"
    cfg = (f"{res['mode']} head, {res['epochs']} epochs, {res['features']} features, "
           f"{res['topology'].get('topology', '')} topology, loss {res['loss']:g}, "
           f"radio {res['radio']}, node cores in {res['runtime']}")
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(cfg)}</p>",
             "<h2>Summary</h2>", _table(summary_rows(res))]
    parts += ["<h2>Accuracy over simulated time</h2>", _img(figs["accuracy"], "accuracy"),
              "<p class='note'>Between epochs the host estimates test accuracy from the live "
              "members' head blocks; the final figure is the fleet's own prediction of the "
              "test set over the air.</p>"]
    parts.append("<h2>Memory per node</h2>")
    if "memory" in figs:
        parts += [_img(figs["memory"], "memory"),
                  "<p class='note'>gc.mem_alloc() after a collection, minus the interpreter "
                  "with the device modules imported: the node's plan, data, Slice, Head, Node "
                  "and Link, sampled at round boundaries. MicroPython's WebAssembly build has "
                  "float64 floats; boards have float32, so the board figure counts the head's "
                  "float arrays at 4 bytes an element.</p>"]
    else:
        parts.append("<p class='note'>Not measured: node cores ran in CPython. Run with "
                     "<code>--runtime micropython</code> for peak MicroPython heap per "
                     "node.</p>")
    parts += ["<h2>Energy per node</h2>", _img(figs["energy"], "energy"),
              f"<p class='note'>Energy model: {html.escape(str(res['energy_model']))}.</p>"]
    if "rounds" in figs:
        t = res["round_elapsed_s"]
        p50, p95 = percentile(t, 0.5), percentile(t, 0.95)
        parts += ["<h2>Round times</h2>", _img(figs["rounds"], "round times"),
                  f"<p class='note'>{len(t)} rounds; median {1000 * (p50 or 0):.0f} ms, "
                  f"95th percentile {1000 * (p95 or 0):.0f} ms, max {1000 * max(t):.0f} ms; "
                  f"deadline {1000 * res['deadline_s']:.0f} ms.</p>"]
    rows = []
    for p in res["per_node"]:
        heap = p.get("peak_heap_bytes")
        rows.append((p["node"], node_state(p),
                     f"{p['airtime_s']:.2f}", f"{p['energy_j']:.2f}", p["tx_adverts"],
                     p["commits"], p["drops"],
                     "-" if heap is None else f"{heap / 1024:.1f}",
                     "-" if heap is None else f"{p['peak_heap_board_bytes'] / 1024:.1f}"))
    parts += ["<h2>Per node</h2>",
              _table(rows, ("node", "state", "airtime s", "energy J", "adverts tx", "commit",
                            "drop", "peak heap KB (float64)", "board KB (float32)")),
              "</body></html>"]
    return "\n".join(parts)


def write(res: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(res))
