"""``binance-funding-ws audit`` with real parts: the daemon against the simulator, faults
injected on a timeline, the audit recording, and ``report`` asserted against what was done.

Every wait is on a condition (a sample in the history, a state in the file); the only
durations are the faults themselves, which the simulator times.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.history import MAX_LINE_BYTES, CompareRound, Sample, encode_sample
from binance_funding_ws.report import available
from binance_funding_ws.tools.history import (
    RECENT_BYTES,
    HistoryError,
    read_history,
    read_recent,
    rotate,
)
from daemon_helpers import COMMAND, DaemonProcess, run_cli, wait_for

MAX_AGE = 2.0  # seconds: the audit's and the report's threshold in these tests
STALL_S = 4.0  # the injected silence
FAST = ("--interval", "0.2", "--compare-every", "1", "--max-age", str(MAX_AGE))


@contextlib.contextmanager
def audit(state: Path, history: Path, rest_url: str, *extra: str) -> Iterator[subprocess.Popen]:
    """The audit running in a subprocess, stopped with SIGTERM (it must exit 0)."""
    log = history.with_suffix(".log").open("wb")
    proc = subprocess.Popen(
        [*COMMAND, "audit", "--state-file", str(state), "--history", str(history),
         "--rest-url", rest_url, *extra],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, history.with_suffix(".log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def samples(history: Path) -> list[Sample]:
    try:
        return read_history(history).samples
    except HistoryError:
        return []


def wait_history(
    history: Path, predicate: Callable[[list[Sample]], object], what: str, timeout: float = 30
) -> list[Sample]:
    return wait_for(lambda: predicate(found := samples(history)) and found, timeout, what, 0.1)


def rounds(found: list[Sample]) -> list:
    return [s.compare for s in found if s.compare is not None and s.compare.error is None]


def coverage_checks(found: list[Sample]) -> list:
    """Rounds that judged coverage (the feed had been connected for --max-age)."""
    return [r for r in rounds(found) if r.coverage_error is None]


def after(found: list[Sample], moment_ms: int) -> list[Sample]:
    return [s for s in found if s.at > moment_ms]


def report(history: Path, *extra: str) -> tuple[int, dict]:
    result = run_cli("report", "--history", str(history), "--json", *extra)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def test_faults_on_a_timeline_are_reported_as_injected(tmp_path):
    """Silence, a REST disagreement, a SIGKILL and restart, a symbol never streamed."""
    state, history = tmp_path / "state.json", tmp_path / "audit.jsonl"
    with SimulatorThread(SimulatorConfig(tick=0.2, symbols=12)) as sim:
        sim.call("phantom", "GHOSTUSDT")  # listed on exchangeInfo, never streamed
        daemon = DaemonProcess(sim.ws_url(), state, write_interval=0.1, stall_timeout=1.0)
        daemon.wait_connected()
        with audit(state, history, sim.rest_url(), *FAST):
            wait_history(history, lambda f: coverage_checks(f), "a clean round with coverage")

            stall_started = now_ms()
            sim.call("stall", STALL_S)  # the simulator resumes by itself
            wait_history(
                history,
                lambda f: (
                    any(not available(s, MAX_AGE) for s in after(f, stall_started))
                    and available(f[-1], MAX_AGE)
                ),
                "the audit to see the silence and the recovery",
            )

            sim.call("diverge", "ETHUSDT", lastFundingRate="0.00999900")
            diverged = now_ms()
            wait_history(
                history,
                lambda f: any("ETHUSDT" in r.mismatched for r in rounds(after(f, diverged))),
                "a compare round naming ETHUSDT",
            )
            sim.call("clear_divergence")

            killed = now_ms()
            daemon.proc.kill()  # SIGKILL: no last word in the file
            daemon.proc.wait(10)
            wait_history(
                history,
                lambda f: any(not available(s, MAX_AGE) for s in after(f, killed)),
                "the audit to see the daemon gone",
            )
            restarted = now_ms()
            daemon = DaemonProcess(sim.ws_url(), state, write_interval=0.1, stall_timeout=1.0)
            wait_history(
                history,
                lambda f: any(s.pid == daemon.pid and available(s, MAX_AGE) for s in f),
                "the restarted daemon available again",
            )
        code, found = report(history, "--since", "1h", "--min-period", "1s")

    stall, down = found["outages"]  # exactly two: the silence and the kill
    assert stall["cause"] == "stalled" and down["cause"] == "daemon down"
    # An outage starts once the data is MAX_AGE old and ends when fresh data is back; the
    # daemon's reconnect backoff (full jitter, up to 4 s by its third stall) comes on top.
    assert STALL_S - MAX_AGE - 1.0 <= stall["duration_s"] <= STALL_S - MAX_AGE + 6.0, stall
    downtime = (restarted - killed) / 1000
    assert downtime - MAX_AGE - 1.0 <= down["duration_s"] <= downtime - MAX_AGE + 8.0, down
    assert found["restarts"] == 1 and found["stalls"] >= 1 and found["reconnects"] >= 1
    compare = found["compare"]
    assert compare["mismatched_symbols"] == ["ETHUSDT"]  # stale entries were never called so
    assert compare["stale_skips"] >= 1  # ... though the file fell behind REST in some rounds
    assert compare["funding_compared"] > compare["funding_matched"] > 0
    assert found["coverage"]["missing_symbols"] == ["GHOSTUSDT"]
    assert 0 < found["availability_pct"] < 99.9
    assert code == 1 and found["verdict"] == "NOT_SAFE" and len(found["reasons"]) == 3
    print(
        f"window {found['window_s']:.1f} s, availability {found['availability_pct']:.2f} %, "
        f"stall outage {stall['duration_s']:.2f} s (silence {STALL_S} s), "
        f"kill outage {down['duration_s']:.2f} s (down {downtime:.2f} s)"
    )


def test_a_clean_stretch_is_safe_and_writes_metrics(tmp_path):
    state, history, metrics = tmp_path / "state.json", tmp_path / "audit.jsonl", tmp_path / "m.prom"
    with (
        SimulatorThread(SimulatorConfig(tick=0.2, symbols=12)) as sim,
        DaemonProcess(sim.ws_url(), state, write_interval=0.1) as daemon,
    ):
        daemon.wait_connected()
        fast = ("--interval", "0.2", "--compare-every", "1", "--max-age", "3")
        with audit(state, history, sim.rest_url(), *fast, "--metrics-file", str(metrics)):
            wait_history(
                history,
                lambda f: len(coverage_checks(f)) >= 2 and f[-1].at - f[0].at >= 2500,
                "two rounds with coverage over 2.5 s",
            )
    code, found = report(history, "--min-period", "2s")
    assert code == 0 and found["verdict"] == "SAFE", found["reasons"]
    # No outage and full availability. (Gaps are the audit's own missed samples: a loaded
    # machine that holds the sampler back for a second leaves one, and that is not the feed.)
    assert found["availability_pct"] == 100 and not found["outages"]
    compare = found["compare"]
    assert compare["funding_matched"] == compare["funding_compared"] >= 2 * 15
    code, found = report(history, "--min-period", "1h")
    assert code == 1 and found["verdict"] == "NOT_YET"
    values = dict(
        line.split() for line in metrics.read_text().splitlines() if not line.startswith("#")
    )
    assert values["binance_funding_ws_connected"] == "1"
    assert values["binance_funding_ws_funding_symbols"] == "15"
    assert values["binance_funding_ws_compare_match_ratio"] == "1.0"
    assert values["binance_funding_ws_availability_24h_ratio"] == "1.0"
    assert not list(tmp_path.glob(".m.prom.*"))  # written atomically: no temp file left


def once(state: Path, history: Path, rest_url: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "audit", "--once", "--state-file", str(state), "--history", str(history),
        "--rest-url", rest_url, "--interval", "60", *extra,
    )  # fmt: skip


@pytest.fixture
def running(tmp_path):
    """A simulator and a connected daemon."""
    with (
        SimulatorThread(SimulatorConfig(tick=0.2, symbols=12)) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", write_interval=0.1) as daemon,
    ):
        daemon.wait_connected()
        yield sim, daemon


def test_once_compares_only_when_due_and_rest_errors_never_stop_it(running, tmp_path):
    sim, daemon = running
    history = tmp_path / "audit.jsonl"
    settled = ("--max-age", "1")  # coverage is judged after a second of connection
    daemon.wait_state(lambda d: now_ms() - d.connection_status.connected_since > 1000, 10, "1 s")
    assert once(daemon.state_file, history, sim.rest_url(), *settled).returncode == 0
    assert once(daemon.state_file, history, sim.rest_url(), *settled).returncode == 0
    first, second = samples(history)
    assert first.compare.coverage_error is None and first.compare.listed == 14
    assert first.compare.weight in (11, 21)  # one or two premiumIndex, and exchangeInfo
    assert second.compare is None  # the next round is due in 300 s

    sim.call("rest_fault", 429, 1, 30)
    assert once(daemon.state_file, history, sim.rest_url(), "--compare-every", "1").returncode == 0
    limited = samples(history)[-1].compare
    assert "429" in limited.error and limited.retry_at == limited.started_at + 30_000
    requests = sim.call("stats")["rest_requests"]
    assert once(daemon.state_file, history, sim.rest_url(), "--compare-every", "1").returncode == 0
    assert samples(history)[-1].compare is None  # Retry-After is honoured, even across runs
    assert sim.call("stats")["rest_requests"] == requests


def test_a_ban_an_unreachable_api_and_a_missing_file_are_recorded(running, tmp_path):
    sim, daemon = running
    history = tmp_path / "audit.jsonl"
    sim.call("rest_fault", 418, 1, 120)
    assert once(daemon.state_file, history, sim.rest_url()).returncode == 0
    banned = samples(history)[-1].compare
    assert "banned for 120 s" in banned.error and banned.retry_at is not None
    other = tmp_path / "other.jsonl"
    assert once(daemon.state_file, other, "http://127.0.0.1:9").returncode == 0
    assert "cannot reach" in samples(other)[-1].compare.error
    assert once(tmp_path / "absent.json", other, sim.rest_url()).returncode == 0
    gone = samples(other)[-1]
    assert not gone.readable and gone.error_kind == "missing" and gone.verdict == "UNREADABLE"


def test_an_unwritable_history_is_exit_2(running, tmp_path):
    sim, daemon = running
    result = once(daemon.state_file, tmp_path / "no-such-dir" / "audit.jsonl", sim.rest_url())
    assert result.returncode == 2 and "cannot append" in result.stderr
    assert "Traceback" not in result.stderr


# -- the history as evidence: what the audit reads back, and where it rotates ----------------


def aged_sample(at: int, **changes) -> bytes:
    """One history line as an audit writes it, taken at ``at`` (epoch ms)."""
    fields = dict(at=at, interval_s=60.0, max_age_s=MAX_AGE, readable=False, verdict="UNREADABLE")
    return encode_sample(Sample(**(fields | changes)))


def test_a_planted_rotated_link_or_directory_never_stops_the_audit(tmp_path):
    """Names the rotation uses, planted: a symlink (to a file that must stay untouched) and
    a directory. The audit neither follows nor replaces them, and appends its sample."""
    history = tmp_path / "audit.jsonl"
    day_ago = now_ms() - 2 * 86_400_000
    history.write_bytes(aged_sample(day_ago))  # a day old: rotation is due
    (tmp_path / "audit.jsonl.1").write_bytes(aged_sample(day_ago - 86_400_000))
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's\n")
    (tmp_path / "audit.jsonl.7").symlink_to(secret)
    (tmp_path / "audit.jsonl.2").mkdir()  # blocks H.1 -> H.2
    result = once(tmp_path / "absent.json", history, "http://127.0.0.1:9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit.jsonl.2: not a regular file; not rotating onto it" in result.stderr
    assert history.read_bytes().count(b"\n") == 2, "the sample appended to the unrotated file"
    assert secret.read_bytes() == b"root's\n" and (tmp_path / "audit.jsonl.7").is_symlink()

    (tmp_path / "audit.jsonl.2").rmdir()  # the operator removes it: the rotation goes on
    result = once(tmp_path / "absent.json", history, "http://127.0.0.1:9")
    assert result.returncode == 0 and "not rotating" not in result.stderr
    assert [s.at for s in read_history(history).samples][:2] == [day_ago - 86_400_000, day_ago]
    assert (tmp_path / "audit.jsonl.2").is_file() and (tmp_path / "audit.jsonl.7").is_symlink()
    assert secret.read_bytes() == b"root's\n"


def test_a_forged_ban_in_the_history_does_not_silence_the_audit(tmp_path):
    """A line claiming REST banned the audit for ten years would stop every compare round."""
    history = tmp_path / "audit.jsonl"
    at = now_ms() - 60_000
    forever = CompareRound(
        started_at=at, duration_s=0.1, error="banned", retry_at=at + 10 * 365 * 86_400_000
    )
    history.write_bytes(aged_sample(at, compare=forever))
    result = once(tmp_path / "absent.json", history, "http://127.0.0.1:9", "--compare-every", "60")
    assert result.returncode == 0, result.stderr
    assert "1 sample(s) with claims out of range ignored" in result.stderr
    latest = samples(history)[-1]
    assert latest.compare is not None and latest.compare.started_at == latest.at, "a round ran"


def test_the_audit_reads_back_only_a_bounded_tail(tmp_path):
    """What the audit reads at each start does not grow with the history: a budget of bytes
    from the end, lines over the cap skipped unread."""
    history = tmp_path / "audit.jsonl"
    start = now_ms() - 3_600_000
    with history.open("wb") as handle:
        handle.write(b'{"pad":"' + b"x" * (3 * MAX_LINE_BYTES) + b'"}\n')
        for n in range(3000):
            handle.write(aged_sample(start + n * 1000))
    line = len(aged_sample(start))
    found = list(read_recent(history, 0, budget=100 * line))
    assert 99 <= len(found) <= 100 and found[-1].at == start + 2999 * 1000
    assert len(list(read_recent(history, start + 2990 * 1000))) == 10, "the window, too"
    assert len(list(read_recent(history, 0))) == 3000, "the long line is skipped, not read"


def test_the_metrics_file_is_called_the_metrics_file(tmp_path):
    history = tmp_path / "audit.jsonl"
    metrics = tmp_path / "funding.prom"
    metrics.mkdir()
    result = once(
        tmp_path / "absent.json", history, "http://127.0.0.1:9", "--metrics-file", str(metrics)
    )
    assert result.returncode == 0 and len(samples(history)) == 1
    assert f"metrics file {metrics} is a directory, not a regular file" in result.stderr
    assert "state file " + str(metrics) not in result.stderr


def test_a_history_headed_by_junk_is_rotated_away_not_read_every_minute(tmp_path):
    history = tmp_path / "audit.jsonl"
    now = now_ms()
    with history.open("wb") as handle:
        handle.write(b"x" * (RECENT_BYTES + 1) + b"\n")  # no sample where the first should be
        handle.write(aged_sample(now - 1000))
    rotate(history, now, keep_s=8 * 86_400)
    assert not history.exists() and (tmp_path / "audit.jsonl.1").is_file()
