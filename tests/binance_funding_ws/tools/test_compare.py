"""``binance-funding-ws compare`` against the simulator's REST endpoint, over real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.state import encode_state
from binance_funding_ws.tools.compare import RECHECK_WAIT
from daemon_helpers import COMMAND, DaemonProcess, run_cli, wait_for
from factories import document


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.2, symbols=12)) as running:
        running.call("pause_ticks")  # a frozen market: file and REST agree exactly
        yield running


def write_state_from(sim: SimulatorThread, path, drop=(), extra=()) -> None:
    """A state file holding exactly what the simulator last sent, as the daemon writes it."""
    marks, _, _ = sim.snapshot()
    rows = [row for symbol, row in marks.items() if symbol not in drop]
    rows += [{**next(iter(marks.values())), "s": symbol} for symbol in extra]
    now = now_ms()
    doc = document(last_message_at=now, updated_at=now, funding=rows)
    path.write_bytes(encode_state(doc))


def compare(state, sim, *extra: str) -> tuple[int, dict, str]:
    result = run_cli(
        "compare", "--state-file", str(state), "--rest-url", sim.rest_url(), "--json", *extra
    )
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def test_everything_matches(sim, tmp_path):
    state = tmp_path / "state.json"
    write_state_from(sim, state)
    code, report, _ = compare(state, sim, "--symbols", "all")
    assert code == 0, report
    summary = report["summary"]
    assert summary["compared"] == 15 == summary["funding_matches"] == summary["mark_matches"]
    assert summary["next_funding_matches"] == 15 and summary["mark_diff_pct_max"] == 0
    assert report["recommendation"].startswith("SAFE to rely on WebSocket data: funding 15/15")
    assert report["rest_used_weight"] == 10  # one premiumIndex call for every symbol


def test_a_diverging_funding_rate_is_named_and_fails(sim, tmp_path):
    state = tmp_path / "state.json"
    write_state_from(sim, state)
    sim.call("diverge", "ETHUSDT", lastFundingRate="0.00123400")
    code, report, _ = compare(state, sim)
    assert code == 1 and report["mismatched"] == ["ETHUSDT"]
    eth = next(s for s in report["symbols"] if s["symbol"] == "ETHUSDT")
    assert eth["funding_rate"]["rest"] == "0.00123400" and not eth["funding_match"]
    assert "ETHUSDT (funding rate)" in report["recommendation"]
    text = run_cli("compare", "--state-file", str(state), "--rest-url", sim.rest_url())
    assert text.returncode == 1 and "MISMATCH ETHUSDT: funding rate" in text.stdout


@pytest.mark.parametrize(("pct", "expected"), [(0.049, 0), (0.051, 1)])
def test_mark_price_just_inside_and_just_outside_the_tolerance(sim, tmp_path, pct, expected):
    state = tmp_path / "state.json"
    write_state_from(sim, state)
    sim.call("diverge", "BTCUSDT", mark_pct=pct)
    code, report, _ = compare(state, sim, "--symbols", "BTCUSDT", "--mark-tolerance-pct", "0.05")
    assert code == expected
    (btc,) = report["symbols"]
    assert btc["mark_diff_pct"] == pytest.approx(pct, rel=1e-3)
    assert btc["mark_match"] is (expected == 0) and btc["funding_match"]


def test_symbols_present_in_one_source_only(sim, tmp_path):
    state = tmp_path / "state.json"
    write_state_from(sim, state, drop=("SOLUSDT",), extra=("GHOSTUSDT",))
    code, report, _ = compare(state, sim)
    assert report["only_in_rest"] == ["SOLUSDT"] and report["only_in_state"] == ["GHOSTUSDT"]
    assert code == 0  # informational for "all": every symbol in both sources matches
    code, report, _ = compare(state, sim, "--symbols", "BTCUSDT,SOLUSDT")
    assert code == 1 and "SOLUSDT (missing from a source)" in report["recommendation"]


def test_unreachable_rest_is_exit_2_in_one_line(sim, tmp_path):
    state = tmp_path / "state.json"
    write_state_from(sim, state)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = run_cli(
            "compare", "--state-file", str(state), "--rest-url", f"http://127.0.0.1:{port}"
        )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0]


@pytest.mark.parametrize("content", [b"", b'{"schema_version": 1, "upd', b"[]"])
def test_corrupt_state_file_is_exit_2_in_one_line(sim, tmp_path, content):
    state = tmp_path / "state.json"
    state.write_bytes(content)
    code, _, stderr = compare(state, sim)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_rate_limit_429_waits_for_retry_after_and_418_stops(sim, tmp_path):
    state = tmp_path / "state.json"
    write_state_from(sim, state)
    sim.call("rest_fault", 429, 1, 1)
    started = time.monotonic()
    code, _, _ = compare(state, sim)
    assert code == 0 and time.monotonic() - started >= 1.0
    sim.call("rest_fault", 418, 1, 120)
    code, _, stderr = compare(state, sim)
    assert code == 2 and "418" in stderr and "banned for 120 s" in stderr


def test_report_is_written_to_a_file_too(sim, tmp_path):
    state, output = tmp_path / "state.json", tmp_path / "report.txt"
    write_state_from(sim, state)
    result = run_cli(
        "compare", "--state-file", str(state), "--rest-url", sim.rest_url(), "--output", str(output)
    )
    assert result.returncode == 0 and output.read_text() == result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--symbols", "BTC USDT"], "SYMBOL,SYMBOL"),
        (["--mark-tolerance-pct", "-1"], "percentage"),
        (["--rest-url", "ftp://x"], "http:// or https://"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, args, fragment):
    result = run_cli("compare", *args)
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1]


def test_live_daemon_against_the_simulator_rechecks_moving_values(tmp_path):
    """The real chain with the market moving: differences from timing are re-checked away."""
    with (
        SimulatorThread(SimulatorConfig(tick=0.3, symbols=20)) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", write_interval=1.0) as daemon,
    ):
        daemon.wait_connected()
        rechecked = 0
        for _ in range(4):
            result = subprocess.run(
                [
                    *COMMAND,
                    "compare",
                    "--state-file",
                    str(daemon.state_file),
                    "--rest-url",
                    sim.rest_url(),
                    "--symbols",
                    "all",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            report = json.loads(result.stdout)
            assert result.returncode == 0, report["recommendation"]
            assert report["summary"]["compared"] == 23
            rechecked += report["summary"]["rechecked"]
            time.sleep(0.37)
        assert rechecked > 0, "the market moved between the reads at least once"


def compare_live(state, sim, *extra: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    code, report, stderr = compare(state, sim, "--symbols", "all", *extra)
    assert stderr == "", stderr
    return code, report, time.monotonic() - started


def test_suspects_are_rechecked_together_in_two_rest_calls(tmp_path):
    """With no tolerance every symbol read at another instant is a suspect: all of them are
    settled by one more all-symbol call once the file has moved past the first answer."""
    with (
        SimulatorThread(SimulatorConfig(tick=0.2, symbols=20)) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", write_interval=1.0) as daemon,
    ):
        daemon.wait_connected()
        for _ in range(10):  # the file lags REST by up to a write interval: usually at once
            requests = sim.call("stats")["rest_requests"]
            code, report, took = compare_live(daemon.state_file, sim, "--mark-tolerance-pct", "0")
            if report["summary"]["rechecked"] >= 10:
                break
        assert report["summary"]["rechecked"] >= 10, "the file was never behind REST"
        assert sim.call("stats")["rest_requests"] - requests == 2  # not 1 + 2 per suspect
        assert code == 0 and report["mismatched"] == [] and report["stale"] == []
        assert took < RECHECK_WAIT + 5  # one wait for the file, not one per suspect


def test_a_stalled_daemon_leaves_stale_entries_not_mismatches(tmp_path):
    """REST moves on while the stream is silent: the file's entries are older than the REST
    answer and never catch up. They are not compared; before, they were called mismatches."""
    with (
        SimulatorThread(SimulatorConfig(tick=0.2, symbols=12)) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", stall_timeout=60) as daemon,
    ):
        daemon.wait_connected()
        sim.call("stall")
        ticks = sim.snapshot()[2]
        # Every symbol's funding rate moves every 8 ticks: after 10, REST differs for each.
        wait_for(lambda: sim.snapshot()[2] >= ticks + 10, 10, "ten silent ticks")
        code, report, took = compare_live(daemon.state_file, sim)
    assert report["mismatched"] == [] and code == (0 if report["summary"]["compared"] else 1)
    assert len(report["stale"]) >= 12 and "not compared" in report["recommendation"]
    assert report["summary"]["stale"] == len(report["stale"])
    assert RECHECK_WAIT <= took < RECHECK_WAIT + 5  # the file had its chance, once
