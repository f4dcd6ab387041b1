"""The feed's supervisor (supervisor.py) driven without sockets: fake links, a fake clock.

As websockets tests its protocol (bytes in, events out), these tests feed the supervisor
events — a link opened, a market frame with event time E, a link lost, time passed — and
check the actions it returns, the tracker's connection_status and the log lines. The same
behaviours are also proven end to end, over real sockets against the simulator, by
tests/system/test_daemon_against_the_simulator.py (the test named in each docstring).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from binance_funding_ws.backoff import Backoff
from binance_funding_ws.endpoint import Endpoint
from binance_funding_ws.supervisor import (
    LEGACY_HINT,
    NO_ACTIONS,
    Action,
    Close,
    DialCandidate,
    FeedConfig,
    Log,
    Supervisor,
)
from binance_funding_ws.tracker import ConnectionTracker

URL = "ws://127.0.0.1:9/market/stream?streams=!markPrice@arr@1s/!ticker@arr"
START_MS = 1_780_000_000_000  # the fake wall clock at the start, epoch ms
STEP = 0.25  # seconds between two ticks of the fake clock (a binary fraction: exact sums)


@dataclass(frozen=True)
class Frame:
    """A market frame as the supervisor sees it: its newest row's event time."""

    event_time: int

    def latest_event_time(self) -> int:
        return self.event_time


class FakeFeed:
    """The shell's part played by the test: numbered fake links, a fake clock, and the
    supervisor's actions carried out (a link closed, a candidate to dial, a log line).

    After every event it checks the invariants the supervisor's docstring states.
    """

    def __init__(self, **timings: float) -> None:
        self.now = 5_000.0  # the fake monotonic clock, seconds
        self.epoch_ms = START_MS
        self.tracker = ConnectionTracker(URL, START_MS, pid=1)
        # The longest draw of full jitter: each delay is the backoff's ceiling, 1, 2, 4 s...
        self.backoff = Backoff(1.0, 60.0, rand=lambda low, high: high)
        config = FeedConfig(endpoint=Endpoint(URL), **timings)
        self.supervisor = Supervisor(config, self.tracker, self.backoff)
        self.open: set[int] = set()  # links the shell holds open
        self.closed: list[int] = []  # links the supervisor had closed, in order
        self.dials: list[int] = []  # DialCandidate(replacing) not yet answered
        self.logs: list[Log] = []
        self.states: list[str] = [self.tracker.status.state]  # every state, in order
        self._numbers = itertools.count(1)

    # -- the shell's events ---------------------------------------------------------------

    def connect(self) -> int:
        """The run loop's part: wait the backoff delay, dial the primary, it opens."""
        assert self.supervisor.primary is None
        self._clock(self.supervisor.dial_delay)
        self.supervisor.dialling(self.epoch_ms)
        self._note_state()
        number = next(self._numbers)
        self.open.add(number)
        self.execute(self.supervisor.opened(number, self.now))
        return number

    def fail_dial(self, reason: str = "[Errno 111] Connection refused") -> None:
        assert self.supervisor.primary is None
        self._clock(self.supervisor.dial_delay)
        self.supervisor.dialling(self.epoch_ms)
        self._note_state()
        self.execute(self.supervisor.dial_failed(reason, self.now, self.epoch_ms))

    def open_candidate(self) -> int:
        """The oldest candidate dial succeeds."""
        replacing = self.dials.pop(0)
        number = next(self._numbers)
        self.open.add(number)
        self.execute(self.supervisor.opened(number, self.now, replacing=replacing))
        return number

    def fail_candidate(self, reason: str = "timed out during opening handshake") -> None:
        replacing = self.dials.pop(0)
        self.execute(self.supervisor.dial_failed(reason, self.now, self.epoch_ms, replacing))

    def frame(self, number: int, event_time: int | None = None) -> None:
        """A market frame on link ``number``, its newest row from ``event_time`` (now)."""
        assert number in self.open, f"connection {number} is closed: it delivers nothing"
        frame = Frame(self.epoch_ms if event_time is None else event_time)
        self.execute(self.supervisor.market_frame(number, frame, self.now, self.epoch_ms))

    def lose(self, number: int, reason: str = "closed with code 1008 too many requests") -> None:
        self.open.remove(number)
        self.execute(self.supervisor.lost(number, reason, self.now, self.epoch_ms))

    def wait(self, seconds: float, feeding: Sequence[int] = ()) -> None:
        """Let ``seconds`` pass, ticking the supervisor every STEP; each link of ``feeding``
        still open delivers a market frame every second."""
        for _ in range(round(seconds / STEP)):
            self._clock(STEP)
            if self.now % 1 == 0:
                for number in feeding:
                    if number in self.open:
                        self.frame(number)
            self.execute(self.supervisor.tick(self.now, self.epoch_ms))

    # -- the shell's part in actions ------------------------------------------------------

    def execute(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Close):
                assert action.number in self.open, f"connection {action.number} closed twice"
                self.open.remove(action.number)
                self.closed.append(action.number)
            elif isinstance(action, DialCandidate):
                self.dials.append(action.replacing)
            else:
                self.logs.append(action)
        self._note_state()
        self.check_invariants()

    def check_invariants(self) -> None:
        supervisor = self.supervisor
        primary, candidate = supervisor.primary, supervisor.candidate
        roles = [link.number for link in (primary, candidate) if link is not None]
        roles += [link.number for link in supervisor.draining]
        # 4: every link the supervisor stops tracking is closed; every open link has a role.
        assert sorted(roles) == sorted(self.open), (roles, self.open)
        # 1: a candidate, or its dial, only beside the primary it replaces.
        if candidate is not None or supervisor.replacing is not None:
            assert primary is not None
            assert candidate is None or supervisor.replacing is None
        if supervisor.replacing is not None:
            assert primary is not None and supervisor.replacing == primary.number
        # 2: connected only while a primary delivers market data.
        if self.tracker.status.state == "connected":
            assert primary is not None and primary.first_market_at is not None

    # -- reading the outcome --------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.tracker.status.state

    def messages(self) -> list[str]:
        return [line.message for line in self.logs]

    def new_messages(self, seen: int) -> list[str]:
        return self.messages()[seen:]

    def _clock(self, seconds: float) -> None:
        self.now += seconds
        self.epoch_ms += round(seconds * 1000)

    def _note_state(self) -> None:
        if self.states[-1] != self.state:
            self.states.append(self.state)


