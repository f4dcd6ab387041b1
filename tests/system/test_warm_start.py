"""A restart loses nothing: the daemon starts from the previous state file, its own or the
earlier script's, and trusts it no more than the feed.

Real daemons in subprocesses, the real simulator, real files; an exchange that is unreachable
is a loopback port nothing listens on.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from pathlib import Path

import msgspec
import pytest

from binance_funding_sim import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.runtime.writer import AtomicWriter
from binance_funding_ws.state import FundingEntry, StateDocument, encode_state, missing_symbols
from daemon_helpers import DaemonProcess, run_cli, status_json, try_read, wait_for
from factories import TEN_YEARS_MS, document, mark, previous_entry, ticker


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
    daemon.wait_connected()
    # Connected is not yet complete: the simulator's 33 symbols come in several frames a tick.
    doc = daemon.wait_state(lambda d: len(d.funding) == 33, 15, "all 33 symbols")
    assert doc.connection_status.restored_at is None
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


# -- the previous file passes the live rows' gate ----------------------------------------


def previous_file(funding: dict[str, FundingEntry], updated_at: int) -> bytes:
    """Our own format, holding exactly ``funding``."""
    doc = document(updated_at=updated_at, funding=[])
    missing = missing_symbols(funding, {})
    return encode_state(msgspec.structs.replace(doc, funding=funding, missing=missing))


def warm_start_warnings(daemon: DaemonProcess) -> list[str]:
    """The warnings the warm start logged (each refusal must be one line, whatever the file)."""
    return [
        line
        for line in daemon.log_text().splitlines()
        if "WARNING" in line and "runtime.warmstart" in line
    ]


def test_future_dated_junk_in_the_previous_file_neither_pins_nor_crowds_out_live_data(
    sim, tmp_path
):
    """6,000 junk symbols ten years ahead, BTCUSDT at 123.0 ten years ahead, and keys and
    decimals no feed row could carry: refused, counted, named in one warning."""
    state = tmp_path / "state.json"
    now = now_ms()
    ahead = now + TEN_YEARS_MS
    funding = {f"JUNK{n:04d}USDT": previous_entry(ahead) for n in range(6_000)}
    funding["BTCUSDT"] = previous_entry(ahead, mark_price="123.0")
    for key in ("", "btcusdt", "\x1b]0;owned\x07USDT", "K" * 100_000):
        funding[key] = previous_entry(now - 1_000)
    funding["HUGEUSDT"] = previous_entry(now - 1_000, mark_price="9" * 5_000_000)
    funding["OLDUSDT"] = previous_entry(now - 60_000)  # honest: restored, ageing
    state.write_bytes(previous_file(funding, updated_at=now))

    daemon = DaemonProcess(sim.ws_url(), state)
    doc = daemon.wait_state(
        lambda d: d.connection_status.pid == daemon.pid and len(d.funding) == 34,
        20,
        "every live symbol and the honest restored one",
    )

    live = [instrument.symbol for instrument in sim.sim._market.instruments]
    assert sorted(doc.funding) == sorted([*live, "OLDUSDT"])
    btc = doc.funding["BTCUSDT"]
    assert btc.mark_price != "123.0" and btc.event_time <= now_ms() + 60_000
    assert doc.connection_status.restored_funding == 1
    assert doc.connection_status.errors >= 6_006
    assert len(state.read_bytes()) < 100_000  # not the 15 MB file republished every second
    (warning,) = warm_start_warnings(daemon)
    assert "6,006 entries not restored: " in warning
    for part in ("4 not keyed by a symbol", "1 with a value that is not a decimal", "6,001 dated"):
        assert part in warning
    assert len(warning) < 1_000 and "\x1b" not in warning and "\x07" not in warning


# -- the earlier script's file -------------------------------------------------------------


def write_like_the_earlier_script(state: Path, content: dict) -> bytes:
    """``json.dump(indent=2)`` to ``<stem>.tmp``, then a rename, as the earlier script did."""
    tmp = state.with_suffix(".tmp")
    with tmp.open("w") as handle:
        json.dump(content, handle, indent=2)
    tmp.replace(state)
    return state.read_bytes()


def earlier_content(funding: list[dict], tickers: list[dict]) -> dict:
    status = {"connected": True, "messages_received": 10_200, "reconnects": 0}
    return {
        "connection_status": status,
        "tickers": {row["s"]: row for row in tickers},
        "funding": {row["s"]: row for row in funding},
    }


class RawSampler(Sampler):
    """Reads the file as the bot's earlier reader did (plain JSON): every sample must parse
    and hold funding data, whichever format it is in."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.missing = 0
        self.funding_sizes: list[int] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                content = json.loads(self.path.read_bytes())
            except FileNotFoundError:
                self.missing += 1
            except ValueError:
                self.unreadable += 1
            else:
                self.funding_sizes.append(len(content.get("funding") or {}))
            self._stop.wait(0.002)


