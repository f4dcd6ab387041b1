"""``binance-funding-ws compare``: the state file against the REST API, as a repeatable report.

One ``GET /fapi/v1/premiumIndex`` (weight 10) covers every symbol. The file and the REST
answer are never from the same instant, so the symbols that differ while their two readings
are from different moments are re-checked together, once: the state file is re-read until
every suspect's entry is at least as new as the first answer (a few seconds at most), then a
second all-symbol call (weight 10): the two answers bracket the file's instant. A round costs
two calls whatever the number of suspects. An entry that never catches up is *stale* (the
daemon stalled or stopped mid-round) and is reported as not compared, never as a mismatch.

Exit codes: 0 every compared symbol within tolerance; 1 any is not (named), or nothing could
be compared; 2 the state file or the REST API cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import msgspec

from binance_funding_ws.argtypes import (
    DEFAULT_MAX_AGE,
    add_max_age,
    add_state_file,
    http_url,
    options_from,
    percent,
    seconds,
    symbols,
)
from binance_funding_ws.clock import now_ms
from binance_funding_ws.compare import (
    Report,
    as_json,
    caught_up,
    first_pass,
    settle,
)
from binance_funding_ws.compare import render_text as render_report
from binance_funding_ws.health import assess
from binance_funding_ws.rest import DEFAULT_REST_URL, PremiumIndex
from binance_funding_ws.state import DEFAULT_STATE_FILE, StateDocument, StateFileError, read_state
from binance_funding_ws.text import error_line
from binance_funding_ws.tools.rest import RestClient, RestError

EXIT_MATCH, EXIT_MISMATCH, EXIT_UNREADABLE = 0, 1, 2
RECHECK_WAIT = 3.0  # seconds the file gets to catch up with the REST answer (writes: 1 s)
POLL_INTERVAL = 0.05  # seconds between reads of the state file while it catches up
PROG = "binance-funding-ws compare"


@dataclass(frozen=True)
class CompareOptions:
    state_file: Path
    rest_url: str = DEFAULT_REST_URL
    symbols: list[str] | None = None  # None: every symbol
    mark_tolerance_pct: float = 0.05
    max_age: float = DEFAULT_MAX_AGE
    timeout: float = 10.0
    json: bool = False
    output: Path | None = None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    compare = sub.add_parser("compare", help="compare the state file with the REST API; exit 0/1/2")
    add_state_file(compare, DEFAULT_STATE_FILE, "state file to read [%(default)s]")
    compare.add_argument(
        "--symbols",
        type=symbols,
        default=None,
        metavar="SYMBOL,...|all",
        help="symbols to compare [all]",
    )
    add_rest_arguments(compare, seconds(*TIMEOUT_BOUNDS))
    add_max_age(compare)
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    compare.add_argument("--output", type=Path, help="also write the report to this file")
    return compare


TIMEOUT_BOUNDS = (0.1, 300.0)
TIMEOUT_DURATION = seconds(*TIMEOUT_BOUNDS)


def add_rest_arguments(
    parser: argparse.ArgumentParser, timeout: Callable[[str], float] = TIMEOUT_DURATION
) -> None:
    """The REST side of a compare round (``compare`` and ``audit``); ``timeout`` parses the
    HTTP timeout (``compare`` keeps plain seconds, as ``status`` and ``run`` take them)."""
    parser.add_argument(
        "--rest-url", type=http_url, default=DEFAULT_REST_URL, help="REST API [%(default)s]"
    )
    parser.add_argument(
        "--mark-tolerance-pct",
        type=percent,
        default=0.05,
        help="largest acceptable mark-price difference, in percent [%(default)s]",
    )
    parser.add_argument(
        "--timeout",
        type=timeout,
        default=10.0,
        help="time allowed per REST request in all (connection, headers and answer), "
        "0.1 to 300 s [%(default)s]",
    )


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return run(options_from(CompareOptions, args))


def run(options: CompareOptions, out: TextIO = sys.stdout) -> int:
    try:
        report = build_report(options)
    except (StateFileError, RestError) as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        if options.json:  # --json always prints JSON, a failure included
            failure = {"exit_code": EXIT_UNREADABLE, "error": str(exc)}
            out.write(msgspec.json.encode(failure).decode() + "\n")
        return EXIT_UNREADABLE
    text = (
        msgspec.json.format(msgspec.json.encode(as_json(report))).decode() + "\n"
        if options.json
        else render_report(report)
    )
    out.write(text)
    if options.output is not None:
        try:
            options.output.write_text(text)
        except OSError as exc:
            message = f"cannot write {options.output}: {exc.strerror or exc}"
            print(error_line(PROG, message), file=sys.stderr)
            return EXIT_UNREADABLE
    return report.exit_code


def build_report(options: CompareOptions) -> Report:
    client = RestClient(options.rest_url, timeout=options.timeout, attempts=3)
    report = compare_round(
        options.state_file, client, options.symbols, options.mark_tolerance_pct, options.max_age
    )
    report.rest_weight = client.used_weight
    return report


def compare_round(
    path: Path,
    client: RestClient,
    symbols: list[str] | None,
    tolerance_pct: float,
    max_age: float,
    wait: float = RECHECK_WAIT,
) -> Report:
    """One compare round: at most two all-symbol REST calls (weight 20), whatever the number
    of suspects. Raises :class:`StateFileError` or :class:`RestError`."""
    document = read_state(path)
    before = _by_symbol(client.premium_index())
    report = Report(
        state_file=str(path),
        rest_url=client.base_url,
        tolerance_pct=tolerance_pct,
        requested="all" if symbols is None else ",".join(symbols),
        health=assess(document, now_ms(), max_age),
        stale_wait_s=wait,
    )
    first_pass(report, document, before, symbols)
    suspects = report.suspects()
    if suspects:
        later = _file_past(path, suspects, wait) or document
        settle(report, later, before, _by_symbol(client.premium_index()))
    return report


def _by_symbol(rows: list[PremiumIndex]) -> dict[str, PremiumIndex]:
    return {row.symbol: row for row in rows}


def _file_past(path: Path, targets: dict[str, int], wait: float) -> StateDocument | None:
    """The state file once every target's entry is at least as new as its REST time, or the
    newest readable one when ``wait`` seconds run out (a stalled or stopped daemon)."""
    deadline = time.monotonic() + wait
    latest = None
    while True:
        with contextlib.suppress(StateFileError):  # replaced or briefly missing: read again
            latest = read_state(path)
        if latest is not None and caught_up(latest, targets):
            return latest
        if time.monotonic() > deadline:
            return latest
        time.sleep(POLL_INTERVAL)
