"""The state-file writer and lock, on real files and real processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from binance_funding_ws.runtime.writer import AtomicWriter, LockHeldError, StateFileLock


def test_write_replaces_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "state.json"
    writer = AtomicWriter(target)
    writer.write(b'{"a": 1}\n')
    writer.write(b'{"a": 2}\n')
    assert target.read_bytes() == b'{"a": 2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o000])
def test_mode_is_the_configured_one_whatever_the_umask(tmp_path, umask):
    target = tmp_path / "state.json"
    old = os.umask(umask)
    try:
        AtomicWriter(target, mode=0o644).write(b"{}")
        AtomicWriter(tmp_path / "other.json", mode=0o640).write(b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "other.json").stat().st_mode) == 0o640


def test_leftover_temp_files_are_removed_and_others_kept(tmp_path):
    target = tmp_path / "state.json"
    (tmp_path / ".state.json.abc123.tmp").write_text("half")
    (tmp_path / ".state.json.zz.tmp").write_text("")
    (tmp_path / ".other.json.abc.tmp").write_text("not ours")
    (tmp_path / "state.json").write_text("{}")
    assert AtomicWriter(target).remove_leftovers() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc.tmp", "state.json"]


def test_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "state.json"
    writer = AtomicWriter(target)
    writer.write(b"old")
    with pytest.raises(TypeError):
        writer.write("not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_second_lock_holder_is_refused_with_the_first_holders_pid(tmp_path):
    target = tmp_path / "state.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, pathlib
                from binance_funding_ws.runtime.writer import StateFileLock
                StateFileLock(pathlib.Path({str(target)!r})).acquire()
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as info:
            StateFileLock(target).acquire()
        assert info.value.holder_pid == holder.pid
        assert f"pid {holder.pid}" in str(info.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    # The holder is gone, so is its lock: no stale lock after a crash.
    lock = StateFileLock(target)
    lock.acquire()
    lock.release()
