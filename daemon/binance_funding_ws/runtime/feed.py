"""The WebSocket shell: keeps market data flowing from Binance, forever.

Every decision (dial, stall, rotate, give up on a link) is the supervisor's
(:mod:`binance_funding_ws.supervisor`, sans-I/O); this shell only does the I/O. It tells the
supervisor what happens — a dial ended, a market frame arrived, a link ended, time passed —
and carries out the actions it returns: dial a candidate, close a link, write a log line.

One reader task per connection decodes frames, hands market rows to the merge and the
frame's newest event time to the supervisor. One run loop dials the primary whenever there
is none (after the supervisor's backoff delay) and otherwise ticks the supervisor's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import websockets
from websockets.asyncio.client import ClientConnection, connect

from binance_funding_ws import __version__
from binance_funding_ws.clock import now_ms
from binance_funding_ws.frames import DecodedFrame, FrameDecoder
from binance_funding_ws.runtime.logs import RateLimitedLog
from binance_funding_ws.supervisor import (
    LEGACY_HINT,
    Action,
    Close,
    DialCandidate,
    FeedConfig,
    Log,
    Supervisor,
)
from binance_funding_ws.tracker import ConnectionTracker

__all__ = ["LEGACY_HINT", "Feed", "FeedConfig"]

log = logging.getLogger(__name__)


@dataclass
class _Connection:
    """One open WebSocket connection and the task reading it."""

    ws: ClientConnection
    reader: asyncio.Task[None] | None = None


class Feed:
    """Runs connections to ``config.url`` and passes every decoded market frame on.

    ``on_market_frame(frame, received_at_ms)`` is called in the event loop for each frame
    carrying good rows, from any open link.
    """

    def __init__(
        self,
        config: FeedConfig,
        tracker: ConnectionTracker,
        on_market_frame: Callable[[DecodedFrame, int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.supervisor = Supervisor(config, tracker)
        self._on_market_frame = on_market_frame
        self._clock = clock
        self._decoder = FrameDecoder()
        self._raw_stream = config.endpoint.raw_stream
        self._numbers = itertools.count(1)
        self._wake = asyncio.Event()
        self._connections: dict[int, _Connection] = {}
        self._dials: set[asyncio.Task[None]] = set()  # candidates being dialled
        self._closing: set[asyncio.Task[None]] = set()
        self._input_log = RateLimitedLog(log)
        self._check_interval = max(0.05, min(1.0, config.stall_timeout / 4))

    async def run(self) -> None:
        """Keep a primary connection delivering data until cancelled; never gives up."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self.supervisor.primary is None:
                    await self._connect_primary()
                    continue
                # A timer rather than wait_for(): no exception per quiet interval, and no
                # asyncio.TimeoutError, which Python 3.10 does not alias to TimeoutError.
                self._wake.clear()
                timer = loop.call_later(self._check_interval, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
                self._execute(self.supervisor.tick(self._clock(), now_ms()))
        finally:
            await self._close_everything()

    # -- carrying out the supervisor's actions --------------------------------------------

    def _execute(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Close):
                self._close_soon(action.number)
            elif isinstance(action, DialCandidate):
                task = asyncio.create_task(self._dial_candidate(action.replacing))
                self._dials.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._dials.discard)
            else:
                self._write(action)

    def _write(self, line: Log) -> None:
        if line.key is None:
            log.log(line.level, line.message)
        else:  # repeats as often as the feed fails: rate-limited
            self._input_log.log(line.level, line.key, line.message)

    # -- dialling -------------------------------------------------------------------------

    async def _connect_primary(self) -> None:
        delay = self.supervisor.dial_delay
        if delay > 0:
            await asyncio.sleep(delay)
        self.supervisor.dialling(now_ms())
        try:
            ws = await self._connect()
        except Exception as exc:
            self._execute(self.supervisor.dial_failed(_describe(exc), self._clock(), now_ms()))
            return
        self._execute(self.supervisor.opened(self._open(ws), self._clock()))

    async def _dial_candidate(self, replacing: int) -> None:
        try:
            ws = await self._connect()
        except Exception as exc:
            reason = _describe(exc)
            self._execute(
                self.supervisor.dial_failed(reason, self._clock(), now_ms(), replacing=replacing)
            )
            return
        number = self._open(ws)
        self._execute(self.supervisor.opened(number, self._clock(), replacing=replacing))

    async def _connect(self) -> ClientConnection:
        return await connect(
            self.config.url,
            open_timeout=self.config.open_timeout,
            max_size=self.config.max_frame_bytes,
            # Bounded: a slow loop applies TCP backpressure (the kernel holds the rest), and a
            # hostile feed of max_frame_bytes frames makes the daemon buffer 4 at most.
            max_queue=4,
            close_timeout=2,
            compression=None,  # Binance does not compress; skipping the offer saves CPU
            user_agent_header=f"binance-funding-ws/{__version__}",
        )

    def _open(self, ws: ClientConnection) -> int:
        """Number a new connection and start reading it (its reader runs at the next await,
        after the supervisor has been told of it)."""
        number = next(self._numbers)
        connection = self._connections[number] = _Connection(ws)
        connection.reader = asyncio.create_task(
            self._read(number, ws), name=f"feed-reader-{number}"
        )
        return number

    # -- reading --------------------------------------------------------------------------

    async def _read(self, number: int, ws: ClientConnection) -> None:
        try:
            while True:
                data = await ws.recv(decode=False)
                self._handle(number, data)
        except websockets.ConnectionClosed as exc:
            reason = _describe_close(exc)
        except Exception as exc:  # a bug, not bad input: keep the traceback, keep running
            log.exception("connection %d reader failed", number)
            reason = f"reader failed: {_describe(exc)}"
        # Cancelled (closed by the daemon) skips this: the supervisor already let it go.
        self._close_soon(number)
        self._execute(self.supervisor.lost(number, reason, self._clock(), now_ms()))
        self._wake.set()  # the run loop dials a new primary if this one was it

    def _handle(self, number: int, data: bytes) -> None:
        received_at = now_ms()
        tracker = self.tracker
        tracker.on_frame()
        frame = self._decoder.decode(data, self._raw_stream)
        if frame.errors:
            tracker.on_errors(frame.errors, received_at)
            for error in frame.errors:
                self._input_log.log(logging.WARNING, "bad-input", f"bad input: {error}")
        if not frame.market:
            return
        self._on_market_frame(frame, received_at)
        unlisted = tracker.on_market_data(frame.stream, received_at)
        if unlisted is not None:
            self._input_log.log(logging.WARNING, "streams", f"bad input: {unlisted}")
        self._execute(self.supervisor.market_frame(number, frame, self._clock(), received_at))

    # -- closing --------------------------------------------------------------------------

    def _close_soon(self, number: int) -> None:
        connection = self._connections.pop(number, None)
        if connection is None:
            return
        task = asyncio.create_task(self._close(number, connection), name=f"feed-close-{number}")
        self._closing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._closing.discard)

    async def _close(self, number: int, connection: _Connection) -> None:
        if connection.reader is not None:
            connection.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.ws.close(), timeout=2)
        log.debug("connection %d closed", number)

    async def _close_everything(self) -> None:
        for task in self._dials:
            task.cancel()
        connections, self._connections = self._connections, {}
        closing: list[Awaitable[None]] = [*self._dials, *self._closing]
        closing.extend(
            self._close(number, connection) for number, connection in connections.items()
        )
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _describe_close(exc: websockets.ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "connection dropped without a close frame (1006)"
    reason = f" {frame.reason}" if frame.reason else ""
    return f"closed with code {frame.code}{reason}"
