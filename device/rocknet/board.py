"""The board's start-up: ``rocknet.run()`` trains this board's part of the fleet over the radio.

    import rocknet
    rocknet.run()           # CircuitPython: the whole of code.py (`rocknet deploy --autostart`)

It reads three files that `rocknet deploy --plan-dir DIR` put on the board:

- ``/rocknet_plan.bin``: this node's plan (features, the ``head`` section, the fleet's
  ``schedule`` and the ``run`` section: radio profile, row size, round deadline, relay
  window, checkpoint interval, what the ring keeps of a sample: codes or series, and its
  slots, ``pending``: 2 x window + 4 in a plan without it), written by ``rocknet plan``;
- ``/rocknet_key.bin``: the fleet's network key;
- ``/rocknet_data.bin``: this node's own samples, "as if it had measured them" (int8 series
  and labels, bound to the plan by its hash), written by ``rocknet plan`` beside the plan.

`setup` checks them and builds the `runner.Runner` (feature slice, head, `node.Node`,
`link.Link`, and the radio adapter the runtime has: ``_bleio`` on CircuitPython,
``bluetooth`` on MicroPython); ``rocknet.run()`` then drops this module (its code leaves the
heap: `rocknet.forget`) and loops the runner. Checkpoints go to ``/rocknet_ckpt.a`` and
``.b`` (`rocknet.checkpoint`: alternating, checked, atomic), so a reset board resumes from its
last batch boundary and rejoins the fleet; the result goes to ``/rocknet_result.json``. The
loop prints a line per epoch (the fleet's agreed evaluation accuracy, the same on every
board), a status line every ``every`` rounds and a summary at the end.

Starting: a fresh fleet waits in round 0 until every node's rows of round 0 arrived (all
boards are up), so boards can be switched on one after another. A board with a checkpoint
(or one that finds the fleet already past round 1) joins the round it hears and rejoins
through a leader decision (see `node`); if it hears nothing for a few round deadlines (the
whole fleet was reset), it starts the round after its checkpoint itself.
"""

import json

from . import store
from ._compat import const
from ._compat import sha256 as _sha256
from .node import Node, Schedule
from .report import _pct
from .runner import CHECKPOINT_FILE, RESULT_FILE, Runner  # noqa: F401 (the board's files)
from .samples import Phase

PLAN_FILE = "/rocknet_plan.bin"
KEY_FILE = "/rocknet_key.bin"
DATA_FILE = "/rocknet_data.bin"
DATA_KIND = "data"
DATA_VERSION = store.DATA_VERSION
_FIX = "run `rocknet plan DATASET --nodes N --out DIR`, then `rocknet deploy --plan-dir DIR`"
_KEEP = const(1024)  # plan sections up to this long (text) are kept once parsed
_SCAN = const(128)  # bytes read at a time looking for a plan's lines
_LEAD = const(64)  # bytes of a plan line read for its key
_NONE = object()
# the set-up code `rocknet.start` drops once the runner is built (this module included; sha256:
# the pure-Python SHA-256 the file checks loaded on a port without hashlib)
SETUP_MODULES = ("board", "checkpoint", "store", "head_state", "node_init", "head_init",
                 "minirocket_init", "schedule_init", "report", "runner_start", "wire_init",
                 "ccm_init", "keys", "_compat_aes", "sha256")


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


def _data_header(line, rest, source):
    """(header dict, (train, eval, predict) counts, series length) of a data file whose header
    line is ``line`` and whose samples take ``rest`` bytes; `SetupError` naming the fix."""
    try:
        head = json.loads(line)
        L = head["length"]
        counts = (head["train"], head["eval"], head["predict"])
    except (ValueError, KeyError, TypeError):
        raise SetupError("%s has no readable header; %s" % (source, _FIX)) from None
    if head.get("format") != "rocknet-data":
        raise SetupError("%s is not a rocknet data file; %s" % (source, _FIX))
    if rest != (counts[0] + counts[1]) * (L + 1) + counts[2] * L:
        raise SetupError("%s has the wrong size for its header; %s" % (source, _FIX))
    return head, counts, L


def decode_data(body, source="data file"):
    """(header dict, {"train": [(bytes, label)], "eval": [...], "predict": [bytes]})."""
    nl = body.find(b"\n")
    head, counts, L = _data_header(body[:nl], len(body) - nl - 1, source)
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


def open_data(path=DATA_FILE):
    """(header dict, samples) of a data file, checked (checksum, size) without reading it
    into RAM: what `decode_data` returns, each phase a `samples.Phase` reading one sample at a
    time from flash; `SetupError` naming the fix."""
    _, start, size, _ = _check(path, DATA_KIND, "this node's data")
    with open(path, "rb") as fh:
        fh.seek(start)
        line = fh.readline()
    head, counts, L = _data_header(line.rstrip(b"\n"), size - len(line), path)
    o, rec = start + len(line), L + 1
    return head, {"train": Phase(path, o, counts[0], rec),
                  "eval": Phase(path, o + counts[0] * rec, counts[1], rec),
                  "predict": Phase(path, o + (counts[0] + counts[1]) * rec, counts[2], L,
                                   False)}


