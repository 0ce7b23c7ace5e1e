"""The one array backend: ulab.numpy on boards and in MicroPython, numpy on CPython.

Device code imports ``np`` from here and sticks to the subset of the numpy API that ulab 6.5+
implements (int8/uint8/int16/uint16/float dtypes, 2-D arrays, no int32). ``ULAB`` tells the
rare places that must differ which one they got.
"""

try:
    from ulab import numpy as np  # noqa: F401  (boards, MicroPython WebAssembly)

    ULAB = True
except ImportError:
    import numpy as np  # noqa: F401  (CPython host and fast tests)

    ULAB = False

int8 = np.int8
uint8 = np.uint8
int16 = np.int16
uint16 = np.uint16
# ulab's only float dtype: float32 on boards, float64 in the WebAssembly build and on CPython.
float_ = np.float if ULAB else np.float64


if ULAB:

    def count_rows(mask):
        """Row sums of a 0/1 (uint8) matrix with at most 255 columns, as uint8: ulab sums in
        the operand dtype, which cannot wrap here, and adds into uint16 in place."""
        return np.sum(mask, axis=1)

else:

    def count_rows(mask):
        """Row sums of a 0/1 matrix, as uint16 so in-place adds into uint16 counts work."""
        return mask.sum(axis=1, dtype=np.uint16)


if hasattr(np, "take"):
    take = np.take
else:

    def take(table, idx):
        """``table[idx]`` for a 1-D table and an integer index array: ulab before 6.6
        (CircuitPython 9/10 ship 6.5.3) has no take. Element by element through 1-element
        slices, so float32 values never pass through CircuitPython's 30-bit floats."""
        out = np.zeros(len(idx), dtype=table.dtype)
        for i, k in enumerate(idx):
            k = int(k)
            out[i:i + 1] = table[k:k + 1]
        return out
