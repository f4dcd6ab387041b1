"""The state-file writer and lock, on real files and real processes."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from binance_funding_ws.runtime.writer import (
    AtomicWriter,
    LockHeldError,
    LockLostError,
    StateFileLock,
    UnsafePathError,
)


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


@contextmanager
def lock_holder(target) -> Iterator[subprocess.Popen]:
    """Another process holding the lock of ``target`` until the block ends."""
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
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_second_lock_holder_is_refused_with_the_first_holders_pid(tmp_path):
    target = tmp_path / "state.json"
    with lock_holder(target) as holder:
        with pytest.raises(LockHeldError) as info:
            StateFileLock(target).acquire()
        assert info.value.holder_pid == holder.pid
        assert f"pid {holder.pid}" in str(info.value)
    # The holder is gone, so is its lock: no stale lock after a crash.
    lock = StateFileLock(target)
    lock.acquire()
    lock.release()


# -- hostile paths: only regular files are created, written or replaced ---------------------------


def test_a_symlinked_lock_file_is_refused_and_its_target_left_alone(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (tmp_path / "st.json.lock").symlink_to("precious.txt")
    with pytest.raises(UnsafePathError, match=r"st\.json\.lock is a symbolic link"):
        StateFileLock(tmp_path / "st.json").acquire()
    assert precious.read_text() == "keep me\n"


def test_a_dangling_lock_link_is_refused_and_creates_nothing(tmp_path):
    (tmp_path / "st.json.lock").symlink_to(tmp_path / "planted")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        StateFileLock(tmp_path / "st.json").acquire()
    assert not (tmp_path / "planted").exists()


def test_a_hard_linked_lock_file_is_refused_and_its_other_name_left_alone(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    os.link(precious, tmp_path / "st.json.lock")
    with pytest.raises(UnsafePathError, match="2 hard links"):
        StateFileLock(tmp_path / "st.json").acquire()
    assert precious.read_text() == "keep me\n"


@pytest.mark.timeout(30)  # opening a FIFO without O_NONBLOCK would wait for a writer forever
def test_a_fifo_lock_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "st.json.lock")
    with pytest.raises(UnsafePathError, match="is a FIFO"):
        StateFileLock(tmp_path / "st.json").acquire()


def locked_writer_whose_lock_file_is_deleted(target) -> tuple[StateFileLock, AtomicWriter]:
    """A writer guarded by its lock, after one write; then the lock file is deleted."""
    lock = StateFileLock(target)
    writer = AtomicWriter(target, guard=lock.ensure_held)
    lock.acquire()
    writer.write(b"mine")
    lock.path.unlink()
    return lock, writer


def test_a_deleted_lock_file_is_locked_again_before_the_next_write(tmp_path):
    target = tmp_path / "state.json"
    lock, writer = locked_writer_whose_lock_file_is_deleted(target)
    writer.write(b"2")
    assert lock.path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(LockHeldError):  # the new lock file is really held
        StateFileLock(target).acquire()
    lock.release()


def test_a_lock_taken_over_by_another_process_stops_every_later_write(tmp_path):
    target = tmp_path / "state.json"
    _, writer = locked_writer_whose_lock_file_is_deleted(target)
    with lock_holder(target) as holder:
        for _ in range(2):  # lost for good, even once the other holder is gone
            with pytest.raises(LockLostError, match=f"pid {holder.pid} now holds it"):
                writer.write(b"stale")
    with pytest.raises(LockLostError):
        writer.write(b"stale")
    assert target.read_bytes() == b"mine"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- the daemon's document buffer ------------------------------------------------------------


async def _until(predicate, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_the_document_buffer_is_reused_but_never_while_a_write_still_holds_it(tmp_path):
    """The daemon encodes into one buffer, write after write. A write whose caller was
    cancelled (shutdown) goes on in its thread: the next document must not be encoded into
    the buffer that thread is writing from."""
    from binance_funding_ws.endpoint import Endpoint
    from binance_funding_ws.runtime.feed import FeedConfig
    from binance_funding_ws.runtime.service import Daemon, DaemonConfig

    target = tmp_path / "state.json"
    daemon = Daemon(DaemonConfig(state_file=target, feed=FeedConfig(endpoint=Endpoint("ws://x"))))
    daemon.acquire()

    async def scenario() -> None:
        assert await daemon.write_state()
        reused = daemon._encode(daemon.build_document())
        assert daemon._encode(daemon.build_document()) is reused, "no write holds it: reused"
        daemon.tracker.set_state("reconnecting", 1)  # the next document differs
        daemon._write_lock.acquire()  # the writer thread will wait here, holding its buffer
        try:
            write = asyncio.create_task(daemon.write_state())
            await _until(lambda: daemon._in_flight is not None, "the write to start")
            held, expected = daemon._in_flight, bytes(daemon._in_flight)
            write.cancel()  # as at shutdown: the thread goes on
            daemon.tracker.set_state("stopped", 2)
            final = daemon._encode(daemon.build_document())
            assert final is not held and bytes(held) == expected
        finally:
            daemon._write_lock.release()
        await _until(lambda: daemon._in_flight is None, "the held write to finish")
        assert b'"state":"reconnecting"' in target.read_bytes(), "it wrote what it held"
        assert daemon._encode(daemon.build_document()) is final, "reused again once free"

    try:
        asyncio.run(scenario())
    finally:
        daemon.lock.release()
