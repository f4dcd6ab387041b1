"""Enrich a volume-spike alert with the funding rate and mark price, as the alert bot does.

Needs the simulator (``./scripts/bootstrap.sh demo`` or ``test``). By default it starts its own
simulator and daemon on loopback; ``--ws-url``/``--rest-url`` use a running simulator instead:

    .venv/bin/python examples/enrich_alert.py
    .venv/bin/binance-funding-sim --port 9000 &
    .venv/bin/python examples/enrich_alert.py --ws-url ws://127.0.0.1:9000/market/stream \\
        --rest-url http://127.0.0.1:9000

Three acts, one alert each:

1. the daemon runs: the alert is enriched from the state file (no REST request);
2. the daemon is stopped and its entries age past ``max_age``: the same lookup comes from REST;
3. websocket-only mode (``rest_url=None``): no answer, and the alert goes out without it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from binance_funding_ws import FundingSource, StateFileError, fresh_funding, read_state
from binance_funding_ws.clock import now_ms

MAX_AGE = 1.0  # seconds; the bot would use ~30 (see the README)


def enrich(alert: dict[str, Any], source: FundingSource) -> dict[str, Any]:
    """The bot's side: add what is known, never hold the alert back for it."""
    quote = source.funding(alert["symbol"])
    if quote is None:
        return {**alert, "funding_rate": None, "mark_price": None, "funding_source": None}
    return {
        **alert,
        "funding_rate": quote.funding_rate,  # the exchange's decimal string
        "mark_price": quote.mark_price,
        "funding_source": quote.source,
        "funding_age_s": (now_ms() - quote.event_time) / 1000,
    }


def show(act: str, alert: dict[str, Any]) -> None:
    head = f"{act:<34} {alert['symbol']} volume x{alert['volume_ratio']}"
    if alert["funding_source"] is None:
        print(f"{head} | funding unavailable: alert sent without it", flush=True)
        return
    print(
        f"{head} | funding {alert['funding_rate']} mark {alert['mark_price']} "
        f"(source {alert['funding_source']}, {alert['funding_age_s']:.1f} s old)",
        flush=True,
    )


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"enrich_alert: gave up waiting for {what}")
        time.sleep(0.05)


def entry_fresh(state_file: Path, symbol: str) -> bool:
    """The same rule FundingSource applies, through the plain reader API."""
    try:
        return fresh_funding(read_state(state_file), symbol, MAX_AGE) is not None
    except StateFileError:
        return False


@contextlib.contextmanager
def exchange(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The WebSocket and REST URLs: the ones given, or a simulator of our own."""
    if args.ws_url:
        yield args.ws_url, args.rest_url
        return
    from binance_funding_sim.server import SimulatorConfig, SimulatorThread

    with SimulatorThread(SimulatorConfig(tick=0.25, symbols=20)) as sim:
        yield sim.ws_url(), sim.rest_url()


def start_daemon(ws_url: str, state_file: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "binance_funding_ws", "run", "--ws-url", ws_url]
    command += ["--state-file", str(state_file), "--write-interval", "0.2"]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def run(args: argparse.Namespace, workdir: Path) -> None:
    state_file, stats_file = workdir / "funding_state.json", workdir / "bot-stats.json"
    alert = {"symbol": args.symbol, "volume_ratio": 4.2}
    with exchange(args) as (ws_url, rest_url):
        daemon = start_daemon(ws_url, state_file)
        try:
            wait_until(lambda: entry_fresh(state_file, args.symbol), 30, "the daemon's first file")
            with FundingSource(
                state_file, max_age=MAX_AGE, rest_url=rest_url, stats_file=stats_file
            ) as source:
                show("1. daemon running:", enrich(alert, source))
                daemon.terminate()
                daemon.wait(10)
                wait_until(lambda: not entry_fresh(state_file, args.symbol), 30, "max_age")
                show("2. daemon stopped, file stale:", enrich(alert, source))
            with FundingSource(state_file, max_age=MAX_AGE, rest_url=None) as ws_only:
                show("3. websocket-only, file stale:", enrich(alert, ws_only))
        finally:
            daemon.kill()
            daemon.wait(10)
    print(f"counters, fallback source:  {source.stats}")
    print(f"counters, websocket-only:   {ws_only.stats}")
    print(f"stats file for the report:  {stats_file.read_text().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ws-url", help="a running simulator's stream URL")
    parser.add_argument("--rest-url", help="its REST URL (with --ws-url)")
    parser.add_argument("--symbol", default="BTCUSDT")
    args = parser.parse_args()
    if bool(args.ws_url) != bool(args.rest_url):
        parser.error("--ws-url and --rest-url go together")
    # The INFO line FundingSource logs when fallbacks happened; the simulator's own is noise.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="enrich-alert-") as workdir:
        run(args, Path(workdir))


if __name__ == "__main__":
    main()
