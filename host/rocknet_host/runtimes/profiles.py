"""Runtime profiles: the module set of a board's firmware, imposed on the WebAssembly MicroPython.

The WebAssembly MicroPython 1.29 + ulab 6.12 that runs device code on this host has modules a
board lacks (``hashlib`` on CircuitPython 9) and lacks modules a board has (``aesio``,
``cryptolib``). A profile says which, and `install_spec` turns it into files and a Python
snippet the bridges (``mpy_bridge.mjs``, ``virtual_board.mjs``) install *before* rocknet is
imported:

- a module the board lacks raises ImportError (a file of that name that raises, found before
  the built-in, which MicroPython allows for its "extensible" modules such as ``hashlib``);
- ``hashlib`` with ``new`` only (CircuitPython 10.1+);
- ``aesio`` (CircuitPython API: ``AES(key, mode, IV)``, ``rekey``, ``encrypt_into``,
  ``decrypt_into``; modes ECB, CBC, CTR as on every CircuitPython board) and ``cryptolib``
  (MicroPython API: ``aes(key, mode, IV)``, ``encrypt``, ``decrypt``; modes 1 ECB and 2 CBC,
  6 CTR only where the profile's ``cryptolib_modes`` has it: MICROPY_PY_CRYPTOLIB_CTR is off
  by default and in the stock esp32 build), backed by Node.js's AES through the bridge
  (``rn_aes`` in ``board_profile.mjs``), keeping the state the real modules keep between calls
  (CBC chain, CTR counter);
- ulab functions the board's ulab lacks are removed (``ulab``, ``ulab.numpy`` and
  ``ulab.scipy`` are replaced in ``sys.modules`` by copies without them).

Facts per board: notes/board-fidelity.md. What a profile cannot change: float width (ulab
floats stay float64 here, float32 on boards), ``keepdims`` and the modulo fixes of ulab 6.12,
CircuitPython's packed 30-bit floats, and the ``js`` / ``jsffi`` modules of this build.
``radio`` names the radio module the board has (``_bleio`` or ``bluetooth``); the simulator
provides it, a profile does not.

>>> get("circuitpython-9").hashlib, get("micropython-esp32").code_format
('absent', 'mpy')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROFILE_DIR = "/tmp/rn_profile"  # outside the board's files (not mirrored, not listed)
DEFAULT = "webassembly"

# ulab 6.5.3 (CircuitPython 9.2+) against the 6.12 of this build; complex and numpy.random off.
_ULAB_65_MISSING = ("numpy.take", "numpy.bincount", "numpy.meshgrid", "numpy.ndim",
                    "numpy.random", "numpy.complex", "numpy.real", "numpy.imag",
                    "numpy.conjugate", "numpy.sort_complex", "scipy.integrate")

# Heap addresses (`Profile.heap_base`). nRF52840: RAM from 0x2000_0000, of which CircuitPython
# leaves the first 56 KB to the SoftDevice and 8 KB to a SPIM3 buffer; its static data and
# heap follow. ESP32: MicroPython's heap comes from the IDF heap in internal DRAM
# (0x3FFA_E000 up). nRF52840 DK under Zephyr: after the kernel's and the BLE stack's data.
_NRF52840_SD_HEAP = 0x2001_0000


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    hashlib: str                      # "full" (hashlib.sha256), "new-only", "absent"
    absent: tuple[str, ...] = ()      # further modules that must raise ImportError
    provides: tuple[str, ...] = ()    # modules emulated here: "aesio", "cryptolib"
    ulab_missing: tuple[str, ...] = ()  # "numpy.take", "scipy.integrate", ...
    code_format: str = "py"           # how the board loads rocknet: "py" or "mpy"
    float_repr: str = "boxed"         # Python floats: "boxed" (a heap object) or "packed"
    radio: str | None = None          # "_bleio" / "bluetooth": provided by the simulator
    cryptolib_modes: tuple[int, ...] = (1, 2)  # cryptolib's modes: 1 ECB, 2 CBC (+ 6 CTR)
    # where the board's GC heap starts (0: wherever WebAssembly puts it, ~0x30000). The
    # collector takes any word of a live block that spells the address of another block for a
    # pointer (ulab arrays and bytearrays are scanned too), so which int16 weights and 8-bit
    # codes keep garbage alive depends on the address; the bridges put the heap there.
    heap_base: int = 0
    notes: tuple[str, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hashlib": self.hashlib, "absent": list(self.absent),
                "provides": list(self.provides), "ulab_missing": list(self.ulab_missing),
                "code_format": self.code_format, "float_repr": self.float_repr,
                "radio": self.radio, "cryptolib_modes": list(self.cryptolib_modes),
                "heap_base": self.heap_base}


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("webassembly", "MicroPython 1.29 + ulab 6.12 as built for WebAssembly (no changes)",
            hashlib="full"),
    Profile("circuitpython-9",
            "CircuitPython 9.2 / 10.0 on the Feather / XIAO nRF52840: no hashlib, aesio, "
            "_bleio, ulab 6.5.3 without complex and numpy.random",
            hashlib="absent", absent=("cryptolib", "bluetooth", "machine"),
            provides=("aesio",), ulab_missing=_ULAB_65_MISSING, code_format="py",
            float_repr="packed", radio="_bleio", heap_base=_NRF52840_SD_HEAP),
    Profile("circuitpython-10",
            "CircuitPython 10.1+ on the Feather / XIAO nRF52840: hashlib with new() only, "
            "aesio, _bleio, ulab 6.5.3 without complex and numpy.random",
            hashlib="new-only", absent=("cryptolib", "bluetooth", "machine"),
            provides=("aesio",), ulab_missing=_ULAB_65_MISSING, code_format="py",
            float_repr="packed", radio="_bleio", heap_base=_NRF52840_SD_HEAP),
    Profile("micropython-esp32",
            "MicroPython 1.29 esp32 with ulab (tools/firmware/esp32-ulab.md): hashlib, "
            "cryptolib, bluetooth",
            hashlib="full", absent=("aesio", "_bleio"), provides=("cryptolib",),
            code_format="mpy", radio="bluetooth", heap_base=0x3FFB_0000),
    Profile("micropython-nrf",
            "MicroPython 1.29 zephyr port on the nRF52840 DK with BLE and ulab "
            "(tools/firmware/nrf52840-zephyr.md): hashlib, bluetooth, no cryptolib",
            hashlib="full", absent=("aesio", "_bleio", "cryptolib"), code_format="mpy",
            radio="bluetooth", heap_base=0x2000_8000),
)}


def get(name: str) -> Profile:
    """The profile called ``name``; a clear error lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown runtime profile {name!r}: choose one of "
                         f"{', '.join(PROFILES)}") from None


