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
from pathlib import Path
from typing import TextIO

import msgspec

from binance_funding_ws.compare import (
    Report,
    SymbolComparison,
    as_json,
    bracket,
    compare_symbol,
)
from binance_funding_ws.compare import render_text as render_report
from binance_funding_ws.health import assess
from binance_funding_ws.rest import PremiumIndex, RestClient, RestError
from binance_funding_ws.state import (
    FundingEntry,
    StateDocument,
    StateFileError,
    now_ms,
    read_state,
)

EXIT_MATCH, EXIT_MISMATCH, EXIT_UNREADABLE = 0, 1, 2
RECHECK_WAIT = 3.0  # seconds to wait for the file to catch up with the REST answer
MAX_RECHECKS = 100  # symbols re-checked per run at most (2 single-symbol calls, weight 1 each)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        report = build_report(args)
    except (StateFileError, RestError) as exc:
        print(f"binance-funding-ws compare: error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    text = (
        msgspec.json.format(msgspec.json.encode(as_json(report))).decode() + "\n"
        if args.json
        else render_report(report)
    )
    out.write(text)
    if args.output is not None:
        try:
            args.output.write_text(text)
        except OSError as exc:
            print(
                f"binance-funding-ws compare: error: cannot write {args.output}: "
                f"{exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    return report.exit_code


def build_report(args: argparse.Namespace) -> Report:
    path = Path(args.state_file)
    document = read_state(path)
    client = RestClient(args.rest_url, timeout=args.timeout)
    rest = {row.symbol: row for row in client.premium_index()}
    report = Report(
        state_file=str(path),
        rest_url=client.base_url,
        tolerance_pct=args.mark_tolerance_pct,
        requested="all" if args.symbols is None else ",".join(args.symbols),
        health=assess(document, now_ms(), args.max_age),
    )
    wanted = _wanted(args.symbols, document, rest)
    for symbol in wanted:
        entry, row = document.funding.get(symbol), rest.get(symbol)
        if entry is not None and row is not None:
            report.compared.append(compare_symbol(entry, row, args.mark_tolerance_pct))
        elif entry is not None:
            report.only_in_state.append(symbol)
        elif row is not None:
            report.only_in_rest.append(symbol)
        else:
            report.in_neither.append(symbol)
    report.compared = _recheck(report.compared, path, client, args.mark_tolerance_pct)
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
