"""Benchmark: a ``FundingSource`` lookup against the naive way, on a realistic state file.

The file is the real one: the daemon (``python -m binance_funding_ws run``, a subprocess)
against the simulator (another) with ``--symbols 900``: 903 funding entries and ~900
tickers, about 0.6 MB. Measured in one run, on that file:

* **live** — the daemon writing every second, one thread asking ``funding(symbol)`` for
  ``--duration`` seconds, cycling through every symbol: the cost per lookup as the bot sees
  it, each new version's parse included;
* **cached** — the daemon stopped, the file unchanged: the cost per lookup on one thread
  (best of five runs), and the throughput of ``--threads`` threads together;
* **parse** — what the first lookup after a change pays: stat, read, typed decode, quotes;
* **naive** — what the earlier daemon did per alert: ``json.load`` of the whole file, then a dict
  lookup and an age check; and ``read_state()`` per alert (typed, still a parse per alert).

Target: a cached lookup <= 5 us. Figures, not a test: this exits 0 whatever they are.

    .venv/bin/python benchmarks/bench_reader.py [--symbols 900] [--duration 10] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import itertools
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from binance_funding_ws import FundingSource, StateFileError, read_state
from binance_funding_ws.botstats import LookupCounters
from binance_funding_ws.clock import now_ms
from binance_funding_ws.consumer.statefile import StateCache

TARGET_US = 5.0
MAX_AGE = 3600.0  # the cached phase runs on a stopped daemon's file: keep it "fresh"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = models[0] if models else platform.processor()
    return (
        f"{cpu} ({os.cpu_count()} CPUs), Linux {platform.release()}, Python "
        f"{platform.python_version()}, msgspec {importlib.metadata.version('msgspec')}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def start_daemon(ws_url: str, state_file: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", ws_url]
    command += ["--state-file", str(state_file), "--write-interval", "1.0"]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def wait_full(state_file: Path, symbols: int, timeout: float = 60) -> list[str]:
    """The symbols, once the file holds a funding entry and a ticker for every one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            doc = read_state(state_file)
        except StateFileError:
            doc = None
        if doc is not None and len(doc.funding) >= symbols + 3 and len(doc.tickers) >= symbols:
            return sorted(doc.funding)
        time.sleep(0.1)
    raise SystemExit("bench_reader: the daemon did not fill the state file in time")


def per_lookup_us(source: FundingSource, symbols: list[str], count: int) -> float:
    ask = source.funding
    order = itertools.islice(itertools.cycle(symbols), count)
    started = time.perf_counter()
    for symbol in order:
        ask(symbol)
    return (time.perf_counter() - started) / count * 1e6


def live_phase(state_file: Path, symbols: list[str], duration: float) -> dict[str, float]:
    with FundingSource(state_file, max_age=30, rest_url=None) as source:
        lookups, started = 0, time.monotonic()
        spent = 0.0
        while time.monotonic() - started < duration:
            spent += per_lookup_us(source, symbols, 10_000) * 10_000
            lookups += 10_000
        stats = source.stats
    return {
        "us_per_lookup": round(spent / lookups, 3),
        "lookups": lookups,
        "parses": stats["file_parses"],
        "stats_calls": stats["file_checks"],
        "from_file_pct": round(100 * stats["websocket"] / lookups, 2),
    }


