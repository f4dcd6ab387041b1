"""Comparison rules (:mod:`binance_funding_ws.compare`): a value the exchange moved past between
two reads is bracketed, not a mismatch."""

from __future__ import annotations

import pytest

from binance_funding_ws.compare import bracket
from binance_funding_ws.rest import PremiumIndex
from binance_funding_ws.state import FundingEntry


def row(time_ms: int, rate: str = "0.00010000", mark: str = "100.00") -> PremiumIndex:
    return PremiumIndex(
        symbol="BTCUSDT", markPrice=mark, lastFundingRate=rate, nextFundingTime=8, time=time_ms
    )


def entry(time_ms: int, rate: str = "0.00010000", mark: str = "100.00") -> FundingEntry:
    return FundingEntry(
        mark_price=mark, index_price=mark, estimated_settle_price=mark, funding_rate=rate,
        next_funding_time=8, event_time=time_ms, received_at=time_ms,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("file", "before", "after", "verdict"),
    [
        (entry(2, mark="100.20"), row(1), row(3, mark="100.40"), "moving"),  # mark in between
        (entry(2, rate="0.009"), row(1), row(3, mark="100.40"), "mismatch"),  # steady rate
        (entry(2, mark="105"), row(1), row(3, mark="100.01"), "mismatch"),  # steady mark
        (entry(2, rate="0.0002"), row(1), row(3, rate="0.0003"), "moving"),  # rate moved
        (entry(1, rate="0.0002"), row(1), row(3, rate="0.0003"), "mismatch"),  # same instant
        (entry(2, mark="100.40"), row(1), row(3, mark="100.40"), "ok"),  # equals one answer
    ],
)
def test_a_bracketed_value_is_a_mismatch_only_where_the_exchange_held_still(
    file, before, after, verdict
):
    judged = bracket(file, before, after, tolerance_pct=0.05)
    assert ("moving" if judged.moving else "ok" if judged.ok else "mismatch") == verdict