def _raises(name: str) -> str:
    return f"raise ImportError(\"no module named '{name}'\")\n"


_HASHLIB_NEW_ONLY = '''"""hashlib of CircuitPython 10.1+: new(name, data) only."""
from uhashlib import sha256 as _sha256


def new(name, data=b""):
    if name != "sha256":
        raise ValueError("unsupported hash type")
    return _sha256(data)
'''

# Node.js's AES through the bridge: rn_aes(mode, key_hex, iv_hex, data_hex, decrypt) -> hex,
# mode "ecb" (whole blocks), "cbc" (whole blocks, iv) or "ctr" (any length, iv = counter block
# incremented big-endian over all 128 bits). The modules keep what the real ones keep between
# calls: aesio (tiny-AES) the CBC chain and the CTR counter, its keystream restarted at a block
# boundary on every call; cryptolib (mbedTLS) the CBC chain and the CTR counter and offset.
AES_BRIDGE = """
def _iv_add(iv, k):
    return ((int.from_bytes(iv, "big") + k) % (1 << 128)).to_bytes(16, "big")


def _xor_ctr(key, iv, off, data):
    n = off + len(data)
    ks = bytes.fromhex(_aes("ctr", key, iv.hex(), bytes((n + 15) // 16 * 16).hex(), False))
    return bytes(a ^ b for a, b in zip(data, ks[off:])), _iv_add(iv, n // 16), n % 16
"""

