"""Benchmark: funding-monitor's UI update time on a 2,000-symbol state file, and its idle CPU.

* update time: a headless Textual app (``App.run_test``) receives a new 2,000-symbol document
  again and again; each update is timed from handing the document to the screen until the
  screen has been refreshed (``pilot.pause()`` returns after the redraw);
* idle CPU: ``funding-monitor --state-file F`` runs in a real pseudo-terminal for a while with
  the file unchanged (polls every 2 s, header ages tick every second); its CPU time comes from
  /proc/<pid>/task/*/schedstat.

Targets: <= 100 ms per update, <= 3 % of a core idle.

    .venv/bin/python benchmarks/bench_monitor.py [--symbols 2000] [--idle-seconds 20] [--json]
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

from monitor_helpers import write_state

from funding_monitor.app import MonitorApp, PollDone
from funding_monitor.model import PollResult
from funding_monitor.panel import HostPanel
from funding_monitor.poller import Poller
from funding_monitor.sources import LocalSource


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue
    return total / 1e9


async def measure_updates(path: Path, updates: int) -> list[float]:
    source = LocalSource(path)
    app = MonitorApp([Poller(source, 3600)], local=True, autostart=False)
    timings: list[float] = []
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(updates):
            write_state(path, now=time.time(), symbols=args.symbols)
            document = LocalSource(path).read_state()  # a new document object, as a poll makes
            started = time.perf_counter()
            app.on_poll_done(PollDone(app.hosts[0], PollResult(time.time(), True, document)))
            await pilot.pause()
            timings.append((time.perf_counter() - started) * 1000)
        assert app.screen.query_one(HostPanel).query_one("#funding").row_count == args.symbols
    return timings


def measure_idle(path: Path, seconds: float) -> float:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the monitor in a real terminal
        os.environ["TERM"] = "xterm-256color"
        os.execv(
            sys.executable, [sys.executable, "-m", "funding_monitor", "--state-file", str(path)]
        )
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="bench-monitor-")) / "state.json"
    write_state(path, now=time.time(), symbols=args.symbols)
    first, *timings = asyncio.run(measure_updates(path, args.updates + 1))
    write_state(path, now=time.time(), symbols=args.symbols)
    idle = measure_idle(path, args.idle_seconds)
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
    print(f"  {'PASS' if figures['update_ms_p95'] <= 100 else 'FAIL'}        update p95 <= 100 ms")
    print(f"  {'PASS' if idle <= 3 else 'FAIL'}        idle CPU <= 3 %")
    print(f"  reproduce   .venv/bin/python benchmarks/bench_monitor.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
