"""Asking REST for what the state file cannot answer: bounded in time, in number and in weight.

Invariants:

* A lookup waits at most ``timeout`` seconds whatever the network does: the request runs in a
  daemon thread and the caller stops waiting at its deadline (a socket timeout alone does not
  bound DNS, nor a server that trickles its answer). Nothing here sleeps or retries.
* At most one request per (endpoint, symbol) at a time, shared by every caller asking for it,
  and at most :data:`MAX_IN_FLIGHT` requests in all.
* No request while the circuit (:mod:`binance_funding_ws.circuit`) is open: a failure, a 429's
  ``Retry-After`` or a 418's ban holds every lookup back, and such lookups return ``None`` at
  once. Each request is judged once: a caller that gives up at its deadline reports a timeout,
  and the request's own outcome is then ignored by the circuit (but still fills the cache).
* An answer is reused while it is at most ``max_age`` old by its event time (the one stale
  rule, :func:`binance_funding_ws.health.is_stale`), and a symbol the exchange does not list
  (HTTP 400) is remembered for :data:`UNKNOWN_SYMBOL_TTL`: a burst of alerts for one symbol
  costs one request of weight 1.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from binance_funding_ws.botstats import Counters
from binance_funding_ws.circuit import Circuit, Verdict, judge, parse_retry_after, weight_pause
from binance_funding_ws.health import is_stale
from binance_funding_ws.quotes import (
    FundingQuote,
    RestAnswerError,
    TickerQuote,
    funding_from_rest,
    ticker_from_rest,
)
from binance_funding_ws.state import now_ms
from binance_funding_ws.text import one_line

log = logging.getLogger("binance_funding_ws.consumer")

MAX_IN_FLIGHT = 8
MAX_BODY = 64 * 1024  # a one-symbol answer is a few hundred bytes
UNKNOWN_SYMBOL_TTL = 60.0
MAX_REMEMBERED = 2_048  # answers kept for reuse; the oldest go first

Q = TypeVar("Q", FundingQuote, TickerQuote)


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[Q]):
    """A one-symbol REST endpoint of weight 1 and the parser of its answer."""

    path: str
    parse: Callable[[str, bytes], Q]


PREMIUM_INDEX = Endpoint("/fapi/v1/premiumIndex", funding_from_rest)
TICKER_24HR = Endpoint("/fapi/v1/ticker/24hr", ticker_from_rest)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    retry_after: float | None
    used_weight: int | None


def http_get(url: str, timeout: float) -> Reply:
    """One GET, no retry. An HTTP error status is a :class:`Reply`; a network failure raises
    ``OSError`` (``URLError``, ``TimeoutError``) or ``http.client.HTTPException``."""
    from binance_funding_ws import __version__  # here: the package imports this module

    agent = f"binance-funding-ws/{__version__}"
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _reply(response.status, response.headers, response.read(MAX_BODY + 1))
    except urllib.error.HTTPError as exc:
        with exc:  # the error body is not needed: the status and headers say it all
            return _reply(exc.code, exc.headers, b"")


def _reply(status: int, headers: Any, body: bytes) -> Reply:
    weight = headers.get("X-MBX-USED-WEIGHT-1m", "") if headers is not None else ""
    retry_after = headers.get("Retry-After") if headers is not None else None
    return Reply(
        status=status,
        body=body,
        retry_after=parse_retry_after(retry_after),
        used_weight=int(weight) if weight.isdigit() else None,
    )


class _Request:
    """One request in flight. ``quote`` is final once ``done`` is set."""

    __slots__ = ("done", "judged", "quote")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.quote: FundingQuote | TickerQuote | None = None
        self.judged = False


@dataclass(frozen=True, slots=True)
class _Remembered:
    quote: FundingQuote | TickerQuote | None  # None: the exchange does not list the symbol
    forget_at: float  # monotonic; for unknown symbols only (answers age by the stale rule)


class RestFallback:
    """One-symbol REST lookups for a :class:`~binance_funding_ws.consumer.FundingSource`."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        counters: Counters,
        circuit: Circuit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._counters = counters
        self._circuit = circuit or Circuit()
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Request] = {}
        self._remembered: dict[tuple[str, str], _Remembered] = {}

    def lookup(self, endpoint: Endpoint[Q], symbol: str, max_age: float) -> Q | None:
        """``symbol``'s quote from REST, or ``None``; never longer than ``timeout``."""
        key = (endpoint.path, symbol)
        with self._lock:
            remembered = self._recall(key, max_age)
            if remembered is not None:
                return remembered.quote  # type: ignore[return-value]  # keyed by endpoint
            request = self._pending.get(key) or self._start(endpoint, symbol, key)
        if request is None:
            return None
        if not request.done.wait(self._timeout):
            self._give_up(key, request)
            return None
        return request.quote  # type: ignore[return-value]

    def _give_up(self, key: tuple[str, str], request: _Request) -> None:
        """A request outlived a caller's deadline: a failure (a timeout) for the circuit, and
        no later lookup joins it, so none waits on a request already known to be slow."""
        with self._lock:
            if self._pending.get(key) is request:
                del self._pending[key]
            self._judge(request, "failed", None, f"no answer within {self._timeout:g} s")

    def paused_for(self) -> float:
        """Seconds until a request may be made again (0: now)."""
        with self._lock:
            return self._circuit.remaining(self._clock())

    def _recall(self, key: tuple[str, str], max_age: float) -> _Remembered | None:
        remembered = self._remembered.get(key)
        if remembered is None:
            return None
        quote = remembered.quote
        if quote is None:
            usable = self._clock() < remembered.forget_at
        else:
            usable = not is_stale(quote.event_time, now_ms(), max_age)
        if not usable:
            del self._remembered[key]
            return None
        if quote is not None:
            self._counters.add("rest_reused")
        return remembered

    def _start(self, endpoint: Endpoint[Q], symbol: str, key: tuple[str, str]) -> _Request | None:
        if len(self._pending) >= MAX_IN_FLIGHT or not self._circuit.admit(self._clock()):
            self._counters.add("rest_skipped")
            return None
        request = self._pending[key] = _Request()
        url = f"{self.base_url}{endpoint.path}?{urlencode({'symbol': symbol})}"
        self._counters.add("rest_requests")
        worker = threading.Thread(
            target=self._fetch,
            args=(endpoint, symbol, url, request),
            name=f"funding-rest-{symbol}",
            daemon=True,  # a hung request must never keep the bot from exiting
        )
        try:
            worker.start()
        except RuntimeError as exc:  # no thread to be had: a failure like any other
            del self._pending[key]
            self._counters.add("rest_errors")
            self._judge(request, "failed", None, f"{symbol}: {exc}")
            return None
        return request

    def _fetch(self, endpoint: Endpoint[Q], symbol: str, url: str, request: _Request) -> None:
        outcome = _Outcome(None, "failed", None, "request failed", None)
        try:
            outcome = _ask(endpoint, symbol, url, self._timeout)
        finally:  # whatever happened, the waiters are released and the circuit hears of it
            self._finish((endpoint.path, symbol), request, outcome)

    def _finish(self, key: tuple[str, str], request: _Request, outcome: _Outcome) -> None:
        with self._lock:
            if self._pending.get(key) is request:
                del self._pending[key]
            if outcome.quote is not None or outcome.verdict == "unknown_symbol":
                self._remember(key, outcome.quote)
            else:
                self._counters.add_shared("rest_errors")
            detail = f"{key[1]}: {outcome.detail}"
            self._judge(request, outcome.verdict, outcome.retry_after, detail)
            pause = weight_pause(outcome.used_weight, time.time())
            if pause:
                self._circuit.pause(self._clock(), pause)
                log.warning(
                    "REST weight %s used this minute: pausing %.0f s", outcome.used_weight, pause
                )
            request.quote = outcome.quote
        request.done.set()

    def _judge(
        self, request: _Request, verdict: Verdict, retry_after: float | None, detail: str
    ) -> None:
        """Tell the circuit how one request went, once (the lock is held)."""
        if request.judged:
            return
        request.judged = True
        if verdict in ("answer", "unknown_symbol"):
            self._circuit.succeeded()
            return
        window = self._circuit.failed(self._clock(), verdict, retry_after)
        log.warning("REST fallback failed (%s); no request for %.1f s", one_line(detail), window)

    def _remember(self, key: tuple[str, str], quote: FundingQuote | TickerQuote | None) -> None:
        if len(self._remembered) >= MAX_REMEMBERED:
            del self._remembered[next(iter(self._remembered))]
        self._remembered.pop(key, None)  # re-inserted last: the dict's order is its age
        self._remembered[key] = _Remembered(quote, self._clock() + UNKNOWN_SYMBOL_TTL)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How one request ended."""

    quote: FundingQuote | TickerQuote | None
    verdict: Verdict
    retry_after: float | None
    detail: str  # for the log line
    used_weight: int | None


def _ask(endpoint: Endpoint[Q], symbol: str, url: str, timeout: float) -> _Outcome:
    """One request and its verdict; a failure is an outcome, not an exception."""
    try:
        reply = http_get(url, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return _Outcome(None, "failed", None, _reason(exc), None)
    verdict, quote, detail = judge(reply.status), None, f"HTTP {reply.status}"
    if verdict == "answer":
        try:
            # An answer over MAX_BODY was read one byte too far: cut, it fails to parse.
            quote = endpoint.parse(symbol, reply.body[:MAX_BODY])
        except RestAnswerError as exc:
            verdict, detail = "failed", str(exc)
    return _Outcome(quote, verdict, reply.retry_after, detail, reply.used_weight)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason)[:200] or type(exc).__name__
