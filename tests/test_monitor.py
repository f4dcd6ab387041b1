"""funding-monitor on local state files: the pure core, the Textual UI (Pilot and snapshots)
and ``--once`` through the console script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from monitor_helpers import FIXED_NOW, write_state

from funding_monitor.app import HelpScreen, HostPanel, JournalScreen, MonitorApp
from funding_monitor.model import (
    HostView,
    PollResult,
    funding_rows,
    judge,
    parse_systemctl_show,
    select_rows,
    stale_entries,
)
from funding_monitor.poller import Poller
from funding_monitor.sources import LocalSource

MONITOR = [sys.executable, "-m", "funding_monitor"]


def make_app(*paths, size_clock: float = FIXED_NOW) -> MonitorApp:
    pollers = [Poller(LocalSource(p), 0.2, clock=lambda: size_clock) for p in paths]
    return MonitorApp(pollers, local=True, clock=lambda: size_clock)


async def first_poll(app: MonitorApp, pilot, polls: int = 1) -> None:
    for _ in range(200):
        if all(view.polls >= polls for view in app.views):
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError("the first poll never arrived")


def screen_text(app: MonitorApp) -> str:
    panel = app.screen.query_one(HostPanel)
    parts = [str(panel.query_one(f"#{name}").render()) for name in ("banner", "header", "counts")]
    return "\n".join(parts)


# -- the pure core ----------------------------------------------------------------------------


def test_judge_and_old_data(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    view = HostView("h")
    assert judge(view, FIXED_NOW, 60).code == 2  # nothing read yet
    view.apply(PollResult(FIXED_NOW, True, document=LocalSource(path).read_state()))
    assert judge(view, FIXED_NOW, 60).code == 0
    view.apply(PollResult(FIXED_NOW + 5, True, error="corrupt!", error_kind="corrupt"))
    assert view.document is not None and view.showing_old_data  # the last good data stays
    verdict = judge(view, FIXED_NOW + 5, 60)
    assert verdict.code == 1 and "showing old data: corrupt!" in verdict.problems[0]
    view.apply(PollResult(FIXED_NOW + 9, False, error="down", error_kind="unreachable"))
    assert view.disconnected_since == FIXED_NOW + 9 and judge(view, FIXED_NOW + 9, 60).code == 2
    view.apply(PollResult(FIXED_NOW + 12, False, error="down", error_kind="unreachable"))
    assert view.disconnected_since == FIXED_NOW + 9, "since the first failure"


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
    assert [r.symbol for r in stale_entries(doc, now_ms, 60)] == ["OLDUSDT"]
    assert stale_entries(doc, now_ms, 600) == []


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
            await first_poll(app, pilot, polls=app.views[0].polls + 2)
            text = screen_text(app)
            assert "STATE FILE CORRUPT" in text and "last good data" in text
            assert "OLD (read" in text
            assert app.screen.query_one("#funding").row_count == 30  # still visible
            write_state(path)
            await first_poll(app, pilot, polls=app.views[0].polls + 2)
            assert "CORRUPT" not in screen_text(app)

    asyncio.run(scenario())


def test_missing_file_is_shown_as_such(tmp_path):
    async def scenario() -> None:
        app = make_app(tmp_path / "nope.json")
        async with app.run_test(size=(80, 24)) as pilot:
            await first_poll(app, pilot)
            text = screen_text(app)
            assert "STATE FILE MISSING" in text and "no such file" in text
            assert "UNREACHABLE" in text

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
            await pilot.pause(0.3)
            assert isinstance(app.screen, JournalScreen)
            await pilot.press("escape")
            polls = app.views[0].polls
            write_state(path, symbols=3)
            await pilot.press("r")
            await first_poll(app, pilot, polls=polls + 1)
            assert table.row_count == 3
            await pilot.press("q")
        return app.return_value

    assert asyncio.run(scenario()) == 0


def test_new_prices_update_the_cells_in_place(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, symbols=5)

    async def scenario() -> None:
        app = make_app(path)
        async with app.run_test(size=(100, 30)) as pilot:
            await first_poll(app, pilot)
            table = app.screen.query_one("#funding")
            assert str(table.get_row_at(2)[2]) == "102.50000000"
            data = path.read_text().replace('"102.50000000"', '"222.25000000"')
            tmp = path.with_name("tmp.json")
            tmp.write_text(data)
            os.replace(tmp, path)
            await first_poll(app, pilot, polls=app.views[0].polls + 2)
            assert str(table.get_row_at(2)[2]) == "222.25000000"
            assert table.row_count == 5

    asyncio.run(scenario())


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


def test_once_exit_codes_and_json(tmp_path):
    import time

    path = tmp_path / "s.json"
    write_state(path, now=time.time(), stale=("OLDUSDT",))
    result = once("--state-file", str(path))
    assert result.returncode == 0, result.stdout
    assert ": HEALTHY" in result.stdout and "1 funding entries older than 60 s: OLDUSDT" in (
        result.stdout
    )
    facts = json.loads(once("--state-file", str(path), "--json").stdout)
    assert facts["healthy"] and facts["funding_symbols"] == 31
    assert list(facts["stale_funding"]) == ["OLDUSDT"]
    write_state(path, now=time.time(), state="stopped")
    assert once("--state-file", str(path)).returncode == 1
    path.write_text("garbage")
    result = once("--state-file", str(path), "--json")
    assert result.returncode == 2 and "not a state file" in json.loads(result.stdout)["error"]
    os.unlink(path)
    assert once("--state-file", str(path)).returncode == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--interval", "0"], "positive"),
        (["--service", "a;rm -rf /"], "not a systemd unit name"),
        (["--json"], "--json needs --once"),
        ([], "give --host HOST"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    result = subprocess.run([*MONITOR, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
