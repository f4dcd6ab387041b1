"""The pure rules of notifications (binance_funding_ws.notices): what is said, when, once;
the hourly cap; the outbox; URL masking. Time is the samples' own clock: no waiting."""

from __future__ import annotations

import calendar
import time

import pytest

from binance_funding_ws import notices
from binance_funding_ws.history import CompareRound, Sample
from binance_funding_ws.notices import NoticeState, Outbox
from binance_funding_ws.report import build_report

HOST = "volspike-do"
MIN = 60_000  # ms
T0 = calendar.timegm((2026, 12, 6, 7, 0, 0)) * 1000


def healthy(at: int, **extra: object) -> Sample:
    return Sample(at=at, interval_s=60, max_age_s=60, readable=True, verdict="HEALTHY",
                  state="connected", last_message_age_s=0.5, **extra)  # fmt: skip


def stalled(at: int, age: float = 125.0, **extra: object) -> Sample:
    return Sample(at=at, interval_s=60, max_age_s=60, readable=True, verdict="DEGRADED",
                  state="stalled", last_message_age_s=age,
                  problems=["feed is stalled (for 2m 00s)"], **extra)  # fmt: skip


def missing(at: int) -> Sample:
    return Sample(at=at, interval_s=60, max_age_s=60, readable=False, verdict="UNREADABLE",
                  error="/run/x/state.json: no such file", error_kind="missing")  # fmt: skip


def said(state: NoticeState, sample: Sample, notify_after_s: float = 120) -> list[str]:
    found = notices.transitions(
        state, sample, host=HOST, notify_after_s=notify_after_s,
        state_file="/run/x/state.json", history="/var/lib/x/audit.jsonl",
    )  # fmt: skip
    return [m.title for m in found]


def test_degraded_is_said_once_after_notify_after_then_recovered_with_the_outage_length():
    state = NoticeState()
    assert said(state, healthy(T0)) == []
    assert said(state, stalled(T0 + MIN, age=65)) == []  # unhealthy for 0 s
    assert said(state, stalled(T0 + 2 * MIN, age=125)) == []  # 1 min < 2 min
    assert said(state, stalled(T0 + 3 * MIN, age=185)) == [
        f"DEGRADED {HOST}: stalled, data 3m 05s old"
    ]
    assert said(state, stalled(T0 + 4 * MIN)) == []  # once per outage
    assert said(state, healthy(T0 + 5 * MIN + 5000)) == [
        f"RECOVERED {HOST}: healthy again after 4m 05s (stalled)"
    ]
    assert said(state, healthy(T0 + 6 * MIN)) == []


def test_an_outage_shorter_than_notify_after_says_nothing_at_all():
    state = NoticeState()
    for at in (T0, T0 + MIN):
        said(state, stalled(at))
    assert said(state, healthy(T0 + 2 * MIN)) == []


def test_degraded_says_what_to_run_next_and_names_the_most_telling_cause():
    state = NoticeState()
    said(state, stalled(T0))
    sample = Sample(at=T0 + MIN, interval_s=60, max_age_s=60, readable=True, verdict="DEGRADED",
                    state="reconnecting", last_message_age_s=65.0)  # fmt: skip
    (m,) = notices.transitions(state, sample, host=HOST, notify_after_s=30, state_file="/s.json",
                               history="/h")  # fmt: skip
    assert m.title == f"DEGRADED {HOST}: stalled, data 1m 05s old"
    assert "Next: binance-funding-ws status --state-file /s.json" in m.body
    gone = NoticeState()
    (m,) = notices.transitions(gone, missing(T0), host=HOST, notify_after_s=0, state_file="/s",
                               history="/h")  # fmt: skip
    assert m.title.startswith(f"DEGRADED {HOST}: file missing, ") and "systemctl status" in m.body


def test_more_than_three_restarts_in_an_hour_is_said_once_until_they_calm_down():
    state = NoticeState()
    assert said(state, healthy(T0, restarts_seen=10)) == []  # the count before: a baseline
    titles = [said(state, healthy(T0 + n * MIN, restarts_seen=10 + n)) for n in range(1, 6)]
    assert titles[:3] == [[], [], []]
    assert titles[3] == [f"RESTARTS {HOST}: the daemon restarted 4 times in an hour"]
    assert titles[4] == []  # said once
    assert said(state, healthy(T0 + 70 * MIN, restarts_seen=15)) == []  # the hour passed
    for n in range(4):
        found = said(state, healthy(T0 + (71 + n) * MIN, restarts_seen=16 + n))
    assert found == [f"RESTARTS {HOST}: the daemon restarted 4 times in an hour"]


def compared(at: int, **fields: object) -> Sample:
    return healthy(at, compare=CompareRound(started_at=at, duration_s=0.5, **fields))


