"""State files for the monitor tests, and a real OpenSSH server on a loopback port."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import msgspec

from binance_funding_ws.health import Counters
from binance_funding_ws.history import CompareRound, Sample, encode_sample
from binance_funding_ws.state import encode_state
from factories import document, mark, ticker

FIXED_NOW = 1_795_500_000.0  # 2026-11-24 05:20:00 UTC: every age on screen is fixed
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def write_state(path: Path, now: float = FIXED_NOW, state: str = "connected", symbols: int = 30,
                stale: tuple[str, ...] = (), updated_ago: float = 0.5,
                **status: object) -> None:  # fmt: skip
    """A daemon-like state file, written atomically (temp file + rename) like the daemon.

    ``status`` overrides fields of ``connection_status`` (``last_error=...``, ``hint=...``).
    """
    now_ms = int(now * 1000)
    names = [f"S{n:04d}USDT" for n in range(symbols)] + list(stale)
    rows = []
    for n, name in enumerate(names):
        age_ms = 300_000 if name in stale else 800
        rows.append(
            mark(name, now_ms - age_ms, r=f"0.000{n % 10}0000", p=f"{100 + n}.50000000",
                 T=now_ms + 3_600_000)
        )  # fmt: skip
    doc = document(
        state=state, last_message_at=now_ms - 800, updated_at=now_ms - int(updated_ago * 1000),
        funding=rows,
    )  # fmt: skip
    for name in names[:-1]:  # one symbol has no ticker, as MATICUSDT on the live service
        doc.tickers[name] = _ticker_entry(name, now_ms - 900)
    doc.missing.no_ticker = [names[-1]]
    doc.connection_status = msgspec.structs.replace(doc.connection_status, **status)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(encode_state(doc))
    os.replace(tmp, path)


def _ticker_entry(symbol: str, event_time: int):
    from binance_funding_ws.frames import FrameDecoder
    from binance_funding_ws.market import MarketBook
    from factories import combined

    book = MarketBook()
    book.apply(FrameDecoder().decode(combined("!ticker@arr", [ticker(symbol, event_time)])), 1)
    book.publish()
    return book.tickers[symbol]


async def wait_for(pilot, predicate, what: str, timeout: float = 15) -> None:
    """Let the app run until ``predicate()`` holds; fail after ``timeout`` s saying ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def replace_in_file(path: Path, old: str, new: str) -> None:
    """Edit the state file atomically, as the daemon replaces it."""
    tmp = path.with_name(f".{path.name}.edit")
    tmp.write_text(path.read_text().replace(old, new))
    os.replace(tmp, path)


def run_in_terminal(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run ``argv`` in a pseudo-terminal of its own (as a user would); its code and output."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                            start_new_session=True)  # fmt: skip
    os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:  # drain it, or a full terminal buffer would block the program
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: {output[-2000:]!r}")
            ready, _, _ = select.select([controller], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every end of the terminal is closed, the program is gone
                break
            if not chunk:
                break
            output += chunk
        return proc.wait(timeout=10), output.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class SshServer:
    """``sshd -D`` with its own host key, config and authorized keys, on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.host_key = keygen(base / "host_key")
        self.client_key = keygen(base / "client_key")
        self.authorized = base / "authorized_keys"
        self.authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        self.config = base / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {base / 'sshd.pid'}\nAuthorizedKeysFile {self.authorized}\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "AllowTcpForwarding yes\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
            "ClientAliveInterval 5\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def known_hosts_line(self) -> str:
        key_type, key = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {key}\n"

    def start(self) -> SshServer:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)],
            stderr=(self.base / "sshd.log").open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.base / 'sshd.log').read_text()}")

    def kill(self) -> None:
        """Kill the listener and every session it forked (a crashed or rebooted server)."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def ssh_config(self, path: Path, known_hosts: Path, alias: str = "volspike-test",
                   identity: Path | None = None, extra: str = "") -> Path:  # fmt: skip
        path.write_text(
            f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n"
            f"  IdentityFile {identity or self.client_key}\n"
            f"  UserKnownHostsFile {known_hosts}\n{extra}"
        )
        return path


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# -- the audit history ----------------------------------------------------------------------

MISMATCH = {"ETHUSDT": "funding rate 0.00010000 vs 0.00990000"}


def audit_samples(now: float = FIXED_NOW, count: int = 1440, *, outage: bool = True,
                  mismatch: bool = True, gap: bool = True) -> list[Sample]:  # fmt: skip
    """What ``binance-funding-ws audit`` records once a minute over the ``count`` minutes up to
    ``now``: a healthy feed, a compare round every 5 minutes; with ``outage`` a 5-minute stall
    (6 h ago) and a missing file for 2 minutes (3 h ago); with ``gap`` an hour without the
    audit (10 h ago); with ``mismatch`` ETHUSDT differing from REST in the last round."""
    newest = int(now * 1000) - 30_000
    samples = []
    for minute in reversed(range(count)):
        if gap and 600 <= minute < 660:
            continue
        at = newest - minute * 60_000
        if outage and 360 <= minute < 365:
            sample = _audit_sample(at, state="stalled", last_message_age_s=200.0,
                                   verdict="DEGRADED", problems=["feed stalled"])  # fmt: skip
        elif outage and 180 <= minute < 182:
            error = "/home/trader/.funding_state.json: no such file"
            sample = Sample(at=at, interval_s=60.0, max_age_s=60.0, readable=False,
                            error=error, error_kind="missing", verdict="UNREADABLE",
                            problems=[error])  # fmt: skip
        else:
            sample = _audit_sample(at)
        if minute % 5 == 0:
            sample.compare = _compare_round(at, MISMATCH if mismatch and minute == 0 else {})
        samples.append(sample)
    return samples


def _audit_sample(at: int, **changes: object) -> Sample:
    fields: dict[str, object] = dict(
        at=at, interval_s=60.0, max_age_s=60.0, readable=True, verdict="HEALTHY",
        state="connected", last_message_age_s=0.8, last_write_age_s=0.5, pid=4242,
        started_at=1_795_000_000_000, daemon_alive=True,
        counters=Counters(messages=1000, reconnects=0, stalls=0, rotations=0, errors=0,
                          write_errors=0),
        funding_symbols=15, ticker_symbols=14,
    )  # fmt: skip
    return Sample(**(fields | changes))  # type: ignore[arg-type]


def _compare_round(at: int, mismatched: dict[str, str]) -> CompareRound:
    matched = 15 - len(mismatched)
    return CompareRound(started_at=at, duration_s=0.4, compared=15, funding_matched=matched,
                        mark_matched=15, next_funding_matched=15, mismatched=dict(mismatched),
                        max_mark_diff_pct=0.001, max_mark_diff_symbol="BTCUSDT", listed=15,
                        weight=11)  # fmt: skip


def write_history(path: Path, samples: list[Sample], torn: bytes = b"") -> None:
    """The history as the audit appends it; ``torn`` ends it without a newline (a crash)."""
    path.write_bytes(b"".join(encode_sample(sample) for sample in samples) + torn)


def hand_edited(samples: list) -> list:
    """The last day, with lines edited by hand: an age past any float, a threshold of 0."""
    samples[-1].max_age_s = 0.0  # the last line: the one whose threshold the screen uses
    samples[-2].last_message_age_s = 1e306
    samples[-3].interval_s = 86400.0
    return samples


NOW_MS = int(FIXED_NOW * 1000)