class Plan:
    """A node plan read from its file a section at a time, never whole: ``plan[key]``,
    ``plan.get(key)``, ``key in plan`` for its top-level keys. ``rocknet plan`` writes one
    top-level key per line; a section's line is parsed when asked for, the small ones kept,
    those over ``keep`` bytes (the head's scaling, the slice's biases) parsed anew each time,
    so the builder holds one large section at a time. A plan on one line is parsed whole."""

    def __init__(self, path, offset, size, keep=_KEEP):
        self.path = path
        self.keep = keep
        self._kept = {}
        self._where = {}  # key -> (offset, length) of its value's text
        with open(path, "rb") as fh:
            fh.seek(offset)
            ends = []  # offsets of the body's newlines
            buf = bytearray(_SCAN)
            pos = offset
            while pos < offset + size:
                n = fh.readinto(buf)
                if not n:
                    break
                chunk = bytes(buf[:n])
                i = chunk.find(b"\n")
                while i >= 0:
                    ends.append(pos + i)
                    i = chunk.find(b"\n", i + 1)
                pos += n
            end = offset + size
            if not ends or ends[0] != offset + 1:  # one line: an older plan, parsed whole
                fh.seek(offset)
                p = json.loads(fh.read(size))
                if not isinstance(p, dict):
                    raise ValueError("not a plan")
                self._kept = p
                return
            ends.append(end)
            for j in range(len(ends) - 1):
                a, b = ends[j], ends[j + 1]
                fh.seek(a + 1)
                lead = fh.read(min(b - a - 1, _LEAD))
                q = lead.find(b'":')
                if lead[:1] != b'"' or q < 0:
                    continue  # the closing brace
                key = lead[1:q].decode()
                start = a + 1 + q + 2
                stop = b - 1 if _byte(fh, b - 1) == b"," else b
                self._where[key] = (start, stop - start)

    def _load(self, key):
        at = self._where.get(key)
        if at is None:
            return _NONE
        with open(self.path, "rb") as fh:
            fh.seek(at[0])
            v = json.loads(fh.read(at[1]))
        if at[1] <= self.keep:
            self._kept[key] = v
        return v

    def __getitem__(self, key):
        v = self._kept.get(key, _NONE)
        if v is _NONE:
            v = self._load(key)
        if v is _NONE:
            raise KeyError(key)
        return v

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return key in self._kept or key in self._where


def _byte(fh, at):
    fh.seek(at)
    return fh.read(1)


# ----- loading -----

def _check(path, kind, what):
    try:
        return store.check(path, kind)
    except OSError:
        raise SetupError("no %s (%s): %s" % (path, what, _FIX)) from None
    except store.CorruptFile as exc:
        raise SetupError("%s: %s (deploy it again: %s)" % (what, exc, _FIX)) from None


def load(plan=PLAN_FILE, key=KEY_FILE, data=DATA_FILE):
    """(plan, plan id, key bytes, samples) from the board's files, checked; `SetupError`
    naming the fix when one is missing, damaged, or belongs to another plan. The plan is a
    `Plan` (read a section at a time), the samples `samples.Phase`s (read a sample at a
    time): both stay in flash."""
    version, start, size, digest = _check(plan, "plan", "this node's plan")
    if version != store.PLAN_VERSION:
        raise SetupError("%s is plan format %d; this rocknet reads %d: %s"
                         % (plan, version, store.PLAN_VERSION, _FIX))
    try:
        p = Plan(plan, start, size)
        ok = p.get("format") == "rocknet-plan"
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise SetupError("%s is not a node plan: %s" % (plan, _FIX))
    missing = [s for s in ("head", "schedule", "run") if s not in p]
    if missing:
        raise SetupError("%s has no %s section (a plan for validation only, or from an older "
                         "rocknet): %s" % (plan, "/".join(missing), _FIX))
    pid = digest[:16]  # plan_id of the body: its SHA-256, which the header holds
    try:
        with open(key, "rb") as fh:
            k = fh.read()
    except OSError:
        raise SetupError("no %s (the fleet key): run `rocknet deploy --plan-dir DIR`, which "
                         "copies DIR/fleet.key to every board" % key) from None
    if len(k) < 16:
        raise SetupError("%s holds %d bytes, a fleet key needs 16: deploy again with "
                         "`rocknet deploy --plan-dir DIR`" % (key, len(k)))
    head, samples = open_data(data)
    i = p["node"]
    if head.get("plan") != pid or head.get("node") != i:
        raise SetupError("%s belongs to another plan or node (data for node %s of plan %s, "
                         "the plan is node %d, %s): deploy the node_XX.data written with this "
                         "plan: %s" % (data, head.get("node"), head.get("plan"), i, pid, _FIX))
    sched = p["schedule"]
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


