"""The market book (:mod:`binance_funding_ws.market`): rows merged newest first, published
frame by frame and column by column, the limits on symbols and on rows from the future, and
the restore of a previous file.

Every expectation here is built from the raw rows alone (a model of the merge, entries made
by keyword from the row dicts, a regex for decimals), never from what ``market`` computes.
"""

from __future__ import annotations

import json
import re
import tracemalloc

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_funding_ws import market
from binance_funding_ws.clock import now_ms
from binance_funding_ws.frames import DecodedFrame, FrameDecoder
from binance_funding_ws.market import MAX_AHEAD_MS, MarketBook, describe_dropped
from binance_funding_ws.state import (
    FundingEntry,
    TickerEntry,
    decode_state,
    encode_state,
    missing_symbols,
)
from factories import (
    DOCS_MARK,
    DOCS_TICKER,
    TEN_YEARS_MS,
    combined,
    decimal_strings,
    document,
    mark,
    marks_frame,
    previous_entry,
    ticker,
)
from strategies import dated_rows, examples, exchange_rows, good_rows

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


@settings(max_examples=examples(120), deadline=None)
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


@settings(max_examples=examples(75), deadline=None)
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


@settings(max_examples=examples(600), deadline=None)
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


# -- merging and publishing, example by example ---------------------------------------------------


def apply_rows(book: MarketBook, decoder: FrameDecoder, stream: str, rows: list, at: int = 1):
    """How many rows the book accepted."""
    return book.apply(decoder.decode(combined(stream, rows)), at).accepted


def test_partial_ticker_arrays_merge_row_by_row(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!ticker@arr", [ticker("AUSDT", 1), ticker("BUSDT", 1)])
    apply_rows(book, decoder, "!ticker@arr", [ticker("BUSDT", 2, c="9.5")])
    book.publish()
    assert set(book.tickers) == {"AUSDT", "BUSDT"}  # AUSDT was not in the latest array
    assert book.tickers["BUSDT"].last_price == "9.5"


def test_mark_price_in_several_frames_per_tick_all_merge(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(f"S{i}USDT", 5) for i in range(745)])
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark("XAUUSDT", 5), mark("BTCUSD_PERP", 5)])
    book.publish()
    assert len(book.funding) == 747
    assert "XAUUSDT" in book.funding and "BTCUSD_PERP" in book.funding


def test_older_rows_never_overwrite_newer(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=20, p="2.0")])
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=10, p="1.0")]) == 0
    book.publish()
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=15, p="1.5")]) == 0
    book.publish()
    assert book.funding["BTCUSDT"].mark_price == "2.0"
    assert apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=20, p="2.0")]) == 1


def test_no_funding_scheduled_rows_are_kept_as_such(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark("MATICUSDT", T=0, r="0.00000000")])
    book.publish()
    entry = book.funding["MATICUSDT"]
    assert entry.next_funding_time == 0 and entry.funding_rate == "0.00000000"
    assert missing_symbols(book.funding, book.tickers).no_ticker == ["MATICUSDT"]


def test_publish_rejects_non_decimal_values_and_keeps_the_previous_entry(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=1, p="100.5")])
    assert book.publish() == []
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark(event_time=2, p="abc")])
    apply_rows(book, decoder, "!ticker@arr", [ticker(c="NaN")])
    errors = book.publish()
    assert len(errors) == 2
    assert book.funding["BTCUSDT"].mark_price == "100.5"
    assert "BTCUSDT" not in book.tickers
    assert not book.has_pending


