"""Numpy twins of the device computations and the cross-checks against them.

- `minirocket`: the feature transform (``device/rocknet/minirocket.py``), bit-exact integers
- `head`: the head (``device/rocknet/head.py``) for a whole fleet, float32 or float64
- `validate`: runs device slices in a runtime and compares them with the twins
"""
