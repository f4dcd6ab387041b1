"""Sans-I/O core of funding-monitor: what a poll found, and what the screen and ``--once`` say
about it. No sockets, no files, no Textual: everything here is tested directly.

The state-file format, the stale rule and the summary are the daemon package's own
(:mod:`binance_funding_ws.state`, :mod:`binance_funding_ws.health`): one definition each. This
module only adds what the monitor knows beyond the file: the host, the service and whether the
data shown is the last good copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec

from binance_funding_ws.durations import format_age
from binance_funding_ws.health import EXIT_UNREADABLE, Summary, summarize, unreadable
from binance_funding_ws.state import StateDocument
from funding_monitor.history_view import HistoryOutcome

ErrorKind = Literal["unreachable", "host-key", "auth", "missing", "unreadable", "corrupt"]
# The host could not be asked at all: the verdict is UNREACHABLE rather than UNREADABLE.
HOST_ERRORS: frozenset[ErrorKind | None] = frozenset({"unreachable", "host-key", "auth", None})
# Exit 2 even with old data on screen: nothing current can be read. A corrupt file is only
# degraded while the last good copy is shown, since the daemon may be mid-repair.
NO_CURRENT_DATA: frozenset[ErrorKind | None] = frozenset(
    {"unreachable", "host-key", "auth", "missing", "unreadable"}
)
SortKey = Literal["symbol", "funding_rate", "mark_price", "next_funding", "age"]
SORT_KEYS: tuple[SortKey, ...] = ("symbol", "funding_rate", "mark_price", "next_funding", "age")


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
    history_enabled: bool = False  # the audit history is read (--history, or a host's default)
    history: HistoryOutcome | None = None  # its last read; kept while the host is unreachable

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
        if result.service is not None:  # a failed poll keeps the last known service state
            self.service = result.service
        if result.journal is not None:
            self.journal = result.journal
        if result.history is not None:
            self.history = result.history

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
    history: HistoryOutcome | None = None  # None: not read this poll


def host_summary(view: HostView, now_s: float, max_age: float) -> Summary:
    """The shared :class:`~binance_funding_ws.health.Summary` of one host as last polled.

    ``--once`` prints it, and the live screen's header and fleet rows are drawn from it, so
    the screen and the scripts never disagree. The monitor's own findings (old data shown, a
    service not active) come first among the problems.
    """
    service = None if view.service is None else view.service.describe()
    service_failed = view.service is not None and not view.service.healthy
    service_problems = [f"service {service}"] if service_failed else []
    verdict = "UNREACHABLE" if view.error_kind in HOST_ERRORS else "UNREADABLE"
    if view.document is None:
        summary = unreadable(view.name, view.error or "no data yet", max_age, verdict=verdict)
        summary.problems += service_problems
    else:
        old = [] if view.error is None else [f"showing old data: {view.error}"]
        summary = summarize(
            view.document, int(now_s * 1000), max_age, view.name, [*old, *service_problems]
        )
        if view.error_kind in NO_CURRENT_DATA:
            summary = msgspec.structs.replace(summary, verdict=verdict, exit_code=EXIT_UNREADABLE)
    summary.service = service
    return summary


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