def build_runner(self, plan, key, samples, radio=None, clock=None, out=None, pid=None,
                 checkpoint=CHECKPOINT_FILE, result=RESULT_FILE, every=50, tail=64, log=False):
    """`runner.Runner`'s constructor (here, so that its code leaves the heap with the rest of
    the set-up): the node (slice, head) from the plan, its checkpoint restored, the link and
    the radio. Options as `runner.Runner` documents them."""
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
    self._seq = None  # sequence number of the last checkpoint written or restored
    node = Node(plan["node"], plan["nodes"], plan["features"], Head(plan), plan["classes"],
                run["row_size"], self.schedule, data=samples,
                window=run.get("window", 4), gone_after=run.get("gone_after", 8),
                checkpoint_every=run.get("checkpoint_every", 0) if checkpoint else 0,
                save=self._save, log=log, keep=run.get("keep", "codes"),
                pending=run.get("pending"))
    self.node = node
    self.resumed = _restore(self) if checkpoint else None
    self.fresh = self.resumed is None
    self.link = Link(node.id, key, node.geo.owners(), run["row_size"],
                     run.get("profile", "extended"), timeout_ms=self.deadline_ms,
                     round_hint=self._ckpt_round)
    # dicts whose keys come and go, or arrive the first time something rare happens (a
    # round's replay windows, reasons counted), get their tables now: the heap between
    # rounds does not step up when a third round or a new reason turns up
    replay = self.link.codec.replay
    for d in replay._spare:
        _sized(d, plan["nodes"])
    _sized(replay._rounds, len(replay._spare))  # as many rounds as it keeps windows for
    _sized(self.link.codec.rejected, 11)  # wire's reasons, and the link's stale, future
    _sized(node.drop_why, 8)  # the leader's reasons (`node.Node._why`)
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
    # too, and nodes stop after different numbers of them): `Runner._record`
    self.digest = node.digest
    self._last = self.schedule.length - 1
    self.applied = {"A": 0, "D": 0}  # samples of the schedule applied / dropped here
    self.ends = [0, 0, 0]  # rounds ended: complete, at the deadline, behind the fleet
    self._node_record = node._record
    node._record = self._record


def _sized(d, n):
    """``d`` with a table for ``n`` more keys (deleting keys keeps a dict's table)."""
    for k in range(-n, 0):
        d[k] = 0
    for k in range(-n, 0):
        del d[k]
    return d


def _restore(r):
    """Resume ``r``'s node from the newest good checkpoint; the round it was taken in, or
    None (no checkpoint, or none of this plan and node: start fresh)."""
    # head_state too, restoring or not: loading a module interns its names for good, and
    # a board's heap between rounds should not step up at the first checkpoint written
    from . import checkpoint, head_state  # noqa: F401

    try:
        r._seq, rnd, path, note = checkpoint.restore(r.ckpt_path, r.node.restore)
    except OSError:
        return None
    except ValueError as exc:  # no good slot, or none of this plan and node
        r.out("rocknet: ignoring the checkpoints (%s); starting fresh" % exc)
        return None
    if note:
        r.out("rocknet: " + note)
    r._ckpt_round = rnd
    r.out("rocknet: resumed from %s (sample %d, round %d); rejoining the fleet"
          % (path, r.node.applied_through, rnd))
    return rnd


def setup(plan=PLAN_FILE, key=KEY_FILE, data=DATA_FILE, again=False, **kwargs):
    """What ``rocknet.run()`` does before its loop: load and check the files, build the
    `Runner`. Returns the runner, or the stored result dict when this board already finished
    this plan (its result file names the plan; ``again=True`` trains anyway). A missing or
    damaged file prints the fix and raises `SetupError` (so ``mpremote exec`` fails too).
    ``rocknet.run()`` loops the runner; the simulator steps it."""
    say = kwargs.get("out") or print
    try:
        p, pid, k, samples = load(plan, key, data)
    except SetupError as exc:
        say("rocknet: " + str(exc))
        raise
    result = kwargs.get("result", RESULT_FILE)
    if result and not again:
        try:
            with open(result) as fh:  # its first line: all but the predictions (`report`)
                line = fh.readline().rstrip()
            res = json.loads(line[:-1] + "}" if line.endswith(",") else line)
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
    try:
        runner = Runner(p, k, samples, pid=pid, **kwargs)
    except SetupError as exc:
        say("rocknet: " + str(exc))
        raise
    p = samples = None  # the node holds what it needs; free the rest of the plan
    try:
        import gc

        gc.collect()
    except ImportError:
        pass
    return runner
