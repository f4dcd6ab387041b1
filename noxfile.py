"""The runtime's fast tests under every supported CPython this machine has (scripts/test.sh).

The droplet's Python is whatever its release ships: 3.10 (Ubuntu 22.04) to 3.13 (Debian 13).
Each session installs ``daemon/`` as a wheel, as the droplet does (``pip install ./daemon``),
and runs the tests that need neither root, a droplet nor the monitor: the pure modules, the
state file and its writer, and the daemon run against the simulator, talking to systemd. (The
full suite runs once, in .venv; scripts/test.sh leaves out the session of .venv's own
interpreter, which the full suite covers.) An interpreter this machine lacks is skipped, and
nox's summary names it.

    .venv/bin/nox                  every interpreter
    .venv/bin/nox -p 3.10          one
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

# Kept in step with daemon/pyproject.toml's requires-python and the role's preflight
# (tests/system/test_release.py checks that they agree).
SUPPORTED = ["3.10", "3.11", "3.12", "3.13"]
# The runtime's own tests that need neither root, a droplet nor the monitor: every pure
# module's (tests/binance_funding_ws/test_*.py) and the daemon's I/O shell's (runtime/: the
# writer, systemd's notify socket, the daemon against the simulator).
FAST_TESTS = [
    *sorted(str(path) for path in Path("tests/binance_funding_ws").glob("test_*.py")),
    "tests/binance_funding_ws/runtime",
]

nox.options.sessions = ["runtime"]
nox.options.reuse_existing_virtualenvs = True  # a rerun only checks the installs
nox.options.error_on_missing_interpreters = False  # skipped, and said so in the summary


def _pyenv_interpreters() -> None:
    """Let nox find pyenv's interpreters (python3.10, ...) without `pyenv shell`."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(str(v / "bin") for v in versions.glob("3.*") if (v / "bin").is_dir())
    if found:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *found])


_pyenv_interpreters()
# The interpreters this machine has, never one uv would download instead.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


@nox.session(python=SUPPORTED, venv_backend="uv|virtualenv")
def runtime(session: nox.Session) -> None:
    """pip install ./daemon, then the runtime's fast tests."""
    # Not editable: the wheel the release is built from, with the metadata pip checks. Built
    # from copies: a build in the tree writes daemon/build/, which the pytest run beside this
    # one reads while building droplet releases (scripts/test.sh runs both at once).
    session.install(
        *_copies(session, "daemon", "simulator"),
        "pytest>=8",
        "pytest-timeout>=2.3",
        "jsonschema",
        "hypothesis>=6.100",
    )
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *FAST_TESTS,
        *session.posargs,
        # A quarter of each property test's examples (tests/strategies.py): the full suite
        # runs them all under .venv's Python, and this session runs beside it.
        env={"TEST_HYPOTHESIS_EXAMPLES_SCALE": "0.25"},
    )


def _copies(session: nox.Session, *projects: str) -> list[str]:
    """Fresh copies of the project's distributions, their sources only."""
    where = Path(session.create_tmp()) / "src"
    shutil.rmtree(where, ignore_errors=True)
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    for project in projects:
        shutil.copytree(project, where / project, ignore=ignore)
    return [str(where / project) for project in projects]
