#!/bin/sh
# Create .venv with what one use of the project needs. Works on a fresh Debian 12 that has
# only python3: Debian ships venv without ensurepip, so python3-venv is installed first when
# missing (as root; otherwise we say what to run).
#   ./scripts/bootstrap.sh           the daemon alone (binance-funding-ws, as on the droplet)
#   ./scripts/bootstrap.sh demo      + the exchange simulator (binance-funding-sim)
#   ./scripts/bootstrap.sh monitor   + funding-monitor
#   ./scripts/bootstrap.sh deploy    + ansible-core
#   ./scripts/bootstrap.sh test      everything, plus the test and lint tools
# Profiles are requirements/<name>.txt; every distribution is installed editable.
set -eu
cd "$(dirname "$0")/.."

profile="${1:-}"
if [ -n "$profile" ] && [ ! -f "requirements/$profile.txt" ]; then
    echo "bootstrap: unknown profile '$profile' (demo, monitor, deploy or test)" >&2
    exit 2
fi

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
pip() { .venv/bin/python -m pip --quiet --disable-pip-version-check "$@"; }
pip install --upgrade pip
if [ -n "$profile" ]; then
    pip install -r "requirements/$profile.txt"
else
    pip install -e ./daemon
fi