def connected(feed: FakeFeed) -> int:
    number = feed.connect()
    feed.frame(number)
    return number


# -- connecting -------------------------------------------------------------------------


def test_the_first_market_frame_of_the_primary_makes_the_feed_connected():
    """End to end: every test_daemon test that waits for ``connected``."""
    feed = FakeFeed()
    number = feed.connect()
    assert feed.state == "connecting" and feed.tracker.status.connected_since is None
    assert feed.messages() == [f"connection 1 open (primary) to {URL}"]
    feed.wait(2)
    assert feed.state == "connecting"
    feed.frame(number)
    assert feed.state == "connected"
    assert feed.tracker.status.connected_since == feed.epoch_ms
    feed.wait(3, feeding=[number])
    assert feed.messages()[1:] == ["connection 1: market data flowing"]  # said once
    status = feed.tracker.status
    assert (status.reconnects, status.stalls, status.rotations) == (0, 0, 0)


def test_a_failed_dial_is_retried_after_a_growing_backoff_and_counted_as_a_reconnect():
    feed = FakeFeed()
    for delay in (1.0, 2.0, 4.0):
        feed.fail_dial("[Errno 111] Connection refused")
        assert feed.state == "reconnecting" and feed.supervisor.dial_delay == delay
        line = feed.logs[-1]
        assert line.message == (
            f"cannot connect to {URL}: [Errno 111] Connection refused; "
            f"reconnecting in {delay:.1f} s"
        )
        assert line.level == logging.WARNING and line.key == "fail"  # rate-limited
    connected(feed)
    assert feed.state == "connected" and feed.tracker.status.reconnects == 3
    assert feed.states == ["connecting", "reconnecting"] * 3 + ["connecting", "connected"]


