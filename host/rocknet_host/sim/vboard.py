"""A virtual board's hardware for the simulator: ``time``, ``_bleio`` and ``bluetooth`` whose
blocking calls hand control to the host's discrete-event BLE medium (`rocknet_host.sim.fleet`).

This file runs *inside the node's runtime*, beside the unchanged rocknet package: in CPython
(each node a thread, the objects handed to the radio adapters through their test seams) and in
MicroPython (installed into ``sys.modules`` before rocknet is imported, so ``rocknet.run()``'s
own `open_radio` finds them). So it sticks to what MicroPython has: no typing, no f-strings.

Every call that takes time on a board blocks: ``time.sleep*`` and iterating a scan. It sends
one request to the host, ``{"c": [commands issued since the last request], "w": [kind, local
microseconds], "st": status}``, and gets back ``{"t": local time in us, "rx": [[local us,
advert hex], ...]}`` once the medium reached the wake-up time (``"x": 1`` instead: the host
switched the board off). Calls that take no time (start/stop advertising or scanning) are
queued as commands and happen at the current instant. Computing takes no simulated time unless
the host's clock model charges it.
"""

from array import array

_TICKS_PERIOD = 1 << 30  # MicroPython's ticks_ms()/ticks_us() wrap here
_TICKS_HALF = _TICKS_PERIOD // 2
_IRQ_SCAN_RESULT = 5


class Crash(BaseException):
    """The host switched this board off (power cut, reset): unwinds whatever runs."""


class Host:
    """The board's side of the link to the host's medium. ``transport(request) -> reply``."""

    def __init__(self, transport):
        self.transport = transport
        self.now_us = 0  # local time
        self.cmds = []
        self.status = None  # callable -> JSON-able state the host reads at every request
        self.on_rx = None  # bluetooth: IRQ dispatch of adverts that arrived while blocked
        self.queries = {}  # names a host query may use
        self.busy_us = 0  # local µs computed since the last blocking call (`meter`)

    def cmd(self, *c):
        self.cmds.append(list(c))

    def wait(self, kind, us):
        """Block for ``us`` local microseconds (None: until the next advert); returns the
        adverts that arrived meanwhile as [(local us, bytes)]."""
        req = {"c": self.cmds, "w": [kind, us], "st": self.status() if self.status else None}
        self.cmds = []
        if self.busy_us:  # the host holds the board busy this long before the commands
            req["b"] = self.busy_us
            self.busy_us = 0
        rep = self.transport(req)
        while "q" in rep:  # the host reads state while this board is blocked
            g = {"host": self}
            g.update(self.queries)
            try:
                exec(rep["q"], g)
                ans = {"a": g.get("answer")}
            except Exception as exc:  # noqa: BLE001 - reported to the host, not swallowed
                ans = {"a": None, "err": repr(exc)}
            rep = self.transport(ans)
        if rep.get("x"):
            raise Crash()
        rx = [(t, bytes.fromhex(h)) for t, h in rep.get("rx", ())]
        if rx and self.on_rx is not None and kind != "scan":
            for t, data in rx:
                self.now_us = t
                self.on_rx(data)
        self.now_us = rep["t"]
        return rx


