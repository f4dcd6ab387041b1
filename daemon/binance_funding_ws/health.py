"""Pure judgement of a state document: fresh or stale, healthy or not, and the one summary.

One set of rules for ``status``, ``compare``, the monitor, the deploy check and the reader
API:

* **Stale.** An entry is stale when its exchange event time is more than ``max_age`` seconds
  before ``now``, or more than a minute after it (:func:`is_stale`). A dead daemon's entries
  keep ageing, so the rule also catches a daemon that stopped. The threshold has one name
  everywhere: ``--max-age`` on every command line, ``funding_max_age`` in the Ansible role,
  ``max_age_s`` in JSON.
* **Healthy.** The feed is connected, market data arrived and the file was written within
  ``max_age``, the last write succeeded, and there is funding data. Stale symbols are reported
  but do not by themselves make the file unhealthy: a delisted symbol keeps its last values
  and an ageing event time, and that is information, not an outage.
* **Summary.** :class:`Summary` is the one shape of ``status --json`` and
  ``funding-monitor --once --json``; :func:`render_text` is its one text rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

from binance_funding_ws.clock import now_ms
from binance_funding_ws.durations import format_age, format_ago, format_clock
from binance_funding_ws.state import FundingEntry, StateDocument, TickerEntry
from binance_funding_ws.text import name_list, one_line

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNREADABLE = 0, 1, 2
VERDICTS = {EXIT_HEALTHY: "HEALTHY", EXIT_DEGRADED: "DEGRADED", EXIT_UNREADABLE: "UNREADABLE"}


class _Timestamped(Protocol):
    @property
    def event_time(self) -> int: ...


# A time further ahead of the reader's clock than this is not trusted: a forged or corrupt
# value would otherwise look fresh for ever. The daemon rejects rows this far ahead too.
MAX_CLOCK_SKEW_S = 60.0


def is_stale(event_time: int, now: int, max_age: float) -> bool:
    """The one stale rule: the event time (ms) is more than ``max_age`` seconds before ``now``,
    or more than :data:`MAX_CLOCK_SKEW_S` after it (a date in the future is no proof of life)."""
    age_ms = now - event_time
    return age_ms > max_age * 1000 or age_ms < -MAX_CLOCK_SKEW_S * 1000


def stale_entries(
    entries: Mapping[str, _Timestamped], now: int, max_age: float
) -> list[tuple[str, float]]:
    """``(symbol, age in seconds)`` of the stale entries, oldest first."""
    stale = [
        (symbol, (now - entry.event_time) / 1000)
        for symbol, entry in entries.items()
        if is_stale(entry.event_time, now, max_age)
    ]
    stale.sort(key=lambda item: (-item[1], item[0]))
    return stale


def forgotten(entries: Mapping[str, _Timestamped], now: int, forget_after: float) -> list[str]:
    """Symbols to drop: no update for more than ``forget_after`` seconds (``0``: never).

    Entries survive restarts (warm start), so without this rule a delisted contract would
    stay in the file for ever. A week by default: far beyond any outage worth bridging.
    """
    if forget_after <= 0:
        return []
    limit = now - forget_after * 1000
    return [symbol for symbol, entry in entries.items() if entry.event_time < limit]


def fresh_funding(
    document: StateDocument, symbol: str, max_age: float, now: int | None = None
) -> FundingEntry | None:
    """``symbol``'s funding entry unless it is absent or stale.

    ``None`` means "do not trust the file for this symbol", so a consumer can fall back to
    REST. A daemon that died leaves every entry ageing, so this also guards against a dead
    feed.
    """
    entry = document.funding.get(symbol)
    if entry is None or is_stale(entry.event_time, now_ms() if now is None else now, max_age):
        return None
    return entry


def fresh_ticker(
    document: StateDocument, symbol: str, max_age: float, now: int | None = None
) -> TickerEntry | None:
    """Like :func:`fresh_funding`, for the ticker map.

    Tickers arrive only when they change, so a quiet symbol's ticker ages legitimately: pick
    ``max_age`` with that in mind.
    """
    entry = document.tickers.get(symbol)
    if entry is None or is_stale(entry.event_time, now_ms() if now is None else now, max_age):
        return None
    return entry


def _restored_note(document: StateDocument, now: int) -> str:
    """What a warm-started daemon serves until the exchange answers: the data's real age."""
    status = document.connection_status
    if status.restored_at is None or not document.funding:
        return ""
    newest = max(entry.event_time for entry in document.funding.values())
    return (
        f"; serving {status.restored_funding} funding entries restored from the previous "
        f"file, the newest {format_age((now - newest) / 1000)} old"
    )


