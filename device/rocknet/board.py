"""The board runner: ``rocknet.run()`` trains this board's part of the fleet over the radio.

    import rocknet
    rocknet.run()           # CircuitPython: the whole of code.py (`rocknet deploy --autostart`)

It reads three files that `rocknet deploy --plan-dir DIR` put on the board:

- ``/rocknet_plan.bin``: this node's plan (features, the ``head`` section, the fleet's
  ``schedule`` and the ``run`` section: radio profile, row size, round deadline, relay
  window, checkpoint interval), written by ``rocknet plan``;
- ``/rocknet_key.bin``: the fleet's network key;
- ``/rocknet_data.bin``: this node's own samples, "as if it had measured them" (int8 series
  and labels, bound to the plan by its hash), written by ``rocknet plan`` beside the plan.

It builds the feature slice, head, `node.Node` and `link.Link`, picks the radio adapter the
runtime has (``_bleio`` on CircuitPython, ``bluetooth`` on MicroPython), and loops: pump the
radio, end a round once every member's rows are decoded (or at the round's deadline), begin
the next. Checkpoints go to ``/rocknet_ckpt.a`` and ``.b`` (alternating, checked, atomic), so
a reset board resumes from its last batch boundary and rejoins the fleet; the result goes to
``/rocknet_result.json``. It prints a line per epoch (the fleet's agreed evaluation accuracy,
the same on every board), a status line every ``every`` rounds and a summary at the end.

Starting: a fresh fleet waits in round 0 until every node's rows of round 0 arrived (all
boards are up), so boards can be switched on one after another. A board with a checkpoint
(or one that finds the fleet already past round 1) joins the round it hears and rejoins
through a leader decision (see `node`); if it hears nothing for a few round deadlines (the
whole fleet was reset), it starts the round after its checkpoint itself.

The loop is sans-clock and sans-radio for tests: `Runner` takes a ``radio(link)`` factory and
a ``clock()`` in ms; ``step()`` runs one pump of the radio and the round bookkeeping
(`rocknet.radio.sim` is an in-memory medium that needs neither).
"""

import json

from . import store
from .node import Node, Schedule, _sha256

PLAN_FILE = "/rocknet_plan.bin"
KEY_FILE = "/rocknet_key.bin"
DATA_FILE = "/rocknet_data.bin"
CHECKPOINT_FILE = "/rocknet_ckpt"
RESULT_FILE = "/rocknet_result.json"
DATA_KIND = "data"
DATA_VERSION = store.DATA_VERSION
CHECKPOINT_KIND = "checkpoint"
CHECKPOINT_VERSION = 2  # node checkpoint (version 1 is a bare head's, `checkpoint.py`)
_SLOTS = (".a", ".b")
_EXTRA = 4  # idle rounds a node keeps running after it applied the last sample
_BURST_MS = 500  # round 0: advertise this long after each news while waiting for the fleet
_FIX = "run `rocknet plan DATASET --nodes N --out DIR`, then `rocknet deploy --plan-dir DIR`"


class SetupError(Exception):
    """A file the runner needs is missing, damaged or does not match; the message names the
    fix."""


def plan_id(body):
    """Short hash binding a data file (and a result) to one plan file's body."""
    return "".join("%02x" % b for b in _sha256(bytes(body)).digest()[:8])


# ----- data files -----

def encode_data(node, pid, length, train=(), eval=(), predict=()):
    """Body of a data file: a JSON header line, then each train and eval sample as label byte
    + ``length`` int8 bytes, then each predict series (``length`` bytes)."""
    head = {"format": "rocknet-data", "node": node, "plan": pid, "length": length,
            "train": len(train), "eval": len(eval), "predict": len(predict)}
    parts = [json.dumps(head).encode(), b"\n"]
    for part in (train, eval):
        for series, label in part:
            if len(series) != length or not 0 <= label <= 254:
                raise ValueError("a sample needs %d bytes and a label 0..254" % length)
            parts.append(bytes([label]))
            parts.append(bytes(series))
    for series in predict:
        if len(series) != length:
            raise ValueError("a series needs %d bytes" % length)
        parts.append(bytes(series))
    return b"".join(parts)


