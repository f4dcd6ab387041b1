"""The audit history and its report: durations, JSON Lines parsing, rotation, the report's
arithmetic and verdict, the metrics text, and the ``report`` command's exit codes.

The timelines here are written by hand, one sample a second, so that every figure the report
gives can be checked exactly; tests/test_audit.py produces them from a real daemon instead.
"""

from __future__ import annotations

import argparse
import json
import re

import msgspec
import pytest

from binance_funding_ws.argtypes import seconds
from binance_funding_ws.botstats import BotStats, encode_bot_stats
from binance_funding_ws.clock import now_ms
from binance_funding_ws.compare import ExchangeSymbol
from binance_funding_ws.durations import format_span, parse_duration
from binance_funding_ws.health import Counters
from binance_funding_ws.history import (
    MAX_LINE_BYTES,
    OVERSIZED,
    CompareRound,
    Sample,
    bounded_lines,
    encode_sample,
    parse_lines,
    record_coverage,
)
from binance_funding_ws.metrics import (
    RollingAvailability,
    availability_metric,
    compare_metrics,
    render,
    sample_metrics,
)
from binance_funding_ws.report import (
    NOT_SAFE,
    NOT_YET,
    SAFE,
    build_report,
    decode_bot_stats,
    render_text,
)
from binance_funding_ws.tools.history import append, read_history, rotate, rotated
from daemon_helpers import run_cli
from factories import document, mark

T0 = 1_795_500_000_000  # epoch ms of the first sample
DAY_MS = 86_400_000


def counters(**changes) -> Counters:
    base = dict(messages=100, reconnects=0, stalls=0, rotations=0, errors=0, write_errors=0)
    return Counters(**(base | changes))


def when(second: float) -> dict:
    """The time fields of a sample ``second`` seconds after T0 (one a second, max age 2 s)."""
    return dict(at=T0 + int(second * 1000), interval_s=1.0, max_age_s=2.0)


def good(second: float, pid: int = 100, **changes) -> Sample:
    """A healthy sample."""
    fields = dict(
        **when(second),
        readable=True,
        verdict="HEALTHY",
        state="connected",
        last_message_age_s=0.3,
        last_write_age_s=0.2,
        pid=pid,
        started_at=pid * 10,
        daemon_alive=True,
        counters=counters(),
        funding_symbols=15,
        ticker_symbols=14,
    )
    return Sample(**(fields | changes))


def bad(second: float, **changes) -> Sample:
    """A sample of a silent feed: connected by its word, data 5 s old."""
    fields = dict(verdict="DEGRADED", problems=["no market data for 5.0 s"], last_message_age_s=5.0)
    return good(second, **(fields | changes))


def missing(second: float) -> Sample:
    error = "state.json: no such file (is the daemon running?)"
    return Sample(
        **when(second), readable=False, error=error, error_kind="missing", verdict="UNREADABLE",
        problems=[error],
    )  # fmt: skip


