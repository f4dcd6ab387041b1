"""Issue #11: a restart loses nothing. The daemon starts from the previous state file.

Real daemons in subprocesses, the real simulator, real files; an exchange that is unreachable
is a loopback port nothing listens on.
"""

from __future__ import annotations

import socket
import threading

import pytest

from binance_funding_sim import SimulatorConfig, SimulatorThread
from binance_funding_ws.frames import FrameDecoder
from binance_funding_ws.market import MarketBook
from binance_funding_ws.state import StateDocument, encode_state, now_ms
from daemon_helpers import DaemonProcess, run_cli, status_json, try_read, wait_for
from factories import combined, document, mark


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorConfig(tick=0.05, symbols=30)) as running:
        yield running


def unreachable_url() -> str:
    """A loopback WebSocket URL that refuses connections (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}/market/stream"


class Sampler:
    """Reads the state file in a loop from a thread, keeping every parsed document."""

    def __init__(self, path) -> None:
        self.path = path
        self.samples: list[StateDocument] = []
        self.unreadable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            doc = try_read(self.path)
            if doc is None:
                self.unreadable += 1
            else:
                self.samples.append(doc)
            self._stop.wait(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_restart_with_the_exchange_away_keeps_every_symbol_and_its_age(sim, tmp_path):
    state = tmp_path / "state.json"
    first = DaemonProcess(sim.ws_url(), state)
    first.wait_state(lambda d: len(d.funding) == 33, 15, "every symbol")
    first.kill()  # SIGKILL: no final write
    before = try_read(state)
    event_times = {symbol: entry.event_time for symbol, entry in before.funding.items()}
    with Sampler(state) as sampler:
        second = DaemonProcess(unreachable_url(), state)
        doc = second.wait_state(
            lambda d: d.connection_status.pid == second.pid and d.connection_status.writes >= 2,
            15,
            "the restarted daemon's own writes",
        )
        wait_for(lambda: sampler.samples[-1].connection_status.pid == second.pid, 5, "a sample")
    assert sampler.unreadable == 0
    for sample in sampler.samples:
        assert {s: e.event_time for s, e in sample.funding.items()} == event_times
        assert sample.tickers.keys() == before.tickers.keys()
    restarted = [s for s in sampler.samples if s.connection_status.pid == second.pid]
    assert restarted and all(s.connection_status.state != "connected" for s in restarted)
    status = doc.connection_status
    assert status.restored_at is not None and status.restored_funding == 33
    assert status.restored_tickers == len(before.tickers) and status.started_at >= before.updated_at
    code, summary = status_json(state)
    assert code == 1 and any("restored from the previous file" in p for p in summary["problems"])
    second.kill()


def test_restored_entries_give_way_to_newer_rows_only(sim, tmp_path):
    state = tmp_path / "state.json"
    ahead = now_ms() + 20_000  # newer than anything the simulator sends for 20 s
    rows = [mark("BTCUSDT", ahead, p="1.00000000"), mark("OLDUSDT", now_ms())]
    doc = document(updated_at=now_ms(), funding=rows)
    state.write_bytes(encode_state(doc))
    daemon = DaemonProcess(sim.ws_url(), state)
    doc = daemon.wait_connected()
    daemon.wait_state(lambda d: d.funding["ETHUSDT"].event_time > now_ms() - 5_000, 10, "data")
    btc = daemon.state().funding["BTCUSDT"]
    assert btc.event_time == ahead and btc.mark_price == "1.00000000"  # not sent back in time
    assert "OLDUSDT" in daemon.state().funding  # restored, never streamed: kept, ageing


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "torn"),  # the first half of a real state file
        (b"\x00\x01 not json", "not JSON"),
        (b'{"schema_version": 1, "funding": []}', "wrong shape"),
        (b'{"schema_version": 2, "whatever": true}', "schema_version 2"),
    ],
)
def test_a_bad_previous_file_is_kept_aside_and_the_daemon_fills_a_new_one(
    sim, tmp_path, content, what
):
    state = tmp_path / "state.json"
    if content is None:
        whole = encode_state(document(funding=[mark("BTCUSDT", now_ms())]))
        content = whole[: len(whole) // 2]
    state.write_bytes(content)
    daemon = DaemonProcess(sim.ws_url(), state)
    doc = daemon.wait_connected()
    assert len(doc.funding) == 33 and doc.connection_status.restored_at is None
    (aside,) = list(tmp_path.glob("state.json.corrupt-*"))
    assert aside.read_bytes() == content  # kept as it was, for forensics
    warnings = [line for line in daemon.log_text().splitlines() if "not used" in line]
    assert len(warnings) == 1 and str(aside) in warnings[0]


def test_only_the_newest_three_bad_files_are_kept(sim, tmp_path):
    state = tmp_path / "state.json"
    for n in range(5):
        state.write_bytes(f"torn {n}".encode())
        daemon = DaemonProcess(sim.ws_url(), state)
        daemon.wait_state(lambda d, daemon=daemon: d.connection_status.pid == daemon.pid, 10, "")
        daemon.kill()
    kept = sorted(p.read_bytes() for p in tmp_path.glob("state.json.corrupt-*"))
    assert kept == [b"torn 2", b"torn 3", b"torn 4"]


def test_entries_older_than_forget_after_are_dropped_and_logged_once(sim, tmp_path):
    state = tmp_path / "state.json"
    old = now_ms() - 2 * 3600 * 1000
    state.write_bytes(encode_state(document(updated_at=now_ms(), funding=[mark("GONEUSDT", old)])))
    daemon = DaemonProcess(sim.ws_url(), state, "--forget-after", "3600")
    doc = daemon.wait_connected()
    assert "GONEUSDT" not in doc.funding and len(doc.funding) == 33
    daemon.wait_state(lambda d: d.connection_status.writes >= 5, 10, "more writes")
    lines = [line for line in daemon.log_text().splitlines() if "GONEUSDT" in line]
    assert len(lines) == 1 and "forget" in lines[0]


def test_forget_after_zero_keeps_everything(sim, tmp_path):
    state = tmp_path / "state.json"
    old = now_ms() - 30 * 86400 * 1000
    state.write_bytes(encode_state(document(updated_at=now_ms(), funding=[mark("GONEUSDT", old)])))
    daemon = DaemonProcess(sim.ws_url(), state, "--forget-after", "0")
    doc = daemon.wait_connected()
    assert "GONEUSDT" in doc.funding
    _, summary = status_json(state)
    assert "GONEUSDT" in summary["stale_funding"]


def test_forget_after_is_validated():
    result = run_cli("run", "--forget-after", "10")
    assert result.returncode == 2 and "between 60 min" in result.stderr.splitlines()[-1]


def test_a_restored_book_keeps_the_merge_rule_on_the_fast_path():
    """The merge's fast path (a frame of unique, in-order rows) must not skip the check
    against restored entries: a restored row newer than a streamed one wins."""
    restored = document(funding=[mark("BTCUSDT", 5_000, p="1.0"), mark("ETHUSDT", 1_000)])
    book = MarketBook()
    book.restore(restored.funding, restored.tickers, written_at=10_000, now=now_ms())
    frame = FrameDecoder().decode(
        combined("!markPrice@arr@1s", [mark("BTCUSDT", 4_000, p="2.0"), mark("ETHUSDT", 4_000)])
    )
    book.apply(frame, received_at=4_100)
    book.publish()
    assert book.funding["BTCUSDT"] == restored.funding["BTCUSDT"]  # 5,000 beats 4,000
    assert book.funding["ETHUSDT"].event_time == 4_000  # 4,000 beats the restored 1,000


def test_a_previous_file_is_no_way_around_the_symbol_cap():
    restored = document(funding=[mark(f"S{n}USDT", 1_000 + n) for n in range(10)])
    book = MarketBook(max_symbols=4)
    book.restore(restored.funding, restored.tickers, written_at=10_000, now=now_ms())
    assert sorted(book.funding) == ["S6USDT", "S7USDT", "S8USDT", "S9USDT"]  # the newest
    book.forget(["S6USDT"], [])
    frame = FrameDecoder().decode(combined("!markPrice@arr@1s", [mark("NEWUSDT", 5_000)]))
    assert book.apply(frame, received_at=5_000).accepted == 1  # the forgotten place is free
