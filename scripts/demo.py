"""The demo: the simulator, the daemon, and the state file filling up, with faults injected.

Run through ``./scripts/demo.sh`` (which sets up ``.venv`` first). Everything stays on
loopback and in a temporary directory; nothing touches Binance.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from binance_funding_ws import StateDocument, StateFileError, fresh_funding, read_state
from binance_funding_ws.clock import now_ms

CLI = [sys.executable, "-m", "binance_funding_ws"]


class Demo:
    def __init__(self, workdir: Path, quick: bool) -> None:
        self.workdir = workdir
        self.state_file = workdir / ".funding_state.json"
        self.pace = 0.25 if quick else 1.0
        self.sim: subprocess.Popen[str] | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.rest = ""

    # -- processes ------------------------------------------------------------------------

    def start_simulator(self) -> str:
        tick = str(self.pace)
        self.sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "binance_funding_sim",
                "--port",
                "0",
                "--symbols",
                "40",
                "--tick",
                tick,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.sim.stdout is not None
        line = self.sim.stdout.readline().strip()
        match = re.search(r"ws://([\d.]+:\d+)/market/stream", line)
        if not match:
            raise SystemExit(f"demo: the simulator did not start: {line!r}")
        self.rest = f"http://{match[1]}"
        say(line)
        return f"ws://{match[1]}/market/stream"

    def start_daemon(self, ws_url: str) -> None:
        command = [
            *CLI,
            "run",
            "--ws-url",
            ws_url,
            "--state-file",
            str(self.state_file),
            "--stall-timeout",
            str(3 * self.pace),
        ]
        say("$ binance-funding-ws " + " ".join(command[len(CLI) :]))
        log = (self.workdir / "daemon.log").open("wb")
        self.daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def fault(self, name: str) -> None:
        with urllib.request.urlopen(f"{self.rest}/_sim/{name}", timeout=5):
            pass

    def stop(self) -> None:
        for proc in (self.daemon, self.sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    # -- watching the file ----------------------------------------------------------------

    def read(self) -> StateDocument | None:
        try:
            return read_state(self.state_file)
        except StateFileError:
            return None

    def watch(self, seconds: float, until: Callable[[StateDocument], bool] | None = None) -> None:
        """Print one line a second about the file; stop early once ``until`` holds. A step that
        waits for something waits for it at least 30 s, quick or not: it ends as soon as it
        holds, and a loaded machine may take longer than the quick pace allows."""
        deadline = time.monotonic() + seconds * self.pace
        if until is not None:
            deadline = max(deadline, time.monotonic() + 30)
        while time.monotonic() < deadline:
            doc = self.read()
            if doc is not None:
                say(describe(doc))
                if until is not None and until(doc):
                    return
            time.sleep(self.pace)

    def show_btc(self) -> None:
        doc = self.read()
        entry = fresh_funding(doc, "BTCUSDT", max_age=60) if doc else None
        if entry is None:
            say("BTCUSDT: no fresh funding entry")
            return
        ticker = doc.tickers.get("BTCUSDT") if doc else None
        say(
            f"BTCUSDT via read_state()+fresh_funding(): mark {entry.mark_price}, "
            f"funding rate {entry.funding_rate}, next funding at {entry.next_funding_time}"
            + (f", last price {ticker.last_price}" if ticker else "")
        )

    def status(self) -> None:
        result = subprocess.run(
            [*CLI, "status", "--state-file", str(self.state_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        say(f"$ binance-funding-ws status   (exit {result.returncode})")
        for line in result.stdout.splitlines():
            print("    " + line)


def describe(doc: StateDocument) -> str:
    status = doc.connection_status
    age = (now_ms() - doc.updated_at) / 1000
    return (
        f"state={status.state:<12} funding={len(doc.funding):>3} tickers={len(doc.tickers):>3} "
        f"no_ticker={doc.missing.no_ticker} reconnects={status.reconnects} "
        f"errors={status.errors} writes={status.writes} written {age:.1f}s ago"
    )


def say(text: str) -> None:
    print(text, flush=True)


def chapter(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(demo: Demo) -> int:
    chapter("1. A local exchange: the bundled simulator (fstream + fapi protocol)")
    ws_url = demo.start_simulator()
    chapter("2. The daemon: the state file fills up (the ticker array is partial)")
    demo.start_daemon(ws_url)
    demo.watch(8, until=lambda d: len(d.tickers) == 42)
    demo.show_btc()
    chapter("3. Fault: the exchange drops the connection abruptly (1006)")
    demo.fault("drop")
    demo.watch(6, until=lambda d: d.connection_status.reconnects >= 1 and _connected(d))
    chapter("4. Fault: garbage frames: skipped, counted, never fatal")
    demo.fault("garbage?count=6")
    demo.watch(3, until=lambda d: d.connection_status.errors >= 6)
    chapter("5. Fault: a silent stall (socket open, no data) is noticed and repaired")
    demo.fault("stall")
    demo.watch(8, until=lambda d: d.connection_status.stalls >= 1)
    demo.fault("resume")
    demo.watch(8, until=_connected)
    chapter("6. Health check, as cron, Nagios or Ansible would run it")
    demo.status()
    chapter("7. SIGTERM: a final state with state=stopped")
    assert demo.daemon is not None
    demo.daemon.send_signal(signal.SIGTERM)
    code = demo.daemon.wait(10)
    doc = demo.read()
    say(f"daemon exited {code}; " + (describe(doc) if doc else "no state file"))
    say(f"\nstate file: {demo.state_file}\ndaemon log: {demo.workdir / 'daemon.log'}")
    ok = code == 0 and doc is not None and doc.connection_status.state == "stopped"
    return 0 if ok else 1


def _connected(doc: StateDocument) -> bool:
    return doc.connection_status.state == "connected"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four times faster (for tests)")
    parser.add_argument("--workdir", type=Path, help="keep the files here [a temporary dir]")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="funding-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, args.quick)
    try:
        return run(demo)
    except KeyboardInterrupt:
        return 130
    finally:
        demo.stop()
        if os.environ.get("DEMO_SHOW_LOG"):
            print((workdir / "daemon.log").read_text())


if __name__ == "__main__":
    sys.exit(main())
