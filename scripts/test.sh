#!/bin/sh
# Set up and run the full test suite: lint and format check (ruff), then pytest, with
# ansible-lint, the type checks (mypy) and the runtime's fast tests under each other supported
# Python this machine has (noxfile.py) running beside it.
# As root on Debian it also installs the system packages the system-level tests use
# (OpenSSH for the monitor's SSH tests and Ansible, debootstrap and systemd-nspawn for the
# throw-away droplet); without root those tests are skipped with their reason.
# Extra arguments go to pytest, e.g. ./scripts/test.sh -m "not slow".
set -eu
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="openssh-client openssh-server debootstrap systemd-container"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for package in $SYSTEM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $package"
    done
    if [ -n "$missing" ]; then
        echo "test: installing$missing" >&2
        apt-get update -qq
        # policy-rc.d: install sshd without starting it on port 22; the tests run their own.
        own_policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            own_policy=yes
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
        if [ -n "$own_policy" ]; then
            rm -f /usr/sbin/policy-rc.d
        fi
    fi
fi

./scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# ansible-lint and the type checks (about 30 s on one core) run beside the suite, as nox does;
# what they say is printed at the end, and a finding fails the run as a failed test does.
checks_log="$(mktemp)" nox_log="$(mktemp)" checks_pid="" nox_pid=""
# (|| true: under set -e a failing kill, of a job that has ended, would make the exit status 1.)
trap 'kill $checks_pid $nox_pid 2>/dev/null || true; rm -f "$checks_log" "$nox_log"' EXIT
(
    set -e
    .venv/bin/ansible-lint -q
    # Types: the runtime as the oldest Python it supports sees it; the controller's tools as theirs.
    .venv/bin/mypy --python-version 3.10 daemon/binance_funding_ws
    .venv/bin/mypy --python-version 3.11 monitor/funding_monitor simulator/binance_funding_sim
) >"$checks_log" 2>&1 &
checks_pid=$!
# The runtime's fast tests under each other supported Python this machine has (nox; a missing
# one is skipped and named) run beside the full suite: they fill the cores the suite's last,
# longest tests leave idle. (nox builds from copies, never in the tree the suite builds from.)
own="$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
others="$(.venv/bin/python -c 'import noxfile, sys; print(" ".join(v for v in noxfile.SUPPORTED if v != sys.argv[1]))' "$own")"
echo "test: the runtime's fast tests under Python $others (nox), beside the full suite under $own" >&2
# shellcheck disable=SC2086  # $others is a word list on purpose
.venv/bin/nox --no-error-on-missing-interpreters -p $others >"$nox_log" 2>&1 &
nox_pid=$!
# Workers: most tests wait (on a daemon, a droplet's systemd, SSH, ansible), so four share two
# cores well; the tests of one droplet stay together in order (xdist_group, see tests/).
# The 15 slowest tests are listed at the end, to keep the suite's budget in sight.
pytest_status=0
.venv/bin/pytest -n "${TEST_WORKERS:-4}" --dist loadgroup --durations=15 "$@" || pytest_status=$?
checks_status=0
wait "$checks_pid" || checks_status=$?
cat "$checks_log" >&2
if [ "$checks_status" -ne 0 ]; then
    echo "test: ansible-lint or mypy found a problem (above)" >&2
fi
nox_status=0
wait "$nox_pid" || nox_status=$?
grep -E "^nox > (Session|Ran)|skipped|not found" "$nox_log" >&2 || true
if [ "$nox_status" -ne 0 ]; then
    tail -n 60 "$nox_log" >&2
    echo "test: the runtime's tests failed under another Python (nox, above)" >&2
fi
if [ "$pytest_status" -ne 0 ]; then
    exit "$pytest_status"
fi
if [ "$checks_status" -ne 0 ]; then
    exit "$checks_status"
fi
exit "$nox_status"
