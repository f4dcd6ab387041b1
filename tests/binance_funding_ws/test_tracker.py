"""The connection tracker (:mod:`binance_funding_ws.tracker`): states, counters, snapshots and the
bound on streams listed."""

from __future__ import annotations

from binance_funding_ws.tracker import MAX_STREAMS, ConnectionTracker


def test_tracker_connected_only_with_data_and_counts_changes():
    tracker = ConnectionTracker("ws://x", now=100, pid=7)
    status = tracker.status
    assert status.state == "connecting" and status.connected_since is None
    version = tracker.version
    tracker.set_state("connected", 200)
    assert status.connected_since == 200 and tracker.version > version
    tracker.set_state("stalled", 300)
    assert status.connected_since is None and status.state_since == 300
    tracker.on_errors(["a", "b"], 400)
    tracker.on_market_data("!ticker@arr", 500)
    snap = tracker.snapshot()
    assert (snap.errors, snap.last_error, snap.last_error_at) == (2, "b", 400)
    assert snap.streams["!ticker@arr"].messages == 1
    assert snap.streams["!ticker@arr"].last_message_at == 500
    tracker.on_write_result("disk full")
    tracker.on_write_result(None)
    assert status.write_errors == 1 and status.last_write_error is None


def test_tracker_snapshot_is_a_copy_later_events_do_not_change():
    tracker = ConnectionTracker("ws://x", now=100, pid=7)
    tracker.on_market_data("!ticker@arr", 500)
    snap = tracker.snapshot()
    tracker.on_market_data("!ticker@arr", 600)
    tracker.on_market_data("!markPrice@arr@1s", 600)
    tracker.on_errors(["late"], 600)
    assert (snap.errors, snap.last_message_at, list(snap.streams)) == (0, 500, ["!ticker@arr"])
    assert snap.streams["!ticker@arr"].messages == 1
    assert tracker.status.streams["!ticker@arr"].messages == 2


def test_the_tracker_lists_at_most_max_streams_and_counts_the_rest():
    tracker = ConnectionTracker("ws://x", now=1)
    names = [f"stream{n}" for n in range(MAX_STREAMS)]
    assert all(tracker.on_market_data(name, 2) is None for name in names)
    problem = tracker.on_market_data("one-too-many", 3)
    assert problem is not None and "'one-too-many'" in problem
    assert tracker.on_market_data("stream0", 4) is None
    status = tracker.status
    assert list(status.streams) == names and status.streams["stream0"].messages == 2
    assert (status.errors, status.last_error, status.last_message_at) == (1, problem, 4)
