"""One node's slice of the distributed linear head.

Node i holds the weight block W_i (C x F_i) for its feature slice; only partial logits cross
the air. Per training sample, in this order:

    row = head.partial_logits(counts)   # C floats: W_i x_i (+ b on the bias owner)
    data = head.pack(row)               # bytes on the air (float32 or int16 codes)
    ... every node gets every node's row; z = LogitSum total (identical on every node) ...
    head.apply(z, label[, counts])      # local gradient of this sample, into the batch
                                        # (or codes=head.codes(counts) kept from earlier)
    head.step()                         # at the batch boundary: optimizer update of W_i

Nothing else is exchanged, yet every node applies exactly the update a single central model
would make: the gradient of W_i needs only z, the label and x_i. The bias has one owner
(``bias_node``, node 0 by default), not one copy per node as in RockNet.

Modes (the ``head`` section of the node plan; `rocknet_host.head_plan` writes it):

- ``mode="gradient"``: softmax cross-entropy (with label smoothing ``label_smoothing``).
- ``mode="ridge"``: squared loss to +-1 targets with L2 (RidgeClassifier's objective),
  ``solver="sgd"`` with the same local updates, or ``solver="dual"``: the closed form in dual
  for training sets that fit RAM (`store` every sample in one pass, `gram` -> bytes,
  `add_gram` from every node, `solve`). The plan's ``dual_max`` says up to which n a board
  can do this.
- ``optimizer="sgd"`` (plain, no optimizer state), ``"momentum"`` (heavy ball) or
  ``"adam"``; mini-batches of ``batch``;
  learning-rate ``schedule`` "cosine", "linear" or "constant" over ``steps`` steps.

Features. A count c from the slice becomes an 8-bit code u: c itself when every counted
length is <= 255, else round(255 c / n) (the PPV in 1/255). The head standardises codes
itself, x = (u - mean) / std per feature, with mean and std from the plan (``scaling="plan"``)
or from its own statistics over one pass (``scaling="local"``: `observe`, `finish_stats`).
Both are kept as 16-bit fixed point: mean in 1/128 code, 1/std in 1/4096 (capped at 16).

Compact state (bytes per weight, C x F_i weights): W int16 with the plan's fixed step
``w_scale`` (2); no optimizer state for plain SGD; momentum or Adam's first moment as 8-bit
"dynamic tree" codes (1); Adam's second moment as 8-bit codes of sqrt(v) on an unsigned
tree (1). The batch keeps the codes of its samples (B x F_i bytes) and their logit gradients
(B x C floats) instead of a float gradient accumulator. Moment codes are scaled per block of
one class row and one kernel (the features of one kernel sit in one node whatever the
split), so the arithmetic is the same element by element for any number of nodes: N nodes
end with the model one node would train. FaceAll at 20 nodes (595 features, 14 classes,
batch 8) holds about 27 KB of head arrays with SGD, 36 KB with momentum, 45 KB with Adam
(float32 boards; `state_bytes` itemises them).

Every computation here has a numpy twin in ``rocknet_host.reference_head``.
"""

import json
import math
import struct

from . import xp
from .xp import np

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


CHECKPOINT_KIND = "checkpoint"
CHECKPOINT_VERSION = const(1)

_MU_ONE = const(128)  # mean fixed point: 1/128 code
_SC_ONE = const(4096)  # 1/std fixed point: 1/4096 per code
_SC_MAX = const(65535)
_X_UNIT = 1.0 / (128 * 4096)  # x = (128 u - mu_q) * sc_q * _X_UNIT
_GRAM_BOUND = 4194304  # 2**22: per-entry bound of integer Gram sums (float32 exact to 2**24)
_TINY = 1e-30
_STEPS = (128, 64, 32, 16, 8, 4, 2, 1)

MODES = ("gradient", "ridge")
SOLVERS = ("sgd", "dual")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("cosine", "linear", "constant")
WIRES = ("float32", "int16")
SCALINGS = ("plan", "local")
LAMBDAS = (1e-3, 4.6415888336127775e-3, 2.1544346900318832e-2, 0.1, 0.46415888336127775,
           2.154434690031882, 10.0, 46.41588833612773, 215.44346900318823, 1000.0)


def tree_table(signed):
    """The 256 values of an 8-bit "dynamic tree" code, sorted ascending (code = index).

    Signed (RockNet's, for first moments): bit 7 is the sign; in bits 6..0, e leading zeros,
    then a 1, then 6-e mantissa bits: value = +-m / (2**(6-e) - 1) * 10**-e. Unsigned (for
    sqrt of second moments, never negative): the same on all 8 bits, one more mantissa bit.
    """
    vals = []
    nb = 7 if signed else 8
    for q in range(256):
        sign = -1.0 if signed and q & 128 else 1.0
        bits = q & 127 if signed else q
        e = 0
        while e < nb and not (bits >> (nb - 1 - e)) & 1:
            e += 1
        mb = nb - 1 - e
        if mb <= 0:
            vals.append(0.0)
            continue
        man = (bits & ((1 << mb) - 1)) / ((1 << mb) - 1 + 1e-7)
        vals.append(sign * man * 10.0 ** (-e))
    vals.sort()
    return vals


