"""Radio adapters: they pump a Link's adverts through fake `_bleio` / `bluetooth` radios that
behave like the real ones where it matters (nRF52840 cannot scan while advertising, C-side
prefix filter, IRQ memoryviews), and they type-check against the boards' API stubs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from rocknet_host.resources import DEVICE_DIR
from rocknet_host.runtimes import import_device

link_mod = import_device("rocknet.link")
bleio_radio = import_device("rocknet.radio.bleio")
bt_radio = import_device("rocknet.radio.bluetooth")
KEY = b"radio test key!!"


def prefix_matches(data: bytes, prefixes: bytes) -> bool:
    """CircuitPython's scan filter: any AD structure starting with any prefix."""
    if not prefixes:
        return True
    i = 0
    while i < len(prefixes):
        n = prefixes[i]
        want = prefixes[i + 1:i + 1 + n]
        j = 0
        while j < len(data):
            length = data[j]
            if length == 0:
                break
            if length >= n and data[j + 1:j + 1 + n] == want:
                return True
            j += 1 + length
        i += 1 + n
    return False


class FakeEntry:
    def __init__(self, data: bytes) -> None:
        self.advertisement_bytes = data


class FakeBleioAdapter:
    """One board's `_bleio.adapter` on a shared air (a list of adapters)."""

    def __init__(self, air: list) -> None:
        self.air = air
        air.append(self)
        self.enabled = False
        self.advertising = False
        self.scanning = False
        self.heard: list[bytes] = []
        self.scan_calls: list[dict] = []

    def start_advertising(self, data, *, connectable=True, interval=0.1, tx_power=0, **kw):
        assert not connectable and 0.02 <= interval <= 10.24
        assert len(data) <= 254 and not self.advertising and not self.scanning
        self.advertising = True
        for other in self.air:
            if other is not self:
                other.heard.append(bytes(data))

    def stop_advertising(self):
        self.advertising = False

    def start_scan(self, prefixes=b"", *, buffer_size=512, extended=False, timeout=None,
                   interval=0.1, window=0.1, minimum_rssi=-80, active=True):
        if self.advertising:
            raise RuntimeError("NRF_ERROR_BUSY")  # what CircuitPython on nRF52840 does
        assert 0.0025 <= interval <= 40.959375 and window <= interval
        assert timeout is not None and timeout >= interval > 0  # finite: never scan forever
        self.scan_calls.append({"prefixes": prefixes, "extended": extended})
        self.scanning = True
        heard, self.heard = self.heard, []
        limit = 255 if extended else 31
        return iter([FakeEntry(d) for d in heard
                     if len(d) <= limit and prefix_matches(d, prefixes)])

    def stop_scan(self):
        self.scanning = False


def make_fleet(owners, row_size, profile):
    rng = random.Random(3)
    truth = [rng.randbytes(row_size) for _ in owners]
    links = {n: link_mod.Link(n, KEY, owners, row_size, profile) for n in sorted(set(owners))}
    return links, truth


def start(radios, owners, truth):
    """Each node starts the round on its radio's clock (times are the adapter's ms)."""
    for radio in radios:
        n = radio.link.node_id
        mine = {i: truth[i] for i, o in enumerate(owners) if o == n}
        radio.link.start_round(12, mine, radio.now_ms())


@pytest.mark.parametrize("profile,row_size", [("legacy", 13), ("extended", 100)])
def test_bleio_radios_complete_a_round(profile, row_size):
    owners = [0, 1, 2, 3, 0]
    links, truth = make_fleet(owners, row_size, profile)
    air: list = []
    foreign = FakeBleioAdapter(air)
    radios = [bleio_radio.BleioRadio(link, FakeBleioAdapter(air), burst_ms=0, scan_ms=10,
                                     jitter_ms=0) for link in links.values()]
    start(radios, owners, truth)
    for _ in range(40):
        foreign.start_advertising(bytes([2, 1, 6, 3, 0xFF, 0xFF, 0xFF]), connectable=False)
        foreign.stop_advertising()  # someone else's beacon, dropped by the scan filter
        for radio in radios:
            radio.step()
        if all(link.done for link in links.values()):
            break
    for radio in radios:
        assert radio.link.rows() == truth
        assert radio.adapter.enabled and not radio.adapter.advertising
        assert radio.link.stats["rejected"].get("ad_type", 0) == 0  # filtered in "C"
        assert radio.heard == radio.link.stats["adverts"] > 0
        assert all(c["extended"] == (profile == "extended") for c in radio.adapter.scan_calls)
        assert radio.adapter.scan_calls[0]["prefixes"] == bytes([4, 0xFF, 0xFF, 0xFF, 0])


