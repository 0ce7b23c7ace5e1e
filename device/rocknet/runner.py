"""The board's training loop, what ``rocknet.run()`` runs once `rocknet.board` checked the
files and built it: pump the radio, end a round once every member's rows are decoded (or at
the round's deadline), begin the next (see `rocknet.board` for the files and the start-up).

The loop is sans-clock and sans-radio for tests: `Runner` takes a ``radio(link)`` factory and
a ``clock()`` in ms; ``step()`` runs one pump of the radio and the round bookkeeping
(`rocknet.radio.sim` is an in-memory medium that needs neither). Checkpoints go through
`rocknet.checkpoint`, loaded for each write and dropped again, so between checkpoints a
training board holds only the loop's code.
"""


CHECKPOINT_FILE = "/rocknet_ckpt"
RESULT_FILE = "/rocknet_result.json"
_EXTRA = 4  # idle rounds a node keeps running after it applied the last sample


class Runner:
    """One board's training loop (see the module docstring).

    ``plan``, ``key``, ``samples``: as `load` returns them; ``radio``: factory ``radio(link)``
    -> adapter with ``now_ms()`` and ``step()`` (or ``poll()``), default `board.open_radio`;
    ``clock``: ms now (default the adapter's); ``out``: where lines go (default print);
    ``checkpoint``, ``result``: file paths (None: none written); ``every``: rounds between
    status lines; ``tail``: idle rounds at most after the schedule for its last decisions.
    """

    def __init__(self, plan, key, samples, **options):
        from .board import build_runner  # set-up code: dropped with `rocknet.board`

        build_runner(self, plan, key, samples, **options)

    def _record(self, kind, s, payload):
        """The node's decision log hook: the digest and counts as of the schedule's end."""
        self._node_record(kind, s, payload)
        if s <= self._last:
            self.digest = self.node.digest
            if kind == b"A" or kind == b"D":
                self.applied[kind.decode()] += 1

    # ----- checkpoints (`rocknet.checkpoint`, loaded for each write and dropped again) -----

    def _save(self, body):
        if self._ckpt_ok:
            from . import checkpoint, forget

            self._seq = checkpoint.save_next(self.ckpt_path, body, self.r or 0, self._seq,
                                             self.out)
            self._ckpt_ok = self._seq is not None
            forget("checkpoint", "store", "head_state", "sha256")  # sha256: no hashlib

    # ----- rounds -----

    def _expected(self, r):
        """Row indices to wait for in round r: every member's control rows, and the series
        rows when a member owns sample r."""
        nd = self.node
        geo = nd.geo
        # members, and whoever we heard last round (a rebooted board asking to join: waiting
        # for its rows too lets the leader hold its message in consecutive rounds and admit it)
        members = nd.members | nd.heard_last | (1 << nd.id)
        rows = []
        at = self.schedule.at(r)
        if at is not None and (members >> at[1]) & 1:
            rows.extend(range(geo.series_rows))
        for n in range(geo.n):
            if (members >> n) & 1:
                first = geo.ctrl_index(n)
                rows.extend(range(first, first + geo.ctrl_rows))
        return rows

    def _complete(self, rnd, r):
        for i in self._expected(r):
            if rnd.row(i) is None:
                return False
        return True

    def _begin(self, r, now):
        self.r = r
        self._round = rnd = self.link.start_round(r, self.node.begin_round(r), now)
        need = 0
        for i in self._expected(r):
            need |= 1 << i
        rnd.need(need, now)  # done = these rows decoded; neighbours learn it from our flags
        self._rounds += 1

    def _end(self):
        rnd = self._round
        self.node.end_round(self.r, rnd.rows())
        self._progress()

    def step(self):
        """Pump the radio once, then end and begin rounds as due; False once finished."""
        if self.finished:
            if self.clock() >= self._linger_until:
                return False
            self._pump()  # a little longer: neighbours may still need our last rows
            return True
        self._pump()
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        if self.r is None or self._waiting is not None:
            from .runner_start import start_step  # start-up: dropped once the fleet runs

            if start_step(self, now):
                return True
        link = self.link
        rnd, r = self._round, self.r
        ahead = (link.round_no or r) - r
        complete = self._complete(rnd, r)
        # A complete round stays open while a neighbour heard in it is unfinished (until the
        # deadline, or until someone started the next round): ending it starts the sample's
        # compute, and a computing board neither relays nor answers, just when that
        # neighbour needs it.
        settled = complete and (ahead >= 1 or rnd.done_ms is None or rnd.settled(now))
        if not (ahead >= 2 or now >= rnd.deadline_ms or settled):
            return True
        # how rounds end: every expected row decoded, the deadline, or the fleet ran ahead
        self.ends[0 if complete else 2 if ahead >= 2 else 1] += 1
        self._end()
        last = self.schedule.length - 1
        if self._done_round is None and self.node.applied_through >= last:
            self._done_round = r
        # a few idle rounds more: our messages relay the last decisions (the leader applies
        # its own only once someone echoed them)
        if r >= last and ((self._done_round is not None and r >= self._done_round + _EXTRA)
                          or r >= last + self.tail):
            self._finish(now)
            return True
        # the next round's deadline counts from now: ending this one computed for a while
        self._begin(max(r + 1, link.round_no or 0), self.clock())
        return True

    def _pump(self):
        self.radio.step()  # every adapter: one burst of radio work, blocking for a while

    def run(self):
        """Loop until the schedule is done; returns the result dict."""
        try:
            while self.step():
                pass
        finally:
            stop = getattr(self.radio, "stop", None)
            if stop is not None:
                stop()
        return self.result

    # ----- reporting (`rocknet.report`, loaded when there is something to say) -----

    def _progress(self):
        if self._epochs_told < len(self.node.accuracy) or (
                self.every and (self.r + 1) % self.every == 0):
            from . import forget
            from .report import progress

            progress(self)
            forget("report")

    def _finish(self, now):
        from .report import finish  # the end of the run: loaded once, at the end

        finish(self, now)
