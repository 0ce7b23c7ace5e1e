"""Checkpoints on a board's filesystem, the one format: two alternating slots (``path.a``,
``path.b``), each written atomically with a checksum by `store.write` (kind "checkpoint",
format version 2). A slot's body is a JSON line ``{"seq": n, "round": r}`` (the write's
sequence number and the radio round it was taken in) and the payload: a node's
(`Node.checkpoint`, what `runner.Runner` writes every ``checkpoint_every`` applied samples)
or a bare head's (`Head.save`, what ``RockNetClassifier.to_plans`` exports).

Saving overwrites the older slot, so a torn or corrupt newest copy still leaves the previous
good one, which `restore` then uses and says so. Imported only when a checkpoint is written or
read (the training loop drops it again, see `rocknet.forget`).

    seq, file = checkpoint.save("/rocknet_ckpt", node.checkpoint(), round_no)
    seq, round_no, file, note = checkpoint.restore("/rocknet_ckpt", node.restore)
"""

import json

from . import store

KIND = "checkpoint"
VERSION = 2
_SLOTS = (".a", ".b")


def slots(path):
    """([(seq, round, payload, file)] of the good slots, newest first; [problems found])."""
    good, problems = [], []
    for suffix in _SLOTS:
        f = path + suffix
        try:
            _, body, _ = store.read_newest(f, KIND, VERSION)
        except store.CorruptFile as exc:
            problems.append("%s (%s)" % (f, exc))
            continue
        except OSError:
            continue
        nl = body.find(b"\n")
        try:
            meta = json.loads(body[:nl])
            good.append((int(meta["seq"]), int(meta["round"]), body[nl + 1:], f))
        except (ValueError, KeyError, TypeError):
            problems.append("%s (no readable slot header: %s)" % (f, store.fix(KIND)))
    good.sort(key=lambda g: -g[0])
    return good, problems


def save(path, payload, round_no=0, seq=None):
    """Write ``payload`` (bytes, or a list of bytes-like parts) to the slot after the newest
    good one (or the slot of sequence number ``seq``); returns (seq, file written). OSError
    when the filesystem refuses (read-only)."""
    if seq is None:
        good, _ = slots(path)
        seq = good[0][0] + 1 if good else 1
    f = path + _SLOTS[seq % 2]
    meta = json.dumps({"seq": seq, "round": round_no}).encode() + b"\n"
    store.write(f, KIND, VERSION, [meta] + (payload if isinstance(payload, list) else [payload]))
    return seq, f


def save_next(path, payload, round_no, seq, out):
    """`save` after sequence number ``seq`` (None: after the newest good slot), for a board's
    loop: returns the new sequence number, or None when the filesystem refuses (said through
    ``out``, with the fix)."""
    try:
        return save(path, payload, round_no, None if seq is None else seq + 1)[0]
    except OSError as exc:
        out("rocknet: checkpoints off, cannot write %s (%s). On CircuitPython the drive is "
            "read-only to code while USB has it: a boot.py with storage.remount('/', "
            "readonly=False) makes it writable (and read-only to the computer)." % (path, exc))
        return None


def restore(path, load):
    """Hand the newest good slot's payload to ``load(payload)`` (e.g. `Node.restore`,
    `Head.load`); a slot whose payload ``load`` refuses with ValueError or KeyError (another
    plan, another node) is passed over for the older one. Returns (seq, round, file, note):
    note is None when the newest slot was used cleanly, else what was wrong and which copy was
    used. Raises OSError when there is no checkpoint, `store.CorruptFile` when no slot is good,
    and the last refusal (ValueError) when ``load`` refused every good slot."""
    good, problems = slots(path)
    if not good:
        if problems:
            raise store.CorruptFile("no good checkpoint at %s: %s" % (path, "; ".join(problems)))
        raise OSError(2, "no checkpoint at %s" % path)
    refused = None
    for seq, rnd, payload, f in good:
        try:
            load(payload)
        except (ValueError, KeyError) as exc:
            refused = exc
            problems.append("%s (%s)" % (f, exc))
            continue
        note = None
        if problems:
            note = ("checkpoint problem: ignoring %s; restored the last good one, %s"
                    % ("; ".join(problems), f))
        return seq, rnd, f, note
    raise refused


def node_payload(node):
    """A `node.Node`'s payload as a list of bytes-like parts (`save` writes them one after
    the other): a JSON line (node id, the sample it stands at, its membership view, the digest
    chain) and its head's state (`Head.save_parts`: the arrays' own buffers). Nothing of the
    ring of undecided samples: a restored node rejoins and fills its ring anew, so a
    checkpoint restores into a node whose plan has another ``run.pending``."""
    meta = {"node": node.id, "applied_through": node.applied_through,
            "epoch": node.epoch, "members": node.members, "view": node.view_sample,
            "since": node._since, "digest": "".join("%02x" % b for b in node.digest)}
    return [json.dumps(meta).encode() + b"\n"] + node.head.save_parts()


def restore_node(node, payload):
    """Put a `node_payload` back into ``node`` (then it rejoins: `Node.rejoin`). Another
    node's payload or a head of another plan raise ValueError, the node unchanged."""
    nl = payload.find(b"\n")
    meta = json.loads(payload[:nl])
    if meta["node"] != node.id:
        raise ValueError("checkpoint is node %d's, not node %d's" % (meta["node"], node.id))
    node.head.load(payload[nl + 1:])
    node.applied_through = meta["applied_through"]
    node.epoch = meta["epoch"]
    node.members = meta["members"]
    node.view_sample = meta["view"]
    node._since = meta["since"]
    # 16 bytes (`ccm.Chain`); a checkpoint of an older rocknet holds a 32-byte SHA-256 digest,
    # whose first 16 bytes carry the chain on (a restored node's digest is its own anyway)
    node.digest = bytes.fromhex(meta["digest"])[:16]
    node.rejoin()
