"""Test helpers for rocknet.node: a small STAND-IN linear head (the protocol tests need no
real learning) and a small fleet built from the quickstart dataset.

``SETUP_SRC`` is device code: it runs unchanged in CPython (exec) and in MicroPython, so the
same fleet is built in both runtimes.
"""

from __future__ import annotations

from typing import Any

SETUP_SRC = r'''
from rocknet import node as node_mod, quickstart, xp
from rocknet.mixer import Rng
from rocknet.xp import np


class StandInHead:
    """TEST STAND-IN for rocknet.head: softmax regression on counts / length, plain SGD on
    the batch mean. Node 0 owns the bias. Same interface as node.py expects."""

    def __init__(self, n_features, n_classes, length, owns_bias, lr=0.5):
        self.C = n_classes
        self.F = n_features
        self.scale = 1.0 / length
        self.lr = lr
        self.owns_bias = owns_bias
        self.W = np.zeros((n_classes, n_features), dtype=xp.float_)
        self.G = np.zeros((n_classes, n_features), dtype=xp.float_)
        self.b = np.zeros(n_classes, dtype=xp.float_)
        self.gb = np.zeros(n_classes, dtype=xp.float_)
        self.n = 0

    def _f(self, counts):
        return np.array(counts, dtype=xp.float_) * self.scale

    def codes(self, counts):
        return counts

    def partial_logits(self, counts):
        p = np.dot(self.W, self._f(counts))
        if self.owns_bias:
            p = p + self.b
        return p

    def apply(self, z, label, counts=None, codes=None):
        counts = codes if counts is None else counts
        e = np.exp(z - np.max(z))
        g = e / np.sum(e)
        g[label] -= 1.0
        self.G += g.reshape((self.C, 1)) * self._f(counts).reshape((1, self.F))
        self.gb += g
        self.n += 1

    def step(self):
        if self.n:
            self.W -= self.G * (self.lr / self.n)
            self.b -= self.gb * (self.lr / self.n)
        self.G *= 0.0
        self.gb *= 0.0
        self.n = 0

    def save(self):
        return bytes(self.W.tobytes()) + bytes(self.b.tobytes())

    def save_parts(self):
        return [self.save()]

    def load(self, body):
        w = self.C * self.F * (len(body) // (self.C * self.F + self.C))
        self.W = np.frombuffer(body[:w], dtype=xp.float_).reshape((self.C, self.F)).copy()
        self.b = np.frombuffer(body[w:], dtype=xp.float_).copy()


def node_features(plan, i, n):
    """Kernel slice i of n of a quickstart plan: whole kernels (a features section without
    ``kernel_range`` holds its kernels at every dilation)."""
    K = len(plan["kernels"])
    k0 = i * K // n
    k1 = (i + 1) * K // n
    biases = []
    centre = []
    f = 0
    for di in range(len(plan["dilations"])):
        nb = plan["biases_per_dilation"][di]
        for k in range(K):
            if k0 <= k < k1:
                biases += plan["biases"][f:f + nb]
                centre.append(plan["centre"][di * K + k])
            f += nb
    return {"length": plan["length"], "dilations": plan["dilations"],
            "kernels": plan["kernels"][k0:k1], "biases_per_dilation":
            plan["biases_per_dilation"], "biases": biases, "centre": centre}


def make_fleet(n, per_class=4, eval_per_class=1, epochs=2, batch=6, row_size=48,
               agreement=True, gone_after=8, checkpoint_every=0, seed=3, logit_scale=None):
    """(make(i, save) -> Node, schedule): each node owns a share of the quickstart data."""
    X, y = quickstart.dataset(per_class, seed)
    Xe, ye = quickstart.dataset(eval_per_class, seed + 1)
    plan = quickstart.small_plan(X[:3], n_kernels=2 * n, biases=2)
    train = [[] for _ in range(n)]
    ev = [[] for _ in range(n)]
    for k in range(len(X)):
        train[k % n].append((bytes(X[k]), y[k]))
    for k in range(len(Xe)):
        ev[k % n].append((bytes(Xe[k]), ye[k]))
    sched = node_mod.Schedule([len(t) for t in train], [len(e) for e in ev], epochs=epochs,
                              batch=batch)
    feats = [node_features(plan, i, n) for i in range(n)]

    def make(i, save=None):
        f = feats[i]
        nf = len(f["biases"])
        head = StandInHead(nf, 3, plan["length"], i == 0)
        return node_mod.Node(i, n, f, head, 3, row_size, sched,
                             data={"train": train[i], "eval": ev[i]}, agreement=agreement,
                             gone_after=gone_after, checkpoint_every=checkpoint_every,
                             save=save, log=True, logit_scale=logit_scale)

    return make, sched


def run_lossy(nodes, rounds, loss, seed, crash=None):
    """Device-side twin of tests/node_net.py for MicroPython: each row is lost per
    receiver with probability loss/256ths (xorshift, the same on every port)."""
    rng = Rng(seed)
    for r in range(rounds):
        live = [nd for nd in nodes if crash is None or not (nd.id == crash[0] and r >= crash[1])]
        m = live[0].m
        truth = [None] * m
        own = {}
        for nd in live:
            rows = nd.begin_round(r)
            own[nd.id] = rows
            for k in rows:
                truth[k] = rows[k]
        for nd in live:
            got = []
            for k in range(m):
                if truth[k] is not None and (k in own[nd.id] or rng.below(256) >= loss):
                    got.append(truth[k])
                else:
                    got.append(None)
            nd.end_round(r, got)
'''


def standin_namespace() -> dict[str, Any]:
    """SETUP_SRC executed in this CPython process (device package on the path)."""
    from rocknet_host.runtimes import import_device

    import_device("rocknet.node")
    ns: dict[str, Any] = {"__name__": "node_standin_device"}
    exec(compile(SETUP_SRC, "<node_standin>", "exec"), ns)
    return ns
