"""``FundingSource``: the file while it is fresh, REST when it is not, websocket-only on request.

The acceptance tests run the real daemon against the simulator, read the real file and ask
the simulator's REST endpoint, counting its requests (``stats()["rest_requests"]``). Nothing
sleeps for a fixed time: every wait is on a condition, with a generous deadline.
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws import FundingQuote, FundingSource, TickerQuote
from binance_funding_ws.botstats import decode_bot_stats
from binance_funding_ws.clock import now_ms
from binance_funding_ws.consumer.fallback import MAX_IN_FLIGHT
from binance_funding_ws.health import stale_entries
from binance_funding_ws.quotes import funding_from_rest
from binance_funding_ws.state import encode_state
from daemon_helpers import DaemonProcess, try_read, wait_for
from factories import document, fresh_doc, mark
from rest_helpers import PREMIUM_BODY, drip_server

ROOT = Path(__file__).resolve().parents[3]


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(tick=0.1, symbols=20)) as running:
        yield running


@pytest.fixture
def daemon(sim, tmp_path) -> Iterator[DaemonProcess]:
    with DaemonProcess(sim.ws_url(), tmp_path / "state.json") as running:
        running.wait_connected()
        yield running


def rest_requests(sim: SimulatorThread) -> int:
    return sim.call("stats")["rest_requests"]


def wait_all_stale(state_file: Path, max_age: float) -> None:
    """Until every entry of the (dead daemon's) file is older than ``max_age``."""

    def stale() -> bool:
        doc, now = try_read(state_file), now_ms()
        return doc is not None and all(
            len(stale_entries(entries, now, max_age)) == len(entries)
            for entries in (doc.funding, doc.tickers)
        )

    wait_for(stale, 10 + max_age, f"every entry older than {max_age} s")


def write_state(path: Path, event_time: int, symbols: tuple[str, ...] = ("AUSDT",)) -> None:
    """A state file holding ``symbols`` at ``event_time``, replaced atomically like the daemon."""
    doc = document(funding=[mark(symbol, event_time) for symbol in symbols])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(encode_state(doc))
    os.replace(tmp, path)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_rest_funding(quote: FundingQuote | None, row: dict) -> None:
    assert quote is not None and quote.source == "rest", quote
    assert (quote.funding_rate, quote.mark_price, quote.index_price) == (
        row["r"],
        row["p"],
        row["i"],
    )
    assert (quote.next_funding_time, quote.event_time) == (row["T"], row["E"])


def assert_rest_ticker(quote: TickerQuote | None, row: dict) -> None:
    assert quote is not None and quote.source == "rest", quote
    got = (quote.last_price, quote.open_price, quote.high_price, quote.low_price, quote.volume)
    assert got == (row["c"], row["o"], row["h"], row["l"], row["v"])
    assert (quote.quote_volume, quote.price_change, quote.price_change_percent) == (
        row["q"],
        row["p"],
        row["P"],
    )
    assert (quote.weighted_avg_price, quote.trade_count, quote.event_time) == (
        row["w"],
        row["n"],
        row["C"],
    )


def lookups(stats: dict[str, int]) -> int:
    return stats["websocket"] + stats["rest"] + stats["unavailable"]


# -- acceptance: real daemon, real file, the simulator's REST ---------------------------------


def test_a_fresh_file_answers_every_lookup_and_rest_is_never_asked(sim, daemon):
    # Every ticker arrives within three ticks; then a frozen market, so that the file and the
    # exchange agree exactly.
    daemon.wait_state(lambda d: len(d.tickers) == 22, 15, "every ticker in the file")
    sim.call("pause_ticks")
    marks, tickers, _ = sim.snapshot()

    def holds_last_tick(doc) -> bool:
        return all(
            getattr(entries.get(symbol), "event_time", None) == row["E"]
            for entries, rows in ((doc.funding, marks), (doc.tickers, tickers))
            for symbol, row in rows.items()
        )

    daemon.wait_state(holds_last_tick, 15, "the last tick in the file")
    before = rest_requests(sim)
    with FundingSource(daemon.state_file, max_age=30, rest_url=sim.rest_url()) as source:
        for symbol, row in marks.items():
            quote = source.funding(symbol)
            assert quote is not None and quote.source == "websocket"
            assert (quote.funding_rate, quote.mark_price, quote.event_time) == (
                row["r"],
                row["p"],
                row["E"],
            )
        for symbol, row in tickers.items():
            ticker = source.ticker(symbol.lower())  # symbols are case-insensitive
            assert ticker is not None and ticker.source == "websocket" and ticker.symbol == symbol
            assert (ticker.last_price, ticker.trade_count) == (row["c"], row["n"])
        stats = source.stats
    assert rest_requests(sim) == before
    assert stats["websocket"] == len(marks) + len(tickers) == lookups(stats)
    assert stats["rest_requests"] == stats["unavailable"] == stats["file_errors"] == 0


def test_a_dead_daemon_falls_back_to_rest_with_the_exchange_answers(sim, daemon):
    max_age = 1.0
    with FundingSource(daemon.state_file, max_age=max_age, rest_url=sim.rest_url()) as source:
        wait_for(lambda: source.funding("BTCUSDT").source == "websocket", 10, "a fresh answer")
        daemon.kill()
        sim.call("pause_ticks")
        wait_all_stale(daemon.state_file, max_age)
        marks, tickers, _ = sim.snapshot()
        before = rest_requests(sim)
        # Counted from here: while the daemon was starting, the first lookups may have come
        # from REST too (a loaded machine writes the first fresh file late).
        counted = dict(source.stats)
        symbols = ["BTCUSDT", "ETHUSDT", "XAUUSDT", "BTCUSD_PERP", "MATICUSDT", "SYN0003USDT"]
        for symbol in symbols:
            assert_rest_funding(source.funding(symbol), marks[symbol])
        ticker_symbols = [s for s in symbols if s in tickers]
        for symbol in ticker_symbols:
            assert_rest_ticker(source.ticker(symbol), tickers[symbol])
        # One request of weight 1 per lookup (a paused market's answers are themselves older
        # than max_age, so none is reused).
        assert rest_requests(sim) - before == len(symbols) + len(ticker_symbols)
        stats = {key: source.stats[key] - counted.get(key, 0) for key in counted}
    assert stats["rest"] == len(symbols) + len(ticker_symbols)
    assert stats["rest_errors"] == stats["unavailable"] == 0


def test_a_rest_answer_is_reused_while_it_is_within_max_age(sim, tmp_path):
    missing = tmp_path / "never-written.json"
    with FundingSource(missing, max_age=5, rest_url=sim.rest_url(), check_interval=0) as source:
        first = source.funding("ETHUSDT")
        second = source.funding("ETHUSDT")
        stats = source.stats
    assert first is not None and first.source == "rest" and second == first
    assert rest_requests(sim) == 1
    assert stats["rest"] == 2 and stats["rest_reused"] == 1 and stats["rest_requests"] == 1
    assert stats["file_errors"] == 1  # a missing file is counted once, not at every check
    assert stats["file_checks"] == 2


def test_unknown_and_invalid_symbols_are_none_and_counted(sim, daemon):
    with FundingSource(daemon.state_file, max_age=30, rest_url=sim.rest_url()) as source:
        before = rest_requests(sim)
        assert source.funding("NOSUCHUSDT") is None
        assert source.funding("nosuchusdt") is None  # remembered: no second request
        assert source.ticker("MATICUSDT") is None  # SETTLING: a mark price, never a ticker
        assert rest_requests(sim) - before == 2
        invalid = ["", "BTC/USDT", "../x", "BTCUSDT?x=1", "BTC USDT", "B" * 65, "ВТСUSDT"]
        invalid += [None, 42, b"BTCUSDT", ["BTCUSDT"], {"s": 1}]
        for symbol in invalid:
            assert source.funding(symbol) is None
            assert source.ticker(symbol) is None
        assert rest_requests(sim) - before == 2  # nothing invalid was ever sent
        stats = source.stats
    assert stats["invalid_symbols"] == 2 * len(invalid)
    assert stats["unavailable"] == 3 + 2 * len(invalid) == lookups(stats)


def test_websocket_only_answers_from_the_file_or_not_at_all(sim, daemon):
    with FundingSource(daemon.state_file, max_age=1.0, rest_url=None) as source:
        assert source.mode == "websocket-only"
        wait_for(lambda: source.funding("BTCUSDT"), 10, "a fresh answer")
        daemon.kill()
        wait_all_stale(daemon.state_file, 1.0)
        before = source.stats
        assert source.funding("BTCUSDT") is None
        assert source.ticker("ETHUSDT") is None
        assert source.funding("NOSUCHUSDT") is None
        stats = source.stats
    assert rest_requests(sim) == 0
    assert stats["unavailable"] - before["unavailable"] == 3
    assert stats["websocket"] == before["websocket"] >= 1
    assert stats["rest_requests"] == stats["rest_errors"] == 0


def test_rest_unreachable_100_lookups_finish_at_once(tmp_path):
    state = tmp_path / "state.json"
    write_state(state, now_ms() - 60_000, tuple(f"S{n}USDT" for n in range(50)))  # all stale
    url = f"http://127.0.0.1:{free_port()}"
    with FundingSource(state, max_age=1, rest_url=url, timeout=2) as source:
        started = time.monotonic()
        answers = [source.funding(f"S{n % 50}USDT") for n in range(100)]
        elapsed = time.monotonic() - started
        stats = source.stats
    assert answers == [None] * 100
    assert elapsed < 3, f"100 lookups took {elapsed:.1f} s"
    # The first refused connection opened the circuit; at most a probe or two followed.
    assert 1 <= stats["rest_errors"] == stats["rest_requests"] <= 3
    assert stats["rest_skipped"] >= 97 and stats["unavailable"] == 100


def test_a_rest_server_that_never_answers_costs_one_timeout(tmp_path):
    state = tmp_path / "state.json"
    write_state(state, now_ms() - 60_000, ("AUSDT", "BUSDT"))
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with FundingSource(state, max_age=1, rest_url=url, timeout=0.5) as source:
            durations = []
            for n in range(20):
                started = time.monotonic()
                assert source.funding("AUSDT" if n % 2 else "BUSDT") is None
                durations.append(time.monotonic() - started)
            stats = source.stats
    assert max(durations) < 0.5 + 0.5, durations  # never much past the timeout
    assert sum(durations) < 2.5, durations
    # One request (a second only if this machine stalled for longer than the back-off).
    assert stats["rest_requests"] <= 2 and stats["rest_skipped"] >= 18


@pytest.fixture
def fake_rest() -> Iterator[tuple[str, list[bytes], list[str]]]:
    """A REST server answering 200 with the bodies queued in ``bodies``; logs request paths."""
    bodies: list[bytes] = []
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = bodies.pop(0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies, paths
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"<html>maintenance</html>",
        PREMIUM_BODY.replace(b"BTCUSDT", b"ETHUSDT"),  # another symbol's prices
        PREMIUM_BODY.replace(b'"0.00038246"', b"0.00038246"),  # a float, not the string
        PREMIUM_BODY[:-1] + b',"pad":"' + b"x" * 70_000 + b'"}',  # far larger than any answer
    ],
)
def test_a_garbage_rest_answer_is_a_failure_not_an_answer(tmp_path, fake_rest, garbage):
    url, bodies, paths = fake_rest
    bodies.append(garbage)
    with FundingSource(tmp_path / "none.json", max_age=5, rest_url=url) as source:
        assert source.funding("BTCUSDT") is None
        stats = source.stats
    assert paths == ["/fapi/v1/premiumIndex?symbol=BTCUSDT"]
    assert stats["rest_errors"] == 1 and stats["unavailable"] == 1  # a failure, not an answer


