"""Pure: the audit history — what ``binance-funding-ws audit`` records and ``report`` reads.

The history is JSON Lines: one :class:`Sample` object a line, appended (and fsynced) once an
interval. A sample is the state file as a reader saw it at one instant, judged by the
``status`` rules (:func:`~binance_funding_ws.health.summarize`); every ``--compare-every`` a
sample also carries a :class:`CompareRound` (the file against REST ``premiumIndex``, and its
coverage against ``exchangeInfo``).

Readers are tolerant (:func:`parse_lines`): a torn last line (the writer died mid-append) is
skipped silently, any other line that is not a sample is skipped and counted, and keys a
reader does not know are ignored, so new optional fields never break an old report.

The history is evidence, and the service user can write it: readers check it like evidence.
A line longer than :data:`MAX_LINE_BYTES` is skipped unread (:func:`bounded_lines`), and a
sample whose claims are out of range (:func:`refusal`: a time in the future, an interval, an
age or a ``max_age_s`` no audit can record) is refused by :func:`admit`, counted, and never
taken as availability.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec

from binance_funding_ws.argtypes import MAX_AGE_BOUNDS
from binance_funding_ws.compare import PERPETUALS, Report, missing_from_file
from binance_funding_ws.durations import DAY, HOUR
from binance_funding_ws.health import MAX_CLOCK_SKEW_S, Counters, is_stale, summarize, unreadable
from binance_funding_ws.rest import ExchangeSymbol
from binance_funding_ws.state import EpochMs, StateDocument, StateFileError

HISTORY_VERSION = 1
# A sample line is ~0.5 KB, one with a compare round naming every symbol ~100 KB: a longer
# line is no sample, and is skipped without being held in memory.
MAX_LINE_BYTES = 1024 * 1024
# What an audit can record (its --interval and --max-age bounds); a claim outside is refused.
INTERVAL_BOUNDS = (0.1, HOUR)
# A sample claiming an interval this many times the window's usual one is refused: one line
# with a long interval would otherwise vouch for hours that nobody watched.
INTERVAL_FACTOR = 4.0
MAX_RETRY_AFTER_S = 3 * DAY  # the longest REST ban a round may record
MAX_ROUND_WEIGHT = 100_000  # far above any round's REST weight (21 at most)
MAX_COUNT = 2**53  # counters and counts: exact in a float, far above any real one


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
    # TRADING perpetuals whose entry in the file was stale (by the stale rule, at --max-age)
    # when coverage was checked: in the file, but no answer for the bot
    stale_in_file: list[str] = msgspec.field(default_factory=list)
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


def record_coverage(
    round_: CompareRound,
    listed: Sequence[ExchangeSymbol],
    document: StateDocument,
    now: int,
    max_age: float,
) -> CompareRound:
    """Fill ``round_`` with the file's coverage of REST's ``TRADING`` perpetuals. Coverage
    means fresh in the file: an entry more than ``max_age`` behind the feed's freshest (the
    one stale rule, judged against the feed rather than the clock) is named in
    ``stale_in_file``, as a missing one is in ``missing``. A file with no fresh data at all
    is an outage, the availability rule's business: its coverage is not judged."""
    tradable = sorted(
        s.symbol for s in listed if s.status == "TRADING" and s.contractType in PERPETUALS
    )
    round_.listed = len(tradable)
    funding = document.funding
    ahead = now + MAX_CLOCK_SKEW_S * 1000  # a future date proves nothing, nor sets the pace
    freshest = max((e.event_time for e in funding.values() if e.event_time <= ahead), default=None)
    if freshest is None or is_stale(freshest, now, max_age):
        round_.coverage_error = "skipped: no fresh market data in the file (an outage)"
        return round_
    round_.missing = missing_from_file(list(listed), document)
    round_.stale_in_file = [
        symbol
        for symbol in tradable
        if symbol in funding and is_stale(funding[symbol].event_time, freshest, max_age)
    ]
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
    refused: int = 0  # samples whose claims are out of range (see :func:`refusal`)
    first_refusal: str | None = None  # why the first of them was refused

    def refuse(self, reason: str) -> None:
        self.refused += 1
        if self.first_refusal is None:
            self.first_refusal = reason


