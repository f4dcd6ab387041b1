"""Pure: the audit history — what ``binance-funding-ws audit`` records and ``report`` reads.

The history is JSON Lines: one :class:`Sample` object a line, appended (and fsynced) once an
interval. A sample is the state file as a reader saw it at one instant, judged by the
``status`` rules (:func:`~binance_funding_ws.health.summarize`); every ``--compare-every`` a
sample also carries a :class:`CompareRound` (the file against REST ``premiumIndex``, and its
coverage against ``exchangeInfo``).

Readers are tolerant (:func:`parse_lines`): a torn last line (the writer died mid-append) is
skipped silently, any other line that is not a sample is skipped and counted, and keys a
reader does not know are ignored, so new optional fields never break an old report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from binance_funding_ws.comparison import Report
from binance_funding_ws.health import Counters, summarize, unreadable
from binance_funding_ws.state import EpochMs, StateDocument, StateFileError

HISTORY_VERSION = 1


class CompareRound(msgspec.Struct, kw_only=True):
    """One compare round: the file against REST ``premiumIndex`` (all symbols, two calls at
    most) and ``exchangeInfo`` (coverage). ``error`` is set when the round could not run."""

    started_at: EpochMs
    duration_s: float
    error: str | None = None  # REST or state-file failure; the counts below are then empty
    retry_at: int | None = None  # epoch ms before which REST asked not to be called (429, 418)
    compared: int = 0  # symbols in both sources whose entry was fresh enough to compare
    funding_matched: int = 0
    mark_matched: int = 0
    next_funding_matched: int = 0
    mismatched: dict[str, str] = msgspec.field(default_factory=dict)  # symbol: what differs
    moving: list[str] = msgspec.field(default_factory=list)  # moved mid-round, not verified
    stale: list[str] = msgspec.field(default_factory=list)  # file behind REST: not compared
    max_mark_diff_pct: float | None = None
    max_mark_diff_symbol: str | None = None
    coverage_error: str | None = None
    listed: int = 0  # TRADING perpetuals on REST exchangeInfo
    missing: list[str] = msgspec.field(default_factory=list)  # ... that the file lacks
    weight: int = 0  # REST request weight this round spent
    used_weight_1m: int | None = None  # X-MBX-USED-WEIGHT-1m: the IP's weight this minute


class Delivery(msgspec.Struct, kw_only=True):
    """One attempt to deliver a notification (or fetch the heartbeat URL) during a sample.

    ``service`` is the URL masked to its scheme and host (never the URL: it holds secrets)."""

    kind: str  # DEGRADED, RECOVERED, RESTARTS, MISMATCH, COVERAGE, REPORT or HEARTBEAT
    title: str
    service: str
    ok: bool
    error: str | None = None  # why it was not delivered (it stays in the outbox)
    queued_at: EpochMs | None = None  # when the message was first queued


class Notices(msgspec.Struct, kw_only=True):
    """What the audit's notifications did during one sample (``audit --notify...``)."""

    deliveries: list[Delivery] = msgspec.field(default_factory=list)
    waiting: int = 0  # messages left in the outbox after this sample
    waiting_titles: list[str] = msgspec.field(default_factory=list)  # the oldest few
    dropped: int = 0  # messages the full outbox dropped during this sample
    folded: int = 0  # messages held back by the hourly cap during this sample


class Sample(msgspec.Struct, kw_only=True):
    """The state file at one instant, as the audit saw it (one line of the history)."""

    v: int = HISTORY_VERSION
    at: EpochMs  # when the audit looked
    interval_s: float  # the audit's sampling period: a longer silence is a sampling gap
    max_age_s: float  # the --max-age the verdict was judged with
    readable: bool
    error: str | None = None  # why the file could not be read
    error_kind: str | None = None  # missing, unreadable, corrupt, unsupported
    verdict: str  # HEALTHY, DEGRADED or UNREADABLE, by the status rules
    problems: list[str] = msgspec.field(default_factory=list)
    state: str | None = None
    last_message_age_s: float | None = None
    last_write_age_s: float | None = None
    pid: int | None = None
    started_at: EpochMs | None = None  # the daemon's start: with pid, its identity
    daemon_alive: bool | None = None  # whether that pid exists here; None: not known
    write_failing: bool = False
    counters: Counters | None = None
    funding_symbols: int = 0
    ticker_symbols: int = 0
    stale_funding: int = 0
    stale_tickers: int = 0
    restarts_seen: int = 0  # daemon restarts the audit has seen since its history began
    compare: CompareRound | None = None
    notices: Notices | None = None  # only when the audit sends notifications