def threaded_rate(source: FundingSource, symbols: list[str], threads: int, each: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def run() -> None:
        barrier.wait()
        per_lookup_us(source, symbols, each)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * each / (time.perf_counter() - started)


def cached_phase(state_file: Path, symbols: list[str], count: int, threads: int) -> dict:
    with FundingSource(state_file, max_age=MAX_AGE, rest_url=None) as source:
        runs = [per_lookup_us(source, symbols, count) for _ in range(5)]
        rate = threaded_rate(source, symbols, threads, count // threads)
        stats = source.stats
    if stats["unavailable"]:
        raise SystemExit("bench_reader: a cached lookup was not answered by the file")
    return {
        "us_per_lookup_best": round(min(runs), 3),
        "us_per_lookup_median": round(statistics.median(runs), 3),
        "lookups_per_s_one_thread": round(1e6 / min(runs)),
        f"lookups_per_s_{threads}_threads": round(rate),
    }


def timed_ms(action: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``action``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def naive_json(state_file: Path, symbol: str) -> dict | None:
    """The earlier daemon's way: the whole file through json.load for every alert."""
    with state_file.open() as handle:
        entry = json.load(handle)["funding"].get(symbol)
    if entry is None or now_ms() - entry["event_time"] > MAX_AGE * 1000:
        return None
    return entry


def naive_phase(state_file: Path, symbols: list[str], repeat: int) -> dict[str, float]:
    picks = itertools.cycle(symbols)
    return {
        "json_load_ms": round(timed_ms(lambda: naive_json(state_file, next(picks)), repeat), 3),
        "read_state_ms": round(timed_ms(lambda: read_state(state_file), repeat), 3),
        "parse_on_change_ms": round(
            timed_ms(lambda: StateCache(state_file, 0.1, LookupCounters()).current(), repeat), 3
        ),
    }


@contextlib.contextmanager
def simulator(symbols: int) -> Iterator[str]:
    """The simulator in a process of its own (in this one, its ticks would hold the GIL
    against the lookups being measured); yields its stream URL."""
    command = [sys.executable, "-m", "binance_funding_sim", "--port", "0", "--tick", "1"]
    command += ["--symbols", str(symbols), "--seed", "7"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("simulator listening on "):
            raise SystemExit(f"bench_reader: the simulator did not start: {line!r}")
        yield line.split()[3]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(15)


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    state_file = workdir / "funding_state.json"
    with simulator(args.symbols) as ws_url:
        daemon = start_daemon(ws_url, state_file)
        try:
            symbols = wait_full(state_file, args.symbols)
            random.Random(1).shuffle(symbols)
            live = live_phase(state_file, symbols, args.duration)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
    return {
        "machine": machine(),
        "file": {"bytes": state_file.stat().st_size, "funding_entries": len(symbols)},
        "live": live,
        "cached": cached_phase(state_file, symbols, args.lookups, args.threads),
        "naive": naive_phase(state_file, symbols, args.naive),
    }


def report(figures: dict, threads: int) -> str:
    f, live, cached, naive = (figures[k] for k in ("file", "live", "cached", "naive"))
    best = cached["us_per_lookup_best"]
    json_us, read_us = naive["json_load_ms"] * 1000, naive["read_state_ms"] * 1000
    verdict = "PASS" if best <= TARGET_US else "FAIL"
    return "\n".join(
        [
            "binance-funding-ws reader benchmark",
            f"  machine       {figures['machine']}",
            f"  file          {f['funding_entries']} funding entries + tickers, "
            f"{f['bytes'] / 1e6:.2f} MB, written by the daemon against the simulator",
            f"  live          {live['us_per_lookup']} us per lookup with the daemon writing "
            f"every 1 s ({live['lookups']:,} lookups, {live['parses']} parses, "
            f"{live['stats_calls']} stat calls, {live['from_file_pct']} % from the file)",
            f"  cached        {best} us per lookup (median of 5 runs "
            f"{cached['us_per_lookup_median']} us): {cached['lookups_per_s_one_thread']:,}/s; "
            f"{threads} threads together {cached[f'lookups_per_s_{threads}_threads']:,}/s",
            f"  on change     {naive['parse_on_change_ms']} ms: stat, read, typed decode and "
            "quotes, paid once per version by one thread",
            f"  naive         json.load per alert {naive['json_load_ms']} ms "
            f"({json_us / best:,.0f}x a cached lookup); read_state per alert "
            f"{naive['read_state_ms']} ms ({read_us / best:,.0f}x)",
            f"  {verdict}          cached lookup <= {TARGET_US:g} us",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--symbols", type=int, default=900)
    parser.add_argument("--duration", type=float, default=10.0, help="live phase, seconds")
    parser.add_argument("--lookups", type=int, default=1_000_000, help="per cached run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--naive", type=int, default=200, help="naive alerts timed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reader-") as workdir:
        figures = measure(args, Path(workdir))
    print(json.dumps(figures, indent=2) if args.json else report(figures, args.threads))


if __name__ == "__main__":
    main()