def decode_data(body, source="data file"):
    """(header dict, {"train": [(bytes, label)], "eval": [...], "predict": [bytes]})."""
    nl = body.find(b"\n")
    try:
        head = json.loads(body[:nl])
        L = head["length"]
        counts = (head["train"], head["eval"], head["predict"])
    except (ValueError, KeyError, TypeError):
        raise SetupError("%s has no readable header; %s" % (source, _FIX)) from None
    if head.get("format") != "rocknet-data":
        raise SetupError("%s is not a rocknet data file; %s" % (source, _FIX))
    if len(body) - nl - 1 != (counts[0] + counts[1]) * (L + 1) + counts[2] * L:
        raise SetupError("%s has the wrong size for its header; %s" % (source, _FIX))
    o = nl + 1
    out = {}
    for name, n in (("train", counts[0]), ("eval", counts[1])):
        items = []
        for _ in range(n):
            items.append((bytes(body[o + 1:o + 1 + L]), body[o]))
            o += L + 1
        out[name] = items
    out["predict"] = [bytes(body[o + k * L:o + (k + 1) * L]) for k in range(counts[2])]
    return head, out


# ----- loading -----

def _read(path, kind, what):
    try:
        return store.read(path, kind)
    except OSError:
        raise SetupError("no %s (%s): %s" % (path, what, _FIX)) from None
    except store.CorruptFile as exc:
        raise SetupError("%s: %s (deploy it again: %s)" % (what, exc, _FIX)) from None


def load(plan=PLAN_FILE, key=KEY_FILE, data=DATA_FILE):
    """(plan dict, plan id, key bytes, samples) from the board's files, checked; `SetupError`
    naming the fix when one is missing, damaged, or belongs to another plan."""
    version, body = _read(plan, "plan", "this node's plan")
    if version != store.PLAN_VERSION:
        raise SetupError("%s is plan format %d; this rocknet reads %d: %s"
                         % (plan, version, store.PLAN_VERSION, _FIX))
    try:
        p = json.loads(body)
    except ValueError:
        raise SetupError("%s does not hold a readable plan: %s" % (plan, _FIX)) from None
    if not isinstance(p, dict) or p.get("format") != "rocknet-plan":
        raise SetupError("%s is not a node plan: %s" % (plan, _FIX))
    missing = [s for s in ("head", "schedule", "run") if s not in p]
    if missing:
        raise SetupError("%s has no %s section (a plan for validation only, or from an older "
                         "rocknet): %s" % (plan, "/".join(missing), _FIX))
    pid = plan_id(body)
    try:
        with open(key, "rb") as fh:
            k = fh.read()
    except OSError:
        raise SetupError("no %s (the fleet key): run `rocknet deploy --plan-dir DIR`, which "
                         "copies DIR/fleet.key to every board" % key) from None
    if len(k) < 16:
        raise SetupError("%s holds %d bytes, a fleet key needs 16: deploy again with "
                         "`rocknet deploy --plan-dir DIR`" % (key, len(k)))
    _, dbody = _read(data, DATA_KIND, "this node's data")
    head, samples = decode_data(dbody, data)
    if head.get("plan") != pid or head.get("node") != p["node"]:
        raise SetupError("%s belongs to another plan or node (data for node %s of plan %s, "
                         "the plan is node %d, %s): deploy the node_XX.data written with this "
                         "plan: %s" % (data, head.get("node"), head.get("plan"), p["node"], pid,
                                       _FIX))
    sched = p["schedule"]
    i = p["node"]
    for name in ("train", "eval", "predict"):
        want = sched.get(name) or []
        want = want[i] if i < len(want) else 0
        if len(samples[name]) != want:
            raise SetupError("%s holds %d %s samples, the plan's schedule %d: %s"
                             % (data, len(samples[name]), name, want, _FIX))
    return p, pid, k, samples