def test_a_mismatch_is_said_naming_the_symbols_and_again_only_for_new_ones():
    state = NoticeState()
    diff = {"ETHUSDT": "funding_rate 0.0001 vs REST 0.0099"}
    assert said(state, compared(T0, mismatched=diff)) == [
        f"MISMATCH {HOST}: ETHUSDT differ from REST"
    ]
    assert said(state, compared(T0 + 5 * MIN, mismatched=diff)) == []
    assert said(state, compared(T0 + 10 * MIN, error="REST: HTTP 503")) == []  # no verdict
    more = {**diff, "BTCUSDT": "mark 1 % off"}
    assert said(state, compared(T0 + 15 * MIN, mismatched=more)) == [
        f"MISMATCH {HOST}: BTCUSDT, ETHUSDT differ from REST"
    ]
    assert said(state, compared(T0 + 20 * MIN)) == []  # a clean round clears it ...
    assert said(state, compared(T0 + 25 * MIN, mismatched=diff)) != []  # ... so it is news again


def test_a_symbol_missing_for_20_minutes_is_said_once_and_unjudged_rounds_keep_the_clock():
    state = NoticeState()
    for minutes in (0, 5, 10, 15):
        assert said(state, compared(T0 + minutes * MIN, missing=["GHOSTUSDT"])) == []
    assert said(state, compared(T0 + 17 * MIN, coverage_error="not connected long")) == []
    assert said(state, compared(T0 + 20 * MIN, missing=["GHOSTUSDT"])) == [
        f"COVERAGE {HOST}: GHOSTUSDT missing for 20m 00s"
    ]
    assert said(state, compared(T0 + 25 * MIN, missing=["GHOSTUSDT"])) == []
    assert said(state, compared(T0 + 30 * MIN, missing=[])) == []  # listed again: cleared
    assert said(state, compared(T0 + 35 * MIN, missing=["GHOSTUSDT"])) == []  # a new clock


def flap(state: NoticeState, start: int, cycles: int) -> list[notices.Message]:
    """A feed that fails for 3 min and recovers, ``cycles`` times; what the cap lets out."""
    sent = []
    at = start
    for _ in range(cycles):
        for sample in (stalled(at), stalled(at + 3 * MIN), healthy(at + 4 * MIN)):
            found = notices.transitions(state, sample, host=HOST, notify_after_s=120,
                                        state_file="/s", history="/h")  # fmt: skip
            sent += notices.admit(state, found, sample.at, HOST)[0]
        at += 5 * MIN
    return sent


def test_a_flapping_feed_is_capped_per_hour_and_the_next_message_says_how_many_folded():
    state = NoticeState()
    sent = flap(state, T0, cycles=10)  # 20 transitions in 50 minutes
    assert len(sent) == notices.MAX_PER_HOUR
    assert sum(state.folded.values()) == 20 - notices.MAX_PER_HOUR
    later = flap(state, T0 + 2 * 3600_000, cycles=1)
    assert later[0].title.endswith(f"(+{20 - notices.MAX_PER_HOUR} folded)")
    assert "7 DEGRADED, 7 RECOVERED" in later[0].body
    assert state.folded == {}


def test_when_the_cap_hid_a_recovery_the_person_is_told_once_the_cap_allows():
    state = NoticeState()
    flap(state, T0, cycles=3)  # 6 messages: the cap is full
    flap(state, T0 + 15 * MIN, cycles=1)  # DEGRADED and RECOVERED folded
    assert state.believed_degraded is False  # the last one sent was a RECOVERED
    sent = flap(state, T0 + 30 * MIN, cycles=1)
    assert sent == []
    # A DEGRADED folded while the person believes all is well, and it is not over:
    said(state, stalled(T0 + 40 * MIN))
    found = notices.transitions(state, stalled(T0 + 43 * MIN), host=HOST, notify_after_s=120,
                                state_file="/s", history="/h")  # fmt: skip
    assert notices.admit(state, found, T0 + 43 * MIN, HOST)[0] == []
    folded = sum(state.folded.values())
    for minutes in (44, 45, 46):  # the cap is still full: nothing more is folded meanwhile
        assert notices.admit(state, [], T0 + minutes * MIN, HOST) == ([], 0)
    assert sum(state.folded.values()) == folded
    (catch_up,) = notices.admit(state, [], T0 + 61 * MIN + 3 * MIN, HOST)[0]
    assert catch_up.title == f"DEGRADED {HOST}: stalled (still) (+{folded} folded)"