def test_the_earlier_scripts_file_is_imported_kept_as_pre_and_its_tmp_removed(tmp_path):
    state = tmp_path / ".funding_state.json"
    now = now_ms()
    funding = [
        mark("BTCUSDT", now - 5_000, p="97012.40000000", r="0.00010000", T=now + 3_600_000),
        mark("ETHUSDT", now - 4_000, p="3401.17000000", r="-0.00002500", T=now + 3_600_000),
        mark("MATICUSDT", now - 86_400_000, p="0.38000000", r="0.00000000", T=0),  # SETTLING
    ]
    tickers = [ticker("BTCUSDT", now - 6_000, c="97010.10"), ticker("ETHUSDT", now - 7_000)]
    original = write_like_the_earlier_script(state, earlier_content(funding, tickers))
    written_ns = (now - 2_000) * 1_000_000
    os.utime(state, ns=(written_ns, written_ns))
    leftover = state.with_suffix(".tmp")  # a crash of the earlier writer mid-write
    leftover.write_text('{\n  "connection_status": {')

    with RawSampler(state) as sampler:
        daemon = DaemonProcess(unreachable_url(), state)
        doc = daemon.wait_state(
            lambda d: d.connection_status.pid == daemon.pid and d.connection_status.writes >= 2,
            15,
            "the daemon's own writes",
        )
    assert sampler.missing == 0 and sampler.unreadable == 0
    assert sampler.funding_sizes and min(sampler.funding_sizes) == 3  # never an empty map

    for row in funding:  # the exchange's values and event times, exactly
        entry = doc.funding[row["s"]]
        assert (entry.mark_price, entry.funding_rate, entry.index_price) == (
            row["p"],
            row["r"],
            row["i"],
        )
        assert (entry.event_time, entry.next_funding_time) == (row["E"], row["T"])
        assert entry.received_at == now - 2_000  # the earlier file's write time
    assert doc.tickers["BTCUSDT"].last_price == "97010.10"
    assert {s: e.event_time for s, e in doc.tickers.items()} == {t["s"]: t["E"] for t in tickers}
    status = doc.connection_status
    assert (status.restored_funding, status.restored_tickers, status.errors) == (3, 2, 0)

    (kept,) = tmp_path.glob(".funding_state.json.pre-*")
    assert re.fullmatch(r"\.funding_state\.json\.pre-\d{8}T\d{6}\.\d{3}Z", kept.name)
    assert kept.read_bytes() == original
    assert not leftover.exists() and not list(tmp_path.glob("*.corrupt-*"))
    lines = daemon.log_text().splitlines()
    (imported,) = [line for line in lines if "earlier script's file" in line]
    assert "imported 3 funding and 2 ticker entries" in imported and str(kept) in imported
    assert "INFO" in imported and warm_start_warnings(daemon) == []
    assert any("earlier script's leftover temporary file" in line for line in lines)


def test_the_earlier_scripts_leftover_tmp_goes_but_nothing_else_of_a_like_name(tmp_path):
    state = tmp_path / ".funding_state.json"
    writer = AtomicWriter(state)
    leftover = tmp_path / ".funding_state.tmp"
    leftover.write_text("{")
    writer.remove_leftovers()
    assert not leftover.exists()

    target = tmp_path / "precious"
    target.write_text("keep")
    leftover.symlink_to(target)  # a link of that name is not the earlier writer's file
    writer.remove_leftovers()
    assert leftover.is_symlink() and target.read_text() == "keep"

    odd = tmp_path / "state.tmp"  # a state file named *.tmp is never its own leftover
    odd.write_text("{}")
    AtomicWriter(odd).remove_leftovers()
    assert odd.read_text() == "{}"


def _huge(now: int) -> bytes:
    padding = "x" * (64 * 1024 * 1024)
    return json.dumps({"connection_status": {"note": padding}, "funding": {}}).encode()


