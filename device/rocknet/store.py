"""Persistence for plans, data files and checkpoints: atomic (write new, then rename) and
checksummed.

A file is one header line ``ROCKNET <kind> <version> <sha256 of body, hex>`` followed by the
body bytes. Whatever is wrong with a file (torn write, flipped bit in the header or the body,
another kind, another format version) is reported as `CorruptFile` naming the fix, never
half-loaded and never as another exception. Works on CPython, MicroPython and CircuitPython
(``os`` and the SHA-256 `rocknet._compat` picks).
"""

import json
import os

from ._compat import const, sha256

_MAGIC = b"ROCKNET"
_HEAD_MAX = const(128)  # bytes a header line fits in ("ROCKNET checkpoint 2 <64 hex>": 85)
_CHUNK = const(256)  # bytes hashed at a time by `check`
PLAN_VERSION = 2  # 2: a node holds (dilation, kernel) combinations (kernel_range per dilation)
DATA_VERSION = 1
# The format version this rocknet reads, for the kinds whose version `read` checks by default
# (checkpoints pass theirs: a bare head's and a node's differ).
VERSIONS = {"plan": PLAN_VERSION, "data": DATA_VERSION}
_FIXES = {
    "plan": "re-create it with `rocknet plan DATASET --nodes N --out DIR` (then `rocknet deploy "
            "--plan-dir DIR`)",
    "data": "re-create it with `rocknet plan DATASET --nodes N --out DIR` (then `rocknet deploy "
            "--plan-dir DIR`)",
    "checkpoint": "delete it: the board resumes from its other checkpoint or starts afresh",
}


class CorruptFile(ValueError):
    """A plan, data or checkpoint file failed its checks (torn, edited, or of another kind or
    version); the message names the file and the fix."""


def _hex(digest):
    return "".join("%02x" % b for b in digest)


def fix(kind):
    """What to do about a bad file of this kind."""
    return _FIXES.get(kind, "re-create it")


def _head(kind, version, digest):
    return ("%s %s %d %s\n" % (_MAGIC.decode(), kind, version, _hex(digest))).encode()


def encode(kind, version, body):
    """Header + body bytes for ``body`` (bytes) of the given kind (str) and version (int)."""
    return _head(kind, version, sha256(body).digest()) + body


def _header(data, kind, source):
    """(kind, version, hex digest, body start) of the header line, or CorruptFile."""
    nl = data.find(b"\n")
    if nl < 0 or not data.startswith(_MAGIC + b" "):
        raise CorruptFile("%s is not a rocknet %s file (no header): %s"
                          % (source, kind, fix(kind)))
    try:
        parts = bytes(data[:nl]).decode().split(" ")
    except UnicodeError:
        parts = ()
    if (len(parts) != 4 or not parts[2] or not all("0" <= c <= "9" for c in parts[2])
            or len(parts[3]) != 64):
        raise CorruptFile("%s has a damaged header (flipped bit or edited): %s"
                          % (source, fix(kind)))
    return parts[1], int(parts[2]), parts[3], nl + 1


def _verify(header, body_digest, kind, source, version):
    """The header's kind, checksum (against ``body_digest``, hex) and format version."""
    got_kind, got_version, digest, _ = header
    if got_kind != kind:
        raise CorruptFile("%s holds a %s, not a %s (or its header is damaged): %s"
                          % (source, got_kind, kind, fix(kind)))
    if body_digest != digest:
        raise CorruptFile("%s failed its checksum (torn write, flipped bit or edited): %s"
                          % (source, fix(kind)))
    if version is None:
        version = VERSIONS.get(kind)
    if version is not None and got_version != version:
        raise CorruptFile("%s is %s format %d; this rocknet reads %d: %s"
                          % (source, kind, got_version, version, fix(kind)))
    return got_version


def decode(data, kind, source="file", version=None):
    """(version, body) of ``data`` after checking magic, kind, checksum and the format version
    (``version``; default `VERSIONS` of the kind, unchecked for kinds not there).
    `CorruptFile` naming the fix for anything wrong."""
    header = _header(data, kind, source)
    body = data[header[3]:]
    return _verify(header, _hex(sha256(body).digest()), kind, source, version), body


def check(path, kind, version=None):
    """(version, body offset, body size, body SHA-256 hex) of one file, checked as `decode`
    checks it but hashed from the file in small chunks: the body is never held whole (a
    board keeps its plan and data in flash and reads them a part at a time). `CorruptFile`
    if it fails, OSError if missing."""
    with open(path, "rb") as fh:
        header = _header(fh.read(_HEAD_MAX), kind, path)
        fh.seek(header[3])
        h = sha256()
        buf = bytearray(_CHUNK)
        mv = memoryview(buf)
        size = 0
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
            size += n
    digest = _hex(h.digest())
    return _verify(header, digest, kind, path, version), header[3], size, digest


def write(path, kind, version, body):
    """Atomically replace ``path`` with ``body`` (bytes, or a list of bytes-like parts written
    one after the other): write ``path.tmp`` in full, then rename it over the old file.

    Where rename cannot replace (FAT on some ports), the old file is first moved to
    ``path.bak``; `read_newest` finds whichever complete copy survives a crash at any point.
    """
    tmp = path + ".tmp"
    parts = body if isinstance(body, list) else [body]
    h = sha256()
    for p in parts:
        h.update(p)
    with open(tmp, "wb") as fh:
        fh.write(_head(kind, version, h.digest()))
        for p in parts:  # a part at a time: the body is never assembled in the heap
            fh.write(p)
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


def read(path, kind, version=None):
    """(version, body) of one checked file (see `decode`); `CorruptFile` if it fails, OSError
    if missing."""
    with open(path, "rb") as fh:
        data = fh.read()
    return decode(data, kind, path, version)


def read_newest(path, kind, version=None):
    """(version, body, file) of the newest complete copy among ``path.tmp`` (a finished write
    not yet renamed), ``path`` and ``path.bak``. Raises `CorruptFile` naming every failure when
    none is good, OSError when none exists."""
    problems = []
    for cand in (path + ".tmp", path, path + ".bak"):
        try:
            got, body = read(cand, kind, version)
            return got, body, cand
        except CorruptFile as exc:
            problems.append(str(exc))
        except OSError:
            pass
    if problems:
        raise CorruptFile("; ".join(problems))
    raise OSError(2, "no %s at %s" % (kind, path))


def load_plan(path):
    """A node plan (dict) from its checked file, as written by `rocknet plan`."""
    _, body = read(path, "plan", PLAN_VERSION)
    try:
        plan = json.loads(body)
    except ValueError:
        plan = None
    if not isinstance(plan, dict) or plan.get("format") != "rocknet-plan":
        raise CorruptFile("%s is not a node plan: %s" % (path, fix("plan")))
    return plan
