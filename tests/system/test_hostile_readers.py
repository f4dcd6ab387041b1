"""Hostile and clumsy input to the readers: ``read_state``, ``status`` and ``compare`` on files
and answers that try to hang, exhaust, crash or hijack them.

Real files, real FIFOs and devices, the real CLI in a subprocess, the simulator's real REST
endpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from binance_funding_sim import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.health import fresh_funding, summarize
from binance_funding_ws.state import MAX_STATE_BYTES, StateFileError, encode_state, read_state
from daemon_helpers import run_cli, status_json
from factories import document, mark

ESCAPES = "\x1b[2J\x1b]0;pwned\x07"


def fresh_doc(**changes):
    now = now_ms()
    doc = document(last_message_at=now, updated_at=now, funding=[mark("BTCUSDT", now)])
    return msgspec.structs.replace(doc, **changes)


# -- every reader has a limit and never blocks ----------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink"])
def test_read_state_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind):
    path = tmp_path / "state.json"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block for ever without O_NONBLOCK
    elif kind == "device":
        path = "/dev/zero"  # reading it would never end
    elif kind == "directory":
        path.mkdir()
    else:
        target = tmp_path / "elsewhere.json"
        target.write_bytes(encode_state(fresh_doc()))
        path.symlink_to(target)
    with pytest.raises(StateFileError) as raised:
        read_state(path)
    assert raised.value.reason == "unreadable"
    result = run_cli("status", "--state-file", str(path), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["verdict"] == "UNREADABLE"


def test_read_state_refuses_a_file_over_its_cap(tmp_path):
    path = tmp_path / "state.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_STATE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(StateFileError, match="larger than 64 MiB"):
        read_state(path)


def test_a_deeply_nested_file_is_corrupt_not_a_recursion_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b'{"schema_version": 1, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    with pytest.raises(StateFileError) as raised:
        read_state(path)
    assert raised.value.reason == "corrupt"
    result = run_cli("status", "--state-file", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_a_document_dated_in_the_future_is_degraded(tmp_path):
    path = tmp_path / "state.json"
    ten_years = 10 * 365 * 86400 * 1000
    path.write_bytes(encode_state(fresh_doc(updated_at=now_ms() + ten_years)))
    code, summary = status_json(path)
    assert code == 1 and any("in the future" in p for p in summary["problems"])


def test_an_entry_dated_in_the_future_is_not_fresh():
    now = now_ms()
    doc = document(funding=[mark("BTCUSDT", now + 3_600_000), mark("ETHUSDT", now + 500)])
    assert fresh_funding(doc, "BTCUSDT", max_age=60, now=now) is None
    assert fresh_funding(doc, "ETHUSDT", max_age=60, now=now) is not None  # mere clock skew
    assert "BTCUSDT" in summarize(doc, now, 60, "s").stale_funding


# -- output is text, never terminal control -------------------------------------------------------


def test_status_text_never_prints_terminal_control(tmp_path):
    path = tmp_path / "state.json"
    doc = fresh_doc()
    status = msgspec.structs.replace(
        doc.connection_status, last_error=f"bad row{ESCAPES}", hint=f"\nFAKE LINE{ESCAPES}"
    )
    funding = {f"X{ESCAPES}USDT": doc.funding["BTCUSDT"], **doc.funding}
    hostile = msgspec.structs.replace(doc, connection_status=status, funding=funding, tickers={})
    path.write_bytes(encode_state(hostile))
    result = run_cli("status", "--state-file", str(path))
    assert result.returncode == 0, result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\nFAKE LINE" not in result.stdout  # a newline in a field cannot forge a line
    assert "last error  bad row (" in result.stdout  # the text stays, its control goes


# -- bad input is one line, never a traceback -----------------------------------------------------


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.2, symbols=3)) as running:
        running.call("pause_ticks")
        yield running


def test_compare_survives_absurd_rest_numbers_and_prints_no_control(sim, tmp_path):
    path = tmp_path / "state.json"
    marks, _, _ = sim.snapshot()
    now = now_ms()
    doc = document(last_message_at=now, updated_at=now, funding=list(marks.values()))
    path.write_bytes(encode_state(doc))
    sim.call("diverge", "BTCUSDT", markPrice="1e999999999")
    sim.call("diverge", "ETHUSDT", lastFundingRate=f"0.1{ESCAPES}")
    result = run_cli("compare", "--state-file", str(path), "--rest-url", sim.rest_url())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "MISMATCH BTCUSDT: mark price" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout


def test_compare_json_prints_json_even_when_it_fails(tmp_path):
    result = run_cli(
        "compare", "--state-file", str(tmp_path / "absent.json"), "--rest-url",
        "http://127.0.0.1:9", "--json",
    )  # fmt: skip
    assert result.returncode == 2
    assert json.loads(result.stdout)["exit_code"] == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_log_lines_fold_input_onto_one_printable_line():
    import io
    import logging

    from binance_funding_ws.runtime.logs import PrintableFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test-printable")
    logger.addHandler(handler)
    try:
        logger.warning("bad input: %s", f"X{ESCAPES}\nFORGED line")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("unexpected")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING bad input: X FORGED line"
    assert lines[1] == "ERROR unexpected" and lines[2].startswith("Traceback")


# -- one safe open for every reader of a file the service user can write ------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink"])
def test_every_reader_refuses_what_the_state_reader_refuses(tmp_path, kind):
    """The audit history and the bot's stats are opened as the state file is: the same
    refusal, in the same words, at once."""
    from binance_funding_ws.tools.history import HistoryError, read_history
    from binance_funding_ws.tools.report import read_bot_stats

    path = tmp_path / "file"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        (tmp_path / "real").write_bytes(b"{}\n")
        path.symlink_to(tmp_path / "real")
    with pytest.raises(StateFileError) as state_error:
        read_state(path)
    expected = str(state_error.value)
    with pytest.raises(HistoryError) as history_error:
        read_history(path)
    assert str(history_error.value) == expected
    assert read_bot_stats(path) == (None, expected)


def test_the_bot_stats_file_is_called_the_stats_file_in_errors(tmp_path, caplog):
    from binance_funding_ws.consumer.source import FundingSource

    state = tmp_path / "state.json"
    state.write_bytes(encode_state(fresh_doc()))
    stats = tmp_path / "stats.json"
    stats.mkdir()  # a clumsy operator's path
    with caplog.at_level("WARNING"):
        FundingSource(state, max_age=30, rest_url=None, stats_file=stats).close()
    assert f"bot stats file {stats} is a directory, not a regular file" in caplog.text
    assert "state file" not in caplog.text
