"""Pure: the audit report — how the feed behaved over a window of history samples, and whether
the bot's REST fallback can go.

The rules, in one place:

* **Available.** A sample is available when the file was readable, its feed ``connected``
  and its last market data at most ``max_age`` old (the one stale rule,
  :func:`~binance_funding_ws.health.is_stale`). Availability is the share of available
  samples in the window.
* **Outage.** Starts at the first sample that is not available and ends at the first that is.
  Its cause is the most telling one among its samples (:data:`CAUSES`, most telling first);
  a daemon restart (pid change) across it makes it ``daemon down``, and a write-error count
  that grew across it (same daemon) makes it ``write errors``.
* **Gap.** Consecutive samples more than two intervals and a second apart: the audit was
  not running. The time observed is the window (first to last sample) less its gaps.
* **Evidence.** Only samples :func:`~binance_funding_ws.history.admit` admits count: one
  whose claims are out of range (a future time, an impossible interval, age or threshold) is
  refused and counted, never taken as availability.
* **Coverage** means fresh in the file: a ``TRADING`` perpetual is covered in a coverage round
  when the file holds an entry for it that is not stale (the one stale rule, at the audit's
  ``--max-age``, against the feed's freshest entry). A missing entry and a stale one both
  leave it uncovered.
* **Verdict.** ``NOT_SAFE`` when availability is below the SLO, a symbol mismatched REST in
  any compare round, or a ``TRADING`` perpetual was missing from the file or stale in it in
  any coverage round; else ``NOT_YET`` when less than ``min_period`` was observed or no
  compare or coverage round completed; else ``SAFE``.

:func:`build_report` returns one :class:`AuditReport` (a msgspec Struct: ``report --json``
prints it, and the monitor can show it); :func:`render_text` is its text.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence

import msgspec

from binance_funding_ws.argtypes import DEFAULT_MAX_AGE
from binance_funding_ws.botstats import STATS_FILE_COUNTERS, BotStats
from binance_funding_ws.botstats import decode_bot_stats as _decode_bot_stats
from binance_funding_ws.compare import WEIGHT_BUDGET_PER_MINUTE
from binance_funding_ws.durations import DAY, format_age, format_age_or, format_clock, format_span
from binance_funding_ws.health import is_stale
from binance_funding_ws.history import (
    Admission,
    Claims,
    CompareRound,
    Parsed,
    Sample,
    identity,
    restarted,
)
from binance_funding_ws.text import name_list, strip_control

SAFE, NOT_YET, NOT_SAFE = "SAFE", "NOT_YET", "NOT_SAFE"
EXIT_SAFE, EXIT_NOT_SAFE, EXIT_UNREADABLE = 0, 1, 2
# Outage causes, the most telling first: an outage with several is named by the first.
CAUSES = (
    "file missing",
    "file unreadable",
    "daemon down",
    "write errors",
    "stalled",
    "reconnecting",
    "stale",
)
GAP_SLACK_S = 1.0  # a sample this late past two intervals means the audit was not running
COUNTERS = ("reconnects", "stalls", "rotations", "errors", "write_errors")
MAX_OUTAGE_LINES = 20  # in the text; --json has every outage
# The report's defaults (`report` without options, and the monitor's last 24 h): one definition.
DEFAULT_SINCE_S = DAY  # the window judged
DEFAULT_MIN_PERIOD_S = DAY  # observed, less the gaps, before the verdict can be SAFE
DEFAULT_SLO_PCT = 99.9  # availability needed for SAFE


class Outage(msgspec.Struct, kw_only=True):
    start: int  # epoch ms: the first sample that was not available
    end: int | None  # epoch ms: the first available sample after it; None while it lasts
    duration_s: float  # end - start (to the last sample while it lasts)
    cause: str  # one of CAUSES
    detail: str  # the first problem the status rules named


class Gap(msgspec.Struct, kw_only=True):
    start: int
    end: int
    duration_s: float


class DataAge(msgspec.Struct, kw_only=True):
    """Seconds since the last market data, over the readable samples."""

    p50_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None


class CompareTotals(msgspec.Struct, kw_only=True):
    rounds: int = 0  # rounds that ran
    failed_rounds: int = 0  # rounds REST or the file did not allow
    last_error: str | None = None
    funding_matched: int = 0
    funding_compared: int = 0
    mark_matched: int = 0
    mark_compared: int = 0
    largest_mark_diff_pct: float | None = None
    largest_mark_diff_symbol: str | None = None
    mismatched_symbols: list[str] = msgspec.field(default_factory=list)
    mismatches: dict[str, str] = msgspec.field(default_factory=dict)  # symbol: last finding
    stale_skips: int = 0  # symbol-rounds not compared because the file was behind REST
    rest_weight: int = 0  # REST weight the audit spent over the window


class Coverage(msgspec.Struct, kw_only=True):
    rounds: int = 0
    skipped_rounds: int = 0  # REST failed, or the feed was not connected long enough
    listed: int = 0  # TRADING perpetuals in the last round
    missing_symbols: list[str] = msgspec.field(default_factory=list)
    stale_symbols: list[str] = msgspec.field(default_factory=list)  # in the file, but stale


class AuditReport(msgspec.Struct, kw_only=True):
    """The one report of a history window (``report --json``)."""

    history: str
    generated_at: int  # epoch ms
    since_s: float  # the window asked for
    max_age_s: float
    min_period_s: float
    slo_pct: float
    start: int | None  # first and last sample in the window (epoch ms)
    end: int | None
    window_s: float
    observed_s: float  # window_s plus the last sample's interval, less the gaps
    samples: int
    skipped_lines: int
    last_sample_age_s: float | None
    gaps: list[Gap]
    availability_pct: float | None
    data_age: DataAge
    outages: list[Outage]
    restarts: int
    reconnects: int
    stalls: int
    rotations: int
    errors: int
    write_errors: int
    compare: CompareTotals
    coverage: Coverage
    rest_weight_per_min: float | None
    bot: BotStats | None = None
    bot_error: str | None = None
    refused_samples: int = 0  # samples whose claims were out of range: not evidence
    first_refusal: str | None = None  # why the first of them was refused
    verdict: str
    reasons: list[str]
    exit_code: int


# -- the rules ----------------------------------------------------------------------------


def available(sample: Sample, max_age: float) -> bool:
    """The availability rule: readable, connected, last market data at most ``max_age`` old."""
    age = sample.last_message_age_s
    if not sample.readable or sample.state != "connected" or age is None:
        return False
    return not is_stale(round(sample.at - age * 1000), sample.at, max_age)


def cause_of(sample: Sample) -> str:
    """Why one unavailable sample is unavailable (one of :data:`CAUSES`)."""
    if not sample.readable:
        return "file missing" if sample.error_kind == "missing" else "file unreadable"
    if sample.state == "stopped" or sample.daemon_alive is False:
        return "daemon down"
    if sample.write_failing:
        return "write errors"
    if sample.state == "stalled":
        return "stalled"
    if sample.state in ("reconnecting", "connecting"):
        return "reconnecting"
    return "stale"  # connected by its own word, but its data is old: a silence not yet noticed


MAX_NAMED_SYMBOLS = 5_000  # symbols a report names per list; a forged history has no more


class _Outages:
    """Outages as the samples go by: the open one keeps its first and last sample, its
    causes, and the last sample whose daemon is known (a restart across it is ``daemon
    down``), not the samples themselves."""

    def __init__(self) -> None:
        self.found: list[Outage] = []
        self.last_good: Sample | None = None
        self._first: Sample | None = None
        self._last: Sample | None = None
        self._causes: set[str] = set()
        self._known: Sample | None = None  # the last sample with a known daemon

    def add(self, sample: Sample, up: bool) -> None:
        if not up:
            if self._first is None:
                self._first, self._causes = sample, set()
                self._known = self.last_good if _known(self.last_good) else None
            self._last = sample
            self._causes.add(cause_of(sample))
            self._track(sample)
            return
        if self._first is not None:
            self._track(sample)
            self._close(sample)
        self.last_good = sample

    def _track(self, sample: Sample) -> None:
        if _known(sample):
            if restarted(self._known, sample):
                self._causes.add("daemon down")
            self._known = sample

    def finish(self) -> list[Outage]:
        if self._first is not None:
            self._close(None)
        return self.found

    def _close(self, after: Sample | None) -> None:
        first, last = self._first, self._last
        assert first is not None and last is not None
        if _write_errors_grew(self.last_good, after):
            self._causes.add("write errors")
        end = after.at if after is not None else None
        self.found.append(
            Outage(
                start=first.at,
                end=end,
                duration_s=((end if end is not None else last.at) - first.at) / 1000,
                cause=min(self._causes, key=CAUSES.index),
                detail=first.problems[0] if first.problems else "",
            )
        )
        self._first = self._last = None


def _known(sample: Sample | None) -> bool:
    return sample is not None and identity(sample) is not None


def _write_errors_grew(before: Sample | None, after: Sample | None) -> bool:
    if before is None or after is None or before.counters is None or after.counters is None:
        return False
    same = identity(before) == identity(after)
    return same and after.counters.write_errors > before.counters.write_errors


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0..1) of ``ordered`` (sorted)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class _Tally:
    """Everything the report counts, one sample at a time (oldest first): memory grows with
    the outages, gaps and named symbols, never with the samples (a float each for the data
    age percentiles)."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.first: Sample | None = None
        self.last: Sample | None = None
        self.samples = 0
        self.available = 0
        self.ages = array("d")
        self.gaps: list[Gap] = []
        self.outages = _Outages()
        self.activity = dict.fromkeys(("restarts", *COUNTERS), 0)
        self._last_counted: Sample | None = None
        self.compare = CompareTotals()
        self.coverage = Coverage()
        self._missing: set[str] = set()
        self._stale: set[str] = set()

    def add(self, sample: Sample) -> None:
        before = self.last
        if before is not None and (sample.at - before.at) / 1000 > _gap_after(before):
            self.gaps.append(
                Gap(start=before.at, end=sample.at, duration_s=(sample.at - before.at) / 1000)
            )
        self.first = self.first or sample
        self.last = sample
        self.samples += 1
        up = available(sample, self.max_age)
        self.available += up
        self.outages.add(sample, up)
        if sample.last_message_age_s is not None:
            self.ages.append(sample.last_message_age_s)
        if sample.counters is not None:
            self._count_activity(sample)
        if sample.compare is not None:
            self._add_round(sample.compare)

    def _count_activity(self, sample: Sample) -> None:
        """Restarts (pid changes) and the daemon's counters' growth. A counter restarts from
        zero with its process, so across a restart the new process's whole count is added."""
        before = self._last_counted
        self._last_counted = sample
        if before is None or before.counters is None or sample.counters is None:
            return
        new_process = restarted(before, sample)
        self.activity["restarts"] += new_process
        for name in COUNTERS:
            base = 0 if new_process else getattr(before.counters, name)
            self.activity[name] += max(0, getattr(sample.counters, name) - base)

    def _add_round(self, r: CompareRound) -> None:
        totals, coverage = self.compare, self.coverage
        totals.rest_weight += r.weight
        if r.error is not None:
            totals.failed_rounds += 1
            totals.last_error = r.error
            coverage.skipped_rounds += 1
            return
        totals.rounds += 1
        totals.funding_compared += r.compared
        totals.mark_compared += r.compared
        totals.funding_matched += r.funding_matched
        totals.mark_matched += r.mark_matched
        totals.stale_skips += len(r.stale)
        for symbol, finding in r.mismatched.items():
            if symbol in totals.mismatches or len(totals.mismatches) < MAX_NAMED_SYMBOLS:
                totals.mismatches[symbol] = finding
        largest = totals.largest_mark_diff_pct
        if r.max_mark_diff_pct is not None and (largest is None or r.max_mark_diff_pct > largest):
            totals.largest_mark_diff_pct = r.max_mark_diff_pct
            totals.largest_mark_diff_symbol = r.max_mark_diff_symbol
        if r.coverage_error is not None:
            coverage.skipped_rounds += 1
            return
        coverage.rounds += 1
        coverage.listed = r.listed
        _add_names(self._missing, r.missing)
        _add_names(self._stale, r.stale_in_file)

    def finish(self) -> None:
        self.compare.mismatched_symbols = sorted(self.compare.mismatches)
        self.coverage.missing_symbols = sorted(self._missing)
        self.coverage.stale_symbols = sorted(self._stale)


