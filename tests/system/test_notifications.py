"""Notifications with real parts: the simulator, a real daemon, the audit as a process, Apprise
sending to a webhook receiver on 127.0.0.1 (``json://``), the heartbeat fetched from it.

Every wait is on a condition (a message received, a sample in the history); the durations
are the faults themselves (the simulator's stall, the receiver's 30 s of 500s).
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from binance_funding_sim.server import SimulatorConfig, SimulatorThread
from binance_funding_ws.clock import now_ms
from binance_funding_ws.history import Sample
from binance_funding_ws.tools.history import HistoryError, read_history
from daemon_helpers import COMMAND, DaemonProcess, run_cli, wait_for

SECRET = "s3cr3t-w3bh00k-t0k3n"  # the part of every URL here that must never be shown
MAX_AGE = 2.0


@dataclass
class Received:
    at: int  # epoch ms
    method: str
    path: str
    title: str = ""
    body: str = ""
    status: int = 200


class Receiver:
    """A webhook receiver: records what Apprise posts (``json://``) and heartbeat GETs.

    ``answer`` decides each POST's fate: an HTTP status, or ``"html"``, ``"endless"`` (a 200
    whose body never ends) or ``"silent"`` (never answers)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[], int | str] = lambda: 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                answer = receiver.answer()
                # An answer that never completes is no delivery, as the sender sees it.
                status = answer if isinstance(answer, int) else {"html": 404}.get(answer, 599)
                receiver.record(
                    Received(now_ms(), "POST", self.path, payload.get("title", ""),
                             payload.get("message", ""), status)
                )  # fmt: skip
                if answer == "silent":
                    time.sleep(60)
                    return
                if answer == "html":
                    self._send(404, b"<html><body><h1>Not Found</h1></body></html>", "text/html")
                elif answer == "endless":
                    self._endless()
                else:
                    self._send(status, b"{}", "application/json")

            def do_GET(self) -> None:
                receiver.record(Received(now_ms(), "GET", self.path))
                self._send(200, b"OK", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(1 << 30))  # a gigabyte, announced
                self.end_headers()
                chunk = b"<p>" + b"x" * 65530 + b"</p>"
                with contextlib.suppress(OSError):
                    for _ in range((1 << 30) // len(chunk)):
                        self.wfile.write(chunk)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook/{SECRET}"

    def heartbeat_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping/{SECRET}"

    def messages(self, delivered_only: bool = True) -> list[Received]:
        with self.lock:
            return [
                r for r in self.received
                if r.method == "POST" and (r.status < 300 or not delivered_only)
            ]  # fmt: skip

    def beats(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "GET"]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def notify_file(tmp_path: Path, *urls: str) -> Path:
    path = tmp_path / "notify.urls"
    path.write_text("# where the audit's messages go\n" + "".join(u + "\n" for u in urls))
    path.chmod(0o640)
    return path


def samples(history: Path) -> list[Sample]:
    try:
        return read_history(history).samples
    except HistoryError:
        return []


class SecretWatch:
    """Looks at the command line of every process this test started (its descendants) while it
    runs: the secret must be in none. Only its own: a test on another worker may put the secret
    on a command line on purpose (the one that checks it is never echoed)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.looks = 0

    def look(self) -> bool:
        self.looks += 1
        for pid in descendants(os.getpid()):
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if SECRET.encode() in cmdline:
                    self.seen.append(cmdline.decode(errors="replace"))
        return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from each process's parent in /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def audit(state: Path, history: Path, rest_url: str, *extra: str) -> Iterator[Path]:
    """The audit sampling until SIGTERM (it must exit 0); yields its log's path."""
    log_path = history.with_suffix(".log")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*COMMAND, "audit", "--state-file", str(state), "--history", str(history),
             "--rest-url", rest_url, *extra],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield log_path
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def assert_secret_nowhere(tmp_path: Path, *outputs: str) -> None:
    """The URL's secret path is in no file the audit wrote (history, outbox, state, metrics,
    logs) and in no output."""
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("notify.urls", "heartbeat.url"):
            assert SECRET.encode() not in path.read_bytes(), path
    for text in outputs:
        assert SECRET not in text


def seconds_in(title: str) -> float:
    """The duration in a RECOVERED title (``3.4 s``, ``12 s``, ``1m 05s``)."""
    match = re.search(r"after (?:(\d+)m (\d+)s|([\d.]+) s)", title)
    assert match, title
    if match[3] is not None:
        return float(match[3])
    return int(match[1]) * 60 + int(match[2])


