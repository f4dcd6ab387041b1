"""``binance-funding-ws report`` as a command: text, JSON and exit codes, one line for a history it
cannot use."""

from __future__ import annotations

import json

import msgspec
import pytest

from binance_funding_ws.clock import now_ms
from binance_funding_ws.history import Sample, encode_sample
from binance_funding_ws.report import NOT_YET
from daemon_helpers import run_cli
from samples import bad, good, round_


def write_history(path, samples) -> None:
    path.write_bytes(b"".join(encode_sample(s) for s in samples))


def shifted(samples: list[Sample], shift_ms: int) -> list[Sample]:
    """``samples`` moved ``shift_ms`` later, their compare rounds with them (the command
    judges against the clock, and refuses a round that did not start near its sample)."""
    moved = []
    for s in samples:
        r = s.compare and msgspec.structs.replace(
            s.compare, started_at=s.compare.started_at + shift_ms
        )
        moved.append(msgspec.structs.replace(s, at=s.at + shift_ms, compare=r))
    return moved


def test_report_command_text_json_and_exit_codes(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = [good(s) for s in range(40)]
    samples[5].compare = round_(5)
    write_history(history, shifted(samples, now_ms() - 1000 - samples[-1].at))
    result = run_cli("report", "--history", str(history), "--min-period", "30s", "--max-age", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("binance-funding-ws report: SAFE")
    result = run_cli("report", "--history", str(history), "--min-period", "1h", "--json")
    assert result.returncode == 1 and json.loads(result.stdout)["verdict"] == NOT_YET


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: p.write_text("garbage\nmore garbage\n"), "not a history"),
    ],
)
def test_an_unreadable_history_is_exit_2_in_one_line(tmp_path, make, fragment):
    history = tmp_path / "audit.jsonl"
    make(history)
    result = run_cli("report", "--history", str(history))
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("binance-funding-ws report: error:") and fragment in line
    result = run_cli("report", "--history", str(history), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["exit_code"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report", "--history", "h", "--since", "0"], "between 1 s and 400 d"),
        (["report", "--history", "h", "--since", "1h30m"], "not a duration"),
        (["report", "--history", "h", "--slo", "100.5"], "at most 100"),
        (["audit", "--history", "h", "--interval", "0.01"], "between 0.1 s and 60 min"),
        (["audit", "--history", "h", "--compare-every", "0.5"], "between 1 s and 24 h"),
        (["audit", "--history", "h", "--keep", "12h"], "between 24 h and 400 d"),
        (["audit", "--history", "h", "--metrics-file", "m.txt"], "must end in .prom"),
        (["audit"], "--history"),
    ],
)
def test_bad_arguments_exit_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2 and fragment in result.stderr.strip().splitlines()[-1]


def _history_of(tmp_path, lines: list[bytes]):
    history = tmp_path / "audit.jsonl"
    history.write_bytes(b"".join(lines))
    return history


def test_the_command_refuses_hand_edited_lines_in_one_line_and_never_crashes(tmp_path):
    """Each reproduction as a user would make it: edit a line of a real history by hand."""
    samples = shifted([bad(s) for s in range(60)], now_ms() - 1000 - bad(59).at)
    lines = [encode_sample(s) for s in samples]
    lines[10] = lines[10].replace(b'"last_message_age_s":5.0', b'"last_message_age_s":1e306')
    lines[20] = lines[20].replace(b'"max_age_s":2.0', b'"max_age_s":0')
    lines[30] = lines[30].replace(b'"interval_s":1.0', b'"interval_s":86400')
    ahead = msgspec.structs.replace(samples[-1], at=samples[-1].at + 3_600_000, max_age_s=1e300)
    history = _history_of(tmp_path, [*lines, encode_sample(ahead)])
    result = run_cli("report", "--history", str(history))
    assert result.returncode == 1 and result.stderr == "", result.stderr
    assert "NOT_SAFE" in result.stdout.splitlines()[0]
    assert "refused      3 sample(s) with claims out of range" in result.stdout
    assert "available    0.000 % of samples (connected, data at most 2 s old" in result.stdout
    result = run_cli("report", "--history", str(history), "--json")
    found = json.loads(result.stdout)
    assert (found["refused_samples"], found["samples"], found["availability_pct"]) == (3, 57, 0.0)
