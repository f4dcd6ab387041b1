"""Sans-I/O core of funding-monitor: what a poll found, and what the screen and ``--once`` say
about it. No sockets, no files, no Textual: everything here is tested directly.

The state-file format and the health rules are the daemon package's own
(:mod:`binance_funding_ws.state`, :mod:`binance_funding_ws.health`): one definition each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from binance_funding_ws.health import Health, assess
from binance_funding_ws.state import StateDocument
from binance_funding_ws.text import format_age

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 2

ErrorKind = Literal["unreachable", "host-key", "auth", "missing", "unreadable", "corrupt"]
SortKey = Literal["symbol", "funding_rate", "mark_price", "next_funding", "age"]
SORT_KEYS: tuple[SortKey, ...] = ("symbol", "funding_rate", "mark_price", "next_funding", "age")
STATE_STYLES = {
    "connected": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "stalled": "red",
    "stopped": "red",
}


@dataclass(frozen=True)
class ServiceState:
    """``systemctl show`` of the daemon's unit."""

    active: str  # ActiveState: active, inactive, failed, activating...
    sub: str = ""
    since: str = ""  # ActiveEnterTimestamp, as systemd prints it
    restarts: int | None = None
    load: str = "loaded"

    @property
    def healthy(self) -> bool:
        return self.active == "active"

    def describe(self) -> str:
        if self.load == "not-found":
            return "not installed"
        text = f"{self.active} ({self.sub})" if self.sub else self.active
        if self.since:
            text += f" since {self.since}"
        if self.restarts:
            text += f", {self.restarts} restarts"
        return text


def parse_systemctl_show(text: str) -> ServiceState:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    restarts = values.get("NRestarts", "")
    return ServiceState(
        active=values.get("ActiveState", "unknown"),
        sub=values.get("SubState", ""),
        since=values.get("ActiveEnterTimestamp", ""),
        restarts=int(restarts) if restarts.isdigit() else None,
        load=values.get("LoadState", "loaded"),
    )


@dataclass
class HostView:
    """Everything known about one host, kept across polls (the UI's and ``--once``'s model).

    A failed poll never erases the last good document: it stays, marked old.
    """

    name: str
    document: StateDocument | None = None
    document_at: float | None = None  # when the document shown was read (epoch s)
    error: str | None = None
    error_kind: ErrorKind | None = None
    connected: bool = False
    disconnected_since: float | None = None
    service: ServiceState | None = None
    polls: int = 0
    journal: list[str] = field(default_factory=list)

    def apply(self, result: PollResult) -> None:
        """Fold one poll's result in."""
        self.polls += 1
        if result.connected:
            self.connected, self.disconnected_since = True, None
        else:
            if self.connected or self.disconnected_since is None:
                self.disconnected_since = result.at
            self.connected = False
        if result.document is not None:
            self.document, self.document_at = result.document, result.at
        self.error, self.error_kind = result.error, result.error_kind
        if result.service is not None or not result.connected:
            self.service = result.service if result.connected else self.service
        if result.journal is not None:
            self.journal = result.journal

    @property
    def showing_old_data(self) -> bool:
        return self.document is not None and self.error is not None


@dataclass(frozen=True)
class PollResult:
    """What one poll of one host returned (posted from the I/O worker to the UI)."""

    at: float
    connected: bool
    document: StateDocument | None = None  # None: unchanged since the last poll, or failed
    error: str | None = None
    error_kind: ErrorKind | None = None
    service: ServiceState | None = None
    journal: list[str] | None = None


@dataclass(frozen=True)
class Verdict:
    """The one-glance judgement of a host."""

    code: int
    problems: list[str]
    health: Health | None

    @property
    def label(self) -> str:
        return {EXIT_HEALTHY: "HEALTHY", EXIT_DEGRADED: "DEGRADED"}.get(self.code, "UNREACHABLE")


def judge(view: HostView, now: float, max_age: float) -> Verdict:
    """0 healthy, 1 degraded, 2 unreachable or unreadable (``--once`` exit codes)."""
    if view.document is None:
        return Verdict(EXIT_UNREACHABLE, [view.error or "no data yet"], None)
    health = assess(view.document, int(now * 1000), max_age)
    problems = list(health.problems)
    if view.error is not None:
        problems.insert(0, f"showing old data: {view.error}")
    if view.service is not None and not view.service.healthy:
        problems.append(f"service {view.service.describe()}")
    if view.error_kind in ("unreachable", "host-key", "auth", "missing", "unreadable"):
        return Verdict(EXIT_UNREACHABLE, problems, health)
    return Verdict(EXIT_HEALTHY if not problems else EXIT_DEGRADED, problems, health)


# -- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FundingRow:
    symbol: str
    funding_rate: str
    mark_price: str
    next_funding_time: int
    event_time: int

    def age(self, now_ms: int) -> float:
        return (now_ms - self.event_time) / 1000

    def next_funding_in(self, now_ms: int) -> float | None:
        return None if not self.next_funding_time else (self.next_funding_time - now_ms) / 1000


def funding_rows(document: StateDocument) -> list[FundingRow]:
    return [
        FundingRow(symbol, e.funding_rate, e.mark_price, e.next_funding_time, e.event_time)
        for symbol, e in document.funding.items()
    ]


