"""Write boards/code_heap.json, the heap rocknet's code holds on a board by how the board gets
it (files, ROMFS, frozen): the planner's code allowance (`rocknet plan --code-from`).

    PYTHONPATH=host python tools/measure_code_heap.py          # measure and rewrite it
    PYTHONPATH=host python tools/measure_code_heap.py --check  # exit 1 if off by over 10 %

Measured with `rocknet bench features`' code_heap_bytes inside MicroPython 1.29 + ulab
(WebAssembly, 32-bit like a Cortex-M4): "files" and "romfs" measured, "frozen" derived from
"romfs" by the frozen/ROMFS ratio measured on an emulated Cortex-M4F (FROZEN_PER_ROMFS).
Re-run it when the device package changes what a training node imports.
"""

from __future__ import annotations

import json
import sys

from rocknet_host.benches.features import FROZEN_PER_ROMFS, NODE_MODULES, code_heap_bytes
from rocknet_host.boards import CODE_SOURCES
from rocknet_host.hardware.deploy import package_version
from rocknet_host.planning.capacity import CODE_HEAP_FILE
from rocknet_host.runtimes.micropython import RUNTIME_VERSION

TOLERANCE = 0.10


def measure() -> dict[str, object]:
    got = {src: code_heap_bytes(src) for src in (*CODE_SOURCES, "py") if src != "frozen"}
    got["frozen"] = round(got["romfs"] * FROZEN_PER_ROMFS)
    return {
        "format": "rocknet-code-heap",
        "bytes": got,
        "measured": {
            "what": "gc.mem_alloc() after a collection, after minus before importing "
                    f"rocknet, rocknet.xp, rocknet.{{{','.join(NODE_MODULES)}}}",
            "runtime": f"MicroPython 1.29 + ulab, WebAssembly ({RUNTIME_VERSION}), mpy-cross 1.29",
            "files": "measured: .mpy files read from the file system",
            "py": "measured: .py files compiled at import, circuitpython-9 profile (no "
                  "hashlib; a training node does not import the pure-Python SHA-256); "
                  "CircuitPython without its mpy-cross",
            "romfs": "measured: the `rocknet deploy --romfs` image mounted with vfs.VfsRom",
            "frozen": f"not measured here: romfs x {FROZEN_PER_ROMFS:.3f}, the frozen/ROMFS "
                      "ratio measured on an emulated Cortex-M4F (board-costs.md: 14.8 KB / "
                      "34.1 KB)",
            "package_version": package_version(),
        },
    }


def main(argv: list[str]) -> int:
    table = measure()
    if "--check" in argv:
        have = json.loads(CODE_HEAP_FILE.read_text())["bytes"]
        off = {k: (have.get(k), v) for k, v in table["bytes"].items()  # type: ignore[attr-defined]
               if have.get(k) is None or abs(have[k] - v) > TOLERANCE * v}
        if off:
            print(f"{CODE_HEAP_FILE} is out of date (file, measured: {off}): run "
                  "`PYTHONPATH=host python tools/measure_code_heap.py` and commit it",
                  file=sys.stderr)
            return 1
        return 0
    CODE_HEAP_FILE.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {CODE_HEAP_FILE}: {table['bytes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
