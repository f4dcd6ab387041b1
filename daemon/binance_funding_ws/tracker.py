"""Sans-I/O bookkeeping of the feed's health: the ``connection_status`` section.

The tracker is told what happens (a dial, a market frame, an error, a stall) and turns it
into counters and a state. It never looks at a clock itself: callers pass ``now`` in epoch
milliseconds, which keeps every rule testable.
"""

from __future__ import annotations

import os

from binance_funding_ws.state import ConnectionState, ConnectionStatus, StreamStatus


class ConnectionTracker:
    """Mutable counters behind :class:`~binance_funding_ws.state.ConnectionStatus`.

    ``version`` increases on every change so the writer can tell whether anything is new
    since the last write.
    """

    def __init__(self, url: str, now: int, pid: int | None = None) -> None:
        self.url = url
        self.pid = os.getpid() if pid is None else pid
        self.started_at = now
        self.state: ConnectionState = "connecting"
        self.state_since = now
        self.connected_since: int | None = None
        self.last_message_at: int | None = None
        self.reconnects = 0
        self.messages = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_at: int | None = None
        self.stalls = 0
        self.rotations = 0
        self.writes = 0
        self.write_errors = 0
        self.last_write_error: str | None = None
        self.hint: str | None = None
        self.streams: dict[str, StreamStatus] = {}
        self.version = 0

    def set_state(self, state: ConnectionState, now: int) -> None:
        if state == self.state:
            return
        self.state = state
        self.state_since = now
        # connected_since describes the current unbroken run of data; any other state ends it.
        self.connected_since = now if state == "connected" else None
        if state == "connected":
            self.hint = None
        self.version += 1

    def on_frame(self) -> None:
        """Any frame arrived, market data or not."""
        self.messages += 1
        self.version += 1

    def on_market_data(self, stream: str | None, now: int) -> None:
        """A frame with at least one good row arrived on an active connection."""
        self.last_message_at = now
        if stream is not None:
            status = self.streams.get(stream)
            if status is None:
                status = self.streams[stream] = StreamStatus()
            status.messages += 1
            status.last_message_at = now

    def on_errors(self, messages: list[str], now: int) -> None:
        if not messages:
            return
        self.errors += len(messages)
        self.last_error = messages[-1]
        self.last_error_at = now
        self.version += 1

    def on_reconnect(self) -> None:
        self.reconnects += 1
        self.version += 1

    def on_stall(self, hint: str | None) -> None:
        self.stalls += 1
        if hint is not None:
            self.hint = hint
        self.version += 1

    def on_rotation(self) -> None:
        self.rotations += 1
        self.version += 1

    def on_write_result(self, error: str | None) -> None:
        """Record a state-file write; a successful one clears the last write error."""
        if error is None:
            self.writes += 1  # not a change by itself: counting writes must not cause writes
            if self.last_write_error is not None:
                self.last_write_error = None
                self.version += 1
            return
        self.write_errors += 1
        self.last_write_error = error
        self.version += 1

    def snapshot(self) -> ConnectionStatus:
        return ConnectionStatus(
            state=self.state,
            state_since=self.state_since,
            connected_since=self.connected_since,
            last_message_at=self.last_message_at,
            reconnects=self.reconnects,
            messages=self.messages,
            errors=self.errors,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            url=self.url,
            pid=self.pid,
            started_at=self.started_at,
            stalls=self.stalls,
            rotations=self.rotations,
            writes=self.writes,
            write_errors=self.write_errors,
            last_write_error=self.last_write_error,
            hint=self.hint,
            streams={
                name: StreamStatus(messages=s.messages, last_message_at=s.last_message_at)
                for name, s in self.streams.items()
            },
        )
