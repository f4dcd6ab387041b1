"""Command line: ``binance-funding-ws run | status | compare | audit | report | notify``.

Each command lives in its own module (``runtime.command``, ``tools.health``
(``status``),
``tools.compare``, ``tools.audit``, ``tools.report``, ``tools.notify``) with ``add_parser`` and
``main``; this module only dispatches. Bad arguments end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Protocol

from binance_funding_ws import __version__
from binance_funding_ws.runtime import command as run_command
from binance_funding_ws.tools import audit, compare, health, notify, report


class Command(Protocol):
    """What each command module provides."""

    def add_parser(
        self, sub: argparse._SubParsersAction[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser: ...

    def main(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int: ...


COMMANDS: dict[str, Command] = {
    "run": run_command,
    "status": health,  # the command keeps the user's word; the module, the rules' noun
    "compare": compare,
    "audit": audit,
    "report": report,
    "notify": notify,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binance-funding-ws",
        description="Binance USDⓈ-M funding rates and tickers in an atomic local state file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        # Each command's own parser comes along, so its errors name the command.
        command_parser = module.add_parser(sub)
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return COMMANDS[args.command].main(args, args.command_parser)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
