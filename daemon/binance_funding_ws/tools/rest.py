"""A small client for Binance's USDⓈ-M REST API (``fapi``): what ``compare`` and ``audit`` need,
no more.

Standard library only (``urllib``): one GET at a time, so a session pool or an async client
would buy nothing, and the daemon's dependencies stay at two. Binance's rules are honoured:
429 (rate limited) waits for ``Retry-After`` and tries again a bounded number of times; 418
(IP banned) stops at once, since retrying is what gets a ban extended. Either way the error
carries ``retry_after``, so a caller that runs again later (the audit) can stay away until then.
Every request's weight is counted in ``spent_weight``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import msgspec

from binance_funding_ws import __version__
from binance_funding_ws.comparison import ExchangeSymbol, PremiumIndex

MAX_RETRY_AFTER = 60.0  # longer waits are reported, not slept through
# Request weights (Binance's documentation), against comparison.WEIGHT_BUDGET_PER_MINUTE.
WEIGHT_PREMIUM_INDEX_ALL, WEIGHT_PREMIUM_INDEX_ONE, WEIGHT_EXCHANGE_INFO = 10, 1, 1


class RestError(Exception):
    """The REST API could not be read; the message is one line for the operator.

    ``retry_after`` (seconds) is set when the API said when to come back (429, 418).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _ExchangeInfo(msgspec.Struct):
    symbols: list[ExchangeSymbol]


_rows = msgspec.json.Decoder(list[PremiumIndex])
_row = msgspec.json.Decoder(PremiumIndex)
_exchange_info = msgspec.json.Decoder(_ExchangeInfo)


class RestClient:
    """GETs against ``base_url`` with a timeout and Binance's rate-limit rules."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep
        self.used_weight: int | None = None  # X-MBX-USED-WEIGHT-1m of the last answer
        self.spent_weight = 0  # the weight of every request this client sent

    def premium_index(self) -> list[PremiumIndex]:
        """Every symbol's premium index: one request of weight 10."""
        data = self.get("/fapi/v1/premiumIndex", weight=WEIGHT_PREMIUM_INDEX_ALL)
        return self._decode(_rows, data, "premiumIndex")

    def premium_index_of(self, symbol: str) -> PremiumIndex:
        """One symbol's premium index: weight 1."""
        data = self.get("/fapi/v1/premiumIndex", {"symbol": symbol}, WEIGHT_PREMIUM_INDEX_ONE)
        return self._decode(_row, data, f"premiumIndex?symbol={symbol}")

    def exchange_info(self) -> list[ExchangeSymbol]:
        """Every listed symbol with its status and contract type: weight 1."""
        data = self.get("/fapi/v1/exchangeInfo", weight=WEIGHT_EXCHANGE_INFO)
        return self._decode(_exchange_info, data, "exchangeInfo").symbols

    def get(self, path: str, params: dict[str, str] | None = None, weight: int = 1) -> bytes:
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        request = urllib.request.Request(
            url, headers={"User-Agent": f"binance-funding-ws/{__version__}"}
        )
        for attempt in range(1, self.attempts + 1):
            self.spent_weight += weight  # a refused request counts against the budget too
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    self._note_weight(response.headers)
                    return response.read()
            except urllib.error.HTTPError as exc:
                self._note_weight(exc.headers)
                wait = self._retry_wait(exc, url)
                if attempt == self.attempts:
                    raise RestError(_gave_up(url, exc.code, attempt, wait), wait) from None
                self._sleep(wait)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                raise RestError(f"cannot reach {url}: {_reason(exc)}") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _retry_wait(self, exc: urllib.error.HTTPError, url: str) -> float:
        """Seconds to wait before retrying, or raise when retrying is wrong."""
        retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        if exc.code == 418:
            ban = f" for {retry_after:.0f} s" if retry_after is not None else ""
            raise RestError(
                f"{url}: HTTP 418, this IP is banned{ban}; not retrying", retry_after
            ) from None
        if exc.code == 429 or exc.code >= 500:
            wait = retry_after if retry_after is not None else 1.0
            if wait > MAX_RETRY_AFTER:
                raise RestError(f"{url}: HTTP {exc.code}, Retry-After {wait:.0f} s", wait) from None
            return wait
        raise RestError(f"{url}: HTTP {exc.code} {_body_message(exc)}".rstrip()) from None

    def _note_weight(self, headers: Any) -> None:
        if headers is not None and headers.get("X-MBX-USED-WEIGHT-1m", "").isdigit():
            self.used_weight = int(headers["X-MBX-USED-WEIGHT-1m"])

    @staticmethod
    def _decode(decoder: msgspec.json.Decoder, data: bytes, what: str) -> Any:
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise RestError(f"unexpected {what} answer: {exc}") from None


def _gave_up(url: str, code: int, attempts: int, wait: float) -> str:
    if attempts > 1:
        return f"{url}: still HTTP {code} after {attempts} tries"
    return f"{url}: HTTP {code}, Retry-After {wait:g} s; not retrying"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _body_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(msgspec.json.decode(exc.read()).get("msg", ""))[:200]
    except (msgspec.DecodeError, AttributeError, OSError):
        return ""


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).splitlines()[0][:200] or type(exc).__name__