def record_comparison(round_: CompareRound, report: Report) -> CompareRound:
    """Fill ``round_`` with what a compare round found. Symbols that moved mid-round or were
    stale are not counted as compared (neither verified nor mismatched)."""
    verified = [c for c in report.compared if not c.moving]
    largest = max(verified, key=lambda c: c.mark_diff_pct, default=None)
    round_.compared = len(verified)
    round_.funding_matched = sum(c.funding_match for c in verified)
    round_.mark_matched = sum(c.mark_match for c in verified)
    round_.next_funding_matched = sum(c.next_funding_match for c in verified)
    round_.mismatched = {c.symbol: "; ".join(c.problems()) for c in report.mismatched}
    round_.moving = [c.symbol for c in report.moving]
    round_.stale = list(report.stale)
    if largest is not None:
        round_.max_mark_diff_pct = largest.mark_diff_pct
        round_.max_mark_diff_symbol = largest.symbol
    return round_


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Sample)


def encode_sample(sample: Sample) -> bytes:
    """One history line: compact JSON and a newline."""
    return _encoder.encode(sample) + b"\n"


@dataclass
class Parsed:
    """The samples of some history lines, and how many lines were not samples."""

    samples: list[Sample] = field(default_factory=list)
    skipped: int = 0  # lines that are not samples (a torn last line is not counted)
    older: int = 0  # samples before the window asked for


def parse_lines(lines: Iterable[bytes], since: int = 0, parsed: Parsed | None = None) -> Parsed:
    """The samples at or after ``since`` (epoch ms) in ``lines`` (each with its newline, as a
    binary file iterates), in order. Adds to ``parsed`` when given (several files)."""
    parsed = parsed if parsed is not None else Parsed()
    for line in lines:
        try:
            sample = _decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):
            if line.endswith(b"\n") and line.strip():  # a torn last line has no newline
                parsed.skipped += 1
            continue
        if sample.v > HISTORY_VERSION:
            parsed.skipped += 1  # a newer audit's line: its fields may mean something else
        elif sample.at >= since:
            parsed.samples.append(sample)
        else:
            parsed.older += 1
    return parsed


def identity(sample: Sample) -> tuple[int, int] | None:
    """Which daemon process wrote the file the sample saw (pid, start time), if known."""
    if not sample.readable or sample.pid is None or sample.started_at is None:
        return None
    return sample.pid, sample.started_at


def restarted(before: Sample | None, after: Sample) -> bool:
    """Whether the daemon behind ``after`` is another process than the one behind ``before``."""
    if before is None:
        return False
    old, new = identity(before), identity(after)
    return old is not None and new is not None and old != new


@dataclass(frozen=True)
class Observation:
    """What one look at the state file found (the I/O side fills this in)."""

    at: int  # epoch ms
    document: StateDocument | None
    error: StateFileError | None = None
    daemon_alive: bool | None = None


def sample_of(
    seen: Observation,
    *,
    source: str,
    max_age: float,
    interval: float,
    last_readable: Sample | None,
    restarts_seen: int,
) -> Sample:
    """The history line for one observation, judged by the ``status`` rules."""
    if seen.document is None:
        error = str(seen.error) if seen.error is not None else "not read"
        summary = unreadable(source, error, max_age)
        return Sample(
            at=seen.at,
            interval_s=interval,
            max_age_s=max_age,
            readable=False,
            error=error,
            error_kind=getattr(seen.error, "reason", None),
            verdict=summary.verdict,
            problems=summary.problems,
            restarts_seen=restarts_seen,
        )
    summary = summarize(seen.document, seen.at, max_age, source)
    status = seen.document.connection_status
    sample = Sample(
        at=seen.at,
        interval_s=interval,
        max_age_s=max_age,
        readable=True,
        verdict=summary.verdict,
        problems=summary.problems,
        state=summary.state,
        last_message_age_s=summary.last_message_age_s,
        last_write_age_s=summary.last_write_age_s,
        pid=status.pid,
        started_at=status.started_at,
        daemon_alive=seen.daemon_alive,
        write_failing=status.last_write_error is not None,
        counters=summary.counters,
        funding_symbols=summary.funding_symbols,
        ticker_symbols=summary.ticker_symbols,
        stale_funding=len(summary.stale_funding),
        stale_tickers=len(summary.stale_tickers),
        restarts_seen=restarts_seen,
    )
    sample.restarts_seen += restarted(last_readable, sample)
    return sample
