"""The publish path: rows become entries frame by frame, column by column.

Every expectation here is built from the raw rows alone (a model of the merge, entries made
by keyword from the row dicts, a regex for decimals), never from what ``market`` computes.
"""

from __future__ import annotations

import json
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_funding_ws import market
from binance_funding_ws.frames import DecodedFrame, FrameDecoder
from binance_funding_ws.market import MarketBook
from binance_funding_ws.state import (
    FundingEntry,
    TickerEntry,
    decode_state,
    encode_state,
    missing_symbols,
)
from factories import DOCS_MARK, DOCS_TICKER, decimal_strings, document, mark, ticker

# Independent oracles for the decimal format: any decimal, and one without leading zeros
# (what a JSON number without an exponent is).
is_decimal = re.compile(r"-?[0-9]+(\.[0-9]+)?").fullmatch
is_canonical = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?").fullmatch

MARK_DECIMALS = ("p", "i", "P", "r")
MARK_OPTIONAL = ("ap",)
TICKER_DECIMALS = ("c", "o", "h", "l", "v", "q", "P")
TICKER_OPTIONAL = ("p", "w")
MINI_DECIMALS = ("c", "o", "h", "l", "v", "q")
# Each row kind's decimal keys: required, optional (may be null or absent).
DECIMAL_KEYS = {
    "markPriceUpdate": (MARK_DECIMALS, MARK_OPTIONAL),
    "24hrTicker": (TICKER_DECIMALS, TICKER_OPTIONAL),
    "24hrMiniTicker": (MINI_DECIMALS, ()),
}
MARK_ERROR = "{} markPriceUpdate skipped: a price or rate is not a decimal"
TICKER_ERROR = "{} 24hrTicker skipped: a value is not a decimal"
MINI_ERROR = "{} 24hrMiniTicker skipped: a value is not a decimal"

BAD_DECIMALS = (
    "1.", ".5", "1e5", "1E5", "", "-", "1,2", "١", "1\n", "NaN", "Infinity", "+1", "1.2.3",
    " 1", "--1", "-.5", "0x10", "1_0", "1.-2", "٣.٥", "1-", "[1]", '"1"',
)  # fmt: skip
LEADING_ZEROS = ("007", "00", "-01.50", "0001.0", "-00")  # decimals, not JSON numbers

# -?(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?
good_decimals = decimal_strings(6, 6, leading_zeros=False)
bad_decimals = st.sampled_from(BAD_DECIMALS)
symbols = st.sampled_from(["AUSDT", "BUSDT", "CUSDT", "DUSDT"])


# Each entry field and the row key it is read from: required ones, then optional ones (None
# when absent). Written out from the exchange docs, not from frames.py.
FUNDING_KEYS = (
    {"mark_price": "p", "index_price": "i", "estimated_settle_price": "P", "funding_rate": "r"}
    | {"next_funding_time": "T", "event_time": "E"},
    {"mark_price_avg": "ap", "contract_type": "st", "pair": "ps"},
)
MINI_KEYS = {"last_price": "c", "open_price": "o", "high_price": "h", "low_price": "l"} | {
    "volume": "v",
    "quote_volume": "q",
    "event_time": "E",
}
TICKER_KEYS = (
    MINI_KEYS | {"price_change_percent": "P"},
    {"price_change": "p", "weighted_avg_price": "w", "trade_count": "n"}
    | {"contract_type": "st", "pair": "ps"},
)


def entry_of(kind: type, keys: tuple[dict, dict], row: dict, received_at: int) -> object:
    required, optional = keys
    values = {name: row[key] for name, key in required.items()}
    values |= {name: row.get(key) for name, key in optional.items()}
    return kind(**values, received_at=received_at)


def funding_entry(row: dict, received_at: int) -> FundingEntry:
    return entry_of(FundingEntry, FUNDING_KEYS, row, received_at)


def ticker_entry(row: dict, received_at: int) -> TickerEntry:
    return entry_of(TickerEntry, TICKER_KEYS, row, received_at)


def mini_ticker_entry(row: dict, received_at: int, previous: TickerEntry | None) -> TickerEntry:
    """A mini ticker replaces prices and volumes; change, percent, count etc. stay as they were."""
    values = {name: row[key] for name, key in MINI_KEYS.items()}
    values["received_at"] = received_at
    if previous is None:
        return TickerEntry(**values)
    return msgspec.structs.replace(previous, **values)


def well_formed(row: dict) -> bool:
    required, optional = DECIMAL_KEYS[row["e"]]
    return all(is_decimal(row[key]) for key in required) and all(
        row.get(key) is None or is_decimal(row[key]) for key in optional
    )


