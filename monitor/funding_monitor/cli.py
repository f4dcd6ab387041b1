"""``funding-monitor``: the live screen, or ``--once`` for scripts.

funding-monitor --host volspike-do                 # live, over SSH like `ssh volspike-do`
funding-monitor --host a --host b                  # fleet view; Enter opens a host
funding-monitor --state-file ./.funding_state.json # a local file
funding-monitor --host volspike-do --once [--json] # exit 0 healthy, 1 degraded, 2 unreachable

Over SSH the audit history (/var/lib/<service>/audit.jsonl, the Ansible role's default) is read
too: its last 24 h are on the screen (`h` for details) and in ``--once``; ``--history PATH``
names another file (or one for a local state file), ``--no-history`` reads none.

The live screen exits with the last verdict's code, or 70 (EX_SOFTWARE) if it crashed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from binance_funding_ws.argtypes import add_max_age, positive
from binance_funding_ws.clock import now_s
from binance_funding_ws.health import EXIT_HEALTHY, Summary, render_text
from binance_funding_ws.state import DEFAULT_STATE_FILE
from binance_funding_ws.text import error_line
from funding_monitor.history_view import HistoryOutcome, once_lines
from funding_monitor.model import host_summary
from funding_monitor.notices import notice_lines
from funding_monitor.poller import Poller
from funding_monitor.safe import scrubbed, strip_control
from funding_monitor.sources import UNIT_PATTERN, LocalSource, RemoteSource, Source, Timeouts

# The state file on a droplet deployed by the role (the bot's directory), read with --host.
DROPLET_STATE_FILE = f"/home/trader/volume-spike-bot/{DEFAULT_STATE_FILE}"
DEFAULT_SERVICE = "binance-funding-ws"
PROG = "funding-monitor"
EXIT_USAGE = 2  # a bad command line, as argparse exits
EXIT_INTERNAL_ERROR = os.EX_SOFTWARE  # the live screen crashed: a bug, not a verdict
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _unit(text: str) -> str:
    if not UNIT_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"not a systemd unit name: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Live monitor of binance-funding-ws: the state file, over SSH or locally.",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="SSH host or ~/.ssh/config alias ([user@]host[:port]); repeat for a fleet view",
    )
    parser.add_argument(
        "--state-file",
        help=f"state file path [{DEFAULT_STATE_FILE}; with --host {DROPLET_STATE_FILE}]",
    )
    parser.add_argument(
        "--interval", type=positive, default=2.0, help="seconds between polls [%(default)s]"
    )
    add_max_age(parser)  # the one freshness threshold, as in `binance-funding-ws status`
    parser.add_argument(
        "--service", type=_unit, default=DEFAULT_SERVICE, help="systemd unit [%(default)s]"
    )
    parser.add_argument("--ssh-config", type=Path, help="OpenSSH client config [~/.ssh/config]")
    parser.add_argument(
        "--timeout", type=positive, default=10.0, help="SSH connect/read timeout [%(default)s]"
    )
    history = parser.add_mutually_exclusive_group()
    history.add_argument(
        "--history",
        help="the audit's history file (on the host with --host) "
        "[/var/lib/<service>/audit.jsonl with --host; none for a local --state-file]",
    )
    history.add_argument("--no-history", action="store_true", help="do not read the audit history")
    parser.add_argument("--once", action="store_true", help="print a summary and exit")
    parser.add_argument("--json", action="store_true", help="with --once: JSON output")
    parser.add_argument("--log-file", type=Path, help="write a debug log here")
    return parser


def history_path(args: argparse.Namespace) -> str | None:
    """The audit history to read, or ``None``: given, else the role's default on a host."""
    if args.no_history:
        return None
    if args.history is not None:
        return str(args.history)
    if not args.host:
        return None  # a local state file: its audit, if any, could be anywhere
    # The role's funding_audit_history: /var/lib/{{ funding_service_name }}/audit.jsonl
    return f"/var/lib/{args.service.removesuffix('.service')}/audit.jsonl"


def make_pollers(args: argparse.Namespace) -> list[Poller]:
    history = history_path(args)
    return [Poller(source, args.interval, history=history) for source in make_sources(args)]


def make_sources(args: argparse.Namespace) -> list[Source]:
    if not args.host:
        return [LocalSource(Path(args.state_file or DEFAULT_STATE_FILE))]
    timeouts = Timeouts(connect=args.timeout, read=args.timeout)
    state_file = args.state_file or DROPLET_STATE_FILE
    return [
        RemoteSource(host, state_file, args.service, timeouts, args.ssh_config)
        for host in args.host
    ]


def run_once(pollers: list[Poller], args: argparse.Namespace) -> int:
    """Poll each host once and print the shared summary (and its history's last 24 h): one,
    or a list for a fleet."""
    results: list[tuple[Summary, HistoryOutcome | None]] = []
    for poller in pollers:
        view = poller.new_view()
        view.apply(poller.poll(want_history=True))
        poller.close()
        results.append((host_summary(view, now_s(), args.max_age), view.history))
    if args.json:
        objects = [once_object(summary, history) for summary, history in results]
        shown = objects[0] if len(objects) == 1 else objects
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(shown)).decode() + "\n")
    else:
        # The text goes to a terminal: what the file or host said is shown without control.
        sys.stdout.write(
            "".join(
                render_text(scrubbed(summary), title=PROG)
                + "".join(line + "\n" for line in once_lines(history))
                + "".join(f"  {line}\n" for line in said_lines(history))
                for summary, history in results
            )
        )
    return max(summary.exit_code for summary, _ in results)


def said_lines(history: HistoryOutcome | None) -> list[str]:
    """The audit's notifications, for ``--once`` (nothing when it sends none)."""
    if history is None or history.report is None:
        return []
    return notice_lines(history.notices, history.report.generated_at)


def once_object(summary: Summary, history: HistoryOutcome | None) -> dict[str, object]:
    """The shared summary's keys, exactly, and two more: ``history``, the audit report of the
    last 24 h (``report --json``'s object), or ``null`` when there is none; and
    ``notifications``, what the audit sent and what waits in its outbox (``null`` when it
    sends none)."""
    report = None if history is None else history.report
    said = None if history is None else history.notices
    return {
        **msgspec.to_builtins(summary),
        "history": msgspec.to_builtins(report),
        "notifications": msgspec.to_builtins(said),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not args.once:
        parser.error("--json needs --once")
    if not args.host and args.state_file is None:
        parser.error("give --host HOST (over SSH) or --state-file PATH (a local file)")
    if args.log_file is None:
        logging.basicConfig(level=logging.CRITICAL, format=LOG_FORMAT)
    else:
        try:
            handler = logging.FileHandler(args.log_file)
        except OSError as exc:
            where = strip_control(str(args.log_file))
            print(error_line(PROG, f"cannot write the log file {where}: {exc.strerror or exc}"),
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        logging.basicConfig(handlers=[handler], level=logging.DEBUG, format=LOG_FORMAT)
    pollers = make_pollers(args)
    if args.once:
        return run_once(pollers, args)
    from funding_monitor.app import MonitorApp

    app = MonitorApp(pollers, max_age=args.max_age, local=not args.host)
    code = app.run()
    if app.return_code:  # an unexpected exception ended it; Textual printed the traceback
        return EXIT_INTERNAL_ERROR
    # No code only when Textual itself ended the app (its screenshot-and-exit debug mode).
    return EXIT_HEALTHY if code is None else code


if __name__ == "__main__":
    sys.exit(main())