def _gap_after(sample: Sample) -> float:
    """The silence after ``sample`` that means the audit was not running, in seconds."""
    return 2 * sample.interval_s + GAP_SLACK_S


def _add_names(names: set[str], more: list[str]) -> None:
    names.update(more[: max(0, MAX_NAMED_SYMBOLS - len(names))])


# -- the report ---------------------------------------------------------------------------


def build_report(
    samples: Iterable[Sample],
    *,
    history: str,
    now: int,
    since_s: float,
    max_age: float | None,
    min_period_s: float,
    slo_pct: float,
    skipped_lines: int = 0,
    bot: BotStats | None = None,
    bot_error: str | None = None,
) -> AuditReport:
    """The report of the samples taken in the ``since_s`` seconds before ``now``, of those
    :class:`~binance_funding_ws.history.Admission` admits. ``samples`` are oldest first and
    iterated twice (a list, or a history read again: see
    :class:`~binance_funding_ws.tools.history.HistoryWindow`), first for the usual
    interval and the audit's threshold, then to count; none is kept. ``max_age`` ``None``:
    the threshold the audit judged its last admitted sample with."""
    start_ms = now - since_s * 1000

    def window() -> Iterator[Sample]:
        return (s for s in samples if start_ms <= s.at <= now)

    claims = Claims(window(), now)
    if max_age is None:
        max_age = claims.last_max_age(now) or DEFAULT_MAX_AGE
    tally = _Tally(max_age)
    refused = Parsed()
    admission = Admission(now, claims.usual_interval(), refused)
    for sample in window():
        if admission.admits(sample):
            tally.add(sample)
    tally.finish()
    first, last = tally.first, tally.last
    start, end = (first.at, last.at) if first and last else (None, None)
    window_s = (end - start) / 1000 if start is not None and end is not None else 0.0
    ages = sorted(tally.ages)
    # Each sample vouches for the interval it opens, so a day sampled every minute is a day
    # observed (first to last sample alone is a minute short, and --since 24h --min-period
    # 24h could never be met); less the gaps, at most since_s.
    covered = window_s + last.interval_s - _total(tally.gaps) if last else 0.0
    report = AuditReport(
        history=history,
        generated_at=now,
        since_s=since_s,
        max_age_s=max_age,
        min_period_s=min_period_s,
        slo_pct=slo_pct,
        start=start,
        end=end,
        window_s=window_s,
        observed_s=max(0.0, min(since_s, covered)),
        samples=tally.samples,
        skipped_lines=skipped_lines,
        last_sample_age_s=(now - end) / 1000 if end is not None else None,
        gaps=tally.gaps,
        availability_pct=100.0 * tally.available / tally.samples if tally.samples else None,
        data_age=DataAge(
            p50_s=percentile(ages, 0.5), p99_s=percentile(ages, 0.99), max_s=max(ages, default=None)
        ),
        outages=tally.outages.finish(),
        **tally.activity,
        compare=tally.compare,
        coverage=tally.coverage,
        rest_weight_per_min=(tally.compare.rest_weight / (window_s / 60) if window_s > 0 else None),
        bot=bot,
        bot_error=bot_error,
        refused_samples=refused.refused,
        first_refusal=refused.first_refusal,
        verdict=NOT_YET,
        reasons=[],
        exit_code=EXIT_NOT_SAFE,
    )
    report.verdict, report.reasons = judge(report)
    report.exit_code = EXIT_SAFE if report.verdict == SAFE else EXIT_NOT_SAFE
    return report


