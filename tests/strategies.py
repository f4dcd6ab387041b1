"""Hypothesis strategies for exchange rows, shared by the property tests of the frames and of the
market: rows perfect or damaged, and well-formed rows dated within a window."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from factories import DOCS_MARK, DOCS_TICKER, decimal_strings

# Under the other Pythons (noxfile.py) these tests show that the code runs there; the full
# suite, under .venv's Python, explores the properties with every example. nox sets the scale.
EXAMPLES_SCALE = float(os.environ.get("TEST_HYPOTHESIS_EXAMPLES_SCALE", "1"))


def examples(count: int) -> int:
    """A property test's ``max_examples``: ``count`` in the full suite, fewer under nox."""
    return max(20, round(count * EXAMPLES_SCALE))


decimals = decimal_strings(8, 8, leading_zeros=True)  # -?[0-9]{1,8}(\.[0-9]{1,8})?


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN; such a frame is not JSON
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)


symbols = st.sampled_from(["BTCUSDT", "ETHUSDT", "XAUUSDT", "BTCUSD_PERP", "MATICUSDT"])


@st.composite
def exchange_rows(draw: st.DrawFn) -> object:
    """A row that is sometimes perfect, sometimes damaged in one or more fields."""
    base = dict(draw(st.sampled_from([DOCS_MARK, DOCS_TICKER])))
    base["s"] = draw(symbols)
    base["E"] = draw(st.integers(0, 2**45))
    for key in [k for k in base if base[k].__class__ is str and k not in ("e", "s")]:
        base[key] = draw(decimals)
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        if draw(st.booleans()):
            base[key] = draw(junk)
        else:
            base.pop(key, None)
    return draw(st.one_of(st.just(base), junk)) if draw(st.integers(0, 9)) == 0 else base


def is_good(row: object) -> bool:
    """Independent oracle: does the row carry every kept field with the right JSON type?"""
    if not isinstance(row, dict):
        return False
    if row.get("e") == "markPriceUpdate":
        strings, ints = ("s", "p", "i", "P", "r"), ("E", "T")
    elif row.get("e") == "24hrTicker":
        strings, ints = ("s", "c", "o", "h", "l", "v", "q", "P"), ("E",)
    else:
        return False
    optional_strings = ("p", "w") if row["e"] == "24hrTicker" else ()
    optional_ints = ("n",) if row["e"] == "24hrTicker" else ()
    return (
        all(isinstance(row.get(k), str) for k in strings)
        and all(type(row.get(k)) is int and row[k] >= 0 for k in ints)
        and row["s"] != ""
        and all(k not in row or row[k] is None or isinstance(row[k], str) for k in optional_strings)
        and all(
            k not in row or row[k] is None or (type(row[k]) is int and abs(row[k]) < 2**63)
            for k in optional_ints
        )
        and all(
            k not in row or row[k] is None or (type(row[k]) is int and abs(row[k]) < 2**63)
            for k in ("st",)
        )
        and all(k not in row or row[k] is None or isinstance(row[k], str) for k in ("ps", "ap"))
    )


good_rows = st.builds(
    lambda base, symbol, event_time: {**base, "s": symbol, "E": event_time},
    st.sampled_from([DOCS_MARK, DOCS_TICKER]),
    symbols,
    st.integers(0, 40),
)


many_symbols = st.sampled_from([f"S{n}USDT" for n in range(8)])


dated_rows = st.builds(
    lambda base, symbol, event_time: {**base, "s": symbol, "E": event_time},
    st.sampled_from([DOCS_MARK, DOCS_TICKER]),
    many_symbols,
    st.integers(0, 2_000),
)
