#!/bin/sh
# Set up .venv (first run only) and run the demo: the bundled exchange simulator, the daemon,
# and its state file filling up while faults are injected. About 40 seconds; loopback only.
set -eu
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh demo
exec .venv/bin/python scripts/demo.py "$@"
