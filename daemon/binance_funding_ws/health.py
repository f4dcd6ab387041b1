"""Sans-I/O judgement of a state document: healthy or not, and why.

One set of rules for ``status``, the monitor and the deploy check. The file is healthy when
the feed is connected, market data arrived recently, and the daemon wrote the file recently.
Stale symbols are reported but do not by themselves make the file unhealthy: a delisted
symbol stays in the maps with its last values and ageing event time until the daemon
restarts, and that is information, not an outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from binance_funding_ws.state import StateDocument


class _Timestamped(Protocol):
    @property
    def event_time(self) -> int: ...


@dataclass(frozen=True)
class Health:
    """What a reader should know about one state document at one instant."""

    healthy: bool
    problems: list[str]
    state: str
    message_age: float | None  # seconds since the last market frame, None if never
    write_age: float  # seconds since the daemon wrote the file
    funding_count: int
    ticker_count: int
    no_ticker: list[str]
    no_funding: list[str]
    stale_funding: list[tuple[str, float]] = field(default_factory=list)
    stale_tickers: list[tuple[str, float]] = field(default_factory=list)


def stale_entries(
    entries: Mapping[str, _Timestamped], now: int, max_age: float
) -> list[tuple[str, float]]:
    """Symbols whose event time is more than ``max_age`` seconds old, oldest first."""
    limit = now - int(max_age * 1000)
    stale = [
        (symbol, (now - entry.event_time) / 1000)
        for symbol, entry in entries.items()
        if entry.event_time < limit
    ]
    stale.sort(key=lambda item: (-item[1], item[0]))
    return stale


def assess(document: StateDocument, now: int, max_age: float) -> Health:
    """Judge ``document`` at ``now`` (epoch ms) with ``max_age`` seconds of tolerance."""
    status = document.connection_status
    problems: list[str] = []
    if status.state != "connected":
        since = (now - status.state_since) / 1000
        problems.append(f"feed is {status.state} (for {format_age(since)})")
    message_age = None if status.last_message_at is None else (now - status.last_message_at) / 1000
    if message_age is None:
        problems.append("no market data received yet")
    elif message_age > max_age:
        problems.append(f"no market data for {format_age(message_age)}")
    write_age = (now - document.updated_at) / 1000
    if write_age > max_age:
        problems.append(
            f"state file not written for {format_age(write_age)} (daemon stopped or stuck?)"
        )
    if status.last_write_error:
        problems.append(f"last write failed: {status.last_write_error}")
    if not document.funding:
        problems.append("no funding data")
    return Health(
        healthy=not problems,
        problems=problems,
        state=status.state,
        message_age=message_age,
        write_age=write_age,
        funding_count=len(document.funding),
        ticker_count=len(document.tickers),
        no_ticker=list(document.missing.no_ticker),
        no_funding=list(document.missing.no_funding),
        stale_funding=stale_entries(document.funding, now, max_age),
        stale_tickers=stale_entries(document.tickers, now, max_age),
    )


def format_age(seconds: float) -> str:
    """A short human age: ``0.4 s``, ``12 s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    if seconds < 0:
        return "in the future (clock skew?)" if seconds < -1 else "0.0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def name_list(names: list[str], limit: int = 10) -> str:
    """``A, B, C (+7 more)``, or ``none``: long symbol lists stay one readable line."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown
