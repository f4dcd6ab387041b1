"""sd_notify against a real unix datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket

from binance_funding_ws.runtime.notify import Notifier


def listen(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    # A deadline, not a wait: recv returns at the first message, but the daemon's start-up (the
    # first READY=1) takes seconds on a loaded machine.
    sock.settimeout(30)
    return sock


def test_messages_reach_a_path_socket(tmp_path):
    path = str(tmp_path / "notify")
    with listen(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
        assert notifier.enabled and notifier.watchdog_interval == 10.0
        notifier.ready("writing x")
        assert sock.recv(4096) == b"READY=1\nSTATUS=writing x"
        notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_messages_reach_an_abstract_socket():
    name = f"bfws-test-{os.getpid()}"
    with listen("\0" + name) as sock:
        Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_outside_systemd_everything_is_a_no_op(tmp_path):
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")
    notifier.watchdog()


def test_watchdog_meant_for_another_pid_is_ignored():
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_interval is None


def test_unreachable_socket_does_not_raise(tmp_path):
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready("x")


def test_the_daemon_tells_systemd_ready_watchdog_and_stopping(tmp_path):
    """The real daemon, as systemd runs a Type=notify unit with WatchdogSec."""
    import signal

    from binance_funding_sim.server import SimulatorConfig, SimulatorThread
    from daemon_helpers import DaemonProcess

    path = str(tmp_path / "notify")
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}  # 0.2 s: pings every 0.1 s
    with listen(path) as sock, SimulatorThread(SimulatorConfig(tick=0.1, symbols=5)) as sim:
        daemon = DaemonProcess(sim.ws_url(), tmp_path / "state.json", env=env)
        messages = [sock.recv(4096) for _ in range(6)]
        assert messages[0].startswith(b"READY=1\nSTATUS=writing ")
        assert messages[1:].count(b"WATCHDOG=1") == 5
        daemon.wait_connected()
        assert daemon.stop(signal.SIGTERM) == 0
        rest = []
        while b"STOPPING=1" not in rest:
            rest.append(sock.recv(4096))


def test_a_stuck_write_withholds_the_watchdog(tmp_path):
    from binance_funding_ws.endpoint import Endpoint
    from binance_funding_ws.runtime.feed import FeedConfig
    from binance_funding_ws.runtime.service import Daemon, DaemonConfig

    daemon = Daemon(
        DaemonConfig(state_file=tmp_path / "s.json", feed=FeedConfig(endpoint=Endpoint("ws://x")))
    )
    assert daemon.loop_is_healthy(now=100.0, limit=1.0)
    daemon._write_started = 98.5  # a write began 1.5 s ago and has not returned
    assert not daemon.loop_is_healthy(now=100.0, limit=1.0)
    assert daemon.loop_is_healthy(now=99.0, limit=1.0)