def judge(report: AuditReport) -> tuple[str, list[str]]:
    """The verdict and the rules that decided it (see the module's docstring)."""
    unsafe = []
    if report.availability_pct is not None and report.availability_pct < report.slo_pct:
        unsafe.append(f"availability {report.availability_pct:.3f} % < SLO {report.slo_pct:g} %")
    mismatched = report.compare.mismatched_symbols
    if mismatched:
        unsafe.append(f"{len(mismatched)} symbol(s) differed from REST: {name_list(mismatched)}")
    missing = report.coverage.missing_symbols
    if missing:
        unsafe.append(
            f"{len(missing)} TRADING perpetual(s) missing from the file: {name_list(missing)}"
        )
    stale = report.coverage.stale_symbols
    if stale:
        unsafe.append(
            f"{len(stale)} TRADING perpetual(s) stale in the file (no fresh entry for the bot): "
            f"{name_list(stale)}"
        )
    if unsafe:
        return NOT_SAFE, unsafe
    not_yet = []
    if not report.samples:
        not_yet.append("no sample in the window (is the audit running?)")
    elif report.observed_s + GAP_SLACK_S < report.min_period_s:
        not_yet.append(
            f"observed {format_age(report.observed_s)} of the "
            f"{format_span(report.min_period_s)} required"
        )
    if not report.compare.rounds:
        not_yet.append("no compare round completed")
    if not report.coverage.rounds:
        not_yet.append("no coverage check completed")
    return (NOT_YET, not_yet) if not_yet else (SAFE, [])