@pytest.mark.slow
def test_a_stall_is_said_degraded_then_recovered_once_each_through_30s_of_refusals(
    tmp_path, receiver
):
    """The receiver answers 500 for the first 30 s of the outage: both messages wait in the
    outbox and arrive once it answers again, once each, in order; heartbeats come after
    healthy samples only; the secret is nowhere."""
    state, history = tmp_path / "state.json", tmp_path / "audit.jsonl"
    metrics = tmp_path / "audit.prom"
    urls = notify_file(tmp_path, receiver.url())
    beat = tmp_path / "heartbeat.url"
    beat.write_text(receiver.heartbeat_url() + "\n")
    # One sample a second: each sample with a message waiting starts a sender (about 0.3 s of
    # CPU to import Apprise), about 30 of them through the refusals.
    stall_s, refuse_s, interval_s = 6.0, 30.0, 1.0
    watch = SecretWatch()
    with SimulatorThread(SimulatorConfig(tick=0.2, symbols=8)) as sim:
        daemon = DaemonProcess(sim.ws_url(), state, write_interval=0.1, stall_timeout=1.0)
        daemon.wait_connected()
        with audit(
            state, history, sim.rest_url(), "--interval", str(interval_s),
            "--max-age", str(MAX_AGE), "--notify-file", str(urls), "--notify-after", "1s",
            "--timeout", "8",
            "--heartbeat-url-file", str(beat), "--metrics-file", str(metrics),
        ) as log_path:  # fmt: skip
            wait_for(lambda: len(receiver.beats()) >= 3, 30, "heartbeats while healthy")
            outage, outage_ms = time.monotonic(), now_ms()
            receiver.answer = lambda: 500 if time.monotonic() - outage < refuse_s else 200
            sim.call("stall", stall_s)
            wait_for(
                lambda: watch.look() and len(receiver.messages()) >= 2,
                refuse_s + 60,
                "DEGRADED and RECOVERED delivered",
                step=0.2,
            )
            healthy_again = now_ms()
            wait_for(lambda: any(b.at > healthy_again for b in receiver.beats()), 30, "a beat")
        log_text = log_path.read_text()

    delivered = receiver.messages()
    kinds = [m.title.split()[0] for m in delivered]
    assert kinds == ["DEGRADED", "RECOVERED"], [m.title for m in delivered]
    degraded, recovered = delivered
    host = degraded.title.split()[1].rstrip(":")
    # The daemon notices the stall within its stall timeout and redials at once: a sample sees
    # it stalled or already reconnecting, whichever that moment holds.
    said = re.fullmatch(
        rf"DEGRADED {re.escape(host)}: (stalled|reconnecting), data .* old", degraded.title
    )
    assert said, degraded.title
    assert "Next:" in degraded.body and "Next:" in recovered.body
    assert degraded.at >= outage_ms + refuse_s * 1000  # delivered once the 500s ended
    refused = [m for m in receiver.messages(delivered_only=False) if m.status == 500]
    assert refused and all("DEGRADED" in m.title for m in refused)  # in order: nothing overtook
    lasted = seconds_in(recovered.title)
    # Its start and end are each seen at the next sample, up to one interval late.
    assert stall_s - MAX_AGE - 1.0 - interval_s <= lasted <= stall_s + 10.0, recovered.title

    found = samples(history)
    attempts = [
        d for s in found if s.notices for d in s.notices.deliveries if d.kind != "HEARTBEAT"
    ]
    assert [d.ok for d in attempts if d.kind == "DEGRADED"][-1] is True
    failures = [d for d in attempts if not d.ok]
    assert failures and all("500" in (d.error or "") for d in failures), failures
    assert all(d.service == "json://127.0.0.1" for d in attempts)
    assert found[-1].notices is not None and found[-1].notices.waiting == 0

    # Heartbeats: after every healthy sample, never after an unhealthy one.
    for s in found:
        beats = [d for d in (s.notices.deliveries if s.notices else []) if d.kind == "HEARTBEAT"]
        assert len(beats) == (1 if s.verdict == "HEALTHY" else 0), s
    for beat in receiver.beats():
        before = [s for s in found if s.at <= beat.at]
        assert before and before[-1].verdict == "HEALTHY", beat
    assert any(s.verdict != "HEALTHY" for s in found)

    assert_secret_nowhere(tmp_path, log_text)
    assert watch.looks > 10 and watch.seen == []


def once(state: Path, history: Path, rest_url: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "audit", "--once", "--state-file", str(state), "--history", str(history),
        "--rest-url", rest_url, "--interval", "60", *extra, timeout=120,
    )  # fmt: skip


