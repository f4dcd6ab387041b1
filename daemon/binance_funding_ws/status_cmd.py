"""``binance-funding-ws status``: is the state file trustworthy right now?

Exit codes: 0 healthy, 1 degraded, 2 missing or unreadable — usable from cron, Nagios or an
Ansible task. ``--json`` prints the same facts for machines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

import msgspec

from binance_funding_ws.health import Health, assess, format_age, name_list
from binance_funding_ws.state import StateDocument, StateFileError, now_ms, read_state

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_UNREADABLE = 0, 1, 2


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    path = Path(args.state_file)
    try:
        document = read_state(path)
    except StateFileError as exc:
        if args.json:
            _print_json(out, {"healthy": False, "exit_code": EXIT_UNREADABLE, "error": str(exc)})
        else:
            print(f"binance-funding-ws status: UNREADABLE: {exc}", file=out)
        return EXIT_UNREADABLE
    now = now_ms()
    health = assess(document, now, args.max_age)
    code = EXIT_HEALTHY if health.healthy else EXIT_DEGRADED
    if args.json:
        _print_json(out, _as_json(document, health, code, path))
    else:
        out.write(render_text(document, health, path, args.max_age))
    return code


def _print_json(out: TextIO, value: object) -> None:
    out.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")


def _as_json(document: StateDocument, health: Health, code: int, path: Path) -> dict:
    status = document.connection_status
    return {
        "healthy": health.healthy,
        "exit_code": code,
        "state_file": str(path),
        "problems": health.problems,
        "state": health.state,
        "last_message_age_s": health.message_age,
        "last_write_age_s": health.write_age,
        "funding_symbols": health.funding_count,
        "ticker_symbols": health.ticker_count,
        "no_ticker": health.no_ticker,
        "no_funding": health.no_funding,
        "stale_funding": dict(health.stale_funding),
        "stale_tickers": len(health.stale_tickers),
        "connection_status": status,
    }


def _clock(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch_ms / 1000))


def render_text(document: StateDocument, health: Health, path: Path, max_age: float) -> str:
    status = document.connection_status
    verdict = "HEALTHY" if health.healthy else "DEGRADED"
    since = status.connected_since if status.state == "connected" else status.state_since
    age = format_age((now_ms() - since) / 1000)
    message_age = "never" if health.message_age is None else f"{format_age(health.message_age)} ago"
    lines = [
        f"binance-funding-ws status: {verdict}  ({path})",
        *(f"  problem     {problem}" for problem in health.problems),
        f"  feed        {status.state} since {_clock(since)} ({age}), pid {status.pid}",
        f"  url         {status.url}",
        f"  last data   {message_age}; file written {format_age(health.write_age)} ago",
        f"  symbols     funding {health.funding_count}, tickers {health.ticker_count}",
        f"  no ticker   {name_list(health.no_ticker)}",
        f"  no funding  {name_list(health.no_funding)}",
        f"  counters    messages {status.messages}, reconnects {status.reconnects}, "
        f"stalls {status.stalls}, rotations {status.rotations}, errors {status.errors}, "
        f"write errors {status.write_errors}",
    ]
    if status.last_error:
        lines.append(f"  last error  {status.last_error} ({_clock(status.last_error_at)})")
    if status.hint:
        lines.append(f"  hint        {status.hint}")
    stale = [f"{symbol} ({format_age(age)})" for symbol, age in health.stale_funding]
    lines.append(f"  stale       funding entries older than {max_age:g} s: {name_list(stale)}")
    lines.append(
        f"              ticker entries older than {max_age:g} s: {len(health.stale_tickers)}"
    )
    return "\n".join(lines) + "\n"
