"""One board trains the product's head sample by sample (no radio, no files).

The head of a fleet (`rocknet.head.Head`) with one node: a small MiniRocket slice turns each
series into counts, the head standardises them with its own statistics (one pass), then
learns by softmax cross-entropy with momentum, batch by batch, through the same calls a node
makes when its fleet has decided a sample (`partial_logits`, `apply`, `step`). With one node,
its partial logits are the logits.

On a board with rocknet installed (`rocknet deploy` or `mpremote mip install`):
    mpremote run examples/one_board_head.py
In a checkout, with CPython and numpy:
    python examples/one_board_head.py
"""

import sys

try:
    import rocknet  # noqa: F401  (a board, or a runtime with device/ on its path)
except ImportError:  # CPython in a checkout
    sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/device")

from rocknet import quickstart, xp
from rocknet.head import Head
from rocknet.head_init import finish_stats, observe  # the statistics pass (set-up code)
from rocknet.minirocket import Slice
from rocknet.xp import np

EPOCHS = 8
BATCH = 6

# the demo's built-in series: a bump, a step and a wave (int8), 20 of each to train
X_train, y_train = quickstart.dataset(20, seed=1)
X_test, y_test = quickstart.dataset(10, seed=2)
features = quickstart.small_plan(X_train[:3])  # biases fitted here, from three series
sl = Slice(features)
head = Head({"node": 0, "nodes": 1, "classes": 3, "features": features},
            head={"mode": "gradient", "optimizer": "momentum", "lr": 0.05, "batch": BATCH,
                  "scaling": "local", "schedule": "cosine",
                  "steps": EPOCHS * len(X_train) // BATCH})

counts = np.zeros(sl.n_features, dtype=xp.uint16)
train_counts = []
for x in X_train:  # the statistics pass (scaling="local"), keeping the counts for training
    sl.transform(x, counts)
    observe(head, counts)
    train_counts.append(counts.copy())
finish_stats(head)

for _ in range(EPOCHS):
    for c, label in zip(train_counts, y_train):
        z = head.partial_logits(c)  # on a fleet: summed over every node's row first
        head.apply(z, label)
        if head.k == BATCH:
            head.step()
    head.step()

correct = 0
for x, label in zip(X_test, y_test):
    sl.transform(x, counts)
    z = list(head.partial_logits(counts))
    if z.index(max(z)) == label:
        correct += 1
result = {"accuracy": correct / len(y_test), "steps": head.t, "features": sl.n_features}
print("one board, rocknet.head (gradient, momentum): %d features, %d optimizer steps, "
      "test accuracy %d/%d" % (sl.n_features, head.t, correct, len(y_test)))
