"""funding-monitor on local state files: the pure core, the Textual UI (Pilot and snapshots)
and ``--once`` through the console script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from monitor_helpers import FIXED_NOW, replace_in_file, run_in_terminal, wait_for, write_state
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input

import funding_monitor.app
from binance_funding_ws.health import Summary, stale_entries
from funding_monitor.app import MonitorApp
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
from funding_monitor.screens import HelpScreen, JournalScreen
from funding_monitor.sources import MAX_STATE_BYTES, LocalSource

MONITOR = [sys.executable, "-m", "funding_monitor"]


def make_app(*paths, size_clock: float = FIXED_NOW) -> MonitorApp:
    pollers = [Poller(LocalSource(p), 0.2, clock=lambda: size_clock) for p in paths]
    return MonitorApp(pollers, local=True, clock=lambda: size_clock)


async def first_poll(app: MonitorApp, pilot, polls: int = 1) -> None:
    """Wait until every host was polled ``polls`` times, and the screen redrawn."""
    await wait_for(pilot, lambda: all(host.view.polls >= polls for host in app.hosts),
                   f"poll {polls} of every host")  # fmt: skip
    await pilot.pause()


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
    assert host.try_start_poll() and not host.take_journal_request()
    assert not host.try_start_poll(), "one in flight: the second waits"
    host.want_journal = True
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 0, "asked for meanwhile: at once"
    assert host.try_start_poll() and host.take_journal_request()
    assert not host.take_journal_request(), "served once"
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 2.0, "then the interval"
    assert host.view.polls == 2 and not host.in_flight


def test_local_source_transfers_only_changed_files(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    source = LocalSource(path)
    assert source.read_state() is not None
    assert source.read_state() is None  # unchanged: not read again
    write_state(path, symbols=5)
    assert len(source.read_state().funding) == 5


# -- the UI -----------------------------------------------------------------------------------


def test_healthy_screen_at_80x24(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, stale=("OLDUSDT",))

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await first_poll(app, pilot)
            text = screen_text(app)
            assert "HEALTHY" in text and "CONNECTED" in text and "STALE" not in text
            assert (
                "funding 31 · tickers 30 · no ticker 1 (OLDUSDT) · no funding 0 · stale 1" in text
            )
            panel = app.screen.query_one(HostPanel)
            assert panel.query_one("#stale").row_count == 1
            assert panel.query_one("#funding").row_count == 31
            assert not panel.has_class("wide")

    asyncio.run(scenario())


def test_wide_terminal_puts_tables_side_by_side(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(160, 48)) as pilot:
            await first_poll(app, pilot)
            panel = app.screen.query_one(HostPanel)
            assert panel.has_class("wide")
            stale, funding = panel.query_one("#stale"), panel.query_one("#funding")
            assert stale.region.y == funding.region.y and stale.region.x < funding.region.x

    asyncio.run(scenario())


def test_stalled_feed_and_stale_file_are_loud(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, state="stalled", updated_ago=300)

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            await first_poll(app, pilot)
            text = screen_text(app)
            assert "DEGRADED" in text and "STALLED" in text
            assert "STATE FILE STALE: not written for 5m 00s" in text
            assert app.screen.query_one("#banner").has_class("shown")

    asyncio.run(scenario())


def test_corrupt_file_keeps_the_last_good_data_marked_old(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            await first_poll(app, pilot)
            path.write_text('{"schema_version": 1, "upd')
            await first_poll(app, pilot, polls=app.hosts[0].view.polls + 2)
            text = screen_text(app)
            assert "STATE FILE CORRUPT" in text and "last good data" in text
            assert "OLD (read" in text
            assert app.screen.query_one("#funding").row_count == 30  # still visible
            write_state(path)
            await first_poll(app, pilot, polls=app.hosts[0].view.polls + 2)
            assert "CORRUPT" not in screen_text(app)

    asyncio.run(scenario())


def test_missing_file_is_shown_as_such(tmp_path):
    async def scenario() -> None:
        app = make_app(tmp_path / "nope.json")
        async with app.run_test(size=(80, 24)) as pilot:
            await first_poll(app, pilot)
            text = screen_text(app)
            assert "STATE FILE MISSING" in text and "no such file" in text
            assert "UNREADABLE" in text

    asyncio.run(scenario())


def test_keys_filter_sort_help_journal_refresh_quit(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=30)

    async def scenario() -> int | None:
        app = make_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await first_poll(app, pilot)
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
        return app.return_value

    assert asyncio.run(scenario()) == 0


def test_new_prices_update_cells_in_place_and_off_screen_rows_once_seen(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=300)

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await first_poll(app, pilot)
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

    asyncio.run(scenario())


def test_a_panel_shows_what_it_is_given_without_the_monitor_app(tmp_path):
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

    async def scenario() -> None:
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

    asyncio.run(scenario())


HOSTILE = (
    "[/]",  # a MarkupError that crashed the screen
    "[link=file:///etc/passwd]X[/link]",
    "[@click=app.screenshot()]Y[/]",
    "\x1b[2JZ",
    "\x1b]0;pwned\x07W",
)


def test_hostile_text_from_the_file_is_shown_as_text_not_markup_or_escapes(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=3, stale=HOSTILE, last_error="[/]\x1b[2Jboom",
                hint="[link=file:///etc/passwd]click[/link]\x1b]0;t\x07")  # fmt: skip

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(120, 40)) as pilot:
            await first_poll(app, pilot)
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

    asyncio.run(scenario())


def test_fleet_rows_show_host_names_as_text(tmp_path):
    (tmp_path / "[").mkdir()
    paths = [tmp_path / "[" / "].json", tmp_path / "[b]bold"]  # .../[/].json crashed the fleet
    for path in paths:
        write_state(path)

    async def scenario() -> None:
        app = make_app(*paths)
        async with app.run_test(size=(140, 30)) as pilot:
            await first_poll(app, pilot)
            fleet = app.query_one("#fleet", DataTable)
            assert [str(fleet.get_row_at(row)[0]) for row in range(2)] == [str(p) for p in paths]

    asyncio.run(scenario())


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


def test_fleet_view_and_drill_in(tmp_path):
    good, bad = tmp_path / "a.json", tmp_path / "b.json"
    write_state(good)
    write_state(bad, state="reconnecting")

    async def scenario() -> None:
        app = make_app(good, bad)
        async with app.run_test(size=(120, 30)) as pilot:
            await first_poll(app, pilot)
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

    asyncio.run(scenario())


def _snapshot_app(tmp_path) -> MonitorApp:
    path = tmp_path / "s.json"
    write_state(path, symbols=40, stale=("OLDUSDT", "GONEUSDT"))
    poller = Poller(LocalSource(path, name="volspike-do"), 0.2, clock=lambda: FIXED_NOW)
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
    assert set(json.loads(result.stdout)) == set(Summary.__struct_fields__)
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


def test_once_refuses_a_fifo_at_once(tmp_path):
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo)  # nobody writes it: reading would wait forever
    result = once("--state-file", str(fifo))
    assert result.returncode == 2
    assert f"  problem     {fifo}: not a regular file\n" in result.stdout


def test_once_refuses_a_device_and_an_oversized_file(tmp_path):
    result = once("--state-file", "/dev/zero")  # endless: would read until memory ran out
    assert result.returncode == 2 and "/dev/zero: not a regular file" in result.stdout
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