def _deep(now: int) -> bytes:
    return (
        b'{"connection_status": {}, "funding": {"BTCUSDT": '
        + b"[" * 200_000
        + b"]" * 200_000
        + b"}}"
    )


def _wrong_types(now: int) -> bytes:
    funding: dict[str, object] = {f"BAD{n}USDT": n for n in range(500)}
    funding |= {f"LIST{n}USDT": [mark(f"LIST{n}USDT", now)] for n in range(500)}
    funding["NULLUSDT"] = None
    funding["OLDUSDT"] = mark("OLDUSDT", now - 60_000)
    content = {"connection_status": [], "tickers": {"BTCUSDT": "x"}, "funding": funding}
    return json.dumps(content, indent=2).encode()


def _many_symbols(now: int) -> bytes:
    rows = [mark(f"S{n:06d}USDT", now - 3_600_000 - n) for n in range(100_000)]
    return json.dumps(earlier_content(rows, []), indent=2).encode()


@pytest.mark.parametrize(
    ("build", "warning"),
    [
        (_huge, "larger than 64 MiB"),
        (_deep, "nested too deeply"),
        (_wrong_types, "1,002 entries not restored: 1,001 funding rows that are not"),
        (_many_symbols, "95,000 entries not restored: 95,000 over --max-symbols (5,000)"),
    ],
    ids=["huge", "deeply-nested", "rows-of-the-wrong-type", "100k-symbols"],
)
def test_a_hostile_earlier_file_is_refused_in_one_line_and_the_daemon_runs(
    sim, tmp_path, build, warning
):
    state = tmp_path / ".funding_state.json"
    state.write_bytes(build(now_ms()))
    daemon = DaemonProcess(sim.ws_url(), state)
    doc = daemon.wait_state(
        lambda d: d.connection_status.pid == daemon.pid and d.connection_status.messages > 0,
        60,
        "the daemon's own file, the feed flowing",
    )
    assert len(doc.funding) <= 5_000
    (line,) = warm_start_warnings(daemon)
    assert warning in line and len(line) < 1_000
    assert daemon.proc.poll() is None and "Traceback" not in daemon.log_text()


# -- files kept aside -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["corrupt", "pre"])
def test_planted_names_never_make_the_file_just_kept_aside_go(sim, tmp_path, kind):
    """Names that sort after every timestamp, a link and a directory of the stamp's very
    shape: the log's "kept as" names a file that is there, and nothing is followed."""
    state = tmp_path / "state.json"
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious"
    target.write_text("keep")
    prefix = f"state.json.{kind}-"
    planted = [tmp_path / f"{prefix}zzz{n}" for n in range(3)]
    planted += [tmp_path / f"{prefix}99991231T23595{n}.999Z" for n in range(3)]
    for path in planted:
        path.write_text("planted")
    link = tmp_path / f"{prefix}99991231T235959.998Z"
    link.symlink_to(target)
    folder = tmp_path / f"{prefix}99991231T235959.997Z"
    folder.mkdir()
    if kind == "corrupt":
        content = b'{"schema_version": 1, "torn'
        state.write_bytes(content)
    else:
        content = write_like_the_earlier_script(state, earlier_content([], []))

    daemon = DaemonProcess(sim.ws_url(), state)
    daemon.wait_state(lambda d: d.connection_status.pid == daemon.pid, 15, "the daemon's file")

    (kept,) = re.findall(r"kept as (\S+?)[;\s]", daemon.log_text())
    assert Path(kept).name.startswith(prefix) and Path(kept).read_bytes() == content
    assert link.is_symlink() and target.read_text() == "keep" and folder.is_dir()
    assert all(path.exists() for path in planted[:3])  # not of the stamp's shape: not ours


def test_only_the_newest_three_earlier_files_are_kept(tmp_path):
    state = tmp_path / ".funding_state.json"
    for n in range(5):
        rows = [mark("BTCUSDT", now_ms() - 1_000, p=f"{n}.0")]
        write_like_the_earlier_script(state, earlier_content(rows, []))
        daemon = DaemonProcess(unreachable_url(), state)
        daemon.wait_state(lambda d, daemon=daemon: d.connection_status.pid == daemon.pid, 10, "")
        daemon.kill()
    kept = [json.loads(p.read_bytes()) for p in tmp_path.glob(".funding_state.json.pre-*")]
    prices = sorted(content["funding"]["BTCUSDT"]["p"] for content in kept)
    assert prices == ["2.0", "3.0", "4.0"]