def test_a_rest_divergence_is_said_mismatch_naming_the_symbol_once_across_runs(tmp_path, receiver):
    urls = notify_file(tmp_path, receiver.url())
    history = tmp_path / "audit.jsonl"
    with (
        SimulatorThread(SimulatorConfig(tick=0.2, symbols=8)) as sim,
        DaemonProcess(sim.ws_url(), tmp_path / "state.json", write_interval=0.1) as daemon,
    ):
        daemon.wait_connected()
        sim.call("diverge", "ETHUSDT", lastFundingRate="0.00999900")
        extra = ("--compare-every", "1", "--notify-file", str(urls))
        for _ in range(2):  # the second round finds the same: not said again
            result = once(daemon.state_file, history, sim.rest_url(), *extra)
            assert result.returncode == 0, result.stderr
    titles = [m.title for m in receiver.messages()]
    assert len(titles) == 1 and titles[0].startswith("MISMATCH "), titles
    assert "ETHUSDT differ from REST" in titles[0]
    assert "ETHUSDT" in receiver.messages()[0].body
    assert_secret_nowhere(tmp_path, result.stdout, result.stderr)


def test_report_notify_file_sends_one_message_with_the_verdict_and_keeps_its_exit_code(
    tmp_path, receiver
):
    urls = notify_file(tmp_path, receiver.url())
    history = tmp_path / "audit.jsonl"
    state = tmp_path / "absent.json"
    assert once(state, history, "http://127.0.0.1:9").returncode == 0  # one sample: NOT_SAFE
    plain = run_cli("report", "--history", str(history))
    sent = run_cli("report", "--history", str(history), "--notify-file", str(urls))
    assert sent.returncode == plain.returncode == 1, sent.stderr
    verdict = plain.stdout.splitlines()[-1]
    assert verdict.startswith("  verdict      NOT_SAFE")
    assert sent.stdout.splitlines()[-1] == verdict and sent.stderr == ""
    (only,) = receiver.messages()
    assert re.match(r"REPORT \S+: NOT_SAFE, 0\.000 % available$", only.title), only.title
    assert "verdict      NOT_SAFE" in only.body
    receiver.answer = lambda: 503
    refused = run_cli("report", "--history", str(history), "--notify-file", str(urls))
    assert refused.returncode == 1 and refused.stdout.splitlines()[-1] == verdict
    assert "not delivered: json://127.0.0.1 refused" in refused.stderr
    assert_secret_nowhere(tmp_path, sent.stdout, refused.stderr)


@pytest.mark.parametrize(
    ("answer", "why"),
    [(500, "500"), (404, "404"), ("html", "404"), ("endless", ""), ("silent", "")],
)
def test_a_failing_endpoint_never_stops_the_audit_and_the_message_waits(
    tmp_path, receiver, answer, why
):
    """4xx, 5xx, HTML, a gigabyte answer, no answer: the sample is recorded with the reason,
    the message stays in the outbox, and it is delivered once the endpoint answers."""
    urls = notify_file(tmp_path, receiver.url())
    history, state = tmp_path / "audit.jsonl", tmp_path / "absent.json"
    receiver.answer = lambda: answer
    # A loaded machine starts the sender slowly: the deadline leaves it room.
    extra = ("--notify-file", str(urls), "--notify-after", "0", "--timeout", "8")
    result = once(state, history, "http://127.0.0.1:9", *extra)
    assert result.returncode == 0, result.stderr
    (first,) = samples(history)
    (attempt,) = first.notices.deliveries
    assert not attempt.ok and attempt.kind == "DEGRADED" and why in (attempt.error or "no answer")
    assert first.notices.waiting == 1 and first.notices.waiting_titles[0].startswith("DEGRADED")
    assert "not delivered (kept in the outbox)" in result.stderr

    receiver.answer = lambda: 200
    assert once(state, history, "http://127.0.0.1:9", *extra).returncode == 0
    (delivered,) = receiver.messages()
    assert delivered.title.split()[0] == "DEGRADED" and "file missing" in delivered.title
    assert samples(history)[-1].notices.waiting == 0
    assert once(state, history, "http://127.0.0.1:9", *extra).returncode == 0
    assert len(receiver.messages()) == 1  # said once, though the file is still missing
    assert_secret_nowhere(tmp_path, result.stdout, result.stderr)


def notify(*args: str) -> subprocess.CompletedProcess:
    return run_cli("notify", *args, timeout=120)


