"""Board files load, validate, and carry what the planner, flasher and simulator need."""

from __future__ import annotations

import pytest
from rocknet_host import boards

REQUIRED = {"adafruit_feather_nrf52840", "seeed_xiao_nrf52840", "nrf52840_dk",
            "esp32_s3_devkitc", "esp32_devkitc", "virtual"}


def test_all_boards_load():
    all_ = boards.load_all()
    assert REQUIRED <= set(all_)
    for b in all_.values():
        assert b.heap_budget > 0 and b.cpu_mhz > 0
        assert b.power.voltage_v > 0 and b.power.tx_ma > b.power.sleep_ma
        assert b.radio.max_adv_bytes >= 31


def test_board_facts():
    f = boards.load("adafruit_feather_nrf52840")
    assert (f.runtime, f.flash.method, f.flash.uf2_family, f.flash.volume) == (
        "circuitpython", "uf2", 0xADA52840, "FTHR840BOOT")
    assert f.usb_id == "239A:802A" and not f.radio.scan_while_advertising
    s3 = boards.load("esp32_s3_devkitc")
    assert (s3.flash.chip, s3.flash.offset) == ("esp32s3", 0x0)
    classic = boards.load("esp32_devkitc")
    assert (classic.flash.chip, classic.flash.offset) == ("esp32", 0x1000)
    assert boards.load("virtual").float_bits == 64


def test_clear_errors(tmp_path):
    with pytest.raises(boards.BoardError, match="unknown board 'nope'.*adafruit_feather"):
        boards.load("nope")
    src = (boards.BOARDS_DIR / "esp32_devkitc.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace("heap_budget = 100_000", "heap_budget = \"lots\""))
    with pytest.raises(boards.BoardError, match=r"bad.toml \[memory\]: `heap_budget` must be int"):
        boards.load(str(bad))
    bad.write_text(src.replace("tx_ma = 130.0\n", ""))
    with pytest.raises(boards.BoardError, match=r"\[power\]: missing key `tx_ma`"):
        boards.load(str(bad))
    bad.write_text(src.replace('chip = "esp32"', 'chip = "esp8266"'))
    with pytest.raises(boards.BoardError, match="chip must be one of"):
        boards.load(str(bad))
    bad.write_text(src.replace('code_from = "files"', 'code_from = "flash"'))
    with pytest.raises(boards.BoardError, match="code_from must be one of"):
        boards.load(str(bad))
    cp = (boards.BOARDS_DIR / "adafruit_feather_nrf52840.toml").read_text()
    bad.write_text(cp.replace('code_from = "files"', 'code_from = "romfs"'))
    with pytest.raises(boards.BoardError, match="CircuitPython has no ROMFS"):
        boards.load(str(bad))