_AESIO = '''"""aesio of CircuitPython (ECB, CBC, CTR as its tiny-AES), backed by Node.js's AES."""
import js as _js

MODE_ECB = 1
MODE_CBC = 2
MODE_CTR = 6
_aes = _js.rn_aes
''' + AES_BRIDGE + '''

class AES:
    def __init__(self, key, mode=MODE_ECB, IV=None, segment_size=8):
        if mode not in (MODE_ECB, MODE_CBC, MODE_CTR):
            raise TypeError("Requested AES mode is unsupported")
        self.mode = mode
        self.rekey(key, IV)

    def rekey(self, key, IV=None):
        key = bytes(key)
        if len(key) not in (16, 24, 32):
            raise TypeError("Key must be 16, 24, or 32 bytes long")
        if IV is not None and len(IV) != 16:
            raise TypeError("IV must be 16 bytes long")
        self._key = key.hex()
        self._iv = bytes(IV) if IV is not None else bytes(16)

    def _run(self, src, dest, decrypt):
        src = bytes(src)
        n = len(src)
        if n != len(dest):
            raise ValueError("Source and destination buffers must be the same length")
        if self.mode == MODE_ECB and n != 16:
            raise ValueError("ECB only operates on 16 bytes at a time")
        if self.mode == MODE_CBC and n % 16:
            raise ValueError("CBC blocks must be multiples of 16 bytes")
        if self.mode == MODE_CTR:
            out, self._iv, _ = _xor_ctr(self._key, self._iv, 0, src)
        else:
            mode = "cbc" if self.mode == MODE_CBC else "ecb"
            out = bytes.fromhex(_aes(mode, self._key, self._iv.hex(), src.hex(), decrypt))
            if self.mode == MODE_CBC and n:
                self._iv = (src if decrypt else out)[-16:]
        dest[:] = out

    def encrypt_into(self, src, dest):
        self._run(src, dest, False)

    def decrypt_into(self, src, dest):
        self._run(src, dest, True)
'''

_CRYPTOLIB = '''"""cryptolib of MicroPython (modes 1 ECB, 2 CBC, 6 CTR where _MODES has
it), backed by Node.js's AES."""
import js as _js

_aes = _js.rn_aes
_MODES = @MODES@
''' + AES_BRIDGE + '''

class aes:
    def __init__(self, key, mode, IV=None):
        key = bytes(key)
        if mode not in _MODES:
            raise ValueError("mode")
        if len(key) not in (16, 32):
            raise ValueError("key")
        if IV is not None and len(IV) != 16:
            raise ValueError("IV")
        if IV is None and mode != 1:
            raise ValueError("IV")
        self._key = key.hex()
        self._mode = mode
        self._iv = bytes(IV) if IV is not None else bytes(16)
        self._off = 0
        self._dir = None

    def _run(self, data, out, decrypt):
        if self._dir is None:
            self._dir = decrypt
        elif self._dir != decrypt:
            raise ValueError("can't encrypt & decrypt")
        data = bytes(data)
        if self._mode != 6 and len(data) % 16:
            raise ValueError("blksize % 16")
        if out is not None and len(out) < len(data):
            raise ValueError("output too small")
        if self._mode == 6:
            r, self._iv, self._off = _xor_ctr(self._key, self._iv, self._off, data)
        else:
            mode = "cbc" if self._mode == 2 else "ecb"
            r = bytes.fromhex(_aes(mode, self._key, self._iv.hex(), data.hex(), decrypt))
            if self._mode == 2 and data:
                self._iv = (data if decrypt else r)[-16:]
        if out is None:
            return r
        out[:len(r)] = r
        return out

    def encrypt(self, in_buf, out_buf=None):
        return self._run(in_buf, out_buf, False)

    def decrypt(self, in_buf, out_buf=None):
        return self._run(in_buf, out_buf, True)
'''


def _ulab_copy(module: str, missing: list[str], subs: dict[str, str]) -> str:
    """A module that copies ``ulab.<module>`` (or ``ulab``) without the ``missing`` names."""
    src = f"from ulab import {module} as _m\n" if module else "import ulab as _m\n"
    src += (f"_skip = {sorted(set(missing) | set(subs))!r}\n"
            "_g = globals()\n"
            "for _k in dir(_m):\n"
            "    if _k not in _skip and not _k.startswith('__'):\n"
            "        _g[_k] = getattr(_m, _k)\n"
            "del _g, _k, _m, _skip\n")
    for name, mod in subs.items():
        src += f"import {mod} as {name}\n"
    return src


