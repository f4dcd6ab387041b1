"""``binance-funding-ws compare``: the state file against the REST API, as a repeatable report.

One ``GET /fapi/v1/premiumIndex`` (weight 10) covers every symbol. The file and the REST
answer are never from the same instant, so a symbol that differs while its two readings are
from different moments is re-checked once: a single-symbol REST call (weight 1), the
state file re-read until it holds an update at least as new as that answer (a few seconds at
most), and a second single-symbol call: the two answers bracket the file's instant.

Exit codes: 0 every compared symbol within tolerance; 1 any is not (named), or nothing could
be compared; 2 the state file or the REST API cannot be read.
"""

from __future__ import annotations

import argparse
import sys
import time
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
from binance_funding_ws.comparison import (
    PremiumIndex,
    Report,
    SymbolComparison,
    as_json,
    bracket,
    compare_symbol,
)
from binance_funding_ws.comparison import render_text as render_report
from binance_funding_ws.health import assess
from binance_funding_ws.state import (
    FundingEntry,
    StateDocument,
    StateFileError,
    now_ms,
    read_state,
)
from binance_funding_ws.text import error_line
from binance_funding_ws.tools.rest import RestClient, RestError
from binance_funding_ws.tools.status import DEFAULT_STATE_FILE

EXIT_MATCH, EXIT_MISMATCH, EXIT_UNREADABLE = 0, 1, 2
RECHECK_WAIT = 3.0  # seconds to wait for the file to catch up with the REST answer
MAX_RECHECKS = 100  # symbols re-checked per run at most (2 single-symbol calls, weight 1 each)
PROG = "binance-funding-ws compare"
DEFAULT_REST_URL = "https://fapi.binance.com"


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


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    compare = sub.add_parser("compare", help="compare the state file with the REST API; exit 0/1/2")
    add_state_file(compare, DEFAULT_STATE_FILE, "state file to read [%(default)s]")
    compare.add_argument(
        "--rest-url", type=http_url, default=DEFAULT_REST_URL, help="REST API [%(default)s]"
    )
    compare.add_argument(
        "--symbols",
        type=symbols,
        default=None,
        metavar="SYMBOL,...|all",
        help="symbols to compare [all]",
    )
    compare.add_argument(
        "--mark-tolerance-pct",
        type=percent,
        default=0.05,
        help="largest acceptable mark-price difference, in percent [%(default)s]",
    )
    add_max_age(compare)
    compare.add_argument(
        "--timeout",
        type=seconds(0.1, 300),
        default=10.0,
        help="HTTP timeout, 0.1 to 300 seconds [%(default)s]",
    )
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    compare.add_argument("--output", type=Path, help="also write the report to this file")
    return compare


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
    path = options.state_file
    document = read_state(path)
    client = RestClient(options.rest_url, timeout=options.timeout)
    rest = {row.symbol: row for row in client.premium_index()}
    tolerance = options.mark_tolerance_pct
    report = Report(
        state_file=str(path),
        rest_url=client.base_url,
        tolerance_pct=tolerance,
        requested="all" if options.symbols is None else ",".join(options.symbols),
        health=assess(document, now_ms(), options.max_age),
    )
    wanted = _wanted(options.symbols, document, rest)
    for symbol in wanted:
        entry, row = document.funding.get(symbol), rest.get(symbol)
        if entry is not None and row is not None:
            report.compared.append(compare_symbol(entry, row, tolerance))
        elif entry is not None:
            report.only_in_state.append(symbol)
        elif row is not None:
            report.only_in_rest.append(symbol)
        else:
            report.in_neither.append(symbol)
    report.compared = _recheck(report.compared, path, client, tolerance)
    report.rest_weight = client.used_weight
    return report


def _wanted(
    symbols: list[str] | None, document: StateDocument, rest: dict[str, PremiumIndex]
) -> list[str]:
    if symbols is None:
        return sorted({*document.funding, *rest})
    return list(dict.fromkeys(symbols))  # keep the order asked for, drop repeats


def _recheck(
    compared: list[SymbolComparison], path: Path, client: RestClient, tolerance: float
) -> list[SymbolComparison]:
    """Re-check each suspect once, from readings that bracket the file's update.

    One REST answer before and one after a fresh state-file entry at least as new as the
    first answer: the exchange's value at the entry's own instant lies between them. The
    entry agrees if it equals either answer (the mark price: is within the tolerance of
    either); it disagrees for certain only if both answers agree with each other and not
    with it. Values that moved between the two answers and match neither are "moving":
    reported, but not as mismatches (running compare again settles them).
    """
    suspects = {c.symbol: c for c in compared if c.explainable_by_timing}
    rechecked: dict[str, SymbolComparison] = {}
    for symbol in list(suspects)[:MAX_RECHECKS]:
        before = client.premium_index_of(symbol)
        entry = _entry_at_least(path, symbol, before.time)
        if entry is None:
            continue  # gone from the file since: keep the first finding
        after = client.premium_index_of(symbol)
        rechecked[symbol] = bracket(entry, before, after, tolerance)
    return [rechecked.get(c.symbol, c) for c in compared]


def _entry_at_least(path: Path, symbol: str, event_time: int) -> FundingEntry | None:
    """The symbol's entry once the file holds an update at least ``event_time`` new."""
    deadline = time.monotonic() + RECHECK_WAIT
    while True:
        entry = read_state(path).funding.get(symbol)
        if entry is None or entry.event_time >= event_time or time.monotonic() > deadline:
            return entry
        time.sleep(0.02)
