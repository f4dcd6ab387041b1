"""The daemon's wiring (:mod:`binance_funding_ws.runtime.service`), driven without a process."""

from __future__ import annotations

from binance_funding_ws.clock import now_ms
from binance_funding_ws.frames import FrameDecoder
from factories import combined, mark


def test_the_daemon_counts_the_rows_a_full_book_refuses(tmp_path):
    from binance_funding_ws.endpoint import Endpoint
    from binance_funding_ws.runtime.feed import FeedConfig
    from binance_funding_ws.runtime.service import Daemon, DaemonConfig

    feed = FeedConfig(endpoint=Endpoint("ws://x"))
    daemon = Daemon(DaemonConfig(state_file=tmp_path / "s.json", feed=feed, max_symbols=1))
    now = now_ms()
    daemon._on_market_frame(
        FrameDecoder().decode(combined("!markPrice@arr@1s", [mark("AUSDT", now)])), now
    )
    daemon._on_market_frame(
        FrameDecoder().decode(combined("!markPrice@arr@1s", [mark("BUSDT", now)])), now
    )
    assert list(daemon.build_document().funding) == ["AUSDT"]
    status = daemon.tracker.status
    assert status.errors == 1 and "--max-symbols" in status.last_error
