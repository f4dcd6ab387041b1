"""Hostile and clumsy input to the commands that read: ``status`` and ``compare`` print text,
never terminal control, and every reader of a file the service user can write refuses what the
state reader refuses.

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
from binance_funding_ws.state import StateFileError, encode_state, read_state
from daemon_helpers import run_cli
from factories import ESCAPES, document, fresh_doc

# -- every reader has a limit and never blocks ----------------------------------------------------


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