def select_rows(
    rows: list[FundingRow], text: str, key: SortKey, reverse: bool, now_ms: int
) -> list[FundingRow]:
    """Filter by a case-insensitive substring of the symbol, then sort."""
    needle = text.strip().upper()
    chosen = [row for row in rows if needle in row.symbol] if needle else list(rows)
    sorters = {
        "symbol": lambda r: r.symbol,
        "funding_rate": lambda r: _decimal(r.funding_rate),
        "mark_price": lambda r: _decimal(r.mark_price),
        "next_funding": lambda r: r.next_funding_time or float("inf"),
        "age": lambda r: r.age(now_ms),
    }
    return sorted(chosen, key=sorters[key], reverse=reverse)


def stale_entries(document: StateDocument, now_ms: int, stale_after: float) -> list[FundingRow]:
    """Funding entries whose event time is older than ``stale_after`` seconds, oldest first."""
    limit = now_ms - stale_after * 1000
    old = [
        FundingRow(symbol, e.funding_rate, e.mark_price, e.next_funding_time, e.event_time)
        for symbol, e in document.funding.items()
        if e.event_time < limit
    ]
    return sorted(old, key=lambda r: r.event_time)


def stale_count(document: StateDocument, now_ms: int, stale_after: float) -> int:
    """How many funding entries are stale (the header shows it every second: kept cheap)."""
    limit = now_ms - stale_after * 1000
    return sum(1 for entry in document.funding.values() if entry.event_time < limit)


def stale_ticker_symbols(document: StateDocument, now_ms: int, stale_after: float) -> list[str]:
    limit = now_ms - stale_after * 1000
    return sorted(s for s, e in document.tickers.items() if e.event_time < limit)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


def format_in(seconds: float | None) -> str:
    """Time until next funding: ``7h 12m``, ``3m 05s``, ``none``."""
    if seconds is None:
        return "none"
    if seconds < 0:
        return "due"
    return format_age(seconds)


def format_rate(rate: str) -> str:
    """A funding rate as the percentage traders read: ``0.00010000`` -> ``0.0100 %``."""
    try:
        return f"{Decimal(rate) * 100:.4f} %"
    except InvalidOperation:
        return rate


# -- the plain-text and JSON summaries (--once) -------------------------------------------


def summary(view: HostView, now: float, max_age: float, stale_after: float) -> dict[str, Any]:
    verdict = judge(view, now, max_age)
    doc = view.document
    out: dict[str, Any] = {
        "host": view.name,
        "healthy": verdict.code == EXIT_HEALTHY,
        "exit_code": verdict.code,
        "verdict": verdict.label,
        "problems": verdict.problems,
        "error": view.error,
        "service": None if view.service is None else view.service.describe(),
    }
    if doc is not None:
        now_ms = int(now * 1000)
        status = doc.connection_status
        stale = stale_entries(doc, now_ms, stale_after)
        out |= {
            "state": status.state,
            "last_message_age_s": _age(status.last_message_at, now_ms),
            "last_write_age_s": _age(doc.updated_at, now_ms),
            "reconnects": status.reconnects,
            "errors": status.errors,
            "last_error": status.last_error,
            "funding_symbols": len(doc.funding),
            "ticker_symbols": len(doc.tickers),
            "no_ticker": doc.missing.no_ticker,
            "no_funding": doc.missing.no_funding,
            "stale_after_s": stale_after,
            "stale_funding": {row.symbol: round(row.age(now_ms), 1) for row in stale},
            "stale_tickers": stale_ticker_symbols(doc, now_ms, stale_after),
        }
    return out


def _age(epoch_ms: int | None, now_ms: int) -> float | None:
    return None if epoch_ms is None else round((now_ms - epoch_ms) / 1000, 3)


def render_summary(facts: dict[str, Any]) -> str:
    lines = [f"{facts['host']}: {facts['verdict']}"]
    lines += [f"  problem     {problem}" for problem in facts["problems"]]
    if facts.get("service"):
        lines.append(f"  service     {facts['service']}")
    if "state" in facts:

        def age(value: float | None) -> str:
            return "never" if value is None else f"{format_age(value)} ago"

        lines += [
            f"  feed        {facts['state']}, last message {age(facts['last_message_age_s'])}, "
            f"file written {age(facts['last_write_age_s'])}",
            f"  symbols     funding {facts['funding_symbols']}, tickers {facts['ticker_symbols']}"
            f", no ticker {len(facts['no_ticker'])}, no funding {len(facts['no_funding'])}",
            f"  counters    reconnects {facts['reconnects']}, errors {facts['errors']}",
        ]
        if facts["last_error"]:
            lines.append(f"  last error  {facts['last_error']}")
        stale = facts["stale_funding"]
        names = ", ".join(f"{s} ({format_age(a)})" for s, a in list(stale.items())[:10])
        more = f" (+{len(stale) - 10} more)" if len(stale) > 10 else ""
        lines.append(
            f"  stale       {len(stale)} funding entries older than "
            f"{facts['stale_after_s']:g} s{': ' + names + more if stale else ''}"
        )
    return "\n".join(lines) + "\n"


def now() -> float:
    return time.time()
