"""Sans-I/O supervision of the feed's connections: every decision, none of the I/O.

The supervisor is to the feed what websockets' ``Protocol`` is to a connection: it owns no
socket, no task and no clock. The shell (:mod:`binance_funding_ws.runtime.feed`) reports
what happened, each event with the time it happened, and carries out the actions returned.
Two times travel with events: ``now``, monotonic seconds, for the timers (stall, rotation,
drain grace, backoff), and ``epoch_ms``, wall-clock milliseconds, for the tracker's
``connection_status``.

Links (connections) have a role:

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

Events (methods; each returns the actions to carry out, in order):

* :meth:`Supervisor.dialling` — the shell starts dialling a primary, after waiting
  :attr:`Supervisor.dial_delay`; it does so whenever :attr:`Supervisor.primary` is ``None``;
* :meth:`Supervisor.opened` / :meth:`Supervisor.dial_failed` — a dial ended;
* :meth:`Supervisor.market_frame` — a frame with at least one good row arrived on a link
  (the supervisor reads its newest event time);
* :meth:`Supervisor.lost` — a link ended by itself (closed by the peer, dropped, its
  reader failed); the shell has closed it already;
* :meth:`Supervisor.tick` — time passed: the shell calls it at least every second (every
  quarter of the stall timeout when that is shorter).

Actions: :class:`DialCandidate`, :class:`Close` and :class:`Log`.

Invariants (tests/binance_funding_ws/test_supervisor.py checks each):

1. At most one primary and one candidate. A candidate, or a candidate's dial in flight,
   exists only while the primary it replaces is primary; when that primary is given up the
   candidate is closed and a dial still in flight is closed as soon as it opens.
2. ``connection_status.state`` is ``connected`` only while there is a primary and it has
   delivered market data (a promoted candidate has: its first frame promoted it).
3. Make-before-break: a candidate becomes primary only on its first market frame, while the
   old primary is still open; the old primary is closed only once it has delivered a frame
   at least as new as that first frame, or after ``rotation_grace``. So when the old link
   catches up within the grace, every update reaches the merge from one link or the other.
4. A link the supervisor stops tracking gets exactly one :class:`Close`, unless it was
   reported :meth:`~Supervisor.lost` (already closed); a link is never closed twice.
5. A primary silent for more than ``stall_timeout`` (no market frame since it opened or
   since its last one) is given up as ``stalled``. Every primary given up or dial failed
   draws the next delay from the backoff, which restarts once a primary has delivered data
   for ``healthy_after``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.endpoint import Endpoint
from binance_funding_ws.tracker import ConnectionTracker

LEGACY_HINT = (
    "the URL may be wrong: since 2026-04-23 Binance delivers markPrice/ticker only on "
    "/market paths (wss://fstream.binance.com/market/stream); legacy /stream and /ws "
    "paths connect and stay silent"
)
ROTATION_RETRY_CAP = 60.0  # seconds; a failed replacement is retried this soon at the latest


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


@dataclass(frozen=True, slots=True)
class DialCandidate:
    """Dial a replacement for primary ``replacing``; report the outcome with
    ``opened(..., replacing=replacing)`` or ``dial_failed(..., replacing=replacing)``."""

    replacing: int


@dataclass(frozen=True, slots=True)
class Close:
    """Close link ``number``: stop reading it and close its connection."""

    number: int


@dataclass(frozen=True, slots=True)
class Log:
    """Write ``message`` to the log; with a ``key``, rate-limited per key (the message can
    repeat as often as the feed fails)."""

    level: int
    message: str
    key: str | None = None


Action: TypeAlias = DialCandidate | Close | Log
NO_ACTIONS: Sequence[Action] = ()


class MarketFrame(Protocol):
    """What the supervisor reads of a market frame: its newest event time (ms), asked only
    when it matters (a link's first frame, a draining link's frames). Most frames never need
    it, and over the ~900 rows of an all-market frame it costs about a tenth of the decode."""

    def latest_event_time(self) -> int: ...


@dataclass(slots=True)
class Link:
    """What the supervisor knows about one connection. Times are monotonic seconds."""

    number: int
    role: Role
    opened_at: float
    first_market_at: float | None = None
    last_market_at: float | None = None
    first_event_time: int = 0  # the newest event time of its first market frame
    last_event_time: int = 0  # the newest event time of its last frame while draining
    drain_target: int = 0  # draining ends at a frame this new...
    drain_deadline: float = 0.0  # ...or at this time

    def silent_for(self, now: float) -> float:
        """Seconds since its last market frame, or since it opened if none came."""
        since = self.opened_at if self.last_market_at is None else self.last_market_at
        return now - since


class Supervisor:
    """Decides, for one feed, which link is primary and when to dial, rotate and close.

    It updates ``tracker`` (states, reconnects, stalls, rotations) as events arrive; the
    shell counts frames, rows and errors itself.
    """

    def __init__(
        self, config: FeedConfig, tracker: ConnectionTracker, backoff: Backoff | None = None
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.backoff = backoff or Backoff(config.backoff_base, config.backoff_cap)
        self.primary: Link | None = None
        self.candidate: Link | None = None
        self.draining: list[Link] = []
        self.replacing: int | None = None  # the primary a candidate's dial in flight replaces
        self.dial_delay = 0.0  # seconds the shell waits before dialling the next primary
        self.next_rotation_try = 0.0
        self._dialled = False
        self._actions: list[Action] = []

    # -- events ---------------------------------------------------------------------------

    def dialling(self, epoch_ms: int) -> None:
        """The shell starts dialling a primary (there is none)."""
        if self._dialled:
            self.tracker.on_reconnect()
        self._dialled = True
        self.tracker.set_state("connecting", epoch_ms)

    def opened(self, number: int, now: float, replacing: int | None = None) -> Sequence[Action]:
        """Link ``number`` is open: the primary dialled, or (``replacing``) a candidate."""
        role: Role = "primary" if replacing is None else "candidate"
        self._log(logging.INFO, f"connection {number} open ({role}) to {self.config.url}")
        if replacing is None:
            self.primary = Link(number, "primary", now)
            self.dial_delay = 0.0
        elif replacing == self.replacing:
            self.replacing = None
            self.candidate = Link(number, "candidate", now)
        else:  # the primary it was to replace is gone
            self._actions.append(Close(number))
        return self._flush()

    def dial_failed(
        self, reason: str, now: float, epoch_ms: int, replacing: int | None = None
    ) -> Sequence[Action]:
        """A dial failed: the primary's (schedule the next one) or a candidate's."""
        if replacing is None:
            self._fail(f"cannot connect to {self.config.url}: {reason}", "reconnecting", epoch_ms)
        elif replacing == self.replacing:
            self.replacing = None
            self._retry_rotation_later(now, f"dial failed: {reason}")
        return self._flush()

    def market_frame(
        self, number: int, frame: MarketFrame, now: float, epoch_ms: int
    ) -> Sequence[Action]:
        """A frame with at least one good row arrived on link ``number``."""
        link = self._find(number)
        if link is None:  # being closed: its frames still feed the merge, they decide nothing
            return NO_ACTIONS
        link.last_market_at = now
        if link.first_market_at is None:
            link.first_market_at = now
            link.first_event_time = frame.latest_event_time()
            if link.role == "candidate":
                self._promote(link, now, epoch_ms)
                return self._flush()
        if link.role == "draining":
            link.last_event_time = frame.latest_event_time()
            if link.last_event_time >= link.drain_target:
                self._end_drain(link)
        elif link.role == "primary" and self.tracker.status.state != "connected":
            self.tracker.set_state("connected", epoch_ms)
            self._log(logging.INFO, f"connection {number}: market data flowing")
        return self._flush()

    def lost(self, number: int, reason: str, now: float, epoch_ms: int) -> Sequence[Action]:
        """Link ``number`` ended by itself, ``reason`` saying how; the shell closed it."""
        link = self._find(number)
        if link is None:
            return NO_ACTIONS
        if link is self.primary:
            self._fail(f"connection {number} lost: {reason}", "reconnecting", epoch_ms)
        elif link is self.candidate:
            self.candidate = None
            self._retry_rotation_later(now, f"connection {number} failed ({reason})")
        else:
            self.draining.remove(link)
        return self._flush()

    def tick(self, now: float, epoch_ms: int) -> Sequence[Action]:
        """Time passed: give up silent links, start a rotation, end drains past their grace."""
        primary = self.primary
        if primary is not None:
            if primary.silent_for(now) > self.config.stall_timeout:
                self._stall(primary, now, epoch_ms)
            else:
                self._note_health(primary, now)
                if now - primary.opened_at >= self.config.rotate_after:
                    self._start_rotation(primary, now)
        candidate = self.candidate
        if candidate is not None and candidate.silent_for(now) > self.config.stall_timeout:
            self.candidate = None
            self._actions.append(Close(candidate.number))
            why = f"connection {candidate.number} failed (no market data)"
            self._retry_rotation_later(now, why)
        self._check_draining(now)
        return self._flush()

    # -- decisions ------------------------------------------------------------------------

    def _fail(self, message: str, state: Literal["reconnecting", "stalled"], epoch_ms: int) -> None:
        """The primary is gone (or never came): drop its candidate, schedule the next dial."""
        self.primary = None
        if self.candidate is not None:
            self._actions.append(Close(self.candidate.number))
            self.candidate = None
        self.replacing = None  # a dial in flight has nothing left to replace
        self.tracker.set_state(state, epoch_ms)
        self.dial_delay = self.backoff.next_delay()
        self._log(logging.WARNING, f"{message}; reconnecting in {self.dial_delay:.1f} s", "fail")

    def _stall(self, primary: Link, now: float, epoch_ms: int) -> None:
        silent = primary.silent_for(now)
        never = primary.first_market_at is None
        self.tracker.on_stall(LEGACY_HINT if never else None)
        self._actions.append(Close(primary.number))
        what = "no market data since connecting" if never else "market data stopped"
        message = f"connection {primary.number} stalled: {what} ({silent:.0f} s)"
        if never:
            message += f"; {LEGACY_HINT}"
        self._fail(message, "stalled", epoch_ms)

    def _note_health(self, primary: Link, now: float) -> None:
        """A primary that has delivered data for ``healthy_after`` restarts the backoff."""
        if (
            primary.first_market_at is not None
            and now - primary.first_market_at >= self.config.healthy_after
        ):
            self.backoff.reset()

    def _start_rotation(self, primary: Link, now: float) -> None:
        if self.candidate is not None or self.replacing is not None:
            return
        if now < self.next_rotation_try:
            return
        self._log(logging.INFO, "rotating: connection age limit reached, dialling a replacement")
        self.replacing = primary.number
        self._actions.append(DialCandidate(primary.number))

    def _retry_rotation_later(self, now: float, why: str) -> None:
        delay = min(ROTATION_RETRY_CAP, self.config.stall_timeout)
        self.next_rotation_try = now + delay
        self._log(logging.WARNING, f"rotation: replacement {why}; retrying in {delay:.0f} s")

    def _promote(self, candidate: Link, now: float, epoch_ms: int) -> None:
        """The candidate delivered its first market frame: it becomes the primary."""
        old = self.primary
        self.candidate = None
        candidate.role = "primary"
        self.primary = candidate
        self.tracker.on_rotation()
        if self.tracker.status.state != "connected":
            self.tracker.set_state("connected", epoch_ms)
        draining = ""
        if old is not None:  # always, by invariant 1; typed as optional
            old.role = "draining"
            old.drain_target = candidate.first_event_time
            old.drain_deadline = now + self.config.rotation_grace
            self.draining.append(old)
            draining = f", draining connection {old.number}"
        self._log(logging.INFO, f"rotated: connection {candidate.number} is primary{draining}")
        self._check_draining(now)

    def _check_draining(self, now: float) -> None:
        for link in list(self.draining):
            if link.last_event_time >= link.drain_target or now >= link.drain_deadline:
                self._end_drain(link)

    def _end_drain(self, link: Link) -> None:
        self.draining.remove(link)
        self._actions.append(Close(link.number))

    # -- helpers --------------------------------------------------------------------------

    def _find(self, number: int) -> Link | None:
        primary = self.primary
        if primary is not None and primary.number == number:
            return primary
        candidate = self.candidate
        if candidate is not None and candidate.number == number:
            return candidate
        for link in self.draining:
            if link.number == number:
                return link
        return None

    def _log(self, level: int, message: str, key: str | None = None) -> None:
        self._actions.append(Log(level, message, key))

    def _flush(self) -> Sequence[Action]:
        if not self._actions:
            return NO_ACTIONS
        actions, self._actions = self._actions, []
        return actions
