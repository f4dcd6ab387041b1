"""Benchmark: versions of the daemon side by side, on one live-cadence simulator.

Each version is a source tree holding a ``binance_funding_ws`` package; each runs as a daemon
of its own (``PYTHONPATH`` set to its tree) against the same simulator, next to one
decode-only floor, for the same window. Printed: each daemon's CPU over the floor's, and its
minor page faults, user and system time. The machine's speed drifts by up to 30 % from one
run to the next, so two versions compare only within one run; copies of one tree agree within
0.5-1.5 %. Measured with it: the per-change figures of docs/benchmarks.md.

    mkdir -p /tmp/v/before && git archive HEAD~1 daemon/binance_funding_ws \\
        | tar -x -C /tmp/v/before --strip-components=1
    .venv/bin/python benchmarks/ab_daemon.py /tmp/v/before daemon [--seconds 60] [--symbols 900]

Figures, not a test: it exits 0 whatever they are.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.endpoint import stream_endpoint

STREAMS = ["!markPrice@arr@1s", "!ticker@arr"]
# The floor of bench_daemon.py: receive and parse, nothing else.
FLOOR = """
import asyncio, sys
from msgspec.json import decode
from websockets.asyncio.client import connect

async def main(url):
    async with connect(url, compression=None, max_size=16 * 1024 * 1024) as ws:
        while True:
            decode(await ws.recv(decode=False))

asyncio.run(main(sys.argv[1]))
"""


def cpu_seconds(pid: int) -> float:
    return time.clock_gettime(((~pid) << 3) | 2)  # the process's CPU-time clock


def faults_and_ticks(pid: int) -> tuple[int, int, int]:
    """Minor faults, user and system time (clock ticks) of the process, from proc(5)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[11]), int(fields[12])


def reading(pid: int) -> tuple[float, tuple[int, int, int]]:
    return cpu_seconds(pid), faults_and_ticks(pid)


def start_daemon(tree: Path, url: str, state_file: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", url]
    command += ["--streams", ",".join(STREAMS), "--state-file", str(state_file)]
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    return subprocess.Popen([*command, "--log-level", "WARNING"], env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees, one per daemon")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window [60]")
    parser.add_argument("--symbols", type=int, default=900, help="ordinary contracts [900]")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before [8]")
    args = parser.parse_args(argv)
    for tree in args.trees:
        if not (tree / "binance_funding_ws" / "__init__.py").is_file():
            parser.error(f"{tree}: no binance_funding_ws package in it")
    config = SimulatorConfig(tick=1.0, symbols=args.symbols, ticker_changes=int(args.symbols * 0.7))
    labels = [f"{n}:{tree}" for n, tree in enumerate(args.trees, start=1)]
    with tempfile.TemporaryDirectory(prefix="ab-daemon-") as tmp, SimulatorThread(config) as sim:
        url = sim.ws_url()
        processes = {
            label: start_daemon(tree, url, Path(tmp) / f"state{n}.json")
            for n, (label, tree) in enumerate(zip(labels, args.trees, strict=True))
        }
        floor_url = stream_endpoint(url, STREAMS).url
        processes["floor"] = subprocess.Popen([sys.executable, "-c", FLOOR, floor_url])
        try:
            time.sleep(args.warmup)
            before = {k: reading(p.pid) for k, p in processes.items()}
            time.sleep(args.seconds)
            after = {k: reading(p.pid) for k, p in processes.items()}
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(10)
    floor = after["floor"][0] - before["floor"][0]
    print(f"{args.symbols + 3} symbols, a tick a second, {args.seconds:g} s")
    print(f"  floor  {1000 * floor / args.seconds:.2f} ms of CPU a second")
    for label in [*labels, "floor"]:
        cpu = after[label][0] - before[label][0]
        counts = zip(before[label][1], after[label][1], strict=True)
        faults, user, system = (end - start for start, end in counts)
        ratio = f"{cpu / floor:6.3f}x the floor" if label != "floor" else " " * 16
        print(
            f"  {label}  {ratio}  minor faults {faults / args.seconds:6.0f}/s"
            f"  user {user} system {system} ticks"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
