"""Pure: the audit history as the monitor shows it — the last 24 h, judged.

The worker thread turns the history's samples into one :class:`HistoryOutcome` and posts it:
the report of the window (:func:`binance_funding_ws.report.build_report`, so the figures,
the outage rules and the SAFE / NOT_YET / NOT_SAFE verdict are exactly those of
``binance-funding-ws report`` with its defaults), the last compare round, and the window cut
into :data:`CHART_BUCKETS` buckets for the charts, drawn here as bars. The words are the
report's own (:func:`binance_funding_ws.report.fact_lines`); the panel, the history screen and
``--once`` lay them out.

Everything a sample carries came from the host: every string below that holds some of it
(symbols, errors, problems, paths) is folded onto one line without terminal control
(:func:`~binance_funding_ws.text.one_line`); the screen shows it as text, never as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from binance_funding_ws.durations import format_age, format_clock
from binance_funding_ws.history import CompareRound, Sample, admit
from binance_funding_ws.report import (
    DEFAULT_MIN_PERIOD_S,
    DEFAULT_SINCE_S,
    DEFAULT_SLO_PCT,
    GAP_SLACK_S,
    AuditReport,
    available,
    build_report,
    fact_lines,
    outage_summary,
    percent,
    verdict_line,
)
from binance_funding_ws.text import name_list, one_line
from funding_monitor.notices import NoticesView, notices_of

WINDOW_S = DEFAULT_SINCE_S  # 24 h, as `binance-funding-ws report` without options
CHART_BUCKETS = 288  # 5 min each: the finest chart; a narrower one merges neighbours
BLOCKS = "▁▂▃▄▅▆▇█"  # one eighth of a cell to a full one
NO_SAMPLE = "·"  # the audit was not running: no sample, so neither up nor down
READ_CLOCK = "%H:%M:%S UTC"  # when the history was read
SHORT_CLOCK = "%H:%M UTC"  # the charts' axis and the last compare round
NO_HISTORY = "no audit history (funding_audit_enabled?)"


@dataclass(frozen=True)
class Bucket:
    """The samples of one slice of the window."""

    samples: int = 0
    available: int = 0  # by the report's availability rule
    max_age_s: float | None = None  # the oldest market data a sample saw

    @property
    def availability_pct(self) -> float | None:
        return None if not self.samples else 100.0 * self.available / self.samples


@dataclass(frozen=True)
class LastCompare:
    """The last compare round in the window, and when the audit recorded it."""

    at: int  # epoch ms of the sample that carries it (inside the window, unlike its own clock)
    round: CompareRound


@dataclass(frozen=True)
class HistoryOutcome:
    """What one read of the history gave (posted from the worker thread to the screen)."""

    where: str  # the history file, as ``host:path``
    report: AuditReport | None = None
    last_compare: LastCompare | None = None
    buckets: tuple[Bucket, ...] = ()
    interval_s: float | None = None  # the audit's sampling period, from its last sample
    missing: bool = False  # no history file: the audit is off or has not written yet
    error: str | None = None  # the history could not be read
    notices: NoticesView | None = None  # the audit's notifications; None: it sends none

    def problem(self) -> str | None:
        """Why there is no report, in words; ``None`` when there is one."""
        if self.missing:
            return f"{NO_HISTORY} at {one_line(self.where)}"
        if self.error is not None:
            return f"audit history unreadable: {one_line(self.error)}"
        return None


# -- from samples (in the worker thread) --------------------------------------------------


def outcome_of(
    samples: Sequence[Sample], *, skipped: int, seen: int, where: str, now_ms: int
) -> HistoryOutcome:
    """The report of the last 24 h before ``now_ms`` and the chart of it."""
    if not seen and skipped:  # as `report` says of such a file
        return HistoryOutcome(where, error=f"{where}: no audit sample in {skipped} line(s)")
    report = build_report(  # it counts the samples it refuses as evidence
        samples,
        history=where,
        now=now_ms,
        since_s=WINDOW_S,
        max_age=None,  # the audit's own
        min_period_s=DEFAULT_MIN_PERIOD_S,
        slo_pct=DEFAULT_SLO_PCT,
        skipped_lines=skipped,
    )
    # Only what the report takes as evidence is drawn: a hand-edited line (a max_age_s of 0,
    # an age of 1e306, a time ahead) is refused, never charted.
    samples = admit(samples, now_ms)
    max_age = report.max_age_s
    start = now_ms - int(WINDOW_S * 1000)
    return HistoryOutcome(
        where,
        report=report,
        last_compare=last_compare(samples, start, now_ms),
        buckets=bucket_samples(samples, start, now_ms, CHART_BUCKETS, max_age),
        interval_s=samples[-1].interval_s if samples else None,
        notices=notices_of(samples),
    )


def last_compare(samples: Sequence[Sample], start: int, end: int) -> LastCompare | None:
    """The newest compare round among the samples taken from ``start`` to ``end`` (epoch ms)."""
    rounds = [s for s in samples if s.compare is not None and start <= s.at <= end]
    newest = max(rounds, key=lambda s: s.at, default=None)
    return (
        None if newest is None or newest.compare is None else LastCompare(newest.at, newest.compare)
    )


def bucket_samples(
    samples: Sequence[Sample], start: int, end: int, count: int, max_age: float
) -> tuple[Bucket, ...]:
    """The window ``start`` to ``end`` (epoch ms) cut into ``count`` equal buckets."""
    span = max(1, end - start)
    totals, up = [0] * count, [0] * count
    ages: list[float | None] = [None] * count
    for sample in samples:
        if not start <= sample.at <= end:
            continue
        index = min(count - 1, (sample.at - start) * count // span)
        totals[index] += 1
        up[index] += available(sample, max_age)
        age = sample.last_message_age_s
        if age is not None:
            ages[index] = max(age, ages[index] or 0.0)
    return tuple(Bucket(*fields) for fields in zip(totals, up, ages, strict=True))


# -- charts -------------------------------------------------------------------------------


def merged(buckets: Sequence[Bucket]) -> Bucket:
    ages = [b.max_age_s for b in buckets if b.max_age_s is not None]
    return Bucket(
        sum(b.samples for b in buckets), sum(b.available for b in buckets), max(ages, default=None)
    )


def columns(buckets: Sequence[Bucket], width: int) -> list[Bucket]:
    """``buckets`` merged into ``width`` columns (never more columns than buckets)."""
    count = len(buckets)
    width = max(1, min(width, count))
    return [merged(buckets[c * count // width : (c + 1) * count // width]) for c in range(width)]


def tone(bucket: Bucket, kind: Literal["availability", "age"], max_age: float) -> str:
    """How a column is coloured: ``good``, ``partial``, ``down`` or ``none`` (no sample)."""
    if not bucket.samples:
        return "none"
    if kind == "age":
        return "down" if (bucket.max_age_s or 0.0) > max_age else "good"
    if bucket.available == bucket.samples:
        return "good"
    return "down" if not bucket.available else "partial"


def availability_levels(cols: Sequence[Bucket]) -> list[float | None]:
    """Each column's availability as a share of the chart's height (fixed scale, 0 to 100 %)."""
    return [None if b.availability_pct is None else b.availability_pct / 100 for b in cols]


def age_levels(cols: Sequence[Bucket], top: float) -> list[float | None]:
    """Each column's oldest data as a share of ``top`` seconds."""
    return [None if b.max_age_s is None else min(1.0, b.max_age_s / top) for b in cols]


