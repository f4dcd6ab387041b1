"""I/O: the one place Apprise is imported — a child process that delivers messages.

``binance-funding-ws audit`` (and ``report``/``notify``) start this module as a child
(``python -m binance_funding_ws.tools.apprise_send``) and hand it, on stdin (never argv: the
process list is public), the URLs and the messages each one awaits. It answers one JSON line
per attempt on stdout as it goes.

Why a child process and not a thread: a send must not outlive the audit's ``--timeout``, and
a thread cannot be stopped (a slow endpoint would hold the audit's exit); Apprise's plugins
read a whole answer into memory, so a gigabyte answer must hit a memory limit
(:data:`MEMORY_LIMIT`) in a process of its own, not the audit's. The parent kills the child
at the deadline; what was not answered by then stays in the outbox.

Each service gets its messages in order and stops at the first it refuses (the rest wait
for the next sample, so nothing overtakes). Services are served side by side (a thread
each), so a slow one does not hold the others. Apprise's log lines are the reason given for
a refusal; they are scrubbed of every secret part of the URL before they leave the child.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import msgspec

from binance_funding_ws.notices import redact

MEMORY_LIMIT = 512 * 1024 * 1024  # bytes of address space: a huge answer ends the child
MAX_ERROR = 300  # characters of a reason


class Job(msgspec.Struct):
    seq: int
    title: str
    body: str
    type: str = "info"  # Apprise's notify type: info, success, warning, failure


class Request(msgspec.Struct):
    deadline_s: float
    urls: list[str]
    jobs: dict[str, list[Job]]  # str(index into urls): messages, oldest first


class Outcome(msgspec.Struct):
    seq: int
    target: int
    ok: bool
    error: str | None = None


class _Reasons(logging.Handler):
    """Apprise's warnings, by thread: the last one explains a refusal."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last[record.thread or 0] = record.getMessage()
        except Exception:  # a malformed log call must not end the delivery
            self.last[record.thread or 0] = str(record.msg)


def _limit_memory() -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not Linux, or not allowed: go on unbounded
        pass


def main() -> int:
    _limit_memory()
    request = msgspec.json.decode(sys.stdin.buffer.read(), type=Request)
    reasons = _Reasons()
    apprise_log = logging.getLogger("apprise")
    apprise_log.handlers[:] = [reasons]
    apprise_log.propagate = False
    apprise_log.setLevel(logging.WARNING)
    import apprise  # here only: the daemon's process never imports it

    lock = threading.Lock()

    def report(outcome: Outcome) -> None:
        with lock:
            sys.stdout.buffer.write(msgspec.json.encode(outcome) + b"\n")
            sys.stdout.flush()

    def serve(index: int, jobs: list[Job]) -> None:
        url = request.urls[index]
        plugin: Any = apprise.Apprise.instantiate(url)
        if plugin is None:
            for job in jobs[:1]:
                report(Outcome(job.seq, index, False, "not a valid Apprise URL"))
            return
        timeout = max(0.5, request.deadline_s)
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
        for job in jobs:
            reasons.last.pop(threading.get_ident(), None)
            try:
                ok = bool(plugin.notify(body=job.body, title=job.title, notify_type=job.type))
            except MemoryError:
                ok, reasons.last[threading.get_ident()] = False, "answer too large (out of memory)"
            except Exception as exc:  # a plugin's bug: the reason, and the next sample retries
                ok, reasons.last[threading.get_ident()] = False, f"{type(exc).__name__}: {exc}"
            error = None
            if not ok:
                why = reasons.last.get(threading.get_ident(), "refused (no reason given)")
                error = redact(why, request.urls)[:MAX_ERROR]
            report(Outcome(job.seq, index, ok, error))
            if not ok:
                return  # in order: the rest wait for the next sample

    threads = [
        threading.Thread(target=serve, args=(int(key), jobs), daemon=True)
        for key, jobs in request.jobs.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