class Model:
    """What the book must publish, from the rows alone.

    Per map, the newest row of each symbol since the last publish is pending (a row with the
    same event time as the held one replaces it; a row older than the pending one, or, with
    none pending, than the published entry, is ignored). At publish, a pending row whose
    decimals are all decimals becomes the entry, with its own frame's arrival time; any other
    is reported once and its symbol keeps what it had.
    """

    def __init__(self) -> None:
        self.funding: dict[str, FundingEntry] = {}
        self.tickers: dict[str, TickerEntry] = {}
        self.pending: dict[str, dict[str, tuple[dict, int]]] = {"funding": {}, "tickers": {}}

    def apply(self, rows: list[dict], received_at: int) -> None:
        for row in rows:
            kind = "funding" if row["e"] == "markPriceUpdate" else "tickers"
            published, pending = getattr(self, kind), self.pending[kind]
            held = pending.get(row["s"])
            if held is not None:
                newest = held[0]["E"]
            else:
                entry = published.get(row["s"])
                newest = -1 if entry is None else entry.event_time
            if row["E"] >= newest:
                pending[row["s"]] = (row, received_at)

    def publish(self) -> list[str]:
        errors = []
        for symbol, (row, received_at) in self.pending["funding"].items():
            if well_formed(row):
                self.funding[symbol] = funding_entry(row, received_at)
            else:
                errors.append(MARK_ERROR.format(symbol))
        for symbol, (row, received_at) in self.pending["tickers"].items():
            if not well_formed(row):
                mini = row["e"] == "24hrMiniTicker"
                errors.append((MINI_ERROR if mini else TICKER_ERROR).format(symbol))
            elif row["e"] == "24hrTicker":
                self.tickers[symbol] = ticker_entry(row, received_at)
            else:
                previous = self.tickers.get(symbol)
                self.tickers[symbol] = mini_ticker_entry(row, received_at, previous)
        for pending in self.pending.values():
            pending.clear()
        return errors


@st.composite
def market_rows(draw: st.DrawFn, damaged: bool = True, mini: bool = True) -> dict:
    """A mark, ticker or mini-ticker row of a small symbol pool, dated in a narrow range (so
    times go up, down and tie), every decimal a string (a few with leading zeros); with
    ``damaged``, some rows carry a value that is not a decimal, required or optional."""
    kinds = ["markPriceUpdate", "24hrTicker"] + ["24hrMiniTicker"] * mini
    kind = draw(st.sampled_from(kinds))
    row: dict = {"e": kind, "E": draw(st.integers(0, 6)), "s": draw(symbols)}
    required, optional = DECIMAL_KEYS[kind]
    for key in required:
        row[key] = draw(good_decimals)
    for key in optional:
        value = draw(st.sampled_from(["absent", "null", "value"]))
        if value != "absent":
            row[key] = draw(good_decimals) if value == "value" else None
    if draw(st.integers(0, 9)) == 0:  # leading zeros: a decimal, not a JSON number
        row[draw(st.sampled_from(required))] = draw(st.sampled_from(LEADING_ZEROS))
    if kind == "markPriceUpdate":
        row["T"] = draw(st.integers(0, 2**45))
    if kind == "24hrTicker":
        row["n"] = draw(st.none() | st.integers(0, 10**9))
    if kind != "24hrMiniTicker" and draw(st.booleans()):
        row |= {"st": draw(st.sampled_from([1, 2])), "ps": row["s"].removesuffix("T")}
    if damaged and draw(st.integers(0, 5)) == 0:
        for key in draw(st.lists(st.sampled_from(required + optional), min_size=1, max_size=2)):
            row[key] = draw(bad_decimals)
    return row


def receive(decoder: FrameDecoder, rows: list[dict], wrapped: bool) -> DecodedFrame:
    body = {"stream": "s", "data": rows} if wrapped else rows
    return decoder.decode(json.dumps(body).encode(), stream="s")


def drifting(rows: list[dict], index: int) -> list[dict]:
    """The rows of the ``index``-th frame, dated 3 ms later a frame: most frames are newer
    than the one before (the merge's fast path), some overlap it (its row-by-row path)."""
    return [{**row, "E": row["E"] + 3 * index} for row in rows]


def assert_readers_accept(book: MarketBook) -> None:
    """The daemon never publishes what a reader (the schema's pattern check) would refuse."""
    doc = document(funding=[])
    doc.funding, doc.tickers = dict(book.funding), dict(book.tickers)
    doc.missing = missing_symbols(doc.funding, doc.tickers)
    assert decode_state(encode_state(doc)) == doc


