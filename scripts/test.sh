#!/bin/sh
# Set up and run the full test suite: lint, format check, then pytest.
# As root on Debian it also installs the system packages the system-level tests use;
# without root those tests are skipped with their reason.
set -eu
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest "$@"
