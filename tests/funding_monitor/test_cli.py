"""``funding-monitor`` as a command (:mod:`funding_monitor.cli`): ``--once`` prints the shared
summary and exit codes, refuses what ``status`` refuses, bad arguments and a crash of the live
screen exit non-zero in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from binance_funding_ws.health import Summary
from binance_funding_ws.history import encode_sample
from binance_funding_ws.report import AuditReport
from daemon_helpers import run_cli
from funding_monitor.history_tail import MAX_HISTORY_BYTES
from funding_monitor.sources import MAX_STATE_BYTES
from monitor_helpers import audit_samples, run_in_terminal, write_history, write_state

MONITOR = [sys.executable, "-m", "funding_monitor"]


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
