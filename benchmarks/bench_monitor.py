"""Benchmark: funding-monitor's UI update time on a 2,000-symbol state file, and its idle CPU.

* update time: a headless Textual app (``App.run_test``) receives a new 2,000-symbol document
  again and again; each update is timed from handing the document to the screen until the
  screen has been refreshed (``pilot.pause()`` returns after the redraw);
* idle CPU: ``funding-monitor --state-file F`` runs in a real pseudo-terminal for a while with
  the file unchanged (polls every 2 s, header ages tick every second); its CPU time comes from
  /proc/<pid>/task/*/schedstat;
* with ``--history``, both with a day of audit history (a sample a minute) on screen too, and
  the history's own cost: its first read and report, then a read after one appended sample.

Targets: <= 100 ms per update, <= 3 % of a core idle.

    .venv/bin/python benchmarks/bench_monitor.py [--symbols 2000] [--idle-seconds 20] [--history]
        [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import pty
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from binance_funding_ws.history import encode_sample
from funding_monitor.app import MonitorApp, PollDone
from funding_monitor.history_tail import HistoryTail
from funding_monitor.history_view import WINDOW_S, outcome_of
from funding_monitor.model import PollResult
from funding_monitor.panel import HostPanel
from funding_monitor.poller import Poller
from funding_monitor.sources import LocalSource
from monitor_helpers import audit_samples, write_history, write_state


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue
    return total / 1e9


async def measure_updates(path: Path, updates: int, history: Path | None) -> list[float]:
    source = LocalSource(path)
    poller = Poller(source, 3600, history=history and str(history))
    app = MonitorApp([poller], local=True, autostart=False)
    timings: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        if history is not None:  # on screen from now on: each update draws it too
            app.on_poll_done(PollDone(app.hosts[0], poller.poll(want_history=True)))
        for _ in range(updates):
            write_state(path, now=time.time(), symbols=args.symbols)
            document = LocalSource(path).read_state()  # a new document object, as a poll makes
            started = time.perf_counter()
            app.on_poll_done(PollDone(app.hosts[0], PollResult(time.time(), True, document)))
            await pilot.pause()
            timings.append((time.perf_counter() - started) * 1000)
        assert app.screen.query_one(HostPanel).query_one("#funding").row_count == args.symbols
    return timings


def measure_history(history: Path) -> dict[str, float]:
    """Milliseconds: the first read and report of a day's history, then one appended sample."""
    tail = HistoryTail(str(history), LocalSource(history))
    figures: dict[str, float] = {}
    for name in ("history_first_read", "history_append_read"):
        now_ms, before = int(time.time() * 1000), tail.bytes_read
        started = time.perf_counter()
        found = tail.read(now_ms - int(WINDOW_S * 1000))
        assert found is not None
        outcome_of(found.samples, skipped=found.skipped, seen=found.seen, where="h", now_ms=now_ms)
        figures[f"{name}_ms"] = round((time.perf_counter() - started) * 1000, 1)
        figures[f"{name}_bytes"] = tail.bytes_read - before
        with history.open("ab") as handle:
            handle.write(encode_sample(audit_samples(time.time(), count=1)[0]))
    return figures


def measure_idle(path: Path, seconds: float, history: Path | None) -> float:
    argv = [sys.executable, "-m", "funding_monitor", "--state-file", str(path)]
    if history is not None:
        argv += ["--history", str(history)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the monitor in a real terminal
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, argv)
    try:
        deadline = time.monotonic() + 4  # start-up and first paint are not idle
        while time.monotonic() < deadline:
            _drain(fd)
        start = cpu_seconds(pid)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            _drain(fd)
        used = cpu_seconds(pid) - start
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return used / seconds * 100


def _drain(fd: int) -> None:
    import select

    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        with contextlib.suppress(OSError):  # the child exited
            os.read(fd, 65536)


def main() -> None:
    global args
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--history", action="store_true", help="a day of audit history too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="bench-monitor-")) / "state.json"
    history = path.with_name("audit.jsonl") if args.history else None
    if history is not None:
        write_history(history, audit_samples(time.time()))
    write_state(path, now=time.time(), symbols=args.symbols)
    first, *timings = asyncio.run(measure_updates(path, args.updates + 1, history))
    write_state(path, now=time.time(), symbols=args.symbols)
    idle = measure_idle(path, args.idle_seconds, history)
    ordered = sorted(timings)
    figures = {
        "symbols": args.symbols,
        "first_load_ms": round(first, 1),
        "updates": len(timings),
        "update_ms_median": round(statistics.median(ordered), 1),
        "update_ms_p95": round(ordered[max(0, round(len(ordered) * 0.95) - 1)], 1),
        "update_ms_max": round(ordered[-1], 1),
        "idle_cpu_percent": round(idle, 2),
        "idle_seconds": args.idle_seconds,
        **(measure_history(history) if history is not None else {}),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    print(f"funding-monitor benchmark — {cpu}, Python {platform.python_version()}")
    print(
        f"  update      {figures['symbols']} symbols: median {figures['update_ms_median']} ms, "
        f"p95 {figures['update_ms_p95']} ms, max {figures['update_ms_max']} ms "
        f"({figures['updates']} updates, 160x50)"
    )
    print(
        f"  first load  {figures['first_load_ms']} ms (the table built once; also on a new "
        "filter, sort or symbol set)"
    )
    print(f"  idle CPU    {figures['idle_cpu_percent']} % of a core over {args.idle_seconds:g} s")
    if history is not None:
        print(
            f"  history     a day on screen too; its first read and report "
            f"{figures['history_first_read_ms']} ms ({figures['history_first_read_bytes']:,} "
            f"bytes), after one more sample {figures['history_append_read_ms']} ms "
            f"({figures['history_append_read_bytes']:,} bytes)"
        )
    print(f"  {'PASS' if figures['update_ms_p95'] <= 100 else 'FAIL'}        update p95 <= 100 ms")
    print(f"  {'PASS' if idle <= 3 else 'FAIL'}        idle CPU <= 3 %")
    print(f"  reproduce   .venv/bin/python benchmarks/bench_monitor.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
