"""Micro-benchmark: the receive and publish path's steps, and the alternatives tried.

In one process, on the simulator's own rows for one live tick (903 symbols: two mark-price
frames and a 630-row ticker frame by default), each step is timed over many ticks, best of
``--repeat`` passes, and printed in ms per tick and as a share of the floor (a generic
``msgspec.json.decode`` of the same frames, what ``bench_daemon.py``'s floor does).

Hot loops, no I/O: these figures are lower than the live daemon's (``bench_daemon.py
--live``), where every tick starts with cold caches; they say which step costs what, and
back the "tried and dropped" table of docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_publish.py [--symbols 900] [--ticks 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import msgspec

from binance_funding_sim.server import TRADFI_SYMBOL, SimulatorConfig, _Market
from binance_funding_ws import market
from binance_funding_ws.frames import DecodedFrame, FrameDecoder, MarkPriceRow
from binance_funding_ws.market import MarketBook
from binance_funding_ws.state import (
    SCHEMA_VERSION,
    FundingEntry,
    MissingSymbols,
    StateDocument,
    encode_state,
    encode_state_into,
)
from binance_funding_ws.tracker import ConnectionTracker

STREAMS = ("!markPrice@arr@1s", "!markPrice@arr@1s", "!ticker@arr")
# The exchange's keys of a mark-price row and the state file's names for them.
MARK_KEYS = {
    "p": "mark_price", "i": "index_price", "P": "estimated_settle_price", "r": "funding_rate",
    "T": "next_funding_time", "E": "event_time", "ap": "mark_price_avg", "st": "contract_type",
    "ps": "pair",
}  # fmt: skip


def live_ticks(symbols: int, ticks: int) -> list[list[bytes]]:
    """The frames of ``ticks`` live ticks, as the simulator sends them (its market model is
    private: this is the benchmark's own use of it, no server needed)."""
    model = _Market(SimulatorConfig(symbols=symbols, ticker_changes=int(symbols * 0.7)))
    encode = msgspec.json.Encoder().encode
    frames = []
    for tick in range(ticks):
        _, marks, tickers = model.step(1_700_000_000_000 + 1000 * tick)
        crypto = [row for row in marks if row["s"] != TRADFI_SYMBOL]
        tradfi = [row for row in marks if row["s"] == TRADFI_SYMBOL]
        rows = (crypto, tradfi, tickers)
        frames.append(
            [encode({"stream": s, "data": r}) for s, r in zip(STREAMS, rows, strict=True)]
        )
    return frames


def best_ms(step: Callable[[int], object], ticks: int, repeat: int) -> float:
    """The best pass's time per tick, in ms (best, not mean: the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for tick in range(ticks):
            step(tick)
        best = min(best, time.perf_counter() - start)
    return best / ticks * 1000


# -- the alternatives tried, rebuilt here (the daemon no longer has them) -------------------


class _SlimMark(msgspec.Struct, tag_field="e", tag="markPriceUpdate", gc=False):
    """Tried (the earlier receive path): scan only event time and symbol on arrival..."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")


class _SlimTicker(msgspec.Struct, tag_field="e", tag="24hrTicker", gc=False):
    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")


class _SlimEnvelope(msgspec.Struct):
    """...and decode the frame again, in full, when it is published."""

    stream: str
    data: list[_SlimMark | _SlimTicker]


class _PlainFunding(msgspec.Struct, gc=False):
    """Tried: entries straight from the frame, its keys renamed in the bytes first."""

    mark_price: str
    index_price: str
    estimated_settle_price: str
    funding_rate: str
    next_funding_time: int
    event_time: int
    received_at: int = 0
    mark_price_avg: str | None = None
    contract_type: int | None = None
    pair: str | None = None


class _EntryFrame(msgspec.Struct):
    stream: str
    data: list[_PlainFunding]


def _row_tuples(rows: list[MarkPriceRow]) -> list[str]:
    """Tried: the decimals gathered row by row, each row's as a tuple (the earlier way)."""
    values = [v for r in rows for v in (r.mark_price, r.index_price, r.estimated_settle_price)]
    values += [r.funding_rate for r in rows]
    return values + [r.mark_price_avg for r in rows if r.mark_price_avg is not None]


def _by_keyword(rows: list[MarkPriceRow], received_at: int) -> dict[str, FundingEntry]:
    """Tried: entries built by keyword (the schema type's fields named)."""
    return {
        r.symbol: FundingEntry(
            mark_price=r.mark_price,
            index_price=r.index_price,
            estimated_settle_price=r.estimated_settle_price,
            funding_rate=r.funding_rate,
            next_funding_time=r.next_funding_time,
            event_time=r.event_time,
            received_at=received_at,
            mark_price_avg=r.mark_price_avg,
            contract_type=r.contract_type,
            pair=r.pair,
        )
        for r in rows
    }


