"""funding-monitor on local state files: the pure core, the Textual UI (Pilot and snapshots)
and ``--once`` through the console script."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from monitor_helpers import (
    FIXED_NOW,
    MISMATCH,
    audit_samples,
    replace_in_file,
    run_in_terminal,
    wait_for,
    write_history,
    write_state,
)
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

import funding_monitor.app
from binance_funding_ws.health import Summary, stale_entries
from binance_funding_ws.history import encode_sample
from binance_funding_ws.report import AuditReport
from daemon_helpers import run_cli
from funding_monitor.app import MonitorApp
from funding_monitor.history_tail import MAX_HISTORY_BYTES, HistoryTail
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
from funding_monitor.hosts import Host
from funding_monitor.model import (
    HostView,
    PollResult,
    ServiceState,
    funding_rows,
    host_summary,
    parse_systemctl_show,
    select_rows,
)
from funding_monitor.panel import HostPanel
from funding_monitor.poller import Poller
from funding_monitor.safe import strip_control
from funding_monitor.screens import HelpScreen, HistoryScreen, JournalScreen
from funding_monitor.sources import MAX_STATE_BYTES, LocalSource, SourceError

MONITOR = [sys.executable, "-m", "funding_monitor"]


def make_app(*paths, size_clock: float = FIXED_NOW, history: Path | None = None) -> MonitorApp:
    pollers = [
        Poller(LocalSource(p), 0.2, clock=lambda: size_clock, history=history and str(history))
        for p in paths
    ]
    return MonitorApp(pollers, local=True, clock=lambda: size_clock)


async def first_poll(app: MonitorApp, pilot, polls: int = 1) -> None:
    """Wait until every host was polled ``polls`` times, and the screen redrawn."""
    await wait_for(pilot, lambda: all(host.view.polls >= polls for host in app.hosts),
                   f"poll {polls} of every host")  # fmt: skip
    await pilot.pause()


@contextlib.asynccontextmanager
async def on_screen(app: MonitorApp, size: tuple[int, int]) -> AsyncIterator[Pilot]:
    """``app`` running headless in a terminal of ``size`` (columns, lines), every host polled
    once and the screen drawn: where each UI test starts."""
    async with app.run_test(size=size) as pilot:
        await first_poll(app, pilot)
        yield pilot


def screen_text(app: MonitorApp) -> str:
    panel = app.screen.query_one(HostPanel)
    parts = [str(panel.query_one(f"#{name}").render()) for name in ("banner", "header", "counts")]
    return "\n".join(parts)


# -- the pure core ----------------------------------------------------------------------------


def test_host_summary_and_old_data(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    view = HostView("h")
    summary = host_summary(view, FIXED_NOW, 60)  # nothing read yet
    assert (summary.exit_code, summary.verdict, summary.state) == (2, "UNREACHABLE", None)
    view.apply(PollResult(FIXED_NOW, True, document=LocalSource(path).read_state()))
    summary = host_summary(view, FIXED_NOW, 60)
    assert (summary.exit_code, summary.verdict, summary.source) == (0, "HEALTHY", "h")
    assert summary.service is None and summary.funding_symbols == 30
    view.apply(PollResult(FIXED_NOW + 5, True, error="corrupt!", error_kind="corrupt"))
    assert view.document is not None and view.showing_old_data  # the last good data stays
    summary = host_summary(view, FIXED_NOW + 5, 60)
    assert summary.exit_code == 1 and summary.problems[0] == "showing old data: corrupt!"
    view.apply(PollResult(FIXED_NOW + 9, False, error="down", error_kind="unreachable"))
    summary = host_summary(view, FIXED_NOW + 9, 60)
    assert view.disconnected_since == FIXED_NOW + 9
    assert (summary.exit_code, summary.verdict) == (2, "UNREACHABLE")
    assert summary.funding_symbols == 30, "the facts of the old data stay"
    view.apply(PollResult(FIXED_NOW + 12, False, error="down", error_kind="unreachable"))
    assert view.disconnected_since == FIXED_NOW + 9, "since the first failure"


def test_host_summary_verdicts_without_data_and_with_a_failed_service(tmp_path):
    missing = HostView("h")
    missing.apply(PollResult(FIXED_NOW, True, error="h:/x: no such file", error_kind="missing"))
    summary = host_summary(missing, FIXED_NOW, 60)
    assert (summary.verdict, summary.exit_code) == ("UNREADABLE", 2)
    assert summary.error == "h:/x: no such file" and summary.problems == [summary.error]
    refused = HostView("h")
    refused.apply(PollResult(FIXED_NOW, False, error="unknown host key", error_kind="host-key"))
    assert host_summary(refused, FIXED_NOW, 60).verdict == "UNREACHABLE"
    path = tmp_path / "s.json"
    write_state(path)
    view = HostView("h")
    failed = ServiceState("failed", "failed", restarts=3)
    view.apply(PollResult(FIXED_NOW, True, LocalSource(path).read_state(), service=failed))
    summary = host_summary(view, FIXED_NOW, 60)
    assert (summary.verdict, summary.exit_code) == ("DEGRADED", 1)
    assert summary.service == "failed (failed), 3 restarts"
    assert summary.problems == ["service failed (failed), 3 restarts"]


def test_rows_filter_sort_and_stale(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=12, stale=("OLDUSDT",))
    doc = LocalSource(path).read_state()
    now_ms = int(FIXED_NOW * 1000)
    rows = funding_rows(doc)
    assert [r.symbol for r in select_rows(rows, "s001", "symbol", False, now_ms)] == [
        "S0010USDT",
        "S0011USDT",
    ]
    by_rate = select_rows(rows, "", "funding_rate", True, now_ms)
    assert by_rate[0].funding_rate == "0.00090000"
    assert stale_entries(doc.funding, now_ms, 60) == [("OLDUSDT", 300.0)]
    assert stale_entries(doc.funding, now_ms, 600) == []


def test_parse_systemctl_show():
    state = parse_systemctl_show(
        "LoadState=loaded\nActiveState=active\nSubState=running\n"
        "ActiveEnterTimestamp=Tue 2026-11-24 07:41:24 UTC\nNRestarts=2\n"
    )
    assert state.healthy and state.restarts == 2
    assert state.describe() == "active (running) since Tue 2026-11-24 07:41:24 UTC, 2 restarts"
    assert parse_systemctl_show("LoadState=not-found\nActiveState=inactive").describe() == (
        "not installed"
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("[/] [link=file:///etc/passwd]x[/link]", "[/] [link=file:///etc/passwd]x[/link]"),
        ("\x1b[2Jwiped", "wiped"),  # CSI: the whole sequence goes, not just ESC
        ("a\x1b]0;new title\x07b", "ab"),  # OSC ended by BEL
        ("a\x1b]8;;file:///etc/passwd\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # OSC 8 by ST
        ("a\x1b]0;never ended", "a"),
        ("a\x1bcb\x1b(0c", "abc"),  # RIS, charset designation
        ("x\x9b2Jy\x85z", "x2Jyz"),  # C1 controls (8-bit CSI, NEL)
        ("nul\x00del\x7fbell\x07back\x08", "nuldelbellback"),
        ("two\nlines\r\tand tab", "two lines and tab"),
        ("trailing\x1b", "trailing"),
        ("Ünïcödé 币安 ₿", "Ünïcödé 币安 ₿"),
    ],
)
def test_strip_control_keeps_text_and_drops_terminal_control(raw, shown):
    assert strip_control(raw) == shown


def test_host_runs_one_poll_at_a_time_and_repeats_one_asked_for_meanwhile(tmp_path):
    host = Host(0, Poller(LocalSource(tmp_path / "s.json"), interval=2.0))
    assert host.try_start_poll() and host.take_requests() == (False, False)
    assert not host.try_start_poll(), "one in flight: the second waits"
    host.want_journal = True
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 0, "asked for meanwhile: at once"
    assert host.try_start_poll() and host.take_requests() == (True, False)
    assert host.take_requests() == (False, False), "served once"
    host.want_history = True
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 0, "the history too"
    assert host.try_start_poll() and host.take_requests() == (False, True)
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 2.0, "then the interval"
    assert host.view.polls == 3 and not host.in_flight


def test_local_source_transfers_only_changed_files(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    source = LocalSource(path)
    assert source.read_state() is not None
    assert source.read_state() is None  # unchanged: not read again
    write_state(path, symbols=5)
    assert len(source.read_state().funding) == 5


# -- the UI -----------------------------------------------------------------------------------


async def test_healthy_screen_at_80x24(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, stale=("OLDUSDT",))
    app = make_app(path)
    async with on_screen(app, (80, 24)):
        text = screen_text(app)
        assert "HEALTHY" in text and "CONNECTED" in text and "STALE" not in text
        assert "funding 31 · tickers 30 · no ticker 1 (OLDUSDT) · no funding 0 · stale 1" in text
        panel = app.screen.query_one(HostPanel)
        assert panel.query_one("#stale").row_count == 1
        assert panel.query_one("#funding").row_count == 31
        assert not panel.has_class("wide")


async def test_wide_terminal_puts_tables_side_by_side(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    app = make_app(path)
    async with on_screen(app, (160, 48)):
        panel = app.screen.query_one(HostPanel)
        assert panel.has_class("wide")
        stale, funding = panel.query_one("#stale"), panel.query_one("#funding")
        assert stale.region.y == funding.region.y and stale.region.x < funding.region.x


async def test_stalled_feed_and_stale_file_are_loud(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, state="stalled", updated_ago=300)
    app = make_app(path)
    async with on_screen(app, (100, 30)):
        text = screen_text(app)
        assert "DEGRADED" in text and "STALLED" in text
        assert "STATE FILE STALE: not written for 5m 00s" in text
        assert app.screen.query_one("#banner").has_class("shown")


async def test_corrupt_file_keeps_the_last_good_data_marked_old(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    app = make_app(path)
    async with on_screen(app, (100, 30)) as pilot:
        path.write_text('{"schema_version": 1, "upd')
        await first_poll(app, pilot, polls=app.hosts[0].view.polls + 2)
        text = screen_text(app)
        assert "STATE FILE CORRUPT" in text and "last good data" in text
        assert "OLD (read" in text
        assert app.screen.query_one("#funding").row_count == 30  # still visible
        write_state(path)
        await first_poll(app, pilot, polls=app.hosts[0].view.polls + 2)
        assert "CORRUPT" not in screen_text(app)


async def test_missing_file_is_shown_as_such(tmp_path):
    app = make_app(tmp_path / "nope.json")
    async with on_screen(app, (80, 24)):
        text = screen_text(app)
        assert "STATE FILE MISSING" in text and "no such file" in text
        assert "UNREADABLE" in text


async def test_keys_filter_sort_help_journal_refresh_quit(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=30)
    app = make_app(path)
    async with on_screen(app, (80, 24)) as pilot:
        panel = app.screen.query_one(HostPanel)
        table = panel.query_one("#funding")
        await pilot.press("slash", "s", "0", "0", "2", "enter")
        await pilot.pause()
        assert table.row_count == 10 and panel.filter_text == "s002"  # S0020..S0029
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 30 and panel.filter_text == ""
        await pilot.press("s")
        await pilot.pause()
        assert panel.sort_reverse and str(table.get_row_at(0)[0]) == "S0029USDT"
        await pilot.press("s")
        await pilot.pause()
        assert panel.sort_key == "funding_rate" and not panel.sort_reverse
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "l")
        journal = app.screen
        assert isinstance(journal, JournalScreen)
        await wait_for(pilot, lambda: "no service journal" in str(
            journal.query_one("#journal").render()), "the journal")  # fmt: skip
        await pilot.press("escape")
        polls = app.hosts[0].view.polls
        write_state(path, symbols=3)
        await pilot.press("r")
        await first_poll(app, pilot, polls=polls + 1)
        assert table.row_count == 3
        await pilot.press("q")
    assert app.return_value == 0, "q quits with exit code 0"


async def test_new_prices_update_cells_in_place_and_off_screen_rows_once_seen(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=300)
    app = make_app(path)
    async with on_screen(app, (80, 24)) as pilot:
        table = app.screen.query_one("#funding", DataTable)
        table.move_cursor(row=5)
        replace_in_file(path, '.50000000"', '.75000000"')  # every mark price moves
        await wait_for(pilot, lambda: str(table.get_row_at(0)[2]) == "100.75000000",
                       "the visible rows to show the new prices")  # fmt: skip
        assert table.cursor_row == 5, "updated in place, not rebuilt"
        # Off screen, the table still holds the old cell: it costs nothing until seen.
        assert str(table.get_row_at(299)[2]) == "399.50000000"
        table.focus()
        await pilot.press("ctrl+end")
        await wait_for(pilot, lambda: str(table.get_row_at(299)[2]) == "399.75000000",
                       "the last row to be written once scrolled into view")  # fmt: skip
        assert table.row_count == 300


async def test_a_panel_shows_what_it_is_given_without_the_monitor_app(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, state="reconnecting")
    view = HostView("somewhere")
    view.apply(PollResult(FIXED_NOW, True, document=LocalSource(path).read_state()))
    panel = HostPanel(0, max_age=30, local=False)
    panel.show(view, FIXED_NOW)  # before mounting: drawn once mounted

    class Bare(App[None]):
        CSS_PATH = Path(funding_monitor.app.__file__).with_name("monitor.tcss")

        def compose(self) -> ComposeResult:
            yield panel

    async with Bare().run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = str(panel.query_one("#header").render())
        assert "somewhere  DEGRADED" in text and "RECONNECTING" in text
        assert "service: unknown (no systemd data)" in text
        assert panel.query_one("#stale").border_title == "stale > 30 s"
        assert panel.query_one("#funding").row_count == 30
        panel.show(view, FIXED_NOW + 100)  # the file ages: the same view, later
        await pilot.pause()
        assert "STATE FILE STALE: not written for" in str(panel.query_one("#banner").render())


HOSTILE = (
    "[/]",  # a MarkupError that crashed the screen
    "[link=file:///etc/passwd]X[/link]",
    "[@click=app.screenshot()]Y[/]",
    "\x1b[2JZ",
    "\x1b]0;pwned\x07W",
)


async def test_hostile_text_from_the_file_is_shown_as_text_not_markup_or_escapes(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=3, stale=HOSTILE, last_error="[/]\x1b[2Jboom",
                hint="[link=file:///etc/passwd]click[/link]\x1b]0;t\x07")  # fmt: skip

    app = make_app(path)
    async with on_screen(app, (120, 40)) as pilot:
        assert app.is_running, "the screen survived the file"
        panel = app.screen.query_one(HostPanel)
        funding = panel.query_one("#funding", DataTable)
        symbols = [funding.get_row_at(row)[0] for row in range(funding.row_count)]
        assert all(isinstance(symbol, Text) and not symbol.spans for symbol in symbols)
        assert {symbol.plain for symbol in symbols} == {
            "S0000USDT", "S0001USDT", "S0002USDT", "[/]", "[link=file:///etc/passwd]X[/link]",
            "[@click=app.screenshot()]Y[/]", "Z", "W",
        }  # fmt: skip
        stale = panel.query_one("#stale", DataTable)
        assert {str(stale.get_row_at(row)[0]) for row in range(stale.row_count)} == {
            "[/]", "[link=file:///etc/passwd]X[/link]", "[@click=app.screenshot()]Y[/]",
            "Z", "W",
        }  # fmt: skip
        text = screen_text(app)
        assert "last error: [/]boom" in text
        assert "hint: [link=file:///etc/passwd]click[/link]" in text
        assert "no ticker 1 (W)" in text
        assert not any(char in text for char in "\x1b\x07"), "no terminal control shown"

        box = panel.query_one("#filter", Input)
        panel.open_filter()
        box.value = "[/]\x1b[2J"  # as a paste would
        await wait_for(pilot, lambda: panel.filter_text == "[/]", "the filter, cleaned")
        assert box.value == "[/]" and funding.row_count == 2
        # The title reads back as markup: the brackets come back escaped, i.e. literal.
        assert "filter '[/]'" in Text.from_markup(funding.border_title or "").plain

        await pilot.press("escape", "l")
        journal = app.screen
        assert isinstance(journal, JournalScreen)
        journal.show(["\x1b[31mred\x1b[0m [b]bold[/b]", "\x1b]0;title\x07ok"])
        await pilot.pause()
        assert str(journal.query_one("#journal").render()) == "red [b]bold[/b]\nok"


async def test_fleet_rows_show_host_names_as_text(tmp_path):
    (tmp_path / "[").mkdir()
    paths = [tmp_path / "[" / "].json", tmp_path / "[b]bold"]  # .../[/].json crashed the fleet
    for path in paths:
        write_state(path)
    app = make_app(*paths)
    async with on_screen(app, (140, 30)):
        fleet = app.query_one("#fleet", DataTable)
        assert [str(fleet.get_row_at(row)[0]) for row in range(2)] == [str(p) for p in paths]


def test_a_crash_of_the_live_screen_exits_non_zero(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    # A bug planted from outside, in the real command in a real terminal.
    program = (
        "import sys\n"
        "from funding_monitor import panel\n"
        "def broken(self): raise RuntimeError('planted bug')\n"
        "panel.HostPanel._draw = broken\n"
        "from funding_monitor.cli import main\n"
        f"sys.exit(main(['--state-file', {str(path)!r}]))\n"
    )
    code, output = run_in_terminal([sys.executable, "-c", program], timeout=60)
    assert code == 70, output[-3000:]  # EX_SOFTWARE, not 0 as if all were well
    assert "planted bug" in output


async def test_fleet_view_and_drill_in(tmp_path):
    good, bad = tmp_path / "a.json", tmp_path / "b.json"
    write_state(good)
    write_state(bad, state="reconnecting")
    app = make_app(good, bad)
    async with on_screen(app, (120, 30)) as pilot:
        fleet = app.query_one("#fleet")
        assert fleet.row_count == 2
        assert [str(fleet.get_row_at(i)[1]) for i in range(2)] == ["HEALTHY", "DEGRADED"]
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen.query_one(HostPanel).index == 1
        assert "RECONNECTING" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not list(app.screen.query(HostPanel))
        await pilot.press("h")  # the history of the host under the cursor
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen) and app.screen.index == 1


def _snapshot_app(tmp_path, history: Path | None = None) -> MonitorApp:
    path = tmp_path / "s.json"
    write_state(path, symbols=40, stale=("OLDUSDT", "GONEUSDT"))
    poller = Poller(LocalSource(path, name="volspike-do"), 0.2, clock=lambda: FIXED_NOW,
                    history=history and str(history))  # fmt: skip
    return MonitorApp([poller], local=True, clock=lambda: FIXED_NOW)


async def _wait_first_poll(pilot) -> None:
    await first_poll(pilot.app, pilot)


def test_snapshot_80x24(snap_compare, tmp_path):
    assert snap_compare(
        _snapshot_app(tmp_path), terminal_size=(80, 24), run_before=_wait_first_poll
    )


def test_snapshot_wide(snap_compare, tmp_path):
    assert snap_compare(
        _snapshot_app(tmp_path), terminal_size=(160, 40), run_before=_wait_first_poll
    )


def test_snapshot_history_80x24(snap_compare, tmp_path):
    history = tmp_path / "audit.jsonl"
    write_history(history, audit_samples())
    assert snap_compare(
        _snapshot_app(tmp_path, history), terminal_size=(80, 24), run_before=_wait_first_poll
    )


# -- the audit history: the pure pieces -------------------------------------------------------

NOW_MS = int(FIXED_NOW * 1000)


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


def hand_edited(samples: list) -> list:
    """The last day, with lines edited by hand: an age past any float, a threshold of 0."""
    samples[-1].max_age_s = 0.0  # the last line: the one whose threshold the screen uses
    samples[-2].last_message_age_s = 1e306
    samples[-3].interval_s = 86400.0
    return samples


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


# -- the audit history: reading it --------------------------------------------------------


def tail_of(path: Path, **options) -> HistoryTail:
    return HistoryTail(str(path), LocalSource(path.with_name("s.json")), **options)


SINCE = NOW_MS - 86_400_000


def test_history_tail_reads_only_what_was_appended(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=100, gap=False, outage=False)
    write_history(history, samples[:-1])
    tail = tail_of(history)
    assert len(tail.read(SINCE).samples) == 99
    assert tail.bytes_read == history.stat().st_size, "the whole file, once"
    assert len(tail.read(SINCE).samples) == 99 and tail.bytes_read == history.stat().st_size
    line = encode_sample(samples[-1])
    with history.open("ab") as handle:
        handle.write(line)
    before = tail.bytes_read
    found = tail.read(SINCE)
    assert [s.at for s in found.samples] == [s.at for s in samples]
    assert tail.bytes_read - before == len(line) + 64, "the new line, and a check of the old"


def test_history_tail_skips_a_torn_last_line_until_it_is_whole(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=10, gap=False)
    last = encode_sample(samples[-1])
    write_history(history, samples[:-1], torn=last[:25])  # the writer died, or is writing
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert (len(found.samples), found.skipped) == (9, 0), "a torn last line is no error"
    with history.open("ab") as handle:
        handle.write(last[25:])
    assert len(tail.read(SINCE).samples) == 10


def test_history_tail_reads_the_rotated_file_only_for_the_rest_of_the_window(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(gap=False, outage=False)
    write_history(tmp_path / "audit.jsonl.1", samples[:1000])  # rotated 440 minutes ago
    write_history(history, samples[1000:])
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert [s.at for s in found.samples] == [s.at for s in samples]
    # Later, the current file reaches back over the window: the rotated one is not read.
    tail = tail_of(history)
    assert len(tail.read(samples[1000].at).samples) == 440
    assert tail.bytes_read == history.stat().st_size


def test_history_tail_reads_a_replaced_file_anew(tmp_path):
    history = tmp_path / "audit.jsonl"
    write_history(history, audit_samples(count=50, gap=False))
    tail = tail_of(history)
    assert len(tail.read(SINCE).samples) == 50
    longer = audit_samples(count=80, gap=False, outage=False)
    for sample in longer:
        sample.funding_symbols = 16  # other bytes where the old file ended
    tmp = tmp_path / "new"
    write_history(tmp, longer)
    os.replace(tmp, history)
    found = tail.read(SINCE)
    assert len(found.samples) == 80 and {s.funding_symbols for s in found.samples} == {16}


def test_history_tail_of_an_oversized_file_reads_its_last_bytes_only(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=60, gap=False)
    with history.open("wb") as handle:
        handle.truncate(3 * MAX_HISTORY_BYTES)  # sparse: 24 MiB of NUL, no disk used
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + b"".join(map(encode_sample, samples)))
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert (len(found.samples), found.skipped) == (60, 0)
    assert tail.bytes_read <= MAX_HISTORY_BYTES + 1
    small = tail_of(history, limit=10_000)  # a few samples' worth
    found = small.read(SINCE)
    assert 0 < len(found.samples) < 60 and found.skipped == 0, "the cut first line dropped"
    assert [s.at for s in found.samples] == [s.at for s in samples[-len(found.samples) :]]
    endless = tmp_path / "endless.jsonl"
    endless.write_bytes(b"x" * 50_000)  # one line without end: nothing to parse, no error
    assert tail_of(endless, limit=10_000).read(SINCE).samples == []


def test_history_of_anything_but_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # nobody writes it: a blocking read would wait for ever
    link = tmp_path / "link.jsonl"
    write_history(tmp_path / "real.jsonl", audit_samples(count=3))
    link.symlink_to(tmp_path / "real.jsonl")
    for path, reason in ((fifo, "not a regular file"), (link, "a symbolic link"),
                         (Path("/dev/zero"), "not a regular file")):  # fmt: skip
        with pytest.raises(SourceError, match=reason):
            tail_of(path).read(SINCE)
    source = LocalSource(tmp_path / "s.json")
    with pytest.raises(SourceError, match="not a regular file"):
        source.read_range(str(fifo), 0, 100)  # opened without blocking, refused after fstat
    assert tail_of(tmp_path / "nope.jsonl").read(SINCE) is None, "no history: no error"


# -- the audit history on screen ----------------------------------------------------------


def audit_text(app: MonitorApp) -> str:
    return str(app.screen.query_one(HostPanel).query_one("#audit").render())


async def test_panel_shows_the_last_24_hours_and_a_chart(tmp_path):
    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path)
    write_history(history, audit_samples())
    app = make_app(path, history=history)
    async with on_screen(app, (120, 30)) as pilot:
        await wait_for(pilot, lambda: "NOT_SAFE" in audit_text(app), "the history read")
        first, second, chart = audit_text(app).splitlines()
        assert first == (
            "last 24 h  NOT_SAFE · 99.493 % available · outages 2 (longest 5m 00s), 7m 00s in all"
        )
        assert second == (
            "last compare: 05:59 UTC, funding 14/15 · mark 15/15 · mismatched ETHUSDT"
        )
        assert chart.startswith("24 h ago ") and chart.endswith(" now")
        bars = chart.removeprefix("24 h ago ").removesuffix(" now")
        assert len(bars) == 120 - 2 - len("24 h ago  now"), "as wide as the panel allows"
        assert "·" in bars, "the hour without the audit"
        assert set(bars) - {"█", "·"}, "the outages: columns below 100 %"
        assert "HEALTHY" in screen_text(app), "the state file's verdict is its own"


async def test_history_screen_shows_the_report_charts_and_outages(tmp_path):
    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path)
    write_history(history, audit_samples())
    app = make_app(path, history=history)
    async with on_screen(app, (120, 40)) as pilot:
        await wait_for(pilot, lambda: "NOT_SAFE" in audit_text(app), "the history read")
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        facts = screen.query_one("#facts")
        await wait_for(pilot, lambda: "verdict" in str(facts.render()), "the report")
        text = str(facts.render())
        assert f"history      {history}, read 06:00:00 UTC" in text
        assert "window       2026-11-23 06:00:30 UTC to 2026-11-24 05:59:30 UTC" in text
        assert "gaps         1 (audit not running), 1h 01m in all" in text
        assert "data age     p50 0.8 s, p99 0.8 s, max 3m 20s" in text
        assert "mismatched   ETHUSDT" in text
        table = screen.query_one("#outages", DataTable)
        assert table.row_count == 2
        assert [str(cell) for cell in table.get_row_at(1)][:4] == [
            "11-23 23:55:30", "11-24 00:00:30", "5m 00s", "stalled",
        ]  # fmt: skip
        charts = str(screen.query_one("#charts").render()).splitlines()
        availability = charts[2 : 2 + HistoryScreen.AVAILABILITY_ROWS]
        assert availability[-1].count("·") >= 2, "no sample: a dot on the base line"
        assert charts[2 + HistoryScreen.AVAILABILITY_ROWS].endswith("now"), "the time axis"
        assert "data age, the oldest per column: 0 to 3m 20s" in "\n".join(charts)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HistoryScreen)


async def test_the_history_screen_of_a_hand_edited_history_opens(tmp_path):
    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path)
    write_history(history, hand_edited(audit_samples()))
    app = make_app(path, history=history)
    async with on_screen(app, (120, 40)) as pilot:
        await wait_for(pilot, lambda: "NOT_SAFE" in audit_text(app), "the history read")
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        facts = screen.query_one("#facts")
        await wait_for(pilot, lambda: "refused" in str(facts.render()), "the report")
        charts = str(screen.query_one("#charts").render())
        assert "data age, the oldest per column: 0 to 3m 20s" in charts
        assert app.is_running


async def test_no_history_file_is_not_an_error_and_r_reads_it_once_written(tmp_path):
    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path)
    app = make_app(path, history=history)
    async with on_screen(app, (100, 30)) as pilot:
        assert audit_text(app) == (
            f"last 24 h: no audit history (funding_audit_enabled?) at {history}"
        )
        assert "HEALTHY" in screen_text(app) and "UNREADABLE" not in screen_text(app)
        assert app.screen.query_one("#funding").row_count == 30, "everything else works"
        await pilot.press("h")
        await pilot.pause()
        assert "no audit history" in str(app.screen.query_one("#facts").render())
        assert not app.screen.query_one("#outages").display
        await pilot.press("escape")
        write_history(history, audit_samples(outage=False, mismatch=False, gap=False))
        await pilot.press("r")  # read now, not in 30 s
        await wait_for(pilot, lambda: "last 24 h  SAFE" in audit_text(app), "the new history")


async def test_history_is_off_for_a_local_file_unless_asked_for(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    app = make_app(path)
    async with on_screen(app, (100, 30)) as pilot:
        assert not app.screen.query_one("#audit").display
        await pilot.press("h")
        await pilot.pause()
        assert "not read: give --history PATH" in str(app.screen.query_one("#facts").render())


async def test_hostile_history_text_is_shown_as_text(tmp_path):
    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path)
    samples = audit_samples(count=30, gap=False)
    samples[-1].compare.mismatched = {"[/]\x1b[2JX": "[link=file:///etc/passwd]a[/link]"}
    samples[-3].problems = ["[@click=app.quit]q[/]\x1b]0;t\x07"]
    samples[-3].readable = False
    write_history(history, samples)
    app = make_app(path, history=history)
    async with on_screen(app, (120, 40)) as pilot:
        await wait_for(pilot, lambda: "NOT_SAFE" in audit_text(app), "the history read")
        assert "mismatched [/]X" in audit_text(app)
        await pilot.press("h")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#outages").row_count == 1, "outages")
        assert "[/]X: [link=file:///etc/passwd]a[/link]" in str(screen.query_one("#facts").render())
        detail = screen.query_one("#outages", DataTable).get_row_at(0)[4]
        assert isinstance(detail, Text) and detail.plain == "[@click=app.quit]q[/]"
        assert app.is_running


# -- --once -----------------------------------------------------------------------------------


def once(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MONITOR, "--once", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_once_prints_the_shared_summary_and_exits_0_1_2(tmp_path):
    import time

    path = tmp_path / "s.json"
    write_state(path, now=time.time(), stale=("OLDUSDT",))
    result = once("--state-file", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith(f"funding-monitor: HEALTHY  ({path})\n")
    assert "funding entries older than 60 s: OLDUSDT (5m " in result.stdout  # + start-up time
    assert "service" not in result.stdout, "a local file has no service"
    result = once("--state-file", str(path), "--json", "--max-age", "400")
    summary = msgspec.json.decode(result.stdout, type=Summary)  # exactly the shared shape
    # The shared keys exactly, and the history (none for a local file unless asked for).
    assert set(json.loads(result.stdout)) == {
        *Summary.__struct_fields__,
        "history",
        "notifications",
    }
    assert json.loads(result.stdout)["history"] is None
    assert summary.healthy and summary.source == str(path) and summary.funding_symbols == 31
    assert summary.max_age_s == 400 and summary.stale_funding == {}, "--max-age is the one rule"
    assert summary.service is None
    write_state(path, now=time.time(), state="stopped")
    assert once("--state-file", str(path)).returncode == 1
    path.write_text("garbage")
    result = once("--state-file", str(path), "--json")
    facts = json.loads(result.stdout)
    assert result.returncode == 2 and "not a state file" in facts["error"]
    assert facts["verdict"] == "UNREADABLE"
    os.unlink(path)
    assert once("--state-file", str(path)).returncode == 2


def test_once_text_strips_terminal_control_and_json_keeps_the_raw_value(tmp_path):
    import time

    path = tmp_path / "s.json"
    write_state(path, now=time.time(), last_error="\x1b]0;pwned\x07boom\x1b[2J",
                hint="ok\n  problem     none")  # fmt: skip
    text = once("--state-file", str(path)).stdout
    assert "\x1b" not in text and "\x07" not in text
    assert "  last error  boom (" in text
    assert "  hint        ok problem none\n" in text, "no line of its own"
    facts = json.loads(once("--state-file", str(path), "--json").stdout)
    assert facts["last_error"] == "\x1b]0;pwned\x07boom\x1b[2J"


def _planted(tmp_path: Path, kind: str) -> Path:
    if kind == "/dev/zero":  # endless: would read until memory ran out
        return Path("/dev/zero")
    path = tmp_path / "state.json"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes it: reading would wait forever
    else:
        write_state(tmp_path / "real.json")
        path.symlink_to(tmp_path / "real.json")  # a file someone else may point anywhere
    return path


@pytest.mark.parametrize("kind", ["symlink", "fifo", "/dev/zero"])
def test_once_refuses_what_status_refuses_with_the_same_line_and_exit_2(tmp_path, kind):
    """One safe open for every reader: the monitor's local file is refused as ``status``
    refuses it, in the same words, with the same exit code, at once."""
    path = _planted(tmp_path, kind)
    result = once("--state-file", str(path))
    status = run_cli("status", "--state-file", str(path))
    assert (result.returncode, status.returncode) == (2, 2), result.stdout
    problems = [line for line in result.stdout.splitlines() if line.startswith("  problem")]
    assert problems == [line for line in status.stdout.splitlines() if line.startswith("  problem")]
    expected = "is a symbolic link; not following it" if kind == "symlink" else "not a regular file"
    assert len(problems) == 1 and expected in problems[0], problems
    assert "Traceback" not in result.stderr


def test_once_refuses_an_oversized_file(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_STATE_BYTES + 1)  # sparse: no disk used
    result = once("--state-file", str(big), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"] == (
        f"{big}: {MAX_STATE_BYTES + 1} bytes, more than a state file can be (64 MiB)"
    )


def test_an_unwritable_log_file_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [*MONITOR, "--once", "--state-file", str(tmp_path / "s.json"),
         "--log-file", "/nonexistent/x"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "funding-monitor: error: cannot write the log file /nonexistent/x: "
        "No such file or directory\n"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--interval", "0"], "positive"),
        (["--service", "a;rm -rf /"], "not a systemd unit name"),
        (["--json"], "--json needs --once"),
        ([], "give --host HOST"),
        (["--state-file", "x", "--stale-after", "5"], "unrecognized arguments: --stale-after"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    result = subprocess.run([*MONITOR, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_once_adds_the_history_report_to_the_summary(tmp_path):
    import time

    path, history = tmp_path / "s.json", tmp_path / "audit.jsonl"
    write_state(path, now=time.time())
    write_history(history, audit_samples(time.time()), torn=b'{"v":1,"at":17')
    result = once("--state-file", str(path), "--history", str(history), "--json")
    assert result.returncode == 0, "the state file's verdict decides the exit code"
    facts = json.loads(result.stdout)
    assert set(facts) == {*Summary.__struct_fields__, "history", "notifications"}
    assert msgspec.json.decode(result.stdout, type=Summary).verdict == "HEALTHY"
    report = msgspec.convert(facts["history"], AuditReport)  # report --json's object
    assert (report.verdict, report.samples, report.skipped_lines) == ("NOT_SAFE", 1380, 0)
    assert report.history == str(history) and len(report.outages) == 2
    text = once("--state-file", str(path), "--history", str(history)).stdout
    assert "\n  audit 24 h  NOT_SAFE: availability 99.493 % < SLO 99.9 %; 1 symbol(s) " in text
    assert (
        "\n  history     99.493 % available, outages 2 (longest 5m 00s), 7m 00s in all; last "
        in text
    )


def test_once_without_a_usable_history_says_why_and_exits_as_before(tmp_path):
    import time

    path = tmp_path / "s.json"
    write_state(path, now=time.time())
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)  # nobody writes it: reading would wait forever
    result = once("--state-file", str(path), "--history", str(fifo))
    assert result.returncode == 0
    assert result.stdout.endswith(
        f"  audit 24 h  audit history unreadable: {fifo}: not a regular file\n"
    )
    facts = json.loads(once("--state-file", str(path), "--history", str(fifo), "--json").stdout)
    assert facts["history"] is None and facts["verdict"] == "HEALTHY"
    result = once("--state-file", str(path), "--history", str(tmp_path / "none.jsonl"))
    assert result.returncode == 0 and result.stdout.endswith(
        f"  audit 24 h  no audit history (funding_audit_enabled?) at {tmp_path / 'none.jsonl'}\n"
    )
    garbage = tmp_path / "passwd"
    garbage.write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = once("--state-file", str(path), "--history", str(garbage))
    assert result.stdout.endswith(
        f"  audit 24 h  audit history unreadable: {garbage}: no audit sample in 1 line(s)\n"
    )
    big = tmp_path / "big.jsonl"
    with big.open("wb") as handle:
        handle.truncate(3 * MAX_HISTORY_BYTES)  # sparse; only its last 8 MiB are read
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + b"".join(map(encode_sample, audit_samples(time.time(), count=30))))
    facts = json.loads(once("--state-file", str(path), "--history", str(big), "--json").stdout)
    assert facts["history"]["samples"] == 30
