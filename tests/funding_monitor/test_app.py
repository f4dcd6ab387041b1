"""The monitor's Textual UI (:mod:`funding_monitor.app` and its screens) on local state files,
driven headless with Textual's Pilot and compared with snapshots."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from funding_monitor.app import MonitorApp
from funding_monitor.panel import HostPanel
from funding_monitor.poller import Poller
from funding_monitor.screens import HelpScreen, HistoryScreen, JournalScreen
from funding_monitor.sources import LocalSource
from monitor_helpers import (
    FIXED_NOW,
    audit_samples,
    hand_edited,
    replace_in_file,
    wait_for,
    write_history,
    write_state,
)


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


# -- the audit history: reading it --------------------------------------------------------


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
