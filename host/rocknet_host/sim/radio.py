"""What a board's radio adapter and stack do, as parameters: advertising and scanning timing,
PHY, and the CPU cost of handling an advert. The medium (medium.py) executes these.

The profiles model our own adapters as written, with their defaults read from the adapter
classes themselves (one place): `rocknet.radio.bleio.BleioRadio` on CircuitPython/nRF52840
(no scanning while our advertising runs, so it alternates an advertise burst of `burst_ms`
and a scan of `scan_ms` + 0..`jitter_ms`; extended adverts above 31 bytes, ADV_EXT_IND on the
primaries and AUX_ADV_IND on a secondary channel) and `rocknet.radio.bluetooth.BluetoothRadio`
on ESP32 MicroPython (legacy adverts; NimBLE scans continuously between its own advertising
events; the packet changes every `slot_ms`).

CPU costs per advert are assumptions, stated with every result: per received advert (scan
entry object, prefix filter, HMAC check, GF(2) elimination in Python) and per advert prepared
(coding, HMAC, start/stop calls). They assume native SHA-256; override them (or add
--auth-ms in the bench) with measured figures where you have them.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..runtimes import import_device
from . import phy


@dataclass(frozen=True)
class RadioModel:
    name: str = "nrf52840-ext"
    extended: bool = True  # extended advertising (ADV_EXT_IND + AUX_ADV_IND)
    aux_phy: int = 2  # secondary-channel PHY of AUX PDUs: 1 (1M) or 2 (2M)
    alternate: bool = True  # no scanning while advertising: bursts and scan phases alternate
    adv_interval_ms: float = 20.0  # advInterval (BLE 5 minimum for all legacy types)
    adv_delay_max_ms: float = 10.0  # advDelay, uniform 0..10 ms per event (spec)
    adv_start_ms: float = 1.0  # start_advertising() to first event, before advDelay
    burst_ms: float = 12.0  # one packet is advertised this long (events starting within it)
    scan_ms: float = 10.0  # scan phase length between bursts (alternate mode) ...
    scan_jitter_ms: float = 20.0  # ... + uniform 0..this (breaks lock-step cycles)
    scan_interval_ms: float = 10.0  # scanner moves to the next primary channel each interval
    scan_window_ms: float = 10.0  # listening time per interval (= interval: 100 % duty)
    scan_restart_37: bool = True  # each start_scan() begins on channel 37
    switch_ms: float = 1.0  # stop_advertising()/start_scan() turnaround (radio idle)
    pdu_gap_us: int = 150  # primary PDU end to next primary PDU start within an event
    aux_gap_us: int = phy.T_MAFS_US  # last primary PDU end to AUX_ADV_IND start
    ramp_us: int = 70  # radio ramp-up before each TX PDU (counted at TX current)
    proc_ms: float = 2.0  # CPU per received advert delivered to the endpoint
    prep_ms: float = 1.0  # CPU per next_advert() call
    rx_buffer_bytes: int = 2048  # scan result ring buffer (CircuitPython start_scan buffer_size)
    rx_entry_overhead: int = 15  # bytes of buffer per entry besides the advert data
    rx_buffer_entries: int = 0  # or a bound on entries (MicroPython IRQ inbox); 0 = none
    clock_drift_ppm: float = 20.0  # each node's clock error, uniform in +-this
    board: str = "adafruit_feather_nrf52840"  # boards/<board>.toml: its current draw (energy.py)
    adapter: str = "built-in defaults"  # where the adapter timing came from

    @property
    def wire_profile(self) -> str:
        """The advert profile an endpoint must use with this radio ('legacy' / 'extended')."""
        return "extended" if self.extended else "legacy"

    @property
    def adv_data_max(self) -> int:
        return 254 if self.extended else phy.LEGACY_ADV_DATA_MAX

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> RadioModel:
        known = {f.name for f in fields(self)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown radio parameter(s) {bad}: known are {sorted(known)}")
        return replace(self, **overrides)


def _defaults(module: str, cls: str) -> dict[str, Any]:
    """Keyword defaults of a device adapter's constructor ({} if it cannot be imported)."""
    try:
        klass = getattr(import_device(module), cls)
    except (ImportError, AttributeError):
        return {}
    return {k: p.default for k, p in inspect.signature(klass.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _bleio_model(**extra: Any) -> RadioModel:
    d = _defaults("rocknet.radio.bleio", "BleioRadio")
    base = RadioModel()
    return replace(
        base,
        adv_interval_ms=float(d.get("interval", base.adv_interval_ms / 1000)) * 1000,
        burst_ms=float(d.get("burst_ms", base.burst_ms)),
        scan_ms=float(d.get("scan_ms", base.scan_ms)),
        scan_jitter_ms=float(d.get("jitter_ms", base.scan_jitter_ms)),
        scan_interval_ms=float(d.get("scan_interval", base.scan_interval_ms / 1000)) * 1000,
        scan_window_ms=float(d.get("scan_interval", base.scan_window_ms / 1000)) * 1000,
        rx_buffer_bytes=int(d.get("buffer_size", base.rx_buffer_bytes)),
        adapter="rocknet.radio.bleio.BleioRadio defaults" if d else base.adapter,
        **extra,
    )


def _bluetooth_model(**extra: Any) -> RadioModel:
    d = _defaults("rocknet.radio.bluetooth", "BluetoothRadio")
    scan = float(d.get("scan_us", 30000)) / 1000
    return replace(
        RadioModel(), name="esp32-legacy", extended=False, aux_phy=1, alternate=False,
        adv_interval_ms=float(d.get("interval_us", 20000)) / 1000, adv_start_ms=0.0,
        burst_ms=float(d.get("slot_ms", 60)), scan_ms=0.0, scan_jitter_ms=0.0,
        scan_interval_ms=scan, scan_window_ms=scan, scan_restart_37=False, switch_ms=0.0,
        proc_ms=1.0, prep_ms=0.5, rx_buffer_bytes=1 << 20,
        rx_buffer_entries=int(d.get("inbox", 24)), board="esp32_devkitc",
        adapter="rocknet.radio.bluetooth.BluetoothRadio defaults" if d else "built-in defaults",
        **extra,
    )


# The nRF52840 timing the protocol is tuned for (docs/protocol-notes.md: one advertising
# event per burst, short jittered scans); "-bleio" profiles take BleioRadio's own defaults.
_TUNED: dict[str, Any] = {"adapter": "tuned: burst 12 ms, scan 10 + 0..20 ms, scan interval 10 ms"}
PROFILES: dict[str, RadioModel] = {
    "nrf52840-ext": replace(RadioModel(), **_TUNED),
    "nrf52840-legacy": replace(RadioModel(), name="nrf52840-legacy", extended=False, aux_phy=1,
                               **_TUNED),
    "nrf52840-ext-bleio": _bleio_model(name="nrf52840-ext-bleio"),
    "nrf52840-legacy-bleio": _bleio_model(name="nrf52840-legacy-bleio", extended=False,
                                          aux_phy=1),
    "esp32-legacy": _bluetooth_model(),
}


def profile(name: str) -> RadioModel:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown radio profile {name!r}: choose one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True)
class EventPlan:
    """PDUs of one advertising event relative to its start (us): (offset, duration, channel,
    kind) with kind 'adv' (legacy data), 'ext' (ADV_EXT_IND) or 'aux' (AUX data fragment)."""

    pdus: tuple[tuple[int, int, int, str], ...]
    fragments: tuple[bytes, ...]  # AdvData per data PDU, in order
    duration_us: int


def plan_event(model: RadioModel, adv_data: bytes, aux_channel: int = 0) -> EventPlan:
    """Timing of one advertising event carrying adv_data."""
    pdus: list[tuple[int, int, int, str]] = []
    t = 0
    if not model.extended:
        if len(adv_data) > phy.LEGACY_ADV_DATA_MAX:
            raise ValueError(
                f"{len(adv_data)}-byte advert does not fit legacy advertising (31 bytes): "
                "use an extended radio profile or a smaller row size"
            )
        dur = phy.airtime_us(2 + 6 + len(adv_data), 1)
        for k, ch in enumerate(phy.PRIMARY_CHANNELS):
            pdus.append((t, dur, ch, "adv"))
            t += dur + (model.pdu_gap_us if k < 2 else 0)
        return EventPlan(tuple(pdus), (adv_data,), t)
    if len(adv_data) > model.adv_data_max:
        raise ValueError(f"{len(adv_data)}-byte advert exceeds {model.adv_data_max} bytes")
    ext_dur = phy.airtime_us(2 + 7, 1)  # ADV_EXT_IND: flags + ADI + AuxPtr
    for k, ch in enumerate(phy.PRIMARY_CHANNELS):
        pdus.append((t, ext_dur, ch, "ext"))
        t += ext_dur + (model.pdu_gap_us if k < 2 else 0)
    frags = phy.split_adv_data(adv_data)
    t += model.aux_gap_us
    for k, frag in enumerate(frags):
        more = k < len(frags) - 1
        dur = phy.airtime_us(2 + phy.aux_overhead(k == 0, more) + len(frag), model.aux_phy)
        pdus.append((t, dur, aux_channel, "aux"))
        t += dur + (phy.T_MAFS_US if more else 0)
    return EventPlan(tuple(pdus), tuple(frags), t)