def round_(second: float, **changes) -> CompareRound:
    fields = dict(
        started_at=T0 + int(second * 1000),
        duration_s=0.1,
        compared=15,
        funding_matched=15,
        mark_matched=15,
        next_funding_matched=15,
        max_mark_diff_pct=0.001,
        max_mark_diff_symbol="BTCUSDT",
        listed=14,
        weight=11,
    )
    return CompareRound(**(fields | changes))


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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("15min", 900), ("24h", 86400), ("7d", 604800), ("3.0", 3.0),
     ("0.2", 0.2), (" 1.5h ", 5400), ("2D", 172800), (".5s", 0.5), ("1e3", 1000)],
)  # fmt: skip
def test_durations_as_people_write_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "nan", "inf", "1e999", "1h30m", "5 weeks", "s", "1..2"])
def test_not_durations(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_bounds_are_named_in_the_error():
    parse = seconds(0.1, 3600)
    assert parse("60m") == 3600
    with pytest.raises(argparse.ArgumentTypeError, match=r"between 0\.1 s and 60 min"):
        parse("2h")
    assert [format_span(s) for s in (86400, 604800, 900, 60, 0.2)] == [
        "24 h", "7 d", "15 min", "60 s", "0.2 s"
    ]  # fmt: skip


# -- the history format -------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_silently_and_a_bad_line_counted():
    lines = [encode_sample(good(0)), b"not json\n", encode_sample(good(1)), encode_sample(good(2))]
    lines[-1] = lines[-1][:40]  # the writer died mid-append
    parsed = parse_lines(lines)
    assert [s.at for s in parsed.samples] == [T0, T0 + 1000] and parsed.skipped == 1


def test_unknown_keys_are_ignored_and_a_newer_version_is_skipped():
    future = json.loads(encode_sample(good(0))) | {"new_field": [1, 2]}
    newer = json.loads(encode_sample(good(1))) | {"v": 2}
    parsed = parse_lines([json.dumps(future).encode() + b"\n", json.dumps(newer).encode() + b"\n"])
    assert len(parsed.samples) == 1 and parsed.skipped == 1


def test_append_ends_a_torn_line_so_the_next_sample_survives(tmp_path):
    history = tmp_path / "audit.jsonl"
    history.write_bytes(encode_sample(good(0)) + encode_sample(good(1))[:30])  # a crash
    append(history, encode_sample(good(2)))
    parsed = read_history(history)
    assert [s.at for s in parsed.samples] == [T0, T0 + 2000] and parsed.skipped == 1


def test_rotation_keeps_the_last_day_and_drops_what_is_older_than_keep(tmp_path):
    history = tmp_path / "audit.jsonl"
    for day in range(10):  # ten days, one sample an hour, rotated as the audit would
        for hour in range(24):
            now = T0 + day * DAY_MS + hour * 3_600_000
            rotate(history, now, keep_s=8 * 86400)
            append(history, encode_sample(good(day * 86400 + hour * 3600)))
    files = rotated(history)
    assert [f.name for f in files] == [f"audit.jsonl.{n}" for n in range(1, len(files) + 1)]
    samples = read_history(history).samples
    newest = samples[-1].at
    assert [s.at for s in samples] == sorted(s.at for s in samples)  # oldest file first
    assert newest - samples[0].at <= 9 * DAY_MS  # 8 days kept, plus the current file
    last_day = [s for s in samples if s.at > newest - DAY_MS]
    assert len(last_day) == 24  # every hour of the last 24 h, across the rotation


def test_read_history_since_skips_older_files_and_samples(tmp_path):
    history = tmp_path / "audit.jsonl"
    for second in range(5):
        append(history, encode_sample(good(second)))
    parsed = read_history(history, since=T0 + 3000)
    assert [s.at for s in parsed.samples] == [T0 + 3000, T0 + 4000] and parsed.older == 3


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

LINE = re.compile(r"^binance_funding_ws_[a-z0-9_]+ -?[0-9.e+-]+$")


def test_metrics_are_prometheus_text_without_timestamps():
    sample = good(0, counters=counters(reconnects=2, stalls=1), restarts_seen=3)
    metrics = [*sample_metrics(sample), *compare_metrics(round_(0)), availability_metric(0.999)]
    text = render(metrics)
    values = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(LINE.match(line) for line in values), values  # name and value: no timestamp
    found = dict(line.split() for line in values)
    assert found["binance_funding_ws_connected"] == "1"
    assert found["binance_funding_ws_reconnects_total"] == "2"
    assert found["binance_funding_ws_restarts_total"] == "3"
    assert found["binance_funding_ws_compare_match_ratio"] == "1.0"
    assert found["binance_funding_ws_availability_24h_ratio"] == "0.999"
    types = dict(re.findall(r"# TYPE (\S+) (\S+)", text))
    assert all(name.endswith("_total") == (kind == "counter") for name, kind in types.items())


def test_an_unreadable_file_exports_only_what_is_known():
    text = render([*sample_metrics(missing(0)), *compare_metrics(None)])
    assert "binance_funding_ws_state_file_readable 0" in text
    assert "binance_funding_ws_connected 0" in text
    assert "last_message_age_seconds" not in text and "funding_symbols" not in text


def test_rolling_availability_stays_bounded():
    rolling = RollingAvailability(max_age=2.0, window_s=3600)
    for second in range(0, 3 * 3600, 5):
        rolling.add(good(second) if second % 100 else bad(second))
    assert len(rolling._buckets) == 60  # a bucket a minute, an hour of them
    assert rolling.ratio() == pytest.approx(19 / 20, abs=0.01)


# -- the command --------------------------------------------------------------------------


def write_history(path, samples) -> None:
    path.write_bytes(b"".join(encode_sample(s) for s in samples))


def shifted(samples: list[Sample], shift_ms: int) -> list[Sample]:
    """``samples`` moved ``shift_ms`` later, their compare rounds with them (the command
    judges against the clock, and refuses a round that did not start near its sample)."""
    moved = []
    for s in samples:
        r = s.compare and msgspec.structs.replace(
            s.compare, started_at=s.compare.started_at + shift_ms
        )
        moved.append(msgspec.structs.replace(s, at=s.at + shift_ms, compare=r))
    return moved


def test_report_command_text_json_and_exit_codes(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = [good(s) for s in range(40)]
    samples[5].compare = round_(5)
    write_history(history, shifted(samples, now_ms() - 1000 - samples[-1].at))
    result = run_cli("report", "--history", str(history), "--min-period", "30s", "--max-age", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("binance-funding-ws report: SAFE")
    result = run_cli("report", "--history", str(history), "--min-period", "1h", "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["verdict"] == NOT_YET


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: p.write_text("garbage\nmore garbage\n"), "not a history"),
    ],
)
def test_an_unreadable_history_is_exit_2_in_one_line(tmp_path, make, fragment):
    history = tmp_path / "audit.jsonl"
    make(history)
    result = run_cli("report", "--history", str(history))
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("binance-funding-ws report: error:") and fragment in line
    result = run_cli("report", "--history", str(history), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["exit_code"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report", "--history", "h", "--since", "0"], "between 1 s and 400 d"),
        (["report", "--history", "h", "--since", "1h30m"], "not a duration"),
        (["report", "--history", "h", "--slo", "100.5"], "at most 100"),
        (["audit", "--history", "h", "--interval", "0.01"], "between 0.1 s and 60 min"),
        (["audit", "--history", "h", "--compare-every", "0.5"], "between 1 s and 24 h"),
        (["audit", "--history", "h", "--keep", "12h"], "between 24 h and 400 d"),
        (["audit", "--history", "h", "--metrics-file", "m.txt"], "must end in .prom"),
        (["audit"], "--history"),
    ],
)
def test_bad_arguments_exit_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1]


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