def premium_body(time_ms: int) -> bytes:
    """The documentation's premiumIndex answer, dated ``time_ms``."""
    return PREMIUM_BODY.replace(b'"time":1597370495002', b'"time":%d' % time_ms)


def test_a_valid_rest_answer_keeps_the_exchange_strings(tmp_path, fake_rest):
    url, bodies, paths = fake_rest
    body = premium_body(now_ms())
    bodies.append(body)
    with FundingSource(tmp_path / "none.json", max_age=5, rest_url=url + "/") as source:
        quote = source.funding("btcusdt")
    assert paths == ["/fapi/v1/premiumIndex?symbol=BTCUSDT"]  # upper-cased, one slash
    assert quote == funding_from_rest("BTCUSDT", body)
    assert (quote.funding_rate, quote.index_price) == ("0.00038246", "11781.80495970")


@pytest.mark.parametrize("offset_s", [-86_400, 365 * 86_400])
def test_a_rest_answer_dated_a_day_old_or_a_year_ahead_is_not_a_quote(
    tmp_path, fake_rest, offset_s
):
    url, bodies, _ = fake_rest
    bodies.append(premium_body(now_ms() + offset_s * 1000))
    with FundingSource(tmp_path / "none.json", max_age=5, rest_url=url) as source:
        assert source.funding("BTCUSDT") is None
        stats = source.stats
    assert stats["rest_errors"] == 1 and stats["unavailable"] == 1 and stats["rest"] == 0


@pytest.mark.parametrize(("status", "retry_after"), [(429, 2.0), (418, 1.5)])
def test_retry_after_is_respected_no_request_inside_the_window(sim, tmp_path, status, retry_after):
    missing = tmp_path / "none.json"
    with FundingSource(missing, max_age=5, rest_url=sim.rest_url()) as source:
        sim.call("rest_fault", status=status, count=1, retry_after=retry_after)
        started = time.monotonic()
        assert source.funding("BTCUSDT") is None
        assert rest_requests(sim) == 1

        def answered() -> FundingQuote | None:
            assert rest_requests(sim) == 1 or time.monotonic() - started >= retry_after
            return source.funding("BTCUSDT")

        quote = wait_for(answered, 10 + retry_after, "an answer after Retry-After", step=0.05)
        waited = time.monotonic() - started
        stats = source.stats
    assert quote.source == "rest" and waited >= retry_after
    assert rest_requests(sim) == 2  # the 429/418 and the one after the window: nothing between
    assert stats["rest_errors"] == 1 and stats["rest_skipped"] >= 1


def test_concurrent_lookups_of_one_symbol_share_one_request(sim, tmp_path):
    missing = tmp_path / "none.json"
    with FundingSource(missing, max_age=5, rest_url=sim.rest_url()) as source:
        barrier = threading.Barrier(8)
        answers: list[FundingQuote | None] = []

        def ask() -> None:
            barrier.wait()
            answers.append(source.funding("SOLUSDT"))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 8 and all(a is not None and a.source == "rest" for a in answers)
    assert rest_requests(sim) == 1


def test_threads_on_a_changing_file_parse_each_version_once(tmp_path):
    state = tmp_path / "state.json"
    versions = [now_ms() + n for n in range(6)]
    write_state(state, versions[0])
    stop = threading.Event()
    seen = [0] * 8

    with FundingSource(state, max_age=60, rest_url=None) as source:

        def hammer(slot: int) -> None:
            while not stop.is_set():
                quote = source.funding("AUSDT")
                seen[slot] = quote.event_time if quote else -1

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(len(seen))]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            for version in versions:
                if version != versions[0]:
                    write_state(state, version)
                wait_for(lambda v=version: all(s == v for s in seen), 15, f"version {version}")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        elapsed = time.monotonic() - started
        stats = source.stats
    assert stats["file_parses"] == len(versions)
    assert stats["file_checks"] <= elapsed / 0.1 + 2  # one stat() per check interval at most
    assert stats["websocket"] == lookups(stats) > 100 * len(versions)


def test_threads_on_a_live_daemon_file_parse_at_most_once_per_write(daemon):
    first = daemon.wait_connected().connection_status.writes
    stop = threading.Event()
    with FundingSource(daemon.state_file, max_age=30, rest_url=None) as source:

        def hammer() -> None:
            while not stop.is_set():
                assert source.funding("BTCUSDT") is not None

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: source.stats["file_parses"] >= 5, 15, "five versions parsed")
        stop.set()
        for thread in threads:
            thread.join()
        stats = source.stats
    last = daemon.state().connection_status.writes
    assert stats["file_parses"] <= last - first + 1  # at most every version written meanwhile
    assert stats["websocket"] > 10 * stats["file_parses"]


# -- bad files, bad arguments -----------------------------------------------------------------


