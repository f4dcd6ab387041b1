"""The real daemon against the bundled exchange simulator, over real sockets and files."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from daemon_helpers import DaemonProcess, run_cli, status_json, wait_for

FUNDING_FIELDS = {
    "mark_price": "p",
    "index_price": "i",
    "estimated_settle_price": "P",
    "funding_rate": "r",
    "next_funding_time": "T",
    "event_time": "E",
}
TICKER_FIELDS = {
    "last_price": "c",
    "price_change_percent": "P",
    "volume": "v",
    "quote_volume": "q",
    "high_price": "h",
    "low_price": "l",
    "open_price": "o",
    "event_time": "E",
}


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.1, symbols=30, ticker_changes=10)) as running:
        yield running


def settle(sim: SimulatorThread, daemon: DaemonProcess) -> tuple[dict, dict]:
    """Freeze the market, wait until the file shows the last tick, return what was sent."""
    sim.call("pause_ticks")
    time.sleep(0.2)  # a tick already being sent finishes
    marks, tickers, _ = sim.snapshot()
    newest = max(row["E"] for row in marks.values())
    daemon.wait_state(
        lambda d: (
            all(e.event_time >= newest for e in d.funding.values()) and len(d.funding) == len(marks)
        ),
        10,
        "the last tick in the file",
    )
    return marks, tickers


def assert_file_equals_frames(doc, marks: dict, tickers: dict) -> None:
    assert set(doc.funding) == set(marks)
    for symbol, row in marks.items():
        entry = doc.funding[symbol]
        for field, key in FUNDING_FIELDS.items():
            assert getattr(entry, field) == row[key], (symbol, field)
        assert entry.contract_type == row["st"] and entry.pair == row["ps"]
    assert set(doc.tickers) == set(tickers)
    for symbol, row in tickers.items():
        entry = doc.tickers[symbol]
        for field, key in TICKER_FIELDS.items():
            assert getattr(entry, field) == row[key], (symbol, field)


def test_state_file_values_equal_the_latest_frames(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as daemon:
        daemon.wait_connected()
        # Let the round-robin ticker reach every symbol at least once.
        time.sleep(0.6)
        marks, tickers = settle(sim, daemon)
        doc = daemon.state()
        assert_file_equals_frames(doc, marks, tickers)
        assert doc.funding["BTCUSD_PERP"].contract_type == 2
        assert doc.funding["BTCUSD_PERP"].pair == "BTCUSD"
        assert doc.funding["MATICUSDT"].next_funding_time == 0
        assert doc.funding["MATICUSDT"].funding_rate == "0.00000000"
        assert "XAUUSDT" in doc.funding
        assert doc.missing.no_ticker == ["MATICUSDT"]
        assert doc.missing.no_funding == []
        status = doc.connection_status
        assert status.state == "connected" and status.errors == 0
        assert status.pid == daemon.pid
        assert status.url == sim.ws_url() + "?streams=!markPrice@arr@1s/!ticker@arr"
        assert set(status.streams) == {"!markPrice@arr@1s", "!ticker@arr"}
        # A frozen market means nothing new: the file stops being rewritten.
        written = doc.connection_status.writes
        time.sleep(0.5)
        assert daemon.state().connection_status.writes == written


def test_file_mode_is_0644_whatever_the_umask(sim, tmp_path):
    old = os.umask(0o077)
    try:
        daemon = DaemonProcess(sim.ws_url(), tmp_path / "state.json")
    finally:
        os.umask(old)
    with daemon:
        daemon.wait_connected()
        assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o644


def test_abrupt_drop_reconnects_and_data_flows_again(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as daemon:
        daemon.wait_connected()
        sim.call("drop")
        doc = daemon.wait_state(
            lambda d: (
                d.connection_status.reconnects >= 1 and d.connection_status.state == "connected"
            ),
            20,
            "reconnected after a drop",
        )
        assert "1006" in (doc.connection_status.last_error or "") or "1006" in daemon.log_text()
        before = doc.connection_status.messages
        daemon.wait_state(lambda d: d.connection_status.messages > before + 5, 5, "new frames")


def test_close_with_code_1008_reconnects(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as daemon:
        daemon.wait_connected()
        sim.call("close", 1008, "too many requests")
        daemon.wait_state(
            lambda d: (
                d.connection_status.reconnects >= 1 and d.connection_status.state == "connected"
            ),
            20,
            "reconnected after close 1008",
        )
        assert "1008" in daemon.log_text()


def test_silent_stall_is_noticed_and_recovered(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json", stall_timeout=1) as daemon:
        daemon.wait_connected()
        sim.call("stall")
        doc = daemon.wait_state(
            lambda d: d.connection_status.state in ("stalled", "connecting"), 5, "the stall"
        )
        assert doc.connection_status.stalls >= 1
        assert doc.connection_status.connected_since is None
        sim.call("resume")
        daemon.wait_state(lambda d: d.connection_status.state == "connected", 20, "recovery")
        assert "stalled" in daemon.log_text()


@pytest.mark.parametrize("path", ["/stream", "/ws/!ticker@arr"])
def test_legacy_path_is_never_healthy_and_hints_at_the_url(sim, tmp_path, path):
    url = f"ws://127.0.0.1:{sim.port}{path}"
    with DaemonProcess(url, tmp_path / "state.json", stall_timeout=0.5) as daemon:
        # Watch every state it writes for at least 4 s and until it has stalled and given
        # the hint (a loaded machine may start the daemon late: the deadline is generous).
        seen: set[str] = set()
        started, deadline = time.monotonic(), time.monotonic() + 60
        doc = None
        while time.monotonic() < deadline:
            doc = daemon.state()
            if doc is not None:
                seen.add(doc.connection_status.state)
                gave_up = doc.connection_status.stalls >= 1 and doc.connection_status.hint
                if gave_up and time.monotonic() - started >= 4:
                    break
            time.sleep(0.01)
        assert doc is not None
        assert "connected" not in seen
        assert "stalled" in seen or doc.connection_status.stalls >= 1
        assert doc.connection_status.hint and "/market" in doc.connection_status.hint
        assert doc.connection_status.last_message_at is None
        assert "URL may be wrong" in daemon.log_text()
        code, report = status_json(tmp_path / "state.json")
        assert code == 1 and not report["healthy"]


def test_garbage_is_skipped_counted_and_survived(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as daemon:
        daemon.wait_connected()
        sim.call("garbage", 12)
        doc = daemon.wait_state(lambda d: d.connection_status.errors >= 12, 15, "errors counted")
        assert doc.connection_status.last_error
        time.sleep(1.5)  # all garbage delivered
        assert daemon.proc.poll() is None
        marks, tickers = settle(sim, daemon)
        doc = daemon.state()
        assert doc.connection_status.state == "connected"
        assert_file_equals_frames(doc, marks, tickers)
        log = daemon.log_text()
        assert "bad input" in log and "Traceback" not in log


def test_rotation_is_make_before_break_and_loses_no_update(tmp_path):
    # Every tick's ticker array holds exactly one symbol, each symbol at most once during the
    # test: a single lost frame leaves its symbol missing or wrong in the file.
    # The market starts when the daemon is listening, so it has seen every tick.
    config = SimulatorConfig(tick=0.02, symbols=600, ticker_changes=1, start_paused=True)
    with (
        SimulatorThread(config) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", "--rotate-after", "0.7") as daemon,
    ):
        wait_for(lambda: sim.call("stats")["open_connections"], 15, "the daemon's connection")
        sim.call("resume_ticks")
        daemon.wait_connected()
        daemon.wait_state(lambda d: d.connection_status.rotations >= 4, 30, "4 rotations")
        # Each replaced connection is closed by the daemon once it has caught up.
        wait_for(lambda: len(closed_by_client(sim)) >= 4, 10, "4 drained connections closed")
        marks, tickers = settle(sim, daemon)
        _, _, ticks = sim.snapshot()
        assert ticks < 590, "the round-robin wrapped: the test cannot see a loss"
        doc = daemon.wait_state(
            lambda d: set(d.tickers) == set(tickers), 5, "every updated ticker in the file"
        )
        assert_file_equals_frames(doc, marks, tickers)
        status = doc.connection_status
        assert status.state == "connected" and status.reconnects == 0


def closed_by_client(sim: SimulatorThread) -> list[dict]:
    return [c for c in sim.call("stats")["connections"] if c["closed_by"] == "client"]


def test_sigterm_writes_a_final_stopped_state_and_exits_0_fast(sim, tmp_path):
    daemon = DaemonProcess(sim.ws_url(), tmp_path / "state.json", write_interval=1.0)
    daemon.wait_connected()
    started = time.monotonic()
    code = daemon.stop(signal.SIGTERM)
    assert code == 0 and time.monotonic() - started < 5
    doc = daemon.state()
    assert doc.connection_status.state == "stopped" and doc.funding
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_sigint_also_stops_cleanly(sim, tmp_path):
    daemon = DaemonProcess(sim.ws_url(), tmp_path / "state.json")
    daemon.wait_connected()
    assert daemon.stop(signal.SIGINT) == 0
    assert daemon.state().connection_status.state == "stopped"


def test_second_instance_is_refused_naming_the_holder(sim, tmp_path):
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as first:
        first.wait_connected()
        started = time.monotonic()
        second = DaemonProcess(sim.ws_url(), tmp_path / "state.json")
        code = second.proc.wait(10)
        assert code == 3 and time.monotonic() - started < 5
        lines = [line for line in second.log_text().splitlines() if line.strip()]
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0]
        assert first.proc.poll() is None


def test_status_tells_healthy_from_unhealthy(sim, tmp_path):
    state = tmp_path / "state.json"
    code, report = status_json(state)
    assert code == 2 and "no such file" in report["error"]
    daemon = DaemonProcess(sim.ws_url(), state)
    # Wait for the partial ticker arrays to have named every symbol once.
    daemon.wait_state(lambda d: len(d.tickers) == 32, 10, "a ticker for every symbol")
    code, report = status_json(state)
    assert code == 0 and report["healthy"] and report["funding_symbols"] == 33
    assert report["no_ticker"] == ["MATICUSDT"]
    text = run_cli("status", "--state-file", str(state))
    assert text.returncode == 0 and "HEALTHY" in text.stdout and "MATICUSDT" in text.stdout
    daemon.stop()
    code, report = status_json(state)
    assert code == 1 and any("stopped" in p for p in report["problems"])
    state.write_text('{"schema_version": 1, "upd')
    text = run_cli("status", "--state-file", str(state))
    assert text.returncode == 2 and "UNREADABLE" in text.stdout
    assert "Traceback" not in text.stdout + text.stderr


def test_status_flags_a_file_nobody_writes_any_more(sim, tmp_path):
    state = tmp_path / "state.json"
    daemon = DaemonProcess(sim.ws_url(), state)
    daemon.wait_connected()
    daemon.kill()  # SIGKILL: the file still says "connected"
    wait_for(lambda: status_json(state, "--max-age", "0.5")[0] == 1, 5, "staleness noticed")
    code, report = status_json(state, "--max-age", "0.5")
    assert code == 1
    assert any("not written for" in p for p in report["problems"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--ws-url", "http://x"], "ws:// or wss://"),
        (["run", "--write-interval", "0"], "between 0.01 s and 60 s"),
        (["run", "--write-interval", "1e-300"], "between 0.01 s and 60 s"),
        (["run", "--rotate-after", "0.001"], "between 0.5 s and 24 h"),
        (["run", "--stall-timeout", "abc"], "not a duration"),
        (["run", "--state-file", ""], "must not be empty"),
        (["run", "--file-mode", "999"], "octal"),
        (["run", "--streams", ","], "no stream"),
        (["run", "--max-symbols", "0"], "at least 1"),
        (["run", "--state-file", "/nonexistent/dir/s.json"], "does not exist"),
        (["status", "--max-age", "-1"], "not a duration"),
        (["status", "--max-age", "0.01"], "between 0.1 s and 365 d"),
        (["compare", "--timeout", "1e308"], "between 0.1 s and 5 min"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert fragment in last and "Traceback" not in result.stderr


def test_environment_variables_configure_run_and_are_validated():
    result = run_cli_env({"FUNDING_WS_WRITE_INTERVAL": "zero"}, "run")
    assert result.returncode == 2 and "FUNDING_WS_WRITE_INTERVAL" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "FUNDING_WS_WRITE_INTERVAL" in last and "Traceback" not in result.stderr
    result = run_cli_env({"FUNDING_WS_MAX_SYMBOLS": "many"}, "run")
    assert result.returncode == 2 and "FUNDING_WS_MAX_SYMBOLS" in result.stderr


def test_run_variables_never_break_the_other_commands(sim, tmp_path):
    state = tmp_path / "state.json"
    daemon = DaemonProcess(sim.ws_url(), state)
    daemon.wait_connected()
    bad = {"FUNDING_WS_WRITE_INTERVAL": "bad", "FUNDING_WS_FILE_MODE": "999"}
    assert run_cli_env(bad, "status", "--state-file", str(state)).returncode == 0


def test_a_valid_flag_wins_over_a_bad_variable(sim, tmp_path):
    state = tmp_path / "state.json"
    daemon = DaemonProcess(sim.ws_url(), state, env={"FUNDING_WS_WRITE_INTERVAL": "bad"})
    daemon.wait_connected()  # --write-interval came from the flag: the bad variable is unused
    assert daemon.proc.poll() is None


def test_status_json_has_the_one_summary_shape(sim, tmp_path):
    from binance_funding_ws.health import Summary

    state = tmp_path / "state.json"
    _, missing = status_json(state)
    daemon = DaemonProcess(sim.ws_url(), state)
    daemon.wait_connected()
    _, present = status_json(state)
    keys = set(Summary.__struct_fields__)
    assert set(missing) == keys and set(present) == keys
    assert missing["verdict"] == "UNREADABLE" and missing["counters"] is None
    assert present["source"] == str(state) and present["counters"]["reconnects"] == 0


def run_cli_env(env: dict[str, str], *args: str):
    import subprocess

    from daemon_helpers import COMMAND

    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
        check=False,
    )