# -- 1. incremental publishing equals the model of the rows --------------------------------

frame_lists = st.lists(
    st.tuples(st.lists(market_rows(), max_size=6), st.booleans()), min_size=1, max_size=8
)


@settings(max_examples=120, deadline=None)
@given(frame_lists, st.booleans())
def test_every_publish_equals_the_model_of_the_rows_merged_so_far(frames, wrapped):
    """Frames of mark, ticker and mini-ticker rows, some damaged, some mixing kinds or naming
    a symbol twice, published after random frames: after each publish the book holds exactly
    the model's entries (every field, ``received_at`` the winning row's frame's arrival) and
    reports exactly the model's rejected rows."""
    decoder, book, model = FrameDecoder(), MarketBook(), Model()
    for index, (frame_rows, publish_now) in enumerate(frames):
        rows, received_at = drifting(frame_rows, index), 1_000 + 7 * index
        book.apply(receive(decoder, rows, wrapped), received_at)
        model.apply(rows, received_at)
        if publish_now or index == len(frames) - 1:
            assert sorted(book.publish()) == sorted(model.publish())
            assert book.funding == model.funding
            assert book.tickers == model.tickers
            assert not book.has_pending
            assert_readers_accept(book)


@settings(max_examples=75, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(market_rows(damaged=False, mini=False), max_size=6), st.booleans()),
        min_size=1,
        max_size=8,
    ),
)
def test_with_well_formed_rows_publishing_often_or_once_gives_the_same_maps(frames):
    """Without damaged rows (nor mini tickers, which merge into what was published), when the
    book publishes makes no difference: the newest row of each symbol wins either way."""
    decoder, often, once = FrameDecoder(), MarketBook(), MarketBook()
    for index, (rows, publish_now) in enumerate(frames):
        for book in (often, once):
            book.apply(receive(decoder, drifting(rows, index), wrapped=True), 1_000 + index)
        if publish_now:
            assert often.publish() == []
    assert often.publish() == once.publish() == []
    assert often.funding == once.funding
    assert often.tickers == once.tickers


# -- 2. the batch decimal check never accepts what the regex refuses -----------------------

nasty_values = st.one_of(
    good_decimals,
    st.sampled_from(LEADING_ZEROS),
    bad_decimals,
    st.sampled_from(["-0", "0.0", "0", "-0.0", "1e-5", "1E+5", "-Infinity", "null", "1 ", "\t1"]),
    st.text(max_size=6),  # any code point
    st.text(alphabet='0123456789.-,eE+ \n"[]', max_size=8),  # near misses
)


@settings(max_examples=600, deadline=None)
@given(st.lists(nasty_values, min_size=1, max_size=8), st.integers(0, 8))
def test_the_batch_decimal_check_agrees_with_the_regex(values, split):
    """True only when every value is a decimal; False for decimals only when one of them has
    a leading zero (that False sends the caller to the per-row check, which accepts it).
    However the values are cut into columns (empty ones too), the answer is the same."""
    batch = market._all_decimals([values])
    assert market._all_decimals([values[:split], [], values[split:]]) is batch
    if batch:
        assert all(is_decimal(v) for v in values), values
    if all(is_canonical(v) for v in values):
        assert batch, values


@pytest.mark.parametrize(
    "values",
    [
        [""],
        ["1", ""],
        ["1,2"],
        ["1", "2,3"],
        ["1\n"],
        ["١"],
        ["1e5"],
        ["-"],
        ["1."],
        [".5"],
        ["Infinity"],
        ["1", "-", "2"],
        [",", ""],
    ],
)
def test_the_batch_decimal_check_refuses_each_non_decimal(values):
    assert market._all_decimals([values]) is False
    assert market._all_decimals([values[:1], values[1:]]) is False


def test_no_values_are_all_decimals():
    """Vacuously true: "whether every value is a decimal" (a frame of mini tickers only
    has no full-ticker values to check)."""
    assert market._all_decimals([]) is True
    assert market._all_decimals([[], []]) is True


# -- 3. one bad row in a big frame is reported and skipped alone ---------------------------

