"""Ridge in closed form, in dual, for `head.Head` (``mode="ridge"``, ``solver="dual"``).

Imported only by a head whose plan asks for the dual solve: for training sets that fit RAM,
every node `store`s each training sample's codes in one pass, sends its `gram` contribution
(bytes), adds every node's (`add_gram`) and `solve`s; the plan's ``dual_max`` says up to
which n a board can do this. A dual head trains with these functions (``head_dual.store(h,
counts, label)``, ...), not with `Head.apply` and `Head.step`; a fleet node never loads them.
"""

from . import xp
from ._compat import const
from .head import _X_UNIT
from .xp import np

_GRAM_BOUND = const(4194304)  # 2**22: per-entry bound of integer Gram sums (float32 exact)


def alloc(h):
    """The training store of head ``h`` (n_train samples of its F codes, labels, Gram sum)."""
    if h.n_train < 1 or h.total_features < 1:
        raise ValueError("the dual solve needs n_train and total_features in the head "
                         "section; re-run `rocknet plan`")
    n = h.n_train
    h._store = np.zeros((n, h.n_features), dtype=xp.uint8)
    h._labels = np.zeros(n, dtype=xp.uint8)
    h._gsum = np.zeros(n * (n + 1) // 2, dtype=xp.float_)
    h._gram_shift = _gram_shift(n, h.total_features)


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


def store(h, counts, label):
    if h._store is None:
        raise ValueError("store() is for solver='dual'")
    lab = h._check_label(label)
    j = h.n_stored
    if j >= h.n_train:
        raise ValueError("already stored %d samples, the plan's n_train" % j)
    h._store[j, :] = h.codes(counts)
    h._labels[j] = lab
    h.n_stored = j + 1


def gram(h):
    n = h.n_train
    if h.n_stored != n:
        raise ValueError("stored %d of %d training samples; gram() needs all"
                         % (h.n_stored, n))
    if h._s1 is not None:  # scaling="local": the statistics come from the store
        from .head_init import finish_stats, observe_codes

        for j in range(h.n_stored):
            observe_codes(h, h._store[j])
        finish_stats(h)
    U = h._store
    mu = h._mu
    q = np.zeros(n * (n + 1) // 2, dtype=xp.float_)
    scale = 2.0 ** h._gram_shift
    o = 0
    w = np.zeros(h.n_features, dtype=xp.float_)
    for j in range(n):
        h.standardised(U[j], w)
        w *= h._sc  # K[j, k] = X_unit * (128 u_k - mu) . (x_j * sc)
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


def add_gram(h, node, data):
    if h._gsum is None:
        raise ValueError("add_gram() is for solver='dual'")
    m = len(h._gsum)
    if len(data) != 4 * m:
        raise ValueError("Gram contribution of %d bytes, expected %d: the nodes run "
                         "different plans" % (len(data), 4 * m))
    if not 0 <= node < h.nodes:
        raise ValueError("node %d outside 0..%d" % (node, h.nodes - 1))
    if h._grams >> node & 1:
        raise ValueError("node %d's Gram contribution was already added" % node)
    lo = np.frombuffer(data[:2 * m], dtype=xp.uint16)
    hi = np.frombuffer(data[2 * m:], dtype=xp.int16)
    h._gsum += lo
    h._gsum += hi * 65536.0
    h._grams |= 1 << node


def solve(h):
    n, C = h.n_train, h.n_classes
    if h._grams != (1 << h.nodes) - 1:
        raise ValueError("Gram contributions missing from nodes %s"
                         % [i for i in range(h.nodes) if not h._grams >> i & 1])
    K = np.zeros((n, n), dtype=xp.float_)
    inv = 2.0 ** -h._gram_shift
    o = 0
    for j in range(n):
        row = h._gsum[o:o + n - j] * inv
        K[j, j:] = row
        K[j:, j] = row
        o += n - j
    Y = np.zeros((n, C), dtype=xp.float_)
    Y -= 1.0
    for j in range(n):
        Y[j, int(h._labels[j])] = 1.0
    ybar = np.sum(Y, axis=0) / n
    Y -= ybar
    eigh = getattr(np.linalg, "eigh", None)  # numpy's; ulab has a Jacobi eig
    evals, Q = eigh(K) if eigh is not None else np.linalg.eig(K)
    del K
    # the eigenvector closest to the constant one is the intercept's: not regularised
    ones = np.sum(Q, axis=0)
    idim = int(np.argmax(abs(ones)))
    QtY = np.dot(Q.transpose(), Y)
    Q2 = Q * Q
    best, best_err = None, None
    for lam in h.lambdas:
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
        wr = np.dot(a, h._store)
        wr *= 128.0
        wr -= h._mu * float(np.sum(a))
        wr *= h._sc
        wr *= _X_UNIT
        if h.int_weights:
            wr *= 1.0 / h.w_scale
            wr += 0.5
            wr = np.floor(wr)
            if np.max(abs(wr)) > 32767:
                h.saturated += 1
                wr = np.clip(wr, -32767, 32767)
        h._W[r] = wr
    if h.owns_bias:
        h._b[:] = ybar
    h.lam = best
    return best


def release_store(h):
    """Free the dual solver's training store once solved (keeps W and b)."""
    h._store = h._labels = h._gsum = None
