"""One node's slice of the distributed linear head.

Node i holds the weight block W_i (C x F_i) for its feature slice; only partial logits cross
the air. Per training sample, in this order:

    row = head.partial_logits(counts)   # C floats: W_i x_i (+ b on the bias owner)
    data = logits.pack(row, ...)        # bytes on the air (float32 or int16 codes)
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
  for training sets that fit RAM (`head_dual`'s functions: `store` every sample in one
  pass, `gram` -> bytes, `add_gram` from every node, `solve`, `release_store`). The plan's
  ``dual_max`` says up to which n a board can do this.
- ``optimizer="sgd"`` (plain, no optimizer state), ``"momentum"`` (heavy ball) or
  ``"adam"``; mini-batches of ``batch``;
  learning-rate ``schedule`` "cosine", "linear" or "constant" over ``steps`` steps.

Features. A count c from the slice becomes an 8-bit code u: c itself when every counted
length is <= 255, else round(255 c / n) (the PPV in 1/255). The head standardises codes
itself, x = (u - mean) / std per feature, with mean and std from the plan (``scaling="plan"``)
or from its own statistics over one pass (``scaling="local"``: `head_init.observe` over the
training samples, then `head_init.finish_stats`; set-up code, like the pass).
Both are kept as 16-bit fixed point: mean in 1/128 code, 1/std in 1/4096 (capped at 16).

Compact state (bytes per weight, C x F_i weights): W int16 with the plan's fixed step
``w_scale`` (2); no optimizer state for plain SGD; momentum or Adam's first moment as 8-bit
"dynamic tree" codes (1); Adam's second moment as 8-bit codes of sqrt(v) on an unsigned
tree (1). The batch keeps the codes of its samples (B x F_i bytes) and their logit gradients
(B x C floats) instead of a float gradient accumulator. Moment codes are scaled per block of
one class row and one (dilation, kernel) combination (its features sit in one node whatever
the split), so the arithmetic is the same element by element for any number of nodes: N nodes
end with the model one node would train. FaceAll at 20 nodes (node 0: 506 features in 61
combinations, 14 classes, batch 8) holds about 23 KB of head arrays with SGD, 35 KB with
momentum, 45 KB with Adam (a float scale per class and combination and moment: 3.4 KB each;
float32 boards; `state_bytes` itemises them).

Code on demand: a node loads only what its plan's mode uses. This module is the core
(features, partial logits, the gradient, plain SGD with int16 weights); `head_moments`
(momentum, Adam and their 8-bit codes) is imported by a head built with those optimizers,
`head_dual` (the closed-form ridge) by a dual head, `head_state` (checkpoint bytes) by
`save` / `load` / `state_bytes`.

Every computation here has a numpy twin in ``rocknet_host.reference_head``.
"""

import math

from . import xp
from ._compat import const
from .logits import finite as _finite
from .xp import np

_X_UNIT = 1.0 / (128 * 4096)  # x = (128 u - mu_q) * sc_q * _X_UNIT (fixed point: head_init)
CHUNK = const(128)  # features standardised at a time: the float scratch ``_x`` is this long


def _refuse(reason, *args):
    """Raise the ValueError of a call the head refuses (bad input, or a call out of turn):
    its message, which names the fix, is ``head_init.REFUSALS[reason] % args``, kept with the
    set-up code so that only a refusal loads it (no board heap for the text meanwhile)."""
    from .head_init import REFUSALS

    raise ValueError(REFUSALS[reason] % args)


