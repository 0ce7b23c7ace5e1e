"""The head loads its parts on demand: a plain-SGD node holds only the core's bytecode; the
moment codecs, the dual solver and the checkpoint codec come in when a plan or a call needs
them (each case in a fresh MicroPython, loading the package as a board does)."""

import pytest
from head_cases import case

OPTIONAL = ("rocknet.head_moments", "rocknet.head_dual", "rocknet.head_state",
            "rocknet.head_sum")

RUN = """
import sys
from rocknet.head import Head
h = Head(P)
if h.solver == "dual":
    from rocknet import head_dual
    head_dual.store(h, C[0], 0)
else:
    h.partial_logits(C[0])
    h.apply([0.5, -0.5], 1)
    h.step()
before = sorted(m for m in sys.modules if m in optional)
h.save()
result = [before, sorted(m for m in sys.modules if m in optional)]
"""


@pytest.mark.parametrize("opts,loaded", [
    ({"mode": "gradient", "optimizer": "sgd"}, []),
    ({"mode": "gradient", "optimizer": "adam"}, ["rocknet.head_moments"]),
    ({"mode": "ridge", "solver": "dual"}, ["rocknet.head_dual"]),
])
def test_a_node_loads_only_what_its_plan_uses(mpy, opts, loaded):
    c = case("GunPoint", 3, 600, n_train=24)
    plans = c.node_plans(batch=4, passes=1, **opts)
    before, after = mpy.call(RUN, P=plans[0], C=c.counts[0][:1].tolist(),
                             optional=list(OPTIONAL))
    assert before == loaded
    assert after == sorted(loaded + ["rocknet.head_state"])  # save() brings the codec
