"""`RockNetClassifier`: a scikit-learn (and aeon-shaped) estimator that trains exactly what a
fleet trains.

``fit`` fits the plan (`plan.fit`, as ``rocknet plan`` / ``rocknet simulate`` do: variant,
features, int8 quantization, the split of the (dilation, kernel) combinations over
``n_nodes``), then the head:

- ``fleet="memory"`` (default): the N device heads (`rocknet.head`, in CPython or in
  MicroPython 1.29 + ulab with ``runtime="micropython"``) trained on their own slices with the
  partial logits summed in memory: `head_plan.sections` + `train.train`, the path of
  ``rocknet bench accuracy`` (mode, optimizer, passes, wire format; ridge solves in dual where
  the ``board``'s heap allows);
- ``fleet="simulate"``: the whole fleet learning over the simulated BLE medium
  (`simulate.Simulation`, what ``rocknet simulate`` runs) with ``loss``, ``topology``,
  ``hops``, ``radio`` and ``faults``; the same seed gives the same heads as the command.

``predict`` sums the trained heads' partial logits through the wire format in node order
(`LogitSum`, what the boards do over the air); after a simulated run only the nodes still in
the fleet count, as on the boards. ``predict_proba`` is the softmax of those logits (gradient
mode; ridge has no probabilities). Input: ``(n_series, length)`` or aeon's
``(n_series, 1, length)``; series shorter than 9 are zero-padded to 9 (MiniRocket's kernel
length). ``to_plans(dir)`` writes what ``rocknet plan --out DIR`` writes (node plans with the
estimator's head sections, node data files, fleet.json) plus each trained head as a head
checkpoint (``node_XX.head.a/.b``, `rocknet.checkpoint` with the head's payload).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .data import Dataset
from .planning import features as plan
from .planning import head as head_plan
from .reference import minirocket as reference
from .runtimes import import_device
from .sim import in_memory as train
from .sim.fleet import ACTIONS, Event

FLEETS = ("memory", "simulate")
MIN_LENGTH = 9
FAULT_ACTIONS = ACTIONS


def parse_fault(spec: str | Sequence[Any]) -> Event:
    """``"crash:2@100"`` (node 2 crashes at round 100), ``"reboot:1@50"``,
    ``"nan-logits:3@80"``, or a tuple
    ``(action, node, round)``."""
    try:
        if isinstance(spec, str):
            action, _, rest = spec.partition(":")
            node, sep, rnd = rest.partition("@")
            if not sep:
                raise ValueError
            ev = Event(int(rnd), int(node), action.strip())
        else:
            action, node, rnd = tuple(spec)
            ev = Event(int(rnd), int(node), str(action))
    except (TypeError, ValueError):
        raise ValueError(f"fault {spec!r}: expected 'crash:NODE@ROUND' or "
                         "'reboot:NODE@ROUND', e.g. 'crash:2@100'") from None
    if ev.action not in FAULT_ACTIONS or ev.node < 0 or ev.round_no < 0:
        raise ValueError(f"fault {spec!r}: action one of {FAULT_ACTIONS}, node and round >= 0")
    return ev


def as_series(X: Any) -> Any:
    """aeon's (n, 1, L) as (n, L); anything else unchanged (checked by `validate_data`)."""
    if getattr(X, "ndim", None) == 3 or (isinstance(X, list) and np.ndim(X) == 3):
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != 1:
            raise ValueError(f"{X.shape[1]} channels: RockNetClassifier is univariate; pass "
                             "(n_series, length) or (n_series, 1, length)")
        return X[:, 0, :]
    return X


def pad_short(X: np.ndarray) -> np.ndarray:
    """Series shorter than 9 zero-padded at the end to 9 (MiniRocket's kernel length)."""
    if X.shape[1] < MIN_LENGTH:
        return np.pad(X, ((0, 0), (0, MIN_LENGTH - X.shape[1])))
    return X


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