def open_radio(link):
    """The adapter this runtime has: `_bleio` (CircuitPython) or `bluetooth` (MicroPython)."""
    try:
        import _bleio  # noqa: F401
    except ImportError:
        _bleio = None
    if _bleio is not None:
        from .radio.bleio import BleioRadio

        return BleioRadio(link)
    try:
        import bluetooth  # noqa: F401
    except ImportError:
        import sys

        raise SetupError("no BLE radio on this runtime (%s): rocknet.run() needs CircuitPython's "
                         "_bleio or MicroPython's bluetooth module; `rocknet simulate` runs a "
                         "fleet without boards" % sys.platform) from None
    from .radio.bluetooth import BluetoothRadio

    try:
        radio = BluetoothRadio(link)
    except ValueError:
        raise SetupError("this plan's rounds need extended adverts (%d bytes), which "
                         "MicroPython's bluetooth module cannot send: re-plan with `rocknet "
                         "plan ... --radio legacy` and deploy again" % link.codec.size) from None
    radio.start()
    return radio


# ----- the loop -----

class Runner:
    """One board's training loop (see the module docstring).

    ``plan``, ``key``, ``samples``: as `load` returns them; ``radio``: factory ``radio(link)``
    -> adapter with ``now_ms()`` and ``step()`` (or ``poll()``), default `open_radio`;
    ``clock``: ms now (default the adapter's); ``out``: where lines go (default print);
    ``checkpoint``, ``result``: file paths (None: none written); ``every``: rounds between
    status lines; ``tail``: idle rounds at most after the schedule for its last decisions.
    """

    def __init__(self, plan, key, samples, radio=None, clock=None, out=None, pid=None,
                 checkpoint=CHECKPOINT_FILE, result=RESULT_FILE, every=50, tail=64,
                 log=False):
        from .head import Head
        from .link import Link

        run = plan["run"]
        self.pid = pid
        self.out = out or print
        self.schedule = Schedule.from_dict(plan["schedule"])
        self.ckpt_path = checkpoint
        self.result_path = result
        self.every = every
        self.tail = tail
        self.deadline_ms = int(run.get("deadline_ms", 1000))
        self._ckpt_round = 0
        self._ckpt_ok = checkpoint is not None
        node = Node(plan["node"], plan["nodes"], plan["features"], Head(plan), plan["classes"],
                    run["row_size"], self.schedule, data=samples,
                    window=run.get("window", 4), gone_after=run.get("gone_after", 8),
                    checkpoint_every=run.get("checkpoint_every", 0) if checkpoint else 0,
                    save=self._save, log=log)
        self.node = node
        self.resumed = self._restore() if checkpoint else None
        self.fresh = self.resumed is None
        self.link = Link(node.id, key, node.geo.owners(), run["row_size"],
                         run.get("profile", "extended"), timeout_ms=self.deadline_ms,
                         round_hint=self._ckpt_round)
        self.radio = (radio or open_radio)(self.link)
        self.clock = clock or self.radio.now_ms
        self.r = None  # round in progress
        self._round = None  # its mixer.Round (kept even once the link moved on)
        self._waiting = None  # startup: when we began waiting
        self._told = 0
        self._epochs_told = 0
        self._t0 = None
        self._rounds = 0
        self.finished = False
        self.result = None
        self._done_round = None
        # the digest as of the schedule's last sample (idle samples after it are decided
        # too, and nodes stop after different numbers of them)
        self.digest = node.digest
        record = node._record
        last = self.schedule.length - 1

        self.applied = {"A": 0, "D": 0}  # samples of the schedule applied / dropped here
        self.ends = [0, 0, 0]  # rounds ended: complete, at the deadline, behind the fleet

        def _record(kind, s, payload):
            record(kind, s, payload)
            if s <= last:
                self.digest = node.digest
                if kind == b"A" or kind == b"D":
                    self.applied[kind.decode()] += 1

        node._record = _record

    # ----- checkpoints -----

    def _slot_files(self):
        good = []
        for suffix in _SLOTS:
            path = self.ckpt_path + suffix
            try:
                version, body, _ = store.read_newest(path, CHECKPOINT_KIND)
            except store.CorruptFile as exc:
                self.out("rocknet: ignoring %s (%s)" % (path, exc))
                continue
            except OSError:
                continue
            nl = body.find(b"\n")
            if version != CHECKPOINT_VERSION or nl < 0:
                continue
            try:
                meta = json.loads(body[:nl])
                good.append((meta["seq"], meta["round"], body[nl + 1:], path))
            except (ValueError, KeyError, TypeError):
                continue
        good.sort(key=lambda g: -g[0])
        return good

    def _save(self, body):
        if not self._ckpt_ok:
            return
        good = self._slot_files() if not hasattr(self, "_seq") else None
        if good is not None:
            self._seq = good[0][0] if good else 0
        self._seq += 1
        meta = json.dumps({"seq": self._seq, "round": self.r or 0})
        path = self.ckpt_path + _SLOTS[self._seq % 2]
        try:
            store.write(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, meta.encode() + b"\n" + body)
        except OSError as exc:
            self._ckpt_ok = False
            self.out("rocknet: checkpoints off, cannot write %s (%s). On CircuitPython the "
                     "drive is read-only to code while USB has it: a boot.py with "
                     "storage.remount('/', readonly=False) makes it writable (and read-only "
                     "to the computer)." % (path, exc))

    def _restore(self):
        for seq, rnd, body, path in self._slot_files():
            try:
                self.node.restore(body)
            except (ValueError, KeyError) as exc:
                self.out("rocknet: ignoring %s (%s); starting fresh" % (path, exc))
                continue
            self._seq = seq
            self._ckpt_round = rnd
            self.out("rocknet: resumed from %s (sample %d, round %d); rejoining the fleet"
                     % (path, self.node.applied_through, rnd))
            return rnd
        return None

    # ----- rounds -----

    def _expected(self, r):
        """Row indices to wait for in round r: every member's control rows, and the series
        rows when a member owns sample r."""
        nd = self.node
        geo = nd.geo
        # members, and whoever we heard last round (a rebooted board asking to join: waiting
        # for its rows too lets the leader hold its message in consecutive rounds and admit it)
        members = nd.members | nd.heard_last | (1 << nd.id)
        rows = []
        at = self.schedule.at(r)
        if at is not None and (members >> at[1]) & 1:
            rows.extend(range(geo.series_rows))
        for n in range(geo.n):
            if (members >> n) & 1:
                first = geo.ctrl_index(n)
                rows.extend(range(first, first + geo.ctrl_rows))
        return rows

    def _complete(self, rnd, r):
        for i in self._expected(r):
            if rnd.row(i) is None:
                return False
        return True

    def _begin(self, r, now):
        self.r = r
        self._round = rnd = self.link.start_round(r, self.node.begin_round(r), now)
        need = 0
        for i in self._expected(r):
            need |= 1 << i
        rnd.need(need, now)  # done = these rows decoded; neighbours learn it from our flags
        self._rounds += 1

    def _end(self):
        rnd = self._round
        self.node.end_round(self.r, rnd.rows())
        self._progress()

    def step(self):
        """Pump the radio once, then end and begin rounds as due; False once finished."""
        if self.finished:
            if self.clock() >= self._linger_until:
                return False
            self._pump()  # a little longer: neighbours may still need our last rows
            return True
        self._pump()
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        link = self.link
        if self.r is None:
            if link.round is not None:
                self._begin(link.round_no, now)  # the fleet's current round
            elif self.fresh:
                self._begin(0, now)
                self._waiting = now
                self._wait_rank = self._round.rank
                self._burst_until = now + 4 * _BURST_MS
            elif now - self._t0 >= 3 * self.deadline_ms:
                self.out("rocknet: nobody heard; starting round %d" % (self._ckpt_round + 1))
                self._begin(self._ckpt_round + 1, now)
            return True
        rnd, r = self._round, self.r
        ahead = (link.round_no or r) - r
        if self._waiting is not None:  # round 0 of a fresh fleet: wait for every node
            if ahead >= 2:  # the fleet runs without us: we were reset before a checkpoint
                self._waiting = None
                self.out("rocknet: the fleet is at round %d; joining it" % link.round_no)
                self.node.rejoin()
                self._begin(link.round_no, now)
                return True
            if ahead == 0 and not self._all_heard(rnd):
                # Advertise round 0 in bursts: at start and whenever something new arrived
                # (a board switched on later), quiet otherwise, so the round's 256 packets
                # last however long the fleet takes to come up.
                if rnd.rank != self._wait_rank:
                    self._wait_rank = rnd.rank
                    self._burst_until = now + _BURST_MS
                rnd.deadline_ms = self._burst_until if now < self._burst_until else now
                if now - self._waiting >= 10000 * (self._told + 1):
                    self._told += 1
                    self.out("rocknet: waiting for node(s) %s to start"
                             % ",".join(str(n) for n in self._missing_nodes(rnd)))
                return True
            self._waiting = None
            rnd.deadline_ms = now + self.deadline_ms
        complete = self._complete(rnd, r)
        # A complete round stays open while a neighbour heard in it is unfinished (until the
        # deadline, or until someone started the next round): ending it starts the sample's
        # compute, and a computing board neither relays nor answers, just when that
        # neighbour needs it.
        settled = complete and (ahead >= 1 or rnd.done_ms is None or rnd.settled(now))
        if not (ahead >= 2 or now >= rnd.deadline_ms or settled):
            return True
        # how rounds end: every expected row decoded, the deadline, or the fleet ran ahead
        self.ends[0 if complete else 2 if ahead >= 2 else 1] += 1
        self._end()
        last = self.schedule.length - 1
        if self._done_round is None and self.node.applied_through >= last:
            self._done_round = r
        # a few idle rounds more: our messages relay the last decisions (the leader applies
        # its own only once someone echoed them)
        if r >= last and ((self._done_round is not None and r >= self._done_round + _EXTRA)
                          or r >= last + self.tail):
            self._finish(now)
            return True
        # the next round's deadline counts from now: ending this one computed for a while
        self._begin(max(r + 1, link.round_no or 0), self.clock())
        return True

    def _all_heard(self, rnd):
        geo = self.node.geo
        for i in range(geo.m):
            if rnd.row(i) is None and (i >= geo.series_rows or self.schedule.at(0) is not None):
                return False
        return True

    def _missing_nodes(self, rnd):
        geo = self.node.geo
        return [n for n in range(geo.n) if rnd.row(geo.ctrl_index(n)) is None]

    def _pump(self):
        self.radio.step()  # every adapter: one burst of radio work, blocking for a while

    def run(self):
        """Loop until the schedule is done; returns the result dict."""
        try:
            while self.step():
                pass
        finally:
            stop = getattr(self.radio, "stop", None)
            if stop is not None:
                stop()
        return self.result

    # ----- reporting -----

    def _members(self):
        nd = self.node
        return ",".join(str(n) for n in range(nd.n) if (nd.members >> n) & 1)

    def _progress(self):
        nd, sch = self.node, self.schedule
        while self._epochs_told < len(nd.accuracy):
            e, correct, seen = nd.accuracy[self._epochs_told]
            self._epochs_told += 1
            self.out("epoch %d/%d: accuracy %s | round %d/%d, commits %d, drops %d, members %s"
                     % (e + 1, sch.epochs, _pct(correct, seen), self.r + 1, sch.length,
                        nd.stats["commit"], nd.stats["drop"], self._members()))
        if self.every and (self.r + 1) % self.every == 0:
            el = self.clock() - self._t0
            self.out("round %d/%d: applied through sample %d, commits %d, drops %d, members %s, "
                     "%s, %d ms/round, adverts tx %d rx %d"
                     % (self.r + 1, sch.length, nd.applied_through, nd.stats["commit"],
                        nd.stats["drop"], self._members(),
                        "leader %s" % nd.leader if nd.synced else "rejoining",
                        el // max(1, self._rounds), self.link.stats["tx"],
                        self.link.stats["rx"]))

    def _finish(self, now):
        self.finished = True
        self._linger_until = now + 2 * self.deadline_ms
        nd = self.node
        digest = "".join("%02x" % b for b in self.digest)
        res = {"node": nd.id, "plan": self.pid, "rounds": self.r + 1,
               "ms": now - (self._t0 or now), "applied_through": nd.applied_through,
               "synced": nd.synced, "members": nd.members, "commit": self.applied["A"],
               "drop": self.applied["D"], "digest": digest, "ends": list(self.ends),
               "accuracy": [list(a) for a in nd.accuracy],
               "predictions": [[s, nd.predictions[s]] for s in sorted(nd.predictions)]}
        self.result = res
        self.out("rocknet: done after %d rounds, %d s: commits %d, drops %d, members %s, "
                 "digest %s" % (res["rounds"], res["ms"] // 1000, res["commit"], res["drop"],
                                self._members(), digest[:16]))
        if nd.accuracy:
            self.out("accuracy by epoch: " + ", ".join(
                "%d: %s" % (e + 1, _pct(c, s)) for e, c, s in nd.accuracy))
            e, c, s = nd.accuracy[-1]
            self.out("final accuracy: %s (the fleet's agreed evaluation, the same on every "
                     "board)" % _pct(c, s))
        if nd.predictions:
            self.out("predictions: %d series, classes %s" % (
                len(nd.predictions), " ".join(str(c) for _, c in res["predictions"])))
        if self.result_path:
            try:
                with open(self.result_path, "w") as fh:
                    fh.write(json.dumps(res))
            except OSError:
                self.out("rocknet: cannot write %s (read-only file system)" % self.result_path)