def test_mini_ticker_updates_prices_and_keeps_change_fields(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!ticker@arr", [ticker(event_time=1)])
    mini = {"e": "24hrMiniTicker", "E": 2, "s": "BTCUSDT", "c": "0.003", "o": "0.0010"}
    mini |= {"h": "0.003", "l": "0.0010", "v": "10001", "q": "19"}
    book.publish()
    apply_rows(book, decoder, "!miniTicker@arr", [mini])
    book.publish()
    entry = book.tickers["BTCUSDT"]
    assert (entry.last_price, entry.price_change_percent, entry.event_time) == (
        "0.003",
        "250.00",
        2,
    )


def test_received_at_is_the_arrival_time(decoder):
    book = MarketBook()
    apply_rows(book, decoder, "!markPrice@arr@1s", [mark()], at=1234)
    book.publish()
    assert book.funding["BTCUSDT"].received_at == 1234


def test_a_row_of_the_wrong_type_is_refused_on_arrival_and_the_rest_published():
    decoder, book = FrameDecoder(), MarketBook()
    good = mark("AUSDT", 5)
    bad = mark("BUSDT", 5, p=123)  # good event type, time and symbol; a number for a price
    frame = decoder.decode(combined("!markPrice@arr@1s", [good, bad]))
    assert [row.symbol for row in frame.mark] == ["AUSDT"]
    assert len(frame.errors) == 1 and "row 1" in frame.errors[0]
    book.apply(frame, 7)
    assert book.publish() == []
    assert list(book.funding) == ["AUSDT"] and book.funding["AUSDT"].mark_price == good["p"]


# -- limits: rows from the future, the number of symbols, rows pending a write --------------------


def test_rows_more_than_a_minute_ahead_of_their_arrival_are_refused_and_named():
    now, decoder = 1_000_000_000, FrameDecoder()
    book = MarketBook(max_ahead_ms=MAX_AHEAD_MS)
    rows = [mark("AUSDT", now + 60_000), mark("BUSDT", now + 60_001), ticker("CUSDT", now * 9)]
    applied = book.apply(decoder.decode(combined("!ticker@arr", rows)), now)
    assert applied.accepted == 1 and len(applied.rejected) == 1
    kind, count, reason = applied.rejected[0]
    assert (kind, count) == ("future", 2)
    assert "first: 'BUSDT' at E=1000060001" in reason and "ahead of the local clock" in reason
    book.publish()
    assert list(book.funding) == ["AUSDT"] and book.tickers == {}
    # The refused rows did not raise the merge's mark: a normal frame takes the fast path.
    assert book.apply(decoder.decode(marks_frame(1, "AUSDT", now + 60_000)), now) == (1, [])


def test_a_future_row_never_pins_its_symbol():
    now, decoder = 1_000_000_000, FrameDecoder()
    book = MarketBook(max_ahead_ms=MAX_AHEAD_MS)
    ten_years = now + 10 * 365 * 86_400_000
    book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark(event_time=ten_years)])), now)
    for step in range(1, 4):
        at = now + step * 1_000
        book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark(event_time=at)])), at)
        book.publish()
        assert book.funding["BTCUSDT"].event_time == at


def test_the_book_holds_at_most_max_symbols_and_the_first_keep_their_place():
    decoder, book = FrameDecoder(), MarketBook(max_symbols=3)
    applied = book.apply(decoder.decode(marks_frame(5, event_time=1)), 1)
    assert applied.accepted == 3 and len(applied.rejected) == 1
    kind, count, reason = applied.rejected[0]
    assert (kind, count) == ("symbols", 2) and "first: 'S3'" in reason
    ticker_rows = [ticker("S0", 2), ticker("NEW", 2)]  # a held symbol counts once for both maps
    applied = book.apply(decoder.decode(combined("!ticker@arr", ticker_rows)), 2)
    assert applied.accepted == 1 and applied.rejected[0].rows == 1
    book.publish()
    assert list(book.funding) == ["S0", "S1", "S2"] and list(book.tickers) == ["S0"]
    applied = book.apply(decoder.decode(marks_frame(3, event_time=3)), 3)  # the fast path
    assert applied == (3, [])


def test_new_symbols_whose_rows_all_fail_give_their_place_back():
    decoder, book = FrameDecoder(), MarketBook(max_symbols=2)
    book.apply(decoder.decode(combined("!markPrice@arr@1s", [mark("JUNK", 1, p="x")])), 1)
    assert len(book.publish()) == 1 and book.funding == {}
    applied = book.apply(decoder.decode(marks_frame(2, event_time=2)), 2)
    assert applied == (2, [])


