"""Sans-I/O bookkeeping of the feed's health: the ``connection_status`` section.

The tracker is told what happens (a dial, a market frame, an error, a stall) and turns it
into counters and a state. It never looks at a clock itself: callers pass ``now`` in epoch
milliseconds, which keeps every rule testable.
"""

from __future__ import annotations

import os

import msgspec

from binance_funding_ws.state import ConnectionState, ConnectionStatus, StreamStatus

# connection_status.streams keeps this many stream names at most. The daemon subscribes to a
# few all-market streams; a feed that names more is broken or hostile, and a name kept is
# kept for good.
MAX_STREAMS = 16


class ConnectionTracker:
    """Keeps the one :class:`~binance_funding_ws.state.ConnectionStatus` and updates it.

    ``status`` is live: it changes as events arrive. :meth:`snapshot` is the copy a
    document holds. ``version`` increases on every change so the writer can tell whether
    anything is new since the last write.
    """

    def __init__(self, url: str, now: int, pid: int | None = None) -> None:
        self.status = ConnectionStatus(
            state="connecting",
            state_since=now,
            connected_since=None,
            last_message_at=None,
            reconnects=0,
            messages=0,
            errors=0,
            last_error=None,
            url=url,
            pid=os.getpid() if pid is None else pid,
            started_at=now,
        )
        self.version = 0

    def set_state(self, state: ConnectionState, now: int) -> None:
        status = self.status
        if state == status.state:
            return
        status.state = state
        status.state_since = now
        # connected_since describes the current unbroken run of data; any other state ends it.
        status.connected_since = now if state == "connected" else None
        if state == "connected":
            status.hint = None
        self.version += 1

    def on_frame(self) -> None:
        """Any frame arrived, market data or not."""
        self.status.messages += 1
        self.version += 1

    def on_market_data(self, stream: str | None, now: int) -> str | None:
        """A frame with at least one good row arrived on an active connection.

        Returns an error (already counted) when the stream's name is one too many to keep.
        """
        self.status.last_message_at = now
        if stream is None:
            return None
        streams = self.status.streams
        counts = streams.get(stream)
        if counts is None:
            if len(streams) >= MAX_STREAMS:
                message = f"stream {stream!r} not listed in streams: {MAX_STREAMS} are already"
                self.on_errors([message], now)
                return message
            counts = streams[stream] = StreamStatus()
        counts.messages += 1
        counts.last_message_at = now
        return None

    def on_errors(self, messages: list[str], now: int) -> None:
        """Count each message as one bad frame or row; the last is ``last_error``."""
        if messages:
            self.on_rejected(len(messages), messages[-1], now)

    def on_rejected(self, rows: int, reason: str, now: int) -> None:
        """Count ``rows`` refused for one reason, reported by one message."""
        status = self.status
        status.errors += rows
        status.last_error = reason
        status.last_error_at = now
        self.version += 1

    def on_restored(self, now: int, funding: int, tickers: int) -> None:
        """This run started from the previous file's entries (warm start)."""
        status = self.status
        status.restored_at, status.restored_funding, status.restored_tickers = now, funding, tickers
        self.version += 1

    def on_reconnect(self) -> None:
        self.status.reconnects += 1
        self.version += 1

    def on_stall(self, hint: str | None) -> None:
        self.status.stalls += 1
        if hint is not None:
            self.status.hint = hint
        self.version += 1

    def on_rotation(self) -> None:
        self.status.rotations += 1
        self.version += 1

    def on_write_result(self, error: str | None) -> None:
        """Record a state-file write; a successful one clears the last write error."""
        status = self.status
        if error is None:
            status.writes += 1  # not a change by itself: counting writes must not cause writes
            if status.last_write_error is not None:
                status.last_write_error = None
                self.version += 1
            return
        status.write_errors += 1
        status.last_write_error = error
        self.version += 1

    def snapshot(self) -> ConnectionStatus:
        """A copy for a document: later events do not change it."""
        streams = {name: msgspec.structs.replace(s) for name, s in self.status.streams.items()}
        return msgspec.structs.replace(self.status, streams=streams)
