"""Sans-I/O core of ``binance-funding-ws compare``: the state file's funding data against the
REST API's premium index, symbol by symbol, and the verdict.

Values are compared as :class:`~decimal.Decimal` (``"0.00010000"`` equals ``"0.0001"``), never
through ``float``. Funding rate and next funding time must be identical; the mark price moves
continuously, so it is judged by its relative difference against a tolerance.

A round is two passes at most (:func:`first_pass`, then :func:`settle` for the suspects, all
in one batch): the first all-symbol answer, and for the symbols that differ while their two
readings come from different instants, a second all-symbol answer taken once the file has
moved past the first. A file entry that never moves past the first answer is *stale*: the
daemon stalled or stopped, and its value is not compared at all — stale is not a mismatch.

Coverage (:func:`missing_from_file`): every ``TRADING`` perpetual that REST
``exchangeInfo`` lists should be in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from binance_funding_ws.durations import format_age
from binance_funding_ws.health import Health
from binance_funding_ws.rest import WEIGHT_BUDGET_PER_MINUTE as WEIGHT_BUDGET_PER_MINUTE
from binance_funding_ws.rest import ExchangeSymbol, PremiumIndex
from binance_funding_ws.state import FundingEntry, StateDocument
from binance_funding_ws.text import name_list, strip_control

# Contract types that stream a mark price with a funding rate (dated futures have none).
PERPETUALS = ("PERPETUAL", "TRADIFI_PERPETUAL")


def missing_from_file(listed: list[ExchangeSymbol], document: StateDocument) -> list[str]:
    """The ``TRADING`` perpetuals REST lists that the state file has no funding entry for."""
    tradable = {s.symbol for s in listed if s.status == "TRADING" and s.contractType in PERPETUALS}
    return sorted(tradable - document.funding.keys())


def coverage_unknowable(document: StateDocument, now: int, settle_s: float) -> str | None:
    """Why the file cannot show its coverage right now, or ``None`` when it can.

    Only a feed connected for ``settle_s`` seconds has had every mark-price frame of a tick:
    a daemon that just (re)started may have written the first of them only, and an outage is
    the availability rule's business, not a coverage gap.
    """
    status = document.connection_status
    since = status.connected_since
    if status.state != "connected" or since is None:
        return f"skipped: the feed is {status.state}"
    if now - since < settle_s * 1000:
        return f"skipped: the feed has been connected for {format_age((now - since) / 1000)} only"
    return None


@dataclass(frozen=True)
class SymbolComparison:
    """One symbol, as the state file and the REST API saw it."""

    symbol: str
    ws_funding_rate: str
    rest_funding_rate: str
    ws_mark_price: str
    rest_mark_price: str
    ws_next_funding_time: int
    rest_next_funding_time: int
    ws_event_time: int
    rest_time: int
    mark_diff_pct: float
    tolerance_pct: float
    rechecked: bool = False
    # Set by a re-check from two REST answers around the file's instant (see bracket()).
    bracketed_funding_match: bool | None = None
    bracketed_next_funding_match: bool | None = None
    moving: bool = False  # the values moved between the two answers and match neither

    @property
    def funding_match(self) -> bool:
        if self.bracketed_funding_match is not None:
            return self.bracketed_funding_match
        return _same(self.ws_funding_rate, self.rest_funding_rate)

    @property
    def mark_match(self) -> bool:
        return self.mark_diff_pct <= self.tolerance_pct

    @property
    def next_funding_match(self) -> bool:
        if self.bracketed_next_funding_match is not None:
            return self.bracketed_next_funding_match
        return self.ws_next_funding_time == self.rest_next_funding_time

    @property
    def ok(self) -> bool:
        return self.moving or (self.funding_match and self.mark_match and self.next_funding_match)

    @property
    def verified(self) -> bool:
        return self.ok and not self.moving

    @property
    def time_offset_ms(self) -> int:
        """REST time minus WebSocket event time: how far apart the two readings are."""
        return self.rest_time - self.ws_event_time

    @property
    def explainable_by_timing(self) -> bool:
        """The two readings come from different instants, so an update may explain a gap."""
        return not self.ok and self.time_offset_ms != 0

    def problems(self) -> list[str]:
        found = []
        if not self.funding_match:
            found.append(f"funding rate {self.ws_funding_rate} vs {self.rest_funding_rate}")
        if not self.mark_match:
            found.append(
                f"mark price {self.ws_mark_price} vs {self.rest_mark_price} "
                f"({self.mark_diff_pct:.4f} % > {self.tolerance_pct:g} %)"
            )
        if not self.next_funding_match:
            found.append(
                f"next funding {self.ws_next_funding_time} vs {self.rest_next_funding_time}"
            )
        return found


def compare_symbol(
    entry: FundingEntry, rest: PremiumIndex, tolerance_pct: float, rechecked: bool = False
) -> SymbolComparison:
    return SymbolComparison(
        symbol=rest.symbol,
        ws_funding_rate=entry.funding_rate,
        rest_funding_rate=rest.lastFundingRate,
        ws_mark_price=entry.mark_price,
        rest_mark_price=rest.markPrice,
        ws_next_funding_time=entry.next_funding_time,
        rest_next_funding_time=rest.nextFundingTime,
        ws_event_time=entry.event_time,
        rest_time=rest.time,
        mark_diff_pct=relative_diff_pct(entry.mark_price, rest.markPrice),
        tolerance_pct=tolerance_pct,
        rechecked=rechecked,
    )


def bracket(
    entry: FundingEntry, before: PremiumIndex, after: PremiumIndex, tolerance_pct: float
) -> SymbolComparison:
    """Judge ``entry`` against the exchange's values just before and just after its instant.

    The entry agrees when each value equals either answer (mark price: is within the
    tolerance of either). A value that agrees with neither is a certain mismatch only if the
    exchange held it steady between the two answers (the mark price: the answers within the
    tolerance of each other); if it moved, the entry may hold a value from in between, and
    the symbol is ``moving`` (not verified, not a mismatch).
    """
    first = compare_symbol(entry, before, tolerance_pct, rechecked=True)
    second = compare_symbol(entry, after, tolerance_pct, rechecked=True)
    nearer = first if abs(first.time_offset_ms) <= abs(second.time_offset_ms) else second
    funding = first.funding_match or second.funding_match
    next_funding = first.next_funding_match or second.next_funding_match
    mark_diff = min(first.mark_diff_pct, second.mark_diff_pct)
    # (disagrees with both answers, the exchange's value moved between them) per value
    verdicts = [
        (not funding, not _same(before.lastFundingRate, after.lastFundingRate)),
        (not next_funding, before.nextFundingTime != after.nextFundingTime),
        (
            mark_diff > tolerance_pct,
            relative_diff_pct(before.markPrice, after.markPrice) > tolerance_pct,
        ),
    ]
    certain = any(differs and not moved for differs, moved in verdicts)
    unsure = any(differs for differs, _ in verdicts) and not certain
    return replace(
        nearer,
        mark_diff_pct=mark_diff,
        bracketed_funding_match=funding,
        bracketed_next_funding_match=next_funding,
        moving=unsure and entry.event_time != nearer.rest_time,
    )


def relative_diff_pct(ws: str, rest: str) -> float:
    """``|ws - rest| / |rest|`` in percent; infinite when either is not a number."""
    try:
        a, b = Decimal(ws), Decimal(rest)
        if b == 0:
            return 0.0 if a == 0 else float("inf")
        return float(abs(a - b) / abs(b) * 100)
    except ArithmeticError:  # not a number, or one too large to subtract (1e999999999)
        return float("inf")


def _same(a: str, b: str) -> bool:
    try:
        return Decimal(a) == Decimal(b)
    except ArithmeticError:
        return a == b


@dataclass
class Report:
    """Everything ``compare`` found, and its verdict."""

    state_file: str
    rest_url: str
    tolerance_pct: float
    requested: str  # "all" or the comma-separated list asked for
    health: Health
    compared: list[SymbolComparison] = field(default_factory=list)
    only_in_state: list[str] = field(default_factory=list)
    only_in_rest: list[str] = field(default_factory=list)
    in_neither: list[str] = field(default_factory=list)  # asked for, known to no source
    # Not compared: the file's entry is older than the REST answer and did not catch up.
    stale: list[str] = field(default_factory=list)
    rest_weight: int | None = None
    stale_wait_s: float = 0.0  # how long the file was given to catch up

    def suspects(self) -> dict[str, int]:
        """``{symbol: REST time}`` of the symbols a later reading may explain."""
        return {c.symbol: c.rest_time for c in self.compared if c.explainable_by_timing}

    @property
    def mismatched(self) -> list[SymbolComparison]:
        return [c for c in self.compared if not c.ok]

    @property
    def moving(self) -> list[SymbolComparison]:
        return [c for c in self.compared if c.moving]

    @property
    def missing_requested(self) -> list[str]:
        """Symbols asked for by name that one source lacks (or holds only stale): they
        cannot be relied on."""
        if self.requested == "all":
            return []
        return sorted({*self.only_in_state, *self.only_in_rest, *self.in_neither, *self.stale})

    @property
    def exit_code(self) -> int:
        failed = self.mismatched or self.missing_requested or not self.compared
        return 1 if failed else 0

    def summary(self) -> dict[str, Any]:
        compared = self.compared
        diffs = [c.mark_diff_pct for c in compared]
        offsets = [abs(c.time_offset_ms) for c in compared]
        return {
            "compared": len(compared),
            "funding_matches": sum(c.funding_match for c in compared),
            "mark_matches": sum(c.mark_match for c in compared),
            "next_funding_matches": sum(c.next_funding_match for c in compared),
            "mark_diff_pct_avg": sum(diffs) / len(diffs) if diffs else None,
            "mark_diff_pct_max": max(diffs, default=None),
            "time_offset_ms_avg": sum(offsets) / len(offsets) if offsets else None,
            "time_offset_ms_max": max(offsets, default=None),
            "rechecked": sum(c.rechecked for c in compared),
            "moving": sum(c.moving for c in compared),
            "stale": len(self.stale),
        }

    def _stale_note(self) -> str:
        return (
            f"{len(self.stale)} symbol(s) not compared, their entries older than the REST "
            f"answer and not updated within {self.stale_wait_s:g} s (is the daemon stalled or "
            f"stopped?): {name_list(self.stale)}"
        )

    def recommendation(self) -> str:
        s = self.summary()
        n = s["compared"]
        if not n and self.stale:
            return f"NOT SAFE: no symbol could be compared: {self._stale_note()}"
        if not n:
            return "NOT SAFE: no symbol could be compared (no symbol is in both sources)"
        if self.mismatched or self.missing_requested:
            bad = [f"{c.symbol} ({', '.join(_kinds(c))})" for c in self.mismatched]
            bad += [f"{symbol} (missing from a source)" for symbol in self.missing_requested]
            return f"NOT SAFE to rely on WebSocket data: {len(bad)} symbol(s) differ: " + name_list(
                bad
            )
        if not self.health.healthy:
            problems = "; ".join(self.health.problems)
            return f"NOT SAFE: the values match, but the state file is degraded ({problems})"
        if self.stale:
            return f"NO MISMATCH, but {self._stale_note()}: run compare again"
        if self.moving:
            names = name_list([c.symbol for c in self.moving])
            return (
                f"NO MISMATCH, but {len(self.moving)} symbol(s) moved during the re-check and "
                f"could not be verified ({names}): run compare again"
            )
        return (
            f"SAFE to rely on WebSocket data: funding {n}/{n} identical, mark price within "
            f"{self.tolerance_pct:g} % (max {s['mark_diff_pct_max']:.4f} %), next funding {n}/{n}"
        )


def _kinds(c: SymbolComparison) -> list[str]:
    kinds = []
    if not c.funding_match:
        kinds.append("funding rate")
    if not c.mark_match:
        kinds.append(f"mark price {c.mark_diff_pct:.4f} %")
    if not c.next_funding_match:
        kinds.append("next funding time")
    return kinds


def render_text(report: Report) -> str:
    s = report.summary()
    n = s["compared"]
    lines = [
        f"binance-funding-ws compare: {report.state_file} vs {report.rest_url}",
        f"  state file  {report.health.state}, written {format_age(report.health.write_age)} ago",
        f"  symbols     {report.requested if report.requested == 'all' else 'requested'}: "
        f"{n} compared, {len(report.only_in_state)} only in the state file, "
        f"{len(report.only_in_rest)} only in REST",
    ]
    if n:
        lines += [
            f"  funding     {s['funding_matches']}/{n} identical",
            f"  mark price  {s['mark_matches']}/{n} within {report.tolerance_pct:g} % "
            f"(avg {s['mark_diff_pct_avg']:.4f} %, max {s['mark_diff_pct_max']:.4f} %)",
            f"  next fund.  {s['next_funding_matches']}/{n} identical",
            f"  time offset REST - WebSocket: avg {s['time_offset_ms_avg']:.0f} ms, "
            f"max {s['time_offset_ms_max']} ms; re-checked {s['rechecked']}",
        ]
    if report.only_in_state:
        lines.append(f"  only in state file  {name_list(report.only_in_state)}")
    if report.only_in_rest:
        lines.append(f"  only in REST        {name_list(report.only_in_rest)}")
    if report.in_neither:
        lines.append(f"  in neither          {name_list(report.in_neither)}")
    if report.stale:
        lines.append(f"  stale, not compared {name_list(report.stale)}")
    for c in report.mismatched:
        lines.append(f"  MISMATCH {c.symbol}: {'; '.join(c.problems())}")
    for c in report.moving:
        lines.append(f"  moving   {c.symbol}: changed between the re-check's two REST answers")
    lines.append(f"  verdict     {report.recommendation()}")
    # Symbols and values come from the file and the REST API: one printable line each.
    return "".join(strip_control(line) + "\n" for line in lines)


def as_json(report: Report) -> dict[str, Any]:
    return {
        "state_file": report.state_file,
        "rest_url": report.rest_url,
        "tolerance_pct": report.tolerance_pct,
        "exit_code": report.exit_code,
        "recommendation": report.recommendation(),
        "state": report.health.state,
        "state_file_healthy": report.health.healthy,
        "summary": report.summary(),
        "only_in_state": report.only_in_state,
        "only_in_rest": report.only_in_rest,
        "in_neither": report.in_neither,
        "stale": report.stale,
        "mismatched": [c.symbol for c in report.mismatched],
        "rest_used_weight": report.rest_weight,
        "symbols": [
            {
                "symbol": c.symbol,
                "ok": c.ok,
                "funding_rate": {"ws": c.ws_funding_rate, "rest": c.rest_funding_rate},
                "funding_match": c.funding_match,
                "mark_price": {"ws": c.ws_mark_price, "rest": c.rest_mark_price},
                "mark_diff_pct": c.mark_diff_pct,
                "mark_match": c.mark_match,
                "next_funding_time": {
                    "ws": c.ws_next_funding_time,
                    "rest": c.rest_next_funding_time,
                },
                "next_funding_match": c.next_funding_match,
                "time_offset_ms": c.time_offset_ms,
                "rechecked": c.rechecked,
                "moving": c.moving,
            }
            for c in report.compared
        ],
    }


def first_pass(
    report: Report,
    document: StateDocument,
    rest: dict[str, PremiumIndex],
    symbols: list[str] | None,
) -> Report:
    """Compare every wanted symbol once (``symbols``: ``None`` for all), filling ``report``."""
    for symbol in _wanted(symbols, document, rest):
        entry, row = document.funding.get(symbol), rest.get(symbol)
        if entry is not None and row is not None:
            report.compared.append(compare_symbol(entry, row, report.tolerance_pct))
        elif entry is not None:
            report.only_in_state.append(symbol)
        elif row is not None:
            report.only_in_rest.append(symbol)
        else:
            report.in_neither.append(symbol)
    return report


def _wanted(
    symbols: list[str] | None, document: StateDocument, rest: dict[str, PremiumIndex]
) -> list[str]:
    if symbols is None:
        return sorted({*document.funding, *rest})
    return list(dict.fromkeys(symbols))  # keep the order asked for, drop repeats


def caught_up(document: StateDocument, targets: dict[str, int]) -> bool:
    """Whether every target symbol's entry is at least as new as its REST time (or gone)."""
    entries = document.funding
    return all(
        symbol not in entries or entries[symbol].event_time >= rest_time
        for symbol, rest_time in targets.items()
    )


def settle(
    report: Report,
    later: StateDocument,
    before: dict[str, PremiumIndex],
    after: dict[str, PremiumIndex],
) -> Report:
    """Re-check every suspect at once, from readings that bracket the file's update.

    ``before`` is the first REST answer, ``later`` the file once it moved past it, ``after``
    a second REST answer: the exchange's value at the entry's own instant lies between the
    two answers (see :func:`bracket`). A suspect whose entry never became at least as new as
    ``before`` (or is gone from either source) is *stale*: not compared, never a mismatch.
    """
    kept: list[SymbolComparison] = []
    for c in report.compared:
        if not c.explainable_by_timing:
            kept.append(c)
            continue
        entry, first, second = later.funding.get(c.symbol), before[c.symbol], after.get(c.symbol)
        if entry is None or second is None or entry.event_time < first.time:
            report.stale.append(c.symbol)
        else:
            kept.append(bracket(entry, first, second, report.tolerance_pct))
    report.compared = kept
    return report
