#!/usr/bin/env bash
# MicroPython 1.29 + ulab for ESP32 boards. Not run in CI. See esp32-ulab.md.
#   BOARD=ESP32_GENERIC_S3 (default) | ESP32_GENERIC ; BOARD_VARIANT=SPIRAM_OCT (optional)
#   WORK=./fw-build (default)  Needs ESP-IDF 5.x exported ($IDF_PATH, idf.py on PATH).
set -euo pipefail
BOARD=${BOARD:-ESP32_GENERIC_S3}
WORK=${WORK:-$PWD/fw-build}
MP_TAG=${MP_TAG:-v1.29.0}
command -v idf.py >/dev/null || { echo "ESP-IDF not found: source \$IDF_PATH/export.sh" >&2; exit 1; }
mkdir -p "$WORK" && cd "$WORK"
[ -d micropython ] || git clone --depth 1 --branch "$MP_TAG" https://github.com/micropython/micropython
[ -d ulab ] || git clone --depth 1 https://github.com/v923z/micropython-ulab ulab
make -C micropython/mpy-cross
cd micropython/ports/esp32
make submodules BOARD="$BOARD"
make BOARD="$BOARD" ${BOARD_VARIANT:+BOARD_VARIANT=$BOARD_VARIANT} \
    USER_C_MODULES="$WORK/ulab/code/micropython.cmake"
out="build-$BOARD${BOARD_VARIANT:+-$BOARD_VARIANT}/firmware.bin"
echo "built $PWD/$out"
echo "flash: rocknet flash --board esp32_s3_devkitc --port PORT --firmware $PWD/$out"
