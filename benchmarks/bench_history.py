"""Benchmark: what reading a hostile audit history costs ``report`` and ``audit --once``.

Two histories the service user could write: one 400 MB line among a day of samples, and
300,000 sample lines in the last day (a flood, or an audit at 0.3 s). Each command runs as a
subprocess of each given source tree (``PYTHONPATH`` set to it, as benchmarks/ab_daemon.py
does); printed: its peak RSS (``wait4``'s ``ru_maxrss``), wall time and exit code.

    mkdir -p /tmp/v/before && git archive HEAD~1 daemon/binance_funding_ws \\
        | tar -x -C /tmp/v/before --strip-components=1
    .venv/bin/python benchmarks/bench_history.py /tmp/v/before daemon

Figures, not a test: it exits 0 whatever they are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from binance_funding_ws.health import Counters
from binance_funding_ws.history import CompareRound, Sample, encode_sample


def sample_line(at: int, with_round: bool) -> bytes:
    sample = Sample(
        at=at, interval_s=60.0, max_age_s=60.0, readable=True, verdict="HEALTHY",
        state="connected", last_message_age_s=0.8, last_write_age_s=0.5, pid=4242,
        started_at=1_795_000_000_000, daemon_alive=True,
        counters=Counters(messages=10**6, reconnects=1, stalls=0, rotations=2, errors=0,
                          write_errors=0),
        funding_symbols=690, ticker_symbols=689,
    )  # fmt: skip
    if with_round:
        sample.compare = CompareRound(
            started_at=at, duration_s=0.4, compared=690, funding_matched=690,
            mark_matched=690, next_funding_matched=690, listed=690, weight=11,
        )  # fmt: skip
    return encode_sample(sample)


def write_long_line(path: Path, now: int, megabytes: int) -> None:
    with path.open("wb") as handle:
        handle.write(b'{"v":1,"pad":"')
        block = b"x" * (1024 * 1024)
        for _ in range(megabytes):
            handle.write(block)
        handle.write(b'"}\n')
        for minute in range(1440, 0, -1):
            handle.write(sample_line(now - minute * 60_000, minute % 5 == 0))


def write_many_lines(path: Path, now: int, count: int) -> None:
    step = 86_000_000 // count
    with path.open("wb") as handle:
        for n in range(count, 0, -1):
            handle.write(sample_line(now - n * step, n % 300 == 0))


def run(tree: Path, argv: list[str]) -> tuple[float, float, int]:
    """Peak RSS (MB), wall seconds and exit code of ``argv`` run against ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "binance_funding_ws", *argv],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.monotonic() - started, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees to compare")
    parser.add_argument("--line-mb", type=int, default=400)
    parser.add_argument("--lines", type=int, default=300_000)
    args = parser.parse_args()
    now = time.time_ns() // 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        base = Path(tmp)
        histories = {
            f"one {args.line_mb} MB line": base / "long.jsonl",
            f"{args.lines:,} lines": base / "many.jsonl",
        }
        long_path, many_path = histories.values()
        write_long_line(long_path, now, args.line_mb)
        write_many_lines(many_path, now, args.lines)
        print(f"{'history':<22} {'command':<13} {'tree':<28} {'peak RSS':>10} {'wall':>8} exit")
        for name, history in histories.items():
            for tree in args.trees:
                copy = base / "copy.jsonl"
                shutil.copyfile(history, copy)  # audit appends: every tree reads the same
                commands = {
                    "report": ["report", "--history", str(copy)],
                    "audit --once": [
                        "audit", "--once", "--history", str(copy),
                        "--state-file", str(base / "absent.json"),
                        "--rest-url", "http://127.0.0.1:9",
                    ],
                }  # fmt: skip
                for command, argv in commands.items():
                    rss, wall, code = run(tree, argv)
                    print(
                        f"{name:<22} {command:<13} {str(tree)[-28:]:<28} "
                        f"{rss:>7.0f} MB {wall:>6.1f} s {code}"
                    )
                copy.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
