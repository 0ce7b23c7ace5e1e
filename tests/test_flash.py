"""`rocknet flash`: the esptool command per ESP32 board, UF2 copies, and refused images."""

from __future__ import annotations

import struct

import pytest
from rocknet_host import boards
from rocknet_host.cli import main
from rocknet_host.hardware import flash as fl


def esp_image(chip_id: int) -> bytes:
    header = bytes([0xE9, 3, 2, 0x20]) + struct.pack("<I", 0x40080000) + bytes([0xEE, 0, 0, 0])
    return header + struct.pack("<H", chip_id) + bytes(100)


def uf2(family: int, blocks: int = 3) -> bytes:
    out = b""
    for i in range(blocks):
        head = struct.pack("<IIIIIIII", fl.UF2_MAGIC[0], fl.UF2_MAGIC[1], fl.UF2_FLAG_FAMILY,
                           0x26000 + 256 * i, 256, i, blocks, family)
        out += head + bytes(476) + struct.pack("<I", fl.UF2_MAGIC[2])
    return out


@pytest.fixture
def calls(monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(fl, "run_esptool", lambda argv: seen.append(argv))
    return seen


@pytest.mark.parametrize("board,chip,chip_id,offset", [
    ("esp32_s3_devkitc", "esp32s3", 9, "0x0"),
    ("esp32_devkitc", "esp32", 0, "0x1000"),
])
def test_esptool_command_per_board(tmp_path, calls, board, chip, chip_id, offset):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(esp_image(chip_id))
    assert main(["flash", "--board", board, "--port", "/dev/ttyUSB0", "--firmware", str(fw)]) == 0
    assert calls == [["--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800",
                      "write-flash", "--erase-all", offset, str(fw)]]
    main(["flash", "--board", board, "--port", "COM3", "--firmware", str(fw), "--baud", "921600",
          "--no-erase"])
    assert calls[-1] == ["--chip", chip, "--port", "COM3", "--baud", "921600", "write-flash",
                         offset, str(fw)]


def test_refuses_image_for_another_chip(tmp_path, calls, capsys):
    fw = tmp_path / "s3.bin"
    fw.write_bytes(esp_image(9))
    assert main(["flash", "--board", "esp32_devkitc", "--port", "p", "--firmware", str(fw)]) == 2
    assert "built for esp32s3" in capsys.readouterr().err and calls == []
    fw.write_bytes(uf2(0xADA52840))
    assert main(["flash", "--board", "esp32_s3_devkitc", "--port", "p", "--firmware",
                 str(fw)]) == 2
    assert "UF2" in capsys.readouterr().err and calls == []


def test_uf2_copy_and_family_check(tmp_path, capsys):
    drive = tmp_path / "FTHR840BOOT"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader")
    good = tmp_path / "circuitpython.uf2"
    good.write_bytes(uf2(0xADA52840))
    assert main(["flash", "--board", "adafruit_feather_nrf52840", "--firmware", str(good),
                 "--drive", str(drive)]) == 0
    assert (drive / "circuitpython.uf2").read_bytes() == good.read_bytes()
    rp2040 = tmp_path / "pico.uf2"
    rp2040.write_bytes(uf2(0xE48BFF56))
    assert main(["flash", "--board", "adafruit_feather_nrf52840", "--firmware", str(rp2040),
                 "--drive", str(drive)]) == 2
    assert "0xE48BFF56" in capsys.readouterr().err


def test_uf2_drive_found_by_name_or_guidance(tmp_path, monkeypatch, capsys):
    good = tmp_path / "cp.uf2"
    good.write_bytes(uf2(0xADA52840))
    board = boards.load("seeed_xiao_nrf52840")
    monkeypatch.setattr(fl, "mount_points", lambda: [tmp_path / "XIAO-SENSE"])
    assert main(["flash", "--board", board.key, "--firmware", str(good)]) == 2
    err = capsys.readouterr().err
    assert "double-tap" in err and "XIAO-SENSE" in err
    (tmp_path / "XIAO-SENSE").mkdir()
    assert fl.flash(board, good, log=lambda s: None) == tmp_path / "XIAO-SENSE" / "cp.uf2"
