"""A local stand-in for Binance's fstream (WebSocket) and fapi (REST) services.

It speaks the same protocol as the real exchange for everything the daemon and the
verification tools use, and misbehaves on request:

* ``/market/stream?streams=a/b`` (combined, ``{"stream", "data"}`` envelopes) and
  ``/market/ws/<stream>`` (raw arrays) deliver ``!markPrice@arr@1s``, ``!markPrice@arr``,
  ``!ticker@arr`` and ``!miniTicker@arr``;
* the retired legacy paths ``/stream`` and ``/ws[/<stream>]`` accept the connection and
  acknowledge ``SUBSCRIBE`` but never deliver market data (what Binance does since 2026-04-23);
* mark price arrives in several frames per tick (TradFi ``XAUUSDT`` in a frame of its own),
  the ticker array is partial (a round-robin of ``ticker_changes`` symbols per tick), COIN-M
  ``BTCUSD_PERP`` rows carry ``st: 2``/``ps``, and ``MATICUSDT`` (SETTLING) has ``T: 0``,
  ``r: "0.00000000"`` and never a ticker;
* the server pings, closes connections at ``max_connection_age``, and closes a connection
  whose bounded send queue overflows with 1008, like a slow consumer on the real service;
* REST: ``/fapi/v1/premiumIndex`` (array, or one object with ``?symbol=``),
  ``/fapi/v1/ticker/24hr``, ``/fapi/v1/exchangeInfo``, ``/fapi/v1/ping``, ``/fapi/v1/time``,
  with an ``X-MBX-USED-WEIGHT-1m`` header;
* faults at run time, from Python (:class:`Simulator` methods) or over HTTP
  (``GET /_sim/<fault>?...``): ``stall``, ``resume``, ``drop``, ``close``, ``garbage``,
  ``pause``, ``unpause``, ``diverge``, ``clear_divergence``, ``rest_fault``, ``phantom``,
  ``stats``.

Every frame of a tick is encoded once and shared by all connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

EIGHT_HOURS_MS = 8 * 3600 * 1000
REAL_SYMBOLS = {  # symbol: rough price, so the demo looks like the real market
    "BTCUSDT": 97_000.0,
    "ETHUSDT": 3_400.0,
    "SOLUSDT": 180.0,
    "BNBUSDT": 640.0,
    "XRPUSDT": 2.3,
    "DOGEUSDT": 0.32,
    "ADAUSDT": 0.95,
    "AVAXUSDT": 38.0,
    "LINKUSDT": 21.0,
    "DOTUSDT": 7.1,
    "LTCUSDT": 105.0,
    "TRXUSDT": 0.25,
    "SUIUSDT": 4.2,
    # Binance lists it per 1,000 tokens: at 8 decimals a single token's price (0.0000185) moves
    # in steps of 0.054 %, coarser than compare's default tolerance.
    "1000PEPEUSDT": 0.0185,
    "ARBUSDT": 0.82,
    "OPUSDT": 2.1,
}
TRADFI_SYMBOL = "XAUUSDT"  # arrives in a mark-price frame of its own, as observed live
COINM_SYMBOL = "BTCUSD_PERP"  # COIN-M contract in the USDⓈ-M arrays since 2026-06-30
SETTLING_SYMBOL = "MATICUSDT"  # mark price with T 0, never a ticker
FUNDING_EVERY = 8  # ticks between updates of one symbol's estimated funding rate
GARBAGE_KINDS = ("not-json", "scalar", "wrong-shape", "mixed-rows", "bad-decimal", "binary")


@dataclass(frozen=True)
class SimulatorConfig:
    """What the fake exchange serves. ``symbols`` counts the ordinary USDⓈ-M contracts;
    XAUUSDT, BTCUSD_PERP and MATICUSDT always come on top."""

    host: str = "127.0.0.1"
    port: int = 0
    tick: float = 1.0
    symbols: int = 50
    seed: int = 1
    mark_frames: int = 2
    ticker_changes: int | None = None  # ticker rows per tick; None = a third of the symbols
    ping_interval: float | None = 180.0
    max_connection_age: float = 86_400.0
    send_queue: int = 256  # frames a connection may fall behind before it is closed (1008)
    start_paused: bool = False


@dataclass
class _Instrument:
    symbol: str
    price: float
    decimals: int
    funding_rate: float
    contract_type: int = 1
    pair: str = ""
    has_ticker: bool = True
    funding_scheduled: bool = True
    open_price: float = 0.0
    high: float = 0.0
    low: float = 0.0
    volume: float = 0.0
    trades: int = 0


@dataclass
class _Connection:
    number: int
    ws: ServerConnection
    path: str
    streams: list[str]
    wrapped: bool  # combined-stream envelopes
    market: bool  # on a /market path: data flows; legacy paths stay silent
    queue: asyncio.Queue[tuple[bytes, bool]]
    opened_at: float
    frames_sent: int = 0
    closed_at: float | None = None
    closed_by: str | None = None
    code: int | None = None
    we_closed: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "path": self.path,
            "streams": list(self.streams),
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "frames_sent": self.frames_sent,
            "closed_by": self.closed_by,
            "code": self.code,
            # Round trip of the server's last answered ping; 0 until one was answered.
            "ping_latency": self.ws.latency,
        }


class _Market:
    """The instruments and their random walk; produces one tick's rows."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.random = random.Random(config.seed)
        self.instruments = self._instruments(config.symbols)
        self.ticker_symbols = [i for i in self.instruments if i.has_ticker]
        self.ticker_changes = config.ticker_changes or max(1, len(self.ticker_symbols) // 3)
        self.cursor = 0
        self.event_time = 0
        self.ticks = 0

    def _instruments(self, count: int) -> list[_Instrument]:
        rnd = self.random
        names = list(REAL_SYMBOLS)[:count]
        names += [f"SYN{n:04d}USDT" for n in range(count - len(names))]
        made = [
            self._make(name, REAL_SYMBOLS.get(name) or rnd.uniform(0.01, 500)) for name in names
        ]
        made.append(self._make(COINM_SYMBOL, 97_010.0, contract_type=2, pair="BTCUSD"))
        made.append(self._make(SETTLING_SYMBOL, 0.38, has_ticker=False, funding_scheduled=False))
        made.append(self._make(TRADFI_SYMBOL, 2_650.0))
        return made

    def _make(self, symbol: str, price: float, **extra: Any) -> _Instrument:
        # Enough decimals for about six significant digits, as Binance's tick sizes give.
        decimals = min(8, max(1, 6 - math.floor(math.log10(price))))
        instrument = _Instrument(
            symbol=symbol,
            price=price,
            decimals=decimals,
            funding_rate=self.random.gauss(0.0001, 0.0001),
            **({"pair": symbol} | extra),
        )
        instrument.open_price = instrument.high = instrument.low = price
        instrument.volume = self.random.uniform(1e3, 1e7) / price
        return instrument

    def step(self, now_ms: int) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
        """Move every price, return (event time, mark rows, changed ticker rows)."""
        self.event_time = max(now_ms, self.event_time + 1)  # strictly increasing per tick
        rnd = self.random
        self.ticks += 1
        for position, instrument in enumerate(self.instruments):
            instrument.price *= 1 + rnd.gauss(0, 0.0001)  # about BTC's per-second move
            instrument.high = max(instrument.high, instrument.price)
            instrument.low = min(instrument.low, instrument.price)
            # The estimated funding rate moves more slowly than the price: each symbol's
            # every FUNDING_EVERY ticks, staggered so that some symbol moves on every tick.
            if instrument.funding_scheduled and (self.ticks + position) % FUNDING_EVERY == 0:
                instrument.funding_rate += rnd.gauss(0, 0.000002)
        marks = [self._mark_row(i) for i in self.instruments]
        changed = []
        for _ in range(min(self.ticker_changes, len(self.ticker_symbols))):
            instrument = self.ticker_symbols[self.cursor % len(self.ticker_symbols)]
            self.cursor += 1
            instrument.volume += rnd.uniform(0.1, 50)
            instrument.trades += rnd.randint(1, 40)
            changed.append(self._ticker_row(instrument))
        return self.event_time, marks, changed

    def _mark_row(self, i: _Instrument) -> dict[str, Any]:
        scheduled = i.funding_scheduled
        price = i.price
        return {
            "e": "markPriceUpdate",
            "E": self.event_time,
            "s": i.symbol,
            "p": _decimal(price, 8),
            "ap": _decimal(price * 0.9999, 8),
            "P": _decimal(price * 1.0001, 8),
            "i": _decimal(price * 0.99995, 8),
            "r": _decimal(i.funding_rate, 8) if scheduled else "0.00000000",
            "T": (self.event_time // EIGHT_HOURS_MS + 1) * EIGHT_HOURS_MS if scheduled else 0,
            "st": i.contract_type,
            "ps": i.pair,
        }

    def _ticker_row(self, i: _Instrument) -> dict[str, Any]:
        d = i.decimals
        change = i.price - i.open_price
        quote = i.volume * (i.high + i.low) / 2
        return {
            "e": "24hrTicker",
            "E": self.event_time,
            "s": i.symbol,
            "p": _decimal(change, d),
            "P": _decimal(100 * change / i.open_price, 3),
            "w": _decimal((i.high + i.low) / 2, d),
            "c": _decimal(i.price, d),
            "Q": "1",
            "o": _decimal(i.open_price, d),
            "h": _decimal(i.high, d),
            "l": _decimal(i.low, d),
            "v": _decimal(i.volume, 3),
            "q": _decimal(quote, 2),
            "O": self.event_time - 86_400_000,
            "C": self.event_time,
            "F": 1,
            "L": i.trades + 1,
            "n": i.trades + 1,
            "st": i.contract_type,
            "ps": i.pair,
        }


def _decimal(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"


class Simulator:
    """The fake exchange. Create, ``await start()``, use, ``await stop()`` — all in one loop."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._market = _Market(self.config)
        self._numbers = itertools.count(1)
        self._connections: dict[int, _Connection] = {}
        self._history: list[_Connection] = []
        self._server: Server | None = None
        self._ticker_task: asyncio.Task[None] | None = None
        self._fault_tasks: set[asyncio.Task[Any]] = set()
        self._stalled = False
        self._paused = self.config.start_paused
        self._divergence: dict[str, dict[str, Any]] = {}
        self._phantoms: set[str] = set()  # listed on exchangeInfo, never streamed
        self._rest_faults: deque[tuple[int, float | None]] = deque()
        self._weights: deque[tuple[float, int]] = deque()
        self._encoder = msgspec.json.Encoder()
        self.last_mark: dict[str, dict[str, Any]] = {}
        self.last_ticker: dict[str, dict[str, Any]] = {}
        self.tick_count = 0
        self.rest_requests = 0
        self._garbage_serial = 0

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            compression=None,  # Binance does not negotiate permessage-deflate
            ping_interval=self.config.ping_interval,
            ping_timeout=600,  # Binance: no pong within 10 minutes, disconnected
            max_size=64 * 1024,  # clients only send small control messages
            close_timeout=2,  # a client that stopped reading never answers the close
            server_header="binance-funding-ws-simulator",
        )
        self._ticker_task = asyncio.create_task(self._tick_forever(), name="simulator-ticks")

    async def stop(self) -> None:
        for task in [self._ticker_task, *self._fault_tasks]:
            if task is not None:
                task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def ws_url(self, path: str = "/market/stream") -> str:
        return f"ws://{self.config.host}:{self.port}{path}"

    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    # -- ticking --------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            if not self._paused:
                self._tick()
            next_tick += self.config.tick
            now = loop.time()
            if next_tick < now:  # fell behind: skip ticks rather than burst
                next_tick = now
            await asyncio.sleep(next_tick - now)

    def _tick(self) -> None:
        _, marks, tickers = self._market.step(int(time.time() * 1000))
        self.tick_count += 1
        for row in marks:
            self.last_mark[row["s"]] = row
        for row in tickers:
            self.last_ticker[row["s"]] = row
        if self._stalled:
            return  # the exchange moves on; nobody hears about it
        payloads = self._encode_tick(marks, tickers)
        for conn in list(self._connections.values()):
            if conn.market:
                for stream in conn.streams:
                    self._enqueue(conn, payloads.get((stream, conn.wrapped), ()))

    def _encode_tick(
        self, marks: list[dict[str, Any]], tickers: list[dict[str, Any]]
    ) -> dict[tuple[str, bool], list[bytes]]:
        wanted = {(s, c.wrapped) for c in self._connections.values() if c.market for s in c.streams}
        chunks = self._mark_chunks(marks)
        mini = (
            [_mini(row) for row in tickers]
            if any(s == "!miniTicker@arr" for s, _ in wanted)
            else []
        )
        rows_by_stream = {
            "!markPrice@arr@1s": chunks,
            "!markPrice@arr": chunks,
            "!ticker@arr": [tickers] if tickers else [],
            "!miniTicker@arr": [mini] if mini else [],
        }
        encode = self._encoder.encode
        payloads: dict[tuple[str, bool], list[bytes]] = {}
        for stream, wrapped in wanted:
            frames = rows_by_stream.get(stream, [])
            if wrapped:
                payloads[stream, wrapped] = [encode({"stream": stream, "data": f}) for f in frames]
            else:
                payloads[stream, wrapped] = [encode(f) for f in frames]
        return payloads

    def _mark_chunks(self, marks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        frames = max(1, self.config.mark_frames)
        if frames == 1:
            return [marks]
        crypto = [row for row in marks if row["s"] != TRADFI_SYMBOL]
        tradfi = [row for row in marks if row["s"] == TRADFI_SYMBOL]
        size = math.ceil(len(crypto) / (frames - 1)) or 1
        chunks = [crypto[i : i + size] for i in range(0, len(crypto), size)]
        return [*chunks, tradfi]

    def _enqueue(self, conn: _Connection, frames: Any, text: bool = True) -> None:
        if conn.we_closed is not None:
            return  # closing: a client that stopped reading gets nothing more
        for data in frames:
            try:
                conn.queue.put_nowait((data, text))
            except asyncio.QueueFull:
                log.warning("connection %d: send queue full, closing 1008", conn.number)
                self._spawn(self._close_one(conn, 1008, "client too slow"))
                return

    # -- connections ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        parts = urlsplit(ws.request.path)
        path = parts.path.rstrip("/") or "/"
        market = path.startswith("/market/")
        if path.endswith("/stream"):
            streams = [s for s in parse_qs(parts.query).get("streams", [""])[0].split("/") if s]
            wrapped = True
        else:
            streams = [path.split("/ws/", 1)[1]] if "/ws/" in path else []
            wrapped = False
        conn = _Connection(
            number=next(self._numbers),
            ws=ws,
            path=ws.request.path,
            streams=streams,
            wrapped=wrapped,
            market=market,
            queue=asyncio.Queue(self.config.send_queue),
            opened_at=time.time(),
        )
        self._connections[conn.number] = conn
        self._history.append(conn)
        loop = asyncio.get_running_loop()
        age_limit = loop.call_later(
            self.config.max_connection_age,
            lambda: self._spawn(self._close_one(conn, 1000, "connection age limit")),
        )
        sender = asyncio.create_task(self._send_forever(conn))
        try:
            async for message in ws:
                await self._on_client_message(conn, message)
        except websockets.ConnectionClosed:
            pass
        finally:
            age_limit.cancel()
            sender.cancel()
            self._connections.pop(conn.number, None)
            self._record_close(conn)

    async def _send_forever(self, conn: _Connection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                data, text = await conn.queue.get()
                await conn.ws.send(data, text=text)
                conn.frames_sent += 1

    async def _on_client_message(self, conn: _Connection, message: str | bytes) -> None:
        """``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``: always acknowledged."""
        try:
            request = msgspec.json.decode(message)
            method, request_id = request["method"], request.get("id")
            params = [str(p) for p in request.get("params", [])]
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
            await conn.ws.send('{"error":{"code":2,"msg":"Invalid request"},"id":null}')
            return
        if method == "SUBSCRIBE":
            conn.streams.extend(p for p in params if p not in conn.streams)
        elif method == "UNSUBSCRIBE":
            conn.streams[:] = [s for s in conn.streams if s not in params]
        result: Any = list(conn.streams) if method == "LIST_SUBSCRIPTIONS" else None
        await conn.ws.send(self._encoder.encode({"result": result, "id": request_id}), text=True)

    def _record_close(self, conn: _Connection) -> None:
        protocol = conn.ws.protocol
        conn.closed_at = time.time()
        conn.code = conn.code or conn.ws.close_code  # ours, if the client never answered
        if conn.we_closed is not None:
            conn.closed_by = conn.we_closed
        elif protocol.close_rcvd is not None and protocol.close_rcvd_then_sent:
            conn.closed_by = "client"
        else:
            conn.closed_by = "abort"

    async def _close_one(self, conn: _Connection, code: int, reason: str) -> None:
        if conn.we_closed is None:
            conn.we_closed = "server"
            conn.code = code
        await conn.ws.close(code, reason)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._fault_tasks.add(task)
        task.add_done_callback(self._fault_tasks.discard)

    # -- faults ---------------------------------------------------------------------------

    def stall(self, seconds: float | None = None) -> None:
        """Keep every connection open but send no market data (until ``resume``)."""
        self._stalled = True
        if seconds is not None:
            asyncio.get_running_loop().call_later(float(seconds), self.resume)

    def resume(self) -> None:
        self._stalled = False

    def drop(self) -> None:
        """Cut every connection without a close frame (the client sees 1006)."""
        for conn in list(self._connections.values()):
            conn.we_closed = "abort"
            if conn.ws.transport is not None:
                conn.ws.transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close every connection with ``code``."""
        conns = list(self._connections.values())
        await asyncio.gather(*(self._close_one(c, int(code), reason) for c in conns))

    def garbage(self, count: int = 1) -> None:
        """Send ``count`` bad frames to every market connection, cycling through the kinds."""
        for conn in list(self._connections.values()):
            if conn.market:
                for n in range(int(count)):
                    data, text = self._garbage_frame(GARBAGE_KINDS[n % len(GARBAGE_KINDS)], conn)
                    self._enqueue(conn, [data], text=text)

    def _garbage_frame(self, kind: str, conn: _Connection) -> tuple[bytes, bool]:
        stream = next((s for s in conn.streams if s.startswith("!markPrice")), "!markPrice@arr")

        def wrap(rows: Any) -> bytes:
            body = {"stream": stream, "data": rows} if conn.wrapped else rows
            return self._encoder.encode(body)

        # A real row that changes nothing: the newest values again, same event time.
        good = next(iter(self.last_mark.values()), None)
        if kind == "not-json":
            return b'{"stream": "!markPrice@arr@1s", "data": [{"e": "markPri', True
        if kind == "scalar":
            return b"42", True
        if kind == "wrong-shape":
            return wrap({"unexpected": "object"}), True
        if kind == "mixed-rows":
            bad = {"e": "markPriceUpdate", "E": "yesterday", "s": "BADUSDT"}
            return wrap([good, bad] if good else [bad]), True
        if kind == "bad-decimal":
            # A symbol of its own each time: the daemon checks decimals when it publishes,
            # so two bad rows of one symbol within a write interval would count once.
            self._garbage_serial += 1
            row = dict(good or {}) | {"s": f"BAD{self._garbage_serial}USDT", "p": "abc", "E": 1}
            return wrap([row]), True
        return b"\x00\xff\xfe garbage \x81", False  # binary, not JSON

    def pause_ticks(self) -> None:
        """Freeze the market: no new tick until ``resume_ticks`` (connections stay open)."""
        self._paused = True

    def resume_ticks(self) -> None:
        self._paused = False

    def diverge(self, symbol: str, **overrides: Any) -> None:
        """Make REST disagree with the stream for ``symbol``.

        Keys are premiumIndex fields (``lastFundingRate="0.001"``, ``markPrice=...``,
        ``nextFundingTime=...``) or ``mark_pct`` (float, percent added to the mark price).
        """
        self._divergence[symbol] = overrides

    def clear_divergence(self) -> None:
        self._divergence.clear()

    def phantom(self, symbol: str) -> None:
        """List ``symbol`` on REST ``exchangeInfo`` as a TRADING perpetual that never streams
        (a coverage gap: the exchange trades it, the state file never hears of it)."""
        self._phantoms.add(symbol)

    def rest_fault(self, status: int = 429, count: int = 1, retry_after: float | None = 1) -> None:
        """Answer the next ``count`` REST requests with ``status`` (429, 418, 500...)."""
        for _ in range(int(count)):
            self._rest_faults.append((int(status), retry_after))

    def stats(self) -> dict[str, Any]:
        return {
            "ticks": self.tick_count,
            "stalled": self._stalled,
            "paused": self._paused,
            "open_connections": len(self._connections),
            "rest_requests": self.rest_requests,
            "connections": [conn.describe() for conn in self._history],
        }

    # -- REST -----------------------------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path.startswith("/_sim/"):
            return await self._control(ws, parts.path.removeprefix("/_sim/"), query)
        if parts.path.startswith("/fapi/"):
            self.rest_requests += 1
            return self._rest(ws, parts.path, query)
        if parts.path.startswith(("/market/", "/stream", "/ws")):
            return None  # the WebSocket handshake goes on
        return _json(ws, HTTPStatus.NOT_FOUND, {"code": -1, "msg": "Not found"})

    def _rest(self, ws: ServerConnection, path: str, query: dict[str, str]) -> Response:
        if self._rest_faults:
            status, retry_after = self._rest_faults.popleft()
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            body = {"code": -1003, "msg": f"simulated HTTP {status}"}
            return _json(ws, status, body, headers)
        symbol = query.get("symbol")
        routes: dict[str, tuple[int, Callable[[], Any]]] = {
            "/fapi/v1/ping": (1, dict),
            "/fapi/v1/time": (1, lambda: {"serverTime": int(time.time() * 1000)}),
            "/fapi/v1/premiumIndex": (1 if symbol else 10, lambda: self._premium_index(symbol)),
            "/fapi/v1/ticker/24hr": (1 if symbol else 40, lambda: self._ticker_24hr(symbol)),
            "/fapi/v1/exchangeInfo": (1, self._exchange_info),
        }
        if path not in routes:
            return _json(ws, HTTPStatus.NOT_FOUND, {"code": -1, "msg": "Not found"})
        weight, build = routes[path]
        used = self._use_weight(weight)
        try:
            body = build()
        except KeyError:
            return _json(ws, HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."})
        return _json(ws, HTTPStatus.OK, body, {"X-MBX-USED-WEIGHT-1m": str(used)})

    def _use_weight(self, weight: int) -> int:
        now = time.monotonic()
        self._weights.append((now, weight))
        while self._weights and self._weights[0][0] < now - 60:
            self._weights.popleft()
        return sum(w for _, w in self._weights)

    def _premium_index(self, symbol: str | None) -> Any:
        if symbol is not None:
            return self._premium_row(self.last_mark[symbol])
        return [self._premium_row(row) for row in self.last_mark.values()]

    def _premium_row(self, row: dict[str, Any]) -> dict[str, Any]:
        answer = {
            "symbol": row["s"],
            "markPrice": row["p"],
            "indexPrice": row["i"],
            "estimatedSettlePrice": row["P"],
            "lastFundingRate": row["r"],
            "interestRate": "0.00010000" if row["T"] else "0.00000000",
            "nextFundingTime": row["T"],
            "time": row["E"],
        }
        overrides = dict(self._divergence.get(row["s"], {}))
        pct = overrides.pop("mark_pct", None)
        if pct is not None:
            answer["markPrice"] = _decimal(float(row["p"]) * (1 + float(pct) / 100), 8)
        answer.update(overrides)
        return answer

    def _ticker_24hr(self, symbol: str | None) -> Any:
        rows = [self.last_ticker[symbol]] if symbol is not None else self.last_ticker.values()
        answer = [
            {
                "symbol": r["s"],
                "priceChange": r["p"],
                "priceChangePercent": r["P"],
                "weightedAvgPrice": r["w"],
                "lastPrice": r["c"],
                "lastQty": r["Q"],
                "openPrice": r["o"],
                "highPrice": r["h"],
                "lowPrice": r["l"],
                "volume": r["v"],
                "quoteVolume": r["q"],
                "openTime": r["O"],
                "closeTime": r["C"],
                "firstId": r["F"],
                "lastId": r["L"],
                "count": r["n"],
            }
            for r in rows
        ]
        return answer[0] if symbol is not None else answer

    def _exchange_info(self) -> dict[str, Any]:
        symbols = [
            {
                "symbol": i.symbol,
                "pair": i.pair,
                "contractType": "PERPETUAL",
                "status": "TRADING" if i.funding_scheduled else "SETTLING",
                "quoteAsset": "USD" if i.contract_type == 2 else "USDT",
                "underlyingType": "COMMODITY" if i.symbol == TRADFI_SYMBOL else "COIN",
            }
            for i in self._market.instruments
        ]
        symbols += [
            {"symbol": name, "pair": name, "contractType": "PERPETUAL", "status": "TRADING"}
            for name in sorted(self._phantoms)
        ]
        return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "symbols": symbols}

    async def _control(self, ws: ServerConnection, name: str, query: dict[str, str]) -> Response:
        # Every parameter is bounded: a control call must never block the simulator for
        # minutes or eat gigabytes (garbage?count=3000000), nor end in a 500.
        q = _Query(query)
        faults: dict[str, Callable[..., Any]] = {
            "stall": lambda: self.stall(q.number("seconds", None, 0, 3600)),
            "resume": self.resume,
            "drop": self.drop,
            "close": lambda: self.close(q.close_code(), q.text("reason", "", 123)),
            "garbage": lambda: self.garbage(int(q.number("count", 1, 1, MAX_GARBAGE))),
            "pause": self.pause_ticks,
            "unpause": self.resume_ticks,
            "diverge": lambda: self.diverge(q.text("symbol", None, 64), **q.overrides()),
            "clear_divergence": self.clear_divergence,
            "phantom": lambda: self.phantom(q.text("symbol", None, 64)),
            "rest_fault": lambda: self.rest_fault(
                int(q.number("status", 429, 400, 599)),
                int(q.number("count", 1, 1, 1000)),
                q.number("retry_after", 1, 0, 3600),
            ),
            "stats": self.stats,
        }
        if name not in faults:
            known = ", ".join(sorted(faults))
            return _json(
                ws, HTTPStatus.NOT_FOUND, {"error": f"unknown fault {name!r}; try {known}"}
            )
        try:
            result = faults[name]()
            if asyncio.iscoroutine(result):
                result = await result
        except ValueError as exc:
            return _json(ws, HTTPStatus.BAD_REQUEST, {"error": f"bad parameters: {exc}"})
        return _json(ws, HTTPStatus.OK, result if result is not None else {"ok": True})


def _mini(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("E", "s", "c", "o", "h", "l", "v", "q")
    return {"e": "24hrMiniTicker", **{k: row[k] for k in keys}}


MAX_GARBAGE = 1000  # bad frames per /_sim/garbage call
DIVERGE_FIELDS = ("markPrice", "lastFundingRate", "nextFundingTime", "indexPrice", "mark_pct")
# Close codes a server may send (RFC 6455 7.4): the defined ones, and 3000-4999.
SENDABLE_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, *range(3000, 5000)}


class _Query:
    """Validated access to a control call's query string; every failure is a ValueError."""

    def __init__(self, query: dict[str, str]) -> None:
        self.query = query

    def number(self, name: str, default: float | None, low: float, high: float) -> Any:
        raw = self.query.get(name)
        if raw in (None, "", "none"):
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}={raw[:40]!r} is not a number") from None
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}")
        return value

    def text(self, name: str, default: str | None, limit: int) -> str:
        value = self.query.get(name, default)
        if value is None:
            raise ValueError(f"{name} is required")
        if len(value.encode()) > limit:
            raise ValueError(f"{name} is longer than {limit} bytes")
        return value

    def close_code(self) -> int:
        code = int(self.number("code", 1000, 1000, 4999))
        if code not in SENDABLE_CLOSE_CODES:
            raise ValueError(f"code {code} is not a close code a server may send")
        return code

    def overrides(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.query.items() if k != "symbol"}
        unknown = sorted(set(fields) - set(DIVERGE_FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {unknown[:5]}; use {', '.join(DIVERGE_FIELDS)}")
        values = {name: self.text(name, None, 64) for name in fields}
        if "mark_pct" in values:
            values["mark_pct"] = self.number("mark_pct", 0, -100, 100)
        return values


def _json(
    ws: ServerConnection, status: int, body: Any, headers: dict[str, str] | None = None
) -> Response:
    response = ws.respond(status, "")
    payload = msgspec.json.encode(body)
    response.body = payload
    extra = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
    for name, value in (extra | (headers or {})).items():
        if name in response.headers:  # Headers is a multidict: replace, do not add
            del response.headers[name]
        response.headers[name] = value
    return response


async def finish_leftover_tasks() -> None:
    """Cancel every other task of the running loop and wait for them: what ``asyncio.run``
    does on its way out, for a loop run by hand.

    A connection accepted while a websockets server closes still has a handler task after
    ``wait_closed()`` (Python 3.11's ``asyncio.Server.wait_closed`` does not wait for it);
    left pending, it is destroyed with the loop ("Task was destroyed but it is pending").
    """
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a background thread (for tests).

    ``call("stall")`` runs a fault method in the simulator's loop and returns its result.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.sim = Simulator(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        self._run(self.sim.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self.sim.stop())
        finally:
            with contextlib.suppress(Exception):  # the stop's own error is the one to see
                self._run(finish_leftover_tasks())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.sim, name)

        async def invoke() -> Any:
            result = method(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result

        return self._run(invoke())

    def snapshot(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], int]:
        """Copies of the last mark and ticker rows sent, and the tick count, taken atomically."""

        async def take() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], int]:
            return dict(self.sim.last_mark), dict(self.sim.last_ticker), self.sim.tick_count

        taken: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], int]
        taken = self._run(take())
        return taken

    @property
    def port(self) -> int:
        return self.sim.port

    def ws_url(self, path: str = "/market/stream") -> str:
        return self.sim.ws_url(path)

    def rest_url(self) -> str:
        return self.sim.rest_url()
