"""What a board's radio adapter and stack do, as parameters: advertising and scanning timing,
PHY, and the CPU cost of handling an advert. The medium (medium.py) executes these.

Profiles name typical set-ups. The nRF52840 figures follow CircuitPython's `_bleio`: no
scanning while our own advertising runs (alternate advertise bursts and scan windows),
advertising data > 31 bytes goes out as extended advertising (ADV_EXT_IND on the primaries,
AUX_ADV_IND on a secondary channel). ESP32 MicroPython advertises legacy only, and its
controller interleaves scanning with its own advertising events.

CPU costs per advert are assumptions, stated with every result: per received advert (scan
entry object, prefix filter, HMAC check, GF(2) elimination in Python) and per advert prepared
(coding, HMAC, start/stop calls). Override them with measured figures where you have them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

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
    events_per_burst: int = 1  # advertising events per next_advert() (alternate mode)
    scan_ms: float = 20.0  # scan phase length between bursts (alternate mode)
    scan_interval_ms: float = 20.0  # scanner moves to the next primary channel each interval
    scan_window_ms: float = 20.0  # listening time per interval (= interval: 100 % duty)
    scan_restart_37: bool = True  # each start_scan() begins on channel 37
    switch_ms: float = 1.0  # stop_advertising()/start_scan() turnaround (radio idle)
    pdu_gap_us: int = 150  # primary PDU end to next primary PDU start within an event
    aux_gap_us: int = phy.T_MAFS_US  # last primary PDU end to AUX_ADV_IND start
    ramp_us: int = 70  # radio ramp-up before each TX PDU (counted at TX current)
    proc_ms: float = 2.0  # CPU per received advert delivered to the endpoint
    prep_ms: float = 1.0  # CPU per next_advert() call
    rx_buffer_bytes: int = 4096  # scan result ring buffer (CircuitPython start_scan buffer_size)
    rx_entry_overhead: int = 15  # bytes of buffer per entry besides the advert data
    clock_drift_ppm: float = 20.0  # each node's clock error, uniform in +-this
    board: str = "adafruit_feather_nrf52840"  # boards/<board>.toml: current draw, if present

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


PROFILES: dict[str, RadioModel] = {
    "nrf52840-ext": RadioModel(),
    "nrf52840-legacy": RadioModel(name="nrf52840-legacy", extended=False, aux_phy=1),
    "esp32-legacy": RadioModel(
        name="esp32-legacy", extended=False, aux_phy=1, alternate=False, adv_start_ms=0.0,
        scan_ms=0.0, switch_ms=0.0, proc_ms=1.0, prep_ms=0.5, rx_buffer_bytes=8192,
        board="esp32_devkitc",
    ),
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
