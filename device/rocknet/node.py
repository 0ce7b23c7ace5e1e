"""One node's whole behaviour, round by round (sans-I/O, like `mixer`): the RockNet pipeline
with an agreed outcome for every sample.

    node = Node(node_id=2, n_nodes=4, features=plan["features"], head=head, n_classes=3,
                row_size=60, schedule=Schedule([8, 8, 8, 8], [2, 2, 2, 2], batch=8),
                data={"train": [(series_bytes, label), ...], "eval": [...]})
    rows = node.begin_round(r)          # {row index: bytes} to contribute to round r
    ... the link floods round r ...
    node.end_round(r, decoded_rows)     # list (len node.m) of bytes or None

The node never touches a radio, clock or file: a caller (`rocknet.board.Runner`, tests) hands
rows in and out, and checkpoints leave through the injected ``save(body)`` callable.

The specification (pipeline, agreement, leaders, membership, faults, drop reasons, batches,
checkpoints, the consistency digest, the head interface, known limits) is docs/protocol.md.
"""

import json
import struct
from array import array

from . import xp
from ._compat import const
from ._compat import sha256 as _sha256
from .logits import pack as pack_logits
from .minirocket import Slice
from .mixer import mask_bits as _bits
from .xp import np

TRAIN = const(0)
EVAL = const(1)
PREDICT = const(2)
PHASES = ("train", "eval", "predict")

DROP = const(0)
COMMIT = const(1)

# control message flags
F_LOGITS = const(0x01)  # carries partial logits for sample r-1
F_OUT = const(0x02)  # a member (in its own view) that stopped applying: remove me
F_JOIN = const(0x04)  # not applying, wants to join: add me when my rows are complete

_SERIES_HEAD = const(2)  # label, phase
_ENTRY = const(13)  # sample u32, outcome u8, epoch u16, since u32, back u16 (+ members)


class Schedule:
    """The fixed sample order every node computes from the plan.

    ``train``, ``eval``, ``predict``: samples held per owner (list index = node id). Each phase
    goes round-robin over owners, each owner's samples in order. Sample s is, for s < epochs *
    period, training then evaluation of epoch s // period; then one prediction pass; then
    nothing (idle rounds). Batches of ``batch`` training samples, plus the remainder at the end
    of each epoch. ``gap`` idle samples follow every batch: time for the batch's decisions to
    reach every node, so the next samples are scored with the stepped weights everywhere
    (the node then refuses to score a sample before it applied the last batch end; see
    `Node`), which makes the fleet train exactly what one central model would.
    """

    def __init__(self, train, eval=None, predict=None, epochs=1, batch=128, gap=0):
        self.train = _Order(train)
        self.eval = _Order(eval or [])
        self.predict = _Order(predict or [])
        self.epochs = epochs
        self.batch = max(1, batch)
        self.gap = max(0, gap)
        # one epoch's training part: index into self.train, or -1 for an idle (gap) slot
        slots = array("i")
        T = len(self.train)
        for k in range(T):
            slots.append(k)
            if (k + 1) % self.batch == 0 or k == T - 1:
                for _ in range(self.gap):
                    slots.append(-1)
        self._slots = slots
        self.period = len(slots) + len(self.eval)
        self.length = epochs * self.period + len(self.predict)

    def to_dict(self):
        """The schedule as a plan section (JSON): every node rebuilds the same order."""
        return {"train": _counts(self.train), "eval": _counts(self.eval),
                "predict": _counts(self.predict), "epochs": self.epochs, "batch": self.batch,
                "gap": self.gap}

    @classmethod
    def from_dict(cls, d):
        return cls(d["train"], d.get("eval"), d.get("predict"), d.get("epochs", 1),
                   d.get("batch", 128), d.get("gap", 0))

    def at(self, s):
        """(phase, owner, local index, epoch) of sample s, or None (idle)."""
        if s < 0 or s >= self.length:
            return None
        if s >= self.epochs * self.period:
            o, k = self.predict[s - self.epochs * self.period]
            return PREDICT, o, k, self.epochs
        e, p = divmod(s, self.period)
        n = len(self._slots)
        if p < n:
            k = self._slots[p]
            if k < 0:
                return None
            o, k = self.train[k]
            return TRAIN, o, k, e
        o, k = self.eval[p - n]
        return EVAL, o, k, e

    def batch_end(self, s):
        """True when sample s closes a training batch."""
        if s < 0 or s >= self.epochs * self.period:
            return False
        p = s % self.period
        if p >= len(self._slots):
            return False
        k = self._slots[p]
        return k >= 0 and ((k + 1) % self.batch == 0 or k == len(self.train) - 1)

    def last_batch_end(self, s):
        """The last sample before s that closes a batch (-1 if none)."""
        q = s - 1
        while q >= 0 and q >= s - self.period - 1:
            if self.batch_end(q):
                return q
            q -= 1
        return -1


