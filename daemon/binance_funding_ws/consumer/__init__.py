"""The consumer's I/O shell: :class:`FundingSource`, what the alert bot asks for a symbol.

``statefile.py`` keeps the newest version of the state file (a stat per interval, a parse per
change), ``fallback.py`` asks REST when the file cannot answer (deadline, circuit breaker,
reuse) through the one REST client (:mod:`binance_funding_ws.tools.rest`, shared with
``compare`` and ``audit``), ``source.py`` wires them and reports the fallbacks. The decisions
live in pure modules at the package root: :mod:`~binance_funding_ws.quotes`,
:mod:`~binance_funding_ws.rest`, :mod:`~binance_funding_ws.circuit` and
:mod:`~binance_funding_ws.botstats`.
"""

from binance_funding_ws.consumer.source import FundingSource

__all__ = ["FundingSource"]
