"""An in-memory radio medium for runners without hardware (tests, the REPL, the host).

Every `SimRadio` on one `Air` hears every other one's adverts, each lost independently with
probability ``loss`` (seeded, the same stream on every runtime); the air also keeps the clock.
It has the adapter interface `rocknet.board.Runner` uses (``now_ms()``, ``step()``):

    air = Air(loss=0.1, seed=1)
    runners = [Runner(plans[i], key, data[i], radio=air.radio, clock=air.now_ms, ...)
               for i in range(3)]
    while any(...):
        for r in runners:
            r.step()
        air.tick()

No timing model: one ``step()`` sends at most one advert and takes in what arrived since the
last one; ``tick()`` advances the clock. `rocknet_host.sim` is the BLE model with airtime,
channels and collisions.
"""

from ..mixer import Rng


class Air:
    """The shared medium and clock."""

    def __init__(self, loss=0.0, seed=1, tick_ms=5, inbox=64):
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss must be in [0, 1), got %r" % (loss,))
        self.now = 0
        self.tick_ms = tick_ms
        self.inbox = inbox
        self.radios = []
        self._rng = Rng(seed)
        self._loss = int(loss * 4294967296)

    def now_ms(self):
        return self.now

    def tick(self, ms=None):
        self.now += self.tick_ms if ms is None else ms

    def radio(self, link):
        """A radio for ``link`` on this medium (the `Runner`'s ``radio`` factory)."""
        r = SimRadio(self, link)
        self.radios.append(r)
        return r

    def remove(self, radio):
        """Switch a radio off for good (a crashed or reset board)."""
        if radio in self.radios:
            self.radios.remove(radio)

    def send(self, sender, data):
        for r in self.radios:
            if r is not sender and self._rng.next32() >= self._loss:
                if len(r.pending) < self.inbox:
                    r.pending.append(data)
                else:
                    r.dropped += 1


class SimRadio:
    """One board's radio on an `Air`."""

    def __init__(self, air, link):
        self.air = air
        self.link = link
        self.pending = []
        self.dropped = 0  # adverts lost because the inbox was full
        self.heard = 0
        self.sent = 0

    def now_ms(self):
        return self.air.now

    def step(self):
        """Take in what arrived, then send the link's next advert (if it has one)."""
        now = self.air.now
        got, self.pending = self.pending, []
        for data in got:
            self.link.on_advert(data, now)
            self.heard += 1
        data = self.link.next_advert(now)
        if data is not None:
            self.sent += 1
            self.air.send(self, data)
