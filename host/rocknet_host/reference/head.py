"""Numpy twin of the device head (``device/rocknet/head.py``), in float32 or float64.

`Twin` holds the whole model of a fleet (every node's features side by side, node 0 first)
and does, batch at once, what the N device heads do sample by sample: 8-bit feature codes,
fixed-point standardisation, per-node partial logits through the wire format, summed in node
order, softmax/squared-loss gradients, plain SGD, momentum or Adam with 8-bit dynamic-tree
moments in (class row, (dilation, kernel)) blocks, int16 weights, cosine/linear/constant
schedules, and the dual ridge solve with integer Gram contributions. `rocknet_recipe` is
RockNet's own training (float32, unstandardised PPV, Adam with 8-bit moments in 256-blocks,
batch 128, N-fold bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import minirocket as reference

MU_ONE = 128
SC_ONE = 4096
SC_MAX = 65535
X_UNIT = 1.0 / (MU_ONE * SC_ONE)
GRAM_BOUND = 2**22
TINY = 1e-30
LAMBDAS = np.logspace(-3, 3, 10)


def tree_table(signed: bool) -> np.ndarray:
    """The sorted 256 values of an 8-bit dynamic-tree code: the device's own table (a code
    definition shared by both sides, not a computation to cross-check)."""
    from ..runtimes import import_device

    return np.array(import_device("rocknet.head_moments").tree_table(signed))


TABLE_S = tree_table(True)
TABLE_U = tree_table(False)
MIDS_S = (TABLE_S[1:] + TABLE_S[:-1]) * 0.5
MIDS_U = (TABLE_U[1:] + TABLE_U[:-1]) * 0.5


# ----- features: codes and standardisation -----


def node_layout(features: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(counted length per feature, local block index per feature) of a node's slice, in
    the slice's order (dilation, kernel, bias): a block is one (dilation, kernel)
    combination."""
    L = int(features["length"])
    slots = reference.slice_slots(features)
    den, block = [], []
    combo = 0
    blocks = 0
    for di, d in enumerate(features["dilations"]):
        nb = int(features["biases_per_dilation"][di])
        for _ in range(slots[di, 0], slots[di, 1]):
            den += [L - 8 * int(d) if features["centre"][combo] else L] * nb
            if nb:
                block += [blocks] * nb
                blocks += 1
            combo += 1
    return np.array(den, dtype=np.int64), np.array(block, dtype=np.int64)


def codes(counts: np.ndarray, den: np.ndarray) -> np.ndarray:
    """8-bit feature codes: the counts when every length is <= 255, else round(255 c / n)."""
    counts = np.asarray(counts)
    if den.max() <= 255:
        return counts.astype(np.uint8)
    return np.floor(counts * 255.0 / den + 0.5).astype(np.uint8)


