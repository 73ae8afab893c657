#!/usr/bin/env bash
# Unpacks the MicroPython 1.23 source tree (native .mpy ABI 6.3) that the native module is
# built against, from the mpy-cross-v6-3 sdist on PyPI, into .cache/mpy-sdk/ (never
# committed), and prints its path (MPY_DIR: py/dynruntime.mk, tools/mpy_ld.py).
# Usage: tools/fetch_mpy_sdk.sh [python]   (a python with pip; default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.1.1
python=${1:-.venv/bin/python}
cache=.cache/mpy-sdk
sdk=$cache/micropython

if [ ! -f "$sdk/py/dynruntime.mk" ] || [ ! -f "$sdk/tools/mpy_ld.py" ]; then
  rm -rf "$cache" && mkdir -p "$cache/download"
  "$python" -m pip download --quiet --no-binary :all: --no-deps \
    "mpy-cross-v6-3==$version" -d "$cache/download" >&2
  tar -xzf "$cache/download/mpy_cross_v6_3-$version.tar.gz" -C "$cache" \
    --strip-components=1 "mpy_cross_v6_3-$version/micropython"
fi
echo "$sdk"
