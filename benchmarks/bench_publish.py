"""Micro-benchmark: the publish path's steps, and the alternatives tried for issue #15.

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
from operator import attrgetter

import msgspec

from binance_funding_sim.server import TRADFI_SYMBOL, SimulatorConfig, _Market
from binance_funding_ws import market
from binance_funding_ws.frames import FrameDecoder, MarkPriceRow, TickerRow, expand
from binance_funding_ws.market import MarketBook

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


class RawMark(msgspec.Struct, tag_field="e", tag="markPriceUpdate", frozen=True, gc=False):
    """Tried: keep each value's JSON bytes, to splice them into the output unparsed."""

    event_time: int = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    mark_price: msgspec.Raw = msgspec.field(name="p")
    index_price: msgspec.Raw = msgspec.field(name="i")
    estimated_settle_price: msgspec.Raw = msgspec.field(name="P")
    funding_rate: msgspec.Raw = msgspec.field(name="r")
    next_funding_time: msgspec.Raw = msgspec.field(name="T")
    mark_price_avg: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="ap")
    contract_type: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="st")
    pair: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="ps")


class _RawMarkFrame(msgspec.Struct):
    stream: str
    data: list[RawMark]


class _PlainFunding(msgspec.Struct, gc=False):
    """Tried: a twin of FundingEntry without the pattern check, for ``msgspec.convert`` and
    a positional ``map``."""

    mark_price: str
    index_price: str
    estimated_settle_price: str
    funding_rate: str
    next_funding_time: int
    event_time: int
    received_at: int = 0  # rows have none: set after the conversion
    mark_price_avg: str | None = None
    contract_type: int | None = None
    pair: str | None = None


class _EntryFrame(msgspec.Struct):
    stream: str
    data: list[_PlainFunding]


def measure(args: argparse.Namespace) -> dict[str, float]:
    ticks = live_ticks(args.symbols, args.ticks)
    decoder = FrameDecoder()
    scanned = [[decoder.scan(f) for f in frames] for frames in ticks]
    expanded = [[expand(f) for f in frames] for frames in scanned]
    marks: list[list[MarkPriceRow]] = [[*d[0].mark, *d[1].mark] for d in expanded]
    tickers: list[list[TickerRow]] = [d[2].tickers for d in expanded]  # type: ignore[misc]
    entries = [dict(market._FUNDING.entries(rows, 1, [])) for rows in marks]
    encode = msgspec.json.Encoder().encode
    plain = msgspec.json.decode
    raw_marks = msgspec.json.Decoder(_RawMarkFrame).decode
    to_entries = msgspec.json.Decoder(_EntryFrame).decode

    def whole_tick(tick: int) -> None:
        book = MarketBook()
        for frame in scanned[tick]:
            book.apply(frame, 1)
        book.publish()

    def rename_keys(tick: int) -> object:
        data = ticks[tick][0]
        for wire, name in MARK_KEYS.items():
            data = data.replace(f'"{wire}":'.encode(), f'"{name}":'.encode())
        return to_entries(data)

    names = [f.name for f in msgspec.structs.fields(_PlainFunding)]

    def by_columns(tick: int) -> list:
        rows = marks[tick]
        columns = {n: list(map(attrgetter(n), rows)) for n in names if n != "received_at"}
        columns["received_at"] = [1] * len(rows)
        return list(map(_PlainFunding, *(columns[n] for n in names)))

    steps: dict[str, Callable[[int], object]] = {
        "floor: msgspec.json.decode of the tick's frames": lambda t: [plain(f) for f in ticks[t]],
        "scan (receive path)": lambda t: [decoder.scan(f) for f in ticks[t]],
        "expand (full decode at publish)": lambda t: [expand(f) for f in scanned[t]],
        "decimal check, all rows (_all_decimals)": lambda t: [
            market._all_decimals(market._mark_decimals(marks[t])),
            market._all_decimals(market._ticker_decimals(tickers[t])),
        ],
        "entries: check + build (mark rows)": lambda t: market._FUNDING.entries(marks[t], 1, []),
        "  of which the build (one comprehension)": lambda t: market._funding_entries(marks[t], 1),
        "tried: columns by map(attrgetter) + map(entry)": by_columns,
        "tried: msgspec.convert(from_attributes)": lambda t: msgspec.convert(
            marks[t], list[_PlainFunding], from_attributes=True
        ),
        "encode the mark entries at once": lambda t: encode(entries[t]),
        "tried: encode entry by entry (fragments)": lambda t: [
            encode(e) for e in entries[t].values()
        ],
        "expand, the 900-row mark frame only": lambda t: expand(scanned[t][0]),
        "tried: Raw-typed fields (that frame)": lambda t: raw_marks(ticks[t][0]),
        "tried: rename keys in the bytes, decode entries": rename_keys,
        "the whole merge + publish (no encode, no write)": whole_tick,
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
    print(f"publish path, hot loops: {args.symbols + 3} symbols, ms per live tick (x floor)")
    for name, ms in figures.items():
        print(f"  {name:52s} {ms:7.3f} ms  {ms / floor:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
