"""The one REST client: the socket I/O for ``compare``, ``audit`` and
:class:`~binance_funding_ws.FundingSource`. What the answers and headers mean is decided in
the pure modules: :mod:`binance_funding_ws.rest` (shapes, weights, bounded headers) and
:mod:`binance_funding_ws.circuit` (when to ask).

Invariants:

* **A total deadline per request.** ``timeout`` bounds the connection, the TLS handshake,
  the headers and the body together: every read and write is given what is left of it, so
  a server that sends one byte at a time cannot hold a request (its thread, its socket)
  for longer. (``http.client``'s own timeout applies to each read.) Name resolution is the
  one step no socket timeout reaches; :class:`~binance_funding_ws.consumer.FundingSource`
  bounds its threads by number as well.
* **Bounded answers.** A body larger than the caller's limit is an error, never read on.
* **No redirect is followed**, to another host or the same one: a 3xx is a failure.
* **One rule for Binance's limits.** Every request goes through one :class:`Circuit` per
  client: a failure, a 429's ``Retry-After`` or a 418's ban holds requests back, and an
  ``X-MBX-USED-WEIGHT-1m`` near the budget pauses them until the next minute. A 418 is never
  retried (retrying is what extends a ban); :meth:`RestClient.get` retries a 429 or a 5xx
  after its window when ``attempts`` allows it and the window is at most :data:`MAX_SLEEP`.

Standard library only (``urllib``, which keeps the proxy settings of the environment): the
droplet's dependencies stay websockets and msgspec, and one GET at a time per thread gains
nothing from a pooled or async client.
"""

from __future__ import annotations

import functools
import http.client
import io
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from binance_funding_ws.circuit import Circuit, Verdict, judge, weight_pause
from binance_funding_ws.rest import (
    EXCHANGE_INFO,
    MAX_ERROR_BODY,
    MAX_LIST_BODY,
    PREMIUM_INDEX,
    WEIGHT_EXCHANGE_INFO,
    WEIGHT_PREMIUM_INDEX_ALL,
    ExchangeSymbol,
    PremiumIndex,
    RestAnswerError,
    error_message,
    exchange_symbols,
    parse_retry_after,
    parse_used_weight,
    premium_index_rows,
    retry_after_oddity,
)
from binance_funding_ws.text import one_line

log = logging.getLogger("binance_funding_ws.rest")

MAX_SLEEP = 60.0  # a wait longer than this is reported to the caller, not slept through

__all__ = [  # the weights are re-exported for the audit's budget arithmetic
    "MAX_SLEEP",
    "WEIGHT_EXCHANGE_INFO",
    "WEIGHT_PREMIUM_INDEX_ALL",
    "Reply",
    "RestClient",
    "RestError",
    "http_get",
]


class RestError(Exception):
    """The REST API could not be read; the message is one line for the operator.

    ``retry_after`` (seconds) is set when the API said when to come back (429, 418), or the
    client is holding requests back for that long.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, whatever its status. ``note`` names an odd header (one line)."""

    status: int
    body: bytes
    retry_after: float | None
    used_weight: int | None
    note: str | None = None


