"""binance-funding-ws: Binance USDⓈ-M funding rates and tickers in an atomic local state file.

The daemon (``binance-funding-ws run``) keeps a WebSocket feed of the all-market mark-price
and ticker streams and publishes a schema-versioned JSON state file. Consumers such as the alert
bot ask a :class:`FundingSource` (the file while it is fresh, REST when it is not) for a
:class:`FundingQuote` or :class:`TickerQuote`, or read the file with :func:`read_state` and
judge it with :func:`fresh_funding` / :func:`fresh_ticker`.

Layout (see the README's *Layout* section): the modules at the package root are pure (no
I/O) except :func:`read_state`; ``runtime/`` is the daemon's I/O shell, ``tools/`` the ops
commands that run on the host (``status``, ``compare``, ``audit``, ``report``), and
``consumer/`` the reader's (:class:`FundingSource`).
"""

from binance_funding_ws.consumer import FundingSource
from binance_funding_ws.health import fresh_funding, fresh_ticker
from binance_funding_ws.quotes import FundingQuote, TickerQuote
from binance_funding_ws.state import (
    SCHEMA_VERSION,
    FundingEntry,
    StateDocument,
    StateFileError,
    TickerEntry,
    read_state,
)

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "FundingEntry",
    "FundingQuote",
    "FundingSource",
    "StateDocument",
    "StateFileError",
    "TickerEntry",
    "TickerQuote",
    "__version__",
    "fresh_funding",
    "fresh_ticker",
    "read_state",
]