@dataclass(frozen=True)
class Health:
    """What a reader should know about one state document at one instant."""

    healthy: bool
    problems: list[str]
    state: str
    message_age: float | None  # seconds since the last market frame, None if never
    write_age: float  # seconds since the daemon wrote the file


def assess(document: StateDocument, now: int, max_age: float) -> Health:
    """Judge ``document`` at ``now`` (epoch ms) with ``max_age`` seconds of tolerance."""
    status = document.connection_status
    problems: list[str] = []
    if status.state != "connected":
        since = (now - status.state_since) / 1000
        problems.append(f"feed is {status.state} (for {format_age(since)})")
    message_age = None if status.last_message_at is None else (now - status.last_message_at) / 1000
    if message_age is None:
        problems.append("no market data received yet" + _restored_note(document, now))
    elif message_age > max_age:
        problems.append(f"no market data for {format_age(message_age)}")
    elif message_age < -MAX_CLOCK_SKEW_S:
        problems.append(f"last market data dated {format_age(-message_age)} in the future")
    write_age = (now - document.updated_at) / 1000
    if write_age > max_age:
        problems.append(
            f"state file not written for {format_age(write_age)} (daemon stopped or stuck?)"
        )
    elif write_age < -MAX_CLOCK_SKEW_S:
        problems.append(
            f"state file dated {format_age(-write_age)} in the future (clock skew or a forged file)"
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
    )


class Counters(msgspec.Struct, kw_only=True):
    """The daemon's counters, as ``connection_status`` holds them."""

    messages: int
    reconnects: int
    stalls: int
    rotations: int
    errors: int
    write_errors: int


class Summary(msgspec.Struct, kw_only=True):
    """The one summary of a state file: ``status --json`` and ``funding-monitor --once --json``.

    Every key is always present; facts that need a readable document are ``null`` (or empty)
    when there is none, and ``error`` then says why. ``service`` is the systemd unit's state
    where the reader knows it (the monitor over SSH), else ``null``.
    """

    source: str  # the state file's path, or the host it was read from
    verdict: str  # HEALTHY, DEGRADED, UNREADABLE (the file) or UNREACHABLE (the host)
    healthy: bool
    exit_code: int  # 0 healthy, 1 degraded, 2 unreadable or unreachable
    problems: list[str]
    error: str | None = None
    max_age_s: float
    service: str | None = None
    state: str | None = None
    state_since: int | None = None
    pid: int | None = None
    url: str | None = None
    last_message_age_s: float | None = None
    last_write_age_s: float | None = None
    funding_symbols: int = 0
    ticker_symbols: int = 0
    no_ticker: list[str] = msgspec.field(default_factory=list)
    no_funding: list[str] = msgspec.field(default_factory=list)
    stale_funding: dict[str, float] = msgspec.field(default_factory=dict)  # oldest first
    stale_tickers: dict[str, float] = msgspec.field(default_factory=dict)
    counters: Counters | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    hint: str | None = None


