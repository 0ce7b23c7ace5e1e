"""CircuitPython adapter: pumps adverts between a `Link` and `_bleio`.

The nRF52840 cannot start a scan while our own advertising runs (NRF_ERROR_BUSY), so a node
alternates: an advertise burst carrying one packet for a few advertising events, then a scan
window. Window lengths get random jitter so that two nodes never stay in lockstep, each
advertising exactly while the other does. The scan filter (AD type, company id, network id)
runs in C, so foreign adverts never cost a Python object. Packets above 31 bytes go out as
extended adverts (CircuitPython switches by itself); the scanner then needs extended=True.

    from rocknet.radio.bleio import BleioRadio
    radio = BleioRadio(link)
    link.start_round(1, my_rows, radio.now_ms())
    while not link.done:
        radio.step()
"""

import random
import time

try:  # type names for the annotations only. Boards have no typing module: this import fails
    import typing  # before collections.abc loads `collections` (a .py package on some ports)
    from collections.abc import Callable

    import _bleio

    from ..link import Link
except ImportError:
    pass


class BleioRadio:
    """Advertise-then-scan loop for one Link on a `_bleio.Adapter`."""

    def __init__(self, link: "Link", adapter: "_bleio.Adapter | None" = None, *,
                 interval: float = 0.02, burst_ms: int = 12, scan_ms: int = 10,
                 jitter_ms: int = 20, scan_interval: float = 0.01, buffer_size: int = 2048,
                 minimum_rssi: int = -90, tx_power: int = 0, clock: "typing.Any" = None,
                 rng: "typing.Any" = None) -> None:
        # ``clock``: the ``time`` module, or a stand-in with sleep() and monotonic_ns() (the
        # simulator's virtual board clock); ``rng``: ``random`` or a stand-in with randint()
        # (a seeded one keeps simulations repeatable); adapter, clock and rng: the test seams
        self.time = clock or time
        self.rng = rng or random
        if adapter is None:
            import _bleio  # the board's one adapter (tests pass a fake instead)

            adapter = _bleio.adapter
        self.link = link
        self.adapter = adapter
        if not adapter.enabled:
            adapter.enabled = True
        # Timing defaults: one advertising event per burst, short jittered scans. Chosen in the
        # fleet simulator (docs/protocol-notes.md): longer bursts/scans miss the 0.6 s round at
        # N=20 and jitter keeps neighbours out of lock-step. Not yet measured on a board.
        self.interval = interval  # seconds between advertising events (>= 0.02)
        self.burst_ms = burst_ms  # how long one packet is advertised
        self.scan_ms = scan_ms  # scan window after each burst ...
        self.jitter_ms = jitter_ms  # ... plus up to this much at random
        self.scan_interval = scan_interval
        self.buffer_size = buffer_size  # scan ring buffer; when full, adverts are dropped
        self.minimum_rssi = minimum_rssi
        self.tx_power = tx_power
        self.extended = link.codec.size > 31
        self.prefixes = link.codec.scan_prefix
        self.heard = 0  # adverts handed to the link

    def now_ms(self) -> int:
        return self.time.monotonic_ns() // 1000000

    def advertise(self) -> bool:
        """Advertise the link's next packet for one burst; False if the link stays quiet."""
        data = self.link.next_advert(self.now_ms())
        if data is None:
            return False
        self.adapter.start_advertising(data, connectable=False, interval=self.interval,
                                       tx_power=self.tx_power)
        self.time.sleep(self.burst_ms / 1000)
        self.adapter.stop_advertising()
        return True

    def scan(self, window_ms: int) -> int:
        """Scan for `window_ms` (blocking), feeding every matching advert to the link."""
        timeout = max(window_ms / 1000, self.scan_interval)
        n = 0
        results = self.adapter.start_scan(
            self.prefixes, buffer_size=self.buffer_size, extended=self.extended,
            timeout=timeout, interval=self.scan_interval, window=self.scan_interval,
            minimum_rssi=self.minimum_rssi, active=False)
        try:
            for entry in results:
                self.link.on_advert(entry.advertisement_bytes, self.now_ms())
                n += 1
        finally:
            self.adapter.stop_scan()
        self.heard += n
        return n

    def step(self) -> None:
        """One advertise burst (when there is something to say), then one scan window."""
        self.advertise()
        self.scan(self.scan_ms + self.rng.randint(0, self.jitter_ms))

    def run(self, until: "Callable[[], bool] | None" = None) -> None:
        """Step until `until()` is true (default: the current round is decoded)."""
        link = self.link
        while not (until() if until is not None else link.done):
            self.step()