def decode_bot_stats(data: bytes) -> BotStats:
    """The bot's stats file (written by its FundingSource); ``ValueError``, one line, if not.
    A count below zero, or a start after the last update, is no count the bot writes."""
    try:
        stats = _decode_bot_stats(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"not a bot stats object ({exc})") from None
    negative = [name for name in STATS_FILE_COUNTERS if getattr(stats, name) < 0]
    if negative or any(count < 0 for count in stats.top_rest_symbols.values()):
        raise ValueError(
            f"not a bot stats object (negative count: {', '.join(negative) or 'top_rest_symbols'})"
        )
    if stats.started_at > stats.updated_at or not math.isfinite(stats.max_age_s):
        raise ValueError(
            "not a bot stats object (started_at after updated_at, or max_age_s not a number)"
        )
    return stats


# -- text ---------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    """A share as the report words it: ``99.493 %``, or ``n/a``."""
    return "n/a" if value is None else f"{value:.3f} %"


def render_text(report: AuditReport) -> str:
    """The report for people (``report``): its title, then :func:`fact_lines` indented."""
    title = strip_control(f"binance-funding-ws report: {report.verdict}  ({report.history})")
    return "".join(f"{line}\n" for line in [title, *(f"  {fact}" for fact in fact_lines(report))])


