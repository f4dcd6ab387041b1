"""``binance-funding-ws compare``: the state file against the REST API, as a repeatable report.

One ``GET /fapi/v1/premiumIndex`` (weight 10) covers every symbol. The file and the REST
answer are never from the same instant, so a symbol that differs while its two readings are
from different moments is re-checked once: one single-symbol REST call (weight 1), then the
state file re-read until it holds an update at least as new as that answer (a few seconds at
most), before the difference is reported.

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

from binance_funding_ws.compare import Report, SymbolComparison, as_json, compare_symbol
from binance_funding_ws.compare import render_text as render_report
from binance_funding_ws.health import assess
from binance_funding_ws.rest import PremiumIndex, RestClient, RestError
from binance_funding_ws.state import StateDocument, StateFileError, now_ms, read_state

EXIT_MATCH, EXIT_MISMATCH, EXIT_UNREADABLE = 0, 1, 2
RECHECK_WAIT = 3.0  # seconds to wait for the file to catch up with the REST answer
MAX_RECHECKS = 50  # symbols re-checked at most per run
MAX_CALLS_PER_SYMBOL = 4  # single-symbol REST calls (weight 1) per re-checked symbol


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
    """Compare each suspect again from readings of one instant, if one can be had in time.

    The REST answer and the file's entry are taken from the same exchange tick when their
    times agree. A file behind the answer is waited for; a file ahead of it gets a new answer
    (at most ``MAX_CALLS_PER_SYMBOL``). At the deadline the closest pair found is compared.
    """
    suspects = [c.symbol for c in compared if c.explainable_by_timing][:MAX_RECHECKS]
    if not suspects:
        return compared
    rows: dict[str, PremiumIndex] = {}
    calls = dict.fromkeys(suspects, 0)
    latest: dict[str, SymbolComparison] = {}
    settled: set[str] = set()
    need_answer = list(suspects)
    deadline = time.monotonic() + RECHECK_WAIT
    while True:
        for symbol in need_answer:
            rows[symbol] = client.premium_index_of(symbol)
            calls[symbol] += 1
        funding = read_state(path).funding
        need_answer = []
        for symbol in suspects:
            entry = funding.get(symbol)
            if symbol in settled or entry is None:
                continue
            row = rows[symbol]
            latest[symbol] = compare_symbol(entry, row, tolerance, rechecked=True)
            if entry.event_time == row.time:
                settled.add(symbol)
            elif entry.event_time > row.time and calls[symbol] < MAX_CALLS_PER_SYMBOL:
                need_answer.append(symbol)
        waiting = [s for s in suspects if s not in settled and s in latest]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [latest.get(c.symbol) or c for c in compared]
