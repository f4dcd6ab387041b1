"""The monitor's model (:mod:`funding_monitor.model`): a host's summary, verdicts, rows filtered
and sorted, systemd's answer parsed."""

from __future__ import annotations

from binance_funding_ws.health import stale_entries
from funding_monitor.model import (
    HostView,
    PollResult,
    ServiceState,
    funding_rows,
    host_summary,
    parse_systemctl_show,
    select_rows,
)
from funding_monitor.sources import LocalSource
from monitor_helpers import FIXED_NOW, write_state


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
