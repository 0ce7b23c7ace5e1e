"""Write device/package.json, the manifest `mpremote mip install` reads, from device/rocknet.

    python tools/make_package_json.py          # rewrite it
    python tools/make_package_json.py --check  # exit 1 if it is out of date

Install on a board (URLs are relative to package.json, so any fork or branch works):
    mpremote mip install github:OWNER/REPO/device/package.json
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEVICE = Path(__file__).resolve().parents[1] / "device"


def manifest() -> str:
    init = (DEVICE / "rocknet" / "__init__.py").read_text()
    version = init.split('__version__ = "', 1)[1].split('"', 1)[0]
    files = sorted(p.relative_to(DEVICE).as_posix() for p in (DEVICE / "rocknet").rglob("*.py")
                   if "__pycache__" not in p.parts)
    try:  # only what is committed: a package must not name files a clone lacks
        out = subprocess.run(["git", "ls-files", "rocknet"], cwd=DEVICE, capture_output=True,
                             text=True, check=True).stdout.split()
        files = [f for f in files if f in out]
    except (OSError, subprocess.CalledProcessError):
        pass
    return json.dumps({"urls": [[f, f] for f in files], "deps": [], "version": version},
                      indent=2) + "\n"


def main(argv: list[str]) -> int:
    path = DEVICE / "package.json"
    text = manifest()
    if "--check" in argv:
        if path.exists() and path.read_text() == text:
            return 0
        have = {d for d, _ in json.loads(path.read_text())["urls"]} if path.exists() else set()
        want = {d for d, _ in json.loads(text)["urls"]}
        print(f"{path} is out of date (missing: {sorted(want - have) or '-'}; extra: "
              f"{sorted(have - want) or '-'}): run `python tools/make_package_json.py` and "
              "commit it", file=sys.stderr)
        return 1
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