def test_a_corrupt_or_unreadable_file_is_counted_and_treated_as_stale(tmp_path, caplog):
    state = tmp_path / "state.json"
    state.write_bytes(b'{"schema_version": 1, "funding": {"AUSDT": ')
    caplog.set_level(logging.WARNING, logger="binance_funding_ws.consumer")
    with FundingSource(state, max_age=60, rest_url=None, check_interval=0) as source:
        for _ in range(20):
            assert source.funding("AUSDT") is None
        assert source.stats["file_errors"] == 1  # once per change of the file, not per lookup
        write_state(state, now_ms())
        assert source.funding("AUSDT").source == "websocket"
        state.unlink()
        state.mkdir()  # a directory where the file was
        assert source.funding("AUSDT") is None
        state.rmdir()
        state.symlink_to(tmp_path / "elsewhere.json")
        assert source.funding("AUSDT") is None
        stats = source.stats
    assert stats["file_errors"] == 3 and stats["file_parses"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and "not a state file" in warnings[0]
    assert "a directory" in warnings[1] and "symbolic link" in warnings[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"max_age": 0}, ValueError, "max_age"),
        ({"max_age": -1}, ValueError, "max_age"),
        ({"max_age": float("nan")}, ValueError, "max_age"),
        ({"max_age": "30"}, TypeError, "max_age"),
        ({"max_age": True}, TypeError, "max_age"),
        ({"max_age": 30, "timeout": 0}, ValueError, "timeout"),
        ({"max_age": 30, "timeout": 1e9}, ValueError, "timeout"),
        ({"max_age": 30, "rest_url": "fapi.binance.com"}, ValueError, "rest_url"),
        ({"max_age": 30, "rest_url": "ftp://fapi.binance.com"}, ValueError, "rest_url"),
        ({"max_age": 30, "rest_url": "https://x/?symbol=A"}, ValueError, "rest_url"),
        ({"max_age": 30, "rest_url": "http://x:99999"}, ValueError, "rest_url"),
        ({"max_age": 30, "rest_url": "http://x\n/"}, ValueError, "rest_url"),
        ({"max_age": 30, "rest_url": 8080}, TypeError, "rest_url"),
        ({"max_age": 30, "ticker_max_age": 0}, ValueError, "ticker_max_age"),
        ({"max_age": 30, "stats_file": "/nonexistent/dir/s.json"}, ValueError, "stats_file"),
        ({"max_age": 30, "report_interval": 0}, ValueError, "report_interval"),
        ({"max_age": 30, "check_interval": -1}, ValueError, "check_interval"),
    ],
)
def test_bad_arguments_raise_at_once_naming_themselves(tmp_path, kwargs, error, names):
    with pytest.raises(error, match=names):
        FundingSource(tmp_path / "state.json", **kwargs)


@pytest.mark.parametrize(
    ("path", "error"), [(None, TypeError), (b"state.json", TypeError), ("", ValueError)]
)
def test_a_bad_state_file_argument_raises_naming_it(path, error):
    with pytest.raises(error, match="state_file"):
        FundingSource(path, max_age=30)


def test_max_age_is_required_and_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        FundingSource(tmp_path / "state.json")
    with pytest.raises(TypeError):
        FundingSource(tmp_path / "state.json", 30)


# -- visibility: the INFO line and the stats file ---------------------------------------------


def test_fallbacks_are_logged_once_per_interval_and_written_to_the_stats_file(tmp_path, caplog):
    state, stats_file = tmp_path / "state.json", tmp_path / "bot-stats.json"
    write_state(state, now_ms(), ("AUSDT", "BUSDT"))
    caplog.set_level(logging.INFO, logger="binance_funding_ws.consumer")
    source = FundingSource(state, max_age=60, rest_url=None, stats_file=stats_file)
    try:  # the interval's end is called by hand here: report() is what the timer calls
        wait_for(stats_file.exists, 10, "the stats file written at start")
        assert source.funding("AUSDT") is not None
        source.report()
        assert not [r for r in caplog.records if r.levelno == logging.INFO]  # nothing fell back
        for symbol in ("CUSDT", "CUSDT", "DUSDT", "bad/symbol"):
            assert source.funding(symbol) is None
        source.report()
    finally:
        source.close()
    stats = msgspec.json.decode(stats_file.read_bytes())
    assert stats["mode"] == "websocket-only" and stats["websocket"] == 1
    assert stats["rest"] == stats["rest_errors"] == 0 and stats["unavailable"] == 4
    assert stats["top_rest_symbols"] == {"CUSDT": 2, "DUSDT": 1}
    assert stats["updated_at"] >= stats["started_at"] > 0
    assert not list(tmp_path.glob(".bot-stats.json.*"))  # temp files replaced, none left
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1, lines  # one line for the interval that had fallbacks; none at close
    assert "4 of 4 lookups not answered by the state file" in lines[0]
    assert "0 from REST, 4 unavailable; most: CUSDT 2, DUSDT 1" in lines[0]
    assert "invalid symbols 1" in lines[0]


def test_the_report_thread_keeps_the_stats_file_current(tmp_path):
    stats_file = tmp_path / "bot-stats.json"
    with FundingSource(
        tmp_path / "none.json",
        max_age=1,
        rest_url=None,
        stats_file=stats_file,
        report_interval=0.05,
    ) as source:
        for _ in range(3):
            source.ticker("BTCUSDT")

        def written() -> bool:
            return (
                stats_file.exists() and decode_bot_stats(stats_file.read_bytes()).unavailable == 3
            )

        wait_for(written, 10, "the stats file with three unavailable lookups")
    assert decode_bot_stats(stats_file.read_bytes()).file_errors == 1