def test_frames_faster_than_writes_keep_one_pending_row_per_symbol():
    """Between two writes the book holds one row per symbol, however many frames come (the
    20x replay brings 20 a write): it keeps no record of a frame whose rows were superseded
    (in the daemon nothing else holds them, so they are freed at once). Measured with
    tracemalloc: the frames were decoded before it started, so only the book's own
    allocations count."""
    decoder, book = FrameDecoder(), MarketBook()
    frames = [decoder.decode(marks_frame(1_000, event_time=t)) for t in range(1, 42)]
    book.apply(frames[0], 1)
    book.publish()
    tracemalloc.start()
    try:
        book.apply(frames[1], 2)
        one, _ = tracemalloc.get_traced_memory()
        for t, frame in enumerate(frames[2:], start=3):
            book.apply(frame, t)
        many, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert many < 1.5 * one + 64 * 1024, (one, many)
    book.publish()
    assert {entry.event_time for entry in book.funding.values()} == {41}
    assert {entry.received_at for entry in book.funding.values()} == {41}


# -- properties: whatever frames come, the merge never fails nor lies -----------------------------


def decimal_ok(*values: str | None) -> bool:
    """Independent oracle for the decimal format (ASCII digits only)."""
    return all(v is None or re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", v) for v in values)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.lists(exchange_rows(), max_size=8), min_size=1, max_size=6))
def test_merged_state_holds_the_newest_valid_row_per_symbol_and_always_encodes(frames):
    """A model of the merge: the newest row of a write interval wins; it is published if its
    decimals are well-formed (checked once per published row, at the write), else the symbol
    keeps its previously published entry."""
    decoder, book = FrameDecoder(), MarketBook()
    pending: dict[str, object] = {}
    published: dict[str, int] = {}
    for index, frame_rows in enumerate(frames):
        decoded = decoder.decode(json.dumps(frame_rows).encode(), stream="s")
        book.apply(decoded, received_at=index)
        for row in decoded.mark:
            held = pending.get(row.symbol)
            newest_known = held.event_time if held is not None else published.get(row.symbol, -1)
            if newest_known <= row.event_time:
                pending[row.symbol] = row
        if index % 2 or index == len(frames) - 1:
            book.publish()
            for symbol, row in pending.items():
                decimals = (row.mark_price, row.index_price, row.estimated_settle_price)
                if decimal_ok(*decimals, row.funding_rate, row.mark_price_avg):
                    published[symbol] = row.event_time
            pending.clear()
    assert {s: e.event_time for s, e in book.funding.items()} == published
    doc = document()
    doc.funding.update(book.funding)
    doc.tickers.update(book.tickers)
    assert decode_state(encode_state(doc)) == doc


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(st.lists(good_rows, max_size=8), st.booleans()), min_size=1, max_size=10))
def test_a_publish_after_any_merges_equals_a_from_scratch_publish_of_the_same_rows(frames):
    """Whatever frames came and whenever the book published (frames faster than writes, so
    a symbol is pending from several frames, or not), the maps equal those of a new book
    given only each symbol's winning row (the newest; of equals, the last) in one frame per
    arrival time, published once."""
    decoder, book = FrameDecoder(), MarketBook()
    winners: dict[tuple[str, str], tuple[dict, int]] = {}
    for index, (frame_rows, publish_now) in enumerate(frames):
        data = json.dumps({"stream": "s", "data": frame_rows}).encode()
        book.apply(decoder.decode(data), received_at=1_000 + index)
        for row in frame_rows:
            key = (row["e"], row["s"])
            if key not in winners or winners[key][0]["E"] <= row["E"]:
                winners[key] = (row, 1_000 + index)
        if publish_now:
            assert book.publish() == []
    assert book.publish() == []
    scratch = MarketBook()
    for arrival in sorted({at for _, at in winners.values()}):
        rows = [row for row, at in winners.values() if at == arrival]
        scratch.apply(decoder.decode(json.dumps(rows).encode(), stream="s"), arrival)
    assert scratch.publish() == []
    assert book.funding == scratch.funding and book.tickers == scratch.tickers
    assert book.missing() == scratch.missing()


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.lists(dated_rows, max_size=8), min_size=1, max_size=6), st.integers(0, 500))
def test_no_row_dated_past_its_arrival_plus_the_allowance_is_kept_and_each_is_counted(
    frames, ahead_ms
):
    """Frame ``i`` arrives at ``i * 300`` ms: each row dated later than that plus the
    allowance is refused and counted; the rest merge as they would with no allowance."""
    decoder = FrameDecoder()
    book, unbounded = MarketBook(max_ahead_ms=ahead_ms), MarketBook()
    for index, frame_rows in enumerate(frames):
        data = json.dumps({"stream": "s", "data": frame_rows}).encode()
        arrival = index * 300
        on_time = [row for row in frame_rows if row["E"] <= arrival + ahead_ms]
        applied = book.apply(decoder.decode(data), arrival)
        assert sum(r.rows for r in applied.rejected) == len(frame_rows) - len(on_time)
        unbounded.apply(decoder.decode(json.dumps(on_time).encode()), arrival)
        assert book.publish() == unbounded.publish() == []
        assert book.funding == unbounded.funding and book.tickers == unbounded.tickers


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(st.lists(dated_rows, max_size=8), min_size=1, max_size=6), st.integers(1, 6))
def test_the_book_never_holds_more_than_max_symbols_and_counts_every_refused_row(frames, limit):
    """A model of the limit: a symbol is admitted when the book holds fewer than ``limit``;
    once admitted it keeps its place; every row of a symbol not admitted is counted."""
    decoder, book = FrameDecoder(), MarketBook(max_symbols=limit)
    admitted: list[str] = []
    refused = 0
    for index, frame_rows in enumerate(frames):
        frame = decoder.decode(json.dumps({"stream": "s", "data": frame_rows}).encode())
        applied = book.apply(frame, received_at=index)
        for row in (*frame.mark, *frame.tickers):  # the order the book merges them in
            if row.symbol not in admitted and len(admitted) < limit:
                admitted.append(row.symbol)
            refused += row.symbol not in admitted
        assert sum(r.rows for r in applied.rejected) == refused
        refused = 0
        book.publish()
    held = set(book.funding) | set(book.tickers)
    assert held == set(admitted) and len(held) <= limit


