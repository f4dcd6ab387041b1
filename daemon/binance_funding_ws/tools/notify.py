"""I/O: notifications — the notify file, the outbox and state beside the history, delivery
through Apprise (in a child process: :mod:`binance_funding_ws.tools.apprise_send`), the
heartbeat, and ``binance-funding-ws notify``.

What to say and when is decided in :mod:`binance_funding_ws.notices` (pure); this module
only reads, writes and sends. Secrets: a URL is never printed, logged or recorded except as
:func:`~binance_funding_ws.notices.mask_url` gives it (scheme and host), and never passed on
a command line (the child gets it on stdin).

Files beside the history ``H`` (written atomically, read refusing links and FIFOs, bounded):

* ``H.outbox`` — messages not yet delivered to every service, retried at every sample,
  oldest first, in order; at most :data:`~binance_funding_ws.notices.MAX_OUTBOX`.
* ``H.notices`` — what the notifier remembers between ``audit --once`` runs.

``binance-funding-ws notify --notify-file PATH --message TEXT`` sends one message by hand:
exit 0 when every service took it, 1 naming (masked) each one that refused, 2 for bad
arguments or an unusable notify file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import select
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec

from binance_funding_ws import __version__, notices
from binance_funding_ws.argtypes import add_seconds
from binance_funding_ws.clock import now_ms
from binance_funding_ws.durations import DAY, MINUTE
from binance_funding_ws.history import Delivery, Notices, Sample
from binance_funding_ws.notices import (
    Message,
    NoticeState,
    NotifyFileError,
    Outbox,
    mask_url,
    redact,
)
from binance_funding_ws.report import AuditReport
from binance_funding_ws.runtime.writer import AtomicWriter
from binance_funding_ws.state import StateFileError, read_bounded
from binance_funding_ws.text import error_line, one_line

log = logging.getLogger("binance_funding_ws.notify")
PROG = "binance-funding-ws notify"
EXIT_SENT, EXIT_REFUSED, EXIT_BAD = 0, 1, 2
MAX_NOTIFY_FILE_BYTES = 64 * 1024  # a notify file is a few lines; a larger one is a mistake
MAX_NOTICE_FILE_BYTES = 4 * 1024 * 1024  # the outbox (200 messages of at most ~4 KB) and state
MAX_HEARTBEAT_ANSWER = 64 * 1024  # bytes of a heartbeat answer read; the rest is ignored
ON_DEMAND_TIMEOUT_S = 30.0  # report --notify and notify: one message, a person waiting
MISSING_APPRISE = (
    "notifications need Apprise, which is not installed: "
    "pip install 'binance-funding-ws[notify]' (or apprise)"
)
NOTIFY_TYPES = {
    "DEGRADED": "failure",
    "RECOVERED": "success",
    "RESTARTS": "warning",
    "MISMATCH": "warning",
    "COVERAGE": "warning",
}


class NotifyConfigError(Exception):
    """Notifications cannot be set up; the message is one line (no URL in it)."""


# -- arguments -------------------------------------------------------------------------------


def apprise_url(text: str) -> str:
    """An Apprise URL given on the command line (checked fully once Apprise is loaded). The
    error shows its scheme and host only: the rest may be a secret."""
    if notices.scheme_of(text) is None:
        raise argparse.ArgumentTypeError(f"not an Apprise URL (scheme://...): {mask_url(text)}")
    return text.strip()


def heartbeat_url(text: str) -> str:
    scheme = notices.scheme_of(text)
    if scheme not in ("http", "https") or not notices.host_of(text):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL: {mask_url(text)}")
    return text.strip()


def clock_of_day(text: str) -> str:
    try:
        notices.parse_clock(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--notify URL`` (repeatable) and ``--notify-file PATH``: where messages go."""
    parser.add_argument(
        "--notify",
        type=apprise_url,
        action="append",
        metavar="URL",
        help="send notifications to this Apprise URL (repeatable); a URL on the command "
        "line is visible to every user of the host: prefer --notify-file",
    )
    parser.add_argument(
        "--notify-file",
        type=Path,
        metavar="PATH",
        help="Apprise URLs, one a line, # comments (keep it 0640, not world-writable)",
    )


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The audit's notification options."""
    add_target_arguments(parser)
    add_seconds(
        parser,
        "--notify-after",
        default=notices.DEFAULT_NOTIFY_AFTER_S,
        low=0.0,
        high=DAY,
        help="how long unhealthy before DEGRADED is said",
    )
    beat = parser.add_mutually_exclusive_group()
    beat.add_argument(
        "--heartbeat-url",
        type=heartbeat_url,
        metavar="URL",
        help="fetched (GET) after every healthy sample, never while unhealthy: a "
        "healthchecks.io / Uptime Kuma push URL (visible in the process list: a secret one "
        "goes in --heartbeat-url-file)",
    )
    beat.add_argument(
        "--heartbeat-url-file",
        type=Path,
        metavar="PATH",
        help="a file holding the heartbeat URL (one line, # comments; as --notify-file)",
    )
    parser.add_argument(
        "--digest-at",
        type=clock_of_day,
        metavar="HH:MM",
        help="send the last 24 h report once a day at this time (UTC) [none]",
    )
    parser.add_argument(
        "--bot-stats",
        type=Path,
        metavar="PATH",
        help="the bot's FundingSource stats (JSON), for the daily report's REST fallbacks",
    )