def http_get(url: str, timeout: float, max_body: int) -> Reply:
    """One GET within ``timeout`` seconds in all, no redirect, no retry. Any HTTP status is a
    :class:`Reply` (an error's body is cut to a few KB); a network failure, the deadline or a
    200 body over ``max_body`` bytes raise :class:`RestError`."""
    from binance_funding_ws import __version__  # here: the package imports this module

    request = _DeadlineRequest(url, time.monotonic() + timeout)
    request.add_header("User-Agent", f"binance-funding-ws/{__version__}")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
            limit = max_body if status == 200 else MAX_ERROR_BODY
            body = _read_at_most(response, limit + 1)
            if len(body) > limit and status == 200:
                raise RestError(f"{url}: answer larger than {max_body:,} bytes")
            return _reply(status, response.headers, body[:limit])
    except TimeoutError:
        raise RestError(f"{url}: no complete answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RestError(f"{url}: no complete answer within {timeout:g} s") from None
        raise RestError(f"cannot reach {url}: {_reason(exc)}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise RestError(f"cannot reach {url}: {_reason(exc)}") from None


def _read_at_most(response: http.client.HTTPResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes, read 64 KiB at a time (a buffer of the limit would cost 32 MiB
    per listing, used or not)."""
    parts, size = [], 0
    while size < limit:
        part = response.read(min(65_536, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _reply(status: int, headers: Any, body: bytes) -> Reply:
    raw_retry_after = headers.get("Retry-After")
    raw_weight = headers.get("X-MBX-USED-WEIGHT-1m")
    used_weight = parse_used_weight(raw_weight)
    notes = [retry_after_oddity(raw_retry_after)]
    if raw_weight is not None and used_weight is None:
        notes.append(f"X-MBX-USED-WEIGHT-1m {_shown(raw_weight)} unreadable, ignored")
    return Reply(
        status=status,
        body=body,
        retry_after=parse_retry_after(raw_retry_after),
        used_weight=used_weight,
        note="; ".join(note for note in notes if note) or None,
    )


def _shown(value: str) -> str:
    cut = value[:40].encode("unicode_escape").decode("ascii")
    return repr(cut + ("..." if len(value) > 40 else ""))


class RestClient:
    """GETs against ``base_url`` within ``timeout`` each, under one circuit breaker and one
    weight budget. Thread-safe.

    ``compare`` and ``audit`` call :meth:`premium_index` and :meth:`exchange_info`, which
    raise :class:`RestError`; the consumer's fallback calls :meth:`admit`, :meth:`send` and
    :meth:`record` itself, so that each request is judged once whoever gives up first.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        attempts: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        circuit: Circuit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self._sleep = sleep
        self._circuit = circuit or Circuit()
        self._clock = clock
        self._lock = threading.Lock()
        self.used_weight: int | None = None  # X-MBX-USED-WEIGHT-1m of the last answer
        self.spent_weight = 0  # the weight of every request this client sent

    # -- the listings (compare, audit) ----------------------------------------------------

    def premium_index(self) -> list[PremiumIndex]:
        """Every symbol's premium index: one request of weight 10."""
        body = self.get(PREMIUM_INDEX, weight=WEIGHT_PREMIUM_INDEX_ALL)
        return _answer(premium_index_rows, body)

    def exchange_info(self) -> list[ExchangeSymbol]:
        """Every listed symbol with its status and contract type: weight 1."""
        return _answer(exchange_symbols, self.get(EXCHANGE_INFO, weight=WEIGHT_EXCHANGE_INFO))

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        return self.base_url + path + (f"?{urlencode(params)}" if params else "")

    def get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        weight: int = 1,
        max_body: int = MAX_LIST_BODY,
    ) -> bytes:
        """The body of a 200 answer; anything else raises :class:`RestError`."""
        url = self.url(path, params)
        for attempt in range(1, self.attempts + 1):
            if not self.admit():
                wait = self.paused_for()
                raise RestError(f"{url}: not asked, REST is held back for {wait:.0f} s", wait)
            try:
                reply = self.send(url, weight, max_body)
            except RestError:
                self.record("failed")
                raise
            verdict = judge(reply.status)
            window = self.record(verdict, reply.retry_after)
            if verdict == "answer":
                return reply.body
            self._refuse(url, reply, verdict, window, attempt)
            self._sleep(self.paused_for())
        raise AssertionError("unreachable")  # the loop returns or raises

    def _refuse(
        self, url: str, reply: Reply, verdict: Verdict, window: float, attempt: int
    ) -> None:
        """Raise unless ``reply`` may be retried after ``window`` seconds."""
        note = f" ({reply.note})" if reply.note else ""
        status = reply.status
        if verdict == "banned":
            message = f"{url}: HTTP 418, this IP is banned for {window:.0f} s; not retrying"
            raise RestError(message + note, window)
        if verdict != "rate_limited" and status < 500:
            message = f"{url}: HTTP {status} {error_message(reply.body)}".rstrip()
            raise RestError(one_line(message) + note)
        retry_after = window if verdict == "rate_limited" else None
        if window > MAX_SLEEP:
            raise RestError(f"{url}: HTTP {status}, Retry-After {window:.0f} s{note}", retry_after)
        if attempt == self.attempts:
            if attempt > 1:
                raise RestError(f"{url}: still HTTP {status} after {attempt} tries", retry_after)
            message = f"{url}: HTTP {status}, Retry-After {window:g} s; not retrying"
            raise RestError(message + note, retry_after)

    # -- the parts (the consumer's fallback uses them directly) ---------------------------

    def admit(self) -> bool:
        """May a request start now? (The circuit; a half-open one admits a single probe.)"""
        with self._lock:
            return self._circuit.admit(self._clock())

    def paused_for(self) -> float:
        """Seconds until a request may be made again (0: now)."""
        with self._lock:
            return self._circuit.remaining(self._clock())

    def send(self, url: str, weight: int, max_body: int) -> Reply:
        """One GET, counted against the weight budget; pauses requests until the next minute
        when the answer says the IP's weight is nearly spent. Raises :class:`RestError`."""
        with self._lock:
            self.spent_weight += weight  # a refused request counts against the budget too
        reply = http_get(url, self.timeout, max_body)
        pause = weight_pause(reply.used_weight, time.time())
        with self._lock:
            if reply.used_weight is not None:
                self.used_weight = reply.used_weight
            if pause:
                self._circuit.pause(self._clock(), pause)
        if pause:
            log.warning("REST weight %s used this minute: pausing %.0f s", reply.used_weight, pause)
        return reply

    def record(self, verdict: Verdict, retry_after: float | None = None) -> float:
        """Tell the circuit how one request went; the seconds it now holds requests back."""
        with self._lock:
            if verdict in ("answer", "unknown_symbol"):
                self._circuit.succeeded()
                return 0.0
            return self._circuit.failed(self._clock(), verdict, retry_after)


_T = TypeVar("_T")


def _answer(decode: Callable[[bytes], _T], body: bytes) -> _T:
    try:
        return decode(body)
    except RestAnswerError as exc:
        raise RestError(str(exc)) from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return one_line(str(reason))[:200] or type(exc).__name__


# -- the total deadline -----------------------------------------------------------------------


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's deadline passed")
    return left


class _DeadlineRequest(urllib.request.Request):
    def __init__(self, url: str, deadline: float) -> None:
        super().__init__(url)
        self.deadline = deadline


class _DeadlineReader(io.RawIOBase):
    """The socket's reader, each read given only what is left of the deadline."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float) -> None:
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_remaining(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket as ``http.client`` uses it (``makefile``, ``sendall``, ``close``),
    every read and write ending by ``deadline``. The reader is the socket's own ``makefile``
    (counted by the socket, so that urllib's early ``close()`` waits for the response)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        raw = self._sock.makefile("rb", buffering=0)
        return io.BufferedReader(_DeadlineReader(raw, self._sock, self._deadline))

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)  # sendall's timeout is for the whole call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineConnection(http.client.HTTPConnection):
    """Connects within what is left of the deadline, then hands out a deadline socket. The
    TLS handshake (:class:`_DeadlineHTTPSConnection`) runs inside ``connect`` with the same
    timeout, which CPython applies to the whole handshake."""

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        self.timeout = _remaining(self._deadline)
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self._deadline)


class _DeadlineHTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        deadline = getattr(req, "deadline", time.monotonic() + (req.timeout or 10.0))
        return self.do_open(functools.partial(_DeadlineConnection, deadline=deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        deadline = getattr(req, "deadline", time.monotonic() + (req.timeout or 10.0))
        connection = functools.partial(_DeadlineHTTPSConnection, deadline=deadline)
        return self.do_open(connection, req, context=getattr(self, "_context", None))


def _opener() -> urllib.request.OpenerDirector:
    """urllib with the environment's proxies and nothing else: no redirect handler (a 3xx is
    returned as it is) and no error processor (every status is an answer, not an exception)."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), _HTTPHandler(), _HTTPSHandler()):
        opener.add_handler(handler)
    return opener


_OPENER = _opener()