class Head:
    """One node's head, built from its node plan (the dict `store.load_plan` returns).

    ``plan`` needs ``node``, ``nodes``, ``classes`` (C), ``features`` (the slice section) and
    ``head`` (options, see the module docstring); ``head=`` overrides the latter.
    """

    def __init__(self, plan, head=None):
        from .head_init import init  # set-up code: dropped once the runner is built

        init(self, plan, head)
        self._x = np.zeros(min(self.n_features, CHUNK), dtype=xp.float_)  # partial_logits'

    # ----- features -----

    def codes(self, counts):
        """8-bit codes of one sample's PPV counts (uint16, slice order); kept as the current
        sample for `apply`."""
        if len(counts) != self.n_features:
            _refuse("counts_size", len(counts), self.n_features)
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

    def standardised(self, u, out, a=0):
        """x = (u - mean) / std of codes ``u`` (features a.. of this head), into ``out``."""
        b = a + len(out)
        out[:] = u
        out *= 128.0
        out -= self._mu[a:b]
        out *= self._sc[a:b]
        out *= _X_UNIT
        return out

    # ----- per-sample API -----

    def partial_logits(self, counts):
        """This node's share of the logits for one sample: W_i x_i (+ b on the owner)."""
        if self._s1 is not None:
            _refuse("stats_open")
        u = self.codes(counts)
        # CHUNK features at a time, so that the float scratch is not F long (on a board with
        # a FaceAll/20 slice that is 1.9 KB of heap less, for a few more calls into ulab)
        W, x = self._W, self._x
        F = self.n_features
        p = None
        for a in range(0, F, CHUNK):
            n = min(CHUNK, F - a)
            xa = x if n == len(x) else x[:n]
            d = np.dot(W[:, a:a + n] if n < F else W, self.standardised(u[a:a + n], xa, a))
            if p is None:
                p = d
            else:
                p += d
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
            _refuse("dual_apply")
        if self._s1 is not None:
            _refuse("stats_open")
        if self.k >= self.batch:
            _refuse("batch_full", self.batch)
        if counts is not None:
            self.codes(counts)
        elif codes is not None:
            if len(codes) != self.n_features:
                _refuse("codes_size", len(codes), self.n_features)
            self._u[:] = codes
            self._have_u = True
        elif not self._have_u:
            _refuse("no_sample")
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
            lab = None
        if lab is None:
            _refuse("label_type", label)
        if lab != label or not 0 <= lab < self.n_classes:
            _refuse("label_range", label, self.n_classes - 1, self.n_classes)
        return lab

    def _check_logits(self, z):
        if len(z) != self.n_classes:
            _refuse("logits_size", len(z), self.n_classes)
        zz = self._zbuf
        zz[:] = z if not isinstance(z, (list, tuple)) else np.array(z, dtype=xp.float_)
        if not _finite(zz):
            _refuse("logits_nonfinite")
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
            _refuse("dual_step")
        k = self.k
        if k == 0:
            return False
        opt = self._opt
        lr = self.lr_at(self.t)
        if opt is not None:
            lr = opt.step_lr(self, lr)
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
            if opt is None:
                self._update_row(r, ghat, lr)
            else:
                opt.update_row(self, r, ghat, lr)
        if self.owns_bias:
            gb = np.sum(G, axis=1) * inv_k
            if opt is None:
                self._b -= gb * lr
            else:
                opt.update_bias(self, gb, lr)
        G[:] = 0.0
        self.k = 0
        self.t += 1
        return True

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

    def save(self):
        """The head's whole state as bytes (weights, optimizer, batch in flight, counters),
        tagged with the plan's fingerprint (format: rocknet.head_state)."""
        return b"".join([bytes(p) for p in self.save_parts()])

    def save_parts(self):
        """`save`'s bytes as a list of bytes-like parts, the arrays' own buffers on a board
        (a checkpoint writes them one after the other instead of assembling them)."""
        from . import head_state

        return head_state.parts(self)

    def load(self, body):
        """Put back a state from `save`. A state of another plan or a damaged one raises
        ValueError and leaves this head unchanged."""
        from . import head_state

        head_state.load(self, body)

    def state_bytes(self, float_bytes=4):
        """Bytes held in this head's arrays, with floats of ``float_bytes`` (4 on boards,
        8 in the WebAssembly build): a dict by array name, for memory reports."""
        from . import head_state

        return head_state.state_bytes(self, float_bytes)
