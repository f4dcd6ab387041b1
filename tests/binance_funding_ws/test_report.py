"""The audit report (:mod:`binance_funding_ws.report`): outages, availability and causes,
coverage and compare rounds, the verdict, its text and JSON, and samples that claim the
impossible.

The timelines here are written by hand (tests/samples.py), one sample a second, so that every
figure the report gives can be checked exactly; tests/binance_funding_ws/tools/test_audit.py
produces them from a real daemon instead.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from binance_funding_ws.botstats import BotStats, encode_bot_stats
from binance_funding_ws.compare import ExchangeSymbol
from binance_funding_ws.history import CompareRound, Sample, parse_lines, record_coverage
from binance_funding_ws.report import (
    NOT_SAFE,
    NOT_YET,
    SAFE,
    build_report,
    decode_bot_stats,
    render_text,
)
from factories import document, mark
from samples import DAY_MS, T0, bad, clean_day, counters, good, missing, round_


def report_of(samples, **options):
    settings = dict(
        history="audit.jsonl",
        now=samples[-1].at + 500,
        since_s=86400.0,
        max_age=2.0,
        min_period_s=10.0,
        slo_pct=99.9,
    )
    return build_report(samples, **(settings | options))


def timeline() -> list[Sample]:
    """40 s: a stall (3 samples), a missing file (2), a daemon killed and restarted (4)."""
    samples = [good(s) for s in range(10)]
    samples[2].compare = round_(2)
    stalled = counters(reconnects=1, stalls=1)  # counted when the daemon noticed
    samples += [bad(10), bad(11, state="stalled", counters=stalled)]
    samples += [bad(12, state="reconnecting", counters=stalled)]
    samples += [good(s, counters=counters(reconnects=1, stalls=1)) for s in range(13, 18)]
    samples[15].compare = round_(15, mismatched={"ETHUSDT": "funding rate 0.0001 vs 0.0099"})
    samples += [missing(18), missing(19)]
    samples += [good(s, counters=counters(reconnects=1, stalls=1)) for s in range(20, 25)]
    dead = counters(reconnects=1, stalls=1)  # what the killed daemon last wrote
    samples += [bad(s, daemon_alive=False, counters=dead) for s in (25, 26, 27)]
    samples += [bad(28, pid=200, state="connecting", last_message_age_s=None)]
    samples += [good(s, pid=200, counters=counters(reconnects=1)) for s in range(29, 40)]
    samples[30].compare = round_(30, missing=["GHOSTUSDT"])
    return samples


# -- durations ----------------------------------------------------------------------------


# -- the history format -------------------------------------------------------------------


# -- the report ---------------------------------------------------------------------------


def test_outages_availability_and_causes_of_a_known_timeline():
    report = report_of(timeline())
    causes = [(o.cause, o.duration_s) for o in report.outages]
    assert causes == [("stalled", 3.0), ("file missing", 2.0), ("daemon down", 4.0)]
    assert [o.start - T0 for o in report.outages] == [10_000, 18_000, 25_000]
    assert report.samples == 40 and report.window_s == 39.0 and not report.gaps
    assert report.availability_pct == pytest.approx(100 * 31 / 40)
    assert report.restarts == 1 and report.reconnects == 2 and report.stalls == 1


def test_compare_and_coverage_name_every_symbol_of_the_window():
    report = report_of(timeline())
    c = report.compare
    assert (c.rounds, c.funding_matched, c.funding_compared) == (3, 45, 45)
    assert c.mismatched_symbols == ["ETHUSDT"] and "0.0099" in c.mismatches["ETHUSDT"]
    assert report.coverage.missing_symbols == ["GHOSTUSDT"]
    assert report.verdict == NOT_SAFE and report.exit_code == 1
    assert [reason.split()[0] for reason in report.reasons] == ["availability", "1", "1"]


def test_the_last_outage_is_open_while_it_lasts():
    samples = [good(0), good(1), bad(2), bad(3, state="stalled")]
    (outage,) = report_of(samples).outages
    assert outage.end is None and outage.duration_s == 1.0 and outage.cause == "stalled"


@pytest.mark.parametrize(
    ("failing", "after", "cause"),
    [
        ([bad(1, daemon_alive=None)], good(2), "stale"),  # silent, the daemon's fate unknown
        ([bad(1), bad(2, state="stalled")], good(3), "stalled"),  # noticed later: stalled
        ([bad(1, state="stopped")], good(2, pid=300), "daemon down"),
        ([bad(1, write_failing=True)], good(2), "write errors"),
        ([bad(1)], good(2, counters=counters(write_errors=3)), "write errors"),  # seen after
        ([bad(1)], good(2, pid=300), "daemon down"),  # a restart across it says it all
    ],
)
def test_the_most_telling_cause_names_the_outage(failing, after, cause):
    (outage,) = report_of([good(0), *failing, after]).outages
    assert outage.cause == cause


def test_sampling_gaps_are_reported_and_not_counted_as_observed():
    samples = [good(s) for s in range(5)] + [good(s) for s in range(65, 70)]
    report = report_of(samples, min_period_s=30)
    (gap,) = report.gaps
    # Each sample vouches for its interval (1 s here): 69 s + 1 s, less the 61 s gap.
    assert gap.duration_s == 61.0 and report.window_s == 69.0 and report.observed_s == 9.0
    assert report.verdict == NOT_YET and "observed 9.0 s of the 30 s required" in report.reasons[0]


def test_a_window_sampled_end_to_end_is_observed_in_full():
    """--since 24h --min-period 24h must be reachable: 30 samples a second apart in a 30 s
    window are 30 s observed, not 29 s (first to last)."""
    report = report_of([good(s) for s in range(30)], min_period_s=30)
    assert report.window_s == 29.0 and report.observed_s == 30.0
    assert not any("observed" in reason for reason in report.reasons)


def test_data_age_percentiles():
    ages = [0.1 * n for n in range(1, 101)]
    samples = [good(n, last_message_age_s=age) for n, age in enumerate(ages)]
    age = report_of(samples, max_age=20.0).data_age
    assert (age.p50_s, age.p99_s, age.max_s) == pytest.approx((5.0, 9.9, 10.0))


def test_verdicts():
    clean = [good(s) for s in range(20)]
    clean[5].compare = round_(5)
    assert report_of(clean).verdict == SAFE
    assert report_of(clean, min_period_s=3600).verdict == NOT_YET
    no_round = [good(s) for s in range(20)]
    assert report_of(no_round).reasons == [
        "no compare round completed", "no coverage check completed"
    ]  # fmt: skip
    failed = [good(s) for s in range(20)]
    failed[5].compare = round_(5, error="cannot reach https://fapi.binance.com: timed out")
    assert report_of(failed).verdict == NOT_YET and report_of(failed).compare.failed_rounds == 1
    assert report_of(clean, now=clean[-1].at + DAY_MS).verdict == NOT_YET  # window is empty


def test_json_has_the_keys_scripts_use():
    report = json.loads(msgspec.json.encode(report_of(timeline())))
    for key in ("window_s", "samples", "availability_pct", "restarts", "verdict", "outages"):
        assert key in report
    assert set(report["outages"][0]) >= {"start", "end", "duration_s", "cause"}
    compare = report["compare"]
    for key in ("rounds", "funding_matched", "funding_compared", "mark_matched", "mark_compared"):
        assert isinstance(compare[key], int)
    assert compare["mismatched_symbols"] == ["ETHUSDT"]
    assert report["coverage"]["missing_symbols"] == ["GHOSTUSDT"]


def test_text_is_one_printable_line_per_fact():
    samples = timeline()
    samples[31].compare = round_(31, mismatched={"EVIL\x1b[2JUSDT": "funding\nrate"})
    text = render_text(report_of(samples))
    assert "\x1b" not in text and "NOT_SAFE" in text.splitlines()[0]
    assert "EVILUSDT: funding rate" in text  # the escape removed, the name kept
    assert "daemon down" in text and "GHOSTUSDT" in text


def test_bot_stats_line():
    """The file the bot's FundingSource writes (botstats.encode_bot_stats), as the report
    reads it: counts since the bot started."""
    written = BotStats(
        updated_at=T0 + 39_000, started_at=T0 + 39_000 - 86_400_000, mode="fallback",
        max_age_s=30.0, websocket=86_000, rest=3, unavailable=0, rest_errors=1,
        rest_requests=4, rest_skipped=0, invalid_symbols=0, file_errors=0,
        top_rest_symbols={"NEWUSDT": 3},
    )  # fmt: skip
    stats = decode_bot_stats(encode_bot_stats(written))
    text = render_text(report_of(timeline(), bot=stats))
    assert "REST fallbacks by the bot: 3 in 24 h (fallback;" in text
    with pytest.raises(ValueError, match="not a bot stats object"):
        decode_bot_stats(b'{"rest": 3}')


# -- metrics ------------------------------------------------------------------------------


# -- the command --------------------------------------------------------------------------


def test_a_flapping_feed_shows_its_longest_outages():
    samples = [good(0)]
    for n in range(30):  # 30 outages, the n-th lasting n + 1 samples
        start = len(samples)
        samples += [bad(start + k) for k in range(n + 1)] + [good(start + n + 1)]
    report = report_of(samples)
    assert len(report.outages) == 30
    shown = [line for line in render_text(report).splitlines() if line.startswith("    20")]
    assert len(shown) == 20 and "for 30 s" in shown[-1] and "for 11 s" in shown[0]
    assert "... and 10 shorter (--json lists all)" in render_text(report)


def test_a_hand_edited_history_cannot_crash_the_text():
    samples = [good(0), good(1, at=10**30)]  # past any calendar
    text = render_text(report_of(samples, now=10**30 + 1000, since_s=10**30))
    assert f"epoch ms {10**30} (invalid)" in text
    assert parse_lines([b'{"v":1,"at":-5,"interval_s":1,"max_age_s":1,"readable":false,'
                        b'"verdict":"UNREADABLE"}\n']).skipped == 1  # fmt: skip


# -- the history as evidence ---------------------------------------------------------------


def test_coverage_means_fresh_in_the_file():
    """A TRADING perpetual whose entry is in the file but stale is no more covered than a
    missing one: named in the round, in the report, and the verdict is not SAFE."""
    now = 3 * 3600 * 1000 + 10_000
    doc = document(funding=[mark("BTCUSDT", now - 500), mark("OLDUSDT", now - 3 * 3600 * 1000)])
    listed = [
        ExchangeSymbol("BTCUSDT", "TRADING", "PERPETUAL"),
        ExchangeSymbol("OLDUSDT", "TRADING", "PERPETUAL"),
        ExchangeSymbol("NEWUSDT", "TRADING", "PERPETUAL"),
        ExchangeSymbol("GONEUSDT", "SETTLING", "PERPETUAL"),
    ]
    round_found = record_coverage(
        CompareRound(started_at=now, duration_s=0.1), listed, doc, now, 30.0
    )
    assert (round_found.listed, round_found.missing, round_found.stale_in_file) == (
        3, ["NEWUSDT"], ["OLDUSDT"]
    )  # fmt: skip
    # A silent feed (a stall, a killed daemon) is an outage, not a coverage gap: not judged.
    silent = record_coverage(
        CompareRound(started_at=now, duration_s=0.1), listed, doc, now + 60_000, 30.0
    )
    assert silent.coverage_error is not None and silent.stale_in_file == silent.missing == []
    # An entry dated ahead does not set the pace (nor count as fresh).
    ahead = document(funding=[mark("BTCUSDT", now - 500), mark("OLDUSDT", now + 10**9)])
    paced = record_coverage(CompareRound(started_at=now, duration_s=0.1), listed, ahead, now, 30.0)
    assert paced.stale_in_file == ["OLDUSDT"]
    report = report_of(clean_day(stale_in_file=["OLDUSDT"]))
    assert report.verdict == NOT_SAFE and report.coverage.stale_symbols == ["OLDUSDT"]
    assert report.reasons == [
        "1 TRADING perpetual(s) stale in the file (no fresh entry for the bot): OLDUSDT"
    ]
    assert "stale in the file: OLDUSDT" in render_text(report)
    assert report_of(clean_day()).verdict == SAFE


FORGED = [
    ({"interval_s": 86400.0}, "interval_s 86400 out of range"),
    ({"interval_s": 600.0}, "interval_s 600 over 4 times the usual 1 s"),
    ({"max_age_s": 0.0}, "max_age_s 0 out of range"),
    ({"max_age_s": 1e300}, "max_age_s 1e+300 out of range"),
    ({"last_message_age_s": 1e306}, "last_message_age_s 1e+306 out of range"),
    ({"last_write_age_s": float("nan")}, "last_write_age_s nan out of range"),
    ({"counters": counters(reconnects=-5)}, "a count out of range"),
    ({"stale_funding": -1}, "a count out of range"),
    ({"compare": round_(30, retry_at=T0 + 10 * DAY_MS)}, "a compare round's retry_at out of range"),
    ({"compare": round_(30, weight=10**12)}, "a compare round's weight 1000000000000 out of range"),
    ({"compare": round_(30, max_mark_diff_pct=float("inf"))}, "max_mark_diff_pct is not a number"),
]


@pytest.mark.parametrize(("forged", "reason"), FORGED)
def test_a_sample_claiming_the_impossible_is_refused_and_counted(forged, reason):
    """One hand-edited line among honest ones: refused, counted, named; never evidence, and
    never a crash of the text."""
    samples = [bad(s) for s in range(60)]  # an hour of stale data: 0 % available
    samples[30] = good(30, **forged)
    report = report_of(samples)
    assert report.refused_samples == 1 and reason in report.first_refusal
    assert report.samples == 59 and report.availability_pct == 0.0
    assert report.verdict == NOT_SAFE
    assert "refused      1 sample(s) with claims out of range" in render_text(report)


def test_one_long_interval_cannot_vouch_for_a_day_nor_a_future_threshold_for_the_window():
    samples = [good(s) for s in range(60)]
    samples[5].compare = round_(5)
    forged = good(60, interval_s=86400.0)  # "I watched for a day"
    report = report_of([*samples, forged], min_period_s=3600)
    assert report.verdict == NOT_YET and report.observed_s == 60.0
    # A stale day, and one line ahead of the clock claiming any data is fresh enough: the
    # report's threshold stays the audit's (no --max-age given).
    stale = [bad(s) for s in range(60)]
    ahead = good(70, max_age_s=1e300, last_message_age_s=5.0)
    report = report_of([*stale, ahead], max_age=None, now=stale[-1].at + 500)
    assert report.max_age_s == 2.0 and report.availability_pct == 0.0


def test_the_bot_line_is_balanced_and_refuses_negative_counts():
    written = BotStats(
        updated_at=T0 + 39_000, started_at=T0 + 39_000 - 86_400_000, mode="fallback",
        max_age_s=30.0, websocket=86_000, rest=3, unavailable=0, rest_errors=1,
        rest_requests=4, rest_skipped=0, invalid_symbols=0, file_errors=0,
        top_rest_symbols={"NEWUSDT": 3},
    )  # fmt: skip
    text = render_text(report_of(timeline(), bot=decode_bot_stats(encode_bot_stats(written))))
    (line,) = [line for line in text.splitlines() if line.startswith("  bot")]
    assert line.count("(") == line.count(")") == 1, line
    assert line.endswith(
        "(fallback; state file 86,000, unavailable 0, REST errors 1; stats 0.5 s old)"
    )
    negative = encode_bot_stats(msgspec.structs.replace(written, rest=-3))
    with pytest.raises(ValueError, match="negative count: rest"):
        decode_bot_stats(negative)
