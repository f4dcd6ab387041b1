"""Measure the two candidate JSON libraries on this project's real work.

Run: .venv/bin/python benchmarks/json_choice.py

The daemon's hot path is: decode an all-market frame (hundreds of rows), validate every
row (skip bad rows, not the frame), then once per write interval encode the whole state
document. Each candidate is measured doing exactly that, in one run, so the ratios are
comparable on a noisy machine.
"""

from __future__ import annotations

import random
import re
import time
from typing import Annotated

import msgspec
import orjson

ROWS = 750
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def make_frame(seed: int = 1) -> bytes:
    rng = random.Random(seed)
    rows = []
    for i in range(ROWS):
        price = rng.uniform(0.001, 90000)
        rows.append(
            {
                "e": "markPriceUpdate",
                "E": 1_790_000_000_000 + i,
                "s": f"SYM{i:04d}USDT",
                "p": f"{price:.8f}",
                "i": f"{price * 0.999:.8f}",
                "P": f"{price * 1.001:.8f}",
                "r": f"{rng.uniform(-0.001, 0.001):.8f}",
                "T": 1_790_006_400_000,
                "ap": f"{price:.8f}",
                "st": 1,
                "ps": f"SYM{i:04d}USDT",
            }
        )
    return orjson.dumps({"stream": "!markPrice@arr@1s", "data": rows})


Dec = Annotated[str, msgspec.Meta(pattern=r"^-?\d+(\.\d+)?$")]


class Row(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    E: int
    s: str
    p: Dec
    i: Dec
    P: Dec
    r: Dec
    T: int


class Envelope(msgspec.Struct):
    stream: str
    data: list[Row]


FIELDS = ("p", "i", "P", "r")


def orjson_validate(frame: bytes) -> int:
    doc = orjson.loads(frame)
    good = 0
    for row in doc["data"]:
        if not (isinstance(row.get("E"), int) and isinstance(row.get("s"), str)):
            continue
        if not isinstance(row.get("T"), int):
            continue
        if all(isinstance(row.get(f), str) and DECIMAL.match(row[f]) for f in FIELDS):
            good += 1
    return good


decoder = msgspec.json.Decoder(Envelope)


def msgspec_typed(frame: bytes) -> int:
    return len(decoder.decode(frame).data)


generic = msgspec.json.Decoder()


def msgspec_generic(frame: bytes) -> int:
    return len(generic.decode(frame)["data"])


def orjson_generic(frame: bytes) -> int:
    return len(orjson.loads(frame)["data"])


def bench(fn, arg, n: int) -> float:
    fn(arg)
    t = time.process_time()
    for _ in range(n):
        fn(arg)
    return (time.process_time() - t) / n * 1e3


def main() -> None:
    frame = make_frame()
    n = 300
    print(f"frame: {len(frame)} bytes, {ROWS} markPrice rows; ms per frame (CPU)")
    base = bench(orjson_generic, frame, n)
    for name, fn in [
        ("orjson.loads (no validation)", orjson_generic),
        ("msgspec generic decode (no validation)", msgspec_generic),
        ("orjson.loads + per-row validation in Python", orjson_validate),
        ("msgspec typed decode + validation", msgspec_typed),
    ]:
        ms = bench(fn, frame, n)
        print(f"  {name:45s} {ms:7.3f} ms  ({ms / base:4.2f}x orjson.loads)")

    doc = orjson.loads(frame)
    state = {
        "funding": {r["s"]: r for r in doc["data"]},
        "tickers": {r["s"]: r for r in doc["data"]},
    }
    enc = msgspec.json.Encoder()
    print("encode a 2-map state document (ms):")
    o = bench(orjson.dumps, state, n)
    m = bench(enc.encode, state, n)
    print(f"  orjson.dumps {o:7.3f}   msgspec encode {m:7.3f}   ratio {m / o:4.2f}")


if __name__ == "__main__":
    main()
