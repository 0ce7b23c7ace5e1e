# MicroPython manifest: freeze rocknet into a firmware build, so its bytecode and constants stay
# in flash instead of the heap (README, "Code in flash"):
#
#     make -C ports/esp32 BOARD=ESP32_GENERIC USER_C_MODULES=.../ulab/code/micropython.cmake \
#         FROZEN_MANIFEST=/path/to/rocknet/device/manifest.py
#
# FROZEN_MANIFEST replaces the board's own manifest; to keep the board's frozen modules too,
# write a manifest holding include("$(BOARD_DIR)/manifest.py") (or the port's,
# "$(PORT_DIR)/boards/manifest.py", where the board has none) and
# include("/path/to/rocknet/device/manifest.py"). ulab is a C module (USER_C_MODULES).
#
# Every .py file under device/rocknet, the same files device/package.json lists for
# `mpremote mip install` (tests/test_packaging.py checks both).
package("rocknet", base_path=".")  # noqa: F821 (a manifest command)