# -- the notify file -------------------------------------------------------------------------


def read_notify_file(path: Path) -> list[tuple[int, str]]:
    """``(line, URL)`` of the notify file. Refused like the state file's readers refuse
    theirs (a link, a FIFO, a device, over :data:`MAX_NOTIFY_FILE_BYTES`), and also when
    anyone may write it (anyone could then redirect the messages). Raises
    :class:`NotifyConfigError`."""
    try:
        data = read_bounded(path, MAX_NOTIFY_FILE_BYTES)
        mode = os.lstat(path).st_mode
    except StateFileError as exc:
        message = str(exc).replace("(is the daemon running?)", "").strip()
        if "larger than" in message:
            message = f"{path}: larger than {MAX_NOTIFY_FILE_BYTES // 1024} KiB; not a notify file"
        raise NotifyConfigError(message) from None
    except OSError as exc:
        raise NotifyConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if mode & stat.S_IWOTH:
        raise NotifyConfigError(f"{path}: world-writable; refusing it (chmod o-w)")
    try:
        return notices.parse_notify_lines(data.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise NotifyConfigError(f"{path}: not UTF-8 text") from None
    except NotifyFileError as exc:
        raise NotifyConfigError(str(exc)) from None


def read_heartbeat_file(path: Path) -> str:
    """The one http(s) URL in ``path`` (read as a notify file is)."""
    lines = read_notify_file(path)
    if len(lines) != 1:
        raise NotifyConfigError(f"{path}: expected one heartbeat URL, found {len(lines)}")
    number, url = lines[0]
    try:
        return heartbeat_url(url)
    except argparse.ArgumentTypeError as exc:
        raise NotifyConfigError(f"{path} line {number}: {exc}") from None


def load_apprise() -> object:
    """Apprise, imported only now (notifications configured); its log kept quiet (it can
    name a URL's parts) — the reasons for a refusal come back from the child, scrubbed."""
    quiet = logging.getLogger("apprise")
    quiet.handlers[:] = [logging.NullHandler()]
    quiet.propagate = False
    try:
        import apprise
    except ImportError:
        raise NotifyConfigError(MISSING_APPRISE) from None
    return apprise


def configured_urls(given: Sequence[str] | None, notify_file: Path | None) -> list[tuple[str, str]]:
    """``(where, URL)`` of every URL given, in order, the same URL once; not yet checked by
    Apprise (:func:`check_urls`)."""
    located = [(f"--notify #{n}", url) for n, url in enumerate(given or [], start=1)]
    if notify_file is not None:
        located += [(f"{notify_file} line {n}", url) for n, url in read_notify_file(notify_file)]
    first: dict[str, str] = {}  # URL: where it was first given
    for where, url in located:
        first.setdefault(url, where)
    return [(where, url) for url, where in first.items()]


def require_apprise() -> None:
    """One clear line when Apprise is missing (found without importing it: cheap)."""
    if importlib.util.find_spec("apprise") is None:
        raise NotifyConfigError(MISSING_APPRISE)


def check_urls(located: Sequence[tuple[str, str]]) -> list[str]:
    """The URLs, each checked by Apprise; one line naming the first bad one."""
    if not located:
        return []
    apprise = load_apprise()
    for where, url in located:
        if apprise.Apprise.instantiate(url) is None:  # type: ignore[attr-defined]
            raise NotifyConfigError(
                f"{where}: not a valid Apprise URL ({mask_url(url)}); "
                "see https://github.com/caronc/apprise/wiki"
            )
    return [url for _, url in located]


def gather_urls(given: Sequence[str] | None, notify_file: Path | None) -> list[str]:
    """Every URL configured, checked (``report`` and ``notify``)."""
    return check_urls(configured_urls(given, notify_file))


def urls_key(urls: Sequence[str]) -> str:
    """The URL list as a digest: the audit checks a list with Apprise once, not each run."""
    return hashlib.sha256("\n".join(urls).encode()).hexdigest()


def target_key(url: str) -> str:
    """A service's name in the outbox: a digest, so the outbox holds no secret."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


# -- delivery ---------------------------------------------------------------------------------


@dataclass
class Attempt:
    seq: int
    url: str
    ok: bool
    error: str | None


def deliver(
    urls: Sequence[str],
    queued: dict[str, list[Message]],
    timeout: float,
    meanwhile: Callable[[], None] | None = None,
) -> list[Attempt]:
    """Send each URL its messages (in order) through the child, for at most ``timeout``
    seconds; the attempts it answered. What is unanswered at the deadline was not sent.
    ``meanwhile`` runs while the child sends (the heartbeat shares the deadline)."""
    from binance_funding_ws.tools.apprise_send import Job, Outcome, Request

    index = {url: i for i, url in enumerate(urls)}
    jobs = {
        str(index[url]): [Job(m.seq, m.title, m.body, NOTIFY_TYPES.get(m.kind, "info")) for m in ms]
        for url, ms in queued.items()
        if ms
    }
    if not jobs:
        if meanwhile is not None:
            meanwhile()
        return []
    deadline = time.monotonic() + timeout
    request = Request(deadline_s=max(0.5, timeout - 0.5), urls=list(urls), jobs=jobs)
    child = subprocess.Popen(
        [sys.executable, "-m", "binance_funding_ws.tools.apprise_send"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
    )
    attempts: list[Attempt] = []
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(msgspec.json.encode(request))
        child.stdin.close()
        if meanwhile is not None:
            meanwhile()
        for line in _lines_until(child, deadline):
            try:
                outcome = msgspec.json.decode(line, type=Outcome)
                url = urls[outcome.target]
            except (msgspec.DecodeError, IndexError):
                continue
            error = None if outcome.error is None else redact(outcome.error, urls)
            attempts.append(Attempt(outcome.seq, url, outcome.ok, error))
    except (BrokenPipeError, OSError) as exc:
        log.error("notification sender failed: %s", exc.strerror or exc)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        _log_child_errors(child, urls)
    return attempts + _unanswered(queued, attempts, timeout)


def _unanswered(
    queued: dict[str, list[Message]], attempts: list[Attempt], timeout: float
) -> list[Attempt]:
    """For each service still sending at the deadline (slow, or an endless answer): the
    message it was given, not delivered."""
    late = []
    for url, messages in queued.items():
        answered = [a for a in attempts if a.url == url]
        if any(not a.ok for a in answered) or len(answered) >= len(messages):
            continue
        seq = messages[len(answered)].seq
        late.append(Attempt(seq, url, False, f"no answer within {timeout:.1f} s"))
    return late


def _lines_until(child: subprocess.Popen[bytes], deadline: float) -> list[bytes]:
    """The child's whole output lines until it ends or the deadline passes."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    buffer, lines = b"", []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
        *whole, buffer = buffer.split(b"\n")
        lines += whole
    return lines


def _log_child_errors(child: subprocess.Popen[bytes], urls: Sequence[str]) -> None:
    if child.returncode in (0, -9) or child.stderr is None:
        return
    text = child.stderr.read(64 * 1024).decode(errors="replace").strip().splitlines()
    last = redact(text[-1], urls) if text else "no message"
    log.error("notification sender exited %s: %s", child.returncode, last)


def heartbeat(url: str, timeout: float) -> str | None:
    """GET ``url``; ``None`` when it answered 2xx, else why not (masked)."""
    request = urllib.request.Request(
        url, headers={"User-Agent": f"binance-funding-ws/{__version__}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=max(0.5, timeout)) as answer:
            answer.read(MAX_HEARTBEAT_ANSWER)
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return redact(f"cannot reach it ({reason})", [url])


def send_now(
    message: Message, urls: Sequence[str], timeout: float = ON_DEMAND_TIMEOUT_S
) -> list[str]:
    """Send one message to every URL now (no outbox); the masked services that did not take
    it, each with the reason."""
    message.seq = 1
    attempts = {a.url: a for a in deliver(urls, {url: [message] for url in urls}, timeout)}
    refused = []
    for url in urls:
        attempt = attempts.get(url)
        if attempt is None or not attempt.ok:
            why = attempt.error if attempt is not None else f"no answer within {timeout:g} s"
            refused.append(f"{mask_url(url)} refused: {why}")
    return refused


def host_name() -> str:
    return one_line(socket.gethostname()) or "localhost"


# -- the audit's notifier ---------------------------------------------------------------------


@dataclass
class NotifyOptions:
    located: list[tuple[str, str]]  # (where it was given, URL)
    heartbeat_url: str | None
    notify_after: float
    digest_at: tuple[int, int] | None
    timeout: float
    history: Path
    state_file: Path
    max_age: float
    bot_stats: Path | None = None
    host: str = field(default_factory=host_name)


def notify_options(args: argparse.Namespace) -> NotifyOptions | None:
    """The audit's notification options; ``None`` when none is configured. Raises
    :class:`NotifyConfigError` (one line) for a bad notify file or URL."""
    located = configured_urls(args.notify, args.notify_file)
    beat = args.heartbeat_url
    if args.heartbeat_url_file is not None:
        beat = read_heartbeat_file(args.heartbeat_url_file)
    if located:
        require_apprise()
    if not located and beat is None:
        if args.digest_at is not None:
            raise NotifyConfigError("--digest-at needs --notify or --notify-file")
        return None
    return NotifyOptions(
        located=located,
        heartbeat_url=beat,
        notify_after=args.notify_after,
        digest_at=notices.parse_clock(args.digest_at) if args.digest_at else None,
        timeout=args.timeout,
        history=args.history,
        state_file=args.state_file,
        max_age=args.max_age,
        bot_stats=args.bot_stats,
    )


def release_key() -> str:
    """This installation (a deploy installs a new release directory): the first SAFE is
    announced once per release."""
    return f"{__version__} {Path(sys.prefix).resolve()}"


class Notifier:
    """Turns each audit sample into messages, delivers them (and the outbox), fetches the
    heartbeat, and remembers what it said."""

    def __init__(self, options: NotifyOptions) -> None:
        """Raises :class:`NotifyConfigError` when a URL is not one Apprise knows."""
        self.options = options
        history = options.history
        self.state_path = history.with_name(history.name + ".notices")
        self.outbox_path = history.with_name(history.name + ".outbox")
        self.state, self._state_bytes = _load(self.state_path, NoticeState)
        self.outbox, self._outbox_bytes = _load(self.outbox_path, Outbox)
        urls = [url for _, url in options.located]
        if self.state.checked_urls != urls_key(urls):  # a new list: Apprise checks it once
            check_urls(options.located)
            self.state.checked_urls = urls_key(urls)
        self.targets = {target_key(url): url for url in urls}
        notices.forget_services(self.outbox, list(self.targets))

    def on_sample(self, sample: Sample) -> Notices:
        """Everything one sample calls for, within ``--timeout``; what happened, for the
        history line."""
        o = self.options
        found = notices.transitions(
            self.state,
            sample,
            host=o.host,
            notify_after_s=o.notify_after,
            state_file=str(o.state_file),
            history=str(o.history),
        )
        record = Notices()
        if self.targets:
            admitted, record.folded = notices.admit(self.state, found, sample.at, o.host)
            admitted += self._digest(sample)
            record.dropped = notices.enqueue(self.outbox, admitted, list(self.targets))
            if record.dropped:
                log.warning("outbox full: dropped the %d oldest message(s)", record.dropped)
        deadline = time.monotonic() + o.timeout
        record.deliveries = self._deliver(sample, deadline)
        record.waiting = len(self.outbox.messages)
        record.waiting_titles = notices.waiting_titles(self.outbox)
        self._save()
        return record

    def _deliver(self, sample: Sample, deadline: float) -> list[Delivery]:
        queued = {url: notices.due_for(self.outbox, key) for key, url in self.targets.items()}
        deliveries: list[Delivery] = []
        beat = self.options.heartbeat_url if notices.healthy(sample) else None

        def beat_once() -> None:  # never while unhealthy: its silence is the alarm
            if beat is None:
                return
            error = heartbeat(beat, min(self.options.timeout, 10.0))
            deliveries.append(
                Delivery(kind="HEARTBEAT", title="", service=mask_url(beat), ok=error is None,
                         error=error)
            )  # fmt: skip
            if error is not None:
                log.warning("heartbeat %s failed: %s", mask_url(beat), error)

        left = max(0.5, deadline - time.monotonic())
        attempts = deliver(list(self.targets.values()), queued, left, beat_once)
        for attempt in attempts:
            key = target_key(attempt.url)
            sent = notices.settle(
                self.outbox, attempt.seq, key, attempt.error if not attempt.ok else None
            )
            title = sent.title if sent is not None else ""
            kind = sent.kind if sent is not None else ""
            deliveries.append(
                Delivery(kind=kind, title=title, service=mask_url(attempt.url), ok=attempt.ok,
                         error=attempt.error, queued_at=sent.created_at if sent else None)
            )  # fmt: skip
            if not attempt.ok:
                log.warning(
                    "notification %r to %s not delivered (kept in the outbox): %s",
                    title, mask_url(attempt.url), attempt.error,
                )  # fmt: skip
        return deliveries

    def _digest(self, sample: Sample) -> list[Message]:
        at = self.options.digest_at
        if at is None or not notices.digest_due(self.state, sample.at, at):
            return []
        self.state.digest_day = notices.utc_day(sample.at)
        o = self.options
        report = last_day_report(o.history, sample, o.max_age, o.bot_stats)
        if report is None:
            return []
        first_safe = report.verdict == "SAFE" and self.state.safe_said_for != release_key()
        if first_safe:
            self.state.safe_said_for = release_key()
        return [notices.report_message(report, self.options.host, first_safe)]

    def _save(self) -> None:
        for path, value, before in (
            (self.state_path, self.state, self._state_bytes),
            (self.outbox_path, self.outbox, self._outbox_bytes),
        ):
            data = msgspec.json.encode(value) + b"\n"
            if data == before:
                continue  # unchanged: no write, no fsync
            try:
                AtomicWriter(path, mode=0o640, what="notification file").write(data)
            except OSError as exc:
                log.error("cannot write %s: %s", path, exc.strerror or exc)
                continue
            if path == self.state_path:
                self._state_bytes = data
            else:
                self._outbox_bytes = data


_Stored = TypeVar("_Stored", bound=msgspec.Struct)


def _load(path: Path, kind: type[_Stored]) -> tuple[_Stored, bytes | None]:
    """The stored state or outbox; a fresh one (and one warning) when it cannot be used."""
    try:
        data = read_bounded(path, MAX_NOTICE_FILE_BYTES)
        value = msgspec.json.decode(data, type=kind)
    except StateFileError as exc:
        if exc.reason != "missing":
            log.warning("%s: %s; starting afresh", path, str(exc).split(": ", 1)[-1])
        return kind(), None
    except (msgspec.DecodeError, RecursionError) as exc:
        log.warning("%s: not readable (%s); starting afresh", path, exc)
        return kind(), None
    if getattr(value, "v", 1) > notices.NOTICE_STATE_VERSION:
        log.warning("%s: written by a newer audit; starting afresh", path)
        return kind(), None
    return value, data


def last_day_report(
    history: Path, current: Sample | None, max_age: float, bot_stats: Path | None = None
) -> AuditReport | None:
    """The ``report`` of the last 24 h (with its defaults), ``current`` included; read as
    ``report`` reads it (:class:`~binance_funding_ws.tools.history.HistoryWindow`)."""
    from binance_funding_ws.report import build_report
    from binance_funding_ws.tools.history import HistoryError, HistoryWindow, rotated
    from binance_funding_ws.tools.report import ReportOptions, read_bot_stats

    defaults = ReportOptions(history=history)
    now = current.at if current is not None else now_ms()
    first_run = not history.exists() and not rotated(history)  # the current sample only
    since = now - int(defaults.since * 1000)
    window = _WithCurrent(() if first_run else HistoryWindow(history, since), current)
    bot, bot_error = read_bot_stats(bot_stats)
    try:
        return build_report(
            window,
            history=str(history),
            now=now,
            since_s=defaults.since,
            max_age=max_age,
            min_period_s=defaults.min_period,
            slo_pct=defaults.slo,
            bot=bot,
            bot_error=bot_error,
        )
    except (HistoryError, OSError) as exc:
        log.error("daily report: cannot read %s: %s", history, exc)
        return None


class _WithCurrent:
    """The history's window, then the sample not yet appended to it; iterable again and
    again, as :func:`~binance_funding_ws.report.build_report` needs."""

    def __init__(self, window: Iterable[Sample], current: Sample | None) -> None:
        self.window = window
        self.current = current

    def __iter__(self) -> Iterator[Sample]:
        yield from self.window
        if self.current is not None:
            yield self.current


# -- binance-funding-ws notify -----------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "notify",
        help="send one message to the notification services now (a test); exit 0/1/2",
    )
    add_target_arguments(parser)
    parser.add_argument("--message", required=True, help="the text to send")
    add_seconds(
        parser,
        "--timeout",
        default=ON_DEMAND_TIMEOUT_S,
        low=1.0,
        high=10 * MINUTE,
        help="how long to wait for the services",
    )
    return parser


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        urls = gather_urls(args.notify, args.notify_file)
    except NotifyConfigError as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        return EXIT_BAD
    if not urls:
        print(error_line(PROG, "no URL: give --notify-file PATH or --notify URL"), file=sys.stderr)
        return EXIT_BAD
    host = host_name()
    text = args.message.strip() or "test"
    title = f"NOTICE {host}: {one_line(text)[:120]}"
    refused = send_now(notices.message("NOTICE", title, text, now_ms()), urls, args.timeout)
    for line in refused:
        print(error_line(PROG, line), file=sys.stderr)
    if refused:
        return EXIT_REFUSED
    print(f"sent to {len(urls)} service(s): {', '.join(mask_url(u) for u in urls)}")
    return EXIT_SENT


def report_notify(report: AuditReport, urls: Sequence[str]) -> list[str]:
    """``report --notify``: the verdict as one message, now; the refusals (masked)."""
    message = notices.report_message(report, host_name(), first_safe=True)
    return send_now(message, urls)
