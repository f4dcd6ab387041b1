"""The REST circuit breaker (:mod:`binance_funding_ws.circuit`): open, half-open, closed; Retry-
After and bans; what each HTTP status means."""

from __future__ import annotations

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.circuit import (
    BAN_DEFAULT,
    MAX_WINDOW,
    Circuit,
    equal_jitter,
    judge,
    weight_pause,
)


def test_circuit_opens_half_opens_and_closes():
    circuit = Circuit(Backoff(1.0, 8.0, rand=equal_jitter(lambda low, high: high)))  # longest
    assert circuit.admit(0.0) and circuit.admit(0.0)  # closed: everyone
    assert circuit.failed(0.0) == 1.0
    assert not circuit.admit(0.99)
    assert circuit.admit(1.0) and not circuit.admit(1.0)  # half-open: one probe only
    assert circuit.failed(1.0) == 2.0  # the window doubles
    assert circuit.failed(3.0) == 4.0 and circuit.failed(7.0) == 8.0 and circuit.failed(15.0) == 8.0
    assert circuit.admit(23.0)
    circuit.succeeded()
    assert circuit.admit(23.0) and circuit.admit(23.0)
    assert circuit.failed(23.0) == 1.0  # the back-off starts over


def test_circuit_jitter_never_collapses_the_window():
    circuit = Circuit(Backoff(1.0, 60.0, rand=equal_jitter(lambda low, high: low)))  # shortest
    assert circuit.failed(0.0) == 0.5 and circuit.failed(0.5) == 1.0


def test_circuit_honours_retry_after_and_bans():
    circuit = Circuit(Backoff(1.0, 60.0, rand=equal_jitter(lambda low, high: high)))
    assert circuit.failed(0.0, "rate_limited", retry_after=30.0) == 30.0
    assert not circuit.admit(29.9) and circuit.admit(30.0)
    assert circuit.failed(30.0, "banned") == BAN_DEFAULT
    assert circuit.failed(30.0, "banned", retry_after=200.0) == 200.0
    assert circuit.failed(30.0, "rate_limited", retry_after=1e300) == MAX_WINDOW == 300
    assert circuit.failed(30.0, "banned", retry_after=7200.0) == MAX_WINDOW
    circuit.succeeded()  # a late success does not cut a ban short
    assert not circuit.admit(329.0) and circuit.admit(330.0)
    circuit = Circuit()
    circuit.pause(0.0, 12.0)
    assert not circuit.admit(11.9) and circuit.admit(12.0) and circuit.failures == 0


def test_http_statuses_and_headers():
    assert [judge(s) for s in (200, 400, 418, 429, 500, 403)] == [
        "answer",
        "unknown_symbol",
        "banned",
        "rate_limited",
        "failed",
        "failed",
    ]
    assert weight_pause(None, 100.0) == weight_pause(1999, 100.0) == 0
    assert weight_pause(2000, 130.0) == 50.0
