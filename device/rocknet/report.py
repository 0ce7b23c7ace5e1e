"""What a node and a board say about themselves once it matters: the end of a run (the
result dict, its lines and ``/rocknet_result.json``) and `summary` (a node for hosts and logs).
Imported only when asked (`runner.Runner` when it prints a line, then dropped again, and at
the end of its schedule), so a training board does not hold it.
"""

import json


def progress(runner):
    """A line per finished evaluation pass, and a status line every ``runner.every`` rounds."""
    nd, sch = runner.node, runner.schedule
    while runner._epochs_told < len(nd.accuracy):
        e, correct, seen = nd.accuracy[runner._epochs_told]
        runner._epochs_told += 1
        runner.out("epoch %d/%d: accuracy %s | round %d/%d, commits %d, drops %d, members %s"
                   % (e + 1, sch.epochs, _pct(correct, seen), runner.r + 1, sch.length,
                      nd.stats["commit"], nd.stats["drop"], _members(nd)))
    if runner.every and (runner.r + 1) % runner.every == 0:
        el = runner.clock() - runner._t0
        runner.out("round %d/%d: applied through sample %d, commits %d, drops %d, members %s, "
                   "%s, %d ms/round, adverts tx %d rx %d"
                   % (runner.r + 1, sch.length, nd.applied_through, nd.stats["commit"],
                      nd.stats["drop"], _members(nd),
                      "leader %s" % nd.leader if nd.synced else "rejoining",
                      el // max(1, runner._rounds), runner.link.stats["tx"],
                      runner.link.stats["rx"]))


def _members(nd):
    return ",".join(str(n) for n in range(nd.n) if (nd.members >> n) & 1)


def finish(runner, now):
    """The run is over: `Runner.result`, the closing lines and the result file (its
    ``predictions``, [sample, class] pairs, written one by one from the node's table: as a
    list they would take tens of KB of a board's heap at the very end of a run)."""
    runner.finished = True
    runner._linger_until = now + 2 * runner.deadline_ms
    nd = runner.node
    digest = "".join("%02x" % b for b in runner.digest)
    res = {"node": nd.id, "plan": runner.pid, "rounds": runner.r + 1,
           "ms": now - (runner._t0 or now), "applied_through": nd.applied_through,
           "synced": nd.synced, "members": nd.members, "commit": runner.applied["A"],
           "drop": runner.applied["D"], "digest": digest, "ends": list(runner.ends),
           "accuracy": [list(a) for a in nd.accuracy]}
    runner.result = res
    runner.out("rocknet: done after %d rounds, %d s: commits %d, drops %d, members %s, "
               "digest %s" % (res["rounds"], res["ms"] // 1000, res["commit"], res["drop"],
                              _members(nd), digest[:16]))
    if nd.accuracy:
        runner.out("accuracy by epoch: " + ", ".join(
            "%d: %s" % (e + 1, _pct(c, s)) for e, c, s in nd.accuracy))
        e, c, s = nd.accuracy[-1]
        runner.out("final accuracy: %s (the fleet's agreed evaluation, the same on every "
                   "board)" % _pct(c, s))
    n = sum(1 for _ in nd.predicted())
    if n:
        runner.out("predictions: %d series%s" % (
            n, ", classes in " + runner.result_path if runner.result_path else ""))
    if runner.result_path:
        try:
            with open(runner.result_path, "w") as fh:
                # the predictions on a line of their own: `board.setup` reads only the first
                fh.write(json.dumps(res)[:-1] + ',\n"predictions": [')
                sep = ""
                for s, c in nd.predicted():
                    fh.write("%s[%d, %d]" % (sep, s, c))
                    sep = ", "
                fh.write("]}")
        except OSError:
            runner.out("rocknet: cannot write %s (read-only file system)" % runner.result_path)


def summary(nd):
    """A JSON-able picture of a `node.Node` for hosts and logs."""
    return {"node": nd.id, "synced": nd.synced, "members": nd.members,
            "leader": nd.leader, "epoch": nd.epoch,
            "applied_through": nd.applied_through,
            "digest": "".join("%02x" % b for b in nd.digest),
            "accuracy": [list(a) for a in nd.accuracy], "stats": dict(nd.stats)}


def _pct(correct, seen):
    if not seen:
        return "-"
    return "%d/%d = %d.%d %%" % (correct, seen, 100 * correct // seen,
                                 (1000 * correct // seen) % 10)
