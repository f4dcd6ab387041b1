"""Benchmark: the daemon against a decode-only floor, on the same frames, in one run.

The bundled simulator replays the market at an accelerated rate (default: 700 symbols plus
the 3 special ones, a tick every 50 ms = 20x the live rate, i.e. ~60 frames a second). Two
clients subscribe to the same streams of the same simulator at the same time, so they get
the same frames:

* the daemon (``python -m binance_funding_ws run``, a subprocess), doing everything it does
  live, state file included;
* the floor (a subprocess): ``recv(decode=False)`` + ``msgspec.json.decode`` of every frame,
  nothing else.

Printed: CPU seconds per 1,000 frames for each and their ratio, peak RSS (VmHWM), and the
delay from a frame's arrival to its value being visible in the state file. Targets: daemon
CPU <= 1.5x the floor's, RSS <= 60 MB, visibility <= write interval + 100 ms.

How: after a warm-up the market is paused until both clients have handled every frame sent
(and the daemon has written them), CPU (utime + stime from /proc/<pid>/stat, so the
simulator's own CPU, in this process, is not counted) and frame counts are read, the market
runs for the measured window, and is paused and read again. The window's edges thus fall
between frames: both clients handled exactly the same frames, each frame's whole cost (the
daemon's write of it included) is inside. Meanwhile this process watches the state file.

    .venv/bin/python benchmarks/bench_daemon.py [--duration 30] [--json]

Figures, not a test: shared machines are noisy, so this exits 0 whatever the figures (it
prints PASS/FAIL per target) and non-zero only when the benchmark itself broke.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.endpoint import stream_endpoint
from binance_funding_ws.state import StateDocument, StateFileError, decode_state

STREAMS = ["!markPrice@arr@1s", "!ticker@arr"]
POLL_S = 0.005  # state-file polling period: adds at most this much to a measured delay
CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNTER = struct.Struct("<Q")  # the floor's frame count, in a shared 8-byte mmap
REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO, TARGET_RSS_MB, TARGET_SLACK_MS = 1.5, 60.0, 100.0

# The floor: what any client must do with these frames (receive, parse) and nothing else.
# Its count goes to a shared mmap: exact at any instant, and a pack_into per frame costs
# ~0.1 us against ~300 us of parsing, so the floor is not inflated by its own reporting.
FLOOR = textwrap.dedent(
    """
    import asyncio, mmap, struct, sys
    import msgspec
    from websockets.asyncio.client import connect

    async def main(url, counter):
        decode, pack = msgspec.json.decode, struct.Struct("<Q").pack_into
        frames = 0
        async with connect(url, compression=None, max_size=16 * 1024 * 1024) as ws:
            while True:
                decode(await ws.recv(decode=False))
                frames += 1
                pack(counter, 0, frames)

    with open(sys.argv[2], "r+b") as f:
        counter = mmap.mmap(f.fileno(), 8)
    asyncio.run(main(sys.argv[1], counter))
    """
)


# -- /proc readings ------------------------------------------------------------------------


def cpu_seconds(pid):
    """utime + stime of the whole process (live and finished threads), from /proc/<pid>/stat.

    Resolution is one clock tick (10 ms): about 2 % of the floor's CPU in a 30 s window.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


# -- the state file, watched -----------------------------------------------------------------


