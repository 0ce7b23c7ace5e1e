"""`rocknet deploy --romfs`: the image is byte for byte what `mpremote romfs build` writes for the
package, MicroPython's own VfsRom reads every file back with the hash deploy sent, and a board
without a usable ROMFS partition (the WebAssembly virtual board has `vfs.rom_ioctl` with a
0-byte partition; CircuitPython has none) gets the file install and a message naming the fix.
No test writes a ROMFS partition: no runtime here has a writable one."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from rocknet_host.cli import main
from rocknet_host.hardware import deploy as dp
from rocknet_host.runtimes.micropython import MicroPython


@pytest.fixture(scope="module")
def package() -> dict[str, bytes]:
    return dp.Bundle(dp.compile_mpy(dp.package_sources())).with_manifest(dp.package_version())


def test_image_is_what_mpremote_romfs_build_writes(package, tmp_path):
    for rel, body in package.items():
        f = tmp_path / "tree" / dp.ROM_LIB / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(body)
    out = tmp_path / "rocknet.romfs"
    res = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", str(out),
                          "build", str(tmp_path / "tree")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert dp.romfs_image(package) == out.read_bytes()


def test_micropython_reads_the_image_back(package):
    """Mounted with MicroPython's VfsRom, the image lists exactly the package's files, each
    with the hash deploy computed, and a module imports from it."""
    image = dp.romfs_image(package)
    with MicroPython() as mpy:
        mpy.put_file("/rocknet.romfs", image)
        mpy.exec("import vfs, os, hashlib, binascii, rocknet\n"
                 "_img = open('/rocknet.romfs', 'rb').read()\n"
                 "vfs.mount(vfs.VfsRom(_img), '/rom')\n"
                 "def _walk(d, rel, out):\n"
                 "    for e in os.ilistdir(d):\n"
                 "        if e[1] == 0x4000:\n"
                 "            _walk(d + '/' + e[0], rel + e[0] + '/', out)\n"
                 "        else:\n"
                 "            with open(d + '/' + e[0], 'rb') as f:\n"
                 "                out[rel + e[0]] = binascii.hexlify("
                 "hashlib.sha256(f.read()).digest()).decode()\n"
                 f"_got = {{}}\n_walk({dp.ROM_PACKAGE_DIR!r}, '', _got)\n"
                 f"rocknet.__path__ = {dp.ROM_PACKAGE_DIR!r}\n"
                 "import rocknet.store\n")
        got = mpy.eval("_got")
        where = mpy.eval("rocknet.store.__file__")
    assert got == {rel: hashlib.sha256(body).hexdigest() for rel, body in package.items()}
    assert where == f"{dp.ROM_PACKAGE_DIR}/store.mpy"


def test_board_hash_of_a_rom_segment(package):
    """The board-side hash deploy --romfs checks the partition with, over a segment as
    vfs.rom_ioctl(2, 0) gives it: a memoryview (nrf, stm32) or a block device with ioctl and
    readblocks (esp32), here over the image bytes in MicroPython (no partition written)."""
    image = dp.romfs_image(package)
    want = hashlib.sha256(image).hexdigest()
    with MicroPython() as mpy:
        mpy.exec(dp._HELPERS)
        mpy.put_file("/img", image + bytes(5000))  # a partition is larger than its image
        mpy.exec("_img = open('/img', 'rb').read()\n"
                 "class _Dev:\n"
                 "    def ioctl(self, op, arg):\n"
                 "        return {4: len(_img) // 4096 + 1, 5: 4096}[op]\n"
                 "    def readblocks(self, i, buf):\n"
                 "        m = _img[i * 4096:(i + 1) * 4096]\n"
                 "        buf[:len(m)] = m\n")
        got = mpy.eval(f"[_rn_seghash(memoryview(_img), {len(image)}), "
                       f"_rn_seghash(_Dev(), {len(image)})]")
    assert got == [want, want]


def test_refusals_name_the_fix():
    mp = {"impl": "micropython"}
    assert "frozen" in dp.romfs_refusal({"impl": "circuitpython"}, {"ioctl": False}, 1)
    assert "MICROPY_VFS_ROM" in dp.romfs_refusal(mp, {"ioctl": False}, 1)
    assert "manifest.py" in dp.romfs_refusal(mp, {"ioctl": False}, 1)
    assert "no ROMFS partition" in dp.romfs_refusal(mp, {"ioctl": True, "size": -1}, 1)
    assert "holds 1000 bytes" in dp.romfs_refusal(mp, {"ioctl": True, "size": 1000}, 5000)
    assert "serial port" in dp.romfs_refusal(mp, None, 1)
    assert dp.romfs_refusal(mp, {"ioctl": True, "size": 5000}, 5000) is None


def test_circuitpython_drive_gets_the_files(tmp_path, capsys):
    drive = tmp_path / "CIRCUITPY"
    drive.mkdir()
    (drive / "boot_out.txt").write_text("Adafruit CircuitPython 9.2.1 on 2024-11-20; Adafruit "
                                        "Feather nRF52840 Express with nRF52840\n")
    assert main(["deploy", "--port", str(drive), "--romfs"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "CircuitPython has no ROMFS" in out and "frozen" in out, out
    assert (drive / "lib" / "rocknet" / "__init__.py").exists()


@pytest.mark.slow
def test_virtual_board_without_room_gets_the_files(tmp_path, capsys):
    """The WebAssembly MicroPython has vfs.rom_ioctl but a 0-byte partition: deploy --romfs
    says so, installs the files, and rocknet imports from /lib."""
    from rocknet_host.hardware.virtual_board import VirtualBoard

    with VirtualBoard(tmp_path / "b") as board:
        assert main(["deploy", "--port", board.url, "--romfs"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "ROMFS partition holds 0 bytes" in out and "at least that large" in out, out
        res = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.url, "exec",
                              "import rocknet; print(rocknet.__file__)"],
                             capture_output=True, text=True, timeout=120)
        assert res.stdout.strip() == "/lib/rocknet/__init__.mpy", res.stdout + res.stderr
