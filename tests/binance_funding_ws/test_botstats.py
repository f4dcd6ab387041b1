"""The bot's counters (:mod:`binance_funding_ws.botstats`): exact across threads, and one summary
line only when something fell back."""

from __future__ import annotations

import threading
from collections import Counter

from binance_funding_ws.botstats import COUNTERS, MAX_SHARDS, LookupCounters, summary_line


def test_summary_line_only_when_something_fell_back():
    zero = dict.fromkeys(COUNTERS, 0)
    assert summary_line(zero, {**zero, "websocket": 500}, Counter(), 60, 0) is None
    after = {**zero, "websocket": 90, "rest": 7, "unavailable": 3, "rest_requests": 5}
    after["rest_errors"] = 1
    line = summary_line(zero, after, Counter({"BTCUSDT": 6, "ETHUSDT": 4}), 60, 23.4)
    assert line == (
        "10 of 100 lookups not answered by the state file in the last 1m 00s: 7 from REST, "
        "3 unavailable; most: BTCUSDT 6, ETHUSDT 4; REST requests 5, errors 1, skipped 0; "
        "REST paused for 23 s more"
    )


def test_counters_are_exact_across_threads_that_come_and_go():
    counters = LookupCounters()

    def count() -> None:
        for _ in range(2_000):
            counters.add("websocket")
        counters.add("rest", "unavailable")

    for _ in range(5):  # 200 threads that end, and no read between: shards are folded anyway
        threads = [threading.Thread(target=count) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(counters._shards) <= MAX_SHARDS
    totals = counters.snapshot()
    assert totals["websocket"] == 400_000 and totals["rest"] == totals["unavailable"] == 200
    assert not counters._shards  # only live threads keep a shard
