"""``binance-funding-ws audit``: record how the feed really behaves, for ``report`` to judge.

Every ``--interval`` one sample of the state file is appended to the history (JSON Lines,
see :mod:`binance_funding_ws.history`); every ``--compare-every`` the sample also carries a
compare round (the file against REST ``premiumIndex``, two all-symbol calls at most) and a
coverage check (REST ``exchangeInfo``). Nothing stops the audit: a missing file, a REST
timeout, a 429 or a 418 are recorded and it goes on; after a 429 or 418 it stays away from
REST until the ``Retry-After`` it was given.

REST cost: a round weighs 11 (``premiumIndex`` 10 + ``exchangeInfo`` 1) or 21 when some
symbols need a second look; at the default 300 s that is at most 4.2 weight a minute, 0.18 %
of Binance's 2,400 a minute.

``--once`` takes one sample (with a round when one is due, judged from the history) and
exits: what a systemd timer runs. Without it the audit samples until SIGTERM/SIGINT, with
compare rounds in a worker thread so that sampling never waits on REST.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from binance_funding_ws.argtypes import (
    DEFAULT_MAX_AGE,
    add_max_age,
    add_seconds,
    add_state_file,
    options_from,
)
from binance_funding_ws.clock import now_ms
from binance_funding_ws.compare import WEIGHT_BUDGET_PER_MINUTE, coverage_unknowable
from binance_funding_ws.durations import DAY, HOUR, format_age
from binance_funding_ws.history import (
    Admission,
    CompareRound,
    Observation,
    Parsed,
    Sample,
    encode_sample,
    record_comparison,
    record_coverage,
    sample_of,
)
from binance_funding_ws.metrics import (
    RollingAvailability,
    availability_metric,
    compare_metrics,
    render,
    sample_metrics,
)
from binance_funding_ws.rest import DEFAULT_REST_URL
from binance_funding_ws.runtime.logs import setup_logging
from binance_funding_ws.runtime.writer import AtomicWriter
from binance_funding_ws.state import DEFAULT_STATE_FILE, StateFileError, read_state
from binance_funding_ws.text import error_line, one_line
from binance_funding_ws.tools import notify
from binance_funding_ws.tools.compare import add_rest_arguments, compare_round
from binance_funding_ws.tools.history import (
    HistoryError,
    append,
    read_recent,
    rotate,
    rotated,
)
from binance_funding_ws.tools.rest import (
    WEIGHT_EXCHANGE_INFO,
    WEIGHT_PREMIUM_INDEX_ALL,
    RestClient,
    RestError,
)

log = logging.getLogger("binance_funding_ws.audit")
PROG = "binance-funding-ws audit"
EXIT_OK, EXIT_UNWRITABLE = 0, 2
MAX_ROUND_WEIGHT = 2 * WEIGHT_PREMIUM_INDEX_ALL + WEIGHT_EXCHANGE_INFO  # 21
WEIGHT_SHARE_LIMIT = 0.05  # the audit's own share of the REST budget, at most, by default


@dataclass(frozen=True)
class AuditOptions:
    state_file: Path
    history: Path
    interval: float = 60.0
    compare_every: float = 300.0
    rest_url: str = DEFAULT_REST_URL
    mark_tolerance_pct: float = 0.05
    timeout: float = 10.0
    max_age: float = DEFAULT_MAX_AGE
    keep: float = 8 * DAY
    metrics_file: Path | None = None
    once: bool = False


def prom_file(text: str) -> Path:
    """node_exporter's textfile collector reads ``*.prom`` only: any other name is a mistake."""
    if not text.endswith(".prom"):
        raise argparse.ArgumentTypeError(
            f"must end in .prom (node_exporter reads no other): {text!r}"
        )
    return Path(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    audit = sub.add_parser(
        "audit", help="record the state file's behaviour and compare rounds into a history"
    )
    add_state_file(audit, DEFAULT_STATE_FILE, "state file to watch [%(default)s]")
    audit.add_argument(
        "--history", type=Path, required=True, help="JSON Lines history, rotated as H.1, H.2, ..."
    )
    add_seconds(
        audit,
        "--interval",
        default=60.0,
        low=0.1,
        high=HOUR,
        help="time between samples (with --once: the timer's period, recorded so that report "
        "can tell when the audit was not running); below 1 s for tests",
    )
    add_seconds(
        audit,
        "--compare-every",
        default=300.0,
        low=1.0,
        high=DAY,
        help=f"time between compare rounds, each of REST weight {MAX_ROUND_WEIGHT} at most "
        f"(below {_cheapest_every():g} s the audit alone uses over 5 %% of the weight budget)",
    )
    add_rest_arguments(audit)
    add_max_age(audit, DEFAULT_MAX_AGE)
    add_seconds(
        audit,
        "--keep",
        default=8 * DAY,
        low=DAY,
        high=400 * DAY,
        help="how long rotated history is kept (the last 24 h always are)",
    )
    audit.add_argument(
        "--metrics-file",
        type=prom_file,
        default=None,
        help="also write Prometheus metrics to this *.prom file, atomically, after each sample",
    )
    audit.add_argument(
        "--once", action="store_true", help="one sample (and a round when due), then exit"
    )
    notify.add_audit_arguments(audit)
    return audit


def _cheapest_every() -> float:
    """The shortest --compare-every that keeps the audit under its share of the budget."""
    return round(MAX_ROUND_WEIGHT * 60 / (WEIGHT_SHARE_LIMIT * WEIGHT_BUDGET_PER_MINUTE), 1)


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    setup_logging("INFO")
    options = options_from(AuditOptions, args)
    try:
        auditor = Auditor(options, recent_history(options, now_ms()))
    except (HistoryError, OSError) as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        return EXIT_UNWRITABLE
    # A bad notify file costs the notifications, never the samples: the audit records on
    # and exits 2 (a failed unit: systemctl --failed shows it).
    notify_failed = False
    try:
        notifier_options = notify.notify_options(args)
        if notifier_options is not None:
            auditor.notifier = notify.Notifier(notifier_options)
    except notify.NotifyConfigError as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        notify_failed = True
    _warn_if_costly(options.compare_every)
    code = auditor.once() if options.once else auditor.forever()
    return EXIT_UNWRITABLE if notify_failed else code


def recent_history(options: AuditOptions, now: int) -> Iterator[Sample]:
    """The last day of history as evidence: read from its tail with a byte budget
    (:func:`~binance_funding_ws.tools.history.read_recent`), and without the samples this
    audit could not have written (:class:`~binance_funding_ws.history.Admission`, with its
    own interval as the usual one). A forged line cannot pin a REST ban or fake availability."""
    if not options.history.exists() and not rotated(options.history):
        return  # a first run
    refused = Parsed()
    admission = Admission(now, options.interval, refused)  # its own interval is the usual
    for sample in read_recent(options.history, now - int(DAY * 1000)):
        if admission.admits(sample):
            yield sample
    if refused.refused:
        log.warning(
            "%s: %d sample(s) with claims out of range ignored (first: %s)",
            options.history,
            refused.refused,
            refused.first_refusal,
        )


def _warn_if_costly(compare_every: float) -> None:
    """Short rounds are for tests: against Binance they would eat into the bot's budget."""
    per_minute = MAX_ROUND_WEIGHT * 60 / compare_every
    if compare_every < _cheapest_every():
        log.warning(
            "--compare-every %g s: up to %.0f REST weight a minute, %.1f %% of the %d budget",
            compare_every,
            per_minute,
            100 * per_minute / WEIGHT_BUDGET_PER_MINUTE,
            WEIGHT_BUDGET_PER_MINUTE,
        )


def pid_alive(pid: int | None) -> bool | None:
    """Whether process ``pid`` exists here (``None``: cannot tell)."""
    if not pid or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    except OSError:
        return None
    return True


def run_round(options: AuditOptions, started_at: int) -> CompareRound:
    """One compare round and coverage check; every failure is recorded, none raised."""
    clock = time.monotonic()
    client = RestClient(options.rest_url, timeout=options.timeout, attempts=1)
    round_ = CompareRound(started_at=started_at, duration_s=0.0)
    try:
        report = compare_round(
            options.state_file, client, None, options.mark_tolerance_pct, options.max_age
        )
        record_comparison(round_, report)
        _check_coverage(round_, options, client)
    except (RestError, StateFileError) as exc:
        round_.error = str(exc)
        round_.retry_at = _retry_at(started_at, exc)
    except Exception as exc:  # a bug must cost the round, never the sample or the audit
        log.error("compare round failed unexpectedly", exc_info=True)
        round_.error = f"unexpected {type(exc).__name__}: {exc}"[:300]
    round_.weight = client.spent_weight
    round_.used_weight_1m = client.used_weight
    round_.duration_s = round(time.monotonic() - clock, 3)
    return round_


def _check_coverage(round_: CompareRound, options: AuditOptions, client: RestClient) -> None:
    """Which TRADING perpetuals the file lacks; a feed not connected for --max-age yet is not
    judged (its first frames may not have carried every symbol)."""
    try:
        document = read_state(options.state_file)
        round_.coverage_error = coverage_unknowable(document, now_ms(), options.max_age)
        if round_.coverage_error is not None:
            return
        record_coverage(round_, client.exchange_info(), document, now_ms(), options.max_age)
    except (RestError, StateFileError) as exc:
        round_.coverage_error = str(exc)
        round_.retry_at = _retry_at(round_.started_at, exc)


def _retry_at(started_at: int, exc: Exception) -> int | None:
    """When REST said to come back (429, 418), in epoch ms."""
    if isinstance(exc, RestError) and exc.retry_after is not None:
        return started_at + int(exc.retry_after * 1000)
    return None


class Auditor:
    """Takes samples, decides when a round is due, and records both."""

    def __init__(self, options: AuditOptions, recent: Iterable[Sample]) -> None:
        self.options = options
        self.rolling = RollingAvailability(options.max_age)
        self.last_readable: Sample | None = None
        self.last_sample: Sample | None = None
        self.last_round: CompareRound | None = None
        self.last_good_round: CompareRound | None = None
        for sample in recent:  # one at a time: the history is never held whole
            self._remember(sample)
        self.notifier: notify.Notifier | None = None  # --notify..., --heartbeat-url

    def observe(self, now: int) -> Sample:
        """Look at the state file once."""
        try:
            document = read_state(self.options.state_file)
        except StateFileError as exc:
            seen = Observation(at=now, document=None, error=exc)
        else:
            alive = pid_alive(document.connection_status.pid)
            seen = Observation(at=now, document=document, daemon_alive=alive)
        return sample_of(
            seen,
            source=str(self.options.state_file),
            max_age=self.options.max_age,
            interval=self.options.interval,
            last_readable=self.last_readable,
            restarts_seen=self.last_sample.restarts_seen if self.last_sample else 0,
        )

    def compare_due(self, now: int) -> bool:
        last = self.last_round
        if last is None:
            return True
        if last.retry_at is not None and now < last.retry_at:
            return False  # REST asked us to stay away (429 or a 418 ban)
        # Half an interval early is on time: a timer's runs drift by a little either way.
        due_after = self.options.compare_every - self.options.interval / 2
        return now - last.started_at >= due_after * 1000

    def record(self, sample: Sample) -> bool:
        """Append ``sample`` (rotating first) and refresh the metrics; False if not written."""
        self._note_change(sample)
        if self.notifier is not None:  # before the append: the line records the outcome
            sample.notices = self.notifier.on_sample(sample)
        self._remember(sample)
        written = self._append(sample)
        self._write_metrics(sample)
        return written

    def _append(self, sample: Sample) -> bool:
        history = self.options.history
        try:
            rotate(history, sample.at, self.options.keep)
        except (HistoryError, OSError) as exc:  # rotation can wait; the sample cannot
            log.error("cannot rotate %s: %s", history, _reason(exc))
        try:
            append(history, encode_sample(sample))
        except OSError as exc:  # a missed sample shows as a gap in the report
            log.error("cannot append to %s: %s", history, exc.strerror or exc)
            return False
        return True

    def _remember(self, sample: Sample) -> None:
        self.rolling.add(sample)
        self.last_sample = sample
        if sample.readable:
            self.last_readable = sample
        if sample.compare is not None:
            self.last_round = sample.compare
            if sample.compare.error is None:
                self.last_good_round = sample.compare

    def _note_change(self, sample: Sample) -> None:
        """Log what changed, not every sample: the journal gets a line per event."""
        before = self.last_sample
        if before is not None and before.verdict == sample.verdict:
            pass
        elif sample.problems:
            log.warning("state file %s: %s", sample.verdict, "; ".join(sample.problems))
        elif before is not None:  # a recovery is news too: at warning, so journald keeps it
            log.warning("state file %s again", sample.verdict)
        round_ = sample.compare
        if round_ is not None and (
            round_.error or round_.mismatched or round_.missing or round_.stale_in_file
        ):
            log.warning("compare round: %s", _round_line(round_))

    def _write_metrics(self, sample: Sample) -> None:
        path = self.options.metrics_file
        if path is None:
            return
        metrics = [
            *sample_metrics(sample),
            *compare_metrics(self.last_good_round),
            availability_metric(self.rolling.ratio()),
        ]
        try:
            AtomicWriter(path, what="metrics file").write(render(metrics).encode())
        except OSError as exc:
            log.error("cannot write %s: %s", path, exc.strerror or exc)

    def once(self) -> int:
        now = now_ms()
        sample = self.observe(now)
        if self.compare_due(now):
            sample.compare = run_round(self.options, now)
        written = self.record(sample)
        print(_sample_line(sample))
        return EXIT_OK if written else EXIT_UNWRITABLE

    def forever(self) -> int:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        with ThreadPoolExecutor(1, thread_name_prefix="compare") as pool:
            pending: Future[CompareRound] | None = None
            next_at = time.monotonic()
            while not stop.is_set():
                pending = self._tick(pool, pending)
                next_at = max(next_at + self.options.interval, time.monotonic())
                stop.wait(next_at - time.monotonic())
            if pending is not None:  # a round in flight is finished and kept
                sample = self.observe(now_ms())
                sample.compare = pending.result()
                self.record(sample)
        return EXIT_OK

    def _tick(
        self, pool: ThreadPoolExecutor, pending: Future[CompareRound] | None
    ) -> Future[CompareRound] | None:
        now = now_ms()
        sample = self.observe(now)
        if pending is not None and pending.done():
            sample.compare, pending = pending.result(), None
        elif pending is None and self.compare_due(now):
            pending = pool.submit(run_round, self.options, now)
        self.record(sample)
        return pending


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or one_line(exc)


def _sample_line(sample: Sample) -> str:
    age = sample.last_message_age_s
    data = f"last data {format_age(age)} ago" if age is not None else "no data"
    line = f"{sample.verdict} {sample.state or sample.error_kind}, {data}"
    if sample.compare is not None:
        line += f"; compare: {_round_line(sample.compare)}"
    return line


def _round_line(r: CompareRound) -> str:
    if r.error is not None:
        return f"failed ({r.error})"
    mismatched = ", ".join(sorted(r.mismatched)) or "none"
    missing = ", ".join(r.missing) if r.coverage_error is None else f"unknown ({r.coverage_error})"
    stale = ", ".join(r.stale_in_file) or "none"
    return (
        f"{r.compared} compared, mismatched {mismatched}, {len(r.stale)} stale; "
        f"missing {missing or 'none'}; stale in the file {stale}; weight {r.weight}"
    )