# -- restoring a previous file --------------------------------------------------------------------


def test_a_restored_book_keeps_the_merge_rule_on_the_fast_path():
    """The merge's fast path (a frame of unique, in-order rows) must not skip the check
    against restored entries: a restored row newer than a streamed one wins."""
    restored = document(funding=[mark("BTCUSDT", 5_000, p="1.0"), mark("ETHUSDT", 1_000)])
    book = MarketBook()
    book.restore(restored.funding, restored.tickers, written_at=10_000, now=now_ms())
    frame = FrameDecoder().decode(
        combined("!markPrice@arr@1s", [mark("BTCUSDT", 4_000, p="2.0"), mark("ETHUSDT", 4_000)])
    )
    book.apply(frame, received_at=4_100)
    book.publish()
    assert book.funding["BTCUSDT"] == restored.funding["BTCUSDT"]  # 5,000 beats 4,000
    assert book.funding["ETHUSDT"].event_time == 4_000  # 4,000 beats the restored 1,000


def test_a_previous_file_is_no_way_around_the_symbol_cap():
    restored = document(funding=[mark(f"S{n}USDT", 1_000 + n) for n in range(10)])
    book = MarketBook(max_symbols=4)
    book.restore(restored.funding, restored.tickers, written_at=10_000, now=now_ms())
    assert sorted(book.funding) == ["S6USDT", "S7USDT", "S8USDT", "S9USDT"]  # the newest
    book.forget(["S6USDT"], [])
    frame = FrameDecoder().decode(combined("!markPrice@arr@1s", [mark("NEWUSDT", 5_000)]))
    assert book.apply(frame, received_at=5_000).accepted == 1  # the forgotten place is free