class FakeTime:
    """MicroPython's time: ticks_ms wraps at 2**30 (the adapter must not care)."""

    def __init__(self, start: int = 2**30 - 50) -> None:
        self.t = start

    def ticks_ms(self) -> int:
        return self.t % 2**30

    def ticks_diff(self, a: int, b: int) -> int:
        return (a - b + 2**29) % 2**30 - 2**29

    def sleep_ms(self, ms: int) -> None:
        self.t += ms


class FakeBLE:
    """One board's `bluetooth.BLE()` on a shared air: delivers the current advert of every
    other board through the IRQ handler, as memoryviews valid only during the call."""

    def __init__(self, air: list) -> None:
        self.air = air
        air.append(self)
        self.handler = None
        self.is_active = False
        self.scanning = False
        self.adv = None

    def active(self, on=None):
        if on is not None:
            self.is_active = bool(on)
        return self.is_active

    def irq(self, handler):
        self.handler = handler

    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False):
        self.scanning = duration_ms is not None
        assert duration_ms is None or window_us <= interval_us

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        if interval_us is None:
            self.adv = None
            return
        assert not connectable and len(adv_data) <= 31
        self.adv = bytearray(adv_data)

    def tick(self):
        for other in self.air:
            if other is not self and other.adv is not None and self.scanning:
                buf = bytearray(other.adv)
                self.handler(5, (0, memoryview(b"\0" * 6), 3, -50, memoryview(buf)))
                buf[:] = b"\0" * len(buf)  # the stack reuses its buffer after the IRQ