@pytest.mark.parametrize(
    "reason",
    ["connection dropped without a close frame (1006)", "closed with code 1008 too many requests"],
)
def test_a_lost_primary_is_redialled_after_the_backoff_and_data_flows_again(reason):
    """End to end: test_abrupt_drop_reconnects_and_data_flows_again and
    test_close_with_code_1008_reconnects."""
    feed = FakeFeed()
    first = connected(feed)
    feed.wait(3, feeding=[first])
    feed.lose(first, reason)
    assert feed.state == "reconnecting" and feed.tracker.status.connected_since is None
    assert feed.closed == []  # it closed itself: nothing left to close
    assert feed.messages()[-1] == f"connection 1 lost: {reason}; reconnecting in 1.0 s"
    assert feed.supervisor.primary is None and feed.supervisor.dial_delay == 1.0
    second = connected(feed)
    assert second == 2 and feed.state == "connected"
    assert feed.tracker.status.reconnects == 1 and feed.tracker.status.stalls == 0


# -- stalls -----------------------------------------------------------------------------


def test_silence_past_the_stall_timeout_stalls_closes_and_redials_after_a_backoff():
    """End to end: test_silent_stall_is_noticed_and_recovered."""
    feed = FakeFeed(stall_timeout=2)
    first = connected(feed)
    feed.wait(2)  # silent for exactly the timeout: not yet a stall
    assert feed.state == "connected" and feed.closed == []
    feed.wait(STEP)
    assert feed.state == "stalled" and feed.closed == [first]
    status = feed.tracker.status
    assert status.stalls == 1 and status.connected_since is None and status.hint is None
    assert feed.messages()[-1] == (
        "connection 1 stalled: market data stopped (2 s); reconnecting in 1.0 s"
    )
    second = connected(feed)
    assert feed.state == "connected" and feed.tracker.status.reconnects == 1
    feed.wait(2.25)  # the next stall waits longer
    assert feed.closed == [first, second] and feed.supervisor.dial_delay == 2.0
    assert feed.states == ["connecting", "connected", "stalled"] * 2


def test_a_primary_that_never_delivers_market_data_stalls_and_says_the_url_may_be_wrong():
    """End to end: test_legacy_path_is_never_healthy_and_hints_at_the_url."""
    feed = FakeFeed(stall_timeout=0.5)
    for _ in range(3):
        feed.connect()
        feed.wait(0.75)
        assert feed.state == "stalled"
        assert feed.tracker.status.hint == LEGACY_HINT and "/market" in LEGACY_HINT
        assert feed.messages()[-1].startswith(
            f"connection {feed.closed[-1]} stalled: no market data since connecting (1 s); "
            "the URL may be wrong"
        )
    assert "connected" not in feed.states and feed.tracker.status.stalls == 3
    connected(feed)  # the right URL after all: the hint goes
    assert feed.state == "connected" and feed.tracker.status.hint is None


def test_a_primary_that_delivered_data_then_went_silent_gets_no_url_hint():
    feed = FakeFeed(stall_timeout=1)
    connected(feed)
    feed.wait(1.25)
    assert feed.state == "stalled" and feed.tracker.status.hint is None
    assert "URL may be wrong" not in feed.messages()[-1]


def test_the_backoff_restarts_once_a_primary_has_delivered_data_for_healthy_after():
    feed = FakeFeed(healthy_after=60)
    for _ in range(3):
        feed.fail_dial()
    assert feed.supervisor.dial_delay == 4.0
    number = connected(feed)
    feed.wait(59, feeding=[number])  # not long enough
    feed.lose(number)
    assert feed.supervisor.dial_delay == 8.0
    number = connected(feed)
    feed.wait(60, feeding=[number])
    feed.lose(number)
    assert feed.supervisor.dial_delay == 1.0


