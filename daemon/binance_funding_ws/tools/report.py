"""``binance-funding-ws report``: how the feed behaved over the audit history, and whether the
bot's REST fallback can go (rules: :mod:`binance_funding_ws.report`).

Exit codes: 0 SAFE; 1 NOT_YET or NOT_SAFE; 2 the history cannot be read, or bad arguments
(one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import msgspec

from binance_funding_ws.argtypes import add_max_age, add_seconds, options_from
from binance_funding_ws.botstats import BotStats
from binance_funding_ws.clock import now_ms
from binance_funding_ws.durations import DAY
from binance_funding_ws.report import (
    DEFAULT_MIN_PERIOD_S,
    DEFAULT_SINCE_S,
    DEFAULT_SLO_PCT,
    EXIT_UNREADABLE,
    AuditReport,
    build_report,
    decode_bot_stats,
    render_text,
)
from binance_funding_ws.state import StateFileError, read_bounded
from binance_funding_ws.text import error_line
from binance_funding_ws.tools import notify
from binance_funding_ws.tools.history import HistoryError, HistoryWindow

PROG = "binance-funding-ws report"
MAX_BOT_STATS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ReportOptions:
    history: Path
    since: float = DEFAULT_SINCE_S
    max_age: float | None = None  # None: the audit's own, as recorded in the samples
    min_period: float = DEFAULT_MIN_PERIOD_S
    slo: float = DEFAULT_SLO_PCT
    bot_stats: Path | None = None
    json: bool = False


def slo_percent(text: str) -> float:
    """An availability objective: more than 0, at most 100 percent."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 100 (percent): {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report", help="judge the audit history: is it safe to drop the REST fallback? exit 0/1/2"
    )
    report.add_argument("--history", type=Path, required=True, help="the audit's history file")
    add_seconds(
        report,
        "--since",
        default=DEFAULT_SINCE_S,
        low=1.0,
        high=400 * DAY,
        help="the window to judge",
    )
    add_max_age(report, None, default_text="the audit's own")
    add_seconds(
        report,
        "--min-period",
        default=DEFAULT_MIN_PERIOD_S,
        low=0.0,
        high=400 * DAY,
        help="time observed (less the gaps) before the verdict can be SAFE",
    )
    report.add_argument(
        "--slo",
        type=slo_percent,
        default=DEFAULT_SLO_PCT,
        help="availability needed for SAFE, in percent [%(default)s]",
    )
    report.add_argument(
        "--bot-stats", type=Path, help="the bot's FundingSource stats (JSON) to report on"
    )
    report.add_argument("--json", action="store_true", help="machine-readable output")
    notify.add_target_arguments(report)
    return report


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        urls = notify.gather_urls(args.notify, args.notify_file)
    except notify.NotifyConfigError as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        return EXIT_UNREADABLE
    return run(options_from(ReportOptions, args), notify_urls=urls)


def run(options: ReportOptions, out: TextIO = sys.stdout, notify_urls: Sequence[str] = ()) -> int:
    now = now_ms()
    window = HistoryWindow(options.history, now - int(options.since * 1000))
    bot, bot_error = read_bot_stats(options.bot_stats)
    try:
        report = build_report(  # reads the window twice, holding no sample
            window,
            history=str(options.history),
            now=now,
            since_s=options.since,
            max_age=options.max_age,  # None: the audit's own, from its last admitted sample
            min_period_s=options.min_period,
            slo_pct=options.slo,
            bot=bot,
            bot_error=bot_error,
        )
    except HistoryError as exc:
        print(error_line(PROG, exc), file=sys.stderr)
        if options.json:  # --json always prints JSON, a failure included
            failure = {"exit_code": EXIT_UNREADABLE, "error": str(exc)}
            out.write(msgspec.json.encode(failure).decode() + "\n")
        return EXIT_UNREADABLE
    report.skipped_lines = window.parsed.skipped
    out.write(as_json(report) if options.json else render_text(report))
    if notify_urls:  # the same verdict, delivered; the exit code stays the verdict's
        out.flush()
        for refusal in notify.report_notify(report, notify_urls):
            print(error_line(PROG, f"not delivered: {refusal}"), file=sys.stderr)
    return report.exit_code


def read_bot_stats(path: Path | None) -> tuple[BotStats | None, str | None]:
    """The bot's stats, or why they cannot be shown (never fatal: the file is the bot's)."""
    if path is None:
        return None, None
    try:
        return decode_bot_stats(read_bounded(path, MAX_BOT_STATS_BYTES)), None
    except StateFileError as exc:
        if exc.reason == "missing":
            return None, f"{path}: no such file (has the bot written it yet?)"
        return None, str(exc)
    except ValueError as exc:
        return None, f"{path}: {exc}"


def as_json(report: AuditReport) -> str:
    return msgspec.json.format(msgspec.json.encode(report)).decode() + "\n"