def test_bluetooth_radios_complete_a_round(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(bt_radio, "time", clock)
    owners = [0, 1, 2, 0]
    links, truth = make_fleet(owners, 13, "legacy")
    air: list = []
    noise = FakeBLE(air)
    noise.gap_advertise(20000, bytes([2, 1, 6, 3, 0xFF, 0x59, 0x00]), connectable=False)
    radios = [bt_radio.BluetoothRadio(link, FakeBLE(air), slot_ms=20) for link in links.values()]
    start(radios, owners, truth)
    for radio in radios:
        radio.start()
    for _ in range(200):
        clock.sleep_ms(10)
        for radio in radios:
            radio.poll()
        for ble in air:
            ble.tick()
        if all(link.done for link in links.values()):
            break
    for radio in radios:
        assert radio.link.rows() == truth
        assert radio.heard == radio.link.stats["adverts"] > 0
        assert radio.link.stats["rejected"].get("company", 0) == 0  # dropped in the IRQ
        assert radio.ble.is_active and radio.ble.scanning
    for _ in range(30):  # smart shutdown: the adapters stop advertising
        clock.sleep_ms(10)
        for radio in radios:
            radio.poll()
        for ble in air:
            ble.tick()
    assert all(radio.ble.adv is None for radio in radios)
    radios[0].stop()
    assert not radios[0].ble.scanning


def test_bluetooth_radio_refuses_extended_packets_and_bounds_its_inbox(monkeypatch):
    monkeypatch.setattr(bt_radio, "time", FakeTime())
    big = link_mod.Link(0, KEY, [0, 1], 40, "extended")
    with pytest.raises(ValueError, match="legacy"):
        bt_radio.BluetoothRadio(big, FakeBLE([]))
    link = link_mod.Link(0, KEY, [0, 1], 13, "legacy")
    radio = bt_radio.BluetoothRadio(link, FakeBLE([]), inbox=4)
    adv = bytes([link.codec.size - 1]) + link.codec.header[1:] + bytes(link.codec.size - 5)
    for _ in range(10):
        radio._irq(5, (0, memoryview(b"\0" * 6), 3, -40, memoryview(adv)))
    assert len(radio._inbox) == 4 and radio.dropped == 6
    radio.poll()
    assert radio._inbox == [] and link.stats["adverts"] == 4


# ----- type checks against the boards' API stubs -----


def _stub_tree(tmp: Path, dists: dict[str, bool]) -> Path:
    """A folder of the given stub distributions' top-level modules (strip '-stubs' when
    asked), so each adapter sees only its own board's API."""
    out = tmp / "stubs"
    out.mkdir()
    for dist, strip in dists.items():
        try:
            files = metadata.files(dist) or []
        except metadata.PackageNotFoundError:
            pytest.skip(f"{dist} is not installed (pip install -e '.[dev]' installs it)")
        base = Path(metadata.distribution(dist).locate_file(""))
        for top in sorted({f.parts[0] for f in files}):
            if top.endswith(".dist-info") or top.startswith("..") or top.endswith(".md"):
                continue
            if top in ("stdlib", "stubs"):  # micropython-stdlib-stubs: the typeshed part
                continue
            name = top[: -len("-stubs")] if strip and top.endswith("-stubs") else top
            if strip and not top.endswith("-stubs"):
                continue
            if not (out / name).exists():
                (out / name).symlink_to(base / top)
    return out


def _mypy(target: Path, stubs: Path, typeshed: Path | None, tmp: Path) -> list[str]:
    cmd = [sys.executable, "-m", "mypy", "--no-site-packages", "--follow-imports=silent",
           "--check-untyped-defs", "--no-incremental", "--cache-dir", str(tmp / "cache"),
           "--python-version", "3.11", str(target)]
    if typeshed is not None:
        cmd[3:3] = ["--custom-typeshed-dir", str(typeshed)]
    env = dict(os.environ, MYPYPATH=f"{stubs}{os.pathsep}{DEVICE_DIR}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=DEVICE_DIR.parent)
    # Only our file's diagnostics count: the stub packages have a few quirks of their own.
    return [line for line in out.stdout.splitlines() if line.startswith(str(target))
            or line.startswith(str(target.relative_to(DEVICE_DIR.parent)))]


BOARDS = {
    "bleio": ({"circuitpython-stubs": True}, None,
              "import _bleio\n_bleio.adapter.start_scan(b'', window='wide')\n"),
    "bluetooth": ({"micropython-esp32-stubs": False, "micropython-stdlib-stubs": False},
                  "micropython-stdlib-stubs",
                  "import bluetooth\nbluetooth.BLE().gap_scan('forever')\n"),
}


@pytest.mark.parametrize("adapter", sorted(BOARDS))
def test_adapter_type_checks_against_its_board_stubs(adapter, tmp_path):
    dists, typeshed_dist, misuse = BOARDS[adapter]
    stubs = _stub_tree(tmp_path, dists)
    typeshed = None
    if typeshed_dist is not None:
        typeshed = Path(metadata.distribution(typeshed_dist).locate_file(""))
        assert (typeshed / "stdlib" / "VERSIONS").exists()
    target = DEVICE_DIR / "rocknet" / "radio" / f"{adapter}.py"
    assert _mypy(target, stubs, typeshed, tmp_path) == []
    # The control: the same set-up does catch a misuse of the board API.
    bad = tmp_path / "misuse.py"
    bad.write_text(misuse)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-site-packages", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache2"), "--python-version", "3.11", str(bad)]
        + (["--custom-typeshed-dir", str(typeshed)] if typeshed else []),
        capture_output=True, text=True, env=dict(os.environ, MYPYPATH=str(stubs)))
    assert any(line.startswith(str(bad)) and "arg-type" in line
               for line in out.stdout.splitlines()), out.stdout


def test_adapters_import_on_the_device_runtimes(device):
    """Importing an adapter touches no radio (and needs no typing module on the board)."""
    device.exec("from rocknet.radio import bleio as _b, bluetooth as _m")
    assert device.eval("[_b.BleioRadio.__name__, _m.BluetoothRadio.__name__]") == [
        "BleioRadio", "BluetoothRadio"]