class StateWatcher:
    """Notices each new version of the state file within ``POLL_S`` and, while recording,
    measures three delays per version (ms):

    * worst: from the first tick the previous version did not reflect (queued by the
      simulator at ``t``, so it arrived after ``t``) to this version being seen: the longest
      any frame waited for its value to become visible. The target is about this one: the
      newest row is always fresh, so it alone would pass however rarely the daemon wrote;
    * newest: from the arrival of the newest funding row it holds (the daemon's own
      ``received_at`` stamp) to the version being seen: the wait for the write to start
      (up to one tick) plus the write;
    * write: from the document's ``updated_at`` (stamped once pending rows are published
      into it) to being seen: encoding, the hand-off to the writer thread, write, fsyncs
      and rename.

    The daemon replaces the file atomically (a new inode each time), so a changed inode is
    a new version; reading only then keeps this process off the CPU the daemon needs.
    """

    def __init__(self, path, ticks):
        self.path = path
        self.ticks = ticks  # [(event time E, wall time after the simulator queued it)]
        self.doc: StateDocument | None = None
        self.inode = None
        self.reflected = -1  # newest tick the current version holds in both maps
        self.recording = False
        self.flowing = False  # ticks flowing: after a pause the newest row is not news
        self.newest_ms: list[float] = []
        self.worst_ms: list[float] = []
        self.write_ms: list[float] = []

    def poll(self):
        try:
            with open(self.path, "rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                if inode == self.inode:
                    return
                seen = time.time() * 1000  # the file is visible no later than this
                data = handle.read()
        except FileNotFoundError:
            return
        try:
            doc = decode_state(data)
        except StateFileError:
            return  # cannot happen with atomic replacement; never count it as a version
        self.inode, self.doc = inode, doc
        if doc.funding and doc.tickers:
            self._measure(doc, seen)

    def _measure(self, doc, seen):
        newest = max(doc.funding.values(), key=lambda e: (e.event_time, e.received_at))
        reflected = min(newest.event_time, max(e.event_time for e in doc.tickers.values()))
        if self.recording and self.flowing:
            self.newest_ms.append(seen - newest.received_at)
        if self.recording:
            self.write_ms.append(seen - doc.updated_at)
            first_new = bisect.bisect_right(self.ticks, (self.reflected, math.inf))
            if first_new < len(self.ticks) and self.ticks[first_new][0] <= newest.event_time:
                self.worst_ms.append(seen - self.ticks[first_new][1])
        self.reflected = reflected

    def watch(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(POLL_S)


# -- the two clients -----------------------------------------------------------------------


def start_daemon(url, state_file, write_interval, log_file):
    command = [
        *(sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", url),
        *("--streams", ",".join(STREAMS), "--state-file", str(state_file)),
        *("--write-interval", str(write_interval), "--log-level", "WARNING"),
    ]
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


def start_floor(url, counter_path):
    counter_path.write_bytes(bytes(COUNTER.size))
    return subprocess.Popen([sys.executable, "-c", FLOOR, url, str(counter_path)])


def stop(process, sig=signal.SIGTERM, timeout=10.0):
    """Ask politely (the daemon writes its final state on SIGTERM), then kill."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def open_connections(sim):
    """{simulator connection id: frames sent} for the connections still open."""
    stats = sim.call("stats")
    return {c["id"]: c["frames_sent"] for c in stats["connections"] if c["closed_at"] is None}


def wait_for(what, predicate, processes, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a client exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


# -- one run ---------------------------------------------------------------------------------


class Bench:
    """The simulator, both clients and the readings; ``run()`` returns the raw figures."""

    def __init__(self, args, sim, workdir, log_file):
        self.args, self.sim = args, sim
        self.ticks = []
        self._log_ticks(sim)
        url = sim.ws_url()
        self.state_file = workdir / "state.json"
        self.counter_path = workdir / "floor.count"
        self.watcher = StateWatcher(self.state_file, self.ticks)
        self.daemon = start_daemon(url, self.state_file, args.write_interval, log_file)
        self.floor = None
        self.floor_url = stream_endpoint(url, STREAMS).url  # the very URL the daemon dials
        self.ids = {}

    def _log_ticks(self, thread):
        # Wrap the simulator's tick (in this process, so no client pays for it) to log when
        # each tick's frames were queued: a lower bound on their arrival at the clients.
        # The simulator offers no hook, hence the private attribute.
        sim = thread.sim
        tick = sim._tick

        def logged_tick():
            tick()
            if sim.last_mark:
                self.ticks.append((next(iter(sim.last_mark.values()))["E"], time.time() * 1000))

        sim._tick = logged_tick

    def frames(self):
        """Frames each client has fully handled: the floor's counter, and the daemon's
        ``messages`` as of its last write (so counted only once it is in the file)."""
        doc = self.watcher.doc
        with open(self.counter_path, "rb") as handle:
            floor = COUNTER.unpack(handle.read(COUNTER.size))[0]
        return {"daemon": doc.connection_status.messages if doc else 0, "floor": floor}

    def connect(self):
        processes = [self.daemon]

        def daemon_up():  # data in its file, and its connection is the only one open
            self.watcher.poll()
            doc = self.watcher.doc
            return doc is not None and bool(doc.funding) and len(open_connections(self.sim)) == 1

        wait_for("the daemon to connect", daemon_up, processes)
        (self.ids["daemon"],) = open_connections(self.sim)
        self.floor = start_floor(self.floor_url, self.counter_path)
        processes.append(self.floor)
        wait_for("the floor to connect", lambda: self.frames()["floor"] > 0, processes)
        (self.ids["floor"],) = set(open_connections(self.sim)) - {self.ids["daemon"]}

    def settle(self):
        """Pause the market and wait until both clients handled every frame sent (and the
        daemon wrote them): the window's edges then fall between frames, so frame counts
        are exact and the CPU of each frame's work (its write included) is inside."""
        self.watcher.flowing = False
        self.sim.call("pause_ticks")
        time.sleep(0.1)  # let the simulator's send queues drain into the sockets

        def drained():
            self.watcher.poll()
            sent, done = open_connections(self.sim), self.frames()
            return all(sent.get(self.ids[who]) == done[who] for who in done)

        timeout = 20 + 3 * self.args.write_interval  # the daemon writes on its cadence
        wait_for("both clients to catch up", drained, [self.daemon, self.floor], timeout)
        pids = {"daemon": self.daemon.pid, "floor": self.floor.pid}
        return {
            "cpu": {who: cpu_seconds(pid) for who, pid in pids.items()},
            "frames": self.frames(),
            "writes": self.watcher.doc.connection_status.writes,
            "ticks": len(self.ticks),
        }

    def run(self):
        self.connect()
        self.watcher.watch(self.args.warmup)
        start = self.settle()
        self.watcher.recording = True
        self.sim.call("resume_ticks")
        self.watcher.flowing = True
        self.watcher.watch(self.args.duration)
        end = self.settle()
        self.watcher.recording = False
        status = self.watcher.doc.connection_status
        if status.reconnects or status.errors or len(open_connections(self.sim)) != 2:
            raise RuntimeError("a client reconnected or reported errors: figures invalid")
        return {
            "start": start,
            "end": end,
            "rss": {"daemon": peak_rss_mb(self.daemon.pid), "floor": peak_rss_mb(self.floor.pid)},
            "newest_ms": self.watcher.newest_ms,
            "worst_ms": self.watcher.worst_ms,
            "write_ms": self.watcher.write_ms,
        }

    def close(self):
        if self.floor is not None:
            stop(self.floor, timeout=5)
        stop(self.daemon)


def measure(args):
    config = SimulatorConfig(
        tick=args.tick, symbols=args.symbols, ticker_changes=args.ticker_changes
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp,
        SimulatorThread(config) as sim,
    ):
        workdir = Path(tmp)
        log_path = workdir / "daemon.log"
        with log_path.open("wb") as log_file:
            bench = Bench(args, sim, workdir, log_file)
            try:
                return summarise(args, bench.run())
            except Exception:
                print(f"daemon log:\n{log_path.read_text(errors='replace')}", file=sys.stderr)
                raise
            finally:
                bench.close()


# -- figures and report ----------------------------------------------------------------------


def percentile(values, share):
    """Nearest-rank percentile (no interpolation: a handful of values per run)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)


def summarise(args, raw):
    start, end = raw["start"], raw["end"]
    figures = {
        "symbols": args.symbols + 3,  # XAUUSDT, BTCUSD_PERP and MATICUSDT come on top
        "tick_s": args.tick,
        "ticker_changes": args.ticker_changes,
        "write_interval_s": args.write_interval,
        "duration_s": args.duration,
        "ticks": end["ticks"] - start["ticks"],
        "daemon_writes": end["writes"] - start["writes"],
    }
    for who in ("daemon", "floor"):
        frames = end["frames"][who] - start["frames"][who]
        cpu = end["cpu"][who] - start["cpu"][who]
        figures[f"{who}_frames"] = frames
        figures[f"{who}_cpu_s"] = round(cpu, 2)
        figures[f"{who}_cpu_s_per_1000_frames"] = round(cpu / frames * 1000, 4) if frames else None
        figures[f"{who}_peak_rss_mb"] = round(raw["rss"][who], 1)
    daemon, floor = figures["daemon_cpu_s_per_1000_frames"], figures["floor_cpu_s_per_1000_frames"]
    figures["cpu_ratio"] = round(daemon / floor, 3) if daemon and floor else None
    for kind in ("worst", "newest", "write"):
        values = raw[f"{kind}_ms"]
        figures[f"visibility_{kind}_ms"] = {
            "median": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "max": percentile(values, 1.0),
            "versions": len(values),
        }
    figures["targets"] = targets(figures)
    return figures


def targets(figures):
    limit_ms = figures["write_interval_s"] * 1000 + TARGET_SLACK_MS
    worst = figures["visibility_worst_ms"]["max"]
    return {
        f"daemon CPU <= {TARGET_RATIO}x floor": figures["cpu_ratio"] is not None
        and figures["cpu_ratio"] <= TARGET_RATIO,
        f"daemon peak RSS <= {TARGET_RSS_MB:.0f} MB": figures["daemon_peak_rss_mb"]
        <= TARGET_RSS_MB,
        f"visibility (worst frame) <= {limit_ms:.0f} ms": worst is not None and worst <= limit_ms,
    }


def reproduce(args):
    flags = [
        *("--symbols", args.symbols, "--tick", args.tick, "--ticker-changes", args.ticker_changes),
        *("--write-interval", args.write_interval, "--warmup", args.warmup),
        *("--duration", args.duration, *(["--json"] if args.json else [])),
    ]
    python = os.path.relpath(sys.executable, REPO)
    script = os.path.relpath(Path(__file__).resolve(), REPO)
    return f"cd {shlex.quote(str(REPO))} && " + shlex.join([python, script, *map(str, flags)])


def machine():
    versions = {name: importlib.metadata.version(name) for name in ("websockets", "msgspec")}
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
    }


def report(figures):
    def delays(kind):
        d = figures[f"visibility_{kind}_ms"]
        return f"median {d['median']} ms, p95 {d['p95']} ms, max {d['max']} ms"

    m = figures["machine"]
    per_k = "CPU s per 1,000 frames"
    lines = [
        "binance-funding-ws daemon benchmark",
        f"  machine       {m['cpu']} ({m['cpus']} CPUs), Linux {m['kernel']}, "
        f"Python {m['python']}, websockets {m['websockets']}, msgspec {m['msgspec']}",
        f"  market        {figures['symbols']} symbols, a tick every {figures['tick_s']} s "
        f"({1 / figures['tick_s']:.0f}x live), {figures['ticker_changes']} ticker rows a tick",
        f"  window        {figures['duration_s']} s, {figures['ticks']} ticks; frames: "
        f"daemon {figures['daemon_frames']}, floor {figures['floor_frames']}",
        f"  daemon        {figures['daemon_cpu_s_per_1000_frames']:.3f} {per_k} "
        f"({figures['daemon_cpu_s']} s), peak RSS {figures['daemon_peak_rss_mb']} MB",
        f"  floor         {figures['floor_cpu_s_per_1000_frames']:.3f} {per_k} "
        f"({figures['floor_cpu_s']} s), peak RSS {figures['floor_peak_rss_mb']} MB",
        f"  CPU ratio     {figures['cpu_ratio']} (daemon / floor)",
        f"  visibility    write interval {figures['write_interval_s']} s, "
        f"{figures['daemon_writes']} writes, {figures['visibility_worst_ms']['versions']} "
        f"measured; polling adds up to {POLL_S * 1000:.0f} ms to each",
        f"    worst frame {delays('worst')}",
        "                (the first frame after a write, from when it was sent, to the next)",
        f"    newest row  {delays('newest')}",
        "                (from the daemon's received_at stamp; includes up to one tick of wait)",
        f"    write       {delays('write')}",
        "                (from the document's updated_at stamp: encode, write, fsync, rename)",
        *(
            f"  {'PASS' if ok else 'FAIL'}          {name}"
            for name, ok in figures["targets"].items()
        ),
        f"  reproduce     {figures['command']}",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=700, help="ordinary contracts [700]")
    parser.add_argument("--tick", type=float, default=0.05, help="seconds per tick [0.05]")
    parser.add_argument("--ticker-changes", type=int, default=200, help="rows per tick [200]")
    parser.add_argument("--write-interval", type=float, default=1.0, help="daemon's [1.0]")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before [3]")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds [30]")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    figures = measure(args)
    figures["machine"] = machine()
    figures["command"] = reproduce(args)
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
