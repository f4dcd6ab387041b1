"""Hostile and clumsy filesystems: the real daemon against planted nodes and links,
a deleted lock file and a read-only mount.

Refusals are expected failures: one line on stderr, exit 2, nothing created or changed.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.runtime.writer import AtomicWriter, UnsafePathError
from daemon_helpers import DaemonProcess, run_cli, wait_for

NOWHERE = "ws://127.0.0.1:9/market/stream"  # never dialled: every run here stops before


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(tick=0.05, symbols=20)) as running:
        yield running


def plant(path: Path, kind: str) -> None:
    """Something at ``path`` that is not a regular file."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":  # a private /dev/null: the real one must survive a failing test
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    elif kind == "symlink":
        path.with_name("elsewhere.json").write_text("{}")
        path.symlink_to("elsewhere.json")


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("fifo", "is a FIFO"),
        ("device", "is a character device"),
        ("directory", "is a directory"),
        ("socket", "is a socket"),
        ("symlink", "is a symbolic link"),
    ],
)
def test_run_refuses_a_state_path_that_is_not_a_regular_file(tmp_path, kind, said):
    state = tmp_path / "state.json"
    plant(state, kind)
    before = sorted(os.listdir(tmp_path))
    node = os.lstat(state)
    result = run_cli("run", "--ws-url", NOWHERE, "--state-file", str(state))
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"state file {state} {said}, not a regular file" in line
    after = os.lstat(state)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (node.st_ino, node.st_mode, node.st_rdev)
    assert sorted(os.listdir(tmp_path)) == before  # no lock file, no temporary file


def test_run_refuses_a_symlinked_lock_file_and_leaves_its_target_alone(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (tmp_path / "st.json.lock").symlink_to("precious.txt")
    result = run_cli("run", "--ws-url", NOWHERE, "--state-file", str(tmp_path / "st.json"))
    assert result.returncode == 2
    assert "st.json.lock is a symbolic link" in one_error_line(result)
    assert precious.read_text() == "keep me\n"
    assert not (tmp_path / "st.json").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_the_writer_never_replaces_what_is_not_a_regular_file(tmp_path, kind):
    # Swapped in while the daemon runs: each write checks again, just before the rename.
    target = tmp_path / "state.json"
    plant(target, kind)
    before = os.lstat(target)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        AtomicWriter(target).write(b"{}")
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def lock_pid(state: Path) -> int | None:
    try:
        return int(state.with_name(state.name + ".lock").read_text())
    except (OSError, ValueError):
        return None


def test_a_daemon_whose_lock_file_was_deleted_under_it_stops_for_the_new_holder(sim, tmp_path):
    state = tmp_path / "state.json"
    first = DaemonProcess(sim.ws_url(), state)
    first.wait_connected()
    # Frozen, the first daemon cannot re-take the lock before the second one has it.
    first.proc.send_signal(signal.SIGSTOP)
    try:
        state.with_name("state.json.lock").unlink()
        second = DaemonProcess(sim.ws_url(), state)
        wait_for(lambda: lock_pid(state) == second.pid, 15, "the second daemon's lock")
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert first.proc.wait(15) == 3
    assert f"lost the lock: {state}.lock was removed or replaced" in first.log_text()
    assert f"pid {second.pid} now holds it" in first.log_text()
    # From then on one writer only: every write is the second daemon's.
    doc = second.wait_state(lambda d: d.connection_status.state == "connected", 15, "connected")
    later = doc.connection_status.writes + 5
    second.wait_state(lambda d: d.connection_status.writes >= later, 15, "five more writes")
    assert second.state().connection_status.pid == second.pid
    assert second.proc.poll() is None and lock_pid(state) == second.pid
    assert second.stop() == 0


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_lock_file_deleted_or_replaced_under_a_lone_daemon_is_locked_again(sim, tmp_path, how):
    state = tmp_path / "state.json"
    lock = state.with_name("state.json.lock")
    with DaemonProcess(sim.ws_url(), state) as daemon:
        daemon.wait_connected()
        if how == "deleted":
            lock.unlink()
        else:
            (tmp_path / "new.lock").write_text("junk\n")
            os.replace(tmp_path / "new.lock", lock)
        wait_for(lambda: lock_pid(state) == daemon.pid, 15, "the lock taken again")
        # The pid is in the lock file a moment before the log line is: wait for the line too.
        wait_for(lambda: "locked it again" in daemon.log_text(), 15, "the log to say so")
        second = DaemonProcess(sim.ws_url(), state)
        assert second.proc.wait(15) == 3
        assert f"pid {daemon.pid}" in second.log_text()
        assert daemon.proc.poll() is None


@pytest.fixture
def tiny_fs(tmp_path) -> Iterator[Path]:
    """A 256 KiB tmpfs of the test's own, to remount read-only at will."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mountpoint)], check=True
    )
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def remount(mountpoint: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mountpoint)], check=True)


@pytest.mark.root
def test_a_start_on_a_read_only_filesystem_runs_and_writes_once_it_is_writable(
    sim, tiny_fs, tmp_path
):
    state = tiny_fs / "state.json"
    with DaemonProcess(sim.ws_url(), state, log_dir=tmp_path) as earlier:
        earlier.wait_connected()
        assert earlier.stop() == 0  # leaves the state file and the lock file behind
    (tiny_fs / ".state.json.crashed.tmp").write_text("half")  # and a crash's leftover
    remount(tiny_fs, "ro")
    try:
        daemon = DaemonProcess(sim.ws_url(), state, log_dir=tmp_path)
        wait_for(lambda: "Read-only file system" in daemon.log_text(), 15, "the EROFS write error")
        assert daemon.proc.poll() is None, daemon.log_text()
        assert "cannot lock" not in daemon.log_text()
    finally:
        remount(tiny_fs, "rw")
    daemon.wait_state(
        lambda d: (
            d.connection_status.pid == daemon.pid
            and d.connection_status.write_errors >= 1
            and d.connection_status.last_write_error is None
        ),
        15,
        "the new daemon writing once the filesystem is writable",
    )
    assert daemon.stop() == 0