# -- rotation ---------------------------------------------------------------------------


def rotated(feed: FakeFeed, primary: int) -> int:
    """Run ``primary`` to its rotation; return the candidate, open and not yet promoted."""
    deadline = feed.now + 3600
    while not feed.dials:
        assert feed.now < deadline, "no candidate dialled in an hour"
        feed.wait(STEP, feeding=[primary])
    return feed.open_candidate()


def test_a_candidate_is_dialled_at_rotate_after_and_becomes_primary_on_its_first_frame():
    """End to end: test_rotation_is_make_before_break_and_loses_no_update (rotations counted,
    never a reconnect, connected throughout)."""
    feed = FakeFeed(rotate_after=10)
    first = connected(feed)
    connected_since = feed.tracker.status.connected_since
    feed.wait(9.75, feeding=[first])
    assert feed.dials == []
    feed.wait(STEP, feeding=[first])
    assert feed.dials == [first]  # dialled once, at 10 s
    assert feed.messages()[-1] == "rotating: connection age limit reached, dialling a replacement"
    feed.wait(2, feeding=[first])
    assert feed.dials == [first]  # not again while the dial is in flight
    candidate = feed.open_candidate()
    assert feed.messages()[-1] == f"connection 2 open (candidate) to {URL}"
    feed.wait(0.5, feeding=[first])
    assert feed.supervisor.primary is not None and feed.supervisor.primary.number == first
    assert feed.tracker.status.rotations == 0
    feed.frame(candidate)
    assert feed.supervisor.primary.number == candidate
    assert feed.messages()[-1] == "rotated: connection 2 is primary, draining connection 1"
    assert first in feed.open  # make-before-break: the old link still feeds the merge
    status = feed.tracker.status
    assert status.rotations == 1 and status.reconnects == 0
    assert status.state == "connected" and status.connected_since == connected_since
    assert feed.states == ["connecting", "connected"]


def test_the_old_primary_is_closed_once_it_delivered_a_frame_as_new_as_the_candidates_first():
    feed = FakeFeed(rotate_after=10)
    old = connected(feed)
    candidate = rotated(feed, old)
    first_event = feed.epoch_ms
    feed.frame(candidate, first_event)
    feed.frame(old, first_event - 1000)  # the old link lags: older rows still come
    feed.wait(1)
    assert old in feed.open and feed.closed == []
    feed.frame(old, first_event)
    assert feed.closed == [old] and feed.supervisor.draining == []
    feed.frame(candidate)
    assert feed.states[-1] == "connected"


def test_the_old_primary_is_closed_after_the_grace_period_if_it_never_catches_up():
    feed = FakeFeed(rotate_after=10, rotation_grace=5)
    old = connected(feed)
    candidate = rotated(feed, old)
    feed.frame(candidate)
    feed.wait(4.75, feeding=[candidate])
    assert old in feed.open
    feed.wait(STEP, feeding=[candidate])
    assert feed.closed == [old]


def test_a_draining_link_that_closes_by_itself_is_let_go():
    feed = FakeFeed(rotate_after=10)
    old = connected(feed)
    candidate = rotated(feed, old)
    feed.frame(candidate)
    feed.lose(old, "connection dropped without a close frame (1006)")
    assert feed.supervisor.draining == [] and feed.closed == []
    assert feed.state == "connected" and feed.tracker.status.reconnects == 0


def test_a_candidate_whose_dial_fails_is_dialled_again_later():
    feed = FakeFeed(rotate_after=10, stall_timeout=30)
    primary = connected(feed)
    feed.wait(10, feeding=[primary])
    feed.fail_candidate("timed out during opening handshake")
    assert feed.messages()[-1] == (
        "rotation: replacement dial failed: timed out during opening handshake; retrying in 30 s"
    )
    feed.wait(29.75, feeding=[primary])
    assert feed.dials == []
    feed.wait(STEP, feeding=[primary])
    assert feed.dials == [primary]
    assert feed.state == "connected" and feed.tracker.status.reconnects == 0


