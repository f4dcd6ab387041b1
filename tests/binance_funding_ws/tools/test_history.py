"""The audit history on disk (:mod:`binance_funding_ws.tools.history`): appends that end a torn
line, daily rotation, reading back only what is recent."""

from __future__ import annotations

from binance_funding_ws.history import encode_sample
from binance_funding_ws.tools.history import append, read_history, rotate, rotated
from samples import DAY_MS, T0, good


def test_append_ends_a_torn_line_so_the_next_sample_survives(tmp_path):
    history = tmp_path / "audit.jsonl"
    history.write_bytes(encode_sample(good(0)) + encode_sample(good(1))[:30])  # a crash
    append(history, encode_sample(good(2)))
    parsed = read_history(history)
    assert [s.at for s in parsed.samples] == [T0, T0 + 2000] and parsed.skipped == 1


def test_rotation_keeps_the_last_day_and_drops_what_is_older_than_keep(tmp_path):
    history = tmp_path / "audit.jsonl"
    for day in range(10):  # ten days, one sample an hour, rotated as the audit would
        for hour in range(24):
            now = T0 + day * DAY_MS + hour * 3_600_000
            rotate(history, now, keep_s=8 * 86400)
            append(history, encode_sample(good(day * 86400 + hour * 3600)))
    files = rotated(history)
    assert [f.name for f in files] == [f"audit.jsonl.{n}" for n in range(1, len(files) + 1)]
    samples = read_history(history).samples
    newest = samples[-1].at
    assert [s.at for s in samples] == sorted(s.at for s in samples)  # oldest file first
    assert newest - samples[0].at <= 9 * DAY_MS  # 8 days kept, plus the current file
    last_day = [s for s in samples if s.at > newest - DAY_MS]
    assert len(last_day) == 24  # every hour of the last 24 h, across the rotation


def test_read_history_since_skips_older_files_and_samples(tmp_path):
    history = tmp_path / "audit.jsonl"
    for second in range(5):
        append(history, encode_sample(good(second)))
    parsed = read_history(history, since=T0 + 3000)
    assert [s.at for s in parsed.samples] == [T0 + 3000, T0 + 4000] and parsed.older == 3
