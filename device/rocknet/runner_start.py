"""The runner's start-up steps: a fresh fleet waits in round 0 until every node's rows of
round 0 arrived (advertising in bursts, so boards can be switched on one after another); a
board with a checkpoint, or one that finds the fleet already running, joins the round it
hears, or starts the round after its checkpoint when it hears nobody. `runner.Runner.step`
calls `start_step` until the board runs with the fleet; then this module is dropped.
"""

from ._compat import const

_BURST_MS = const(500)  # round 0: advertise this long after each news while waiting


def start_step(self, now):
    """One step of ``self`` (a `runner.Runner`) before it runs with the fleet: True when the
    step is done, False when the start-up ended and the round goes on as usual."""
    from . import forget

    link = self.link
    if self.r is None:
        if link.round is not None:
            self._begin(link.round_no, now)  # the fleet's current round
        elif self.fresh:
            self._begin(0, now)
            self._waiting = now
            self._wait_rank = self._round.rank
            self._burst_until = now + 4 * _BURST_MS
        elif now - self._t0 >= 3 * self.deadline_ms:
            self.out("rocknet: nobody heard; starting round %d" % (self._ckpt_round + 1))
            self._begin(self._ckpt_round + 1, now)
        if self.r is not None and self._waiting is None:
            forget("runner_start")
        return True
    rnd, r = self._round, self.r
    ahead = (link.round_no or r) - r
    # round 0 of a fresh fleet: wait for every node
    if ahead >= 2:  # the fleet runs without us: we were reset before a checkpoint
        self._waiting = None
        self.out("rocknet: the fleet is at round %d; joining it" % link.round_no)
        self.node.rejoin()
        self._begin(link.round_no, now)
        forget("runner_start")
        return True
    if ahead == 0 and not _all_heard(self, rnd):
        # Advertise round 0 in bursts: at start and whenever something new arrived
        # (a board switched on later), quiet otherwise, so the round's 256 packets
        # last however long the fleet takes to come up.
        if rnd.rank != self._wait_rank:
            self._wait_rank = rnd.rank
            self._burst_until = now + _BURST_MS
        rnd.deadline_ms = self._burst_until if now < self._burst_until else now
        if now - self._waiting >= 10000 * (self._told + 1):
            self._told += 1
            self.out("rocknet: waiting for node(s) %s to start"
                     % ",".join(str(n) for n in _missing_nodes(self, rnd)))
        return True
    self._waiting = None
    rnd.deadline_ms = now + self.deadline_ms
    forget("runner_start")
    return False


def _all_heard(self, rnd):
    geo = self.node.geo
    for i in range(geo.m):
        if rnd.row(i) is None and (i >= geo.series_rows or self.schedule.at(0) is not None):
            return False
    return True


def _missing_nodes(self, rnd):
    geo = self.node.geo
    return [n for n in range(geo.n) if rnd.row(geo.ctrl_index(n)) is None]