def test_the_rotation_retry_waits_the_stall_timeout_at_most_a_minute():
    feed = FakeFeed(rotate_after=10, stall_timeout=300)
    primary = connected(feed)
    feed.wait(10, feeding=[primary])
    feed.fail_candidate()
    assert feed.messages()[-1].endswith("; retrying in 60 s")


def test_a_candidate_closed_before_its_first_frame_is_replaced_later():
    feed = FakeFeed(rotate_after=10, stall_timeout=8)
    primary = connected(feed)
    candidate = rotated(feed, primary)
    feed.lose(candidate, "closed with code 1008 too many requests")
    assert feed.messages()[-1] == (
        "rotation: replacement connection 2 failed (closed with code 1008 too many requests); "
        "retrying in 8 s"
    )
    assert feed.supervisor.primary.number == primary and feed.state == "connected"
    feed.wait(7.75, feeding=[primary])
    assert feed.dials == []
    feed.wait(STEP, feeding=[primary])
    assert feed.dials == [primary]


def test_a_candidate_that_stalls_is_closed_and_the_rotation_retried_without_a_feed_stall():
    feed = FakeFeed(rotate_after=10, stall_timeout=5)
    primary = connected(feed)
    candidate = rotated(feed, primary)
    feed.wait(5, feeding=[primary])  # the candidate says nothing
    assert candidate in feed.open
    feed.wait(STEP, feeding=[primary])
    assert feed.closed == [candidate]
    assert feed.messages()[-1] == (
        "rotation: replacement connection 2 failed (no market data); retrying in 5 s"
    )
    status = feed.tracker.status
    assert status.state == "connected" and status.stalls == 0 and status.rotations == 0
    feed.wait(5, feeding=[primary])
    assert feed.dials == [primary]
    replacement = feed.open_candidate()
    feed.frame(replacement)
    assert feed.supervisor.primary.number == replacement and status.rotations == 1


def test_losing_the_primary_closes_its_candidate():
    feed = FakeFeed(rotate_after=10)
    primary = connected(feed)
    candidate = rotated(feed, primary)
    feed.lose(primary)
    assert feed.closed == [candidate] and feed.state == "reconnecting"
    assert feed.supervisor.candidate is None


def test_a_stalled_primary_is_closed_with_its_candidate():
    feed = FakeFeed(rotate_after=10, stall_timeout=20)
    primary = connected(feed)
    candidate = rotated(feed, primary)
    feed.wait(20.25)
    assert feed.closed == [primary, candidate] and feed.state == "stalled"


def test_a_candidate_dial_that_outlives_its_primary_is_closed_when_it_opens():
    feed = FakeFeed(rotate_after=10)
    primary = connected(feed)
    feed.wait(10, feeding=[primary])
    assert feed.dials == [primary]
    feed.lose(primary)
    replacement = connected(feed)
    late = feed.open_candidate()  # the old dial completes: nothing left for it to replace
    assert feed.closed == [late]
    assert feed.supervisor.primary.number == replacement and feed.supervisor.candidate is None
    feed.wait(9, feeding=[replacement])
    assert feed.dials == []  # the new primary's own rotation is still to come
    feed.wait(1, feeding=[replacement])
    assert feed.dials == [replacement]


def test_a_candidate_dial_that_outlives_its_primary_fails_silently():
    feed = FakeFeed(rotate_after=10)
    primary = connected(feed)
    feed.wait(10, feeding=[primary])
    feed.lose(primary)
    connected(feed)
    said = len(feed.logs)
    feed.fail_candidate()
    assert feed.logs[said:] == [] and feed.supervisor.next_rotation_try == 0.0


