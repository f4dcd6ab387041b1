"""Audit samples written by hand, one a second from T0, so that every figure a report gives can be
checked exactly."""

from __future__ import annotations

from binance_funding_ws.health import Counters
from binance_funding_ws.history import CompareRound, Sample

T0 = 1_795_500_000_000  # epoch ms of the first sample
DAY_MS = 86_400_000


def counters(**changes) -> Counters:
    base = dict(messages=100, reconnects=0, stalls=0, rotations=0, errors=0, write_errors=0)
    return Counters(**(base | changes))


def when(second: float) -> dict:
    """The time fields of a sample ``second`` seconds after T0 (one a second, max age 2 s)."""
    return dict(at=T0 + int(second * 1000), interval_s=1.0, max_age_s=2.0)


def good(second: float, pid: int = 100, **changes) -> Sample:
    """A healthy sample."""
    fields = dict(
        **when(second),
        readable=True,
        verdict="HEALTHY",
        state="connected",
        last_message_age_s=0.3,
        last_write_age_s=0.2,
        pid=pid,
        started_at=pid * 10,
        daemon_alive=True,
        counters=counters(),
        funding_symbols=15,
        ticker_symbols=14,
    )
    return Sample(**(fields | changes))


def bad(second: float, **changes) -> Sample:
    """A sample of a silent feed: connected by its word, data 5 s old."""
    fields = dict(verdict="DEGRADED", problems=["no market data for 5.0 s"], last_message_age_s=5.0)
    return good(second, **(fields | changes))


def missing(second: float) -> Sample:
    error = "state.json: no such file (is the daemon running?)"
    return Sample(
        **when(second), readable=False, error=error, error_kind="missing", verdict="UNREADABLE",
        problems=[error],
    )  # fmt: skip


def round_(second: float, **changes) -> CompareRound:
    fields = dict(
        started_at=T0 + int(second * 1000),
        duration_s=0.1,
        compared=15,
        funding_matched=15,
        mark_matched=15,
        next_funding_matched=15,
        max_mark_diff_pct=0.001,
        max_mark_diff_symbol="BTCUSDT",
        listed=14,
        weight=11,
    )
    return CompareRound(**(fields | changes))


def clean_day(**changes) -> list[Sample]:
    samples = [good(s) for s in range(60)]
    samples[5].compare = round_(5, **changes)
    return samples
