"""The audit history's format (:mod:`binance_funding_ws.history`): JSON Lines read with a size cap,
torn and unknown lines skipped and counted, old lines still read."""

from __future__ import annotations

import json

from binance_funding_ws.history import (
    MAX_LINE_BYTES,
    OVERSIZED,
    bounded_lines,
    encode_sample,
    parse_lines,
)
from samples import T0, clean_day, good


def test_a_torn_last_line_is_skipped_silently_and_a_bad_line_counted():
    lines = [encode_sample(good(0)), b"not json\n", encode_sample(good(1)), encode_sample(good(2))]
    lines[-1] = lines[-1][:40]  # the writer died mid-append
    parsed = parse_lines(lines)
    assert [s.at for s in parsed.samples] == [T0, T0 + 1000] and parsed.skipped == 1


def test_unknown_keys_are_ignored_and_a_newer_version_is_skipped():
    future = json.loads(encode_sample(good(0))) | {"new_field": [1, 2]}
    newer = json.loads(encode_sample(good(1))) | {"v": 2}
    parsed = parse_lines([json.dumps(future).encode() + b"\n", json.dumps(newer).encode() + b"\n"])
    assert len(parsed.samples) == 1 and parsed.skipped == 1


def test_an_old_history_line_without_the_stale_list_still_reads():
    line = encode_sample(clean_day()[5]).replace(b',"stale_in_file":[]', b"")
    assert b"stale_in_file" not in line
    (sample,) = parse_lines([line]).samples
    assert sample.compare.stale_in_file == []


def test_history_lines_are_read_with_a_size_cap():
    line = encode_sample(good(0))
    huge = b'{"v":1,"pad":"' + b"x" * (3 * MAX_LINE_BYTES) + b'"}\n'
    data = line + huge + line + b"y" * (2 * MAX_LINE_BYTES)  # and an endless torn last line
    stream = iter([data[i : i + 65536] for i in range(0, len(data), 65536)])
    lines = list(bounded_lines(lambda n: next(stream, b"")))
    assert lines[:3] == [line, OVERSIZED, line] and len(lines) == 4
    assert max(map(len, lines)) <= MAX_LINE_BYTES
    parsed = parse_lines(lines)
    assert (len(parsed.samples), parsed.skipped) == (2, 1), "the torn line is not counted"
