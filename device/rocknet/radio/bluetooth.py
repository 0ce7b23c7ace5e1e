"""MicroPython adapter: pumps adverts between a `Link` and the `bluetooth` module (NimBLE on
ESP32). Legacy adverts only: MicroPython does not expose extended advertising.

NimBLE scans while it advertises, so the adapter scans continuously (window = interval) and
swaps the advertised packet every `slot_ms`. The IRQ handler only copies matching adverts
(the memoryviews it gets are valid during the IRQ alone) into a bounded inbox; `poll()` hands
them to the link in normal context, where allocation and hashing are fine.

    from rocknet.radio.bluetooth import BluetoothRadio
    radio = BluetoothRadio(link)
    radio.start()
    link.start_round(1, my_rows, radio.now_ms())
    while not link.done:
        radio.step()            # poll, then idle pause_ms
"""

import time

from .._compat import const

try:  # type names for the annotations only. Boards have no typing module: this import fails
    import typing  # before collections.abc loads `collections` (a .py package on some ports)
    from collections.abc import Callable

    import bluetooth

    from ..link import Link
except ImportError:
    pass

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_LEGACY_MAX = const(31)


class BluetoothRadio:
    """Continuous scan plus a packet swapped every slot, for one Link on a `bluetooth.BLE`."""

    def __init__(self, link: "Link", ble: "bluetooth.BLE | None" = None, *,
                 interval_us: int = 20000, slot_ms: int = 60, scan_us: int = 30000,
                 inbox: int = 24, pause_ms: int = 5, clock: "typing.Any" = None) -> None:
        if link.codec.size > _LEGACY_MAX:
            raise ValueError("MicroPython's bluetooth module sends legacy adverts (31 bytes); "
                             "this link needs %d: use profile='legacy' and a smaller row_size"
                             % link.codec.size)
        if ble is None:
            import bluetooth  # the board's radio (tests pass a fake instead)

            ble = bluetooth.BLE()
        # ``clock``: the ``time`` module, or the simulator's virtual board clock (test seam)
        self.time = clock or time
        self.link = link
        self.ble = ble
        self.pause_ms = pause_ms  # step(): idle this long after each poll
        self.interval_us = interval_us  # advertising interval (rounded down to 625 us)
        self.slot_ms = slot_ms  # how long one packet is advertised
        self.scan_us = scan_us  # scan interval = window: listen all the time
        self._header = link.codec.header  # length, 0xFF, company, network
        self._size = link.codec.size
        self._inbox = []  # type: list[bytes]
        self._inbox_max = inbox
        self.dropped = 0  # adverts lost because the inbox was full
        self.heard = 0
        self._advertising = False
        self._next_slot = 0
        self._ms = 0
        self._ticks = self.time.ticks_ms()
        ble.active(True)
        ble.irq(self._irq)

    def now_ms(self) -> int:
        """Monotonic ms (ticks_ms wraps; this does not)."""
        t = self.time.ticks_ms()
        self._ms += self.time.ticks_diff(t, self._ticks)
        self._ticks = t
        return self._ms

    def _irq(self, event: int, data: "typing.Any") -> None:
        if event == _IRQ_SCAN_RESULT:
            adv = data[4]
            if len(adv) != self._size or bytes(adv[:5]) != self._header:
                return  # foreign: not even copied
            if len(self._inbox) < self._inbox_max:
                self._inbox.append(bytes(adv))
            else:
                self.dropped += 1
        elif event == _IRQ_SCAN_DONE:
            pass  # scanning runs until stop(); nothing to do

    def start(self) -> None:
        self.ble.gap_scan(0, self.scan_us, self.scan_us, False)

    def stop(self) -> None:
        self.ble.gap_scan(None)  # type: ignore[arg-type]  # the docs: None stops the scan
        self._quiet()

    def _quiet(self) -> None:
        if self._advertising:
            self.ble.gap_advertise(None)  # type: ignore[arg-type]  # docs: None stops
            self._advertising = False

    def poll(self) -> None:
        """Feed queued adverts to the link; at a slot boundary, advertise its next packet."""
        inbox = self._inbox
        while inbox:
            data = inbox.pop(0)
            self.link.on_advert(data, self.now_ms())
            self.heard += 1
        now = self.now_ms()
        if now < self._next_slot:
            return
        self._next_slot = now + self.slot_ms
        data = self.link.next_advert(now)
        if data is None:
            self._quiet()
            return
        self.ble.gap_advertise(self.interval_us, data, connectable=False)
        self._advertising = True

    def step(self) -> None:
        """One poll, then idle for ``pause_ms`` (adverts keep arriving through the IRQ)."""
        self.poll()
        self.time.sleep_ms(self.pause_ms)

    def run(self, until: "Callable[[], bool] | None" = None) -> None:
        """Step until `until()` is true (default: the current round is decoded)."""
        self.start()
        try:
            while not (until() if until is not None else self.link.done):
                self.step()
        finally:
            self.stop()
