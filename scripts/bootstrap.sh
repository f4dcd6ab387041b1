#!/bin/sh
# Create .venv with the project and everything its demo and tests need.
# Works on a fresh Debian 12 that has only python3: Debian ships venv without ensurepip,
# so python3-venv is installed first when missing (as root; otherwise we say what to run).
set -eu
cd "$(dirname "$0")/.."

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing python3-venv" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "bootstrap: python3's venv module is missing; run: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# No argument: the daemon alone (what the demo needs); "test", "monitor", "deploy": extras.
spec="."
if [ -n "${1:-}" ]; then
    spec=".[$1]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