# -- the pure pieces --------------------------------------------------------------------------


# -- the example ------------------------------------------------------------------------------


def test_the_enrich_alert_example_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "enrich_alert.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. daemon running:") and "(source websocket," in lines[0]
    assert lines[1].startswith("2. daemon stopped") and "(source rest," in lines[1]
    assert lines[2].startswith("3. websocket-only") and "funding unavailable" in lines[2]
    assert '"websocket":1,"rest":1,"unavailable":0' in result.stdout
    assert "1 of 2 lookups not answered by the state file" in result.stderr


# -- a hostile REST server: bounded threads and sockets ---------------------------------------

DRIP_DURATION = 120.0  # seconds: minutes, so that a slow leak shows


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_a_dripping_rest_server_leaves_threads_and_descriptors_flat(tmp_path):
    """A server that drips its answers one byte at a time, for minutes: every abandoned
    request is closed at its deadline, so threads and descriptors stay within MAX_IN_FLIGHT,
    each timeout is counted, and a symbol fresh in the file is answered throughout."""
    state = tmp_path / "state.json"
    write_state(state, now_ms(), ("FRESHUSDT",))
    with drip_server() as url, FundingSource(state, max_age=5, rest_url=url, timeout=0.5) as src:
        assert src.funding("FRESHUSDT").source == "websocket"
        threads, descriptors = threading.active_count(), open_descriptors()
        peak_threads, peak_descriptors, rounds = threads, descriptors, 0
        deadline = time.monotonic() + DRIP_DURATION
        while time.monotonic() < deadline:
            rounds += 1
            write_state(state, now_ms(), ("FRESHUSDT",))
            assert src.funding(f"D{rounds}USDT") is None  # dripped: abandoned at its deadline
            # The failure opened the circuit; an answered probe closes it again, so that every
            # round sends a dripped request.
            wait_for(lambda: src.paused_for() == 0, 120, "the circuit to half-open")
            src.funding(f"G{rounds}USDT")
            quote = src.funding("FRESHUSDT")
            assert quote is not None and quote.source == "websocket", rounds
            peak_threads = max(peak_threads, threading.active_count())
            peak_descriptors = max(peak_descriptors, open_descriptors())

        def all_judged() -> bool:
            stats = src.stats  # every request ended: each one an answer or an error
            return stats["rest_requests"] == stats["rest"] + stats["rest_errors"]

        figures = f"{rounds} rounds: threads {threads} -> {peak_threads}, descriptors "
        figures += f"{descriptors} -> {peak_descriptors}"
        print(figures)
        assert rounds >= 20, figures
        assert peak_threads <= threads + MAX_IN_FLIGHT + 2, figures
        assert peak_descriptors <= descriptors + MAX_IN_FLIGHT + 4, figures
        wait_for(all_judged, 30, "every REST request to end")
        stats = src.stats
    assert stats["rest_errors"] >= rounds  # every dripped request is counted as an error


# -- the stats file -------------------------------------------------------------------------------


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


@pytest.mark.parametrize("target", ["state.json", "state.json.lock", "link-to-state"])
def test_the_stats_file_is_never_the_state_file_or_its_lock(tmp_path, target):
    state = tmp_path / "state.json"
    write_state(state, now_ms())
    (tmp_path / "state.json.lock").write_text("123\n")
    (tmp_path / "link-to-state").symlink_to(state)
    before = state.read_bytes(), (tmp_path / "state.json.lock").read_bytes()
    with pytest.raises(ValueError, match="stats_file must not be the state file or its lock"):
        FundingSource(state, max_age=5, rest_url=None, stats_file=tmp_path / target)
    assert (state.read_bytes(), (tmp_path / "state.json.lock").read_bytes()) == before


def test_an_unwritable_stats_file_is_called_the_stats_file(tmp_path, caplog):
    stats = tmp_path / "stats.json"
    os.mkfifo(stats)
    with caplog.at_level(logging.WARNING, logger="binance_funding_ws.consumer"):
        FundingSource(tmp_path / "state.json", max_age=5, rest_url=None, stats_file=stats).close()
    messages = [r.getMessage() for r in caplog.records if "stats" in r.getMessage()]
    assert messages and all("state file" not in m for m in messages), messages
    assert f"stats file {stats} is a FIFO" in messages[0]
