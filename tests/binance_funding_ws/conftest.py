"""Fixtures of the daemon package's tests."""

from __future__ import annotations

import pytest

from binance_funding_ws.frames import FrameDecoder


@pytest.fixture
def decoder() -> FrameDecoder:
    return FrameDecoder()