def test_notify_sends_a_test_message_and_names_the_masked_service_that_refused(tmp_path, receiver):
    urls = notify_file(tmp_path, receiver.url())
    sent = notify("--notify-file", str(urls), "--message", "deploy test")
    assert sent.returncode == 0 and "json://127.0.0.1" in sent.stdout, sent.stderr
    (message,) = receiver.messages()
    assert message.body == "deploy test" and message.path == f"/hook/{SECRET}"
    receiver.answer = lambda: 401
    refused = notify("--notify-file", str(urls), "--message", "again")
    assert refused.returncode == 1
    assert refused.stderr.startswith("binance-funding-ws notify: error: json://127.0.0.1 refused")
    assert "401" in refused.stderr
    assert_secret_nowhere(tmp_path, sent.stdout, refused.stdout, refused.stderr)


def test_an_unusable_notify_file_is_one_line_naming_it(tmp_path):
    good = f"json://127.0.0.1:9/hook/{SECRET}"
    bad_line = tmp_path / "bad-line"
    bad_line.write_text(f"# ok\n{good}\nnot a url {SECRET}\n")
    unknown = tmp_path / "unknown"
    unknown.write_text(f"{good}\nnosuchservice://{SECRET}/x\n")
    world = tmp_path / "world"
    world.write_text(good + "\n")
    world.chmod(0o666)
    link = tmp_path / "link"
    link.symlink_to(world)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge"
    huge.write_text("# padding\n" * 100_000)
    cases = {
        bad_line: "bad-line line 3: not an Apprise URL",
        unknown: "unknown line 2: not a valid Apprise URL (nosuchservice://…)",
        world: "world-writable; refusing it",
        link: "is a symbolic link; not following it",
        fifo: "a FIFO, not a regular file",
        huge: "larger than 64 KiB",
        tmp_path / "absent": "no such file",
    }
    for path, said in cases.items():
        result = notify("--notify-file", str(path), "--message", "x")
        assert result.returncode == 2, (path, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and said in lines[0], (path, result.stderr)
        assert SECRET not in result.stderr and "Traceback" not in result.stderr
    on_argv = notify("--notify", f"{SECRET}-no-scheme", "--message", "x")
    assert on_argv.returncode == 2 and SECRET not in on_argv.stderr


def test_a_bad_notify_file_costs_the_audit_its_notifications_not_its_samples(tmp_path):
    bad = tmp_path / "notify.urls"
    bad.write_text(f"json://127.0.0.1:9/{SECRET}\nnot-a-url\n")
    history = tmp_path / "audit.jsonl"
    result = once(
        tmp_path / "absent.json", history, "http://127.0.0.1:9", "--notify-file", str(bad)
    )
    assert result.returncode == 2 and "notify.urls line 2: not an Apprise URL" in result.stderr
    assert len(samples(history)) == 1  # the sample was still taken
    assert SECRET not in result.stderr


def test_the_daemons_run_path_never_imports_apprise():
    """``run`` loads the command line (with the notification options) and the daemon's
    modules; Apprise, importable here, stays out of its process."""
    assert importlib.util.find_spec("apprise") is not None
    probe = (
        "import sys\n"
        "from binance_funding_ws import cli\n"
        "from binance_funding_ws.runtime import command, feed, service, writer\n"
        "cli.build_parser().parse_args(['run', '--state-file', '/tmp/x.json'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apprise', 'requests')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_daily_digest_is_sent_once_a_day_through_the_outbox(tmp_path, receiver):
    urls = notify_file(tmp_path, receiver.url())
    history, state = tmp_path / "audit.jsonl", tmp_path / "absent.json"
    today = time.strftime("%H:%M", time.gmtime())  # already reached today: due now
    beat = f"http://127.0.0.1:{receiver.port}/ping"
    extra = ("--notify-file", str(urls), "--digest-at", today, "--heartbeat-url", beat)
    for _ in range(2):
        assert once(state, history, "http://127.0.0.1:9", *extra).returncode == 0
    (digest,) = receiver.messages()  # once a day; and no DEGRADED before --notify-after
    assert re.match(r"REPORT \S+: NOT_SAFE, 0\.000 % available$", digest.title), digest.title
    assert "binance-funding-ws report: NOT_SAFE" in digest.body
    assert receiver.beats() == []  # the file is missing: unhealthy, no heartbeat
    kinds = [d.kind for s in samples(history) for d in s.notices.deliveries]
    assert kinds == ["REPORT"]


def test_the_monitor_shows_the_messages_sent_and_those_waiting(tmp_path, receiver):
    """From the history the real audit wrote: ``--once --json`` and the history screen."""
    import asyncio

    from funding_monitor.app import MonitorApp
    from funding_monitor.poller import Poller
    from funding_monitor.screens import HistoryScreen
    from funding_monitor.sources import LocalSource
    from monitor_helpers import wait_for as wait_on_screen
    from monitor_helpers import write_state

    urls = notify_file(tmp_path, receiver.url())
    history, absent = tmp_path / "audit.jsonl", tmp_path / "absent.json"
    extra = ("--notify-file", str(urls), "--notify-after", "0", "--timeout", "8")
    receiver.answer = lambda: 502
    assert once(absent, history, "http://127.0.0.1:9", *extra).returncode == 0
    state = tmp_path / "s.json"
    write_state(state, now=time.time())
    monitor = [sys.executable, "-m", "funding_monitor", "--once", "--state-file", str(state),
               "--history", str(history)]  # fmt: skip
    facts = json.loads(subprocess.run([*monitor, "--json"], capture_output=True, text=True,
                                      check=False, timeout=60).stdout)  # fmt: skip
    said = facts["notifications"]
    assert said["waiting"] == 1 and said["waiting_titles"][0].startswith("DEGRADED ")
    (refused,) = said["sent"]
    assert not refused["ok"] and "502" in refused["error"]
    assert refused["service"] == "json://127.0.0.1"

    receiver.answer = lambda: 200
    assert once(absent, history, "http://127.0.0.1:9", *extra).returncode == 0
    text = subprocess.run(monitor, capture_output=True, text=True, check=False, timeout=60).stdout
    assert "  outbox      empty\n" in text
    assert re.search(r"  sent        [\d.]+ s ago to json://127\.0\.0\.1: DEGRADED ", text), text
    assert "NOT delivered: Failed to send JSON POST notification" in text
    assert SECRET not in text

    async def scenario() -> None:
        app = MonitorApp([Poller(LocalSource(state), 0.2, history=str(history))], local=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_on_screen(pilot, lambda: app.hosts[0].view.history is not None, "history")
            await pilot.press("h")
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            facts = screen.query_one("#facts")
            await wait_on_screen(pilot, lambda: "outbox" in str(facts.render()), "the notices")
            shown = str(facts.render())
            assert "outbox      empty" in shown and "to json://127.0.0.1: DEGRADED " in shown

    asyncio.run(scenario())


def test_urls_without_apprise_installed_are_one_clear_line(tmp_path):
    """As on a droplet deployed without the notify extra: Apprise cannot be imported."""
    urls = notify_file(tmp_path, f"json://127.0.0.1:9/hook/{SECRET}")
    without_apprise = (
        "import sys\n"
        "sys.modules['apprise'] = None\n"  # what an absent package looks like to import
        "from binance_funding_ws.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    runs = {
        "notify": ["notify", "--notify-file", str(urls), "--message", "x"],
        "audit": ["audit", "--once", "--state-file", str(tmp_path / "absent.json"),
                  "--history", str(tmp_path / "audit.jsonl"), "--rest-url",
                  "http://127.0.0.1:9", "--notify-file", str(urls)],
    }  # fmt: skip
    for command, args in runs.items():
        argv = [sys.executable, "-c", without_apprise, *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 2, (command, result.stderr)
        errors = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert errors == [
            f"binance-funding-ws {command}: error: notifications need Apprise, which is not "
            "installed: pip install 'binance-funding-ws[notify]' (or apprise)"
        ], result.stderr
        assert "Traceback" not in result.stderr and SECRET not in result.stderr
    assert len(samples(tmp_path / "audit.jsonl")) == 1  # the audit still took its sample


def test_a_damaged_outbox_or_a_planted_link_is_said_and_never_followed(tmp_path, receiver):
    urls = notify_file(tmp_path, receiver.url())
    history, absent = tmp_path / "audit.jsonl", tmp_path / "absent.json"
    (tmp_path / "audit.jsonl.outbox").write_bytes(b"\x00{not json" * 1000)
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    (tmp_path / "audit.jsonl.notices").symlink_to(target)
    extra = ("--notify-file", str(urls), "--notify-after", "0", "--timeout", "8")
    result = once(absent, history, "http://127.0.0.1:9", *extra)
    assert result.returncode == 0, result.stderr
    assert "audit.jsonl.outbox: not readable" in result.stderr
    assert "audit.jsonl.notices: is a symbolic link; not following it" in result.stderr
    assert "Traceback" not in result.stderr
    assert [m.title.split()[0] for m in receiver.messages()] == ["DEGRADED"]  # still said
    assert target.read_text() == "keep me\n"  # the link was not written through
    assert (tmp_path / "audit.jsonl.notices").is_symlink()