def _pct(correct, seen):
    if not seen:
        return "-"
    return "%d/%d = %d.%d %%" % (correct, seen, 100 * correct // seen,
                                 (1000 * correct // seen) % 10)


def setup(plan=PLAN_FILE, key=KEY_FILE, data=DATA_FILE, again=False, **kwargs):
    """What ``rocknet.run()`` does before its loop: load and check the files, build the
    `Runner`. Returns the runner, or the stored result dict when this board already finished
    this plan (its result file names the plan; ``again=True`` trains anyway). `SetupError`
    names the fix. `main` loops the runner; the simulator steps it."""
    say = kwargs.get("out") or print
    p, pid, k, samples = load(plan, key, data)
    result = kwargs.get("result", RESULT_FILE)
    if result and not again:
        try:
            with open(result) as fh:
                res = json.loads(fh.read())
        except (OSError, ValueError):
            res = None
        if isinstance(res, dict) and res.get("plan") == pid:
            say("rocknet: this board finished this plan already: %d rounds, commits %d, "
                  "drops %d, digest %s; accuracy by epoch %s (rocknet.run(again=True) trains "
                  "again)" % (res["rounds"], res["commit"], res["drop"], res["digest"][:16],
                              ", ".join(_pct(c, s) for _, c, s in res["accuracy"]) or "-"))
            return res
    say("rocknet: node %d of %d, %s, %d features, %d train / %d eval samples here, %d rounds"
          % (p["node"], p["nodes"], p.get("dataset", "?"), len(p["features"]["biases"]),
             len(samples["train"]), len(samples["eval"]),
             Schedule.from_dict(p["schedule"]).length))
    runner = Runner(p, k, samples, pid=pid, **kwargs)
    p = samples = None  # the node holds what it needs; free the rest of the plan
    try:
        import gc

        gc.collect()
    except ImportError:
        pass
    return runner


def main(plan=PLAN_FILE, key=KEY_FILE, data=DATA_FILE, again=False, **kwargs):
    """``rocknet.run()``: load the files, train, return the result. A missing or damaged
    file prints the fix and raises `SetupError` (so ``mpremote exec`` fails too)."""
    try:
        runner = setup(plan, key, data, again, **kwargs)
    except SetupError as exc:
        print("rocknet: " + str(exc))
        raise
    if isinstance(runner, dict):
        return runner
    return runner.run()
