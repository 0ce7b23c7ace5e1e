"""The host side through the Python API (what the `rocknet` command calls): load a dataset,
fit a plan for a fleet, check every node's device slice bit for bit against the numpy
reference in a device runtime, and write the files the boards train from.

    python examples/host_api.py [OUT_DIR] [cpython|micropython]

(with the host package installed, or `PYTHONPATH=host` in a checkout). Then
`python examples/three_nodes_on_the_air.py OUT_DIR` trains the three nodes over a simulated
air, and `rocknet deploy --plan-dir OUT_DIR --port ...` puts them on boards.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from rocknet_host import data
from rocknet_host.planning import board as board_plan
from rocknet_host.planning import features as plan
from rocknet_host.reference.validate import validate_features
from rocknet_host.runtimes import open_runtime


def main(out: str = "plans", runtime: str = "cpython", nodes: int = 3) -> dict:
    # A small synthetic set (3 classes, series of 64) keeps this quick; any dataset name or
    # UCR path works here: data.load("GunPoint").
    ds = data.synthetic(n_train=30, n_test=15, length=64, n_classes=3, seed=2)
    pl = plan.fit(ds, nodes, n_features=336, seed=0)  # quantizer, dilations, biases, split
    print(f"{ds.name}: {pl.n_features} features over {nodes} nodes "
          f"({min(pl.summary()['features_per_node'])}-"
          f"{max(pl.summary()['features_per_node'])} each)")

    Q = pl.quantizer(np.vstack([ds.X_train[:4], ds.X_test[:4]]))  # int8 series
    with open_runtime(runtime) as rt:
        check = validate_features(pl, Q, runtime, rt)
    print(f"{runtime}: {check['series']} series x {nodes} nodes, features bit-exact: "
          f"{check['features_bitexact']}")

    training = board_plan.Training(epochs=2, batch=8, deadline_ms=500)
    # node_XX.plan (features, head, schedule), fleet.json, node_XX.data (each node's samples)
    too_big = board_plan.write_plans(pl, ds, training, out)
    if too_big is not None:  # a round of this fleet does not fit the adverts
        raise too_big
    key = Path(out) / "fleet.key"
    if not key.exists():
        key.write_bytes(bytes(range(16)))  # `rocknet deploy` makes a random one
    print(f"wrote {nodes} node plans, data files and a fleet key to {out}")
    return {"bitexact": check["features_bitexact"], "files": sorted(
        p.name for p in Path(out).iterdir())}


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "plans", args[1] if len(args) > 1 else "cpython")
