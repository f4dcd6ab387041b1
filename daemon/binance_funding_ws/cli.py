"""Command line: ``binance-funding-ws run | status | compare | audit | report | notify``.

Each command lives in its own module (``runtime.command``, ``tools.health``
(``status``),
``tools.compare``, ``tools.audit``, ``tools.report``, ``tools.notify``) with ``add_parser`` and
``main``; this module only dispatches. Bad arguments end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from binance_funding_ws import __version__


class Command(Protocol):
    """What each command module provides."""

    def add_parser(
        self, sub: argparse._SubParsersAction[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser: ...

    def main(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int: ...


# Each command's module, imported only when it is the command asked for: the daemon's start
# (after a crash, a watchdog kill, a deploy) then skips the tools' imports (the REST client's
# http.client, ssl and email, the audit, Apprise's runner), about half of its start-up time.
COMMANDS: dict[str, str] = {
    "run": "binance_funding_ws.runtime.command",
    "status": "binance_funding_ws.tools.health",  # the user's word; the module, the rules' noun
    "compare": "binance_funding_ws.tools.compare",
    "audit": "binance_funding_ws.tools.audit",
    "report": "binance_funding_ws.tools.report",
    "notify": "binance_funding_ws.tools.notify",
}


def command_module(name: str) -> Command:
    return cast(Command, importlib.import_module(COMMANDS[name]))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv`` naming a command, with only that command's sub-parser
    (the top-level help and a bad command still list them all)."""
    parser = argparse.ArgumentParser(
        prog="binance-funding-ws",
        description="Binance USDⓈ-M funding rates and tickers in an atomic local state file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    asked = next((a for a in argv or () if not a.startswith("-")), None)
    for name in [asked] if asked in COMMANDS else COMMANDS:
        # Each command's own parser comes along, so its errors name the command.
        command_parser = command_module(name).add_parser(sub)
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    return command_module(args.command).main(args, args.command_parser)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