def test_the_outbox_keeps_order_bounds_itself_and_counts_what_it_dropped():
    box = Outbox()
    first = [notices.message("DEGRADED", f"m{n}", "", T0) for n in range(3)]
    assert notices.enqueue(box, first, ["a", "b"]) == 0
    assert [m.seq for m in notices.due_for(box, "a")] == [1, 2, 3]
    notices.settle(box, 1, "a", None)
    notices.settle(box, 1, "b", "HTTP 500")
    assert [m.seq for m in notices.due_for(box, "a")] == [2, 3]
    assert [m.seq for m in notices.due_for(box, "b")] == [1, 2, 3]
    assert box.messages[0].last_error == "HTTP 500"
    notices.settle(box, 1, "b", None)
    assert [m.seq for m in box.messages] == [2, 3]
    notices.forget_services(box, ["b"])  # "a" was removed from the notify file
    assert all(m.pending == ["b"] for m in box.messages)
    many = [notices.message("MISMATCH", f"x{n}", "", T0) for n in range(notices.MAX_OUTBOX)]
    assert notices.enqueue(box, many, ["b"]) == 2
    assert box.dropped == 2 and len(box.messages) == notices.MAX_OUTBOX
    assert box.messages[0].title == "x0"  # the oldest went first


def test_a_long_title_or_body_is_cut_to_fit_the_services():
    m = notices.message("MISMATCH", "T" * 1000, "B" * 10_000, T0)
    assert len(m.title) == notices.MAX_TITLE and len(m.body) == notices.MAX_BODY


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://127.0.0.1:8080/hook/s3cret", "json://127.0.0.1"),
        ("jsons://user:pw@hooks.example.com/a/b?token=s3cret", "jsons://hooks.example.com"),
        ("tgram://123456789:AAE-s3cret/987654", "tgram://…"),
        ("discord://112233/s3cret-token", "discord://…"),
        ("https://discord.com/api/webhooks/112233/s3cret", "https://discord.com"),
        ("ntfy://s3cret-topic", "ntfy://…"),
        ("ntfys://ntfy.sh/s3cret-topic", "ntfys://ntfy.sh"),
        ("mailtos://me:s3cret@smtp.example.org?to=x@y.z", "mailtos://smtp.example.org"),
        ("slack://T1/B2/s3cret", "slack://…"),
        ("json://[::1]:80/s3cret", "json://[::1]"),
        ("s3cret", "… (not a URL)"),
    ],
)
def test_a_url_is_shown_as_scheme_and_host_only(url, shown):
    assert notices.mask_url(url) == shown
    rest = url.partition("://")[2]
    pieces = " ".join(rest.replace("/", " ").replace("?", " ").split())
    text = f"failed to send to {url}: {rest} ({pieces})"
    assert "s3cret" not in notices.redact(text, [url])


def test_a_notify_file_line_that_is_not_a_url_is_named_without_its_text():
    text = "# comment\n\njson://127.0.0.1/a\n  tgram://x/y  \n"
    assert notices.parse_notify_lines(text, "f") == [(3, "json://127.0.0.1/a"), (4, "tgram://x/y")]
    with pytest.raises(notices.NotifyFileError, match=r"^f line 2: not an Apprise URL") as err:
        notices.parse_notify_lines("json://h/a\nmy-s3cret token\n", "f")
    assert "s3cret" not in str(err.value)


def test_the_digest_is_due_once_a_day_from_its_time_on():
    state = NoticeState()
    at = notices.parse_clock("08:00")
    assert not notices.digest_due(state, T0 + 59 * MIN, at)  # 07:59
    assert notices.digest_due(state, T0 + 60 * MIN, at)  # 08:00
    state.digest_day = notices.utc_day(T0 + 60 * MIN)
    assert not notices.digest_due(state, T0 + 16 * 60 * MIN, at)  # 23:00 the same day
    assert notices.digest_due(state, T0 + 25 * 60 * MIN, at)  # 08:00 the next day
    for bad in ("8", "24:00", "07:60", "noon"):
        with pytest.raises(ValueError, match="HH:MM"):
            notices.parse_clock(bad)


def test_the_report_message_is_the_verdict_and_says_safe_in_words_only_when_asked():
    window = [compared(T0 + n * MIN, compared=10, listed=10) for n in range(24 * 60 + 1)]
    for sample in window:
        sample.compare.funding_matched = sample.compare.mark_matched = 10
    report = build_report(window, history="/h", now=window[-1].at, since_s=86400, max_age=60,
                          min_period_s=86400, slo_pct=99.9)  # fmt: skip
    assert report.verdict == "SAFE", report.reasons
    first = notices.report_message(report, HOST, first_safe=True)
    assert first.title == f"REPORT {HOST}: SAFE, 100.000 % available"
    assert "may now drop its REST fallback" in first.body and "verdict      SAFE" in first.body
    again = notices.report_message(report, HOST, first_safe=False)
    assert "may now drop" not in again.body


def test_utc_day_is_the_utc_date():
    assert notices.utc_day(T0) == time.strftime("%Y-%m-%d", time.gmtime(T0 / 1000)) == "2026-12-06"
