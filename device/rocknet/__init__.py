"""rocknet on the board: a slice of a quantized MiniRocket transform, the matching slice of a
linear classifier, and the radio protocol that lets a fleet train them together."""

__version__ = "0.1.0"
