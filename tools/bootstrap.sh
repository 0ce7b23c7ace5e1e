#!/usr/bin/env bash
# Idempotent set-up used by both README commands: .venv with the host package (pinned by
# constraints.txt) and the pinned MicroPython WebAssembly runtime from npm (package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: Node.js not found; installing nodejs and npm with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 18 ]; then
    echo "bootstrap: Node.js >= 18 is required (found $(node --version)); install a newer nodejs" >&2
    exit 1
  fi
}

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$py" -m venv .venv
fi
stamp_py=".venv/.stamp-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp_py" ]; then
  echo "bootstrap: installing the host package and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  rm -f .venv/.stamp-* && touch "$stamp_py"
fi

# Optional: tshark decodes the simulator's pcap in a test (skipped without it). Installed only
# where we are root with apt-get (CI machines); elsewhere: `sudo apt-get install tshark`.
if ! command -v tshark >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    && [ -z "${ROCKNET_NO_TSHARK:-}" ]; then
  echo "bootstrap: installing tshark (optional; set ROCKNET_NO_TSHARK=1 to skip)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null) \
    || echo "bootstrap: tshark not installed; the pcap decode test will be skipped" >&2
fi

need_node
stamp_js="node_modules/.stamp-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$stamp_js" ]; then
  echo "bootstrap: installing the pinned MicroPython runtime (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp_js"
fi