def fact_lines(report: AuditReport, *, list_outages: bool = True) -> list[str]:
    """The report's facts, a label and its words a line, the verdict last: the one wording of
    the report, for ``report`` and the monitor (which lays them out on its history screen and
    shows the outages as a table of its own: ``list_outages=False``).

    Symbols and errors come from files, hosts and REST: every line is one printable line,
    without terminal control."""
    r = report
    lines = [
        *_window_lines(r),
        f"available    {percent(r.availability_pct)} of samples (connected, data at most "
        f"{r.max_age_s:g} s old; SLO {r.slo_pct:g} %)",
        f"data age     {_data_age(r.data_age)}",
        f"outages      {outage_summary(r.outages)}",
        *(_outage_lines(r.outages) if list_outages else []),
        f"daemon       {r.restarts} restart(s); {r.reconnects} reconnects, {r.stalls} stalls, "
        f"{r.rotations} rotations, {r.errors} bad rows, {r.write_errors} write errors",
        *_compare_lines(r),
        *_bot_lines(r),
        f"verdict      {verdict_line(r)}",
    ]
    return [strip_control(line) for line in lines]


def _data_age(ages: DataAge) -> str:
    p50, p99, most = (format_age_or(age) for age in (ages.p50_s, ages.p99_s, ages.max_s))
    return f"p50 {p50}, p99 {p99}, max {most}"


def _window_lines(r: AuditReport) -> list[str]:
    if r.start is None:
        return [f"window       no sample in the last {format_span(r.since_s)}"]
    lines = [
        f"window       {format_clock(r.start)} to {format_clock(r.end)} ({format_age(r.window_s)}, "
        f"{format_age(r.observed_s)} observed; {r.samples:,} samples, last "
        f"{format_age_or(r.last_sample_age_s)} ago)",
        f"gaps         {len(r.gaps)} (audit not running), {format_age(_total(r.gaps))} in all"
        if r.gaps
        else "gaps         none",
    ]
    if r.skipped_lines:
        lines.append(f"skipped      {r.skipped_lines} unreadable history line(s)")
    if r.refused_samples:
        lines.append(
            f"refused      {r.refused_samples} sample(s) with claims out of range, not "
            f"counted (first: {r.first_refusal})"
        )
    return lines


