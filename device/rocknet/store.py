"""Persistence for plans and checkpoints: atomic (write new, then rename) and checksummed.

A file is one header line ``ROCKNET <kind> <version> <sha256 of body, hex>`` followed by the
body bytes. A torn write or a flipped bit fails the checksum and is reported as
`CorruptFile`, never half-loaded. Works on CPython, MicroPython and CircuitPython (``os`` and
the SHA-256 `rocknet._compat` picks).
"""

import json
import os

from ._compat import sha256

_MAGIC = b"ROCKNET"
PLAN_VERSION = 1


class CorruptFile(ValueError):
    """A plan or checkpoint file failed its checks (torn, edited, or of the wrong kind)."""


def _hex(digest):
    return "".join("%02x" % b for b in digest)


def encode(kind, version, body):
    """Header + body bytes for ``body`` (bytes) of the given kind (str) and version (int)."""
    head = "%s %s %d %s\n" % (_MAGIC.decode(), kind, version, _hex(sha256(body).digest()))
    return head.encode() + body


def decode(data, kind, source="file"):
    """Body bytes of ``data`` after checking magic, kind and checksum; returns (version, body)."""
    nl = data.find(b"\n")
    if nl < 0 or not data.startswith(_MAGIC + b" "):
        raise CorruptFile("%s is not a rocknet %s file (no header); re-create it" % (source, kind))
    parts = data[:nl].decode().split(" ")
    if len(parts) != 4:
        raise CorruptFile("%s has a malformed header; re-create it" % source)
    if parts[1] != kind:
        raise CorruptFile("%s holds a %s, not a %s" % (source, parts[1], kind))
    body = data[nl + 1:]
    if _hex(sha256(body).digest()) != parts[3]:
        raise CorruptFile("%s failed its checksum (torn write or edited); re-create it or use "
                          "the previous copy" % source)
    return int(parts[2]), body


def write(path, kind, version, body):
    """Atomically replace ``path``: write ``path.tmp`` in full, then rename it over the old file.

    Where rename cannot replace (FAT on some ports), the old file is first moved to
    ``path.bak``; `read_newest` finds whichever complete copy survives a crash at any point.
    """
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(encode(kind, version, body))
    try:
        os.rename(tmp, path)
        return
    except OSError:
        pass
    bak = path + ".bak"
    try:
        os.remove(bak)
    except OSError:
        pass
    try:
        os.rename(path, bak)
    except OSError:
        pass
    os.rename(tmp, path)
    try:
        os.remove(bak)
    except OSError:
        pass


def read(path, kind):
    """(version, body) of one checked file; `CorruptFile` if it fails, OSError if missing."""
    with open(path, "rb") as fh:
        data = fh.read()
    return decode(data, kind, path)


def read_newest(path, kind):
    """(version, body, file) of the newest complete copy among ``path.tmp`` (a finished write
    not yet renamed), ``path`` and ``path.bak``. Raises `CorruptFile` naming every failure when
    none is good, OSError when none exists."""
    problems = []
    for cand in (path + ".tmp", path, path + ".bak"):
        try:
            version, body = read(cand, kind)
            return version, body, cand
        except CorruptFile as exc:
            problems.append(str(exc))
        except OSError:
            pass
    if problems:
        raise CorruptFile("; ".join(problems))
    raise OSError(2, "no %s at %s" % (kind, path))


def load_plan(path):
    """A node plan (dict) from its checked file, as written by `rocknet plan`."""
    version, body = read(path, "plan")
    if version != PLAN_VERSION:
        raise CorruptFile("%s is plan format %d; this rocknet reads %d: re-run `rocknet plan`"
                          % (path, version, PLAN_VERSION))
    plan = json.loads(body)
    if plan.get("format") != "rocknet-plan":
        raise CorruptFile("%s is not a node plan; re-run `rocknet plan`" % path)
    return plan
