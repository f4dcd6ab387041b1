"""The WebSocket shell: keeps market data flowing from Binance, forever.

One supervisor coroutine owns every decision (dial, stall, rotate, give up on a link); one
reader task per connection only decodes frames and hands them over. Links have a role:

``primary``
    The connection the daemon relies on. The tracker reports ``connected`` only while it
    delivers market data.
``candidate``
    A replacement dialled before Binance's 24 h limit. It becomes primary when its first
    market frame arrives (make-before-break), so a rotation never leaves a gap.
``draining``
    The former primary after a rotation: it keeps feeding the merge until it has delivered
    a frame as new as the candidate's first one (or a grace period ends), then it is closed.
    Rows seen twice change nothing (the merge keeps the newest), so no update is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import websockets
from websockets.asyncio.client import ClientConnection, connect

from binance_funding_ws import __version__
from binance_funding_ws.backoff import Backoff
from binance_funding_ws.clock import now_ms
from binance_funding_ws.endpoint import Endpoint
from binance_funding_ws.frames import DecodedFrame, FrameDecoder
from binance_funding_ws.runtime.logs import RateLimitedLog
from binance_funding_ws.tracker import ConnectionTracker

log = logging.getLogger(__name__)

LEGACY_HINT = (
    "the URL may be wrong: since 2026-04-23 Binance delivers markPrice/ticker only on "
    "/market paths (wss://fstream.binance.com/market/stream); legacy /stream and /ws "
    "paths connect and stay silent"
)


@dataclass(frozen=True)
class FeedConfig:
    """How to reach the exchange and when to give up on a connection."""

    endpoint: Endpoint
    stall_timeout: float = 30.0
    rotate_after: float = 23.5 * 3600  # Binance closes connections at 24 h
    rotation_grace: float = 5.0
    open_timeout: float = 10.0
    max_frame_bytes: int = 16 * 1024 * 1024
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    healthy_after: float = 60.0  # data flowing this long resets the backoff

    @property
    def url(self) -> str:
        return self.endpoint.url


Role = Literal["primary", "candidate", "draining"]


class Link:
    """One WebSocket connection and what the supervisor knows about it."""

    def __init__(self, number: int, ws: ClientConnection, role: Role, opened_at: float) -> None:
        self.number = number
        self.ws = ws
        self.role: Role = role
        self.opened_at = opened_at
        self.first_market_at: float | None = None
        self.last_market_at: float | None = None
        self.first_event_time = 0
        self.last_event_time = 0
        self.drain_deadline = 0.0
        self.drain_target = 0
        self.close_reason: str | None = None
        self.reader: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def silent_for(self, now: float) -> float:
        return now - (self.last_market_at or self.opened_at)


class Feed:
    """Runs connections to ``config.url`` and passes every decoded market frame on.

    ``on_market_frame(frame, received_at_ms)`` is called in the event loop for each frame
    carrying good rows, from any live link.
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
        self._on_market_frame = on_market_frame
        self._clock = clock
        self._decoder = FrameDecoder()
        self._raw_stream = config.endpoint.raw_stream
        self._backoff = Backoff(config.backoff_base, config.backoff_cap)
        self._numbers = itertools.count(1)
        self._wake = asyncio.Event()
        self._primary: Link | None = None
        self._candidate: Link | None = None
        self._draining: list[Link] = []
        self._dialing: asyncio.Task[Link] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._next_rotation_try = 0.0
        self._delay_before_dial = 0.0
        self._ever_connected = False
        self._input_log = RateLimitedLog(log)
        self._check_interval = max(0.05, min(1.0, config.stall_timeout / 4))

    async def run(self) -> None:
        """Keep a primary connection delivering data until cancelled; never gives up."""
        try:
            while True:
                if self._primary is None:
                    await self._connect_primary()
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._check_interval)
                self._supervise(self._clock())
        finally:
            await self._close_everything()

    # -- dialling -------------------------------------------------------------------------

    async def _connect_primary(self) -> None:
        if self._delay_before_dial > 0:
            await asyncio.sleep(self._delay_before_dial)
        if self._ever_connected:
            self.tracker.on_reconnect()
        self._ever_connected = True
        self.tracker.set_state("connecting", now_ms())
        try:
            self._primary = await self._dial("primary")
        except Exception as exc:
            self._fail(f"cannot connect to {self.config.url}: {_describe(exc)}", "reconnecting")
            return
        self._delay_before_dial = 0.0

    async def _dial(self, role: Role) -> Link:
        ws = await connect(
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
        link = Link(next(self._numbers), ws, role, self._clock())
        link.reader = asyncio.create_task(self._read(link), name=f"feed-reader-{link.number}")
        log.info("connection %d open (%s) to %s", link.number, role, self.config.url)
        return link

    def _fail(self, message: str, state: Literal["reconnecting", "stalled"]) -> None:
        """The primary is gone: record why and schedule the next dial."""
        self._primary = None
        self.tracker.set_state(state, now_ms())
        self._delay_before_dial = self._backoff.next_delay()
        self._input_log.log(
            logging.WARNING,
            "fail",
            f"{message}; reconnecting in {self._delay_before_dial:.1f} s",
        )

    # -- reading --------------------------------------------------------------------------

    async def _read(self, link: Link) -> None:
        try:
            while True:
                data = await link.ws.recv(decode=False)
                self._handle(link, data)
        except websockets.ConnectionClosed as exc:
            link.close_reason = _describe_close(exc)
        except asyncio.CancelledError:
            link.close_reason = "closed by the daemon"
            raise
        except Exception as exc:  # a bug, not bad input: keep the traceback, keep running
            log.exception("connection %d reader failed", link.number)
            link.close_reason = f"reader failed: {_describe(exc)}"
        finally:
            self._wake.set()

    def _handle(self, link: Link, data: bytes) -> None:
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
        self._note_market_frame(link, frame, received_at)

    def _note_market_frame(self, link: Link, frame: DecodedFrame, received_at: int) -> None:
        """What a market frame means for its link: first data, a drain caught up, connected."""
        link.last_market_at = self._clock()
        if link.first_market_at is None:
            link.first_market_at = link.last_market_at
            link.first_event_time = frame.latest_event_time()
            self._wake.set()  # a candidate's first frame triggers the switch
        if link.role == "draining":
            link.last_event_time = frame.latest_event_time()
            if link.last_event_time >= link.drain_target:
                self._wake.set()
        elif link.role == "primary" and self.tracker.status.state != "connected":
            self.tracker.set_state("connected", received_at)
            log.info("connection %d: market data flowing", link.number)

    # -- supervising ----------------------------------------------------------------------

    def _supervise(self, now: float) -> None:
        self._check_primary(now)
        self._check_candidate(now)
        self._check_draining(now)

    def _check_primary(self, now: float) -> None:
        primary = self._primary
        if primary is None:
            return
        if primary.closed:
            if self._candidate is not None and self._candidate.first_market_at is not None:
                self._promote(self._candidate, now)
                return
            self._primary = None
            self._close_soon(self._candidate)
            self._candidate = None
            self._fail(f"connection {primary.number} lost: {primary.close_reason}", "reconnecting")
            return
        if primary.silent_for(now) > self.config.stall_timeout:
            self._stall(primary, now)
            return
        if (
            primary.first_market_at is not None
            and now - primary.first_market_at >= self.config.healthy_after
        ):
            self._backoff.reset()
        if now - primary.opened_at >= self.config.rotate_after:
            self._start_rotation(now)

    def _stall(self, primary: Link, now: float) -> None:
        silent = primary.silent_for(now)
        never = primary.first_market_at is None
        hint = LEGACY_HINT if never else None
        self.tracker.on_stall(hint)
        self._close_soon(primary)
        self._close_soon(self._candidate)
        self._candidate = None
        what = "no market data since connecting" if never else "market data stopped"
        message = f"connection {primary.number} stalled: {what} ({silent:.0f} s)"
        if never:
            message += f"; {LEGACY_HINT}"
        self._fail(message, "stalled")

    def _start_rotation(self, now: float) -> None:
        if self._candidate is not None or now < self._next_rotation_try:
            return
        if self._dialing is None:
            log.info("rotating: connection age limit reached, dialling a replacement")
            self._dialing = asyncio.create_task(self._dial("candidate"))
            self._dialing.add_done_callback(lambda _: self._wake.set())
            return
        if not self._dialing.done():
            return
        task, self._dialing = self._dialing, None
        if task.exception() is not None:
            self._retry_rotation_later(now, f"dial failed: {_describe(task.exception())}")
        else:
            self._candidate = task.result()

    def _retry_rotation_later(self, now: float, why: str) -> None:
        delay = min(60.0, self.config.stall_timeout)
        self._next_rotation_try = now + delay
        log.warning("rotation: replacement %s; retrying in %.0f s", why, delay)

    def _check_candidate(self, now: float) -> None:
        candidate = self._candidate
        if candidate is None:
            return
        if candidate.first_market_at is not None and not candidate.closed:
            self._promote(candidate, now)
        elif candidate.closed or candidate.silent_for(now) > self.config.stall_timeout:
            self._candidate = None
            self._close_soon(candidate)
            reason = candidate.close_reason or "no market data"
            self._retry_rotation_later(now, f"connection {candidate.number} failed ({reason})")

    def _promote(self, candidate: Link, now: float) -> None:
        old = self._primary
        self._candidate = None
        candidate.role = "primary"
        self._primary = candidate
        self.tracker.on_rotation()
        if self.tracker.status.state != "connected":
            self.tracker.set_state("connected", now_ms())
        if old is not None and not old.closed:
            old.role = "draining"
            old.drain_target = candidate.first_event_time
            old.drain_deadline = now + self.config.rotation_grace
            self._draining.append(old)
        log.info(
            "rotated: connection %d is primary%s",
            candidate.number,
            f", draining connection {old.number}" if old is not None and not old.closed else "",
        )

    def _check_draining(self, now: float) -> None:
        for link in list(self._draining):
            caught_up = link.last_event_time >= link.drain_target
            if link.closed or caught_up or now >= link.drain_deadline:
                self._draining.remove(link)
                self._close_soon(link)

    # -- closing --------------------------------------------------------------------------

    def _close_soon(self, link: Link | None) -> None:
        if link is None:
            return
        if link.close_reason is None:
            link.close_reason = "closed by the daemon"
        task = asyncio.create_task(self._close(link), name=f"feed-close-{link.number}")
        self._closing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._closing.discard)

    async def _close(self, link: Link) -> None:
        if link.reader is not None:
            link.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.ws.close(), timeout=2)
        log.debug("connection %d closed", link.number)

    async def _close_everything(self) -> None:
        links = [self._primary, self._candidate, *self._draining]
        self._primary = self._candidate = None
        self._draining = []
        if self._dialing is not None:
            self._dialing.cancel()
        closing: list[Awaitable[None]] = [self._close(link) for link in links if link is not None]
        closing.extend(self._closing)
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
