"""The daemon: the feed, the merge and the state-file writer wired together.

Everything runs in one asyncio loop, so the market maps are only ever touched by one thread.
The only other thread is the writer's: it receives the encoded document, never live objects,
so slow disks (fsync) cannot stall the receive loop and no lock guards the maps. The
document's buffer is reused from write to write, and never while a write still holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from binance_funding_ws.clock import now_ms
from binance_funding_ws.durations import format_age
from binance_funding_ws.frames import DecodedFrame
from binance_funding_ws.health import forgotten
from binance_funding_ws.market import DEFAULT_MAX_SYMBOLS, MAX_AHEAD_MS, MarketBook
from binance_funding_ws.runtime.feed import Feed, FeedConfig
from binance_funding_ws.runtime.logs import RateLimitedLog
from binance_funding_ws.runtime.notify import Notifier
from binance_funding_ws.runtime.warmstart import restore_previous
from binance_funding_ws.runtime.writer import (
    AtomicWriter,
    LockHeldError,
    LockLostError,
    StateFileLock,
    UnsafePathError,
)
from binance_funding_ws.state import SCHEMA_VERSION, StateDocument, encode_state_into
from binance_funding_ws.tracker import ConnectionTracker

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
SHUTDOWN_BUDGET = 4.0  # seconds; SIGTERM must end the process within 5 s
FORGET_CHECK_INTERVAL = 60.0  # seconds between two looks for entries past --forget-after


@dataclass(frozen=True)
class DaemonConfig:
    state_file: Path
    feed: FeedConfig
    write_interval: float = 1.0
    file_mode: int = 0o644
    forget_after: float = 7 * 86400  # seconds without an update before an entry is dropped
    max_symbols: int = DEFAULT_MAX_SYMBOLS


class Daemon:
    """Owns the lock, the book, the tracker and the writer for one state file."""

    def __init__(self, config: DaemonConfig, notifier: Notifier | None = None) -> None:
        self.config = config
        self.book = MarketBook(config.max_symbols, MAX_AHEAD_MS)
        self.tracker = ConnectionTracker(config.feed.url, now_ms())
        self.feed = Feed(config.feed, self.tracker, self._on_market_frame)
        self.lock = StateFileLock(config.state_file)
        # Every replacement first checks that the lock is still ours (it may have been deleted).
        self.writer = AtomicWriter(config.state_file, config.file_mode, guard=self.lock.ensure_held)
        self.lost_lock: LockLostError | None = None
        self._request_stop: Callable[[], None] = lambda: None
        self.notifier = notifier or Notifier()
        self._write_lock = threading.Lock()  # the final write must land after any in flight
        self._written_version = -1
        self._buffer = bytearray()  # the encoded document, reused from write to write
        self._in_flight: bytearray | None = None  # the buffer a writer thread still reads
        self._write_started: float | None = None  # monotonic time of the write in progress
        self._disk_log = RateLimitedLog(log, burst=3)
        self._input_log = RateLimitedLog(log)
        self._next_forget_check = 0.0  # monotonic

    def _on_market_frame(self, frame: DecodedFrame, received_at: int) -> None:
        for rejected in self.book.apply(frame, received_at).rejected:
            self.tracker.on_rejected(rejected.rows, rejected.reason, received_at)
            self._input_log.log(logging.WARNING, rejected.kind, f"bad input: {rejected.reason}")

    # -- the state document -------------------------------------------------------------

    def _publish_pending(self) -> None:
        """Fold pending rows into the book's maps; count and log the rows that fail."""
        errors = self.book.publish()
        if errors:
            self.tracker.on_errors(errors, now_ms())
            for error in errors:
                self._input_log.log(logging.WARNING, "bad-decimal", f"bad input: {error}")

    def build_document(self) -> StateDocument:
        """Fold pending rows in and describe everything as one document."""
        self._publish_pending()
        self._forget_old_entries()
        return StateDocument(
            schema_version=SCHEMA_VERSION,
            updated_at=now_ms(),
            connection_status=self.tracker.snapshot(),
            funding=self.book.funding,
            tickers=self.book.tickers,
            missing=self.book.missing(),
        )

    def _forget_old_entries(self) -> None:
        """Drop entries past ``forget_after`` (checked at most once a minute: it is a walk
        over every entry, and a week-long limit needs no finer grain)."""
        clock = time.monotonic()
        if clock < self._next_forget_check:
            return
        self._next_forget_check = clock + FORGET_CHECK_INTERVAL
        now, limit = now_ms(), self.config.forget_after
        funding = forgotten(self.book.funding, now, limit)
        tickers = forgotten(self.book.tickers, now, limit)
        if not funding and not tickers:
            return
        for symbol in sorted({*funding, *tickers}):
            log.info("forgetting %s: no update for over %s (--forget-after)", symbol,
                     format_age(limit))  # fmt: skip
        self.book.forget(funding, tickers)

    def warm_start(self) -> None:
        """Start from the previous file's entries, if there is a usable one (call under the
        lock, before the first write)."""
        restore_previous(self.config.state_file, self.book, self.tracker, now_ms())

    async def write_state(self) -> bool:
        """Write the state now (in the writer thread); return whether it reached the disk."""
        data = self._encode(self.build_document())
        version = self.tracker.version
        self._write_started = time.monotonic()
        self._in_flight = data
        try:
            await asyncio.to_thread(self._write_locked, data)
        except LockLostError as exc:
            self._on_lock_lost(exc)
            return False
        except OSError as exc:
            message = f"cannot write {self.config.state_file}: {exc.strerror or exc}"
            self.tracker.on_write_result(message)
            self._disk_log.log(logging.ERROR, "write", f"{message}; keeping the previous file")
            return False
        if self.tracker.status.last_write_error is not None:
            log.info("state file writable again: %s", self.config.state_file)
        self.tracker.on_write_result(None)
        self._written_version = version
        return True

    def _encode(self, document: StateDocument) -> bytearray:
        """The document's bytes, in the reused buffer unless a write still holds it (a write
        whose caller was cancelled at shutdown goes on in its thread until it is done)."""
        if self._in_flight is self._buffer:
            self._buffer = bytearray()
        encode_state_into(document, self._buffer)
        return self._buffer

    def _write_locked(self, data: bytearray) -> None:
        try:
            with self._write_lock:
                self.writer.write(data)
        finally:
            self._write_started = None
            if self._in_flight is data:  # a later write's buffer is that write's to release
                self._in_flight = None

    async def _publish_forever(self) -> None:
        # A fixed cadence, not "sleep after each write": a frame then waits at most one
        # interval plus one write to be visible, however long the writes take.
        loop = asyncio.get_running_loop()
        interval = self.config.write_interval
        next_write = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_write - loop.time()))
            if self.tracker.version != self._written_version or self.book.has_pending:
                await self.write_state()
            next_write = max(next_write + interval, loop.time())  # a slow disk: no bursts

    def loop_is_healthy(self, now: float, limit: float) -> bool:
        """No state write has been stuck for more than ``limit`` seconds (a hung disk)."""
        started = self._write_started
        return started is None or now - started <= limit

    async def _watchdog_forever(self, interval: float) -> None:
        # Sent from the event loop itself: if the loop hangs, systemd stops hearing from us.
        # A write stuck in the kernel (hung disk) also withholds it: a restart is the remedy
        # systemd can offer. A lost connection does not: the feed repairs that by itself.
        while True:
            if self.loop_is_healthy(time.monotonic(), limit=2 * interval):
                self.notifier.watchdog()
            else:
                self._disk_log.log(
                    logging.ERROR, "watchdog", "a state write is stuck; withholding WATCHDOG=1"
                )
            await asyncio.sleep(interval)

    # -- running ------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the single-writer lock and clear a crashed predecessor's temporary files.

        The state path is checked first, so a FIFO or a device there gets no lock file beside it.
        """
        self.writer.check_target()
        self.lock.acquire()
        removed = self.writer.remove_leftovers()
        if removed:
            log.info("removed %d leftover temporary file(s) from an earlier crash", removed)

    def _on_lock_lost(self, exc: LockLostError) -> None:
        # Another daemon writes the file now: two writers would make it flip between them.
        if self.lost_lock is None:
            log.error("%s", exc)
            self.lost_lock = exc
            self._request_stop()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT, write a final ``stopped`` state and return 0; return 3
        without another write if a second daemon took the lock over (see ``ensure_held``)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self._request_stop = stop.set
        await self.write_state()  # readers see "connecting" at once, not a stale "stopped"
        tasks = [
            asyncio.create_task(self.feed.run(), name="feed"),
            asyncio.create_task(self._publish_forever(), name="publisher"),
        ]
        if self.notifier.watchdog_interval:
            tasks.append(
                asyncio.create_task(self._watchdog_forever(self.notifier.watchdog_interval))
            )
        self.notifier.ready(f"writing {self.config.state_file}")
        log.info(
            "daemon started: %s -> %s (pid %d)",
            self.config.feed.url,
            self.config.state_file,
            self.tracker.status.pid,
        )
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        crashed = [task for task in done if task is not stopper]
        for task in crashed:  # feed and publisher never return: anything done here is a bug
            log.error("task %s ended unexpectedly", task.get_name(), exc_info=task.exception())
        await self._shut_down([stopper, *tasks])
        if self.lost_lock is not None:
            return EXIT_LOCKED
        return EXIT_FAILURE if crashed else EXIT_OK

    async def _shut_down(self, tasks: list[asyncio.Task[object]]) -> None:
        self.notifier.stopping()
        if self.lost_lock is None:
            log.info("stopping: writing the final state")
        else:
            log.info("stopping without a final write: another daemon holds the lock")
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), SHUTDOWN_BUDGET / 2
            )
        self.tracker.set_state("stopped", now_ms())
        if self.lost_lock is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.write_state(), SHUTDOWN_BUDGET / 2)
        self.lock.release()
        log.info("stopped")


def run_daemon(config: DaemonConfig) -> int:
    """Entry point for ``binance-funding-ws run``: returns the process exit code."""
    daemon = Daemon(config)
    try:
        daemon.acquire()
    except LockHeldError as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    except UnsafePathError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except OSError as exc:
        log.error("cannot lock %s: %s", daemon.lock.path, exc.strerror or exc)
        return EXIT_USAGE
    daemon.warm_start()
    # Everything allocated so far (modules, the restored entries) lives as long as the
    # process: keep it out of the collector's full passes, which otherwise walk it again
    # and again (measured: 3 % of the daemon's CPU at the live rate).
    gc.collect()
    gc.freeze()
    return asyncio.run(daemon.run())
