"""`head.Head`'s constructor: the plan's head options checked, the feature layout, the
fixed-point scaling, the plan fingerprint and the arrays. Here so that its code leaves a
board's heap with the rest of the set-up (`rocknet.start`); `Head(plan)` imports it. The
local statistics pass (``scaling="local"``: `observe` over the training samples, then
`finish_stats`) is set-up code too.
"""

import struct

from . import xp
from ._compat import const
from .logits import WIRES
from .minirocket_init import denominators, slots
from .xp import np

_MU_ONE = const(128)  # mean fixed point: 1/128 code
_SC_ONE = const(4096)  # 1/std fixed point: 1/4096 per code
_SC_MAX = const(65535)

_MODES = ("gradient", "ridge")
_SOLVERS = ("sgd", "dual")
_OPTIMIZERS = ("sgd", "momentum", "adam")
_SCHEDULES = ("cosine", "linear", "constant")
_SCALINGS = ("plan", "local")
_LAMBDAS = (1e-3, 4.6415888336127775e-3, 2.1544346900318832e-2, 0.1, 0.46415888336127775,
           2.154434690031882, 10.0, 46.41588833612773, 215.44346900318823, 1000.0)

# The messages of `head._refuse`, by reason: each names the fix.
REFUSALS = {
    "counts_size": "%d counts for a head of %d features; the slice and head come from "
                   "different plans",
    "codes_size": "%d codes for a head of %d features; the slice and head come from "
                  "different plans",
    "stats_open": "local statistics not fixed yet: head_init.finish_stats(head) after the "
                  "statistics pass",
    "dual_apply": "the dual solver trains with head_dual.store()/gram()/solve(), not apply()",
    "dual_step": "the dual solver has no optimizer steps: use head_dual.solve()",
    "batch_full": "batch of %d samples is full: call step() first",
    "no_sample": "no sample features: call partial_logits(counts) first or pass counts",
    "label_type": "label %r is not an integer class index",
    "label_range": "label %r outside 0..%d: the plan has %d classes",
    "logits_size": "%d logits for a plan of %d classes: the fleet disagrees on the plan",
    "logits_nonfinite": "summed logits contain NaN or inf (a corrupt partial-logit row?); "
                        "sample not applied",
}


def _cfg(head, key, default, choices=None):
    v = head.get(key, default)
    if choices is not None and v not in choices:
        raise ValueError("head option %s=%r: choose one of %s; re-run `rocknet plan`"
                         % (key, v, ", ".join(choices)))
    return v


def init(self, plan, head=None):
    """`head.Head.__init__` (see `head.Head`)."""
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
    self.mode = _cfg(cfg, "mode", "gradient", _MODES)
    self.solver = _cfg(cfg, "solver", "sgd", _SOLVERS)
    if self.solver == "dual" and self.mode != "ridge":
        raise ValueError("solver 'dual' is ridge's closed form: use mode='ridge'")
    self.optimizer = _cfg(cfg, "optimizer", "sgd", _OPTIMIZERS)
    self.schedule = _cfg(cfg, "schedule", "cosine", _SCHEDULES)
    self.scaling = _cfg(cfg, "scaling", "plan", _SCALINGS)
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
    # the dual solver's regularisation grid (`head_dual.solve`); no other head reads it
    self.lambdas = ([float(v) for v in cfg.get("lambdas", _LAMBDAS)]
                    if self.solver == "dual" else None)
    self.total_features = int(cfg.get("total_features", 0))
    _layout(self, feats)
    F = self.n_features
    self.fingerprint = _fingerprint(plan, cfg, F)

    # Counters (all checkpointed).
    self.t = 0  # optimizer steps taken
    self.k = 0  # samples in the current batch
    self.seen = 0  # samples applied
    self.saturated = 0  # weight rows that hit the int16 range (0 = w_scale is fine)
    self.clipped = 0  # int16 partial-logit rows clipped (0 = logit_scale is fine)
    self.lam = None  # lambda the dual solve chose

    # Features: codes of the current sample, standardisation (the float scratch: `Head`).
    self._u = np.zeros(F, dtype=xp.uint8)
    self._have_u = False
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
        set_scaling(self, np.array(mean, dtype=xp.float_), np.array(std, dtype=xp.float_))
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
    self._opt = None  # head_moments for momentum and Adam
    self.n_stored = 0
    self._grams = 0  # bitmap of nodes whose Gram contribution was added
    if self.solver == "dual":
        from . import head_dual

        head_dual.alloc(self)
    else:
        self._U = np.zeros((self.batch, F), dtype=xp.uint8)
        self._G = np.zeros((C, self.batch), dtype=xp.float_)
        if self.optimizer != "sgd":  # plain SGD keeps no optimizer state
            from . import head_moments

            self._opt = head_moments
            head_moments.alloc(self)
    if self._opt is None:
        self._segs = None  # only the moment codes' blocks use them


