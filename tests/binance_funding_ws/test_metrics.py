"""The Prometheus textfile (:mod:`binance_funding_ws.metrics`): what a sample and a compare round
export, and the rolling availability's bound."""

from __future__ import annotations

import re

import pytest

from binance_funding_ws.metrics import (
    RollingAvailability,
    availability_metric,
    compare_metrics,
    render,
    sample_metrics,
)
from samples import bad, counters, good, missing, round_


def test_metrics_are_prometheus_text_without_timestamps():
    sample = good(0, counters=counters(reconnects=2, stalls=1), restarts_seen=3)
    metrics = [*sample_metrics(sample), *compare_metrics(round_(0)), availability_metric(0.999)]
    text = render(metrics)
    values = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(LINE.match(line) for line in values), values  # name and value: no timestamp
    found = dict(line.split() for line in values)
    assert found["binance_funding_ws_connected"] == "1"
    assert found["binance_funding_ws_reconnects_total"] == "2"
    assert found["binance_funding_ws_restarts_total"] == "3"
    assert found["binance_funding_ws_compare_match_ratio"] == "1.0"
    assert found["binance_funding_ws_availability_24h_ratio"] == "0.999"
    types = dict(re.findall(r"# TYPE (\S+) (\S+)", text))
    assert all(name.endswith("_total") == (kind == "counter") for name, kind in types.items())


def test_an_unreadable_file_exports_only_what_is_known():
    text = render([*sample_metrics(missing(0)), *compare_metrics(None)])
    assert "binance_funding_ws_state_file_readable 0" in text
    assert "binance_funding_ws_connected 0" in text
    assert "last_message_age_seconds" not in text and "funding_symbols" not in text


def test_rolling_availability_stays_bounded():
    rolling = RollingAvailability(max_age=2.0, window_s=3600)
    for second in range(0, 3 * 3600, 5):
        rolling.add(good(second) if second % 100 else bad(second))
    assert len(rolling._buckets) == 60  # a bucket a minute, an hour of them
    assert rolling.ratio() == pytest.approx(19 / 20, abs=0.01)


LINE = re.compile(r"^binance_funding_ws_[a-z0-9_]+ -?[0-9.e+-]+$")
