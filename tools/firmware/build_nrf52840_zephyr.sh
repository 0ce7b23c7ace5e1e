#!/usr/bin/env bash
# MicroPython 1.29 zephyr port + ulab for the nRF52840 DK. Not run in CI.
# See nrf52840-zephyr.md. Needs the Zephyr SDK, west and a Zephyr tree (ZEPHYR_BASE set).
set -euo pipefail
WORK=${WORK:-$PWD/fw-build}
MP_TAG=${MP_TAG:-v1.29.0}
BOARD=${BOARD:-nrf52840dk/nrf52840}
HEAP=${HEAP:-163840}
command -v west >/dev/null || { echo "west not found: install Zephyr's tools first" >&2; exit 1; }
[ -n "${ZEPHYR_BASE:-}" ] || { echo "ZEPHYR_BASE unset: source zephyr/zephyr-env.sh" >&2; exit 1; }
mkdir -p "$WORK" && cd "$WORK"
[ -d micropython ] || git clone --depth 1 --branch "$MP_TAG" https://github.com/micropython/micropython
[ -d ulab ] || git clone --depth 1 https://github.com/v923z/micropython-ulab ulab
cd micropython/ports/zephyr
if ! grep -q "usermod.cmake" CMakeLists.txt; then
  echo "this MicroPython zephyr port has no USER_C_MODULES hook (py/usermod.cmake);" >&2
  echo "use a newer MicroPython, or add ulab's sources to CMakeLists.txt by hand" >&2
  exit 1
fi
west build -p -b "$BOARD" . -- \
  -DUSER_C_MODULES="$WORK/ulab/code/micropython.cmake" \
  -DCONFIG_BT=y -DCONFIG_MICROPY_HEAP_SIZE="$HEAP"
echo "built $PWD/build/zephyr/zephyr.hex"
echo "flash: west flash   or   rocknet flash --board nrf52840_dk --firmware $PWD/build/zephyr/zephyr.hex"
