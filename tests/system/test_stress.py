"""The state file under stress: torn reads, crashes at random moments, a full or read-only disk."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.state import read_state
from daemon_helpers import DaemonForkServer, DaemonProcess, wait_for

MIN_WRITES = 3_000  # thousands of reads race each of them; under load a write takes ~50 ms
READERS = 3

# Spin on idle cycles only: the race is what counts, not starving the suite. Each reader is
# started in a session of its own (start_new_session) and lowers that session's priority:
# with the kernel's autogroups (sched_autogroup_enabled, on here) a plain nice(19) only ranks
# a process within its session, and three readers spinning in the suite's session made a
# deploy on a droplet take 1.5x as long (26-30 s instead of 18).
IDLE_ONLY = """
import contextlib, os
def idle_only():
    with contextlib.suppress(OSError):
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write("19")
    os.nice(19)
"""

READER = IDLE_ONLY + textwrap.dedent(
    """
    import json, os, sys, time
    idle_only()
    path, stop_file = sys.argv[1], sys.argv[2]
    reads = errors = 0
    first_error = None
    while not os.path.exists(stop_file):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            continue
        reads += 1
        try:
            doc = json.loads(data)  # what the volume-alert bot does
            assert doc["schema_version"] == 1 and "connection_status" in doc
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)[:200]
    print(json.dumps({"reads": reads, "errors": errors, "first_error": first_error}))
    """
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a loaded 2-core machine slows the writes, not the verdict
def test_readers_never_see_a_torn_file(tmp_path):
    """Readers in separate processes read in a loop while the daemon writes as fast as it can."""
    state = tmp_path / "state.json"
    stop_file = tmp_path / "stop"
    # A tick per write interval: each write has news to publish, and no frame more is made
    # and parsed than the writes need (on two cores, that CPU is the readers' and the suite's).
    config = SimulatorConfig(tick=0.01, symbols=150, ticker_changes=50)
    with (
        SimulatorThread(config) as sim,
        DaemonProcess(sim.ws_url(), state, write_interval=0.01) as daemon,
    ):
        daemon.wait_connected()
        readers = [
            subprocess.Popen(
                [sys.executable, "-c", READER, str(state), str(stop_file)],
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # an autogroup of its own (IDLE_ONLY)
            )
            for _ in range(READERS)
        ]
        try:
            doc = daemon.wait_state(
                lambda d: d.connection_status.writes >= MIN_WRITES,
                800,
                f"{MIN_WRITES} writes",
                step=0.5,
            )
        finally:
            stop_file.touch()
            results = [json.loads(reader.communicate(timeout=30)[0]) for reader in readers]
    assert doc.connection_status.write_errors == 0
    for result in results:
        assert result["errors"] == 0, result["first_error"]
        assert result["reads"] > 1000
    print(f"writes={doc.connection_status.writes} reads={[r['reads'] for r in results]}")


KILLS = 1000

# A bot-like reader: parses every read in full, and counts what a consumer would suffer.
COUNTING_READER = IDLE_ONLY + textwrap.dedent(
    """
    import json, os, sys
    idle_only()
    path, stop_file, baseline = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reads = unreadable = fewer = 0
    first_problem = None
    while not os.path.exists(stop_file):
        try:
            with open(path, "rb") as handle:
                doc = json.loads(handle.read())
            count = len(doc["funding"])
        except Exception as exc:
            unreadable += 1
            first_problem = first_problem or repr(exc)[:200]
            continue
        reads += 1
        if count < baseline:
            fewer += 1
            first_problem = first_problem or f"{count} funding entries < {baseline}"
    print(json.dumps({"reads": reads, "unreadable": unreadable, "fewer": fewer,
                      "first_problem": first_problem}))
    """
)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 1,000 daemon starts: ~2 min under load
def test_sigkill_at_random_moments_never_leaves_a_broken_or_smaller_file(tmp_path):
    """1,000 SIGKILLs at random moments of a daemon's life (start-up, warm start, first
    write, steady writes) while three readers parse the file without pause: never an
    unreadable file, never fewer symbols than before the kills (warm start). Each daemon is
    its own process, forked once the imports are done (they touch no file)."""
    state = tmp_path / "state.json"
    stop_file = tmp_path / "stop"
    rng = random.Random(20261125)
    config = SimulatorConfig(tick=0.01, symbols=100)
    with SimulatorThread(config) as sim:
        with DaemonProcess(sim.ws_url(), state, write_interval=0.01) as first:
            baseline = len(first.wait_state(lambda d: len(d.funding) == 103, 15, "all").funding)
        readers = [
            subprocess.Popen(
                [sys.executable, "-c", COUNTING_READER, str(state), str(stop_file), str(baseline)],
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # an autogroup of its own (IDLE_ONLY)
            )
            for _ in range(READERS)
        ]
        try:
            with DaemonForkServer(tmp_path / "daemons.log") as daemons:
                for _ in range(KILLS):
                    pid = daemons.start(sim.ws_url(), state, write_interval=0.01)
                    # Random moments, on purpose: the kill must land anywhere in a daemon's
                    # life. Forked after the imports, it locks, warm-starts and connects in
                    # a few tens of ms, and writes every 10 ms from then on: 150 ms hold
                    # every phase and a dozen steady writes.
                    time.sleep(rng.uniform(0.0, 0.15))
                    assert os.WIFSIGNALED(status := daemons.kill(pid)), status
        finally:
            stop_file.touch()
            results = [json.loads(reader.communicate(timeout=60)[0]) for reader in readers]
        # What killed writers left behind, named before the last daemon starts, it removes.
        leftovers = {p.name for p in tmp_path.glob(".state.json.*.tmp")}
        with DaemonProcess(sim.ws_url(), state) as last:
            last.wait_connected()
            assert leftovers.isdisjoint(p.name for p in tmp_path.glob(".state.json.*.tmp"))
    print(f"kills={KILLS} leftovers={len(leftovers)} results={results}")
    for result in results:
        assert result["unreadable"] == 0 and result["fewer"] == 0, result["first_problem"]
        assert result["reads"] > KILLS


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")


@pytest.fixture
def small_fs(tmp_path):
    _needs_root()
    mountpoint = tmp_path / "small"
    _mount_tmpfs(mountpoint, "256k")
    yield mountpoint, tmp_path
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(directory: Path) -> Path:
    """Take every free block of ``directory``'s filesystem (unbuffered, so nothing is pending)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.root