def parse_lines(
    lines: Iterable[bytes],
    since: int = 0,
    parsed: Parsed | None = None,
    now: int | None = None,
) -> Parsed:
    """The samples at or after ``since`` (epoch ms) in ``lines`` (each with its newline, as a
    binary file iterates), in order. Adds to ``parsed`` when given (several files). With
    ``now`` (epoch ms), samples :func:`refusal` refuses are counted in ``parsed.refused``
    instead of kept."""
    parsed = parsed if parsed is not None else Parsed()
    for sample in iter_samples(lines, parsed, since):
        reason = refusal(sample, now) if now is not None else None
        if reason is None:
            parsed.samples.append(sample)
        else:
            parsed.refuse(reason)
    return parsed


def iter_samples(lines: Iterable[bytes], parsed: Parsed, since: int = 0) -> Iterator[Sample]:
    """The samples at or after ``since`` in ``lines``, one at a time (nothing kept); lines
    that are not samples and older samples are counted in ``parsed``."""
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
            yield sample
        else:
            parsed.older += 1


OVERSIZED = b"\x00 over MAX_LINE_BYTES\n"  # stands for a skipped line: no sample, counted


def bounded_lines(
    read: Callable[[int], bytes], limit: int = MAX_LINE_BYTES, chunk: int = 64 * 1024
) -> Iterator[bytes]:
    """The lines of a binary stream (``read`` is its ``read``), each with its newline but the
    last; a line longer than ``limit`` is never held: it is dropped as it is read and
    :data:`OVERSIZED` stands in its place. Iterating a file object instead would hold a
    400 MB line whole."""
    pending = b""
    dropping = False  # inside an oversized line: discard up to its newline
    while block := read(chunk):
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            if dropping:
                dropping = False
                yield OVERSIZED
            elif len(pending) + end - start + 1 > limit:
                pending = b""
                yield OVERSIZED
            else:
                yield pending + block[start : end + 1]
                pending = b""
            start = end + 1
        if not dropping:
            pending += block[start:]
            if len(pending) > limit:
                pending, dropping = b"", True
    if dropping:
        yield OVERSIZED.rstrip(b"\n")  # an oversized torn last line: as a torn line, silent
    elif pending:
        yield pending


# -- evidence: what a sample may claim ----------------------------------------------------


def refusal(sample: Sample, now: int) -> str | None:
    """Why ``sample`` cannot be taken as evidence at ``now`` (epoch ms), or ``None``.

    The history is written by the service user, and a hand-edited line must neither crash a
    reader nor buy availability: a time in the future, an interval outside the audit's
    ``--interval`` bounds, a ``max_age_s`` outside ``--max-age``'s, an age that is not a
    number or older than the epoch, a negative count, or a compare round claiming an
    impossible time, weight or ban is refused.
    """
    if sample.at > now + MAX_CLOCK_SKEW_S * 1000:
        return f"dated {(sample.at - now) / 1000:.0f} s in the future"
    if not _within(sample.interval_s, *INTERVAL_BOUNDS):
        return f"interval_s {sample.interval_s:g} out of range"
    if not _within(sample.max_age_s, *MAX_AGE_BOUNDS):
        return f"max_age_s {sample.max_age_s:g} out of range"
    for name in ("last_message_age_s", "last_write_age_s"):
        age = getattr(sample, name)
        if age is not None and not _within(age, -HOUR, sample.at / 1000):
            return f"{name} {age:g} out of range"
    counts = [sample.funding_symbols, sample.ticker_symbols, sample.stale_funding]
    counts += [sample.stale_tickers, sample.restarts_seen]
    if sample.counters is not None:
        counts += [getattr(sample.counters, name) for name in sample.counters.__struct_fields__]
    if not all(0 <= count <= MAX_COUNT for count in counts):
        return "a count out of range"
    if sample.compare is not None:
        return _round_refusal(sample.compare, sample.at)
    return None