def test_a_rotation_connects_a_primary_that_never_delivered_data():
    feed = FakeFeed(rotate_after=1, stall_timeout=5)
    primary = feed.connect()
    feed.wait(1)
    candidate = feed.open_candidate()
    assert feed.state == "connecting"
    feed.frame(candidate)
    assert feed.state == "connected" and feed.supervisor.primary.number == candidate
    assert primary in feed.open  # draining until the grace period ends


def test_frames_from_a_link_being_closed_decide_nothing():
    feed = FakeFeed(rotate_after=10)
    old = connected(feed)
    candidate = rotated(feed, old)
    feed.frame(candidate)
    feed.frame(old)
    assert feed.closed == [old]
    # Frames already received on it still reach the supervisor: they change nothing.
    frame = Frame(feed.epoch_ms)
    assert feed.supervisor.market_frame(old, frame, feed.now, feed.epoch_ms) == NO_ACTIONS
    assert feed.supervisor.lost(old, "closed by the daemon", feed.now, feed.epoch_ms) == NO_ACTIONS
    assert feed.supervisor.primary.number == candidate and feed.state == "connected"


# -- no update lost ---------------------------------------------------------------------


@dataclass
class Subscriber:
    """A fake link to a market that ticks every second: it gets every tick sent while it is
    open, each ``lag`` seconds after it was sent, in order."""

    number: int
    opened_at: float
    lag: float
    inbox: list[tuple[float, int]] = field(default_factory=list)  # (due, event time)


@pytest.mark.parametrize(
    ("old_lag", "new_lag"),
    [(0.25, 0.25), (0.25, 2.5), (3.0, 0.25), (4.5, 1.0)],
    ids=["same-pace", "candidate-slower", "old-slower", "old-much-slower"],
)
def test_no_update_is_lost_across_four_rotations(old_lag, new_lag):
    """End to end: test_rotation_is_make_before_break_and_loses_no_update, where every tick
    carries one ticker row seen once: here every event time must reach the merge."""
    feed = FakeFeed(rotate_after=7, rotation_grace=5, stall_timeout=30)
    links: dict[int, Subscriber] = {}
    sent: list[int] = []
    seen: set[int] = set()  # the event times the merge received, from any open link
    lags = itertools.cycle([old_lag, new_lag])

    def subscribe(number: int) -> None:
        links[number] = Subscriber(number, feed.now, next(lags))

    subscribe(feed.connect())
    dial_due: float | None = None
    while feed.tracker.status.rotations < 4 or feed.supervisor.draining:
        feed._clock(STEP)
        if feed.now % 1 == 0 and feed.tracker.status.rotations < 4:
            sent.append(feed.epoch_ms)
            for link in links.values():
                link.inbox.append((feed.now + link.lag, feed.epoch_ms))
        for number, link in sorted(links.items()):
            while number in feed.open and link.inbox and link.inbox[0][0] <= feed.now:
                _, event_time = link.inbox.pop(0)
                seen.add(event_time)
                feed.frame(number, event_time)
        feed.execute(feed.supervisor.tick(feed.now, feed.epoch_ms))
        if feed.dials and dial_due is None:
            dial_due = feed.now + 0.5  # the handshake takes half a second
        if dial_due is not None and feed.now >= dial_due:
            subscribe(feed.open_candidate())
            dial_due = None
        links = {number: link for number, link in links.items() if number in feed.open}
        assert feed.now < 5_200, "the rotations never ended"
    primary = feed.supervisor.primary
    assert primary is not None
    for _, event_time in links[primary.number].inbox:  # the primary delivers what is on its way
        seen.add(event_time)
    assert sorted(seen) == sent
    status = feed.tracker.status
    assert status.rotations == 4 and status.reconnects == 0 and status.stalls == 0
    assert feed.closed == [1, 2, 3, 4] and feed.open == {5}
    assert feed.states == ["connecting", "connected"]
