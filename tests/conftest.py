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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, so that the suite's wall time is the longest sequence and not the sum
    of what happens to be scheduled last: the droplet sequences (one xdist group each), then
    the other slow tests, then the rest. The sort is stable: a module's tests keep their order.
    """

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("xdist_group"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
