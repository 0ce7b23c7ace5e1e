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
    ``rocknet.board.main`` (file paths, and ``Runner``'s options)."""
    from .board import main

    return main(**kwargs)
