"""Head checkpoints on a board's filesystem: two alternating slots (``path.a``, ``path.b``),
each written atomically with a checksum by `store.write`. Saving overwrites the older slot,
so a torn or corrupt newest copy still leaves the previous good one, which `restore` then
uses and says so.

    checkpoint.save(head, "/head.ckpt")
    note = checkpoint.restore(head, "/head.ckpt")   # None, or what was wrong and what was used
"""

from . import store

KIND = "checkpoint"
VERSION = 1
SLOTS = (".a", ".b")


def _read(path):
    """(seq, body, file) of one slot, or raises CorruptFile / OSError."""
    version, body, used = store.read_newest(path, KIND)
    if version != VERSION:
        raise store.CorruptFile("%s is checkpoint format %d; this rocknet reads %d"
                                % (used, version, VERSION))
    nl = body.find(b"\n")
    try:
        seq = int(body[:nl])
    except ValueError:
        raise store.CorruptFile("%s has no sequence number" % used) from None
    return seq, body[nl + 1:], used


def _slots(path):
    """Good slots newest first, and the problems found."""
    good, problems = [], []
    for suffix in SLOTS:
        try:
            good.append(_read(path + suffix))
        except store.CorruptFile as exc:
            problems.append(str(exc))
        except OSError:
            pass
    good.sort(key=lambda g: -g[0])
    return good, problems


def save(head, path):
    """Write the head's state to the slot not holding the newest good checkpoint; returns
    the file written."""
    good, _ = _slots(path)
    seq = good[0][0] + 1 if good else 1
    target = path + SLOTS[seq % 2]
    store.write(target, KIND, VERSION, b"%d\n" % seq + head.save())
    return target


def restore(head, path, verbose=True):
    """Load the newest good checkpoint into ``head``. Returns None when the newest slot was
    used cleanly, else a message naming what was corrupt and which copy was restored.
    Raises OSError when there is no checkpoint, `store.CorruptFile` when none is good, and
    ValueError (head unchanged) when it belongs to another plan."""
    good, problems = _slots(path)
    if not good:
        if problems:
            raise store.CorruptFile("no good checkpoint at %s: %s" % (path, "; ".join(problems)))
        raise OSError(2, "no checkpoint at %s" % path)
    seq, body, used = good[0]
    head.load(body)
    note = None
    newer_bad = problems and (len(good) == 1)
    if newer_bad:
        note = ("checkpoint problem: %s; restored the last good one, %s (step %d)"
                % ("; ".join(problems), used, head.t))
        if verbose:
            print(note)
    return note