class Clock:
    """The parts of ``time`` rocknet uses, on the board's local clock."""

    def __init__(self, host):
        self.host = host

    def monotonic_ns(self):
        return self.host.now_us * 1000

    def monotonic(self):
        return self.host.now_us / 1000000

    def time(self):
        return self.host.now_us // 1000000

    def sleep(self, s):
        self.host.wait("sleep", int(s * 1000000))

    def sleep_ms(self, ms):
        self.host.wait("sleep", int(ms) * 1000)

    def sleep_us(self, us):
        self.host.wait("sleep", int(us))

    def ticks_ms(self):
        return (self.host.now_us // 1000) % _TICKS_PERIOD

    def ticks_us(self):
        return self.host.now_us % _TICKS_PERIOD

    def ticks_add(self, t, d):
        return (t + d) % _TICKS_PERIOD

    def ticks_diff(self, a, b):
        return ((a - b + _TICKS_HALF) % _TICKS_PERIOD) - _TICKS_HALF


# ----- CircuitPython `_bleio` -----

class BluetoothError(Exception):
    pass


class ScanEntry:
    def __init__(self, data):
        self.advertisement_bytes = data
        self.rssi = -60
        self.connectable = False
        self.scan_response = False
        self.address = None

    def matches(self, prefixes, *, match_all=True):
        return _matches(self.advertisement_bytes, prefixes)


def _matches(data, prefixes):
    """CircuitPython's scan filter: some AD structure of the advert starts with one of the
    prefixes (``prefixes`` = length byte + prefix, repeated); no prefixes: everything."""
    if not prefixes:
        return True
    wanted = []
    i = 0
    while i < len(prefixes):
        n = prefixes[i]
        wanted.append(bytes(prefixes[i + 1:i + 1 + n]))
        i += 1 + n
    i = 0
    while i < len(data):
        n = data[i]
        ad = bytes(data[i + 1:i + 1 + n])
        for w in wanted:
            if ad[:len(w)] == w:
                return True
        i += 1 + n
    return False


class ScanResults:
    """Entries as they arrive; iteration ends when the scan times out."""

    def __init__(self, adapter, prefixes, timeout_us, extended):
        self._adapter = adapter
        self._prefixes = prefixes
        self._timeout = timeout_us
        self._extended = extended
        self._got = None
        self._i = 0

    def __iter__(self):
        return self

    def __next__(self):
        host = self._adapter.host
        while True:
            if self._got is None or (self._i >= len(self._got) and self._timeout is None):
                self._got = host.wait("scan", self._timeout)
                self._i = 0
            if self._i >= len(self._got):
                raise StopIteration
            t, data = self._got[self._i]
            self._i += 1
            if (len(data) > 31 and not self._extended) or not _matches(data, self._prefixes):
                continue
            host.now_us = t
            return ScanEntry(data)


class Adapter:
    """``_bleio.adapter`` of an nRF52840 running CircuitPython: no scanning while advertising
    (the SoftDevice answers NRF_ERROR_BUSY), extended adverts above 31 bytes."""

    def __init__(self, host):
        self.host = host
        self.enabled = True
        self.advertising = False
        self._scanning = False

    def start_advertising(self, data, *, scan_response=None, connectable=True, anonymous=False,
                          timeout=0, interval=0.1, tx_power=0, directed_to=None):
        if self.advertising:
            raise BluetoothError("Already advertising")
        if self._scanning:
            raise BluetoothError("Unknown system firmware error: 0x11 (NRF_ERROR_BUSY): "
                                 "cannot advertise while scanning")
        if len(data) > (238 if connectable else 255):
            raise ValueError("Data too large for advertisement packet")
        if interval < 0.02:
            raise ValueError("interval must be in range 0.0200-40.9500")
        self.advertising = True
        self.host.cmd("adv", bytes(data).hex(), int(interval * 1000000))

    def stop_advertising(self):
        if self.advertising:
            self.advertising = False
            self.host.cmd("adv_stop")

    def start_scan(self, prefixes=b"", *, buffer_size=512, extended=False, timeout=None,
                   interval=0.1, window=0.1, minimum_rssi=-80, active=True):
        if self.advertising:
            raise BluetoothError("Unknown system firmware error: 0x11 (NRF_ERROR_BUSY): "
                                 "cannot scan while advertising")
        if self._scanning:
            raise BluetoothError("Scan already in progress")
        if timeout is not None and timeout < interval:
            raise ValueError("timeout must be >= interval")
        self._scanning = True
        self.host.cmd("scan", int(interval * 1000000), int(window * 1000000), buffer_size)
        return ScanResults(self, prefixes, None if timeout is None else int(timeout * 1000000),
                           extended)

    def stop_scan(self):
        if self._scanning:
            self._scanning = False
            self.host.cmd("scan_stop")


# ----- MicroPython `bluetooth` -----

class BLE:
    """``bluetooth.BLE()`` of an ESP32 (NimBLE): legacy adverts, scanning goes on while
    advertising; scan results arrive through the IRQ handler."""

    def __init__(self, host):
        self.host = host
        self._active = False
        self._irq = None
        host.on_rx = self._deliver

    def active(self, on=None):
        if on is not None:
            self._active = bool(on)
        return self._active

    def irq(self, handler):
        self._irq = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        if not self._active:
            raise OSError(19)  # ENODEV, as when the controller is off
        if interval_us is None:
            self.host.cmd("adv_stop")
            return
        if adv_data is not None and len(adv_data) > 31:
            raise ValueError("advertising data too long")
        self.host.cmd("adv_stop")
        self.host.cmd("adv", bytes(adv_data or b"").hex(), max(20000, int(interval_us)))

    def gap_scan(self, duration_ms, interval_us=1280000, window_us=11250, active=False):
        if duration_ms is None:
            self.host.cmd("scan_stop")
            return
        self.host.cmd("scan", int(interval_us), int(window_us), 0)

    def _deliver(self, data):
        if self._irq is not None:
            self._irq(_IRQ_SCAN_RESULT, (0, b"\x00" * 6, 0, -60, memoryview(data)))


def read_file(path):
    """A file's bytes, or None if the board has no such file."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


class Random:
    """The parts of ``random`` rocknet uses, seeded per board (xorshift32): the same streams
    in CPython and MicroPython, so a simulation repeats in both runtimes. ``randint`` (the
    adapter's scan jitter) and ``getrandbits`` (a boot salt where ``os.urandom`` is missing)
    draw from separate streams, so that the jitter does not depend on the port."""

    def __init__(self, seed):
        self.seed(seed)

    def seed(self, s=0):
        # an array: 32-bit states held as ints would be heap objects above 2**30 in
        # MicroPython, and the node's heap would change with them (C state on a board)
        self._x = array("I", [(int(s) * 2654435761 + k) & 0xFFFFFFFF or 1
                              for k in (0x9E3779B9, 0x7F4A7C15)])

    def _next(self, k):
        x = self._x[k]
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._x[k] = x
        return x

    def getrandbits(self, k):
        return self._next(1) >> (32 - k) if k < 32 else self._next(1)

    def randint(self, a, b):
        return a + self._next(0) % (b - a + 1)

    def random(self):
        return (self._next(0) >> 8) / 16777216


class _Module:
    def __init__(self, **attrs):
        for k in attrs:
            setattr(self, k, attrs[k])


def install(host, radio, seed=0):
    """MicroPython: this board's ``time`` and radio module (``"bleio"`` -> ``_bleio``,
    ``"bluetooth"`` -> ``bluetooth``) into ``sys.modules``, before rocknet is imported."""
    import sys
    import time as real

    sys.modules["random"] = Random(seed)
    clock = Clock(host)
    names = ("monotonic_ns", "monotonic", "time", "sleep", "sleep_ms", "sleep_us", "ticks_ms",
             "ticks_us", "ticks_add", "ticks_diff")
    sys.modules["time"] = _Module(**{k: getattr(clock, k) for k in names})
    if radio == "bleio":
        sys.modules["_bleio"] = _Module(adapter=Adapter(host), BluetoothError=BluetoothError,
                                        ScanEntry=ScanEntry, ScanResults=ScanResults)
    else:
        sys.modules["bluetooth"] = _Module(BLE=lambda: BLE(host))
    return real


# ----- the board's program, as rocknet.run() runs it -----

def start(host, paths, radio, inject, seed=0, costs=None):
    """``rocknet.run()``'s set-up (`rocknet.start`: `rocknet.board.setup`, then the set-up code
    dropped) with this board's files; the host then steps the runner, exactly the loop
    `Runner.run` is. ``inject``: hand the virtual radio and clock in through the adapters'
    test seams (CPython, where several boards share one interpreter) instead of through
    ``sys.modules`` (`install`). ``costs``: charge the compute calls on the board's clock
    (`meter`)."""
    import rocknet

    kw = {}
    if inject:
        clock = Clock(host)
        if radio == "bleio":
            from rocknet.radio.bleio import BleioRadio

            kw["radio"] = lambda link: BleioRadio(link, adapter=Adapter(host), clock=clock,
                                                  rng=Random(seed))
        else:
            from rocknet.radio.bluetooth import BluetoothRadio

            def make(link):
                r = BluetoothRadio(link, ble=BLE(host), clock=clock)
                r.start()
                return r

            kw["radio"] = make
    lines = []
    runner = rocknet.start(plan=paths["plan"], key=paths["key"], data=paths["data"], again=True,
                           checkpoint=paths["ckpt"], result=paths["result"], out=lines.append,
                           every=0, log=True, **kw)
    host.status = lambda: status(runner, lines)
    if costs and not isinstance(runner, dict):
        meter(host, runner, costs)
    host.queries["runner"] = runner
    return runner


def step(host, runner):
    """One step of ``runner`` as `Runner.run`'s loop takes it, for a host stepping a board in
    its own MicroPython process (`sim.fleet.MpyProgram`): the step's end (alive, round, status)
    or its exception go to the host; a `Crash` (the host switched the board off) unwinds."""
    try:
        alive = runner.step()
    except Crash:
        raise
    except BaseException as exc:
        import io
        import sys

        buf = io.StringIO()
        sys.print_exception(exc, buf)
        host.transport({"error": buf.getvalue(), "type": type(exc).__name__,
                        "st": host.status()})
        return
    # the status drains the decision log (`status`): a board keeps no log, so the heap at the
    # round boundary (a checkpoint after this call) holds none of it either
    host.transport({"end": alive, "r": runner.r, "st": host.status()})


def meter(host, runner, costs):
    """Charge the calls that carry the board's compute on its clock: ``costs`` are local µs
    per call in `sim.compute.KINDS` order (a sample's series taken: through the slice, codes
    and partial logits; an applied sample, with its series through the slice again where the
    node keeps series; an optimizer step, an advert opened, an advert sealed). The compute
    itself takes
    no simulated time, so each call moves the board's clock on by its cost; the host holds
    the board busy that long (`Host.busy_us`, sent with the next blocking call)."""
    node = runner.node
    _count(host, node, "_take_series", costs[0])
    _count(host, node.head, "apply", costs[1])
    _count(host, node.head, "step", costs[2])
    _count(host, runner.link, "on_advert", costs[3])
    _count(host, runner.link, "next_advert", costs[4], quiet_free=True)


def _count(host, obj, name, us, quiet_free=False):
    fn = getattr(obj, name)
    us = int(us)

    def counted(*a, **kw):
        out = fn(*a, **kw)
        if out is not None or not quiet_free:  # a link with nothing to say sealed nothing
            host.now_us += us
            host.busy_us += us
        return out

    setattr(obj, name, counted)


def status(runner, lines):
    """What the host follows at every blocking call: round, progress, agreement state, how
    rounds ended, the decision log since the last call (then forgotten here) and new lines."""
    nd = runner.node
    log = [[e[0], e[1], bytes(e[2]).hex(), bytes(e[3]).hex()] for e in nd.applied]
    nd.applied = []
    out = lines[:]
    del lines[:]
    return [runner.r, nd.applied_through, nd.synced, nd.members, runner.ends,
            runner.applied["A"], runner.applied["D"], nd.faulty, nd.stats["faulty"],
            runner.finished, log, out, nd.drop_why,
            [[s, c] for s, c in nd.predicted()] if runner.finished else []]
