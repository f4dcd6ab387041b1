"""``binance-funding-ws status``: is the state file trustworthy right now?

Exit codes: 0 healthy, 1 degraded, 2 missing or unreadable — usable from cron, Nagios or an
Ansible task. ``--json`` prints the same facts for machines, as the one
:class:`~binance_funding_ws.health.Summary` shape.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import msgspec

from binance_funding_ws.argtypes import DEFAULT_MAX_AGE, add_max_age, add_state_file, options_from
from binance_funding_ws.clock import now_ms
from binance_funding_ws.health import Summary, render_text, summarize, unreadable
from binance_funding_ws.state import DEFAULT_STATE_FILE, StateFileError, read_state

TITLE = "binance-funding-ws status"


@dataclass(frozen=True)
class StatusOptions:
    state_file: Path
    max_age: float = DEFAULT_MAX_AGE
    json: bool = False


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    status = sub.add_parser("status", help="summarise the state file; exit 0/1/2")
    add_state_file(status, DEFAULT_STATE_FILE, "state file to read [%(default)s]")
    add_max_age(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return status


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return run(options_from(StatusOptions, args))


def check(options: StatusOptions) -> Summary:
    """Read and judge the state file."""
    source = str(options.state_file)
    try:
        document = read_state(options.state_file)
    except StateFileError as exc:
        return unreadable(source, str(exc), options.max_age)
    return summarize(document, now_ms(), options.max_age, source)


def run(options: StatusOptions, out: TextIO = sys.stdout) -> int:
    summary = check(options)
    if options.json:
        out.write(msgspec.json.format(msgspec.json.encode(summary)).decode() + "\n")
    else:
        out.write(render_text(summary, TITLE))
    return summary.exit_code