def summarize(
    document: StateDocument,
    now: int,
    max_age: float,
    source: str,
    extra_problems: Sequence[str] = (),
) -> Summary:
    """The summary of a readable document; ``extra_problems`` (the reader's own) degrade it."""
    health = assess(document, now, max_age)
    status = document.connection_status
    problems = [*extra_problems, *health.problems]
    code = EXIT_DEGRADED if problems else EXIT_HEALTHY
    since = status.connected_since if status.state == "connected" else status.state_since
    return Summary(
        source=source,
        verdict=VERDICTS[code],
        healthy=not problems,
        exit_code=code,
        problems=problems,
        max_age_s=max_age,
        state=status.state,
        state_since=since,
        pid=status.pid,
        url=status.url,
        last_message_age_s=_rounded(health.message_age),
        last_write_age_s=_rounded(health.write_age),
        funding_symbols=len(document.funding),
        ticker_symbols=len(document.tickers),
        no_ticker=list(document.missing.no_ticker),
        no_funding=list(document.missing.no_funding),
        stale_funding=dict(stale_entries(document.funding, now, max_age)),
        stale_tickers=dict(stale_entries(document.tickers, now, max_age)),
        counters=Counters(
            messages=status.messages,
            reconnects=status.reconnects,
            stalls=status.stalls,
            rotations=status.rotations,
            errors=status.errors,
            write_errors=status.write_errors,
        ),
        last_error=status.last_error,
        last_error_at=status.last_error_at,
        hint=status.hint,
    )


def unreadable(source: str, error: str, max_age: float, verdict: str = "UNREADABLE") -> Summary:
    """The summary when there is no document to judge (exit code 2)."""
    return Summary(
        source=source,
        verdict=verdict,
        healthy=False,
        exit_code=EXIT_UNREADABLE,
        problems=[error],
        error=error,
        max_age_s=max_age,
    )


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _when(epoch_ms: int | None) -> str:
    return format_clock(epoch_ms, missing="never")


def freshness(summary: Summary) -> str:
    """How old the market data and the file are: ``3.1 s ago; file written 0.4 s ago``."""
    data, written = summary.last_message_age_s, summary.last_write_age_s
    return f"{format_ago(data)}; file written {format_ago(written)}"


def render_text(summary: Summary, title: str, now: int | None = None) -> str:
    """The one text rendering of a summary (``status``, ``funding-monitor --once``).

    Every value that came from the file or a host is folded onto one printable line first:
    a symbol or an error message can never move the cursor or retitle the terminal.
    """
    s = summary
    lines = [f"{title}: {s.verdict}  ({one_line(s.source)})"]
    lines += [f"  problem     {one_line(problem)}" for problem in s.problems]
    if s.service is not None:
        lines.append(f"  service     {one_line(s.service)}")
    if s.state is None or s.counters is None:
        return "\n".join(lines) + "\n"
    since_age = format_age(((now_ms() if now is None else now) - (s.state_since or 0)) / 1000)
    c = s.counters
    lines += [
        f"  feed        {s.state} since {_when(s.state_since)} ({since_age}), pid {s.pid}",
        f"  url         {one_line(s.url)}",
        f"  last data   {freshness(s)}",
        f"  symbols     funding {s.funding_symbols}, tickers {s.ticker_symbols}",
        f"  no ticker   {one_line(name_list(s.no_ticker))}",
        f"  no funding  {one_line(name_list(s.no_funding))}",
        f"  counters    messages {c.messages}, reconnects {c.reconnects}, stalls {c.stalls}, "
        f"rotations {c.rotations}, errors {c.errors}, write errors {c.write_errors}",
    ]
    if s.last_error:
        lines.append(f"  last error  {one_line(s.last_error)} ({_when(s.last_error_at)})")
    if s.hint:
        lines.append(f"  hint        {one_line(s.hint)}")
    for kind, stale in (("funding", s.stale_funding), ("ticker", s.stale_tickers)):
        names = one_line(
            name_list([f"{symbol} ({format_age(age)})" for symbol, age in stale.items()])
        )
        label = "  stale      " if kind == "funding" else "             "
        lines.append(f"{label} {kind} entries older than {s.max_age_s:g} s: {names}")
    return "\n".join(lines) + "\n"