def bar_rows(levels: Sequence[float | None], height: int) -> list[str]:
    """A bar chart, top row first: one column a level (0..1), ``None`` is :data:`NO_SAMPLE`.

    Levels are rounded down, so that 99 % never looks like 100 %; any level above none shows
    at least a sliver, so that 0 % is told from no sample.
    """
    eighths = [
        None if v is None else max(1, min(height * 8, math.floor(v * height * 8))) for v in levels
    ]
    rows = []
    for row in range(height):
        floor = (height - 1 - row) * 8
        cells = []
        for filled in eighths:
            if filled is None:
                cells.append(NO_SAMPLE if row == height - 1 else " ")
            else:
                part = min(8, filled - floor)
                cells.append(BLOCKS[part - 1] if part > 0 else " ")
        rows.append("".join(cells))
    return rows


def axis(width: int, start_ms: int, end_ms: int) -> str:
    """A time axis under a chart ``width`` columns wide: start, middle and end (UTC)."""
    left, right = format_clock(start_ms, SHORT_CLOCK), "now"
    line = [" "] * width
    middle = format_clock((start_ms + end_ms) // 2, SHORT_CLOCK)
    spots = [(width - len(right), right)]
    if width > len(left) + len(right):
        spots.append((0, left))
    if width >= len(left) + len(middle) + len(right) + 4:
        spots.append(((width - len(middle)) // 2, middle))
    for at, label in spots:
        line[max(0, at) : max(0, at) + len(label)] = label
    return "".join(line)[:width]


# -- words --------------------------------------------------------------------------------


def headline(report: AuditReport) -> str:
    """The panel's line, after the verdict: availability and outages, as ``report`` words
    them."""
    if not report.samples:
        return "no sample in the window (is the audit running?)"
    return (
        f"{percent(report.availability_pct)} available · outages {outage_summary(report.outages)}"
    )


def compare_text(last: LastCompare | None) -> str:
    """The last compare round: ``05:15 UTC, funding 15/15 · mark 15/15 · mismatched none``."""
    if last is None:
        return "none in the window"
    r = last.round
    if r.error is not None:
        return f"{format_clock(last.at, SHORT_CLOCK)}, failed ({one_line(r.error)})"
    at = format_clock(last.at, SHORT_CLOCK)
    text = (
        f"{at}, funding {r.funding_matched}/{r.compared} · mark {r.mark_matched}/"
        f"{r.compared} · mismatched {one_line(name_list(sorted(r.mismatched)))}"
    )
    if r.missing:
        text += f" · missing {one_line(name_list(sorted(r.missing)))}"
    if r.stale_in_file:
        text += f" · stale {one_line(name_list(sorted(r.stale_in_file)))}"
    return text


def silence(outcome: HistoryOutcome) -> float | None:
    """How old the last sample was when the history was read, if older than the audit's gaps
    allow: the audit is not running (timer stopped, or failing)."""
    report = outcome.report
    if report is None or report.last_sample_age_s is None or outcome.interval_s is None:
        return None
    age = report.last_sample_age_s
    return age if age > 2 * outcome.interval_s + GAP_SLACK_S else None


def once_lines(outcome: HistoryOutcome | None) -> list[str]:
    """What ``--once`` prints after a host's summary (nothing when the history is off)."""
    if outcome is None:
        return []
    problem = outcome.problem()
    if problem is not None or outcome.report is None:
        return [f"  audit 24 h  {problem or 'not read'}"]
    report = outcome.report
    lines = [f"  audit 24 h  {one_line(verdict_line(report))}"]
    if report.samples:  # else the verdict said it all
        lines.append(
            f"  history     {headline(report).replace(' · ', ', ')}; last compare "
            f"{compare_text(outcome.last_compare).replace(' · ', ', ')}"
        )
    return lines


def report_lines(outcome: HistoryOutcome) -> list[str]:
    """The history screen's facts: the report's own lines (its outages are a table of their
    own), where it was read, and the last compare round."""
    r = outcome.report
    if r is None:
        return [outcome.problem() or "not read yet"]
    return [
        f"history      {one_line(outcome.where)}, read {format_clock(r.generated_at, READ_CLOCK)}",
        *fact_lines(r, list_outages=False),
        f"last round   {compare_text(outcome.last_compare)}",
    ]


def outage_rows(report: AuditReport) -> list[tuple[str, str, str, str, str]]:
    """The outages, newest first: start, end, duration, cause, the first problem named."""
    when = "%m-%d %H:%M:%S"
    return [
        (
            format_clock(o.start, when),
            "ongoing" if o.end is None else format_clock(o.end, when),
            format_age(o.duration_s),
            one_line(o.cause),
            one_line(o.detail),
        )
        for o in reversed(report.outages)
    ]