def _counts(order):
    out = []
    for o in order.owner:
        while len(out) <= o:
            out.append(0)
        out[o] += 1
    return out


class _Order:
    """A phase's samples in round-robin order over owners as (owner, local index) pairs, kept
    in two flat arrays: 3 bytes a sample where a list of tuples costs ~30 (FaceAll's 1,690
    test series: 5 KB instead of 50 KB of a board's heap)."""

    def __init__(self, counts):
        self.owner = bytearray()
        self.index = array("H")
        most = max(counts) if counts else 0
        for k in range(most):
            for o in range(len(counts)):
                if k < counts[o]:
                    self.owner.append(o)
                    self.index.append(k)

    def __len__(self):
        return len(self.owner)

    def __getitem__(self, j):
        return self.owner[j], self.index[j]


def _finite(values):
    """No NaN or infinity among the floats (x - x is 0.0 only for finite x)."""
    for v in values:
        if v - v != 0.0:
            return False
    return True


def _popcount(mask):
    c = 0
    while mask:
        mask &= mask - 1
        c += 1
    return c


class Geometry:
    """Row layout of a round: series rows first, then ``ctrl_rows`` rows per node."""

    def __init__(self, n_nodes, length, n_classes, row_size, window, logit_bytes=4):
        self.n = n_nodes
        self.nb = (n_nodes + 7) // 8
        self.c = n_classes
        self.window = window
        self.row_size = row_size
        self.logit_bytes = logit_bytes  # 4: float32, 2: int16 fixed point
        self.series_bytes = _SERIES_HEAD + length
        self.ctrl_bytes = (1 + 2 * self.nb + logit_bytes * n_classes + 1
                           + window * (_ENTRY + self.nb))
        self.series_rows = (self.series_bytes + row_size - 1) // row_size
        self.ctrl_rows = (self.ctrl_bytes + row_size - 1) // row_size
        self.m = self.series_rows + n_nodes * self.ctrl_rows

    def owners(self, sample_owner=0):
        """Row owners for `link.Link` (the series rows are nominally ``sample_owner``'s)."""
        out = [sample_owner] * self.series_rows
        for i in range(self.n):
            out += [i] * self.ctrl_rows
        return out

    def ctrl_index(self, node):
        return self.series_rows + node * self.ctrl_rows

    def split(self, data, first):
        """{row index: bytes} of a message starting at row ``first``."""
        out = {}
        rs = self.row_size
        for k in range((len(data) + rs - 1) // rs):
            out[first + k] = data[k * rs:(k + 1) * rs]
        return out

    def join(self, rows, first, count, size):
        """The message in rows first.., or None unless all of them were decoded."""
        parts = []
        for k in range(count):
            r = rows[first + k]
            if r is None:
                return None
            parts.append(bytes(r))
        return b"".join(parts)[:size]


class _Ctrl:
    """A parsed control message."""

    def __init__(self, flags, ack, heard, logits, window):
        self.flags = flags
        self.ack = ack  # node bitmap, round r-1: messages decoded, except those flagging OUT
        self.heard = heard  # node bitmap, round r-1: every message decoded
        self.logits = logits  # bytes (4C) or None
        self.window = window  # list of (sample, outcome, epoch, members)


class Node:
    """One node's core: pipeline, agreement, batches, checkpoints (see the module docstring).

    ``features``: the plan's ``features`` section for this node (or pass a built ``slice_``);
    ``head``: its head block (interface in the module docstring); ``n_classes`` C;
    ``row_size``: the link's row size; ``schedule``: the fleet's `Schedule`; ``data``: this
    node's own samples {"train": [(int8 series bytes, label)], "eval": [...], "predict":
    [series]}; ``agreement``: False for RockNet's behaviour; ``window``: decision entries
    relayed per message; ``gone_after``: rounds of silence before a member is removed or a
    leader replaced; ``pending``: undecided samples kept (ring); ``checkpoint_every``: applied
    samples between checkpoints, handed to ``save(body)``; ``log``: keep ``applied``;
    ``logit_scale``: send partial logits as int16 codes of this step (None: float32).

    Per round: ``begin_round(r)`` -> {row index: bytes}, then ``end_round(r, rows)``. State:
    ``digest``, ``applied_through``, ``synced``, ``members``, ``leader``, ``accuracy``,
    ``predictions``, ``stats``; ``decisions()`` lists the known decision log.
    """

    def __init__(self, node_id, n_nodes, features, head, n_classes, row_size, schedule,
                 data=None, agreement=True, window=4, gone_after=8, pending=None,
                 checkpoint_every=0, save=None, log=False, slice_=None, logit_scale=None):
        if not 0 <= node_id < n_nodes:
            raise ValueError("node_id %d outside 0..%d" % (node_id, n_nodes - 1))
        if gone_after < 2:
            raise ValueError("gone_after must be >= 2 rounds")
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
        # Ring of undecided samples: codes, label, phase, partial-logit rows by node. A sample
        # waits ~5 rounds for its decision in the common case (decided in round s+2, relayed
        # back to the leader in s+4). Overwriting an undecided sample is harmless when its
        # decision is a DROP (outages: nothing commits while a member is missing); only a
        # COMMIT of a lost sample desyncs the node.
        cap = pending if pending is not None else 2 * window + 4
        self.capacity = cap
        nf = self.slice.n_features
        self._counts = np.zeros(nf, dtype=xp.uint16)  # the sample being scored
        self._kept = [None] * cap  # head.codes of each slot's sample (8-bit for rocknet.head)
        self._slot_sample = [-1] * cap
        self._slot_label = [0] * cap
        self._slot_phase = [0] * cap
        self._slot_rows = [None] * cap  # dict node -> logits bytes (round s+1)
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
        self._heard_next = 0  # heard bitmap (every message decoded, OUT ones included)
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
        self.digest = bytes(32)
        self.log = log
        self.applied = []  # (kind, sample, ...) entries when log=True
        self.correct = 0
        self.evaluated = 0
        self.accuracy = []  # (epoch, correct, evaluated) at the end of each evaluation pass
        self.predictions = {}  # sample -> class
        self.stats = {"rounds": 0, "commit": 0, "drop": 0, "skipped": 0, "decided": 0,
                      "steps": 0, "desynced": 0, "conflicts": 0, "joined": 0, "removed": 0,
                      "checkpoints": 0, "series_missed": 0, "evicted": 0, "withdrawn": 0,
                      "refounds": 0, "series_bad": 0, "stale": 0, "faulty": 0,
                      "nonfinite": 0, "clipped": 0}
        self.faulty = 0  # nodes this node (as leader) removed for non-finite partial logits
        self.drop_why = {}  # reason -> samples this node (as leader) decided to DROP

    # ----- round I/O -----

    def begin_round(self, r):
        """Rows {index: bytes} this node contributes to round r."""
        geo = self.geo
        out = {}
        at = self.schedule.at(r)
        if at is not None and at[1] == self.id:
            msg = self._series_message(at)
            if msg is not None:
                out.update(geo.split(msg, 0))
        msg = self._ctrl_message(r)
        out.update(geo.split(msg, geo.ctrl_index(self.id)))
        self._sent = (r, msg)
        return out

    def end_round(self, r, rows):
        """Take the decoded rows of round r (a list of bytes or None per row index)."""
        geo = self.geo
        if len(rows) != self.m:
            raise ValueError("round has %d rows, this geometry %d" % (len(rows), self.m))
        self.stats["rounds"] += 1
        self._round = r
        contiguous = self._last_round == r - 1
        own = self._sent[1] if self._sent[0] == r else None
        # control messages of round r (logits for r-1, acks of r-1, windows)
        ctrl = {}
        for n in range(self.n):
            if n == self.id and own is not None:
                data = own
            else:
                data = geo.join(rows, geo.ctrl_index(n), geo.ctrl_rows, geo.ctrl_bytes)
            if data is not None:
                ctrl[n] = self._parse_ctrl(data)
        decoded = 0  # our ack of round r: messages heard, except from nodes flagging OUT
        heard = 0
        for n in range(self.n):
            if n in ctrl:
                c = ctrl[n]
                heard |= 1 << n
                self._miss[n] = 0
                if c.flags & F_OUT:
                    self._absent[n] += 1
                else:
                    decoded |= 1 << n
                    self._absent[n] = 0
                member = (self.members >> n) & 1
                self._joinwait[n] = self._joinwait[n] + 1 if member and c.flags & F_JOIN else 0
                # a member that heard no other member in round r-1 (deaf, but talking)
                others = self.members & ~(1 << n)
                deaf = member and contiguous and others and not c.ack & others
                self._deaf[n] = self._deaf[n] + 1 if deaf else 0
            else:
                self._miss[n] += 1
                self._absent[n] += 1
        # partial logits of sample r-1
        slot = self._slot(r - 1)
        if slot is not None:
            got = {}
            for n in ctrl:
                c = ctrl[n]
                if c.flags & F_LOGITS:
                    got[n] = c.logits
            self._slot_rows[slot] = got
        if self.agreement:
            for n in ctrl:
                self._learn(ctrl[n].window, n)
            self._check_echo()
            self._tally(ctrl)
            self._lead(r, ctrl, contiguous)
            self._apply_known()
        else:
            self._apply_now(r - 1)
        # the series of sample r: features and partial logits for round r+1
        self._own_logits = None
        at = self.schedule.at(r)
        if at is not None:
            msg = geo.join(rows, 0, geo.series_rows, geo.series_bytes)
            if msg is None:
                self.stats["series_missed"] += 1
            elif msg[1] != at[0] or (msg[1] != PREDICT and msg[0] >= self.c):
                self.stats["series_bad"] += 1  # not what the schedule says: ignore it
            else:
                self._take_series(r, msg)
        self._ack_next = decoded
        self._heard_next = heard
        self._last_round = r

    # ----- messages -----

    def _series_message(self, at):
        phase, _, k, _ = at
        items = self.data.get(PHASES[phase]) or []
        if k >= len(items):
            return None
        if phase == PREDICT:
            series, label = items[k], 0xFF
        else:
            series, label = items[k]
        return bytes([label & 0xFF, phase]) + bytes(series)

    def _ctrl_message(self, r):
        geo = self.geo
        flags = 0
        logits = bytes(self.logit_bytes * self.c)
        if self._own_logits is not None and self._own_logits[0] == r - 1:
            flags |= F_LOGITS
            logits = self._own_logits[1]
        if not self.synced:  # a node that found its own partial logits broken stays out
            out = (self.members | self.faulty) >> self.id & 1
            flags |= F_OUT if out else F_JOIN
        ack, heard = 0, 0
        if self._last_round == r - 1:
            ack, heard = self._ack_next, self._heard_next
        win = self._window()
        parts = [bytes([flags]), ack.to_bytes(geo.nb, "little"), heard.to_bytes(geo.nb, "little"),
                 logits, bytes([len(win)])]
        for s in win:
            outcome, epoch, members, since, back = self.entries[s]
            parts.append(struct.pack("<IBHIH", s, outcome, epoch, since, back))
            parts.append(members.to_bytes(geo.nb, "little"))
        msg = b"".join(parts)
        return msg + bytes(geo.ctrl_bytes - len(msg))

    def _parse_ctrl(self, data):
        geo = self.geo
        nb = geo.nb
        flags = data[0]
        ack = int.from_bytes(data[1:1 + nb], "little")
        heard = int.from_bytes(data[1 + nb:1 + 2 * nb], "little")
        o = 1 + 2 * nb
        w = self.logit_bytes * self.c
        logits = bytes(data[o:o + w]) if flags & F_LOGITS else None
        o += w
        cnt = min(data[o], self.window)
        o += 1
        win = []
        for _ in range(cnt):
            s, outcome, epoch, since, back = struct.unpack("<IBHIH", data[o:o + _ENTRY])
            members = int.from_bytes(data[o + _ENTRY:o + _ENTRY + nb], "little")
            o += _ENTRY + nb
            if back <= s and since <= s:
                win.append((s, outcome, epoch, members & self.all_mask, since, back))
        return _Ctrl(flags, ack, heard, logits, win)

    def _window(self):
        """The last `window` decision entries this node knows, oldest first."""
        keys = sorted(self.entries)
        return keys[-self.window:]

    # ----- samples -----

    def _slot(self, s):
        if s < 0:
            return None
        i = s % self.capacity
        return i if self._slot_sample[i] == s else None

    def _take_series(self, r, msg):
        label, phase = msg[0], msg[1]
        i = r % self.capacity
        if self._slot_sample[i] > self.applied_through:
            self.stats["evicted"] += 1  # undecided; fatal only if it turns out a COMMIT
        self._slot_sample[i] = r
        self._slot_label[i] = label
        self._slot_phase[i] = phase
        self._slot_rows[i] = None
        counts = self._counts
        self.slice.transform(msg[_SERIES_HEAD:], counts)
        codes = self.head.codes(counts)
        if self._kept[i] is None:
            self._kept[i] = np.zeros(len(codes), dtype=codes.dtype)
        self._kept[i][:] = codes
        if self.agreement and self.schedule.gap and self.synced \
                and self.applied_through < self.schedule.last_batch_end(r):
            # the last batch's step is not applied here yet: scoring now would mix old and
            # new weights across the fleet; send no logits (the sample is DROPped)
            self.stats["stale"] += 1
            return
        data, clipped = pack_logits(self.head.partial_logits(counts), self._wire,
                                    self.logit_scale)
        self.stats["clipped"] += clipped
        self._own_logits = (r, data)

    def _sum(self, rows, members):
        """Summed logits (list of C floats) and the bytes summed, over ``members`` in id
        order; None if a member's logits are missing."""
        parts = []
        for n in _bits(members, self.n):
            b = rows.get(n) if rows is not None else None
            if b is None:
                return None, None
            parts.append(b)
        summed = b"".join(parts)
        return self.sum_logits(summed), summed

    def sum_logits(self, summed):
        """The logits z (C floats) from partial-logit messages laid end to end, summed in
        that order (int16 codes are summed exactly, then scaled)."""
        size = self.logit_bytes * self.c
        z = [0.0] * self.c if self.logit_scale is None else [0] * self.c
        for o in range(0, len(summed), size):
            vals = struct.unpack(self._fmt, summed[o:o + size])
            for k in range(self.c):
                z[k] += vals[k]
        if self.logit_scale is not None:
            z = [v * self.logit_scale for v in z]
        return z

    def _use(self, s, z, summed, epoch, members):
        """Apply one sample whose logits are agreed (or, agreement off, whatever arrived)."""
        i = s % self.capacity
        label, phase = self._slot_label[i], self._slot_phase[i]
        if not _finite(z):  # only without agreement (or a leader that does not check)
            self.stats["nonfinite"] += 1
            self.stats["drop"] += 1
            self._record(b"D", s, b"\xff")
            return
        if phase == TRAIN:
            self.head.apply(np.array(z, dtype=xp.float_), label, codes=self._kept[i])
            self._batch_applied += 1
        else:
            best = 0
            for k in range(1, self.c):
                if z[k] > z[best]:
                    best = k
            if phase == EVAL:
                self.evaluated += 1
                self.correct += 1 if best == label else 0
            else:
                self.predictions[s] = best
        self._record(b"A", s, bytes([label, phase]) + struct.pack("<H", epoch)
                     + members.to_bytes(self.geo.nb, "little") + summed)
        self.stats["commit"] += 1

    def _after(self, s):
        """Per-sample bookkeeping once sample s is processed (batch ends, evaluation ends)."""
        sch = self.schedule
        if sch.batch_end(s) and self._batch_applied:
            self.head.step()
            self._batch_applied = 0
            self.stats["steps"] += 1
            self._record(b"S", s, b"")
            if self.checkpoint_every and self._since_checkpoint >= self.checkpoint_every:
                self._checkpoint()
        at = sch.at(s)
        nxt = sch.at(s + 1)
        if at is not None and at[0] == EVAL and (nxt is None or nxt[0] != EVAL):
            self.accuracy.append((at[3], self.correct, self.evaluated))
            self.correct = 0
            self.evaluated = 0

    def _record(self, kind, s, payload):
        entry = kind + struct.pack("<I", s) + payload
        self.digest = _sha256(self.digest + entry).digest()
        if self.log:
            self.applied.append((kind.decode(), s, payload, self.digest))

    # ----- agreement off (RockNet) -----

    def _apply_now(self, s):
        i = self._slot(s)
        if i is None:
            self.applied_through = max(self.applied_through, s)
            if s >= 0:
                self._after(s)
            return
        rows = self._slot_rows[i] or {}
        present = 0
        for n in rows:
            present |= 1 << n
        z, summed = self._sum(rows, present)
        self._use(s, z, summed, 0, present)
        self._since_checkpoint += 1
        self.applied_through = s
        self._after(s)

    # ----- agreement on -----

    def _learn(self, window, sender):
        """Merge a relay window. An entry decides samples s-back..s: DROP for all but s."""
        for s, outcome, epoch, members, since, back in window:
            if s <= self.applied_through or s > self._round:
                continue  # old news, or nonsense (a decision is about a past sample)
            entry = (outcome, epoch, members, since, back)
            if self.entries.get(s) != entry:
                self._enter(s, entry)
            if sender != self.id:
                for q in range(self._low(s - back, s), s + 1):
                    d = self.known.get(q)
                    want = outcome if q == s else DROP
                    if q in self._mine and d is not None and d[0] == want and d[1] == epoch:
                        self._confirmed[q] = True

    def _low(self, first, s):
        """First sample of an entry worth holding per sample: not applied yet, and not far
        behind s (a long run of DROPs stays one entry; `_lookup` reads it on demand)."""
        return max(first, self.applied_through + 1, s - 4 * self.capacity)

    def _lookup(self, s):
        """The known decision for sample s, from the per-sample table or a covering entry."""
        d = self.known.get(s)
        if d is not None:
            return d
        for k in self.entries:
            e = self.entries[k]
            if k - e[4] <= s < k:
                d = (DROP, e[1], e[2], e[3])
                self.known[s] = d
                return d
        return None

    def _enter(self, s, entry):
        outcome, epoch, members, since, back = entry
        first = s - back
        for k in [k for k in self.entries if first <= k < s]:
            e = self.entries[k]
            if e[0] == DROP and k - e[4] >= first:
                del self.entries[k]  # a longer run of DROPs covers it
        self.entries[s] = entry
        for q in range(self._low(first, s), s + 1):
            d = (outcome if q == s else DROP, epoch, members, since)
            have = self.known.get(q)
            if have is None:
                self.known[q] = d
            elif have != d:
                # Two leaders decided q (a takeover while the old leader's last decision was
                # still unrelayed). Not applied yet here: the newer membership epoch wins.
                self.stats["conflicts"] += 1
                if 0 < ((epoch - have[1]) & 0xFFFF) < 0x8000:
                    self.known[q] = d
                    self._mine.pop(q, None)
                    self._confirmed.pop(q, None)
        if s > self.view_sample:
            self.view_sample = s
            self.epoch = epoch
            self.members = members
            self._since = since

    def _decide(self, first, s, outcome, members, new_epoch=False):
        changed = new_epoch or members != self.members
        if outcome == DROP and not changed:
            # extend the previous run of DROPs: long outages fit one relay window entry
            e = self.entries.get(first - 1)
            if e is not None and e[0] == DROP and e[1] == self.epoch and e[2] == members:
                first = first - 1 - e[4]
        first = max(first, s - 0xFFFF)  # back is a u16
        epoch = (self.epoch + 1) & 0xFFFF if changed else self.epoch
        since = first if changed else self._since
        for q in range(self._low(first, s), s + 1):
            self._mine[q] = self._round
        self._enter(s, (outcome, epoch, members, since, s - first))
        self.stats["decided"] += 1

    def _tally(self, ctrl):
        """Count this round's votes (acks of round r, about round r-1: facts every node that
        decodes a message reads alike). Member n votes for us as leader if its ack shows us
        and no member below us; it votes for a refound by us if it heard us, heard nobody
        below us, and acknowledged no member (nobody applying is audible to it)."""
        M = self.members
        below = (1 << self.id) - 1
        lower = M & below
        need = _popcount(M) // 2 + 1
        lead = 0
        refound = 0
        seen_lower = False  # evidence that a node below us may be winning votes
        seen_member = False  # evidence that someone applying is audible
        for n in _bits(M, self.n):
            c = ctrl.get(n)
            if c is None:
                continue
            if c.ack & lower:
                seen_lower = True
            elif (c.ack >> self.id) & 1:
                lead += 1
            if c.ack & M or c.heard & below:
                seen_member = True
            elif (c.heard >> self.id) & 1:
                refound += 1
        self._votes = lead
        # won rounds count up; a round with too few messages decoded neither counts nor
        # resets, evidence of the other side resets
        if seen_lower:
            self._won = 0
        elif lead >= need:
            self._won += 1
        if seen_member:
            self._won_refound = 0
        elif refound >= need:
            self._won_refound += 1

    def _leader_condition(self, ctrl):
        """(deciding this round?, membership to decide with).

        Two nodes never decide in the same round: a deciding node needs a majority of M's
        votes, and no ack shows both a node and not it (nor acks a member and none). A node
        taking over, or refounding, needs gone_after + 1 won rounds with no evidence of the
        other side in between (a round where too few messages arrived neither counts nor
        resets): the node(s) it replaces were not winning votes then, so their last decisions
        are old, hence echoed by someone (and adopted from the relays here) or withdrawn
        (`_check_echo`).
        """
        M = self.members
        if not self.synced:
            # refound: every member gone or not applying for gone_after rounds, so nobody can
            # decide; start a new membership from the nodes we hear, from the next sample on
            for n in _bits(M, self.n):
                if self._absent[n] < self.gone_after:
                    return False, M
            if self._won_refound <= self.gone_after:
                return False, M
            new = 1 << self.id
            for n in ctrl:
                if n > self.id:
                    new |= 1 << n
            return True, new
        if not (M >> self.id) & 1:
            return False, M
        lower = M & ((1 << self.id) - 1)
        if lower == 0:
            return self._votes >= _popcount(M) // 2 + 1, M
        # take over only from lower members gone (or back but not applying) long enough,
        # having heard every other member this round (we adopt what any of them relays)
        for n in _bits(lower, self.n):
            if self._absent[n] < self.gone_after:
                return False, M
        for n in _bits(M & ~lower, self.n):
            if n not in ctrl:
                return False, M
        return self._won > self.gone_after, M & ~lower

    def _check_echo(self):
        """An own decision nobody echoed for gone_after rounds: maybe nobody hears us. Withdraw
        all our unechoed decisions (we never relay them again; nobody applied them unless
        someone heard them, and then that node relays them itself) and stop applying until
        a leader adds us again. A takeover needs more rounds than that, so a decision of ours
        cannot resurface after another leader re-decided its sample."""
        if not self.synced:
            return
        for q in self._mine:
            if q > self.applied_through and not self._confirmed.get(q) \
                    and self._round - self._mine[q] >= self.gone_after:
                if _popcount(self.members) > 1:
                    self._withdraw()
                    self._desync()
                return

    def _lead(self, r, ctrl, contiguous):
        s = r - 2
        if s < 0 or not contiguous:
            return
        last = max(self.known) if self.known else self.applied_through
        if last >= s:
            return
        ok, M = self._leader_condition(ctrl)
        if not ok:
            return
        if not self.synced:  # refound: a new membership, from the next undecided sample on
            self._decide(last + 1, s, DROP, M, True)  # a new epoch even if M is unchanged
            self.stats["refounds"] += 1
            self._why("refound", last + 1, s)
            return
        # removals: missing too long, out of sync, or still asking to join long after joining
        for n in _bits(M, self.n):
            if n == self.id:
                continue
            c = ctrl.get(n)
            if (self._miss[n] >= self.gone_after or self._joinwait[n] >= self.gone_after
                    or self._deaf[n] >= self.gone_after or (c is not None and c.flags & F_OUT)):
                M &= ~(1 << n)
                self.stats["removed"] += 1
        # faults: a member whose partial logits for s are not finite (a bug, a bit flip in its
        # RAM) is removed, so nobody ever sums them; a node sending such logits is not admitted.
        # A leader with such logits itself stops applying: the next member takes over.
        bad = self._nonfinite(s)
        if (bad >> self.id) & 1:
            self.stats["faulty"] += 1
            self.faulty |= 1 << self.id
            self._desync()
            return
        for n in _bits(M & bad, self.n):
            M &= ~(1 << n)
            self.stats["faulty"] += 1
            self.faulty |= 1 << n
        # joins: non-members asking, whose message of this round is here (a flagged node
        # only with finite partial logits for s in hand)
        joins = 0
        i = self._slot(s)
        rows = (self._slot_rows[i] if i is not None else None) or {}
        for n in ctrl:
            if not (M >> n) & 1 and ctrl[n].flags & F_JOIN and not (bad >> n) & 1 \
                    and (not (self.faulty >> n) & 1 or n in rows):
                joins |= 1 << n
        if self._commit_ok(s, ctrl, M | joins):
            M |= joins
            outcome = COMMIT
        elif joins and self._commit_ok(s, ctrl, M):
            outcome = COMMIT
        else:
            self._why(self._commit_fails(s, ctrl, M) or "join", s, s)
            M |= joins
            outcome = DROP
        # one entry: samples nobody decided in their own round are DROPped with it
        self._why("undecided", last + 1, s - 1)
        self._decide(last + 1, s, outcome, M)

    def _nonfinite(self, s):
        """Bitmap of the nodes whose partial logits for sample s are NaN or infinite."""
        i = self._slot(s)
        rows = self._slot_rows[i] if i is not None else None
        if not rows or self.logit_scale is not None:  # int16 codes are always finite
            return 0
        bad = 0
        for n in rows:
            if not _finite(struct.unpack(self._fmt, rows[n])):
                bad |= 1 << n
        return bad

    def _commit_ok(self, s, ctrl, M):
        return self._commit_fails(s, ctrl, M) is None

    def _commit_fails(self, s, ctrl, M):
        """Why sample s cannot COMMIT with membership M (None: it can)."""
        i = self._slot(s)
        if i is None:
            if self.schedule.at(s) is None:
                return "idle"  # a gap round after a batch: no sample travels
            return "series missing"  # we never decoded its series (owner gone, or loss)
        rows = self._slot_rows[i]
        if rows is None:
            return "logits missing"
        for n in _bits(M, self.n):
            c = ctrl.get(n)
            if c is None:
                return "message missing"
            if rows.get(n) is None:
                return "logits missing"
            if (c.ack & M) != M:
                return "acks incomplete"
        return None

    def _why(self, reason, first, last):
        """Count the schedule's samples first..last this node, as leader, decided to DROP."""
        count = min(last, self.schedule.length - 1) - first + 1
        if count > 0:
            self.drop_why[reason] = self.drop_why.get(reason, 0) + count

    def _apply_known(self):
        """Apply known decisions strictly in sample order, as far as they go."""
        while True:
            s = self.applied_through + 1
            d = self._lookup(s)
            if d is not None and self.synced and s in self._mine \
                    and not self._confirmed.get(s) and _popcount(self.members) > 1:
                return  # our own decision: apply it once someone relayed it back
            if d is None:
                later = [k for k in self.known if k > s]
                if not later:
                    return
                if self.synced:
                    newer = 0
                    for k in self.entries:
                        if k > s:
                            newer += 1
                    if newer < 2 * self.window:
                        return  # wait: the decision for s may still be on its way
                    # every up-to-date window has moved past s: nobody will relay it again
                    self._desync()
                # not applying: decisions we never heard cannot be the one that adds us
                self.applied_through = min(later) - 1
                continue
            self._process(s, d)

    def _withdraw(self):
        """Forget our own decisions nobody echoed: we never relay them again."""
        gone = [q for q in self._mine if not self._confirmed.get(q)]
        for q in gone:
            self.known.pop(q, None)
            self._mine.pop(q, None)
        for k in [k for k in self.entries if k not in self.known]:
            del self.entries[k]
        self.view_sample = -1
        for k in self.entries:
            if k > self.view_sample:
                self.view_sample = k
        if self.view_sample >= 0:
            e = self.entries[self.view_sample]
            self.epoch, self.members, self._since = e[1], e[2], e[3]
        self.stats["withdrawn"] += len(gone)

    def _process(self, s, d):
        outcome, epoch, members, since = d
        me = (members >> self.id) & 1
        if not self.synced:
            can = outcome != COMMIT or self._slot(s) is not None
            if me and since == s and can:
                self.synced = True  # a decision added us from sample s on
                self.stats["joined"] += 1
                self._record(b"J", s, struct.pack("<H", epoch))
            else:
                self.stats["skipped"] += 1
                self.applied_through = s
                self._prune()
                return
        elif not me:
            # removed from sample s on (we were too slow, or a takeover happened)
            self._go_out(s - 1)
            self.applied_through = s
            return
        if outcome == COMMIT:
            i = self._slot(s)
            z, summed = (None, None) if i is None else self._sum(self._slot_rows[i], members)
            if z is None:  # our ring lost the sample (it waited too long for its decision)
                self._desync()
                self.stats["skipped"] += 1
                self.applied_through = s
                return
            self._use(s, z, summed, epoch, members)
            self._since_checkpoint += 1
        else:
            self.stats["drop"] += 1
            self._record(b"D", s, struct.pack("<H", epoch) + members.to_bytes(self.geo.nb,
                                                                              "little"))
        self.applied_through = s
        self._after(s)
        self._prune()

    def _go_out(self, s):
        if self._batch_applied:  # close the half batch so the record stays replayable
            self.head.step()
            self._batch_applied = 0
            self.stats["steps"] += 1
            self._record(b"S", s, b"")
        self.synced = False

    def _desync(self):
        if self.synced:
            self.stats["desynced"] += 1
            self._go_out(self.applied_through)

    def _prune(self):
        horizon = self.applied_through - 4 * self.window
        for s in [k for k in self.known if k < horizon]:
            del self.known[s]
        for s in [k for k in self.entries if k < horizon]:
            del self.entries[s]
            self._mine.pop(s, None)
            self._confirmed.pop(s, None)

    # ----- checkpoints -----

    def _checkpoint(self):
        self._since_checkpoint = 0
        self.stats["checkpoints"] += 1
        if self.save is not None:
            self.save(self.checkpoint())

    def checkpoint(self):
        """Checkpoint body (bytes): taken at a batch boundary, so no half batch is in it."""
        meta = {"node": self.id, "applied_through": self.applied_through,
                "epoch": self.epoch, "members": self.members, "view": self.view_sample,
                "since": self._since,
                "digest": "".join("%02x" % b for b in self.digest)}
        return json.dumps(meta).encode() + b"\n" + self.head.save()

    def restore(self, body):
        """Resume from a checkpoint body after a reboot: weights as of the checkpoint, not
        applying until a leader decision adds this node again."""
        nl = body.find(b"\n")
        meta = json.loads(body[:nl])
        if meta["node"] != self.id:
            raise ValueError("checkpoint is node %d's, not node %d's" % (meta["node"], self.id))
        self.head.load(body[nl + 1:])
        self.applied_through = meta["applied_through"]
        self.epoch = meta["epoch"]
        self.members = meta["members"]
        self.view_sample = meta["view"]
        self._since = meta["since"]
        self.digest = bytes.fromhex(meta["digest"])
        self.rejoin()

    def rejoin(self):
        """Boot into a running fleet (after `restore`, or with fresh weights when there is no
        checkpoint): apply nothing until a leader decision adds this node."""
        self.synced = not self.agreement  # without agreement a node just carries on
        self._batch_applied = 0
        self._record(b"R", max(0, self.applied_through), b"")

    # ----- state for hosts and tests -----

    @property
    def heard_last(self):
        """Nodes whose control message of the last ended round this node decoded."""
        return self._heard_next

    @property
    def leader(self):
        """Lowest-id member in this node's view."""
        for n in range(self.n):
            if (self.members >> n) & 1:
                return n
        return None

    def summary(self):
        """A JSON-able picture of this node for hosts and logs."""
        return {"node": self.id, "synced": self.synced, "members": self.members,
                "leader": self.leader, "epoch": self.epoch,
                "applied_through": self.applied_through,
                "digest": "".join("%02x" % b for b in self.digest),
                "accuracy": [list(a) for a in self.accuracy], "stats": dict(self.stats)}

    def decisions(self, since=0):
        """Known decisions from sample ``since`` on: list of (sample, outcome, epoch, members)."""
        return [(s,) + self.known[s] for s in sorted(self.known) if s >= since]
