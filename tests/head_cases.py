"""Small fleets for the head tests: a plan, its node plans with head sections, and each
node's PPV counts (from the bit-exact reference of the slice)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from rocknet_host import data
from rocknet_host.planning import features as plan
from rocknet_host.planning import head as head_plan
from rocknet_host.reference import head as rh
from rocknet_host.reference import minirocket as reference


@dataclass
class Case:
    plan: Any
    ds: Any
    counts: list[np.ndarray]  # per node, training series
    counts_test: list[np.ndarray]
    y: np.ndarray

    def sections(self, **opts: Any) -> list[dict[str, Any]]:
        return head_plan.sections(self.plan, self.ds.X_train[:len(self.y)], **opts)

    def node_plans(self, **opts: Any) -> list[dict[str, Any]]:
        return head_plan.node_plans(self.plan, self.sections(**opts))

    def twin(self, secs: list[dict[str, Any]], dtype: Any) -> rh.Twin:
        pl = self.plan
        return rh.Twin([pl.node_features(i) for i in range(pl.n_nodes)], pl.n_classes,
                       secs[0], dtype,
                       scaling=[(np.array(s["mean"]), np.array(s["std"])) for s in secs])

    def codes(self) -> np.ndarray:
        pl = self.plan
        return np.hstack([rh.codes(c, rh.node_layout(pl.node_features(i))[0])
                          for i, c in enumerate(self.counts)])

    def global_weights(self, weights: list[np.ndarray]) -> np.ndarray:
        """Per-node (C, F_i) blocks placed at their global feature indices."""
        pl = self.plan
        W = np.zeros((pl.n_classes, pl.n_features))
        idx = np.concatenate([pl.node_feature_index(i) for i in range(pl.n_nodes)])
        W[:, idx] = np.hstack(weights)
        return W


@cache
def case(name: str, nodes: int, n_features: int, n_train: int | None = None,
         n_test: int = 0, seed: int = 0) -> Case:
    ds = data.load(name)
    pl = plan.fit(ds, nodes, n_features=n_features, seed=seed)
    n = n_train or len(ds.y_train)
    Q = pl.quantizer(ds.X_train[:n])
    counts = [reference.slice_counts(Q, pl.node_features(i)) for i in range(nodes)]
    counts_test = []
    if n_test:
        Qt = pl.quantizer(ds.X_test[:n_test])
        counts_test = [reference.slice_counts(Qt, pl.node_features(i)) for i in range(nodes)]
    return Case(pl, ds, counts, counts_test, ds.y_train[:n])