def measure(args: argparse.Namespace) -> dict[str, float]:
    ticks = live_ticks(args.symbols, args.ticks)
    decoder = FrameDecoder()
    decoded = [[decoder.decode(f) for f in frames] for frames in ticks]
    marks: list[list[MarkPriceRow]] = [[*d[0].mark, *d[1].mark] for d in decoded]
    columns = [market._FUNDING.decimals(rows) for rows in marks]
    flat = [_row_tuples(rows) for rows in marks]
    plain, slim = msgspec.json.decode, msgspec.json.Decoder(_SlimEnvelope).decode
    to_entries = msgspec.json.Decoder(_EntryFrame).decode
    encode = msgspec.json.Encoder().encode
    books = []
    for frames in decoded:
        book = MarketBook()
        for frame in frames:
            book.apply(frame, 1)
        book.publish()
        books.append(book)
    tracker = ConnectionTracker("ws://bench", 1)
    symbols = set(books[0].funding) | set(books[0].tickers)

    def known_book() -> MarketBook:
        """A book that holds every symbol already, as the daemon's does after its first
        tick: its merges take the fast path. (The symbol set is private: the benchmark's
        own shortcut.)"""
        book = MarketBook()
        book._symbols.update(symbols)
        return book

    def document(tick: int) -> StateDocument:
        book = books[tick]
        return StateDocument(
            schema_version=SCHEMA_VERSION,
            updated_at=1,
            connection_status=tracker.snapshot(),
            funding=book.funding,
            tickers=book.tickers,
            missing=MissingSymbols(no_ticker=[], no_funding=[]),
        )

    buffer = bytearray()

    merging = known_book()

    def merge(book: MarketBook, frames: list[DecodedFrame]) -> None:
        for frame in frames:
            book.apply(frame, 1)
        book._mark.clear()  # (private) what publishing would do after the merges
        book._tickers.clear()

    def whole_tick(tick: int) -> None:
        book = known_book()
        for frame in ticks[tick]:
            book.apply(decoder.decode(frame), 1)
        book.publish()

    def rename_keys(tick: int) -> object:
        data = ticks[tick][0]
        for wire, name in MARK_KEYS.items():
            data = data.replace(f'"{wire}":'.encode(), f'"{name}":'.encode())
        return to_entries(data)

    steps: dict[str, Callable[[int], object]] = {
        "floor: msgspec.json.decode of the tick's frames": lambda t: [plain(f) for f in ticks[t]],
        "decode, typed, once on arrival": lambda t: [decoder.decode(f) for f in ticks[t]],
        "tried: scan on arrival + full decode at publish": lambda t: [
            (slim(f), decoder.decode(f)) for f in ticks[t]
        ],
        "merge (MarketBook.apply of decoded frames)": lambda t: merge(merging, decoded[t]),
        "decimal check, mark rows: gather by field": lambda t: market._FUNDING.decimals(marks[t]),
        "tried: gather row by row (tuples)": lambda t: _row_tuples(marks[t]),
        "decimal check, mark rows: the C-level check": lambda t: market._all_decimals(columns[t]),
        "tried: the check on the flat list": lambda t: market._all_decimals([flat[t]]),
        "entries, mark rows: positional": lambda t: market._funding_entries(
            marks[t], [1] * len(marks[t])
        ),
        "tried: by keyword": lambda t: _by_keyword(marks[t], 1),
        "encode the document into a reused buffer": lambda t: encode_state_into(
            document(t), buffer
        ),
        "tried: encode into fresh bytes (+ newline copy)": lambda t: encode_state(document(t)),
        "tried: encode entry by entry (fragments)": lambda t: [
            encode(e) for e in books[t].funding.values()
        ],
        "tried: rename keys in the bytes, decode entries": rename_keys,
        "the whole receive + merge + publish (no encode)": whole_tick,
    }
    return {name: best_ms(step, len(ticks), args.repeat) for name, step in steps.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=900, help="ordinary contracts [900]")
    parser.add_argument("--ticks", type=int, default=20, help="ticks per pass [20]")
    parser.add_argument("--repeat", type=int, default=7, help="passes; the best counts [7]")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    floor = next(iter(figures.values()))
    print(f"receive and publish path, hot loops: {args.symbols + 3} symbols, ms per live tick")
    for name, ms in figures.items():
        print(f"  {name:52s} {ms:7.3f} ms  {ms / floor:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