def clean_day(**changes) -> list[Sample]:
    samples = [good(s) for s in range(60)]
    samples[5].compare = round_(5, **changes)
    return samples


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


def test_an_old_history_line_without_the_stale_list_still_reads():
    line = encode_sample(clean_day()[5]).replace(b',"stale_in_file":[]', b"")
    assert b"stale_in_file" not in line
    (sample,) = parse_lines([line]).samples
    assert sample.compare.stale_in_file == []


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


def test_history_lines_are_read_with_a_size_cap():
    line = encode_sample(good(0))
    huge = b'{"v":1,"pad":"' + b"x" * (3 * MAX_LINE_BYTES) + b'"}\n'
    data = line + huge + line + b"y" * (2 * MAX_LINE_BYTES)  # and an endless torn last line
    stream = iter([data[i : i + 65536] for i in range(0, len(data), 65536)])
    lines = list(bounded_lines(lambda n: next(stream, b"")))
    assert lines[:3] == [line, OVERSIZED, line] and len(lines) == 4
    assert max(map(len, lines)) <= MAX_LINE_BYTES
    parsed = parse_lines(lines)
    assert (len(parsed.samples), parsed.skipped) == (2, 1), "the torn line is not counted"


def _history_of(tmp_path, lines: list[bytes]):
    history = tmp_path / "audit.jsonl"
    history.write_bytes(b"".join(lines))
    return history


def test_the_command_refuses_hand_edited_lines_in_one_line_and_never_crashes(tmp_path):
    """Each reproduction as a user would make it: edit a line of a real history by hand."""
    samples = shifted([bad(s) for s in range(60)], now_ms() - 1000 - bad(59).at)
    lines = [encode_sample(s) for s in samples]
    lines[10] = lines[10].replace(b'"last_message_age_s":5.0', b'"last_message_age_s":1e306')
    lines[20] = lines[20].replace(b'"max_age_s":2.0', b'"max_age_s":0')
    lines[30] = lines[30].replace(b'"interval_s":1.0', b'"interval_s":86400')
    ahead = msgspec.structs.replace(samples[-1], at=samples[-1].at + 3_600_000, max_age_s=1e300)
    history = _history_of(tmp_path, [*lines, encode_sample(ahead)])
    result = run_cli("report", "--history", str(history))
    assert result.returncode == 1 and result.stderr == "", result.stderr
    assert "NOT_SAFE" in result.stdout.splitlines()[0]
    assert "refused      3 sample(s) with claims out of range" in result.stdout
    assert "available    0.000 % of samples (connected, data at most 2 s old" in result.stdout
    result = run_cli("report", "--history", str(history), "--json")
    found = json.loads(result.stdout)
    assert (found["refused_samples"], found["samples"], found["availability_pct"]) == (3, 57, 0.0)


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
