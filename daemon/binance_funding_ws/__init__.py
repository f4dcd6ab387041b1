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

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from binance_funding_ws.consumer import FundingSource

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


def __getattr__(name: str) -> Any:
    """``FundingSource`` on first use (PEP 562): it brings the REST client (http.client, ssl,
    email), which the daemon and the other commands never need. ``binance-funding-ws run``
    starts about twice as fast without it, which a restart after a crash or a watchdog kill
    feels."""
    if name == "FundingSource":
        from binance_funding_ws.consumer import FundingSource

        return FundingSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
