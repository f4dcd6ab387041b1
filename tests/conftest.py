"""Shared fixtures: no test leaves a daemon process behind, whatever its outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daemon_helpers import DaemonProcess


@pytest.fixture(autouse=True)
def _kill_leftover_daemons() -> Iterator[None]:
    yield
    while DaemonProcess.started:
        DaemonProcess.started.pop().kill()
