"""Asking REST for what the state file cannot answer: bounded in time, in number and in weight.

Invariants:

* A lookup waits at most ``timeout`` seconds whatever the network does: the request runs in a
  daemon thread and the caller stops waiting at its deadline. The request itself ends by the
  same deadline (:mod:`binance_funding_ws.tools.rest` gives every read what is left of it), so
  an abandoned request closes its socket and ends its thread. Nothing here sleeps or retries.
* At most one request per (endpoint, symbol) at a time, shared by every caller asking for it,
  and at most :data:`MAX_IN_FLIGHT` request threads alive in all, an abandoned one included
  (name resolution, which no deadline reaches, can keep one alive): never more threads or
  sockets than that, whatever the server does.
* An answer dated over an hour (or ``max_age``, if longer) ago or in the future is a failure,
  never a quote (:func:`binance_funding_ws.quotes.check_dated`).
* No request while the circuit (:mod:`binance_funding_ws.circuit`) is open: a failure, a 429's
  ``Retry-After`` or a 418's ban holds every lookup back, and such lookups return ``None`` at
  once. Each request is judged once: a caller that gives up at its deadline reports a timeout,
  and the request's own outcome is then ignored by the circuit (but still fills the cache).
  Every failed request, a timeout included, is counted once in ``rest_errors``.
* An answer is reused while it is at most ``max_age`` old by its event time (the one stale
  rule, :func:`binance_funding_ws.health.is_stale`), and a symbol the exchange does not list
  (HTTP 400) is remembered for :data:`UNKNOWN_SYMBOL_TTL`: a burst of alerts for one symbol
  costs one request of weight 1.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from binance_funding_ws.botstats import LookupCounters
from binance_funding_ws.circuit import Circuit, Verdict, judge
from binance_funding_ws.clock import now_ms
from binance_funding_ws.health import is_stale
from binance_funding_ws.quotes import (
    FundingQuote,
    TickerQuote,
    check_dated,
    funding_from_rest,
    ticker_from_rest,
)
from binance_funding_ws.rest import MAX_ONE_SYMBOL_BODY, WEIGHT_ONE_SYMBOL, RestAnswerError
from binance_funding_ws.rest import PREMIUM_INDEX as PREMIUM_INDEX_PATH
from binance_funding_ws.rest import TICKER_24HR as TICKER_24HR_PATH
from binance_funding_ws.text import one_line
from binance_funding_ws.tools.rest import RestClient, RestError

log = logging.getLogger("binance_funding_ws.consumer")

MAX_IN_FLIGHT = 8
UNKNOWN_SYMBOL_TTL = 60.0
MAX_REMEMBERED = 2_048  # answers kept for reuse; the oldest go first

Q = TypeVar("Q", FundingQuote, TickerQuote)


@dataclass(frozen=True, slots=True)
class RestQuery(Generic[Q]):
    """A one-symbol REST query: its endpoint (weight 1) and the parser of its answer (not
    the stream :class:`~binance_funding_ws.endpoint.Endpoint`)."""

    path: str
    parse: Callable[[str, bytes], Q]


PREMIUM_INDEX = RestQuery(PREMIUM_INDEX_PATH, funding_from_rest)
TICKER_24HR = RestQuery(TICKER_24HR_PATH, ticker_from_rest)


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
        counters: LookupCounters,
        circuit: Circuit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = RestClient(base_url, timeout, circuit=circuit, clock=clock)
        self.base_url = self._client.base_url
        self._timeout = timeout
        self._counters = counters
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Request] = {}
        self._running = 0  # request threads alive, abandoned ones included
        self._remembered: dict[tuple[str, str], _Remembered] = {}

    def lookup(self, query: RestQuery[Q], symbol: str, max_age: float) -> Q | None:
        """``symbol``'s quote from REST, or ``None``; never longer than ``timeout``."""
        key = (query.path, symbol)
        with self._lock:
            remembered = self._recall(key, max_age)
            if remembered is not None:
                return remembered.quote  # type: ignore[return-value]  # keyed by query
            request = self._pending.get(key) or self._start(query, symbol, key, max_age)
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
        return self._client.paused_for()

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

    def _start(
        self, query: RestQuery[Q], symbol: str, key: tuple[str, str], max_age: float
    ) -> _Request | None:
        if self._running >= MAX_IN_FLIGHT or not self._client.admit():
            self._counters.add("rest_skipped")
            return None
        request = self._pending[key] = _Request()
        self._running += 1
        self._counters.add("rest_requests")
        worker = threading.Thread(
            target=self._fetch,
            args=(query, symbol, max_age, request),
            name=f"funding-rest-{symbol}",
            daemon=True,  # a hung request must never keep the bot from exiting
        )
        try:
            worker.start()
        except RuntimeError as exc:  # no thread to be had: a failure like any other
            del self._pending[key]
            self._running -= 1
            self._counters.add("rest_errors")
            self._judge(request, "failed", None, f"{symbol}: {exc}")
            return None
        return request

    def _fetch(self, query: RestQuery[Q], symbol: str, max_age: float, request: _Request) -> None:
        outcome = _Outcome(None, "failed", None, "request failed")
        try:
            outcome = _ask(self._client, query, symbol, max_age)
        finally:  # whatever happened, the waiters are released and the circuit hears of it
            self._finish((query.path, symbol), request, outcome)

    def _finish(self, key: tuple[str, str], request: _Request, outcome: _Outcome) -> None:
        with self._lock:
            self._running -= 1
            if self._pending.get(key) is request:
                del self._pending[key]
            if outcome.quote is not None or outcome.verdict == "unknown_symbol":
                self._remember(key, outcome.quote)
            else:
                self._counters.add_shared("rest_errors")
            detail = f"{key[1]}: {outcome.detail}"
            self._judge(request, outcome.verdict, outcome.retry_after, detail)
            request.quote = outcome.quote
        request.done.set()

    def _judge(
        self, request: _Request, verdict: Verdict, retry_after: float | None, detail: str
    ) -> None:
        """Tell the circuit how one request went, once (the lock is held)."""
        if request.judged:
            return
        request.judged = True
        window = self._client.record(verdict, retry_after)
        if verdict in ("answer", "unknown_symbol"):
            return
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


def _ask(client: RestClient, query: RestQuery[Q], symbol: str, max_age: float) -> _Outcome:
    """One request and its verdict; a failure is an outcome, not an exception."""
    url = client.url(query.path, {"symbol": symbol})
    try:
        reply = client.send(url, WEIGHT_ONE_SYMBOL, MAX_ONE_SYMBOL_BODY)
    except RestError as exc:
        return _Outcome(None, "failed", None, str(exc))
    verdict, quote = judge(reply.status), None
    detail = f"HTTP {reply.status}" + (f" ({reply.note})" if reply.note else "")
    if verdict == "answer":
        try:
            quote = query.parse(symbol, reply.body)
            check_dated(quote, now_ms(), max_age)
        except RestAnswerError as exc:
            verdict, detail, quote = "failed", str(exc), None
    return _Outcome(quote, verdict, reply.retry_after, detail)
