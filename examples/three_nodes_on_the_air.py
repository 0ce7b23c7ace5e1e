"""Three boards train together over an in-memory air: the real board runner (`rocknet.board`,
what `rocknet.run()` runs on a board) for each node, wired to `rocknet.radio.sim` instead of
BLE, with 5 % of the packets lost. Every node ends with the same model (the same digest of
applied updates) and the fleet's agreed accuracy.

It reads the files `rocknet plan` writes (examples/host_api.py writes a small set):
    rocknet plan GunPoint --nodes 3 --epochs 2 --out plans
    python examples/three_nodes_on_the_air.py plans
The same runs inside MicroPython (tests/test_examples.py runs it there from the board's files).
"""

import sys

try:
    import rocknet  # noqa: F401  (a board, or a runtime with device/ on its path)
except ImportError:  # CPython in a checkout
    sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/device")

from rocknet import board
from rocknet.radio import sim

NODES = 3
try:
    PLANS  # noqa: B018  (set by whoever runs this file inside a runtime)
except NameError:
    PLANS = sys.argv[1] if len(sys.argv) > 1 else "plans"

air = sim.Air(loss=0.05, seed=1)
lines = []
runners = []
for i in range(NODES):
    plan, pid, key, samples = board.load("%s/node_%02d.plan" % (PLANS, i),
                                         "%s/fleet.key" % PLANS, "%s/node_%02d.data" % (PLANS, i))
    runners.append(board.Runner(plan, key, samples, radio=air.radio, clock=air.now_ms, pid=pid,
                                checkpoint=None, result=None, out=lines.append, every=0))
plan = samples = None

alive = [True] * NODES
rounds = 0
while any(alive) and rounds < 20000:
    alive = [r.step() for r in runners]  # each board pumps its radio once
    air.tick()  # 5 ms of simulated time pass
    rounds += 1

results = [r.result for r in runners]
if None in results:
    raise RuntimeError("the fleet did not finish in %d steps" % rounds)
digests = set(r["digest"] for r in results)
epoch, correct, seen = results[0]["accuracy"][-1]
result = {"agree": len(digests) == 1, "accuracy": [correct, seen], "rounds": results[0]["rounds"],
          "ms": air.now_ms()}
print("%d nodes, %d rounds, %d s of simulated air: %s; fleet accuracy after epoch %d: %d/%d"
      % (NODES, result["rounds"], air.now_ms() // 1000,
         "every node applied the same updates" if result["agree"] else "NODES DISAGREE",
         epoch + 1, correct, seen))
