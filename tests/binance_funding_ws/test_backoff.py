"""Reconnect back-off (:mod:`binance_funding_ws.backoff`): capped, full jitter, reset."""

from __future__ import annotations

from binance_funding_ws.backoff import Backoff


def test_backoff_is_capped_full_jitter_and_resets():
    draws = []
    backoff = Backoff(base=1, cap=60, rand=lambda lo, hi: draws.append((lo, hi)) or hi)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert all(lo == 0 for lo, _ in draws)  # full jitter: anywhere from zero
    backoff.reset()
    assert backoff.next_delay() == 1
    for _ in range(10_000):
        backoff.next_delay()
    assert backoff.ceiling() == 60


def test_backoff_default_draws_within_bounds():
    backoff = Backoff(base=0.5, cap=3)
    for _ in range(100):
        ceiling = backoff.ceiling()
        assert 0 <= backoff.next_delay() <= ceiling <= 3