def install_spec(profile: str | Profile) -> dict[str, Any]:
    """Files (under ``dir``) and the snippet that installs ``profile`` in a fresh interpreter;
    the bridges apply it before anything imports rocknet."""
    from .heap import TRACKER

    p = profile if isinstance(profile, Profile) else get(profile)
    files: dict[str, str] = {"_rn_heap.py": TRACKER}
    code = ["import sys", f"sys.path.append({PROFILE_DIR!r})"]
    absent = list(p.absent) + (["hashlib"] if p.hashlib == "absent" else [])
    for name in absent:
        files[f"{name}.py"] = _raises(name)
    if p.hashlib == "new-only":
        files["hashlib.py"] = _HASHLIB_NEW_ONLY
    if "aesio" in p.provides:
        files["aesio.py"] = _AESIO
    if "cryptolib" in p.provides:
        files["cryptolib.py"] = _CRYPTOLIB.replace("@MODES@", repr(p.cryptolib_modes))
    if p.ulab_missing:
        tops = {m.split(".", 1)[0] for m in p.ulab_missing}
        per: dict[str, list[str]] = {t: [] for t in tops}
        top_missing: list[str] = []
        for m in p.ulab_missing:
            top, _, rest = m.partition(".")
            (per[top] if rest else top_missing).append(rest or top)
        subs = {}
        for top, names in per.items():
            if top in top_missing:
                continue
            files[f"_rn_ulab_{top}.py"] = _ulab_copy(top, names, {})
            subs[top] = f"_rn_ulab_{top}"
        files["_rn_ulab.py"] = _ulab_copy("", top_missing, subs)
        code += ["import _rn_ulab", "sys.modules['ulab'] = _rn_ulab"]
        code += [f"sys.modules['ulab.{t}'] = _rn_ulab.{t}" for t in subs]
        code += ["del _rn_ulab"]
    # a board's own modules are C in its firmware: loaded here before anything is measured,
    # their Python stand-ins sit in the interpreter's baseline, not in rocknet's heap
    code += [f"import {m}\ndel {m}" for m in p.provides]
    code += ["del sys"]
    return {"dir": PROFILE_DIR, "files": files, "code": "\n".join(code) + "\n",
            "name": p.name, "heap_base": p.heap_base}


def _host_rn_aes(mode: str, key_hex: str, iv_hex: str, data_hex: str, decrypt: bool) -> str:
    """``rn_aes`` of ``board_profile.mjs`` on CPython (the cryptography package)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    m: Any = (modes.ECB() if mode == "ecb" else modes.CBC(bytes.fromhex(iv_hex))
              if mode == "cbc" else modes.CTR(bytes.fromhex(iv_hex)))
    c = Cipher(algorithms.AES(bytes.fromhex(key_hex)), m)
    op = c.decryptor() if decrypt and mode != "ctr" else c.encryptor()
    return (op.update(bytes.fromhex(data_hex)) + op.finalize()).hex()


def host_aes_module(name: str, cryptolib_modes: tuple[int, ...] = (1, 2, 6)) -> Any:
    """The emulated ``aesio`` or ``cryptolib`` of the profiles as a CPython module (the same
    source, its AES from the cryptography package): device code run on CPython then takes a
    board's AES code path, as `benches.protocol` measures it."""
    import types

    if name not in ("aesio", "cryptolib"):
        raise ValueError(f"no emulated AES module {name!r}: aesio or cryptolib")
    src = _AESIO if name == "aesio" else _CRYPTOLIB.replace("@MODES@", repr(cryptolib_modes))
    mod = types.ModuleType(name)
    mod.__dict__["_js"] = types.SimpleNamespace(rn_aes=_host_rn_aes)
    exec(compile(src.replace("import js as _js\n", ""), f"<{name}>", "exec"), mod.__dict__)
    return mod
