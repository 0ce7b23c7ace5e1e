"""rocknet on the board: a slice of a quantized MiniRocket transform, the matching slice of a
linear classifier, and the radio protocol that lets a fleet train them together."""

__version__ = "0.1.0"


def demo(**kwargs):
    """Train and test on a tiny built-in dataset on this board (no radio): prints accuracy,
    time and memory. Keyword arguments go to ``rocknet.quickstart.run``."""
    from .quickstart import run

    return run(**kwargs)


def run(**kwargs):
    """Train this board's part of the fleet from the files `rocknet deploy --plan-dir` put
    on it (plan, fleet key, data); prints progress and the result. Keyword arguments go to
    ``rocknet.board.setup`` (file paths, and ``Runner``'s options)."""
    runner = start(**kwargs)
    return runner if isinstance(runner, dict) else runner.run()


def start(**kwargs):
    """``rocknet.run()`` up to its loop: `rocknet.board.setup` checks the files and builds the
    `runner.Runner` (or returns the stored result dict of a finished plan); then the set-up
    code leaves the heap (`forget`), so the loop holds only its own."""
    from .board import SETUP_MODULES, setup

    runner = setup(**kwargs)
    setup = None
    forget(*SETUP_MODULES)
    SETUP_MODULES = None
    import gc

    gc.collect()
    return runner


def forget(*names):
    """Drop the modules ``rocknet.NAME`` from ``sys.modules`` and this package, so that their
    code leaves the heap once nothing else refers to it (an ``import`` loads them again):
    how set-up and checkpoint code is held only while it runs. Nothing on CPython: there the
    host runs many boards in one interpreter, which must keep one of each module (and of its
    exception classes)."""
    import sys

    if sys.implementation.name == "cpython":
        return
    g = globals()
    for name in names:
        sys.modules.pop(__name__ + "." + name, None)
        g.pop(name, None)
