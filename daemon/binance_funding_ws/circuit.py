"""When a consumer may ask the REST API: a circuit breaker with jittered back-off (sans-I/O).

A bot that falls back to REST while the state file is stale must not turn an outage into a
storm: 100 alerts during a REST outage must not make 100 slow connection attempts, and a
429 or a 418 must be honoured to the second, since retrying early is what earns an IP ban.

* **Closed** — requests are admitted.
* **Open** until ``open_until`` — nothing is admitted. Each failure opens the circuit for a
  jittered window that doubles with each consecutive failure (between half and all of
  ``base * 2**n``, capped at ``cap``), or for as long as the exchange asked (``Retry-After``
  on a 429; the ban on a 418), whichever is longer. A window is never shortened.
* **Half-open** — after a failure's window, exactly one request (the probe) is admitted; the
  others are refused until its outcome is reported. A success closes the circuit and resets
  the back-off; a failure opens it again for a longer window.

Times are monotonic seconds supplied by the caller; nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.rest import MAX_RETRY_AFTER

BAN_DEFAULT = 120.0  # a 418 without Retry-After: Binance's bans last 2 minutes to 3 days
# The longest the circuit stays open, whatever it is told: Retry-After's cap (300 s, see
# binance_funding_ws.rest); the back-off reaches 60 s, a weight pause 60 s.
MAX_WINDOW = MAX_RETRY_AFTER
# X-MBX-USED-WEIGHT-1m at which fallbacks pause until the next minute: the budget (2,400 a
# minute per IP) is shared with whatever else the host asks, such as the bot's own klines.
WEIGHT_PAUSE_AT = 2_000

Verdict = Literal["answer", "unknown_symbol", "rate_limited", "banned", "failed"]


def judge(status: int) -> Verdict:
    """What an HTTP status means for the circuit.

    400 is Binance's answer to a symbol it does not list (code -1121): a fact about the
    request, not about the service, so it does not open the circuit. A redirect (3xx) is a
    failure: it is never followed, to another host or the same one.
    """
    if status == 200:
        return "answer"
    if status == 400:
        return "unknown_symbol"
    if status == 418:
        return "banned"
    if status == 429:
        return "rate_limited"
    return "failed"


def weight_pause(used_weight: int | None, wall_s: float) -> float:
    """Seconds to hold fallbacks back because this IP's weight for the minute is nearly spent
    (until the next minute starts), else 0."""
    if used_weight is None or used_weight < WEIGHT_PAUSE_AT:
        return 0.0
    return 60.0 - wall_s % 60.0


def equal_jitter(
    rand: Callable[[float, float], float] = random.uniform,
) -> Callable[[float, float], float]:
    """A :class:`Backoff` draw between half and all of the ceiling (equal jitter).

    Unlike full jitter, a window never collapses to ~0, so one failure really does hold the
    next lookups back; many bots still spread apart.
    """
    return lambda _low, high: rand(high / 2, high)


class Circuit:
    """The breaker. Not thread-safe: the caller holds a lock around it.

    The default back-off: 0.5–1 s after a first failure, doubling up to 30–60 s.
    """

    def __init__(self, backoff: Backoff | None = None) -> None:
        self._backoff = backoff or Backoff(1.0, 60.0, rand=equal_jitter())
        self.open_until = 0.0
        self.failures = 0  # consecutive; 0 means closed
        self._probing = False

    def admit(self, now_s: float) -> bool:
        """May a request start at ``now_s``? A half-open circuit says yes to one caller only."""
        if now_s < self.open_until:
            return False
        if self.failures == 0:
            return True
        if self._probing:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        """A request got an answer: close, reset the back-off (an open window still holds)."""
        self.failures = 0
        self._probing = False
        self._backoff.reset()

    def failed(
        self, now_s: float, verdict: Verdict = "failed", retry_after: float | None = None
    ) -> float:
        """A request failed at ``now_s``; open the circuit and return the window in seconds."""
        self.failures += 1
        self._probing = False
        window = self._backoff.next_delay()
        if verdict == "banned":
            window = max(window, BAN_DEFAULT if retry_after is None else retry_after)
        elif retry_after is not None:
            window = max(window, retry_after)
        window = min(window, MAX_WINDOW)
        self.open_until = max(self.open_until, now_s + window)
        return window

    def pause(self, now_s: float, seconds: float) -> None:
        """Admit nothing for ``seconds`` (the weight budget), without counting a failure."""
        self.open_until = max(self.open_until, now_s + min(seconds, MAX_WINDOW))

    def remaining(self, now_s: float) -> float:
        """Seconds until a request may be admitted again (0 when closed or half-open)."""
        return max(0.0, self.open_until - now_s)
