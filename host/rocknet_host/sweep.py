"""`rocknet sweep SPEC.toml --out DIR`: a grid of runs on Dask distributed.

A spec names the grid (every list is an axis; the cells are their product) and the options
every cell shares::

    [grid]
    kind = ["simulate"]          # simulate: `simulate.Simulation`; accuracy: the fleet's
                                 # heads summed in memory (`RockNetClassifier`, bench accuracy)
    datasets = ["GunPoint", "ArrowHead"]
    seeds = [0, 1]               # or an int N: seeds 0..N-1
    nodes = [3, 5]
    mode = ["gradient"]
    loss = [0.0]
    topology = ["full"]
    faults = [[]]                # each entry a list like ["crash:2@100", "reboot:1@50"]
    runtime = ["cpython"]        # cpython or micropython (node cores)

    [options]
    epochs = 2
    features = 10000
    reference = true             # aeon MiniRocket + RidgeClassifierCV per cell

Each cell runs through the library (plan.fit + simulate.Simulation, or RockNetClassifier),
never a subprocess, seeded by its seed only, so it gives the same row on any worker. Rows go
to ``DIR/results.parquet`` (one per cell: the cell's parameters, accuracy, reference
accuracy, wall time, simulated time, energy, peak heap, agreement, error) as they arrive. A
re-run computes only the cells missing from that table or recorded with an error; a failing
cell records its error and the sweep goes on.

Where cells run: a `LocalCluster` (``workers`` processes, one thread each) by default, any
running scheduler with ``scheduler="tcp://host:8786"``; SLURM/PBS through dask-jobqueue
(docs/sweep.md).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("simulate", "accuracy")
AXES = ("kind", "datasets", "seeds", "nodes", "mode", "loss", "topology", "faults", "runtime")
# axis name in the spec -> column name of a cell
COLUMN = {"datasets": "dataset", "seeds": "seed"}
DEFAULTS: dict[str, list[Any]] = {"kind": ["simulate"], "mode": ["gradient"], "loss": [0.0],
                                  "topology": ["full"], "faults": [[]],
                                  "runtime": ["cpython"], "nodes": [5], "seeds": [0]}
OPTIONS: dict[str, Any] = {
    "epochs": None, "batch": 8, "features": 10_000, "variant": "minirocket", "bias_examples": 1,
    "hops": None, "radio": "nrf52840-ext", "optimizer": "sgd", "wire": "int16",
    "reference": True, "data_dir": [],
}
RESULTS = "results.parquet"


@dataclass
class Spec:
    cells: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


def load_spec(path: str | Path) -> Spec:
    """Read and check a sweep spec (errors name the key to fix)."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep spec {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML ({exc})") from None
    grid = raw.get("grid", {})
    unknown = set(grid) - set(AXES)
    if unknown:
        raise ValueError(f"{p}: unknown [grid] keys {sorted(unknown)}; axes are {AXES}")
    if "datasets" not in grid:
        raise ValueError(f"{p}: [grid] needs datasets = [\"GunPoint\", ...]")
    opts = dict(OPTIONS)
    bad = set(raw.get("options", {})) - set(OPTIONS)
    if bad:
        raise ValueError(f"{p}: unknown [options] keys {sorted(bad)}; known: {sorted(OPTIONS)}")
    opts.update(raw.get("options", {}))
    axes: dict[str, list[Any]] = {}
    for name in AXES:
        v = grid.get(name, DEFAULTS.get(name))
        if name == "seeds" and isinstance(v, int):
            v = list(range(v))
        if not isinstance(v, list) or not v:
            raise ValueError(f"{p}: [grid] {name} must be a non-empty list")
        axes[name] = v
    for k in axes["kind"]:
        if k not in KINDS:
            raise ValueError(f"{p}: kind {k!r}: choose from {KINDS}")
    for f in axes["faults"]:
        if not isinstance(f, list):
            raise ValueError(f"{p}: each faults entry is a list, e.g. [[], [\"crash:2@100\"]]")
    cells = []
    for combo in itertools.product(*(axes[a] for a in AXES)):
        cell = {COLUMN.get(a, a): v for a, v in zip(AXES, combo, strict=True)}
        cell.update({k: opts[k] for k in ("epochs", "batch", "features", "variant",
                                          "bias_examples", "hops", "radio", "optimizer",
                                          "wire", "reference")})
        cell["data_dir"] = list(opts["data_dir"])
        cell["cell"] = cell_id(cell)
        cells.append(cell)
    return Spec(cells, opts)