def _round_refusal(r: CompareRound, at: int) -> str | None:
    if not at - DAY * 1000 <= r.started_at <= at + MAX_CLOCK_SKEW_S * 1000:
        return "a compare round started out of range"
    if not _within(r.duration_s, 0.0, DAY):
        return f"a compare round's duration_s {r.duration_s:g} out of range"
    if r.retry_at is not None and not 0 <= r.retry_at - r.started_at <= MAX_RETRY_AFTER_S * 1000:
        return "a compare round's retry_at out of range"
    if r.max_mark_diff_pct is not None and not math.isfinite(r.max_mark_diff_pct):
        return "a compare round's max_mark_diff_pct is not a number"
    counts = [r.compared, r.funding_matched, r.mark_matched, r.next_funding_matched, r.listed]
    if not all(0 <= count <= MAX_COUNT for count in counts):
        return "a compare round's count out of range"
    if not 0 <= r.weight <= MAX_ROUND_WEIGHT:
        return f"a compare round's weight {r.weight} out of range"
    if r.used_weight_1m is not None and not 0 <= r.used_weight_1m <= MAX_COUNT:
        return "a compare round's used_weight_1m out of range"
    return None


def _within(value: float, low: float, high: float) -> bool:
    return math.isfinite(value) and low <= value <= high


class Claims:
    """What the samples :func:`refusal` admits claim about time, a few numbers each (a
    report's first pass keeps these, not the samples): when, at what interval, and with
    which threshold."""

    def __init__(self, samples: Iterable[Sample], now: int) -> None:
        # "d" for times too: a hand-edited time past any int64 must not stop the read.
        self.at, self.interval_s, self.max_age_s = array("d"), array("d"), array("d")
        for sample in samples:
            if refusal(sample, now) is None:
                self.at.append(sample.at)
                self.interval_s.append(sample.interval_s)
                self.max_age_s.append(sample.max_age_s)

    def usual_interval(self) -> float | None:
        """The median ``interval_s``: the audit's setting, as most of its samples say."""
        return statistics.median(self.interval_s) if self.interval_s else None

    def last_max_age(self, now: int) -> float | None:
        """The ``max_age_s`` of the last sample :class:`Admission` would admit."""
        admission = Admission(now, self.usual_interval())
        last = None
        for at, interval_s, max_age_s in zip(self.at, self.interval_s, self.max_age_s, strict=True):
            if admission.in_order(at, interval_s) is None:
                last = max_age_s
        return last


class Admission:
    """The evidence rules over a stream of samples, oldest first: :func:`refusal`, an
    interval over :data:`INTERVAL_FACTOR` times ``usual``, and a sample dated before the one
    admitted before it (the history is appended in time order: a line out of order was
    edited, or the clock stepped back, and either way it proves nothing)."""

    def __init__(self, now: int, usual: float | None, parsed: Parsed | None = None) -> None:
        self.now = now
        self.usual = usual
        self.longest = math.inf if usual is None else INTERVAL_FACTOR * usual
        self.parsed = parsed if parsed is not None else Parsed()
        self._last_at: float | None = None

    def admits(self, sample: Sample) -> bool:
        reason = refusal(sample, self.now) or self.in_order(sample.at, sample.interval_s)
        if reason is not None:
            self.parsed.refuse(reason)
        return reason is None

    def in_order(self, at: float, interval_s: float) -> str | None:
        """Why a sample at ``at`` claiming ``interval_s`` does not follow the samples
        admitted so far, or ``None`` (it is then the last admitted)."""
        if interval_s > self.longest:
            return (
                f"interval_s {interval_s:g} over {INTERVAL_FACTOR:g} times the usual "
                f"{self.usual:g} s"
            )
        if self._last_at is not None and at < self._last_at:
            return "dated before the sample before it"
        self._last_at = at
        return None


def admit(samples: Sequence[Sample], now: int, parsed: Parsed | None = None) -> list[Sample]:
    """The samples of ``samples`` (oldest first) that :class:`Admission` admits; the refused
    are counted in ``parsed`` when given."""
    admission = Admission(now, Claims(samples, now).usual_interval(), parsed)
    return [sample for sample in samples if admission.admits(sample)]


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