KINDS = {
    "mark": (mark, "funding", funding_entry, MARK_ERROR, "r"),
    "ticker": (ticker, "tickers", ticker_entry, TICKER_ERROR, "q"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_bad_row_in_a_frame_of_900_is_the_only_one_skipped_and_named(kind):
    make_row, attribute, entry, error, field = KINDS[kind]
    decoder, book = FrameDecoder(), MarketBook()
    names = [f"S{n:03}USDT" for n in range(900)]
    first = [make_row(name, 1_000) for name in names]
    book.apply(receive(decoder, first, wrapped=True), 1_100)
    assert book.publish() == []
    second = [make_row(name, 2_000, c="2.5", p="2.5") for name in names]
    second[450][field] = "1e-4"
    book.apply(receive(decoder, second, wrapped=True), 2_100)
    assert book.publish() == [error.format("S450USDT")]
    published = getattr(book, attribute)
    assert published == {
        name: entry(first[n] if n == 450 else second[n], 1_100 if n == 450 else 2_100)
        for n, name in enumerate(names)
    }


@pytest.mark.parametrize(
    ("kind", "field"), [("mark", "ap"), ("ticker", "p"), ("ticker", "w")]
)  # fmt: skip
def test_an_optional_decimal_may_be_null_or_absent_but_not_malformed(kind, field):
    make_row, attribute, entry, error, _ = KINDS[kind]
    rows = [make_row(name, 5) for name in ("ABSENT", "NULL", "VALUE", "BAD", "EMPTY")]
    rows[0].pop(field, None)
    rows[1][field], rows[2][field], rows[3][field], rows[4][field] = None, "0.5", "0.5.", ""
    book = MarketBook()
    book.apply(receive(FrameDecoder(), rows, wrapped=True), 9)
    assert sorted(book.publish()) == [error.format("BAD"), error.format("EMPTY")]
    published = getattr(book, attribute)
    assert published == {row["s"]: entry(row, 9) for row in rows[:3]}
    name = {"ap": "mark_price_avg", "p": "price_change", "w": "weighted_avg_price"}[field]
    assert [getattr(published[s], name) for s in ("ABSENT", "NULL", "VALUE")] == [None, None, "0.5"]


# -- 4. frames partly superseded ----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("later", "winner"), [(20, 2), (10, 2), (5, 1)])
def test_each_row_of_a_partly_superseded_frame_keeps_its_own_frame(kind, later, winner):
    """Frame 1 holds A, B and C; frame 2 holds B only, newer, as new or older. B comes from
    frame 2 unless it is older; A and C from frame 1; each with its own frame's arrival."""
    make_row, attribute, entry, _, _ = KINDS[kind]
    decoder, book = FrameDecoder(), MarketBook()
    first = [make_row(name, 10, c="1.0", p="1.0") for name in ("A", "B", "C")]
    second = [make_row("B", later, c="2.0", p="2.0")]
    book.apply(receive(decoder, first, wrapped=True), 100)
    book.apply(receive(decoder, second, wrapped=False), 200)
    assert book.publish() == []
    b = entry(second[0], 200) if winner == 2 else entry(first[1], 100)
    assert getattr(book, attribute) == {
        "A": entry(first[0], 100),
        "B": b,
        "C": entry(first[2], 100),
    }


# -- 5. entries are built field by field as the schema orders them -------------------------


def test_a_row_with_every_field_becomes_the_entry_built_by_keyword():
    full_mark = {**DOCS_MARK, "ap": "11794.1", "st": 2, "ps": "BTCUSD", "s": "BTCUSD_PERP"}
    full_ticker = {**DOCS_TICKER, "st": 2, "ps": "BTCUSD", "s": "BTCUSD_PERP"}
    book = MarketBook()
    book.apply(receive(FrameDecoder(), [full_ticker, full_mark], wrapped=True), 77)
    assert book.publish() == []
    assert book.funding == {"BTCUSD_PERP": funding_entry(full_mark, 77)}
    assert book.tickers == {"BTCUSD_PERP": ticker_entry(full_ticker, 77)}
    assert msgspec.structs.asdict(book.funding["BTCUSD_PERP"]) == {
        "mark_price": "11794.15000000",
        "index_price": "11784.62659091",
        "estimated_settle_price": "11784.25641265",
        "funding_rate": "0.00038167",
        "next_funding_time": 1562306400000,
        "event_time": 1562305380000,
        "received_at": 77,
        "mark_price_avg": "11794.1",
        "contract_type": 2,
        "pair": "BTCUSD",
    }
    # What readers decode (patterns checked) is what the book holds.
    funding = msgspec.json.decode(msgspec.json.encode(book.funding), type=dict[str, FundingEntry])
    tickers = msgspec.json.decode(msgspec.json.encode(book.tickers), type=dict[str, TickerEntry])
    assert (funding, tickers) == (book.funding, book.tickers)
