"""Benchmark: the daemon against a decode-only floor (and the earlier daemon's way), on the
same frames.

Two modes, each one run of one simulator that all clients subscribe to at the same time, so
they get the same frames:

* replay (the default): the bundled simulator replays the market at an accelerated rate
  (700 symbols plus the 3 special ones, a tick every 50 ms = 20x the live rate, i.e. ~60
  frames a second, 200 ticker rows a tick), for 30 s;
* live cadence (``--live``): a tick every second, as on Binance, for at least 60 s;
  ``--symbols`` 900 by default (2,000 and 4,000 are just ``--symbols N``), ticker rows a
  tick 70 % of the symbols (630 at 900) unless ``--ticker-changes`` says otherwise.

The clients, each a subprocess:

* the daemon (``python -m binance_funding_ws run``), doing everything it does live, state
  file included;
* the floor: ``recv(decode=False)`` + ``msgspec.json.decode`` of every frame, nothing else
  (``--floor-parser orjson`` for ``orjson.loads``, what the earlier measurements used);
* the earlier-daemon baseline (``earlier_daemon.py`` beside this file; always in live mode,
  ``--earlier-daemon`` adds it to a replay): the earlier daemon's way, ``websocket-client``,
  ``json.loads`` and the whole state through ``json.dump(indent=2)`` on every message.

Printed: for each client CPU seconds per 1,000 frames, CPU seconds and % of one core (CPU
seconds over the window's length: the share of a core the client needs at this rate; above
100 % it cannot keep up), peak RSS (VmHWM); the ratios daemon / floor and earlier-daemon /
daemon; the delay from a frame's arrival to its value being visible in the daemon's state
file. Targets: daemon CPU <= 1.5x the floor's and >= 40x below the earlier daemon's, peak RSS
<= 35 MB up to 1,000 symbols and <= 60 MB above (one rule for both modes: the replay's 700
symbols fall under the 35 MB one), visibility <= write interval + 100 ms.

How: after a warm-up the market is paused until every client has handled every frame sent
(and the daemon has written them), CPU and frame counts are read, the market runs for the
measured window, and is paused and read again. The window's edges thus fall between frames:
all clients handled exactly the same frames, each frame's whole cost (the daemon's write of
it, the earlier daemon's too) is inside. CPU is each process's own (utime + stime, all threads,
read from its CPU-time clock at ns resolution), so the simulator's, in this process, is not
counted. Meanwhile this process watches the daemon's state file, and every half second notes
how far the floor and the earlier daemon are behind. A client that falls behind is waited for
at the window's end, however long it takes while it makes progress, and said to have
fallen behind: its figures stay exact. For that, with the earlier daemon in the run the
simulator never closes a slow connection (its ``send_queue`` is raised from 256), sends no
pings, and the daemon gets ``--stall-timeout 3600`` so a long wait is not a stall to it.

``--profile PATH`` attaches ``py-spy record`` to the daemon for the window (raw collapsed
stacks to PATH, readable by speedscope and flamegraph.pl) and prints the functions with the
most own and total time. A profiled run's figures are marked "(profiled)": not the
benchmark's figures.

    .venv/bin/python benchmarks/bench_daemon.py [--duration 30] [--json]
    .venv/bin/python benchmarks/bench_daemon.py --live [--symbols 4000] [--profile PATH]

Figures, not a test: shared machines are noisy, so this exits 0 whatever the figures (it
prints PASS/FAIL per target) and non-zero only when the benchmark itself broke.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import re
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
BACKLOG_EVERY_S = 0.5  # how often the window notes how far the counted clients are behind
CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNTER = struct.Struct("<Q")  # a counted client's frame count, in a shared 8-byte mmap
REPO = Path(__file__).resolve().parents[1]
EARLIER_SCRIPT = Path(__file__).resolve().with_name("earlier_daemon.py")
TARGET_RATIO, TARGET_EARLIER_RATIO, TARGET_SLACK_MS = 1.5, 40.0, 100.0
TARGET_RSS_MB = {1000: 35.0, math.inf: 60.0}  # up to this many symbols: this peak RSS
LIVE = {"symbols": 900, "tick": 1.0, "warmup": 5.0, "duration": 60.0}
REPLAY = {"symbols": 700, "tick": 0.05, "ticker_changes": 200, "warmup": 3.0, "duration": 30.0}
LIVE_MIN_DURATION, LIVE_TICKER_SHARE = 60.0, 0.7
FRAMES_PER_TICK = 3  # the simulator's 2 mark-price frames (mark_frames=2) and 1 ticker frame
LABELS = {"daemon": "daemon", "floor": "floor", "earlier": "earlier"}  # the earlier daemon's way
PARSERS = {"msgspec": "msgspec.json.decode", "orjson": "orjson.loads"}

# The floor: what any client must do with these frames (receive, parse) and nothing else.
# Its count goes to a shared mmap: exact at any instant, and a pack_into per frame costs
# ~0.1 us against ~300 us of parsing, so the floor is not inflated by its own reporting.
FLOOR = textwrap.dedent(
    """
    import asyncio, mmap, struct, sys
    from websockets.asyncio.client import connect

    if sys.argv[3] == "orjson":
        from orjson import loads as DECODE
    else:
        from msgspec.json import decode as DECODE

    async def main(url, counter):
        decode, pack = DECODE, struct.Struct("<Q").pack_into
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
    """utime + stime of the whole process (live and finished threads), in seconds.

    Read from the process's CPU-time clock (the clock id ``clock_getcpuclockid(3)`` makes),
    at ns resolution: /proc/<pid>/stat gives the same sum in 10 ms ticks, ±10 % of the
    floor's CPU in a minute at the live cadence. /proc/<pid>/stat if the clock is refused.
    """
    with contextlib.suppress(OSError):
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process
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


