"""``FundingSource``: a symbol's funding and ticker for an alert — from the state file while it
is fresh, from REST when it is not, and nothing in websocket-only mode."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from binance_funding_ws.botstats import (
    COUNTERS,
    STATS_FILE_COUNTERS,
    BotStats,
    LookupCounters,
    Mode,
    encode_bot_stats,
    summary_line,
)
from binance_funding_ws.clock import now_ms
from binance_funding_ws.consumer.fallback import PREMIUM_INDEX, TICKER_24HR, RestFallback, RestQuery
from binance_funding_ws.consumer.statefile import StateCache
from binance_funding_ws.health import is_stale
from binance_funding_ws.quotes import (
    FundingQuote,
    TickerQuote,
    normalize_symbol,
)
from binance_funding_ws.rest import DEFAULT_REST_URL
from binance_funding_ws.runtime.writer import AtomicWriter
from binance_funding_ws.text import one_line

log = logging.getLogger("binance_funding_ws.consumer")

YEAR = 365 * 86_400.0

Q = TypeVar("Q", FundingQuote, TickerQuote)


class FundingSource:
    """Funding rates, mark prices and 24 h tickers for one symbol at a time, for an alert.

    ``funding(symbol)`` / ``ticker(symbol)`` answer, in this order:

    1. from the state file, when its entry is at most ``max_age`` seconds old by the exchange's
       event time (the one stale rule, :func:`binance_funding_ws.health.is_stale`);
    2. from REST (``premiumIndex?symbol=`` / ``ticker/24hr?symbol=``, weight 1 each), unless
       ``rest_url`` is ``None`` (websocket-only mode); an answer is reused while it is at most
       ``max_age`` old;
    3. ``None``: an invalid or unknown symbol, REST failing or holding back, websocket-only.

    Invariants: a lookup never raises for bad data or a bad symbol; it never waits longer than
    ``timeout`` seconds for REST, and never sleeps or retries (the parse of a new version of
    the file, ~20 ms for 900 symbols, comes on top for the lookups that arrive during it).
    A lookup answered by the file costs at most one ``stat()`` per ``check_interval`` (across
    all threads) and a dict lookup; each version of the file is parsed once whatever the
    number of threads; every lookup is counted exactly once as ``websocket``, ``rest`` or
    ``unavailable`` in :attr:`stats`. Thread-safe.

    A background thread logs one INFO line per ``report_interval`` in which fallbacks happened
    and, with ``stats_file``, replaces that JSON file with the counters
    (:class:`~binance_funding_ws.botstats.BotStats`). :meth:`close` (or ``with``) stops it and
    writes the final counters.
    """

    def __init__(
        self,
        state_file: str | os.PathLike[str],
        *,
        max_age: float,
        rest_url: str | None = DEFAULT_REST_URL,
        timeout: float = 2.0,
        ticker_max_age: float | None = None,
        stats_file: str | os.PathLike[str] | None = None,
        report_interval: float = 60.0,
        check_interval: float = 0.1,
    ) -> None:
        self.state_file = _path("state_file", state_file)
        self.max_age = _seconds("max_age", max_age, 0.001, YEAR)
        self.ticker_max_age = (
            self.max_age
            if ticker_max_age is None
            else _seconds("ticker_max_age", ticker_max_age, 0.001, YEAR)
        )
        self.rest_url = None if rest_url is None else _rest_url(rest_url)
        self.timeout = _seconds("timeout", timeout, 0.001, 60.0)
        self.stats_file = None if stats_file is None else _stats_path(stats_file, self.state_file)
        self.report_interval = _seconds("report_interval", report_interval, 0.01, 86_400.0)
        check_interval = _seconds("check_interval", check_interval, 0.0, 60.0)

        self._counters = LookupCounters()
        self._cache = StateCache(self.state_file, check_interval, self._counters)
        self._rest: RestFallback | None = None
        if self.rest_url is not None:
            self._rest = RestFallback(self.rest_url, self.timeout, self._counters)
        self._started_at = now_ms()
        self._reporter = _Reporter(self, self._counters, self.report_interval)

    # -- lookups ------------------------------------------------------------------------

    def funding(self, symbol: str) -> FundingQuote | None:
        """``symbol``'s funding rate, mark and index price and next funding time, or ``None``."""
        return self._lookup(self._cache.current().funding, PREMIUM_INDEX, symbol, self.max_age)

    def ticker(self, symbol: str) -> TickerQuote | None:
        """``symbol``'s 24 h ticker, or ``None``. Judged by ``ticker_max_age``: ``!ticker@arr``
        sends only the tickers that changed, so a quiet symbol's entry ages legitimately."""
        tickers = self._cache.current().tickers
        return self._lookup(tickers, TICKER_24HR, symbol, self.ticker_max_age)

    def _lookup(
        self, quotes: Mapping[str, Q], query: RestQuery[Q], symbol: object, max_age: float
    ) -> Q | None:
        # The fast path: the caller's string is a key of the file (keys are valid symbols).
        quote = quotes.get(symbol) if type(symbol) is str else None
        if quote is None:
            name = normalize_symbol(symbol)
            if name is None:  # never looked up, never put into a URL
                self._counters.add("invalid_symbols", "unavailable")
                return None
            quote = quotes.get(name)
        else:
            name = quote.symbol
        if quote is not None and not is_stale(quote.event_time, now_ms(), max_age):
            self._counters.add("websocket")
            return quote
        return self._fall_back(query, name, max_age)

    def _fall_back(self, query: RestQuery[Q], name: str, max_age: float) -> Q | None:
        self._counters.fell_back(name)
        quote = None if self._rest is None else self._rest.lookup(query, name, max_age)
        self._counters.add("unavailable" if quote is None else "rest")
        return quote

    @property
    def stats(self) -> dict[str, int]:
        """The counters since construction, a copy (see ``botstats.COUNTERS``)."""
        return self._counters.snapshot()

    @property
    def mode(self) -> Mode:
        """``fallback`` (REST when the file cannot answer) or ``websocket-only``."""
        return "websocket-only" if self.rest_url is None else "fallback"

    def paused_for(self) -> float:
        """Seconds until REST may be asked again (0: now, or websocket-only)."""
        return 0.0 if self._rest is None else self._rest.paused_for()

    # -- reporting ----------------------------------------------------------------------

    def report(self) -> None:
        """Log the fallbacks since the last report (if any) and write the stats file now."""
        self._reporter.report()

    def close(self) -> None:
        """Stop the report thread and write the final counters. Lookups still work after."""
        self._reporter.stop()

    def __enter__(self) -> FundingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bot_stats(self) -> BotStats:
        """The counters as the stats file holds them."""
        totals = self._counters.snapshot()
        return BotStats(
            updated_at=now_ms(),
            started_at=self._started_at,
            mode=self.mode,
            max_age_s=self.max_age,
            top_rest_symbols=self._counters.top_symbols(),
            **{name: totals[name] for name in STATS_FILE_COUNTERS},
        )


