"""binance-funding-ws: Binance USDⓈ-M funding rates and tickers in an atomic local state file.

The daemon (``binance-funding-ws run``) keeps a WebSocket feed of the all-market mark-price
and ticker streams and publishes a schema-versioned JSON state file. Consumers read it with
:func:`binance_funding_ws.state.read_state` and :func:`binance_funding_ws.state.fresh_funding`.
"""

from binance_funding_ws.state import (
    SCHEMA_VERSION,
    FundingEntry,
    StateDocument,
    StateFileError,
    TickerEntry,
    fresh_funding,
    fresh_ticker,
    read_state,
)

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "FundingEntry",
    "StateDocument",
    "StateFileError",
    "TickerEntry",
    "__version__",
    "fresh_funding",
    "fresh_ticker",
    "read_state",
]
