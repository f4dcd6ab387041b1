#!/bin/sh
# Set up and run the full test suite: lint (ruff, ansible-lint), format check, the runtime's
# fast tests under each other supported Python this machine has (noxfile.py), then pytest.
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
.venv/bin/ansible-lint -q
# The full suite below runs under .venv's interpreter: nox takes the other supported ones.
own="$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
others="$(.venv/bin/python -c 'import noxfile, sys; print(" ".join(v for v in noxfile.SUPPORTED if v != sys.argv[1]))' "$own")"
echo "test: the runtime's fast tests under Python $others (nox); the full suite under $own" >&2
# shellcheck disable=SC2086  # $others is a word list on purpose
.venv/bin/nox --no-error-on-missing-interpreters -p $others
exec .venv/bin/pytest "$@"
