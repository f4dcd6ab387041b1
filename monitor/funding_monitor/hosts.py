"""One object per monitored host: its poller, what is known of it, and its polling state.

The app's only per-host bookkeeping lives here, so the invariants are in one place: at most
one poll of a host is in flight; a request that arrives meanwhile (a key press, the journal
or history window) runs right after it; otherwise the next poll waits for the poller's delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.timer import Timer

from funding_monitor.model import HostView, PollResult
from funding_monitor.poller import Poller


@dataclass(eq=False)
class Host:
    index: int
    poller: Poller
    view: HostView = field(init=False, repr=False)  # its document can hold 2,000 symbols
    in_flight: bool = False  # a worker thread is polling the host
    poll_again: bool = False  # asked for while in flight: poll again as soon as it is done
    want_journal: bool = False  # the next poll also reads the service journal
    want_history: bool = False  # the next poll also reads the audit history, due or not
    timer: Timer | None = None  # the scheduled next poll

    def __post_init__(self) -> None:
        self.view = self.poller.new_view()

    @property
    def name(self) -> str:
        return self.view.name

    def try_start_poll(self) -> bool:
        """Mark a poll in flight; ``False`` if one already is (it is then repeated when done)."""
        self.cancel_timer()
        if self.in_flight:
            self.poll_again = True
            return False
        self.in_flight = True
        return True

    def take_requests(self) -> tuple[bool, bool]:
        """Whether the poll being started should read the journal and the history (each asked
        for once, served once)."""
        wanted = self.want_journal, self.want_history
        self.want_journal = self.want_history = False
        return wanted

    def finish_poll(self, result: PollResult) -> float:
        """Fold ``result`` in; seconds until the next poll (0: someone is waiting for it)."""
        self.view.apply(result)
        self.in_flight = False
        if self.poll_again or self.want_journal or self.want_history:
            self.poll_again = False
            return 0.0
        return self.poller.next_delay(result)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