def test_disk_full_keeps_the_previous_file_and_recovers(small_fs):
    small_fs, logs = small_fs
    state = small_fs / "state.json"
    with (
        SimulatorThread(SimulatorConfig(tick=0.05, symbols=40)) as sim,
        DaemonProcess(sim.ws_url(), state, write_interval=0.05, log_dir=logs) as daemon,
    ):
        daemon.wait_connected()
        filler = _fill(small_fs)
        wait_for(lambda: "No space left" in daemon.log_text(), 10, "the ENOSPC log line")
        frozen = state.read_bytes()
        time.sleep(0.5)
        assert state.read_bytes() == frozen  # the old file, intact and parseable
        read_state(state)
        assert daemon.proc.poll() is None
        filler.unlink()
        doc = daemon.wait_state(
            lambda d: (
                d.connection_status.write_errors >= 1
                and d.connection_status.last_write_error is None
            ),
            10,
            "recovery after the disk has room again",
        )
        assert doc.connection_status.state == "connected"
        assert "writable again" in daemon.log_text()
        assert [p.name for p in small_fs.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.root
def test_read_only_remount_is_survived(small_fs):
    small_fs, logs = small_fs
    state = small_fs / "state.json"
    with (
        SimulatorThread(SimulatorConfig(tick=0.05, symbols=20)) as sim,
        DaemonProcess(sim.ws_url(), state, write_interval=0.05, log_dir=logs) as daemon,
    ):
        daemon.wait_connected()
        subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
        try:
            wait_for(lambda: "Read-only file system" in daemon.log_text(), 10, "the EROFS log")
            read_state(state)
            assert daemon.proc.poll() is None
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
        daemon.wait_state(
            lambda d: (
                d.connection_status.last_write_error is None
                and d.connection_status.write_errors >= 1
            ),
            10,
            "recovery after remount rw",
        )
