"""Benchmark: the daemon against a decode-only floor, on the same frames, in one run.

The simulator replays the market at an accelerated rate (default: 700 symbols, a tick every
50 ms, i.e. 20x the live rate of one tick a second). Two clients subscribe to the same
streams at the same time:

* the daemon (``binance-funding-ws run``, a subprocess), doing everything it does live;
* the floor (a subprocess): receive + ``msgspec.json.decode`` of every frame, nothing else.

Printed: CPU seconds per 1,000 frames for each (from /proc/<pid>/stat, so the simulator's
own CPU is not counted), their ratio, peak RSS (VmHWM), and the delay from a row's arrival
(the daemon's own ``received_at`` stamp) to its value being visible in the state file.
Targets: ratio <= 1.5, RSS <= 60 MB, visibility <= write-interval + 100 ms.

    .venv/bin/python benchmarks/bench_daemon.py [--duration 30] [--json]

Figures, not a test: the machine is shared and noisy, so nothing here fails a build.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from binance_funding_ws.simulator import SimulatorConfig, SimulatorThread
from binance_funding_ws.state import StateFileError, read_state

STREAMS = "?streams=!markPrice@arr@1s/!ticker@arr"

FLOOR = textwrap.dedent(
    """
    import asyncio, sys, msgspec
    from websockets.asyncio.client import connect
    count_file = sys.argv[2]
    async def main():
        decode = msgspec.json.decode
        frames = 0
        async with connect(sys.argv[1], compression=None, max_size=16 * 1024 * 1024) as ws:
            while True:
                decode(await ws.recv(decode=False))
                frames += 1
                if frames % 50 == 0:
                    with open(count_file, "w") as f:
                        f.write(str(frames))
    asyncio.run(main())
    """
)


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid``, in ns resolution (schedstat), so that short runs
    are not rounded to the 10 ms clock ticks of /proc/<pid>/stat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def daemon_frames(state_file: Path) -> int:
    try:
        return read_state(state_file).connection_status.messages
    except StateFileError:
        return 0


def floor_frames(count_file: Path) -> int:
    try:
        return int(count_file.read_text() or 0)
    except (OSError, ValueError):
        return 0


def watch_visibility(state_file: Path, seconds: float) -> tuple[list[float], list[float]]:
    """Poll the file every 5 ms. For each new version of it, two delays in ms:

    * newest: from the arrival of the newest row it holds to the version being visible;
    * worst: from the first arrival after the previous version to this one being visible
      (bounded above by the previous version's newest arrival): the longest any frame
      waited to be reflected in the file (by its own value or a newer one).
    """
    newest_delays: list[float] = []
    worst_delays: list[float] = []
    seen, previous_newest = 0, None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            doc = read_state(state_file)
        except StateFileError:
            continue
        if doc.updated_at != seen and doc.funding:
            seen = doc.updated_at
            visible_at = time.time() * 1000
            newest = max(entry.received_at for entry in doc.funding.values())
            newest_delays.append(visible_at - newest)
            if previous_newest is not None and newest > previous_newest:
                worst_delays.append(visible_at - previous_newest)
            previous_newest = newest
        time.sleep(0.005)
    return newest_delays, worst_delays


def measure(args: argparse.Namespace) -> dict:
    config = SimulatorConfig(
        tick=args.tick, symbols=args.symbols, ticker_changes=args.ticker_changes
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    state_file, count_file = workdir / "state.json", workdir / "floor.count"
    with SimulatorThread(config) as sim:
        url = sim.ws_url() + STREAMS
        daemon = subprocess.Popen(
            [sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", sim.ws_url(),
             "--state-file", str(state_file), "--write-interval", str(args.write_interval),
             "--log-level", "WARNING"],
            stderr=(workdir / "daemon.log").open("wb"),
        )  # fmt: skip
        floor = subprocess.Popen([sys.executable, "-c", FLOOR, url, str(count_file)])
        try:
            time.sleep(args.warmup)
            start = {
                "daemon_cpu": cpu_seconds(daemon.pid),
                "floor_cpu": cpu_seconds(floor.pid),
                "daemon_frames": daemon_frames(state_file),
                "floor_frames": floor_frames(count_file),
            }
            delays = watch_visibility(state_file, args.duration)
            end = {
                "daemon_cpu": cpu_seconds(daemon.pid),
                "floor_cpu": cpu_seconds(floor.pid),
                "daemon_frames": daemon_frames(state_file),
                "floor_frames": floor_frames(count_file),
            }
            rss = {"daemon": peak_rss_mb(daemon.pid), "floor": peak_rss_mb(floor.pid)}
        finally:
            floor.kill()
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    return summarise(args, start, end, rss, delays)


def summarise(args, start: dict, end: dict, rss: dict, delays: tuple) -> dict:
    def per_thousand(who: str) -> float:
        frames = end[f"{who}_frames"] - start[f"{who}_frames"]
        return (end[f"{who}_cpu"] - start[f"{who}_cpu"]) / frames * 1000 if frames else 0.0

    def pick(values: list[float], share: float) -> float | None:
        ordered = sorted(values)
        return round(ordered[max(0, round(len(ordered) * share) - 1)], 1) if ordered else None

    daemon, floor = per_thousand("daemon"), per_thousand("floor")
    newest, worst = delays
    return {
        "symbols": args.symbols + 3,
        "tick_s": args.tick,
        "write_interval_s": args.write_interval,
        "duration_s": args.duration,
        "daemon_frames": end["daemon_frames"] - start["daemon_frames"],
        "floor_frames": end["floor_frames"] - start["floor_frames"],
        "daemon_cpu_s_per_1000_frames": round(daemon, 4),
        "floor_cpu_s_per_1000_frames": round(floor, 4),
        "cpu_ratio": round(daemon / floor, 3) if floor else None,
        "daemon_peak_rss_mb": round(rss["daemon"], 1),
        "floor_peak_rss_mb": round(rss["floor"], 1),
        "visibility_newest_ms_median": pick(newest, 0.5),
        "visibility_worst_ms_median": pick(worst, 0.5),
        "visibility_worst_ms_p95": pick(worst, 0.95),
        "visibility_worst_ms_max": pick(worst, 1.0),
        "file_versions": len(newest),
    }


def report(figures: dict, argv: list[str]) -> str:
    limit_ms = figures["write_interval_s"] * 1000 + 100
    checks = [
        ("CPU ratio daemon/floor <= 1.5", (figures["cpu_ratio"] or 99) <= 1.5),
        ("daemon peak RSS <= 60 MB", figures["daemon_peak_rss_mb"] <= 60),
        (
            f"visibility (worst frame) <= {limit_ms:.0f} ms",
            (figures["visibility_worst_ms_max"] or 1e9) <= limit_ms,
        ),
    ]
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    lines = [
        f"binance-funding-ws daemon benchmark — {cpu}, Python {platform.python_version()}",
        f"  market        {figures['symbols']} symbols, a tick every {figures['tick_s']} s "
        f"({1 / figures['tick_s']:.0f}x live), write interval {figures['write_interval_s']} s",
        f"  frames        daemon {figures['daemon_frames']}, floor {figures['floor_frames']} "
        f"in {figures['duration_s']} s",
        f"  CPU / 1000    daemon {figures['daemon_cpu_s_per_1000_frames']:.3f} s, "
        f"floor {figures['floor_cpu_s_per_1000_frames']:.3f} s, ratio {figures['cpu_ratio']}",
        f"  peak RSS      daemon {figures['daemon_peak_rss_mb']} MB "
        f"(floor {figures['floor_peak_rss_mb']} MB)",
        f"  visibility    newest row: median {figures['visibility_newest_ms_median']} ms; "
        f"worst frame: median {figures['visibility_worst_ms_median']} ms, "
        f"p95 {figures['visibility_worst_ms_p95']} ms, max {figures['visibility_worst_ms_max']} ms",
        f"                ({figures['file_versions']} file versions; polling adds up to 5 ms)",
        *(f"  {'PASS' if ok else 'FAIL'}          {name}" for name, ok in checks),
        f"  reproduce     .venv/bin/python benchmarks/bench_daemon.py {' '.join(argv)}".rstrip(),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=700)
    parser.add_argument("--tick", type=float, default=0.05)
    parser.add_argument("--ticker-changes", type=int, default=200)
    parser.add_argument("--write-interval", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args)
    print(json.dumps(figures, indent=2) if args.json else report(figures, sys.argv[1:]))


if __name__ == "__main__":
    main()
