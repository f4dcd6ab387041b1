"""The audit history as the monitor shows it (:mod:`funding_monitor.history_view`): the report of
the last 24 hours, hand-edited lines refused, text folded and cleaned, the charts."""

from __future__ import annotations

from binance_funding_ws.report import AuditReport
from funding_monitor.history_view import (
    CHART_BUCKETS,
    HistoryOutcome,
    axis,
    bar_rows,
    columns,
    compare_text,
    headline,
    once_lines,
    outage_rows,
    outcome_of,
    report_lines,
    silence,
)
from monitor_helpers import FIXED_NOW, MISMATCH, NOW_MS, audit_samples, hand_edited


def outcome(samples=None, **options):
    samples = audit_samples() if samples is None else samples
    settings = dict(skipped=0, seen=len(samples), where="volspike-do:/h", now_ms=NOW_MS)
    return outcome_of(samples, **(settings | options))


def test_history_outcome_is_the_report_of_the_last_24_hours():
    found = outcome()
    report = found.report
    assert isinstance(report, AuditReport) and report.verdict == "NOT_SAFE"
    # 24 h a minute apart, less an hour without the audit; 7 of them unavailable.
    assert (report.samples, len(report.gaps), report.gaps[0].duration_s) == (1380, 1, 3660.0)
    assert [(o.cause, o.duration_s) for o in report.outages] == [
        ("stalled", 300.0),
        ("file missing", 120.0),
    ]
    assert headline(report) == "99.493 % available · outages 2 (longest 5m 00s), 7m 00s in all"
    assert found.last_compare is not None and found.last_compare.round.mismatched == MISMATCH
    assert compare_text(found.last_compare) == (
        "05:59 UTC, funding 14/15 · mark 15/15 · mismatched ETHUSDT"
    )
    assert len(found.buckets) == CHART_BUCKETS
    assert sum(bucket.samples for bucket in found.buckets) == 1380
    empty = [n for n, bucket in enumerate(found.buckets) if not bucket.samples]
    assert len(empty) == 12, "the hour without the audit: 12 buckets of 5 minutes"
    assert {found.buckets[n].availability_pct for n in range(CHART_BUCKETS)} - {100.0, None}
    assert outage_rows(report)[0] == (
        "11-24 02:58:30", "11-24 03:00:30", "2m 00s", "file missing",
        "/home/trader/.funding_state.json: no such file",
    )  # fmt: skip
    lines = report_lines(found)
    assert lines[-2] == (
        "verdict      NOT_SAFE: availability 99.493 % < SLO 99.9 %; "
        "1 symbol(s) differed from REST: ETHUSDT"
    )
    for expected in (
        "gaps         1 (audit not running), 1h 01m in all",
        "data age     p50 0.8 s, p99 0.8 s, max 3m 20s",
        "outages      2 (longest 5m 00s), 7m 00s in all",
        "coverage     276 check(s) of 15 TRADING perpetuals (0 skipped); missing from the file: "
        "none; stale in the file: none",
        "  ETHUSDT: funding rate 0.00010000 vs 0.00990000",
    ):
        assert expected in lines
    assert once_lines(found) == [
        "  audit 24 h  NOT_SAFE: availability 99.493 % < SLO 99.9 %; 1 symbol(s) differed "
        "from REST: ETHUSDT",
        "  history     99.493 % available, outages 2 (longest 5m 00s), 7m 00s in all; last "
        "compare 05:59 UTC, "
        "funding 14/15, mark 15/15, mismatched ETHUSDT",
    ]


def test_history_outcome_safe_empty_missing_and_not_a_history():
    safe = outcome(audit_samples(outage=False, mismatch=False, gap=False)).report
    assert safe is not None and safe.verdict == "SAFE" and safe.availability_pct == 100.0
    assert headline(safe) == "100.000 % available · outages none"
    # A day sampled every minute is a day observed (each sample vouches for its minute); half
    # a day is not.
    assert safe.observed_s == 86_400.0 and safe.min_period_s == 86_400.0
    short = outcome(audit_samples(count=720, outage=False, mismatch=False, gap=False)).report
    assert short.verdict == "NOT_YET" and short.reasons == ["observed 12h 00m of the 24 h required"]
    empty = outcome([], seen=0)
    assert empty.report is not None and empty.report.verdict == "NOT_YET"
    assert once_lines(empty) == [
        "  audit 24 h  NOT_YET: no sample in the window (is the audit running?); no compare "
        "round completed; no coverage check completed"
    ]
    garbage = outcome([], skipped=3, seen=0)
    assert garbage.report is None and garbage.problem() == (
        "audit history unreadable: volspike-do:/h: no audit sample in 3 line(s)"
    )
    missing = HistoryOutcome("volspike-do:/var/lib/x/audit.jsonl", missing=True)
    assert once_lines(missing) == [
        "  audit 24 h  no audit history (funding_audit_enabled?) at volspike-do:/var/lib/x/"
        "audit.jsonl"
    ]
    assert once_lines(None) == [], "the history is off: nothing said"
    running = outcome(audit_samples(count=60))
    assert running.interval_s == 60.0 and silence(running) is None
    stopped = outcome(audit_samples(FIXED_NOW - 600, count=60))  # the timer stopped 10 min ago
    assert silence(stopped) == 630.0


def test_a_hand_edited_history_is_refused_and_counted_not_a_crash():
    found = outcome(hand_edited(audit_samples(outage=False, mismatch=False, gap=False)))
    report = found.report
    assert report is not None and report.refused_samples == 3
    assert report.max_age_s == 60.0, "the threshold of the last sample that is evidence"
    assert report.samples == 1437 and report.verdict == "NOT_YET", "the refused left holes"
    assert sum(bucket.samples for bucket in found.buckets) == 1437, "refused: not charted"
    assert (
        "refused      3 sample(s) with claims out of range, not counted (first: interval_s "
        "86400 out of range)" in report_lines(found)
    )


def test_history_text_from_the_host_is_folded_and_cleaned():
    samples = audit_samples(count=30, outage=False, gap=False)
    samples[-1].compare.mismatched = {"[/]\x1b[2JX": "a\x1b]0;t\x07b\nc"}
    samples[-1].compare.error = None
    samples[-2].problems = ["[link=file:///etc/passwd]p[/link]\x1b[31m"]
    samples[-2].readable = False
    found = outcome(samples, where="h:/a\x1b[2J")
    text = "\n".join([*report_lines(found), *once_lines(found), compare_text(found.last_compare)])
    assert "[/]X: ab c" in text and "mismatched [/]X" in text
    assert not any(char in text for char in "\x1b\x07"), "no terminal control"
    assert outage_rows(found.report)[0][4] == "[link=file:///etc/passwd]p[/link]"


def test_charts_columns_and_axis():
    # Rounded down (99 % is not 100 %), a sliver for 0 %, a dot for no sample.
    assert bar_rows([1.0, 0.99, 0.0, None, 0.5, 0.06], 2) == ["█▇    ", "██▁·█▁"]
    assert bar_rows([1.0, None], 1) == ["█·"]
    found = outcome()
    merged = columns(found.buckets, 24)  # an hour a column
    assert len(merged) == 24 and sum(c.samples for c in merged) == 1380
    assert columns(found.buckets, 1000) == list(found.buckets), "never more than the buckets"
    assert axis(40, NOW_MS - 86_400_000, NOW_MS) == "06:00 UTC      18:00 UTC             now"
    assert axis(13, NOW_MS - 86_400_000, NOW_MS) == "06:00 UTC now"
    assert axis(12, NOW_MS - 86_400_000, NOW_MS) == "         now", "no room: the end only"
