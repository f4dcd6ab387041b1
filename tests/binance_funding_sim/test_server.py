"""The bundled exchange simulator speaks Binance's protocol, over real sockets."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from binance_funding_sim.server import (
    GARBAGE_KINDS,
    SimulatorConfig,
    SimulatorThread,
    finish_leftover_tasks,
)
from binance_funding_ws.frames import FrameDecoder
from daemon_helpers import wait_for

DECIMAL = re.compile(r"^-?[0-9]+\.[0-9]+$")
BOTH = "?streams=!markPrice@arr@1s/!ticker@arr"


@pytest.fixture
def sim():
    config = SimulatorConfig(tick=0.05, symbols=20, ticker_changes=5)
    with SimulatorThread(config) as running:
        yield running


def receive(url: str, count: int, timeout: float = 10) -> list[str | bytes]:
    async def go() -> list[str | bytes]:
        async with connect(url, compression=None) as ws:
            return [await asyncio.wait_for(ws.recv(), timeout) for _ in range(count)]

    return asyncio.run(go())


def get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_combined_stream_ticks_in_several_mark_frames_and_a_partial_ticker(sim):
    frames = [json.loads(f) for f in receive(sim.ws_url() + BOTH, 30)]
    assert {f["stream"] for f in frames} == {"!markPrice@arr@1s", "!ticker@arr"}
    # Group frames by tick (event time).
    ticks: dict[int, list[dict]] = {}
    for frame in frames:
        ticks.setdefault(frame["data"][0]["E"], []).append(frame)
    times = sorted(ticks)
    assert times == sorted(set(times)) and len(times) >= 5
    full = [ticks[t] for t in times[1:-1]]  # the first and last may be cut off
    for tick in full:
        marks = [f["data"] for f in tick if f["stream"] == "!markPrice@arr@1s"]
        tickers = [f["data"] for f in tick if f["stream"] == "!ticker@arr"]
        assert len(marks) == 2, "mark price comes in two frames per tick"
        assert [row["s"] for row in marks[1]] == ["XAUUSDT"], "TradFi in a frame of its own"
        symbols = {row["s"] for frame in marks for row in frame}
        assert len(symbols) == 23 and {"BTCUSD_PERP", "MATICUSDT"} <= symbols
        assert len(tickers) == 1 and len(tickers[0]) == 5, "the ticker array is partial"
        assert "MATICUSDT" not in {row["s"] for row in tickers[0]}
        for row in (r for frame in marks for r in frame):
            assert all(DECIMAL.match(row[k]) for k in "piPr"), row
            assert len(row["p"].split(".")[1]) == 8
            if row["s"] == "BTCUSD_PERP":
                assert (row["st"], row["ps"]) == (2, "BTCUSD")
            elif row["s"] == "MATICUSDT":
                assert (row["T"], row["r"]) == (0, "0.00000000")
            else:
                assert row["st"] == 1 and row["T"] > row["E"]


def test_the_ticker_round_robin_covers_every_symbol_but_the_settling_one(sim):
    frames = [json.loads(f) for f in receive(sim.ws_url("/market/stream?streams=!ticker@arr"), 8)]
    seen = {row["s"] for frame in frames for row in frame["data"]}
    assert len(seen) == 22 and "MATICUSDT" not in seen


def test_raw_stream_sends_bare_arrays(sim):
    frames = [json.loads(f) for f in receive(sim.ws_url("/market/ws/!markPrice@arr@1s"), 4)]
    assert all(isinstance(f, list) and f[0]["e"] == "markPriceUpdate" for f in frames)


def test_daemon_decoder_accepts_every_simulated_frame(sim):
    decoder = FrameDecoder()
    for data in receive(sim.ws_url() + BOTH + "/!miniTicker@arr", 20):
        frame = decoder.decode(data.encode() if isinstance(data, str) else data)
        assert frame.market and not frame.errors


@pytest.mark.parametrize("path", ["/stream", "/ws", "/ws/!markPrice@arr@1s"])
def test_legacy_paths_acknowledge_and_stay_silent(sim, path):
    async def go() -> tuple[str | bytes, bool]:
        async with connect(sim.ws_url(path)) as ws:
            request = {"method": "SUBSCRIBE", "params": ["!markPrice@arr@1s"], "id": 7}
            await ws.send(json.dumps(request))
            ack = await asyncio.wait_for(ws.recv(), 5)
            try:
                await asyncio.wait_for(ws.recv(), 0.6)
            except TimeoutError:
                return ack, True
            return ack, False

    ack, silent = asyncio.run(go())
    assert json.loads(ack) == {"result": None, "id": 7}
    assert silent


def test_subscribe_on_a_market_connection_adds_the_stream(sim):
    async def go() -> set[str]:
        url = sim.ws_url("/market/stream?streams=!ticker@arr")
        async with connect(url) as ws:
            await ws.send(
                json.dumps({"method": "SUBSCRIBE", "params": ["!markPrice@arr"], "id": 1})
            )
            streams = set()
            for _ in range(20):
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                streams.add(message.get("stream", "ack"))
            return streams

    assert asyncio.run(go()) == {"ack", "!ticker@arr", "!markPrice@arr"}


def test_unknown_path_is_404(sim):
    status, _, body = get(sim.rest_url() + "/nope")
    assert status == 404 and body["code"] == -1


def test_premium_index_matches_the_stream_and_counts_weight(sim):
    sim.call("pause_ticks")
    marks, _, _ = sim.snapshot()
    status, headers, rows = get(sim.rest_url() + "/fapi/v1/premiumIndex")
    assert status == 200 and isinstance(rows, list) and len(rows) == len(marks)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-MBX-USED-WEIGHT-1m"] == "10"
    for row in rows:
        sent = marks[row["symbol"]]
        assert row["markPrice"] == sent["p"] and row["lastFundingRate"] == sent["r"]
        assert row["nextFundingTime"] == sent["T"] and row["time"] == sent["E"]
    status, headers, one = get(sim.rest_url() + "/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert status == 200 and one["symbol"] == "BTCUSDT"
    assert headers["X-MBX-USED-WEIGHT-1m"] == "11"
    status, _, error = get(sim.rest_url() + "/fapi/v1/premiumIndex?symbol=NOPEUSDT")
    assert status == 400 and error["code"] == -1121


def test_other_rest_endpoints(sim):
    assert get(sim.rest_url() + "/fapi/v1/ping")[2] == {}
    assert abs(get(sim.rest_url() + "/fapi/v1/time")[2]["serverTime"] - time.time() * 1000) < 5e3
    tickers = get(sim.rest_url() + "/fapi/v1/ticker/24hr")[2]
    assert tickers and all(DECIMAL.match(t["lastPrice"]) for t in tickers)
    info = get(sim.rest_url() + "/fapi/v1/exchangeInfo")[2]
    status = {s["symbol"]: s["status"] for s in info["symbols"]}
    assert status["MATICUSDT"] == "SETTLING" and status["BTCUSDT"] == "TRADING"


def test_divergence_and_rest_faults(sim):
    sim.call("pause_ticks")
    marks, _, _ = sim.snapshot()
    sim.call("diverge", "ETHUSDT", lastFundingRate="0.00500000", mark_pct=1.0)
    row = get(sim.rest_url() + "/fapi/v1/premiumIndex?symbol=ETHUSDT")[2]
    assert row["lastFundingRate"] == "0.00500000"
    assert float(row["markPrice"]) == pytest.approx(float(marks["ETHUSDT"]["p"]) * 1.01)
    sim.call("clear_divergence")
    assert (
        get(sim.rest_url() + "/fapi/v1/premiumIndex?symbol=ETHUSDT")[2]["markPrice"]
        == (marks["ETHUSDT"]["p"])
    )
    status, headers, _ = get(sim.rest_url() + "/_sim/rest_fault?status=429&count=2&retry_after=3")
    assert status == 200
    for _ in range(2):
        status, headers, body = get(sim.rest_url() + "/fapi/v1/ping")
        assert status == 429 and headers["Retry-After"] == "3.0" and body["code"] == -1003
    assert get(sim.rest_url() + "/fapi/v1/ping")[0] == 200


def test_control_endpoint_rejects_unknown_faults(sim):
    status, _, body = get(sim.rest_url() + "/_sim/explode")
    assert status == 404 and "stall" in body["error"]
    status, _, body = get(sim.rest_url() + "/_sim/garbage?count=many")
    assert status == 400


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("garbage?count=3000000", "count must be between 1 and 1000"),
        ("close?code=99999", "code must be between 1000 and 4999"),
        ("close?code=1005", "not a close code"),
        ("close?reason=" + "x" * 200, "reason is longer than 123 bytes"),
        ("stall?seconds=1e308", "seconds must be between 0 and 3600"),
        ("rest_fault?status=200", "status must be between 400 and 599"),
        ("diverge?symbol=BTCUSDT&nonsense=1", "unknown fields"),
        ("diverge?markPrice=1", "symbol is required"),
    ],
)
def test_control_parameters_are_bounded_400_never_500(sim, query, fragment):
    status, _, body = get(sim.rest_url() + "/_sim/" + query)
    assert status == 400 and fragment in body["error"], body
    assert get(sim.rest_url() + "/fapi/v1/ping")[0] == 200  # still serving, at once


async def _first_close(url: str, trigger: Any) -> websockets.ConnectionClosed:
    async with connect(url) as ws:
        await ws.recv()
        trigger()
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return closed
    raise AssertionError("unreachable")


def test_drop_is_an_abnormal_close_and_close_sends_the_code(sim):
    url = sim.ws_url() + BOTH
    dropped = asyncio.run(_first_close(url, lambda: sim.call("drop")))
    assert dropped.rcvd is None  # no close frame: the client sees 1006
    closed = asyncio.run(_first_close(url, lambda: sim.call("close", 1008, "too many")))
    assert closed.rcvd is not None and closed.rcvd.code == 1008 and closed.rcvd.reason == "too many"
    kinds = {c["closed_by"] for c in sim.call("stats")["connections"]}
    assert kinds == {"abort", "server"}


def test_stall_keeps_the_socket_open_and_silent_until_resumed(sim):
    async def go() -> tuple[bool, bool]:
        async with connect(sim.ws_url() + BOTH) as ws:
            await ws.recv()
            sim.call("stall")
            with pytest.raises(TimeoutError):  # drain what was queued, then silence
                while True:
                    await asyncio.wait_for(ws.recv(), 0.5)
            open_while_stalled = ws.state.name == "OPEN"
            sim.call("resume")
            await asyncio.wait_for(ws.recv(), 5)
            return open_while_stalled, True

    assert asyncio.run(go()) == (True, True)


def test_garbage_frames_each_produce_a_decode_error(sim):
    url = sim.ws_url() + BOTH

    async def go() -> list[str | bytes]:
        async with connect(url) as ws:
            sim.call("pause_ticks")
            await asyncio.sleep(0.2)
            while True:  # drain the last tick
                try:
                    await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    break
            sim.call("garbage", len(GARBAGE_KINDS))
            return [await asyncio.wait_for(ws.recv(), 5) for _ in GARBAGE_KINDS]

    frames = asyncio.run(go())
    assert isinstance(frames[-1], bytes), "the last kind is a binary frame"
    decoder = FrameDecoder()
    decoded = [decoder.decode(f.encode() if isinstance(f, str) else f) for f in frames]
    # The bad-decimal row parses (decimals are checked when published); all others fail here.
    assert [bool(d.errors) for d in decoded] == [True, True, True, True, False, True]
    assert decoded[3].mark, "the good row of a mixed frame is kept"
    assert decoded[4].mark[0].mark_price == "abc"


def test_connection_age_limit_closes_with_1000():
    config = SimulatorConfig(tick=0.05, symbols=3, max_connection_age=0.3)
    with SimulatorThread(config) as sim:
        started = time.monotonic()
        closed = asyncio.run(_first_close(sim.ws_url() + BOTH, lambda: None))
        assert closed.rcvd is not None and closed.rcvd.code == 1000
        assert 0.25 < time.monotonic() - started < 3


def test_server_pings_and_the_client_answers():
    with SimulatorThread(SimulatorConfig(tick=0.1, symbols=3, ping_interval=0.1)) as sim:

        async def go() -> None:
            async with connect(sim.ws_url() + BOTH) as ws:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    await asyncio.wait_for(ws.recv(), 5)
                    stats = sim.call("stats")
                    if stats["connections"][0]["ping_latency"] > 0:
                        return
                raise AssertionError("no ping answered")

        asyncio.run(go())


def test_leftover_tasks_are_cancelled_and_finish_their_cleanup():
    # The simulator's thread runs its loop by hand: a handler task that outlived the
    # server's close must end as under asyncio.run, not be destroyed pending with the loop.
    cleaned: list[int] = []

    async def handler(number: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(number)

    async def main() -> None:
        tasks = [asyncio.create_task(handler(number)) for number in range(3)]
        await asyncio.sleep(0)  # each is now waiting
        await finish_leftover_tasks()
        assert all(task.cancelled() for task in tasks)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert sorted(cleaned) == [0, 1, 2]

    asyncio.run(main())


def test_a_client_that_does_not_read_is_closed_with_1008():
    config = SimulatorConfig(tick=0.005, symbols=600, send_queue=4)
    with SimulatorThread(config) as sim:

        async def go() -> None:
            async with connect(sim.ws_url() + BOTH, max_queue=1) as ws:
                await asyncio.sleep(0.1)
                wait_for(
                    lambda: any(c["code"] == 1008 for c in sim.call("stats")["connections"]),
                    20,
                    "the slow client to be closed",
                )
                del ws

        asyncio.run(go())


SIM_COMMAND = [sys.executable, "-m", "binance_funding_sim"]


def test_simulator_command_prints_its_address_and_validates_flags():
    proc = subprocess.Popen(
        [*SIM_COMMAND, "--port", "0", "--symbols", "3", "--tick", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.match(r"simulator listening on ws://127.0.0.1:(\d+)/market/stream", line)
        assert match, line
        frames = receive(f"ws://127.0.0.1:{match[1]}/market/stream{BOTH}", 2)
        assert frames
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([*SIM_COMMAND, "--tick", "0"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "positive" in bad.stderr.strip().splitlines()[-1]
    assert "Traceback" not in bad.stderr
