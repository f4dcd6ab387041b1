"""Running the real daemon as a subprocess, and waiting on what it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from binance_funding_ws.state import StateDocument, StateFileError, read_state

COMMAND = [sys.executable, "-m", "binance_funding_ws"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def try_read(path: Path) -> StateDocument | None:
    try:
        return read_state(path)
    except StateFileError:
        return None


class DaemonProcess:
    """``binance-funding-ws run`` in a subprocess, its stderr captured to a file.

    Every instance is remembered so that a failing test cannot leave a daemon running:
    ``conftest.py`` kills what is left after each test.
    """

    started: ClassVar[list[DaemonProcess]] = []

    def __init__(
        self,
        ws_url: str,
        state_file: Path,
        *extra: str,
        write_interval: float = 0.05,
        stall_timeout: float = 5.0,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.state_file = state_file
        # The log lives apart from the state file when a test fills that file's disk.
        log_name = f"{state_file.name}.{time.monotonic_ns()}.log"
        self.log_path = (log_dir or state_file.parent) / log_name
        self.args = [
            *COMMAND,
            "run",
            "--ws-url",
            ws_url,
            "--state-file",
            str(state_file),
            "--write-interval",
            str(write_interval),
            "--stall-timeout",
            str(stall_timeout),
            *extra,
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        DaemonProcess.started.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def state(self) -> StateDocument | None:
        return try_read(self.state_file)

    def wait_state(
        self,
        predicate: Callable[[StateDocument], bool],
        timeout: float,
        what: str,
        step: float = 0.02,
    ) -> StateDocument:
        def check() -> StateDocument | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log_text()}")
            doc = self.state()
            return doc if doc is not None and predicate(doc) else None

        return wait_for(check, timeout, what, step)

    def wait_connected(self, timeout: float = 15) -> StateDocument:
        """This daemon's own file saying ``connected`` (a previous file may say so too)."""
        return self.wait_state(
            lambda d: (
                d.connection_status.pid == self.pid
                and d.connection_status.state == "connected"
                and bool(d.funding)
            ),
            timeout,
            "state connected with funding data",
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def status_json(state_file: Path, *extra: str) -> tuple[int, dict]:
    result = run_cli("status", "--state-file", str(state_file), "--json", *extra)
    return result.returncode, json.loads(result.stdout)


# The fork server's program: import the daemon once, then, for each line read from stdin,
# fork a daemon (answering its pid) or SIGKILL one and wait until it is gone (answering its
# wait status). Single-threaded and without an event loop when it forks, so each child starts
# as cleanly as an exec'd one.
FORK_SERVER = """
import json, os, signal, sys, traceback
from binance_funding_ws import cli
from binance_funding_ws.runtime import command, feed, service  # what `run` imports
for line in sys.stdin:
    request = json.loads(line)
    if request[0] == "kill":
        os.kill(request[1], signal.SIGKILL)
        print(os.waitpid(request[1], 0)[1], flush=True)
        continue
    argv, log = request[1:]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = cli.main(argv)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    print(pid, flush=True)
"""


class DaemonForkServer:
    """Starts ``binance-funding-ws run`` processes by forking a process that has already
    imported the daemon: each start skips the interpreter's start-up and the imports (about
    0.15 s of CPU, the same every time and touching no file), so a thousand starts cost
    seconds of CPU instead of minutes. From ``main()`` on, each child is the daemon as the
    service runs it: its own process, lock, warm start, connection and writes."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, request: list[Any]) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the fork server exited:\n{self.log_path.read_text()[-3000:]}")
        return int(line)

    def start(self, ws_url: str, state_file: Path, write_interval: float) -> int:
        """A new daemon's pid."""
        argv = ["run", "--ws-url", ws_url, "--state-file", str(state_file)]
        argv += ["--write-interval", str(write_interval)]
        return self._ask(["start", argv, str(self.log_path)])

    def kill(self, pid: int) -> int:
        """SIGKILL the daemon and wait until it is gone (its lock with it); its wait status."""
        return self._ask(["kill", pid])

    def __enter__(self) -> DaemonForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
