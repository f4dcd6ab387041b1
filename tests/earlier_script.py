"""A stand-in of the earlier script, for the deploy-over-it test
(tests/system/test_deploy_on_droplets.py).

It runs on the droplet's own python3 (standard library only) as the earlier script ran: as
``binance-funding-ws.service``, user ``trader``, keeping the same state file in its format
(``{"connection_status": ..., "tickers": {SYMBOL: raw 24hrTicker row}, "funding": {SYMBOL:
raw markPriceUpdate row}}``), written with ``json.dump(indent=2)`` to ``.funding_state.tmp``
and renamed over the file. Its rows are made up here (no network) with the current time as
their event time, for symbols the simulator also serves.

    python3 earlier_script.py /home/trader/volume-spike-bot/.funding_state.json
"""

import json
import os
import sys
import time

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
INTERVAL = 0.5  # seconds between writes


def mark_row(symbol: str, now: int) -> dict:
    return {
        "e": "markPriceUpdate",
        "E": now,
        "s": symbol,
        "p": "101.50000000",
        "i": "101.40000000",
        "P": "101.45000000",
        "r": "0.00010000",
        "T": now - now % 28_800_000 + 28_800_000,
    }


def ticker_row(symbol: str, now: int) -> dict:
    return {
        "e": "24hrTicker",
        "E": now,
        "s": symbol,
        "p": "1.5",
        "P": "1.50",
        "w": "100.8",
        "c": "101.5",
        "Q": "10",
        "o": "100.0",
        "h": "102.0",
        "l": "99.0",
        "v": "10000",
        "q": "1008000",
        "O": now - 86_400_000,
        "C": now,
        "F": 0,
        "L": 18150,
        "n": 18151,
    }


def write(path: str, content: dict) -> None:
    temporary = os.path.join(os.path.dirname(path), ".funding_state.tmp")
    with open(temporary, "w") as out:
        json.dump(content, out, indent=2)
    os.replace(temporary, path)


def main() -> None:
    path = sys.argv[1]
    while True:
        now = int(time.time() * 1000)
        write(
            path,
            {
                "connection_status": {"connected": True, "last_update": now, "pid": os.getpid()},
                "tickers": {symbol: ticker_row(symbol, now) for symbol in SYMBOLS},
                "funding": {symbol: mark_row(symbol, now) for symbol in SYMBOLS},
            },
        )
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