class RockNetClassifier(ClassifierMixin, BaseEstimator):
    """MiniRocket features split over ``n_nodes`` boards + a linear head trained the fleet's
    way. Parameters mirror the CLI: ``features``/``variant``/``bias_examples`` as
    ``rocknet plan``; ``mode``/``optimizer``/``epochs``/``batch``/``wire`` as ``rocknet bench
    accuracy`` (``epochs`` None: the mode's default passes, or ``rocknet simulate``'s default
    epochs for ``fleet="simulate"``; ``wire`` "int16", the plans' default, or "float32");
    ``loss``/``topology``/``hops``/``radio``/``faults`` as ``rocknet simulate`` (faults:
    ``["crash:2@100", "reboot:1@50"]``). ``random_state``: the plan's and training's seed
    (None: 0, so fits repeat)."""

    def __init__(self, n_nodes: int = 5, features: int = 10_000, variant: str = "minirocket",
                 bias_examples: int = 1, mode: str = "gradient", optimizer: str = "sgd",
                 epochs: int | None = None, batch: int = 8,
                 wire: str = head_plan.DEFAULT_WIRE,
                 fleet: str = "memory", runtime: str = "cpython", loss: float = 0.0,
                 topology: str = "full", hops: int | None = None,
                 radio: str = "nrf52840-ext", faults: Sequence[Any] = (),
                 board: str = "adafruit_feather_nrf52840",
                 random_state: int | None = None) -> None:
        self.n_nodes = n_nodes
        self.features = features
        self.variant = variant
        self.bias_examples = bias_examples
        self.mode = mode
        self.optimizer = optimizer
        self.epochs = epochs
        self.batch = batch
        self.wire = wire
        self.fleet = fleet
        self.runtime = runtime
        self.loss = loss
        self.topology = topology
        self.hops = hops
        self.radio = radio
        self.faults = faults
        self.board = board
        self.random_state = random_state

    # ----- fit -----

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _check_params(self) -> None:
        if self.fleet not in FLEETS:
            raise ValueError(f"fleet must be one of {FLEETS}, not {self.fleet!r}")
        if not isinstance(self.n_nodes, (int, np.integer)) or self.n_nodes < 1:
            raise ValueError(f"n_nodes must be an integer >= 1, not {self.n_nodes!r}")
        if self.fleet == "simulate":
            if self.optimizer != "sgd":
                raise ValueError("the simulated fleet trains with optimizer='sgd' (what "
                                 "`rocknet plan` writes); use fleet='memory' for other "
                                 "optimizers")
            if self.runtime != "cpython":
                raise ValueError("fleet='simulate' runs the node cores in CPython here; for "
                                 "MicroPython node cores use `rocknet simulate --runtime "
                                 "micropython` or `rocknet sweep`")
        elif self.faults or self.loss:
            raise ValueError("loss and faults need the radio: use fleet='simulate'")

    def fit(self, X: Any, y: Any, X_test: Any = None,
            y_test: Any = None) -> RockNetClassifier:
        """Fit plan and head on (X, y). With ``X_test``/``y_test`` the fleet also predicts
        that set (``fleet="simulate"``: over the air after training, as ``rocknet
        simulate`` does with a dataset's test split) and ``fleet_result_["accuracy"]`` is
        its accuracy; the heads do not change."""
        self._check_params()
        X = validate_data(self, as_series(X), dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(X):
            raise ValueError(f"{len(X)} series but {len(y)} labels")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the head needs at least 2 classes, got {len(self.classes_)} "
                             "class in y")
        S = pad_short(X)
        if X_test is None:
            # the simulated fleet's predict phase needs a series: one training series
            S_te, y_te = S[:1], y_idx[:1]
        else:
            S_te = pad_short(validate_data(self, as_series(X_test), reset=False,
                                           dtype=np.float64))
            lookup = {c: i for i, c in enumerate(self.classes_.tolist())}
            try:
                y_te = np.array([lookup[c] for c in column_or_1d(y_test).tolist()])
            except KeyError as exc:
                raise ValueError(f"y_test has label {exc.args[0]!r}, not in y") from None
        ds = Dataset("fit", S, y_idx.astype(np.int64), S_te, y_te.astype(np.int64),
                     [str(c) for c in self.classes_], "RockNetClassifier.fit")
        seed = self._seed()
        self.plan_ = plan.fit(ds, int(self.n_nodes), variant=self.variant,
                              n_features=int(self.features), bias_examples=self.bias_examples,
                              seed=seed)
        self.train_series_ = S
        self.train_labels_ = y_idx.astype(np.int64)
        if self.fleet == "simulate":
            self._fit_simulate(ds, seed, X_test is not None)
        else:
            self._fit_memory(ds, seed, X_test is not None)
        return self

    def _fit_memory(self, ds: Dataset, seed: int, evaluate: bool) -> None:
        from . import boards
        from .reference import head as rh

        pl = self.plan_
        Q = pl.quantizer(ds.X_train)
        counts = [reference.slice_counts(Q, pl.node_features(i)) for i in range(pl.n_nodes)]
        codes = [rh.codes(c, rh.node_layout(pl.node_features(i))[0])
                 for i, c in enumerate(counts)]
        secs = head_plan.sections(pl, ds.X_train, mode=self.mode, optimizer=self.optimizer,
                                  batch=self.batch, wire=self.wire, passes=self.epochs,
                                  budget=boards.load(self.board).heap_budget,
                                  train_codes=codes)
        nps = head_plan.node_plans(pl, secs)
        Qte = pl.quantizer(ds.X_test)
        counts_te = ([reference.slice_counts(Qte, pl.node_features(i))
                      for i in range(pl.n_nodes)] if evaluate else None)
        r = train.train(nps, counts, ds.y_train, counts_te, ds.y_test if evaluate else None,
                        runtime=self.runtime, seed=seed, eval_every=0)
        self.head_sections_ = secs
        self.node_plans_ = nps
        self.head_states_ = r.states
        self.members_ = list(range(pl.n_nodes))
        self.fleet_result_: dict[str, Any] = {"accuracy": r.accuracy if evaluate else None,
                                              "passes": r.passes, "seconds": r.seconds,
                                              "saturated": r.saturated, "lambda": r.lam,
                                              "solver": secs[0]["solver"]}

    def _fit_simulate(self, ds: Dataset, seed: int, evaluate: bool) -> None:
        from .sim import simulate

        cfg = simulate.Config(mode=self.mode, batch=self.batch, topology=self.topology,
                              hops=self.hops, loss=float(self.loss), radio=self.radio,
                              events=[parse_fault(f) for f in self.faults], seed=seed,
                              runtime=self.runtime, wire=self.wire)
        if self.epochs is not None:
            cfg.epochs = int(self.epochs)
        pl = self.plan_
        sim = simulate.Simulation(pl, ds, cfg)
        res = sim.run()
        # the heads the boards trained: the members as seen by the node furthest along
        members = [i for i in res["members"] if sim.head_states[i] is not None]
        if not members:
            raise RuntimeError("no node finished the simulated run; nothing was trained")
        # the plans every board was built from (what `rocknet plan` writes too)
        self.node_plans_ = sim.node_plans
        self.head_sections_ = [p["head"] for p in sim.node_plans]
        self.head_states_ = [b or b"" for b in sim.head_states]  # down boards: none
        self.members_ = list(members)
        if not evaluate:  # the placeholder predict phase measured nothing
            res["accuracy"] = res["accuracy_all"] = None
            res["accuracy_estimate_by_epoch"] = res["accuracy_by_sim_time"] = []
        self.fleet_result_ = res

    # ----- predict -----

    def _heads(self) -> list[Any]:
        Head = import_device("rocknet.head").Head
        heads = []
        for i in self.members_:
            h = Head(self.node_plans_[i])
            h.load(self.head_states_[i])
            heads.append(h)
        return heads

    def logits(self, X: Any) -> np.ndarray:
        """Summed logits (n, C), as the fleet sums the members' partial-logit rows."""
        check_is_fitted(self, "head_states_")
        S = pad_short(validate_data(self, as_series(X), reset=False, dtype=np.float64))
        pl = self.plan_
        Q = pl.quantizer(S)
        heads = self._heads()
        counts = [reference.slice_counts(Q, pl.node_features(i)) for i in self.members_]
        sec = self.head_sections_[0]
        hs = import_device("rocknet.head_sum")
        total = hs.LogitSum(len(heads), pl.n_classes, sec["wire"], sec["logit_scale"])
        z = np.zeros((len(S), pl.n_classes))
        for j in range(len(S)):
            total.reset()
            for k, h in enumerate(heads):
                total.add(k, hs.pack(h, h.partial_logits(counts[k][j])))
            z[j] = np.asarray(total.total(), dtype=np.float64)
        return z

    def decision_function(self, X: Any) -> np.ndarray:
        """`logits`; for two classes, as scikit-learn's convention, logit 1 - logit 0."""
        z = self.logits(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict(self, X: Any) -> np.ndarray:
        z = self.logits(X)
        return np.asarray(self.classes_[np.argmax(z, axis=1)])

    def _has_proba(self) -> bool:
        return self.mode == "gradient"

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the summed logits (the gradient head's model; ridge has none)."""
        return _softmax(self.logits(X))

    # ----- export -----

    def to_plans(self, out_dir: str | Path) -> list[Path]:
        """Write what ``rocknet plan --out DIR`` writes for this fit (node plans with the
        trained head sections, node data files with the training series, fleet.json), plus
        each trained head as ``node_XX.head`` (`rocknet.checkpoint` slots holding
        `Head.save`, for ``checkpoint.restore(path, Head(plan).load)``). Returns the files
        written."""
        from . import boards
        from .planning import board as board_plan

        check_is_fitted(self, "head_states_")
        if self.head_sections_[0]["solver"] == "dual":
            raise ValueError("this head was solved in dual (ridge, whole training set on "
                             "each node), which boards do not train round by round; fit "
                             "with fleet='simulate' or mode='gradient' to export it")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pl = self.plan_
        ds = Dataset(pl.dataset, self.train_series_, self.train_labels_,
                     np.zeros((0, pl.length)), np.zeros(0, dtype=np.int64), pl.classes,
                     "RockNetClassifier")
        t = board_plan.Training(mode=self.mode, epochs=int(self.head_sections_[0]["passes"]),
                                batch=self.batch, eval=0, seed=self._seed())
        why = board_plan.write_plans(pl, ds, t, out, heads=self.head_sections_,
                                     board=boards.load(self.board))
        if why is not None:
            warnings.warn(f"{why}: the plans have no training sections "
                          "(rocknet validate works with them, rocknet.run() does not)",
                          stacklevel=2)
        ckpt = import_device("rocknet.checkpoint")
        for h, i in zip(self._heads(), self.members_, strict=True):
            ckpt.save(str(out / f"node_{i:02d}.head"), h.save())
        return sorted(p for p in out.iterdir() if p.is_file())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