def cell_id(cell: dict[str, Any]) -> str:
    """A stable key of a cell's parameters (what makes a row the same cell on a re-run)."""
    keys = [COLUMN.get(a, a) for a in AXES] + ["epochs", "batch", "features", "variant",
                                               "bias_examples", "hops", "radio", "optimizer",
                                               "wire"]
    return json.dumps({k: cell.get(k) for k in keys}, sort_keys=True)


@dataclass
class Row:
    accuracy: float | None = None
    reference_accuracy: float | None = None
    wall_s: float | None = None
    sim_time_s: float | None = None
    energy_j: float | None = None
    peak_heap_bytes: int | None = None
    agreement: bool | None = None
    predicted: int | None = None
    error: str | None = None


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """One cell, on whatever worker: never raises (an error is recorded in the row)."""
    t0 = time.perf_counter()
    try:
        row = _simulate_cell(cell) if cell["kind"] == "simulate" else _accuracy_cell(cell)
    except Exception as exc:  # a failed cell must not stop the sweep
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        row = Row(error=tb)
    row.wall_s = time.perf_counter() - t0
    out = {k: v for k, v in cell.items() if k != "data_dir"}
    out["faults"] = json.dumps(cell["faults"])
    out.update(asdict(row))
    return out


def _simulate_cell(cell: dict[str, Any]) -> Row:
    from . import data
    from .estimator import parse_fault
    from .planning import features as plan
    from .reference.baseline import reference_accuracy
    from .sim import simulate

    ds = data.load(cell["dataset"], cell["data_dir"])
    pl = plan.fit(ds, int(cell["nodes"]), variant=cell["variant"],
                  n_features=int(cell["features"]), bias_examples=int(cell["bias_examples"]),
                  seed=int(cell["seed"]))
    cfg = simulate.Config(mode=cell["mode"], batch=int(cell["batch"]),
                          topology=cell["topology"], hops=cell["hops"],
                          loss=float(cell["loss"]), radio=cell["radio"],
                          events=[parse_fault(f) for f in cell["faults"]],
                          seed=int(cell["seed"]), runtime=cell["runtime"], wire=cell["wire"])
    if cell["epochs"] is not None:
        cfg.epochs = int(cell["epochs"])
    res = simulate.Simulation(pl, ds, cfg).run()
    heaps = [p.get("peak_heap_board_bytes") for p in res["per_node"]]
    heaps = [h for h in heaps if h is not None]
    return Row(accuracy=float(res["accuracy"]),
               reference_accuracy=(reference_accuracy(ds, int(cell["seed"]))
                                   if cell["reference"] else None),
               sim_time_s=float(res["sim_time_s"]),
               energy_j=float(sum(p["energy_j"] for p in res["per_node"])),
               peak_heap_bytes=int(max(heaps)) if heaps else None,
               agreement=bool(res["consistent"]), predicted=int(res["predicted"]))


