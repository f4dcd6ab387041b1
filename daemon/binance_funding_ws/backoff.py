"""Reconnect delays: capped exponential backoff with full jitter (sans-I/O).

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads reconnects of
many clients apart, which is what keeps a fleet from storming the exchange after an outage.
The attempt counter resets once a connection has been healthy for a while, so a daemon that
ran well for hours reconnects quickly after one drop, while a connect-then-drop loop keeps
backing off.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays for successive reconnect attempts.

    ``next_delay()`` returns a draw from ``[0, min(cap, base * 2**attempt)]`` and advances
    ``attempt``; ``reset()`` starts over.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rand = rand

    def ceiling(self) -> float:
        """The largest delay the next attempt can draw."""
        # min() before the power would overflow for large attempts; 2**64 is plenty.
        return min(self.cap, self.base * 2.0 ** min(self.attempt, 64))

    def next_delay(self) -> float:
        delay = self._rand(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
