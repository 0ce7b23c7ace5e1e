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

import struct

from . import xp
from ._compat import const
from .logits import finite as _finite
from .logits import pack as pack_logits
from .messages import Geometry, ctrl_message, parse_ctrl  # noqa: F401 (node.Geometry)
from .mixer import mask_bits as _bits
from .schedule import PHASES, Schedule  # noqa: F401 (node.Schedule)
from .xp import np

# Other modules' constants, compiled in here (a private const costs no import and no heap):
_NONFINITE = const(-32768)  # logits.NONFINITE
_F_LOGITS = const(0x01)  # messages.F_LOGITS, F_OUT, F_JOIN, SERIES_HEAD
_F_OUT = const(0x02)
_F_JOIN = const(0x04)
_SERIES_HEAD = const(2)
_TRAIN = const(0)  # schedule.TRAIN, EVAL, PREDICT
_EVAL = const(1)
_PREDICT = const(2)
DROP = const(0)
COMMIT = const(1)


def _popcount(mask):
    c = 0
    while mask:
        mask &= mask - 1
        c += 1
    return c


class Node:
    """One node's core: pipeline, agreement, batches, checkpoints (see the module docstring).

    ``features``: the plan's ``features`` section for this node (or pass a built ``slice_``);
    ``head``: its head block (interface in the module docstring); ``n_classes`` C;
    ``row_size``: the link's row size; ``schedule``: the fleet's `Schedule`; ``data``: this
    node's own samples {"train": [(int8 series bytes, label)], "eval": [...], "predict":
    [series]}; ``agreement``: False for RockNet's behaviour; ``window``: decision entries
    relayed per message; ``gone_after``: rounds of silence before a member is removed or a
    leader replaced; ``pending``: undecided samples kept (ring; None: 2 x window + 4; a
    checkpoint holds none of it, so it restores into a ring of any size);
    ``checkpoint_every``: applied samples between checkpoints, handed to ``save(body)``;
    ``log``: keep ``applied``;
    ``logit_scale``: send partial logits as int16 codes of this step (None: float32);
    ``chain``: the digest's hash chain, ``chain(digest, entry)`` -> 16 bytes (default
    `ccm.Chain` over the port's AES).
    ``keep``: what the ring keeps of a training sample until its decision, "codes" (the
    head's 8-bit codes, F_i bytes) or "series" (its int8 series, L bytes, transformed again
    when it is applied: the same update, one more slice transform per applied sample).

    Per round: ``begin_round(r)`` -> {row index: bytes}, then ``end_round(r, rows)``. State:
    ``digest``, ``applied_through``, ``synced``, ``members``, ``leader``, ``accuracy``,
    `predicted`, ``stats`` (`report.summary` gives a JSON-able picture).
    """

    def __init__(self, node_id, n_nodes, features, head, n_classes, row_size, schedule,
                 data=None, agreement=True, window=4, gone_after=8, pending=None,
                 checkpoint_every=0, save=None, log=False, slice_=None, logit_scale=None,
                 chain=None, keep="codes"):
        from .node_init import init  # set-up code: dropped once the runner is built

        init(self, node_id, n_nodes, features, head, n_classes, row_size, schedule, data,
             agreement, window, gone_after, pending, checkpoint_every, save, log, slice_,
             logit_scale, chain, keep)

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
                ctrl[n] = parse_ctrl(self.geo, data, self.window, self.all_mask)
        decoded = 0  # our ack of round r: messages heard, except from nodes flagging OUT
        heard = 0
        for n in range(self.n):
            if n in ctrl:
                c = ctrl[n]
                heard |= 1 << n
                self._miss[n] = 0
                if c.flags & _F_OUT:
                    self._absent[n] += 1
                else:
                    decoded |= 1 << n
                    self._absent[n] = 0
                member = (self.members >> n) & 1
                self._joinwait[n] = self._joinwait[n] + 1 if member and c.flags & _F_JOIN else 0
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
            have = 0
            for n in ctrl:
                c = ctrl[n]
                if c.flags & _F_LOGITS:
                    o = self._row_at(slot, n)
                    self._rows[o:o + self._row_size] = c.logits
                    have |= 1 << n
            self._have[slot] = have
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
            elif msg[1] != at[0] or (msg[1] != _PREDICT and msg[0] >= self.c):
                self.stats["series_bad"] += 1  # not what the schedule says: ignore it
            else:
                self._take_series(r, msg)
        self._ack_next = decoded
        self.heard_last = heard
        self._last_round = r

    # ----- messages -----

    def _series_message(self, at):
        phase, _, k, _ = at
        items = self.data.get(PHASES[phase]) or []
        if k >= len(items):
            return None
        if phase == _PREDICT:
            series, label = items[k], 0xFF
        else:
            series, label = items[k]
        return bytes([label & 0xFF, phase]) + bytes(series)

    def _ctrl_message(self, r):
        flags = 0
        logits = None
        if self._own_logits is not None and self._own_logits[0] == r - 1:
            flags |= _F_LOGITS
            logits = self._own_logits[1]
        if not self.synced:  # a node that found its own partial logits broken stays out
            out = (self.members | self.faulty) >> self.id & 1
            flags |= _F_OUT if out else _F_JOIN
        ack, heard = 0, 0
        if self._last_round == r - 1:
            ack, heard = self._ack_next, self.heard_last
        return ctrl_message(self.geo, flags, ack, heard, logits,
                            [(s,) + self.entries[s] for s in self._window()])

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
        self._have[i] = -1
        counts = self._counts
        series = msg[_SERIES_HEAD:]
        self.slice.transform(series, counts)
        if self._series_kept:  # only a training sample is applied with its features
            if phase == _TRAIN:
                o = i * len(series)
                self._kept[o:o + len(series)] = series
        else:
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

    def _row_at(self, i, n):
        """Offset of node n's partial-logit row for ring slot i in ``_rows``."""
        return (i * self.n + n) * self._row_size

    def _rows_of(self, i):
        """Bitmap of the nodes whose partial logits ring slot i holds (0 for no slot)."""
        return 0 if i is None else max(0, self._have[i])

    def _sum(self, i, members):
        """Summed logits (list of C floats) and the bytes summed, over ``members`` in id
        order, of ring slot i; None if a member's logits are missing."""
        if members & ~self._rows_of(i):
            return None, None
        size = self._row_size
        summed = bytearray(_popcount(members) * size)
        o = 0
        for n in _bits(members, self.n):
            a = self._row_at(i, n)
            summed[o:o + size] = memoryview(self._rows)[a:a + size]
            o += size
        summed = bytes(summed)
        return self.sum_logits(summed), summed

    def sum_logits(self, summed):
        """The logits z (C floats) from partial-logit messages laid end to end, summed in
        that order (int16 codes are summed exactly, then scaled; a row of `_NONFINITE` codes
        makes z NaN, as a float32 row of NaN does)."""
        size = self.logit_bytes * self.c
        z = [0.0] * self.c if self.logit_scale is None else [0] * self.c
        for o in range(0, len(summed), size):
            vals = struct.unpack(self._fmt, summed[o:o + size])
            if self.logit_scale is not None and vals[0] == _NONFINITE:
                return [float("nan")] * self.c
            for k in range(self.c):
                z[k] += vals[k]
        if self.logit_scale is not None:
            z = [v * self.logit_scale for v in z]
        return z

    def _use(self, s, z, summed, epoch, members):
        """Apply one sample whose logits are agreed (or, agreement off, whatever arrived)."""
        i = s % self.capacity
        label, phase = self._slot_label[i], self._slot_phase[i]
        za = np.array(z, dtype=xp.float_)
        if not _finite(za):  # only without agreement (or a leader that does not check)
            self.stats["nonfinite"] += 1
            self.stats["drop"] += 1
            self._record(b"D", s, b"\xff")
            return
        if phase == _TRAIN:
            if self._series_kept:  # its counts again, as they were (integer, deterministic)
                n = self.slice.length
                counts = self._counts
                self.slice.transform(memoryview(self._kept)[i * n:(i + 1) * n], counts)
                self.head.apply(za, label, counts=counts)
            else:
                self.head.apply(za, label, codes=self._kept[i])
            self._batch_applied += 1
        else:
            best = 0
            for k in range(1, self.c):
                if z[k] > z[best]:
                    best = k
            if phase == _EVAL:
                self.evaluated += 1
                self.correct += 1 if best == label else 0
            else:
                k, p = s - self._predict_from, self.predictions
                if self._nibbles:
                    sh = (k & 1) << 2
                    p[k >> 1] = p[k >> 1] & (0xF0 >> sh) | best << sh
                else:
                    p[k] = best
        self._record(b"A", s, bytes([label, phase]) + struct.pack("<H", epoch)
                     + members.to_bytes(self.geo.nb, "little") + summed)
        self.stats["commit"] += 1

    def predicted(self):
        """(sample, class) of each agreed prediction so far, in sample order."""
        p, nib = self.predictions, self._nibbles
        for k in range(2 * len(p) if nib else len(p)):
            c = p[k >> 1] >> ((k & 1) << 2) & 0xF if nib else p[k]
            if c != (0xF if nib else 0xFF):
                yield self._predict_from + k, c

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
        if at is not None and at[0] == _EVAL and (nxt is None or nxt[0] != _EVAL):
            self.accuracy.append((at[3], self.correct, self.evaluated))
            self.correct = 0
            self.evaluated = 0

    def _record(self, kind, s, payload):
        entry = kind + struct.pack("<I", s) + payload
        self.digest = self._chain(self.digest, entry)
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
        present = self._rows_of(i)
        z, summed = self._sum(i, present)
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
                    or self._deaf[n] >= self.gone_after or (c is not None and c.flags & _F_OUT)):
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
        rows = self._rows_of(self._slot(s))
        for n in ctrl:
            if not (M >> n) & 1 and ctrl[n].flags & _F_JOIN and not (bad >> n) & 1 \
                    and (not (self.faulty >> n) & 1 or (rows >> n) & 1):
                joins |= 1 << n
        if self._commit_fails(s, ctrl, M | joins) is None:
            M |= joins
            outcome = COMMIT
        elif joins and self._commit_fails(s, ctrl, M) is None:
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
        rows = self._rows_of(i)
        if not rows:
            return 0
        bad = 0
        for n in _bits(rows, self.n):
            if self.logit_scale is not None:  # int16: a row of _NONFINITE codes
                if struct.unpack_from("<h", self._rows, self._row_at(i, n))[0] == _NONFINITE:
                    bad |= 1 << n
            elif not _finite(np.array(struct.unpack_from(self._fmt, self._rows,
                                                          self._row_at(i, n)))):
                bad |= 1 << n
        return bad

    def _commit_fails(self, s, ctrl, M):
        """Why sample s cannot COMMIT with membership M (None: it can)."""
        i = self._slot(s)
        if i is None:
            if self.schedule.at(s) is None:
                return "idle"  # a gap round after a batch: no sample travels
            return "series missing"  # we never decoded its series (owner gone, or loss)
        rows = self._have[i]
        if rows < 0:
            return "logits missing"
        for n in _bits(M, self.n):
            c = ctrl.get(n)
            if c is None:
                return "message missing"
            if not (rows >> n) & 1:
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
            z, summed = (None, None) if i is None else self._sum(i, members)
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
        for s in list(self.known):
            if s < horizon:
                del self.known[s]
        for s in list(self.entries):
            if s < horizon:
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
        """Checkpoint payload as a list of bytes-like parts (``b"".join`` gives the bytes
        `restore` takes; format: `checkpoint.node_payload`), taken at a batch boundary, so no
        half batch is in it. ``save(parts)`` writes them without assembling them."""
        from .checkpoint import node_payload

        return node_payload(self)

    def restore(self, body):
        """Resume from a checkpoint payload after a reboot: weights as of the checkpoint, not
        applying until a leader decision adds this node again (`checkpoint.restore_node`)."""
        from .checkpoint import restore_node

        restore_node(self, body)

    def rejoin(self):
        """Boot into a running fleet (after `restore`, or with fresh weights when there is no
        checkpoint): apply nothing until a leader decision adds this node."""
        self.synced = not self.agreement  # without agreement a node just carries on
        self._batch_applied = 0
        self._record(b"R", max(0, self.applied_through), b"")

    # ----- state for hosts and tests -----

    @property
    def leader(self):
        """Lowest-id member in this node's view."""
        for n in range(self.n):
            if (self.members >> n) & 1:
                return n
        return None
