"""Reading a host's audit history incrementally (:mod:`funding_monitor.history_tail`): only what
was appended, torn lines, rotation, replacement, size and file-type limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from binance_funding_ws.history import encode_sample
from funding_monitor.history_tail import MAX_HISTORY_BYTES, HistoryTail
from funding_monitor.sources import LocalSource, SourceError
from monitor_helpers import NOW_MS, audit_samples, write_history


def tail_of(path: Path, **options) -> HistoryTail:
    return HistoryTail(str(path), LocalSource(path.with_name("s.json")), **options)


SINCE = NOW_MS - 86_400_000


def test_history_tail_reads_only_what_was_appended(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=100, gap=False, outage=False)
    write_history(history, samples[:-1])
    tail = tail_of(history)
    assert len(tail.read(SINCE).samples) == 99
    assert tail.bytes_read == history.stat().st_size, "the whole file, once"
    assert len(tail.read(SINCE).samples) == 99 and tail.bytes_read == history.stat().st_size
    line = encode_sample(samples[-1])
    with history.open("ab") as handle:
        handle.write(line)
    before = tail.bytes_read
    found = tail.read(SINCE)
    assert [s.at for s in found.samples] == [s.at for s in samples]
    assert tail.bytes_read - before == len(line) + 64, "the new line, and a check of the old"


def test_history_tail_skips_a_torn_last_line_until_it_is_whole(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=10, gap=False)
    last = encode_sample(samples[-1])
    write_history(history, samples[:-1], torn=last[:25])  # the writer died, or is writing
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert (len(found.samples), found.skipped) == (9, 0), "a torn last line is no error"
    with history.open("ab") as handle:
        handle.write(last[25:])
    assert len(tail.read(SINCE).samples) == 10


def test_history_tail_reads_the_rotated_file_only_for_the_rest_of_the_window(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(gap=False, outage=False)
    write_history(tmp_path / "audit.jsonl.1", samples[:1000])  # rotated 440 minutes ago
    write_history(history, samples[1000:])
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert [s.at for s in found.samples] == [s.at for s in samples]
    # Later, the current file reaches back over the window: the rotated one is not read.
    tail = tail_of(history)
    assert len(tail.read(samples[1000].at).samples) == 440
    assert tail.bytes_read == history.stat().st_size


def test_history_tail_reads_a_replaced_file_anew(tmp_path):
    history = tmp_path / "audit.jsonl"
    write_history(history, audit_samples(count=50, gap=False))
    tail = tail_of(history)
    assert len(tail.read(SINCE).samples) == 50
    longer = audit_samples(count=80, gap=False, outage=False)
    for sample in longer:
        sample.funding_symbols = 16  # other bytes where the old file ended
    tmp = tmp_path / "new"
    write_history(tmp, longer)
    os.replace(tmp, history)
    found = tail.read(SINCE)
    assert len(found.samples) == 80 and {s.funding_symbols for s in found.samples} == {16}


def test_history_tail_of_an_oversized_file_reads_its_last_bytes_only(tmp_path):
    history = tmp_path / "audit.jsonl"
    samples = audit_samples(count=60, gap=False)
    with history.open("wb") as handle:
        handle.truncate(3 * MAX_HISTORY_BYTES)  # sparse: 24 MiB of NUL, no disk used
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + b"".join(map(encode_sample, samples)))
    tail = tail_of(history)
    found = tail.read(SINCE)
    assert (len(found.samples), found.skipped) == (60, 0)
    assert tail.bytes_read <= MAX_HISTORY_BYTES + 1
    small = tail_of(history, limit=10_000)  # a few samples' worth
    found = small.read(SINCE)
    assert 0 < len(found.samples) < 60 and found.skipped == 0, "the cut first line dropped"
    assert [s.at for s in found.samples] == [s.at for s in samples[-len(found.samples) :]]
    endless = tmp_path / "endless.jsonl"
    endless.write_bytes(b"x" * 50_000)  # one line without end: nothing to parse, no error
    assert tail_of(endless, limit=10_000).read(SINCE).samples == []


def test_history_of_anything_but_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # nobody writes it: a blocking read would wait for ever
    link = tmp_path / "link.jsonl"
    write_history(tmp_path / "real.jsonl", audit_samples(count=3))
    link.symlink_to(tmp_path / "real.jsonl")
    for path, reason in ((fifo, "not a regular file"), (link, "a symbolic link"),
                         (Path("/dev/zero"), "not a regular file")):  # fmt: skip
        with pytest.raises(SourceError, match=reason):
            tail_of(path).read(SINCE)
    source = LocalSource(tmp_path / "s.json")
    with pytest.raises(SourceError, match="not a regular file"):
        source.read_range(str(fifo), 0, 100)  # opened without blocking, refused after fstat
    assert tail_of(tmp_path / "nope.jsonl").read(SINCE) is None, "no history: no error"