# -- the clients -----------------------------------------------------------------------------


def start_daemon(url, state_file, write_interval, log_file, stall_timeout=None):
    command = [
        *(sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", url),
        *("--streams", ",".join(STREAMS), "--state-file", str(state_file)),
        *("--write-interval", str(write_interval), "--log-level", "WARNING"),
        *(("--stall-timeout", str(stall_timeout)) if stall_timeout else ()),
    ]
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


def start_floor(url, counter_path, parser):
    counter_path.write_bytes(bytes(COUNTER.size))
    return subprocess.Popen([sys.executable, "-c", FLOOR, url, str(counter_path), parser])


def start_earlier(url, counter_path, state_file, log_file):
    counter_path.write_bytes(bytes(COUNTER.size))
    command = [sys.executable, str(EARLIER_SCRIPT), url, str(counter_path), str(state_file)]
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


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


def queued(sim, number):
    """Frames the simulator holds for a connection, not yet handed to its socket. Its
    ``stats`` counts only frames sent; the queue is private, but this process owns it."""
    connection = sim.sim._connections.get(number)
    return connection.queue.qsize() if connection else 0


def wait_for(what, predicate, processes, timeout=20.0, progress=None):
    """Poll ``predicate`` until true. With ``progress`` (a reading that changes while the
    work advances) the timeout runs from its last change: a slow client catching up is
    waited for as long as it gets on."""
    deadline = time.monotonic() + timeout
    last = progress() if progress else None
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a client exited with {process.returncode}")
        if progress and (now := progress()) != last:
            last, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


# -- the profiler ----------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` attached to one process, raw collapsed stacks to a file.

    Non-blocking sampling (the target is never stopped) and a separate process, so the
    target's own CPU is not charged for it; it still competes for the machine's cores,
    hence a profiled run's figures are marked as such. Never breaks the run: a failure is
    kept in ``error`` and reported on one line.
    """

    def __init__(self, pid, path, rate, log_path):
        self.path, self.rate, self.log_path = Path(path), rate, log_path
        self.error = None
        self.process = None
        command = [
            *(_py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"),
            *("--format", "raw", "--output", str(self.path)),
        ]
        self.log = log_path.open("wb")
        try:
            self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        except OSError as exc:
            self.error = f"py-spy could not start: {exc}"
            return
        deadline = time.monotonic() + 15
        while b"Sampling process" not in log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.error = f"py-spy did not attach: {self._why()}"
                stop(self.process, signal.SIGINT, timeout=5)
                return
            time.sleep(0.05)

    def _why(self):
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        return (errors or lines or [f"exit status {self.process.returncode}"])[-1]

    def finish(self):
        """Stop sampling (py-spy writes its file on SIGINT) and summarise the file."""
        if self.process is not None and self.error is None:
            stop(self.process, signal.SIGINT, timeout=60)
            if self.process.returncode != 0 or not self.path.exists():
                self.error = f"py-spy failed: {self._why()}"
        self.log.close()
        if self.error:
            return {"path": str(self.path), "rate": self.rate, "error": self.error}
        return {"path": str(self.path), "rate": self.rate, **profile_tops(self.path)}


def _py_spy():
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when run from one
    return str(beside) if beside.exists() else "py-spy"


FRAME_LINE = re.compile(r":\d+\)$")  # "name (file:line)" -> "name (file)": one per function


def profile_tops(path, count=15):
    """Per function: own samples (it was the innermost frame) and total samples (it was on
    the stack), from py-spy's raw format, one ``frame;frame;... N`` line per stack.

    The total list leaves out the entry frames that every stack from the same root shares
    (runpy, ``main``, the asyncio loop down to ``_run_once``; a thread's bootstrap): on all
    of their thread's samples, they would fill it and say nothing."""
    stacks, roots = [], collections.defaultdict(list)
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            names = [FRAME_LINE.sub(")", frame) for frame in stack.split(";")]
            stacks.append((names, int(n)))
            roots[names[0]].append(names[:-1])  # a leaf is never an entry frame
    entry = set()
    for group in roots.values():
        if len(group) < 2:  # one stack alone (a generator's, say) shares with nothing
            continue
        for frames in zip(*group, strict=False):  # depth by depth, while all agree
            if len(set(frames)) > 1:
                break
            entry.add(frames[0])
    own, total = collections.Counter(), collections.Counter()
    for names, n in stacks:
        own[names[-1]] += n
        for name in set(names) - entry:  # recursion counts once per sample
            total[name] += n
    return {
        "samples": sum(n for _, n in stacks),
        "self": own.most_common(count),
        "total": total.most_common(count),
        "entry_frames_left_out": sorted(entry),
    }


# -- one run ---------------------------------------------------------------------------------


class Bench:
    """The simulator, the clients and the readings; ``run()`` returns the raw figures."""

    def __init__(self, args, sim, workdir, logs):
        self.args, self.sim, self.workdir, self.logs = args, sim, workdir, logs
        self.ticks = []
        self._log_ticks(sim)
        url = sim.ws_url()
        self.state_file = workdir / "state.json"
        self.counters = {"floor": workdir / "floor.count", "earlier": workdir / "earlier.count"}
        self.watcher = StateWatcher(self.state_file, self.ticks)
        stall = (
            3600 if args.earlier_daemon else None
        )  # waiting for the earlier daemon's way is no stall
        self.processes = {
            "daemon": start_daemon(url, self.state_file, args.write_interval, logs["daemon"], stall)
        }
        self.url = stream_endpoint(url, STREAMS).url  # the very URL the daemon dials
        self.ids = {}
        self.counted = ("floor", "earlier") if args.earlier_daemon else ("floor",)
        self.backlog = dict.fromkeys(self.counted, 0)
        self.profiler = None

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
        """Frames each client has fully handled: the counted clients' counters, and the
        daemon's ``messages`` as of its last write (so counted only once it is in the file)."""
        doc = self.watcher.doc
        done = {"daemon": doc.connection_status.messages if doc else 0}
        for who in self.processes.keys() & set(self.counted):
            with open(self.counters[who], "rb") as handle:
                done[who] = COUNTER.unpack(handle.read(COUNTER.size))[0]
        return done

    def _join(self, who, start):
        """Start a counted client and wait for its first frame and its connection."""
        self.processes[who] = start()

        def connected():
            return self.frames()[who] > 0

        wait_for(f"the {LABELS[who]} client to connect", connected, self.processes.values())
        (self.ids[who],) = set(open_connections(self.sim)) - set(self.ids.values())

    def connect(self):
        def daemon_up():  # data in its file, and its connection is the only one open
            self.watcher.poll()
            doc = self.watcher.doc
            return doc is not None and bool(doc.funding) and len(open_connections(self.sim)) == 1

        wait_for("the daemon to connect", daemon_up, self.processes.values())
        (self.ids["daemon"],) = open_connections(self.sim)
        parser, workdir = self.args.floor_parser, self.workdir
        self._join("floor", lambda: start_floor(self.url, self.counters["floor"], parser))
        if self.args.earlier_daemon:
            state = workdir / "earlier-state.json"
            self._join(
                "earlier",
                lambda: start_earlier(
                    self.url, self.counters["earlier"], state, self.logs["earlier"]
                ),
            )

    def settle(self):
        """Pause the market and wait until every client handled every frame sent (and the
        daemon wrote them): the window's edges then fall between frames, so frame counts
        are exact and the CPU of each frame's work (its write included) is inside."""
        self.watcher.flowing = False
        self.sim.call("pause_ticks")
        paused = time.monotonic()
        time.sleep(0.1)  # let the simulator's send queues drain into the sockets

        def drained():
            self.watcher.poll()
            sent, done = open_connections(self.sim), self.frames()
            for who, number in self.ids.items():
                if number not in sent:
                    raise RuntimeError(f"the simulator closed the {LABELS[who]} connection")
            return all(sent[self.ids[who]] == done[who] for who in done)

        timeout = 20 + 3 * self.args.write_interval  # the daemon writes on its cadence

        def progress():
            return sum(self.frames().values())

        wait_for("all clients to catch up", drained, self.processes.values(), timeout, progress)
        return {
            "cpu": {who: cpu_seconds(p.pid) for who, p in self.processes.items()},
            "frames": self.frames(),
            "writes": self.watcher.doc.connection_status.writes,
            "ticks": len(self.ticks),
            "catch_up_s": time.monotonic() - paused,
        }

    def watch(self, seconds):
        """Watch the state file; every ``BACKLOG_EVERY_S`` note how many frames each counted
        client is behind: queued for it or sent, not yet handled (the daemon's count lags by
        its write interval, so it is judged by its visibility instead)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.watcher.watch(min(BACKLOG_EVERY_S, left))
            sent, done = open_connections(self.sim), self.frames()
            for who in self.counted:
                number = self.ids[who]
                behind = sent.get(number, done[who]) - done[who] + queued(self.sim, number)
                self.backlog[who] = max(self.backlog[who], behind)

    def run(self):
        self.connect()
        self.watcher.watch(self.args.warmup)
        start = self.settle()
        if self.args.profile:
            log_path = self.workdir / "py-spy.log"
            daemon = self.processes["daemon"].pid
            self.profiler = Profiler(daemon, self.args.profile, self.args.profile_rate, log_path)
        self.watcher.recording = True
        self.sim.call("resume_ticks")
        resumed = time.monotonic()
        self.watcher.flowing = True
        self.watch(self.args.duration)
        window_s = time.monotonic() - resumed
        end = self.settle()
        profile = self.profiler.finish() if self.profiler else None
        self.watcher.recording = False
        status = self.watcher.doc.connection_status
        if status.reconnects or status.errors or len(open_connections(self.sim)) != len(self.ids):
            raise RuntimeError("a client reconnected or reported errors: figures invalid")
        return {
            "start": start,
            "end": end,
            "window_s": window_s,
            "rss": {who: peak_rss_mb(p.pid) for who, p in self.processes.items()},
            "backlog": self.backlog,
            "newest_ms": self.watcher.newest_ms,
            "worst_ms": self.watcher.worst_ms,
            "write_ms": self.watcher.write_ms,
            "profile": profile,
        }

    def close(self):
        if self.profiler and self.profiler.process:
            stop(self.profiler.process, signal.SIGINT, timeout=10)
        for who, process in reversed(self.processes.items()):
            stop(process, timeout=10 if who == "daemon" else 5)


def measure(args):
    config = SimulatorConfig(
        tick=args.tick, symbols=args.symbols, ticker_changes=args.ticker_changes
    )
    if args.earlier_daemon:  # never close the slow one: wait for it, and say it fell behind
        config = dataclasses.replace(config, send_queue=1_000_000, ping_interval=None)
    with (
        tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp,
        SimulatorThread(config) as sim,
        contextlib.ExitStack() as files,
    ):
        workdir = Path(tmp)
        paths = {who: workdir / f"{who}.log" for who in ("daemon", "earlier")}
        logs = {who: files.enter_context(path.open("wb")) for who, path in paths.items()}
        bench = Bench(args, sim, workdir, logs)
        try:
            return summarise(args, bench.run())
        except Exception:
            for who, path in paths.items():
                if path.stat().st_size:
                    text = path.read_text(errors="replace")
                    print(f"{LABELS[who]} log:\n{text}", file=sys.stderr)
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


def ratio(numerator, denominator):
    return round(numerator / denominator, 3) if numerator and denominator else None


def summarise(args, raw):
    start, end = raw["start"], raw["end"]
    figures = {
        "mode": "live" if args.live else "replay",
        "profiled": bool(args.profile),
        "symbols": args.symbols + 3,  # XAUUSDT, BTCUSD_PERP and MATICUSDT come on top
        "tick_s": args.tick,
        "ticker_changes": args.ticker_changes,
        "write_interval_s": args.write_interval,
        "duration_s": args.duration,
        "window_s": round(raw["window_s"], 2),
        "ticks": end["ticks"] - start["ticks"],
        "daemon_writes": end["writes"] - start["writes"],
        "floor_parser": PARSERS[args.floor_parser],
        "clients": list(end["cpu"]),
    }
    for who in end["cpu"]:
        frames = end["frames"][who] - start["frames"][who]
        cpu = end["cpu"][who] - start["cpu"][who]
        figures[f"{who}_frames"] = frames
        figures[f"{who}_cpu_s"] = round(cpu, 3)
        figures[f"{who}_cpu_s_per_1000_frames"] = round(cpu / frames * 1000, 4) if frames else None
        figures[f"{who}_cpu_core_pct"] = round(100 * cpu / raw["window_s"], 2)
        figures[f"{who}_peak_rss_mb"] = round(raw["rss"][who], 1)
    per_k = {who: figures[f"{who}_cpu_s_per_1000_frames"] for who in end["cpu"]}
    figures["cpu_ratio"] = ratio(per_k["daemon"], per_k["floor"])
    if "earlier" in per_k:
        figures["earlier_ratio"] = ratio(per_k["earlier"], per_k["daemon"])
        backlog = raw["backlog"]["earlier"]
        figures["earlier_max_backlog_frames"] = backlog
        figures["earlier_catch_up_s"] = round(end["catch_up_s"], 2)
        figures["earlier_fell_behind"] = backlog > 2 * FRAMES_PER_TICK
    figures["floor_max_backlog_frames"] = raw["backlog"]["floor"]
    for kind in ("worst", "newest", "write"):
        values = raw[f"{kind}_ms"]
        figures[f"visibility_{kind}_ms"] = {
            "median": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "max": percentile(values, 1.0),
            "versions": len(values),
        }
    if raw["profile"] is not None:
        figures["profile"] = raw["profile"]
    figures["targets"] = targets(figures)
    return figures


def rss_target(symbols):
    return next(mb for most, mb in TARGET_RSS_MB.items() if symbols - 3 <= most)


def targets(figures):
    limit_ms = figures["write_interval_s"] * 1000 + TARGET_SLACK_MS
    worst = figures["visibility_worst_ms"]["max"]
    rss_mb = rss_target(figures["symbols"])
    checks = {
        f"daemon CPU <= {TARGET_RATIO}x floor": figures["cpu_ratio"] is not None
        and figures["cpu_ratio"] <= TARGET_RATIO
    }
    if "earlier_ratio" in figures:
        earlier = figures["earlier_ratio"]
        checks[f"earlier-daemon CPU >= {TARGET_EARLIER_RATIO:.0f}x daemon"] = (
            earlier is not None and earlier >= TARGET_EARLIER_RATIO
        )
    checks[f"daemon peak RSS <= {rss_mb:.0f} MB"] = figures["daemon_peak_rss_mb"] <= rss_mb
    checks[f"visibility (worst frame) <= {limit_ms:.0f} ms"] = (
        worst is not None and worst <= limit_ms
    )
    return checks


def reproduce(args):
    flags = [
        *(["--live"] if args.live else []),
        *("--symbols", args.symbols, *([] if args.live else ["--tick", args.tick])),
        *("--ticker-changes", args.ticker_changes, "--write-interval", args.write_interval),
        *("--warmup", args.warmup, "--duration", args.duration),
        *([] if args.floor_parser == "msgspec" else ["--floor-parser", args.floor_parser]),
        *(
            []
            if args.earlier_daemon == args.live
            else [f"--{'' if args.earlier_daemon else 'no-'}earlier-daemon"]
        ),
        *(["--profile", args.profile, "--profile-rate", args.profile_rate] if args.profile else []),
        *(["--json"] if args.json else []),
    ]
    python = os.path.relpath(sys.executable, REPO)
    script = os.path.relpath(Path(__file__).resolve(), REPO)
    return f"cd {shlex.quote(str(REPO))} && " + shlex.join([python, script, *map(str, flags)])


def machine(args):
    names = ["websockets", "msgspec"]
    names += ["orjson"] if args.floor_parser == "orjson" else []
    names += ["websocket-client"] if args.earlier_daemon else []
    names += ["py-spy"] if args.profile else []
    versions = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        **versions,
    }


def client_line(figures, who):
    per_k = figures[f"{who}_cpu_s_per_1000_frames"]
    return (
        f"  {LABELS[who]:<13} {per_k:.3f} CPU s per 1,000 frames ({figures[f'{who}_cpu_s']} s, "
        f"{figures[f'{who}_cpu_core_pct']} % of a core), "
        f"peak RSS {figures[f'{who}_peak_rss_mb']} MB"
    )


def earlier_lines(figures):
    if "earlier_ratio" not in figures:
        return []
    backlog, catch_up = figures["earlier_max_backlog_frames"], figures["earlier_catch_up_s"]
    if figures["earlier_fell_behind"]:
        state = (
            f"earlier-daemon baseline FELL BEHIND: up to {backlog} frames queued, caught up "
            f"{catch_up} s after the market paused (waited for: its figures are exact)"
        )
    else:
        state = f"kept up: at most {backlog} frames queued, caught up {catch_up} s after the pause"
    return [
        f"  earlier ratio {figures['earlier_ratio']} (earlier daemon / daemon)",
        f"  earlier pace  {state}",
    ]


def profile_lines(figures):
    profile = figures.get("profile")
    if profile is None:
        return []
    if "error" in profile:
        return [f"  profile       none: {profile['error']}"]
    samples = profile["samples"] or 1
    lines = [
        f"  profile       py-spy at {profile['rate']} Hz on the daemon over the window: "
        f"{profile['samples']} samples on CPU, raw stacks in {profile['path']}"
    ]
    titles = {"self": "own time", "total": "total time, below the shared entry frames"}
    for kind, title in titles.items():
        lines.append(f"    {title} (samples, share, function)")
        lines += [f"      {n:6d} {100 * n / samples:5.1f} %  {name}" for name, n in profile[kind]]
    return lines


def report(figures):
    def delays(kind):
        d = figures[f"visibility_{kind}_ms"]
        return f"median {d['median']} ms, p95 {d['p95']} ms, max {d['max']} ms"

    m = figures["machine"]
    names = ("websockets", "msgspec", "orjson", "websocket-client")
    versions = ", ".join(f"{name} {m[name]}" for name in names if name in m)
    clients = figures["clients"]
    mode = "live cadence" if figures["mode"] == "live" else "replay"
    profiled = " (profiled: py-spy attached, not the benchmark's figures)"
    frames = ", ".join(f"{LABELS[who]} {figures[f'{who}_frames']}" for who in clients)
    lines = [
        f"binance-funding-ws daemon benchmark, {mode}{profiled if figures['profiled'] else ''}",
        f"  machine       {m['cpu']} ({m['cpus']} CPUs), Linux {m['kernel']}, "
        f"Python {m['python']}, {versions}",
        f"  load          {' '.join(map(str, m['load_average']))} (1, 5, 15 min, at the end)",
        f"  market        {figures['symbols']} symbols, a tick every {figures['tick_s']} s "
        f"({1 / figures['tick_s']:.0f}x live), {figures['ticker_changes']} ticker rows a tick",
        f"  window        {figures['duration_s']} s, {figures['ticks']} ticks; frames: {frames}",
        *(client_line(figures, who) for who in clients),
        f"  floor parser  {figures['floor_parser']}",
        f"  CPU ratio     {figures['cpu_ratio']} (daemon / floor)",
        *earlier_lines(figures),
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
        *profile_lines(figures),
        f"  reproduce     {figures['command']}",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--live",
        action="store_true",
        help="live cadence: a tick a second, >= 60 s, the earlier-daemon baseline too",
    )
    parser.add_argument("--symbols", type=int, help="ordinary contracts [700; --live: 900]")
    parser.add_argument("--tick", type=float, help="seconds per tick [0.05; --live: 1, fixed]")
    parser.add_argument(
        "--ticker-changes", type=int, help="rows per tick [200; --live: 70 %% of --symbols]"
    )
    parser.add_argument("--write-interval", type=float, default=1.0, help="daemon's [1.0]")
    parser.add_argument("--warmup", type=float, help="seconds before [3; --live: 5]")
    parser.add_argument("--duration", type=float, help="measured seconds [30; --live: 60]")
    parser.add_argument(
        "--floor-parser", choices=sorted(PARSERS), default="msgspec", help="[msgspec]"
    )
    parser.add_argument(
        "--earlier-daemon",
        action=argparse.BooleanOptionalAction,
        help="run the earlier-daemon baseline too [off; --live: on]",
    )
    parser.add_argument("--profile", metavar="PATH", help="py-spy the daemon, raw stacks to PATH")
    parser.add_argument("--profile-rate", type=int, default=200, help="samples a second [200]")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.live and args.tick not in (None, LIVE["tick"]):
        parser.error(f"--live runs at the live cadence: --tick is {LIVE['tick']} s")
    defaults = LIVE if args.live else REPLAY
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.ticker_changes is None:
        args.ticker_changes = max(1, round(LIVE_TICKER_SHARE * args.symbols))
    if args.earlier_daemon is None:
        args.earlier_daemon = args.live
    if args.live and args.duration < LIVE_MIN_DURATION:
        parser.error(
            f"--live needs --duration >= {LIVE_MIN_DURATION:.0f}: a live window is a minute or more"
        )
    return args


def main(argv=None):
    args = parse_args(argv)
    figures = measure(args)
    figures["machine"] = machine(args)
    figures["command"] = reproduce(args)
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