def _layout(self, feats):
    """Per-dilation segments (offset, combinations, biases each, first block) of this node's
    feature order (dilation, kernel, bias); blocks are (class row, (dilation, kernel))."""
    dil = feats["dilations"]
    per = [int(n) for n in feats["biases_per_dilation"]]
    sl = slots(feats)
    segs = []
    f = 0
    blocks = 0
    for di in range(len(dil)):
        n, nb = sl[2 * di + 1] - sl[2 * di], per[di]
        if n and nb:
            segs.append((f, n, nb, blocks))
            blocks += n
        f += n * nb
    if blocks < 1:
        raise ValueError("this node has no kernels; re-run `rocknet plan` with fewer nodes")
    if f != len(feats["biases"]):
        raise ValueError("plan features do not add up; re-run `rocknet plan`")
    self._nk = blocks
    self._segs = segs
    self.n_features = f
    self._den = None
    den = denominators(feats)
    if int(np.max(den)) > 255:  # counts do not fit a byte: codes are the PPV in 1/255
        self._den = den


def set_scaling(self, mean, std):
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
    observe_codes(self, self.codes(counts))


def observe_codes(self, u):
    """One sample's codes into the sums of the local statistics pass."""
    x = np.array(u, dtype=xp.float_)  # set-up code: F floats for a while
    self._s1 += x
    x *= x
    self._s2 += x
    self.stats_n += 1


def finish_stats(self):
    """Fix mean and std from the observed samples (population std, as StandardScaler)."""
    if self._s1 is None:
        return
    if self.stats_n < 1:
        raise ValueError("no samples observed: call head_init.observe(head, counts) over the "
                         "training pass first")
    inv_n = 1.0 / self.stats_n
    mean = self._s1 * inv_n
    var = self._s2 * inv_n
    var -= mean * mean
    std = np.sqrt(np.clip(var, 0.0, 1e30))
    set_scaling(self, mean, std)
    self._s1 = self._s2 = None


def _fingerprint(plan, cfg, F):
    """Hex digest naming the plan a checkpoint belongs to (slice, node, head options)."""
    from ._compat import sha256

    feats = plan["features"]
    parts = [plan.get("node", 0), plan.get("nodes", 1), plan["classes"], feats["length"],
             feats["dilations"], feats["kernels"], feats.get("kernel_range"),
             feats["biases_per_dilation"], len(feats["biases"]), F]
    for k in ("mode", "solver", "optimizer", "batch", "weights", "moments", "scaling",
              "bias_node", "n_train", "w_scale", "lr", "steps"):
        v = cfg.get(k)
        parts.append("%.6g" % v if isinstance(v, float) else v)
    h = sha256(repr(parts).encode())
    b = bytearray(2 * len(feats["biases"]))
    for i, v in enumerate(feats["biases"]):
        struct.pack_into("<h", b, 2 * i, v)
    h.update(b)
    return "".join("%02x" % c for c in h.digest())
