"""The one clock every part reads, so that a time has one unit per name.

``now_ms`` is wall-clock epoch milliseconds (the unit of the state file and the history),
``now_s`` is wall-clock epoch seconds (the monitor's). Deadlines and intervals read
``time.monotonic()``, which a clock step cannot stretch; a name for it would add nothing.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def now_s() -> float:
    """The current wall-clock time in epoch seconds."""
    return time.time()