def test_a_restore_keeps_only_keys_that_are_symbols():
    now = now_ms()
    keys = ["BTCUSDT", "1000PEPEUSDT", "BTCUSD_PERP", "", "btcusdt", "\x1b[2J\x1b[31mUSDT",
            "BTC\nUSDT", "K" * 100_000, "BTCUSDT\u202e", "ÉTHUSDT"]  # fmt: skip
    book = MarketBook()

    dropped = book.restore({key: previous_entry(now) for key in keys}, {}, written_at=now, now=now)

    assert sorted(book.funding) == ["1000PEPEUSDT", "BTCUSDT", "BTCUSD_PERP"]
    assert [group.symbols for group in dropped] == [keys[3:]]
    warning = describe_dropped(dropped)
    assert warning.startswith("7 entries not restored: 7 not keyed by a symbol")
    assert warning.isprintable() and len(warning) < 400  # escaped, cut short, 3 named
    assert "'btcusdt'" in warning and "\\x1b[2J" in warning and "(+4 more)" in warning


def test_a_restore_refuses_decimals_and_text_longer_than_the_feed_allows():
    now = now_ms()
    funding = {
        "HUGEUSDT": previous_entry(now, mark_price="1" * 5_000_000),  # the grammar holds
        "LONGUSDT": previous_entry(now, funding_rate="0." + "1" * 63),  # 65 characters
        "PAIRUSDT": previous_entry(now, pair="P" * 100_000),
        "EDGEUSDT": previous_entry(now, index_price="1." + "0" * 62),  # 64: the feed's limit
    }
    book = MarketBook()

    dropped = book.restore(funding, {}, written_at=now, now=now)

    assert list(book.funding) == ["EDGEUSDT"]
    assert [(group.reason, group.symbols) for group in dropped] == [
        (
            "with a value that is not a decimal of at most 64 characters",
            ["HUGEUSDT", "LONGUSDT", "PAIRUSDT"],
        )
    ]


def test_a_restore_refuses_entries_dated_past_the_files_write_time_or_the_clock():
    now = now_ms()
    written = now - 3_600_000
    book = MarketBook()
    book.restore(
        {"ATUSDT": previous_entry(written + 60_000), "PASTUSDT": previous_entry(written + 60_001)},
        {},
        written_at=written,
        now=now,
    )
    assert list(book.funding) == ["ATUSDT"]  # 60 s past the write: clock skew; more: refused

    future_file = MarketBook()  # a file claiming to be written ten years from now
    dropped = future_file.restore(
        {"FUTUSDT": previous_entry(now + TEN_YEARS_MS), "SKEWUSDT": previous_entry(now + 59_000)},
        {},
        written_at=now + TEN_YEARS_MS,
        now=now,
    )
    assert list(future_file.funding) == ["SKEWUSDT"] and dropped[0].symbols == ["FUTUSDT"]


def test_junk_does_not_count_against_the_cap_and_the_freshest_good_entries_win():
    now = now_ms()
    junk = {f"JUNK{n}USDT": previous_entry(now + TEN_YEARS_MS) for n in range(6_000)}
    good = {f"S{n}USDT": previous_entry(now - 1_000 * n) for n in range(7)}
    book = MarketBook(max_symbols=5)

    dropped = book.restore({**junk, **good}, {}, written_at=now, now=now)

    assert sorted(book.funding) == ["S0USDT", "S1USDT", "S2USDT", "S3USDT", "S4USDT"]
    assert [(len(group.symbols), group.reason) for group in dropped] == [
        (6_000, "dated more than 60 s past the file's write time or the clock"),
        (2, "over --max-symbols (5)"),
    ]
    assert dropped[1].symbols == ["S5USDT", "S6USDT"]
    assert describe_dropped(dropped).startswith("6,002 entries not restored: 6,000 dated")