def _accuracy_cell(cell: dict[str, Any]) -> Row:
    from . import data
    from .estimator import RockNetClassifier
    from .reference.baseline import reference_accuracy

    if cell["loss"] or cell["faults"] or cell["topology"] != "full":
        raise ValueError("kind 'accuracy' sums the heads in memory: loss, faults and "
                         "topology need kind 'simulate'")
    ds = data.load(cell["dataset"], cell["data_dir"])
    est = RockNetClassifier(n_nodes=int(cell["nodes"]), features=int(cell["features"]),
                            variant=cell["variant"], bias_examples=int(cell["bias_examples"]),
                            mode=cell["mode"], optimizer=cell["optimizer"],
                            epochs=cell["epochs"], batch=int(cell["batch"]),
                            wire=cell["wire"], runtime=cell["runtime"],
                            random_state=int(cell["seed"]))
    est.fit(ds.X_train, ds.y_train, ds.X_test, ds.y_test)
    return Row(accuracy=float(est.fleet_result_["accuracy"]),
               reference_accuracy=(reference_accuracy(ds, int(cell["seed"]), int(cell["features"]))
                                   if cell["reference"] else None),
               predicted=int(len(ds.y_test)))


# ----- the table -----


def read_results(out: Path) -> list[dict[str, Any]]:
    path = out / RESULTS
    if not path.exists():
        return []
    import pandas as pd

    df = pd.read_parquet(path)
    rows: list[dict[str, Any]] = df.astype(object).where(df.notna(), None).to_dict("records")
    return rows


def write_results(out: Path, rows: list[dict[str, Any]]) -> Path:
    """The tidy table, written atomically (a crash mid-write keeps the previous one)."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    tmp = path.with_suffix(".parquet.tmp")
    df = pd.DataFrame(rows)
    for col in ("accuracy", "reference_accuracy", "wall_s", "sim_time_s", "energy_j", "loss"):
        if col in df:
            df[col] = df[col].astype("float64")
    for col in ("peak_heap_bytes", "predicted", "epochs", "hops"):
        if col in df:
            df[col] = df[col].astype("Int64")
    if "agreement" in df:
        df["agreement"] = df["agreement"].astype("boolean")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


# ----- the run -----


@dataclass
class Outcome:
    cells: int
    computed: int
    failed: int
    skipped: int
    wall_s: float
    workers: int | None
    scheduler: str
    out: str


def run(spec: Spec, out: str | Path, scheduler: str | None = None, workers: int | None = None,
        on_done: Callable[[dict[str, Any], int, int], None] | None = None) -> Outcome:
    """Compute the cells missing from (or failed in) ``out/results.parquet`` on Dask."""
    from dask.distributed import Client, LocalCluster, as_completed

    out = Path(out)
    previous = read_results(out)
    done = {r["cell"]: r for r in previous if r.get("error") is None}
    todo = [c for c in spec.cells if c["cell"] not in done]
    wanted = {c["cell"] for c in spec.cells}
    rows = {k: v for k, v in done.items()}
    # keep rows of other cells (an earlier, wider spec) as they were
    kept = [r for r in previous if r["cell"] not in wanted and r.get("error") is None]
    t0 = time.perf_counter()
    failed = 0
    cluster: Any = None
    n_workers: int | None = None
    if todo:
        if scheduler:
            client = Client(scheduler)
        else:
            import os

            n_workers = workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
            client = Client(cluster)
        try:
            futures = [client.submit(run_cell, c, key=f"cell-{i}-{abs(hash(c['cell']))}",
                                     pure=False) for i, c in enumerate(todo)]
            for k, fut in enumerate(as_completed(futures), 1):
                row = fut.result()
                rows[row["cell"]] = row
                failed += row["error"] is not None
                write_results(out, kept + [rows[c["cell"]] for c in spec.cells
                                           if c["cell"] in rows])
                if on_done is not None:
                    on_done(row, k, len(todo))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif not (out / RESULTS).exists():
        write_results(out, [])
    return Outcome(cells=len(spec.cells), computed=len(todo), failed=failed,
                   skipped=len(spec.cells) - len(todo), wall_s=time.perf_counter() - t0,
                   workers=n_workers, scheduler=scheduler or "LocalCluster",
                   out=str(out / RESULTS))