def _total(spans: Sequence[Gap | Outage]) -> float:
    return sum(span.duration_s for span in spans)


def outage_summary(outages: Sequence[Outage]) -> str:
    """``none``, or how many, the longest and the time in all: ``2 (longest 5m 00s), 7m 00s
    in all``."""
    if not outages:
        return "none"
    longest = max(o.duration_s for o in outages)
    ongoing = ", one ongoing" if outages[-1].end is None else ""
    return (
        f"{len(outages)} (longest {format_age(longest)}{ongoing}), "
        f"{format_age(_total(outages))} in all"
    )


def _outage_lines(outages: list[Outage]) -> list[str]:
    # A flapping feed can have hundreds: the longest are shown, in time order.
    longest = sorted(outages, key=lambda o: -o.duration_s)[:MAX_OUTAGE_LINES]
    lines = []
    for o in sorted(longest, key=lambda o: o.start):
        until = "ongoing" if o.end is None else f"for {format_age(o.duration_s)}"
        lines.append(f"  {format_clock(o.start)} {until}: {o.cause} ({o.detail})")
    if len(outages) > MAX_OUTAGE_LINES:
        lines.append(f"  ... and {len(outages) - MAX_OUTAGE_LINES} shorter (--json lists all)")
    return lines


def _compare_lines(r: AuditReport) -> list[str]:
    c, cov = r.compare, r.coverage
    largest = (
        f", largest {c.largest_mark_diff_pct:.4f} % ({c.largest_mark_diff_symbol})"
        if c.largest_mark_diff_pct is not None
        else ""
    )
    failed = f", {c.failed_rounds} failed (last: {c.last_error})" if c.failed_rounds else ""
    lines = [
        f"compare      {c.rounds} round(s){failed}: funding {c.funding_matched:,}/"
        f"{c.funding_compared:,} exact, mark {c.mark_matched:,}/{c.mark_compared:,} within "
        f"tolerance{largest}; {c.stale_skips} stale entries not compared",
        f"mismatched   {name_list(c.mismatched_symbols)}",
    ]
    lines += [f"  {symbol}: {finding}" for symbol, finding in sorted(c.mismatches.items())]
    lines += [
        f"coverage     {cov.rounds} check(s) of {cov.listed} TRADING perpetuals "
        f"({cov.skipped_rounds} skipped); missing from the file: {name_list(cov.missing_symbols)}; "
        f"stale in the file: {name_list(cov.stale_symbols)}",
        f"REST weight  {c.rest_weight:,} over the window{_rest_rate(r.rest_weight_per_min)}",
    ]
    return lines


def _rest_rate(per_minute: float | None) -> str:
    if per_minute is None:
        return ""
    share = 100 * per_minute / WEIGHT_BUDGET_PER_MINUTE
    return f" ({per_minute:.1f}/min, {share:.2f} % of the {WEIGHT_BUDGET_PER_MINUTE:,}/min budget)"


def _bot_lines(r: AuditReport) -> list[str]:
    if r.bot_error is not None:
        return [f"bot          REST fallbacks by the bot: unknown ({r.bot_error})"]
    if r.bot is None:
        return []
    b = r.bot
    age = format_age((r.generated_at - b.updated_at) / 1000)
    # The bot counts from its own start: restart it when the watch begins, and this is the
    # watch period.
    since = format_span((b.updated_at - b.started_at) / 1000)
    return [
        f"bot          REST fallbacks by the bot: {b.rest:,} in {since} ({b.mode}; "
        f"state file {b.websocket:,}, unavailable {b.unavailable:,}, "
        f"REST errors {b.rest_errors:,}; stats {age} old)"
    ]


def verdict_line(r: AuditReport) -> str:
    """The verdict and the rules that decided it, in words."""
    if r.verdict == SAFE:
        return (
            f"SAFE to drop the REST fallback: {format_age(r.observed_s)} observed, "
            f"{percent(r.availability_pct)} available, no mismatch, no missing or stale symbol"
        )
    return f"{r.verdict}: " + "; ".join(r.reasons)