def code_stats(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population std of codes (rows = samples)."""
    X = U.astype(np.float64)
    mean = X.mean(axis=0)
    return mean, np.sqrt(np.clip((X * X).mean(axis=0) - mean * mean, 0.0, None))


def quantise_scaling(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point mean (1/128 code, int16) and 1/std (1/4096, uint16, capped)."""
    mu = np.clip(np.floor(np.asarray(mean) * MU_ONE + 0.5), -32767, 32767)
    std = np.asarray(std, dtype=np.float64)
    inv = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
    sc = np.clip(np.floor(inv * SC_ONE + 0.5), 0, SC_MAX)
    return mu.astype(np.int16), sc.astype(np.uint16)


def standardise(U: np.ndarray, mu: np.ndarray, sc: np.ndarray, dtype: Any) -> np.ndarray:
    """x = ((128 u - mu) * sc) * 2**-19, in the device's order of operations."""
    x = U.astype(dtype) * dtype(128.0)
    x -= mu.astype(dtype)
    x *= sc.astype(dtype)
    x *= dtype(X_UNIT)
    return x


# ----- wire -----


def wire_round(P: np.ndarray, wire: str, logit_scale: float, dtype: Any) -> np.ndarray:
    """Partial logits as the receivers see them: float32-rounded, or int16 codes (returned
    as codes, to be summed exactly and scaled once) from the device's own codec
    (`rocknet.logits.codes`, what every node sends)."""
    if wire == "float32":
        return P.astype(np.float32).astype(dtype)
    from ..runtimes import import_device

    q, _ = import_device("rocknet.logits").codes(P, logit_scale)
    return np.asarray(q).astype(dtype)


# ----- the head of a whole fleet -----


@dataclass
class NodeSlice:
    start: int
    stop: int
    den: np.ndarray
    kernel: np.ndarray  # global block ((dilation, kernel) combination) index per feature


class Twin:
    """Every node's head at once. ``nodes``: per node, its plan ``features`` section;
    ``cfg``: the head options shared by the nodes (node-specific ``mean``/``std`` via
    ``scaling``: per-node (mean, std) in code units, or None for local statistics)."""

    def __init__(self, nodes: list[dict[str, Any]], n_classes: int, cfg: dict[str, Any],
                 dtype: Any = np.float64,
                 scaling: list[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.dtype = dtype
        self.C = n_classes
        self.cfg = cfg
        self.mode = cfg.get("mode", "gradient")
        self.solver = cfg.get("solver", "sgd")
        self.optimizer = cfg.get("optimizer", "sgd")
        self.batch = int(cfg.get("batch", 8))
        self.lr = float(cfg.get("lr", 1e-4))
        self.mom = float(cfg.get("momentum", 0.9))
        b = cfg.get("betas", (0.9, 0.999))
        self.b1, self.b2 = float(b[0]), float(b[1])
        self.eps = float(cfg.get("eps", 1e-8))
        self.smooth = float(cfg.get("label_smoothing", 0.0)) if self.mode == "gradient" else 0.0
        self.l2 = float(cfg.get("l2", 0.0))
        self.steps = max(1, int(cfg.get("steps", 1000)))
        self.schedule = cfg.get("schedule", "cosine")
        self.int_weights = cfg.get("weights", "int16") == "int16"
        self.w_scale = float(cfg.get("w_scale", 2.0**-18))
        self.q_moments = cfg.get("moments", "int8") == "int8"
        self.wire = cfg.get("wire", "float32")
        self.logit_scale = float(cfg.get("logit_scale", 1.0 / 256))
        self.bias_node = int(cfg.get("bias_node", 0))
        self.slices: list[NodeSlice] = []
        f = 0
        blocks = 0
        for feats in nodes:
            den, kern = node_layout(feats)
            self.slices.append(NodeSlice(f, f + len(den), den, kern + blocks))
            f += len(den)
            blocks += int(kern.max()) + 1 if len(kern) else 0
        self.F = f
        self.block = np.concatenate([s.kernel for s in self.slices])
        self.n_blocks = blocks
        # blocks are contiguous runs of features (combinations in the global order)
        self.starts = np.flatnonzero(np.diff(self.block, prepend=-1))
        self.mu = np.zeros(f, dtype=np.int16)
        self.sc = np.zeros(f, dtype=np.uint16)
        if scaling is not None:
            for s, (mean, std) in zip(self.slices, scaling, strict=True):
                self.mu[s.start:s.stop], self.sc[s.start:s.stop] = quantise_scaling(mean, std)
        self.W = np.zeros((n_classes, f), dtype=np.int16 if self.int_weights else dtype)
        self.b = np.zeros(n_classes, dtype=dtype)
        T = TABLE_S.astype(dtype), TABLE_U.astype(dtype)
        self.tables = {"s": (T[0], MIDS_S.astype(dtype)), "u": (T[1], MIDS_U.astype(dtype))}
        zero_s = np.searchsorted(self.tables["s"][1], dtype(0.0))
        zero_u = np.searchsorted(self.tables["u"][1], dtype(0.0))
        self.m = self._moment_init(zero_s) if self.optimizer != "sgd" else None
        self.ms = np.zeros((n_classes, blocks), dtype=dtype)
        self.v = self._moment_init(zero_u) if self.optimizer == "adam" else None
        self.vs = np.zeros((n_classes, blocks), dtype=dtype)
        self.bm = np.zeros(n_classes, dtype=dtype)
        self.bv = np.zeros(n_classes, dtype=dtype)
        self.t = 0
        self.saturated = 0
        self.lam: float | None = None

    def _moment_init(self, zero_code: int) -> np.ndarray:
        if self.q_moments:
            return np.full((self.C, self.F), zero_code, dtype=np.uint8)
        return np.zeros((self.C, self.F), dtype=self.dtype)

    # features

    def codes(self, counts_by_node: list[np.ndarray]) -> np.ndarray:
        """(n, F) codes from per-node counts (n, F_i)."""
        return np.hstack([codes(c, s.den) for c, s in zip(counts_by_node, self.slices,
                                                           strict=True)])

    def set_local_scaling(self, U: np.ndarray) -> None:
        """Scaling from the codes of the training pass (each node's own statistics)."""
        mean, std = code_stats(U)
        self.mu, self.sc = quantise_scaling(mean, std)

    def x(self, U: np.ndarray) -> np.ndarray:
        return standardise(U, self.mu, self.sc, self.dtype)

    # logits

    def weights(self) -> np.ndarray:
        W = self.W.astype(self.dtype)
        return W * self.dtype(self.w_scale) if self.int_weights else W

    def partial_logits(self, X: np.ndarray) -> list[np.ndarray]:
        """Per node (n, C) partial logits of standardised features X (n, F)."""
        out = []
        for i, s in enumerate(self.slices):
            P = X[:, s.start:s.stop] @ self.W[:, s.start:s.stop].astype(self.dtype).T
            if self.int_weights:
                P = P * self.dtype(self.w_scale)
            if i == self.bias_node:
                P = P + self.b
            out.append(P)
        return out

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Summed logits as every node computes them (wire rounding, node order)."""
        parts = [wire_round(P, self.wire, self.logit_scale, self.dtype)
                 for P in self.partial_logits(X)]
        z = parts[0].copy()
        for p in parts[1:]:
            z += p
        if self.wire == "int16":
            z *= self.dtype(self.logit_scale)
        return z

    def predict(self, U: np.ndarray, chunk: int = 512) -> np.ndarray:
        out = [np.argmax(self.logits(self.x(U[i:i + chunk])), axis=1)
               for i in range(0, len(U), chunk)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # training

    def grad(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-sample logit gradients (n, C)."""
        g = z.copy()
        if self.mode == "gradient":
            g -= g.max(axis=1, keepdims=True)
            e = np.exp(g)
            g = e / e.sum(axis=1, keepdims=True)
            g -= self.dtype(self.smooth / self.C)
            g[np.arange(len(labels)), labels] -= self.dtype(1.0 - self.smooth)
        else:
            g += self.dtype(1.0)
            g[np.arange(len(labels)), labels] -= self.dtype(2.0)
        return g

    def lr_at(self, t: int) -> float:
        if self.schedule == "constant":
            return self.lr
        f = min(t, self.steps) / self.steps
        if self.schedule == "linear":
            return self.lr * (1.0 - f)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * f))

    def batch_step(self, U: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One batch: logits with the current weights, gradients, one optimizer step.
        Returns the summed logits (n, C)."""
        z = self.logits(self.x(U))
        G = self.grad(z, labels).T  # (C, k)
        self.step(G, U)
        return z

    def step(self, G: np.ndarray, U: np.ndarray) -> None:
        dt = self.dtype
        k = U.shape[0]
        lr = self.lr_at(self.t)
        if self.optimizer == "adam":
            t1 = self.t + 1
            lr = lr * math.sqrt(1.0 - self.b2**t1) / (1.0 - self.b1**t1)
        ghat = (G @ U.astype(dt)) * dt(128.0)
        ghat -= self.mu.astype(dt) * G.sum(axis=1, keepdims=True)
        ghat *= self.sc.astype(dt)
        ghat *= dt(X_UNIT * (1.0 / k))
        if self.l2:
            ghat += self.W * dt(self.l2 * (self.w_scale if self.int_weights else 1.0))
        if self.optimizer == "sgd":
            self._update(ghat, lr)
        elif self.optimizer == "momentum":
            m = self._decode(self.m, self.ms, "s") * dt(self.mom) + ghat
            self._update(m, lr)
            self.m, self.ms = self._encode(m, "s")
        else:
            m = self._decode(self.m, self.ms, "s") * dt(self.b1) + ghat * dt(1.0 - self.b1)
            v = self._decode(self.v, self.vs, "u")
            v = np.sqrt(v * v * dt(self.b2) + ghat * ghat * dt(1.0 - self.b2))
            self._update(m / (v + dt(self.eps)), lr)
            self.m, self.ms = self._encode(m, "s")
            self.v, self.vs = self._encode(v, "u")
        if self.bias_node is not None:
            gb = G.sum(axis=1) * dt(1.0 / k)
            if self.optimizer == "sgd":
                self.b = self.b - gb * dt(lr)
            elif self.optimizer == "momentum":
                self.bm = self.bm * dt(self.mom) + gb
                self.b = self.b - self.bm * dt(lr)
            else:
                self.bm = self.bm * dt(self.b1) + gb * dt(1.0 - self.b1)
                self.bv = self.bv * dt(self.b2) + gb * gb * dt(1.0 - self.b2)
                self.b = self.b - self.bm / (np.sqrt(self.bv) + dt(self.eps)) * dt(lr)
        self.t += 1

    def _decode(self, codes_: np.ndarray | None, scales: np.ndarray, kind: str) -> np.ndarray:
        assert codes_ is not None
        if not self.q_moments:
            return codes_.copy()
        return self.tables[kind][0][codes_] * scales[:, self.block]

    def _encode(self, v: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        dt = self.dtype
        if not self.q_moments:
            return v, np.zeros((self.C, self.n_blocks), dtype=dt)
        bm = np.maximum.reduceat(np.abs(v), self.starts, axis=1)
        inv = dt(1.0) / (bm + dt(TINY))
        c = np.searchsorted(self.tables[kind][1], (v * inv[:, self.block]).ravel())
        return c.reshape(v.shape).astype(np.uint8), bm

    def _update(self, upd: np.ndarray, lr: float) -> None:
        dt = self.dtype
        if not self.int_weights:
            self.W = self.W - upd * dt(lr)
            return
        d = np.floor(upd * dt(lr / self.w_scale) + dt(0.5))
        nw = self.W.astype(dt) - d
        if np.abs(nw).max() > 32767:
            self.saturated += int(np.sum(np.abs(nw).max(axis=1) > 32767))
            nw = np.clip(nw, -32767, 32767)
        self.W = nw.astype(np.int16)

    def train_epoch(self, U: np.ndarray, labels: np.ndarray, order: np.ndarray) -> None:
        """One pass in ``order``, batches of ``batch`` (the last one may be shorter)."""
        for s in range(0, len(order), self.batch):
            idx = order[s:s + self.batch]
            self.batch_step(U[idx], labels[idx])

    # ridge, dual

    def gram_parts(self, U: np.ndarray, n_total_features: int) -> tuple[list[np.ndarray], int]:
        """Each node's integer Gram contribution (n, n) and the shift (twin of head.gram)."""
        n = U.shape[0]
        shift = gram_shift(n, n_total_features)
        X = self.x(U)
        parts = []
        for s in self.slices:
            Xi = X[:, s.start:s.stop]
            K = (Xi @ Xi.T) * self.dtype(2.0**shift)
            parts.append(np.floor(K + self.dtype(0.5)))
        return parts, shift

    def solve_dual(self, U: np.ndarray, labels: np.ndarray, n_total_features: int,
                   lambdas: np.ndarray = LAMBDAS) -> float:
        """The closed-form ridge every node computes; sets W and b; returns lambda."""
        dt = self.dtype
        parts, shift = self.gram_parts(U, n_total_features)
        K = np.sum(np.array(parts, dtype=np.float64), axis=0).astype(dt) * dt(2.0**-shift)
        n = len(labels)
        Y = -np.ones((n, self.C), dtype=dt)
        Y[np.arange(n), labels] = 1.0
        ybar = Y.mean(axis=0)
        Y = Y - ybar
        evals, Q = np.linalg.eigh(K)
        idim = int(np.argmax(np.abs(Q.sum(axis=0))))
        QtY = Q.T @ Y
        Q2 = Q * Q
        best, best_err = None, None
        for lam in lambdas:
            w = dt(1.0) / (evals + dt(lam))
            w[idim] = 0.0
            R = (Q @ (QtY * w[:, None])) / (Q2 @ w)[:, None]
            err = float(np.sum(R * R))
            if best_err is None or err < best_err:
                best, best_err = float(lam), err
        assert best is not None
        w = dt(1.0) / (evals + dt(best))
        w[idim] = 0.0
        A = Q @ (QtY * w[:, None])
        Wf = A.T @ self.x(U)
        if self.int_weights:
            q = np.floor(Wf * dt(1.0 / self.w_scale) + dt(0.5))
            if np.abs(q).max() > 32767:
                self.saturated += 1
            self.W = np.clip(q, -32767, 32767).astype(np.int16)
        else:
            self.W = Wf
        self.b = ybar.astype(dt)
        self.lam = best
        return best


def gram_shift(n: int, total_features: int) -> int:
    """Twin of head._gram_shift: the largest power of two with n F 2**s <= 2**22."""
    s = 0
    while n * total_features * 2.0**s > GRAM_BOUND:
        s -= 1
    while n * total_features * 2.0 ** (s + 1) <= GRAM_BOUND:
        s += 1
    return s


# ----- RockNet's own training recipe -----


def rocknet_recipe(F_train: list[np.ndarray], y_train: np.ndarray, F_test: list[np.ndarray],
                   y_test: np.ndarray, n_classes: int, epochs: int, seed: int = 1,
                   batch: int = 128, lr: float = 1e-3,
                   eval_at: tuple[int, ...] | None = None) -> dict[int, float]:
    """RockNet's training (reference notes §3): float32 PPV features without standardisation,
    per-node W_i initialised 2 r / sqrt(F + C) from a table of 1000 normals indexed by the
    local flat index, every node its own bias (effective bias N b), softmax cross-entropy,
    Adam (1e-3, 0.9, 0.999, 1e-8) with moments as 8-bit signed dynamic-tree codes in blocks
    of 256 of the flattened per-node state, batch min(128, n) with the remainder stepped at
    the end of each pass, dataset order fixed. ``F_*``: per-node PPV features (n, F_i).
    Returns {pass: test accuracy} after every pass in ``eval_at`` (default: all). (Not
    copied: the first batch of 129 after each evaluation pass; the 1000 normals are ours,
    seeded, not RockNet's table.)"""
    f32 = np.float32
    C = n_classes
    F_total = sum(f.shape[1] for f in F_train)
    r = np.random.default_rng(seed).standard_normal(1000).astype(f32)
    table = TABLE_S.astype(f32)
    mids = MIDS_S.astype(f32)
    B = min(batch, len(y_train))
    nodes = []
    for Fi in F_train:
        size = C * Fi.shape[1]
        W = (2 * r[np.arange(size) % 1000] / f32(math.sqrt(F_total + C))).reshape(C, -1)
        nodes.append({"W": W.astype(f32), "b": np.zeros(C, f32),
                      "q": [np.full(size, 120, np.uint8), np.full(size, 120, np.uint8)],
                      "s": [np.ones(-(-size // 256), f32), np.ones(-(-size // 256), f32)],
                      "qb": [np.full(C, 120, np.uint8), np.full(C, 120, np.uint8)],
                      "sb": [np.ones(1, f32), np.ones(1, f32)]})
    t = 1

    def logits(Fs: list[np.ndarray], idx: Any) -> np.ndarray:
        z = np.zeros((len(Fs[0][idx]), C), f32)
        for Fi, nd in zip(Fs, nodes, strict=True):
            z += (Fi[idx].astype(f32) @ nd["W"].T + nd["b"]).astype(f32)
        return z

    def adam(theta: np.ndarray, g: np.ndarray, q: list[np.ndarray], s: list[np.ndarray],
             lr_t: float) -> np.ndarray:
        flat = theta.ravel().copy()
        gf = g.ravel()
        out = []
        for k in (0, 1):  # decode m, v: table / (scale + 1e-7), scale = 1/max
            blocks = np.repeat(s[k], 256)[:flat.size]
            out.append(table[q[k]] / (blocks + f32(1e-7)))
        m = f32(0.9) * out[0] + f32(0.1) * gf
        v = f32(0.999) * out[1] + f32(0.001) * gf * gf
        flat -= f32(lr_t) * m / (np.sqrt(np.maximum(v, 0)) + f32(1e-8))
        for k, val in enumerate((m, v)):
            pad = np.zeros(len(s[k]) * 256, f32)
            pad[:val.size] = np.abs(val)
            mx = np.maximum(pad.reshape(-1, 256).max(axis=1), f32(1e-7))
            s[k][:] = 1 / mx
            q[k][:] = np.searchsorted(mids, val * np.repeat(s[k], 256)[:val.size])
        return flat.reshape(theta.shape)

    accs: dict[int, float] = {}
    n = len(y_train)
    for ep in range(1, epochs + 1):
        for s0 in range(0, n, B):
            idx = np.arange(s0, min(n, s0 + B))
            z = logits(F_train, idx)
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            g = e / e.sum(axis=1, keepdims=True)
            g[np.arange(len(idx)), y_train[idx]] -= 1
            lr_t = lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            for Fi, nd in zip(F_train, nodes, strict=True):
                gW = (g.T @ Fi[idx].astype(f32)) / f32(len(idx))
                nd["W"] = adam(nd["W"], gW, nd["q"], nd["s"], lr_t)
                nd["b"] = adam(nd["b"], g.mean(axis=0).astype(f32), nd["qb"], nd["sb"], lr_t)
            t += 1
        if eval_at is None or ep in eval_at:
            pred = np.concatenate([
                np.argmax(logits(F_test, np.arange(i, min(len(y_test), i + 512))), axis=1)
                for i in range(0, len(y_test), 512)])
            accs[ep] = float(np.mean(pred == y_test))
    return accs
