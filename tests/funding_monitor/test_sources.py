"""Where the monitor reads a host's files (:mod:`funding_monitor.sources`): a local file,
transferred only when it changed."""

from __future__ import annotations

from funding_monitor.sources import LocalSource
from monitor_helpers import write_state


def test_local_source_transfers_only_changed_files(tmp_path):
    path = tmp_path / "s.json"
    write_state(path)
    source = LocalSource(path)
    assert source.read_state() is not None
    assert source.read_state() is None  # unchanged: not read again
    write_state(path, symbols=5)
    assert len(source.read_state().funding) == 5
