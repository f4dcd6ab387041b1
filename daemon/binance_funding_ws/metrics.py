"""Pure: the audit's view of the feed as Prometheus text exposition, for node_exporter's
textfile collector (``*.prom``; the audit writes it atomically after every sample).

Conventions: base units in the name (``_seconds``, ``_ratio``), counters end in ``_total``,
no sample timestamps (node_exporter refuses them in textfiles; it stamps the scrape itself).
A value that is not known (no readable file, no compare round yet) is left out rather than
faked: alert on ``absent()`` or on the readable gauge.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from binance_funding_ws.history import CompareRound, Sample
from binance_funding_ws.report import available

PREFIX = "binance_funding_ws_"


@dataclass(frozen=True)
class Metric:
    name: str  # without PREFIX
    kind: str  # gauge or counter
    help: str
    value: float | None  # None: unknown, not exported


def _gauge(name: str, help: str, value: float | None) -> Metric:
    return Metric(name, "gauge", help, value)


def _counter(name: str, help: str, value: float | None) -> Metric:
    return Metric(name, "counter", help, value)


def sample_metrics(sample: Sample) -> list[Metric]:
    """What the last sample says about the state file and the daemon."""
    readable = sample.readable
    return [
        _gauge(
            "audit_last_sample_timestamp_seconds", "When the audit last looked.", sample.at / 1000
        ),
        _gauge("state_file_readable", "1 if the state file could be read.", readable),
        _gauge("connected", "1 if the feed is connected.", sample.state == "connected"),
        _gauge(
            "healthy", "1 if the status rules call the file healthy.", sample.verdict == "HEALTHY"
        ),
        _gauge(
            "last_message_age_seconds",
            "Seconds since the last market data.",
            sample.last_message_age_s,
        ),
        _gauge(
            "last_write_age_seconds",
            "Seconds since the daemon last wrote the file.",
            sample.last_write_age_s,
        ),
        _gauge(
            "funding_symbols",
            "Symbols with a funding entry.",
            _if(readable, sample.funding_symbols),
        ),
        _gauge(
            "ticker_symbols", "Symbols with a ticker entry.", _if(readable, sample.ticker_symbols)
        ),
        _gauge(
            "stale_funding_symbols",
            "Funding entries older than the audit's --max-age.",
            _if(readable, sample.stale_funding),
        ),
        _counter(
            "reconnects_total", "Reconnects of the running daemon.", _count(sample, "reconnects")
        ),
        _counter("stalls_total", "Silent stalls of the running daemon.", _count(sample, "stalls")),
        _counter(
            "rotations_total", "24 h rotations of the running daemon.", _count(sample, "rotations")
        ),
        _counter(
            "write_errors_total",
            "Failed state-file writes of the running daemon.",
            _count(sample, "write_errors"),
        ),
        _counter(
            "restarts_total",
            "Daemon restarts (pid changes) the audit has seen.",
            sample.restarts_seen,
        ),
    ]


def _if(known: bool, value: int) -> int | None:
    return value if known else None


def _count(sample: Sample, name: str) -> int | None:
    """One of the daemon's counters; they restart from zero with the daemon (a counter reset
    that Prometheus's rate() and increase() expect)."""
    return None if sample.counters is None else getattr(sample.counters, name)


def compare_metrics(last: CompareRound | None) -> list[Metric]:
    """What the last compare round that ran found (nothing before the first)."""
    if last is None or last.error is not None:
        return []
    mismatched = len(last.mismatched)
    return [
        _gauge(
            "compare_match_ratio",
            "Share of the symbols compared in the last round that matched REST.",
            (last.compared - mismatched) / last.compared if last.compared else None,
        ),
        _gauge(
            "compare_last_timestamp_seconds",
            "When the last compare round ran.",
            last.started_at / 1000,
        ),
        _gauge(
            "compare_mismatched_symbols", "Symbols that differed from REST last round.", mismatched
        ),
        _gauge(
            "coverage_missing_symbols",
            "TRADING perpetuals on REST that the file lacked last round.",
            None if last.coverage_error is not None else len(last.missing),
        ),
    ]


def availability_metric(ratio: float | None) -> Metric:
    return _gauge(
        "availability_24h_ratio",
        "Share of the last 24 h of samples that were connected with fresh data.",
        ratio,
    )


def render(metrics: list[Metric]) -> str:
    """Prometheus text exposition format 0.0.4, no timestamps."""
    lines: list[str] = []
    for metric in metrics:
        if metric.value is None:
            continue
        name = PREFIX + metric.name
        lines += [
            f"# HELP {name} {metric.help}",
            f"# TYPE {name} {metric.kind}",
            f"{name} {_number(metric.value)}",
        ]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


class RollingAvailability:
    """Availability over the last ``window_s`` seconds in bounded memory (a bucket a minute,
    whatever the sampling interval), for the ``availability_24h_ratio`` gauge."""

    def __init__(self, max_age: float, window_s: float = 86400.0) -> None:
        self.max_age = max_age
        self.window_minutes = int(window_s // 60)
        self._buckets: deque[list[int]] = deque()  # [minute, samples, available samples]

    def add(self, sample: Sample) -> None:
        minute = sample.at // 60_000
        if not self._buckets or self._buckets[-1][0] != minute:
            self._buckets.append([minute, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += available(sample, self.max_age)
        while self._buckets[0][0] <= minute - self.window_minutes:
            self._buckets.popleft()

    def ratio(self) -> float | None:
        total = sum(bucket[1] for bucket in self._buckets)
        return sum(bucket[2] for bucket in self._buckets) / total if total else None
