"""`node.Node`'s constructor: the checks, the round geometry, the ring of undecided samples
and the agreement state, built from the plan's parts. Here so that its code leaves a board's
heap with the rest of the set-up (`rocknet.start`); `Node(...)` imports it.
"""

from . import xp
from .messages import Geometry
from .minirocket import Slice
from .xp import np


def init(self, node_id, n_nodes, features, head, n_classes, row_size, schedule, data,
         agreement, window, gone_after, pending, checkpoint_every, save, log, slice_,
         logit_scale, chain, keep):
    """`node.Node.__init__` (arguments as it documents them)."""
    if not 0 <= node_id < n_nodes:
        raise ValueError("node_id %d outside 0..%d" % (node_id, n_nodes - 1))
    if keep not in ("codes", "series"):
        raise ValueError("keep must be 'codes' or 'series', not %r: re-plan with `rocknet "
                         "plan --keep codes|series|auto`" % (keep,))
    if gone_after < 2:
        raise ValueError("gone_after must be >= 2 rounds")
    if pending is not None and (not isinstance(pending, int) or pending < window + 2):
        raise ValueError("a ring of %r undecided samples: it holds at least window + 2 = %d "
                         "(a decision comes 2 rounds after its sample at the earliest); "
                         "re-plan with `rocknet plan --pending auto`" % (pending, window + 2))
    hb = getattr(head, "batch", None)
    if isinstance(hb, int) and hb < schedule.batch:
        raise ValueError("the schedule's batch of %d exceeds the head's %d; build the "
                         "Schedule with batch=%d" % (schedule.batch, hb, hb))
    self.id = node_id
    self.n = n_nodes
    self.head = head
    self.schedule = schedule
    self.data = data or {}
    self.agreement = agreement
    self.window = window
    self.gone_after = gone_after
    self.checkpoint_every = checkpoint_every
    self.save = save
    self.slice = slice_ if slice_ is not None else Slice(features)
    # partial logits on air: float32, or int16 fixed point (value = code * logit_scale);
    # a head configured for int16 rows (rocknet.head's ``wire``) sets it by default
    if logit_scale is None and getattr(head, "wire", None) == "int16":
        logit_scale = head.logit_scale
    self.logit_scale = logit_scale
    self.logit_bytes = 4 if logit_scale is None else 2
    self.geo = Geometry(n_nodes, self.slice.length, n_classes, row_size, window,
                        self.logit_bytes)
    self.m = self.geo.m
    self.c = n_classes
    self._fmt = ("<%df" if logit_scale is None else "<%dh") % n_classes
    self._wire = "float32" if logit_scale is None else "int16"
    # Ring of undecided samples: codes (or series), label, phase, partial-logit rows by node.
    # A sample waits ~5 rounds for its decision in the common case (decided in round s+2,
    # relayed back to the leader in s+4). Overwriting an undecided sample is harmless when its
    # decision is a DROP (outages: nothing commits while a member is missing); only a
    # COMMIT of a lost sample desyncs the node.
    cap = pending if pending is not None else 2 * window + 4
    self.capacity = cap
    nf = self.slice.n_features
    # the sample being scored: a count is at most the series length, so a byte holds it
    # for series up to 255 values (half the bytes). Those counts are the head's codes
    # (`Head.codes`: no rescaling when every counted length is <= 255), so the slice counts
    # straight into the head's code buffer: one F_i buffer, not two
    if self.slice.length <= 255 and getattr(head, "_den", 0) is None \
            and len(head._u) == nf and head._u.dtype == xp.uint8:
        self._counts = head._u
    else:
        self._counts = np.zeros(nf, dtype=xp.uint8 if self.slice.length <= 255 else xp.uint16)
    # what a slot keeps of its training sample for head.apply: its head.codes (8-bit for
    # rocknet.head, F_i bytes), or with keep="series" its int8 series (L bytes, one bytearray
    # for the whole ring), transformed again into _counts when the sample is applied
    self.keep = keep
    self._series_kept = keep == "series"
    if self._series_kept:
        self._kept = bytearray(cap * self.slice.length)
    else:
        self._kept = [None] * cap
    self._slot_sample = [-1] * cap
    self._slot_label = [0] * cap
    self._slot_phase = [0] * cap
    # each slot's partial-logit rows (round s+1), one row per node, allocated once: ``_have``
    # bitmap of the nodes whose row is there, -1 = no control messages taken yet
    self._row_size = self.logit_bytes * n_classes
    self._rows = bytearray(cap * n_nodes * self._row_size)
    self._have = [-1] * cap
    self._own_logits = None  # (sample, bytes) to send next round
    # agreement state
    self.all_mask = (1 << n_nodes) - 1
    self.members = self.all_mask  # membership view (latest known decision)
    self.epoch = 0
    self.view_sample = -1  # sample of the decision the view comes from
    self._since = 0  # first sample of the current membership epoch
    self.entries = {}  # decision entries by last sample: (outcome, epoch, members, since,
    #                    back) deciding samples s-back..s (DROP for all but s)
    self.known = {}  # sample -> (outcome, epoch, members, since), expanded from entries
    self._joinwait = [0] * n_nodes  # rounds a member kept flagging JOIN (leader)
    self._deaf = [0] * n_nodes  # rounds a member's acks showed no other member (leader)
    self._confirmed = {}  # own decisions seen relayed back: sample -> True
    self._mine = {}  # decisions this node made and has not seen echoed: sample -> round
    self.applied_through = -1  # last sample processed (applied, dropped, or skipped)
    self.synced = True  # False: not applying (rebooted, desynced) until a decision adds us
    self._ack_next = 0  # ack bitmap for the next round's message
    # nodes whose control message of the last ended round this node decoded (OUT ones
    # included): the heard bitmap of the next round's message
    self.heard_last = 0
    self._votes = 0  # this round's votes for us as leader
    self._won = 0  # rounds we won the leader vote since evidence of a lower member
    self._won_refound = 0  # ... the refound vote since evidence of a member applying
    self._last_round = None
    self._round = -1  # round being ended
    self._sent = (None, None)  # (round, control message) of the last begin_round
    self._miss = [0] * n_nodes  # consecutive rounds each node's message was missing
    self._absent = [0] * n_nodes  # ... missing or flagging OUT (not applying)
    self._batch_applied = 0
    self._since_checkpoint = 0
    # the consistency digest (docs/protocol.md): a hash chain on the port's AES
    if chain is None:
        from ._compat import aes
        from .ccm import DIGEST_KEY, Chain

        chain = Chain(aes(DIGEST_KEY))
    self._chain = chain
    self.digest = bytes(16)
    self.log = log
    self.applied = []  # (kind, sample, ...) entries when log=True
    self.correct = 0
    self.evaluated = 0
    self.accuracy = []  # (epoch, correct, evaluated) at the end of each evaluation pass
    # the agreed class of each prediction-pass sample, allocated once (a dict grew by a few KB
    # every 100 rounds of the pass; FaceAll: 1,690 series): two to a byte when the classes fit
    # a nibble (0xF: none), else a byte each (0xFF: none)
    self._predict_from = schedule.epochs * schedule.period
    n = schedule.length - self._predict_from
    self._nibbles = n_classes < 16
    self.predictions = bytearray(b"\xff" * ((n + 1) // 2 if self._nibbles else n))
    self.stats = {"rounds": 0, "commit": 0, "drop": 0, "skipped": 0, "decided": 0,
                  "steps": 0, "desynced": 0, "conflicts": 0, "joined": 0, "removed": 0,
                  "checkpoints": 0, "series_missed": 0, "evicted": 0, "withdrawn": 0,
                  "refounds": 0, "series_bad": 0, "stale": 0, "faulty": 0,
                  "nonfinite": 0, "clipped": 0}
    self.faulty = 0  # nodes this node (as leader) removed for non-finite partial logits
    self.drop_why = {}  # reason -> samples this node (as leader) decided to DROP