class _Reporter:
    """The background thread: one INFO line per interval with fallbacks, and the stats file."""

    def __init__(self, source: FundingSource, counters: LookupCounters, interval: float) -> None:
        self._source = source
        self._counters = counters
        self._interval = interval
        self._writer = (
            None
            if source.stats_file is None
            else AtomicWriter(Path(source.stats_file), what="bot stats file")
        )
        self._failing = False
        self._reported = dict.fromkeys(COUNTERS, 0)
        self._reported_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="funding-source-report", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.report()

    def _run(self) -> None:
        if self._writer is not None:  # at once: the report can tell a running bot from none
            with self._lock:
                self._write(self._writer)
        while not self._stop.wait(self._interval):
            self.report()

    def report(self) -> None:
        with self._lock:
            totals, symbols = self._counters.take_window()
            now = time.monotonic()
            paused = self._source.paused_for()
            line = summary_line(self._reported, totals, symbols, now - self._reported_at, paused)
            self._reported, self._reported_at = totals, now
            if line is not None:
                log.info("funding source: %s", line)
            if self._writer is not None:
                self._write(self._writer)

    def _write(self, writer: AtomicWriter) -> None:
        try:
            writer.write(encode_bot_stats(self._source.bot_stats()))
        except OSError as exc:
            if not self._failing:  # once per outage, not once per interval
                log.warning("cannot write the stats file %s: %s", writer.path, one_line(exc))
            self._failing = True
            return
        if self._failing:
            log.info("stats file written again: %s", writer.path)
        self._failing = False


# -- constructor arguments: a bad one raises at once, naming itself ---------------------------


def _seconds(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not low <= value <= high:  # NaN fails too
        raise ValueError(f"{name} must be between {low:g} and {high:g} seconds, got {value!r}")
    return float(value)


def _path(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be a path (str or os.PathLike), not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a text path, not {type(path).__name__}")
    if not path or "\0" in path:
        raise ValueError(f"{name} must be a non-empty path without NUL bytes, got {path!r}")
    return path


def _stats_path(value: object, state_file: str) -> str:
    """The stats file's path: in an existing directory, and never the state file or its lock
    (the stats writer replaces its target)."""
    path = _path("stats_file", value)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"stats_file: directory {directory!r} does not exist")
    state = os.path.realpath(state_file)
    if _same_path(path, state) or _same_path(path, state + ".lock"):
        raise ValueError(f"stats_file must not be the state file or its lock, got {path!r}")
    return path


def _same_path(a: str, b: str) -> bool:
    """The same name once links and ``..`` are resolved, or the same existing file."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _rest_url(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"rest_url must be a URL string or None, not {type(value).__name__}")
    if not _is_base_url(value):
        raise ValueError(
            f"rest_url must be an http:// or https:// base URL (no query), got {value[:200]!r}"
        )
    return value.rstrip("/")


def _is_base_url(value: str) -> bool:
    if not value.isprintable() or " " in value:
        return False
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:  # a bad port or IPv6 literal
        return False
    scheme_and_host = parts.scheme in ("http", "https") and bool(parts.hostname)
    return scheme_and_host and port != 0 and not parts.query and not parts.fragment