def _midpoints(table):
    return [(table[i] + table[i + 1]) * 0.5 for i in range(len(table) - 1)]


_T_SIGNED = tree_table(True)
_T_UNSIGNED = tree_table(False)
TABLE_S = np.array(_T_SIGNED, dtype=xp.float_)
TABLE_U = np.array(_T_UNSIGNED, dtype=xp.float_)
MIDS_S = np.array(_midpoints(_T_SIGNED), dtype=xp.float_)
MIDS_U = np.array(_midpoints(_T_UNSIGNED), dtype=xp.float_)
del _T_SIGNED, _T_UNSIGNED


def _cfg(head, key, default, choices=None):
    v = head.get(key, default)
    if choices is not None and v not in choices:
        raise ValueError("head option %s=%r: choose one of %s; re-run `rocknet plan`"
                         % (key, v, ", ".join(choices)))
    return v


def _finite(a):
    return bool(np.all(np.isfinite(a)))


class Head:
    """One node's head, built from its node plan (the dict `store.load_plan` returns).

    ``plan`` needs ``node``, ``nodes``, ``classes`` (C), ``features`` (the slice section) and
    ``head`` (options, see the module docstring); ``head=`` overrides the latter.
    """

    def __init__(self, plan, head=None):
        cfg = plan.get("head", {}) if head is None else head
        feats = plan["features"]
        self.node = int(plan.get("node", 0))
        self.nodes = int(plan.get("nodes", 1))
        C = int(plan["classes"])
        if "classes" in cfg and int(cfg["classes"]) != C:
            raise ValueError("head section is for %d classes but the plan has %d; re-run "
                             "`rocknet plan`" % (int(cfg["classes"]), C))
        if not 2 <= C <= 255:
            raise ValueError("%d classes: the head handles 2..255" % C)
        self.n_classes = C
        self.mode = _cfg(cfg, "mode", "gradient", MODES)
        self.solver = _cfg(cfg, "solver", "sgd", SOLVERS)
        if self.solver == "dual" and self.mode != "ridge":
            raise ValueError("solver 'dual' is ridge's closed form: use mode='ridge'")
        self.optimizer = _cfg(cfg, "optimizer", "sgd", OPTIMIZERS)
        self.schedule = _cfg(cfg, "schedule", "cosine", SCHEDULES)
        self.scaling = _cfg(cfg, "scaling", "plan", SCALINGS)
        self.wire = _cfg(cfg, "wire", "float32", WIRES)
        self.logit_scale = float(cfg.get("logit_scale", 1.0 / 256))
        self.batch = int(cfg.get("batch", 8))
        if not 1 <= self.batch <= 4096:
            raise ValueError("batch %d outside 1..4096" % self.batch)
        self.lr = float(cfg.get("lr", 1e-4))
        self.mom = float(cfg.get("momentum", 0.9))
        betas = cfg.get("betas", (0.9, 0.999))
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.eps = float(cfg.get("eps", 1e-8))
        self.smooth = float(cfg.get("label_smoothing", 0.0)) if self.mode == "gradient" else 0.0
        self.l2 = float(cfg.get("l2", 0.0))
        self.steps = max(1, int(cfg.get("steps", 1000)))
        self.int_weights = _cfg(cfg, "weights", "int16", ("int16", "float")) == "int16"
        self.w_scale = float(cfg.get("w_scale", 2.0 ** -18))
        self.q_moments = _cfg(cfg, "moments", "int8", ("int8", "float")) == "int8"
        self.owns_bias = self.node == int(cfg.get("bias_node", 0))
        self.n_train = int(cfg.get("n_train", 0))
        self.lambdas = [float(v) for v in cfg.get("lambdas", LAMBDAS)]
        self.total_features = int(cfg.get("total_features", 0))
        self._layout(feats)
        F = self.n_features
        self.fingerprint = _fingerprint(plan, cfg, F)

        # Counters (all checkpointed).
        self.t = 0  # optimizer steps taken
        self.k = 0  # samples in the current batch
        self.seen = 0  # samples applied
        self.saturated = 0  # weight rows that hit the int16 range (0 = w_scale is fine)
        self.clipped = 0  # int16 partial-logit rows clipped (0 = logit_scale is fine)
        self.lam = None  # lambda the dual solve chose

        # Features: codes of the current sample, standardisation, scratch x.
        self._u = np.zeros(F, dtype=xp.uint8)
        self._have_u = False
        self._x = np.zeros(F, dtype=xp.float_)
        self._mu = np.zeros(F, dtype=xp.int16)
        self._sc = np.zeros(F, dtype=xp.uint16)
        self._s1 = None  # local statistics (sum u, sum u^2) while they are gathered
        self._s2 = None
        self.stats_n = 0
        if self.scaling == "plan":
            mean, std = cfg.get("mean"), cfg.get("std")
            if mean is None or std is None or len(mean) != F or len(std) != F:
                raise ValueError("scaling='plan' needs %d means and stds in the head section; "
                                 "re-run `rocknet plan` (or use scaling='local')" % F)
            self._set_scaling(np.array(mean, dtype=xp.float_), np.array(std, dtype=xp.float_))
        else:
            self._s1 = np.zeros(F, dtype=xp.float_)
            self._s2 = np.zeros(F, dtype=xp.float_)

        # Weights and bias.
        self._W = np.zeros((C, F), dtype=xp.int16 if self.int_weights else xp.float_)
        self._b = np.zeros(C, dtype=xp.float_)
        self._g = np.zeros(C, dtype=xp.float_)
        self._zbuf = np.zeros(C, dtype=xp.float_)

        self._m = self._ms = self._v = self._vs = None
        self._bm = self._bv = None
        self._U = self._G = None
        self._store = self._labels = self._gsum = None
        self.n_stored = 0
        self._grams = 0  # bitmap of nodes whose Gram contribution was added
        if self.solver == "dual":
            if self.n_train < 1 or self.total_features < 1:
                raise ValueError("the dual solve needs n_train and total_features in the head "
                                 "section; re-run `rocknet plan`")
            n = self.n_train
            self._store = np.zeros((n, F), dtype=xp.uint8)
            self._labels = np.zeros(n, dtype=xp.uint8)
            self._gsum = np.zeros(n * (n + 1) // 2, dtype=xp.float_)
            self._gram_shift = _gram_shift(n, self.total_features)
        else:
            self._U = np.zeros((self.batch, F), dtype=xp.uint8)
            self._G = np.zeros((C, self.batch), dtype=xp.float_)
            if self.optimizer != "sgd":  # plain SGD keeps no optimizer state
                mdt = xp.uint8 if self.q_moments else xp.float_
                nk = self._nk
                self._m = np.zeros((C, F), dtype=mdt)
                self._ms = np.zeros((C, nk), dtype=xp.float_)
                self._bm = np.zeros(C, dtype=xp.float_)
                if self.optimizer == "adam":
                    self._v = np.zeros((C, F), dtype=mdt)
                    self._vs = np.zeros((C, nk), dtype=xp.float_)
                    self._bv = np.zeros(C, dtype=xp.float_)
                if self.q_moments:
                    self._clear_codes()
                    self._code = np.zeros(F, dtype=xp.uint8)
                    self._blk = np.zeros(nk, dtype=xp.float_)

    # ----- layout -----

    def _layout(self, feats):
        """Per-dilation segments (offset, biases per kernel) of this node's feature order
        (dilation, own kernel, bias); blocks are (class row, own kernel)."""
        L = int(feats["length"])
        dil = [int(d) for d in feats["dilations"]]
        per = [int(n) for n in feats["biases_per_dilation"]]
        nk = len(feats["kernels"])
        centre = feats["centre"]
        if nk < 1:
            raise ValueError("this node has no kernels; re-run `rocknet plan` with fewer nodes")
        self._nk = nk
        segs = []
        dens = []
        f = 0
        combo = 0
        for di, d in enumerate(dil):
            nb = per[di]
            if nb:
                segs.append((f, nb))
            for _ in range(nk):
                dens.append(L - 8 * d if centre[combo] else L)
                f += nb
                combo += 1
        if f != len(feats["biases"]):
            raise ValueError("plan features do not add up; re-run `rocknet plan`")
        self._segs = segs
        self.n_features = f
        self._den = None
        if max(dens) > 255:  # counts do not fit a byte: codes are the PPV in 1/255
            self._den = np.zeros(f, dtype=xp.uint16)
            f = 0
            combo = 0
            for di in range(len(dil)):
                for _ in range(nk):
                    self._den[f:f + per[di]] = dens[combo]
                    f += per[di]
                    combo += 1

    def _clear_codes(self):
        # code of 0.0 in each table (rows start at zero)
        z_s = _code_of_zero(MIDS_S)
        for r in range(self.n_classes):
            self._m[r] = z_s
        if self._v is not None:
            z_u = _code_of_zero(MIDS_U)
            for r in range(self.n_classes):
                self._v[r] = z_u

    # ----- features -----

    def codes(self, counts):
        """8-bit codes of one sample's PPV counts (uint16, slice order); kept as the current
        sample for `apply`."""
        if len(counts) != self.n_features:
            raise ValueError("%d counts for a head of %d features; the slice and head come "
                             "from different plans" % (len(counts), self.n_features))
        u = self._u
        if self._den is None:
            u[:] = counts
        else:
            t = counts * 255.0
            t /= self._den
            t += 0.5
            u[:] = np.floor(t)
        self._have_u = True
        return u

    def _set_scaling(self, mean, std):
        """Quantise float means and stds (code units, this node's order) to fixed point."""
        mu = mean * _MU_ONE
        mu += 0.5
        self._mu[:] = np.clip(np.floor(mu), -32767, 32767)
        inv = np.zeros(len(std), dtype=xp.float_)
        for i in range(len(std)):  # 1/std, 0 for constant features
            s = std[i]
            inv[i] = 1.0 / s if s > 0 else 0.0
        inv *= _SC_ONE
        inv += 0.5
        self._sc[:] = np.clip(np.floor(inv), 0, _SC_MAX)

    def observe(self, counts):
        """Local statistics pass (``scaling="local"``): one training sample's counts."""
        if self._s1 is None:
            raise ValueError("statistics are already fixed (scaling=%r)" % self.scaling)
        self.observe_codes(self.codes(counts))

    def finish_stats(self):
        """Fix mean and std from the observed samples (population std, as StandardScaler)."""
        if self._s1 is None:
            return
        if self.stats_n < 1:
            raise ValueError("no samples observed: call observe() over the training pass first")
        inv_n = 1.0 / self.stats_n
        mean = self._s1 * inv_n
        var = self._s2 * inv_n
        var -= mean * mean
        std = np.sqrt(np.clip(var, 0.0, 1e30))
        self._set_scaling(mean, std)
        self._s1 = self._s2 = None

    def standardised(self, u=None):
        """x = (u - mean) / std of the current (or given) codes, in the scratch buffer."""
        x = self._x
        x[:] = self._u if u is None else u
        x *= 128.0
        x -= self._mu
        x *= self._sc
        x *= _X_UNIT
        return x

    # ----- per-sample API -----

    def partial_logits(self, counts):
        """This node's share of the logits for one sample: W_i x_i (+ b on the owner)."""
        if self._s1 is not None:
            raise ValueError("local statistics not fixed yet: finish_stats() after the "
                             "statistics pass")
        self.codes(counts)
        p = np.dot(self._W, self.standardised())
        if self.int_weights:
            p *= self.w_scale
        if self.owns_bias:
            p += self._b
        return p

    def apply(self, z, label, counts=None, codes=None):
        """Add one sample's gradient to the batch: ``z`` the summed logits (C floats, the same
        on every node), ``label`` 0..C-1, the sample as ``counts`` or as ``codes`` (a copy of
        what `codes` returned for it: half the bytes to keep while a sample awaits its
        decision); default: the last `partial_logits` call's. Bad input raises ValueError,
        state unchanged."""
        C = self.n_classes
        label = self._check_label(label)
        zz = self._check_logits(z)
        if self._U is None:
            raise ValueError("the dual solver trains with store()/gram()/solve(), not apply()")
        if self._s1 is not None:
            raise ValueError("local statistics not fixed yet: finish_stats() after the "
                             "statistics pass")
        if self.k >= self.batch:
            raise ValueError("batch of %d samples is full: call step() first" % self.batch)
        if counts is not None:
            self.codes(counts)
        elif codes is not None:
            if len(codes) != self.n_features:
                raise ValueError("%d codes for a head of %d features; the slice and head come "
                                 "from different plans" % (len(codes), self.n_features))
            self._u[:] = codes
            self._have_u = True
        elif not self._have_u:
            raise ValueError("no sample features: call partial_logits(counts) first or pass "
                             "counts")
        g = self._g
        g[:] = zz
        if self.mode == "gradient":
            g -= np.max(g)
            e = np.exp(g)
            g[:] = e / np.sum(e)
            g -= self.smooth / C
            g[label] -= 1.0 - self.smooth
        else:  # squared loss to +-1 targets
            g += 1.0
            g[label] -= 2.0
        self._G[:, self.k] = g
        self._U[self.k, :] = self._u
        self.k += 1
        self.seen += 1

    def _check_label(self, label):
        try:
            lab = int(label)
        except (TypeError, ValueError):
            raise ValueError("label %r is not an integer class index" % (label,)) from None
        if lab != label or not 0 <= lab < self.n_classes:
            raise ValueError("label %r outside 0..%d: the plan has %d classes"
                             % (label, self.n_classes - 1, self.n_classes))
        return lab

    def _check_logits(self, z):
        if len(z) != self.n_classes:
            raise ValueError("%d logits for a plan of %d classes: the fleet disagrees on the "
                             "plan" % (len(z), self.n_classes))
        zz = self._zbuf
        zz[:] = z if not isinstance(z, (list, tuple)) else np.array(z, dtype=xp.float_)
        if not _finite(zz):
            raise ValueError("summed logits contain NaN or inf (a corrupt partial-logit row?); "
                             "sample not applied")
        return zz

    def lr_at(self, t):
        """Learning rate of step t (0-based) under the schedule."""
        if self.schedule == "constant":
            return self.lr
        f = min(t, self.steps) / self.steps
        if self.schedule == "linear":
            return self.lr * (1.0 - f)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * f))

    def step(self):
        """End of a batch: one optimizer update from the samples applied since the last
        step (mean gradient). Returns False when the batch was empty."""
        if self._U is None:
            raise ValueError("the dual solver has no optimizer steps: use solve()")
        k = self.k
        if k == 0:
            return False
        lr = self.lr_at(self.t)
        if self.optimizer == "adam":
            t1 = self.t + 1
            lr = lr * math.sqrt(1.0 - self.b2 ** t1) / (1.0 - self.b1 ** t1)
        inv_k = 1.0 / k
        U, G = self._U, self._G
        for r in range(self.n_classes):
            gr = G[r]
            # mean over the batch of g_r x: x is affine in the codes, so one dot product
            ghat = np.dot(gr, U)
            ghat *= 128.0
            ghat -= self._mu * float(np.sum(gr))
            ghat *= self._sc
            ghat *= _X_UNIT * inv_k
            if self.l2:
                w = self._W[r] * (self.l2 * (self.w_scale if self.int_weights else 1.0))
                ghat += w
            if self.optimizer == "sgd":
                self._update_row(r, ghat, lr)
            elif self.optimizer == "momentum":
                m = self._moment(self._m, self._ms, r, TABLE_S)
                m *= self.mom
                m += ghat
                self._update_row(r, m, lr)
                self._keep(self._m, self._ms, r, m, MIDS_S)
            else:
                m = self._moment(self._m, self._ms, r, TABLE_S)
                m *= self.b1
                m += ghat * (1.0 - self.b1)
                v = self._moment(self._v, self._vs, r, TABLE_U)  # sqrt(v)
                v *= v
                v *= self.b2
                ghat *= ghat
                ghat *= 1.0 - self.b2
                v += ghat
                v = np.sqrt(v)
                upd = v + self.eps
                upd = m / upd
                self._update_row(r, upd, lr)
                self._keep(self._m, self._ms, r, m, MIDS_S)
                self._keep(self._v, self._vs, r, v, MIDS_U)
        if self.owns_bias:
            gb = np.sum(G, axis=1) * inv_k
            if self.optimizer == "sgd":
                self._b -= gb * lr
            elif self.optimizer == "momentum":
                self._bm *= self.mom
                self._bm += gb
                self._b -= self._bm * lr
            else:
                self._bm *= self.b1
                self._bm += gb * (1.0 - self.b1)
                self._bv *= self.b2
                self._bv += gb * gb * (1.0 - self.b2)
                self._b -= self._bm / (np.sqrt(self._bv) + self.eps) * lr
        G[:] = 0.0
        self.k = 0
        self.t += 1
        return True

    def _moment(self, store, scales, r, table):
        """Row r of a moment as floats (decoded from its 8-bit codes, or copied)."""
        if not self.q_moments:
            return store[r].copy()
        v = np.take(table, store[r])
        self._blocks(v, scales[r])
        return v

    def _keep(self, store, scales, r, v, mids):
        """Store row r of a moment (``v`` is overwritten when encoding)."""
        if not self.q_moments:
            store[r] = v
            return
        blk = self._blk
        self._absmax(v, blk)
        scales[r] = blk
        inv = 1.0 / (blk + _TINY)
        self._blocks(v, inv)
        c = self._code
        c[:] = 0
        for s in _STEPS:  # binary search: code = number of midpoints below v (<= 255)
            th = np.take(mids, c + (s - 1))
            c += np.array(v > th, dtype=xp.uint8) * s
        store[r] = c

    def _absmax(self, v, out):
        nk = self._nk
        first = True
        for off, nb in self._segs:
            m = np.max(abs(v[off:off + nk * nb].reshape((nk, nb))), axis=1)
            if first:
                out[:] = m
                first = False
            else:
                out[:] = np.maximum(out, m)

    def _blocks(self, v, factors):
        """Multiply each (kernel) block of row ``v`` by its factor, in place."""
        nk = self._nk
        f = factors.reshape((nk, 1))
        for off, nb in self._segs:
            seg = v[off:off + nk * nb].reshape((nk, nb))
            seg *= f

    def _update_row(self, r, upd, lr):
        """W[r] -= lr * upd (int16 weights: rounded to the nearest step, clipped)."""
        if not self.int_weights:
            self._W[r] -= upd * lr
            return
        d = upd * (lr / self.w_scale)
        d += 0.5
        nw = np.floor(d)
        nw *= -1.0
        nw += self._W[r]  # not W - d: ulab 6.12 computes int16 - float as if unsigned
        if np.max(abs(nw)) > 32767:
            self.saturated += 1
            nw = np.clip(nw, -32767, 32767)
        self._W[r] = nw

    # ----- wire -----

    def pack(self, row):
        """A partial-logit row as bytes: C float32, or C int16 codes of ``logit_scale``
        (values beyond +-32767 codes are clipped and counted in ``clipped``)."""
        if self.wire == "int16" and np.max(abs(row)) > 32767 * self.logit_scale:
            self.clipped += 1
        return pack(row, self.wire, self.logit_scale)

    def unpack(self, data):
        """Bytes from `pack` back to C floats; wrong size or NaN raise ValueError."""
        return unpack(data, self.n_classes, self.wire, self.logit_scale)

    def logit_sum(self):
        """A `LogitSum` for this fleet's rows."""
        return LogitSum(self.nodes, self.n_classes, self.wire, self.logit_scale)

    # ----- ridge, closed form in dual -----

    def store(self, counts, label):
        """Dual solver, the one pass: keep this sample's codes and label."""
        if self._store is None:
            raise ValueError("store() is for solver='dual'")
        lab = self._check_label(label)
        j = self.n_stored
        if j >= self.n_train:
            raise ValueError("already stored %d samples, the plan's n_train" % j)
        self._store[j, :] = self.codes(counts)
        self._labels[j] = lab
        self.n_stored = j + 1

    def _stats_from_store(self):
        if self._s1 is None:
            return
        for j in range(self.n_stored):
            self.observe_codes(self._store[j])
        self.finish_stats()

    def observe_codes(self, u):
        x = self._x
        x[:] = u
        self._s1 += x
        x *= x
        self._s2 += x
        self.stats_n += 1

    def gram(self):
        """This node's contribution to K = sum_i X_i X_i^T (centred, standardised features)
        as exact integers of 2**-shift, upper triangle by rows, two planes (uint16 low,
        int16 high): 4 bytes per entry. Integer sums are exact in any order, so every node
        ends with the same K."""
        n = self.n_train
        if self.n_stored != n:
            raise ValueError("stored %d of %d training samples; gram() needs all"
                             % (self.n_stored, n))
        self._stats_from_store()
        U = self._store
        mu = self._mu
        q = np.zeros(n * (n + 1) // 2, dtype=xp.float_)
        scale = 2.0 ** self._gram_shift
        o = 0
        for j in range(n):
            w = self.standardised(U[j])
            w *= self._sc  # K[j, k] = X_unit * (128 u_k - mu) . (x_j * sc)
            a = np.dot(U[j:], w)
            a *= 128.0
            a -= float(np.dot(mu, w))
            a *= _X_UNIT * scale
            a += 0.5
            q[o:o + n - j] = np.floor(a)
            o += n - j
        hi = np.floor(q / 65536.0)
        lo = q - hi * 65536.0
        return bytes(np.array(lo, dtype=xp.uint16).tobytes()) + \
            bytes(np.array(hi, dtype=xp.int16).tobytes())

    def add_gram(self, node, data):
        """Add node ``node``'s `gram` bytes (each node's once, own included)."""
        if self._gsum is None:
            raise ValueError("add_gram() is for solver='dual'")
        m = len(self._gsum)
        if len(data) != 4 * m:
            raise ValueError("Gram contribution of %d bytes, expected %d: the nodes run "
                             "different plans" % (len(data), 4 * m))
        if not 0 <= node < self.nodes:
            raise ValueError("node %d outside 0..%d" % (node, self.nodes - 1))
        if self._grams >> node & 1:
            raise ValueError("node %d's Gram contribution was already added" % node)
        lo = np.frombuffer(data[:2 * m], dtype=xp.uint16)
        hi = np.frombuffer(data[2 * m:], dtype=xp.int16)
        self._gsum += lo
        self._gsum += hi * 65536.0
        self._grams |= 1 << node

    def solve(self):
        """Every node, once all Gram contributions are in: lambda by leave-one-out over the
        grid (as RidgeClassifierCV), A = (K + lambda I)^-1 Y_c, then W_i = X_i^T A and (owner)
        b = mean of the +-1 targets. Returns lambda."""
        n, C = self.n_train, self.n_classes
        if self._grams != (1 << self.nodes) - 1:
            raise ValueError("Gram contributions missing from nodes %s"
                             % [i for i in range(self.nodes) if not self._grams >> i & 1])
        K = np.zeros((n, n), dtype=xp.float_)
        inv = 2.0 ** -self._gram_shift
        o = 0
        for j in range(n):
            row = self._gsum[o:o + n - j] * inv
            K[j, j:] = row
            K[j:, j] = row
            o += n - j
        Y = np.zeros((n, C), dtype=xp.float_)
        Y -= 1.0
        for j in range(n):
            Y[j, int(self._labels[j])] = 1.0
        ybar = np.sum(Y, axis=0) / n
        Y -= ybar
        evals, Q = _eigh(K)
        del K
        # the eigenvector closest to the constant one is the intercept's: not regularised
        ones = np.sum(Q, axis=0)
        idim = int(np.argmax(abs(ones)))
        QtY = np.dot(Q.transpose(), Y)
        Q2 = Q * Q
        best, best_err = None, None
        for lam in self.lambdas:
            w = 1.0 / (evals + lam)
            w[idim] = 0.0
            diag = np.dot(Q2, w)
            A = np.dot(Q, QtY * w.reshape((n, 1))) / diag.reshape((n, 1))
            err = float(np.sum(A * A))
            if best_err is None or err < best_err:
                best, best_err = lam, err
        del Q2
        w = 1.0 / (evals + best)
        w[idim] = 0.0
        A = np.dot(Q, QtY * w.reshape((n, 1)))  # (n, C)
        At = A.transpose()
        for r in range(C):
            a = At[r]
            wr = np.dot(a, self._store)
            wr *= 128.0
            wr -= self._mu * float(np.sum(a))
            wr *= self._sc
            wr *= _X_UNIT
            if self.int_weights:
                wr *= 1.0 / self.w_scale
                wr += 0.5
                wr = np.floor(wr)
                if np.max(abs(wr)) > 32767:
                    self.saturated += 1
                    wr = np.clip(wr, -32767, 32767)
            self._W[r] = wr
        if self.owns_bias:
            self._b[:] = ybar
        self.lam = best
        return best

    def release_store(self):
        """Free the dual solver's training store once solved (keeps W and b)."""
        self._store = self._labels = self._gsum = None

    # ----- state -----

    @property
    def weights(self):
        """W_i as floats (C x F_i)."""
        if self.int_weights:
            return self._W * self.w_scale
        return self._W.copy()

    @property
    def bias(self):
        return self._b.copy()

    def _arrays(self):
        names = ("_W", "_b", "_mu", "_sc", "_s1", "_s2", "_m", "_ms", "_v", "_vs", "_bm",
                 "_bv", "_U", "_G", "_store", "_labels", "_gsum")
        return [(nm, getattr(self, nm)) for nm in names if getattr(self, nm) is not None]

    def save(self):
        """The head's whole state as bytes (weights, optimizer, batch in flight, counters),
        tagged with the plan's fingerprint. `checkpoint.save` writes it atomically."""
        arrays = self._arrays()
        meta = {"fp": self.fingerprint, "node": self.node, "t": self.t, "k": self.k,
                "seen": self.seen, "saturated": self.saturated, "stats_n": self.stats_n,
                "n_stored": self.n_stored, "grams": self.grams_bitmap(), "lam": self.lam,
                "have_u": self._have_u,
                "arrays": [[nm, a.itemsize, len(a.tobytes())] for nm, a in arrays]}
        parts = [json.dumps(meta).encode(), b"\n", bytes(self._u.tobytes())]
        for _, a in arrays:
            parts.append(bytes(a.tobytes()))
        return b"".join(parts)

    def grams_bitmap(self):
        return self._grams

    def load(self, body):
        """Put back a state from `save`. A state of another plan or a damaged one raises
        ValueError and leaves this head unchanged."""
        nl = body.find(b"\n")
        try:
            meta = json.loads(body[:nl])
            fp = meta["fp"]
            specs = meta["arrays"]
        except (ValueError, KeyError, TypeError):
            raise ValueError("not a head checkpoint (unreadable header)") from None
        if fp != self.fingerprint:
            raise ValueError("checkpoint was written for plan %s, this node runs plan %s: it "
                             "belongs to another plan or node" % (fp[:12], self.fingerprint[:12]))
        F, n = self.n_features, self.n_train
        # arrays a checkpoint may hold beyond this head's current ones, with their shapes
        optional = {"_s1": (F,), "_s2": (F,)} if self.scaling == "local" else {}
        if self.solver == "dual":
            optional.update({"_store": (n, F), "_labels": (n,), "_gsum": (n * (n + 1) // 2,)})
        mine = dict(self._arrays())
        names = [sp[0] for sp in specs]
        for nm in mine:
            if nm not in names and nm not in optional:
                raise ValueError("checkpoint lacks %s: another head configuration" % nm)
        o = nl + 1
        staged = [("_u", (F,), np.frombuffer(body[o:o + F], dtype=xp.uint8))]
        o += F
        for nm, isz, nbytes in specs:
            if nm in mine:
                shape = mine[nm].shape
                dt = mine[nm].dtype
            elif nm in optional:
                shape = optional[nm]
                dt = xp.uint8 if nm in ("_store", "_labels") else xp.float_
            else:
                raise ValueError("checkpoint holds %s, which this head does not have: "
                                 "another head configuration" % nm)
            raw = body[o:o + nbytes]
            if len(raw) != nbytes:
                raise ValueError("checkpoint is truncated")
            o += nbytes
            size = 1
            for d in shape:
                size *= d
            staged.append((nm, shape, _from_bytes(raw, isz, dt, size)))
        if o != len(body):
            raise ValueError("checkpoint has %d stray bytes" % (len(body) - o))
        # everything checked: now change state
        for nm in optional:
            if nm not in names:
                setattr(self, nm, None)
        for nm, shape, arr in staged:
            cur = getattr(self, nm, None)
            if cur is None:
                cur = np.zeros(shape, dtype=arr.dtype)
                setattr(self, nm, cur)
            cur[:] = arr.reshape(shape) if len(shape) == 2 else arr
        self.t, self.k, self.seen = meta["t"], meta["k"], meta["seen"]
        self.saturated, self.stats_n = meta["saturated"], meta["stats_n"]
        self.n_stored, self._grams, self.lam = meta["n_stored"], meta["grams"], meta["lam"]
        self._have_u = meta["have_u"]

    def state_bytes(self, float_bytes=4):
        """Bytes held in this head's arrays, with floats of ``float_bytes`` (4 on boards,
        8 in the WebAssembly build): a dict by array name, for memory reports."""
        out = {}
        for nm in ("_u", "_x", "_code", "_blk", "_g", "_zbuf", "_den"):
            a = getattr(self, nm, None)
            if a is not None:
                out[nm] = _nbytes(a, float_bytes)
        for nm, a in self._arrays():
            out[nm] = _nbytes(a, float_bytes)
        return out


def _nbytes(a, float_bytes):
    return a.size * (float_bytes if a.dtype == xp.float_ else a.itemsize)


def _eigh(K):
    """Eigenvalues and orthonormal eigenvectors (columns) of a symmetric matrix: numpy's
    eigh on CPython, ulab's Jacobi eig on the board."""
    f = getattr(np.linalg, "eigh", None)
    return f(K) if f is not None else np.linalg.eig(K)


def _from_bytes(raw, itemsize, dtype, size):
    """A 1-D array from checkpoint bytes, converting the float width when the checkpoint
    came from a runtime with other floats (float32 boards, float64 elsewhere)."""
    if dtype == xp.float_ and itemsize != np.zeros(1, dtype=xp.float_).itemsize:
        fmt = "<%d%s" % (len(raw) // itemsize, "f" if itemsize == 4 else "d")
        arr = np.array(struct.unpack(fmt, raw), dtype=xp.float_)
    else:
        arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != size:
        raise ValueError("checkpoint array of %d values where this head has %d: another plan"
                         % (arr.size, size))
    return arr


def _code_of_zero(mids):
    c = 0
    while c < len(mids) and mids[c] < 0.0:
        c += 1
    return c


def _gram_shift(n, total_features):
    """Power of two making |K entries| * 2**shift <= _GRAM_BOUND: sum_j x_jf^2 = n for a
    standardised feature, so |K_jk| <= n F."""
    bound = n * total_features
    s = 0
    while bound * 2.0 ** s > _GRAM_BOUND:
        s -= 1
    while bound * 2.0 ** (s + 1) <= _GRAM_BOUND:
        s += 1
    return s


def _fingerprint(plan, cfg, F):
    """Hex digest naming the plan a checkpoint belongs to (slice, node, head options)."""
    import hashlib

    feats = plan["features"]
    parts = [plan.get("node", 0), plan.get("nodes", 1), plan["classes"], feats["length"],
             feats["dilations"], feats["kernels"], feats["biases_per_dilation"],
             len(feats["biases"]), F]
    for k in ("mode", "solver", "optimizer", "batch", "weights", "moments", "scaling",
              "bias_node", "n_train", "w_scale", "lr", "steps"):
        v = cfg.get(k)
        parts.append("%.6g" % v if isinstance(v, float) else v)
    h = hashlib.sha256(repr(parts).encode())
    b = bytearray(2 * len(feats["biases"]))
    for i, v in enumerate(feats["biases"]):
        struct.pack_into("<h", b, 2 * i, v)
    h.update(b)
    return "".join("%02x" % c for c in h.digest())


# ----- partial-logit rows on the air -----


def pack(row, wire="float32", logit_scale=1.0 / 256):
    """C floats -> bytes: little-endian float32, or int16 codes round(v / logit_scale)
    clipped to +-32767 (half the bytes)."""
    if isinstance(row, (list, tuple)):
        row = np.array(row, dtype=xp.float_)
    if not _finite(row):
        raise ValueError("partial logits contain NaN or inf; not sent")
    if wire == "float32":
        return struct.pack("<%df" % len(row), *[float(v) for v in row])
    q = row * (1.0 / logit_scale)
    q += 0.5
    q = np.clip(np.floor(q), -32767, 32767)
    return bytes(np.array(q, dtype=xp.int16).tobytes())


def unpack(data, n_classes, wire="float32", logit_scale=1.0 / 256):
    """Bytes of one partial-logit row -> C floats."""
    size = 4 if wire == "float32" else 2
    if len(data) != size * n_classes:
        raise ValueError("partial-logit row of %d bytes, expected %d (%d classes, %s): the "
                         "node runs another plan" % (len(data), size * n_classes, n_classes,
                                                     wire))
    if wire == "float32":
        row = np.array(struct.unpack("<%df" % n_classes, data), dtype=xp.float_)
        if not _finite(row):
            raise ValueError("partial-logit row contains NaN or inf")
        return row
    return np.frombuffer(data, dtype=xp.int16) * logit_scale


class LogitSum:
    """The summed logits of one sample from every node's row, identical on every node
    whatever the order rows arrive in: rows are kept per node and summed in node order
    (int16 codes are summed as exact integers)."""

    def __init__(self, n_nodes, n_classes, wire="float32", logit_scale=1.0 / 256):
        if wire not in WIRES:
            raise ValueError("wire %r: choose one of %s" % (wire, ", ".join(WIRES)))
        self.n_nodes = n_nodes
        self.n_classes = n_classes
        self.wire = wire
        self.logit_scale = logit_scale
        self._rows = np.zeros((n_nodes, n_classes), dtype=xp.float_)
        self.received = 0

    def reset(self):
        self.received = 0

    def add(self, node, data):
        """Node ``node``'s row (bytes from `pack`); a duplicate or malformed row raises."""
        if not 0 <= node < self.n_nodes:
            raise ValueError("node %d outside 0..%d" % (node, self.n_nodes - 1))
        if self.received >> node & 1:
            raise ValueError("node %d's row already added for this sample" % node)
        if self.wire == "float32":
            self._rows[node] = unpack(data, self.n_classes, "float32")
        else:
            unpack(data, self.n_classes, "int16")  # size check
            self._rows[node] = np.frombuffer(data, dtype=xp.int16)
        self.received |= 1 << node

    @property
    def complete(self):
        return self.received == (1 << self.n_nodes) - 1

    def missing(self):
        return [i for i in range(self.n_nodes) if not self.received >> i & 1]

    def total(self):
        """z: the rows summed in node order (raises if any is missing)."""
        if not self.complete:
            raise ValueError("partial logits missing from nodes %s" % self.missing())
        z = self._rows[0].copy()
        for i in range(1, self.n_nodes):
            z += self._rows[i]
        if self.wire == "int16":
            z *= self.logit_scale
        return z
