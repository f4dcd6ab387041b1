"""``binance-funding-ws run``: its options and its entry point.

Every option comes from its flag, else from its ``FUNDING_WS_*`` environment variable (so a
systemd unit or a container configures the daemon without a wrapper script), else from its
default. Only ``run`` reads the environment: ``status`` or ``compare`` never fail because of
a daemon setting. A bad value ends with one line naming the flag or the variable, exit 2; a
valid flag wins over a bad variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binance_funding_ws.argtypes import count, file_mode, log_level, seconds
from binance_funding_ws.endpoint import Endpoint, stream_endpoint
from binance_funding_ws.market import DEFAULT_MAX_SYMBOLS
from binance_funding_ws.state import DEFAULT_STATE_FILE

ENV_PREFIX = "FUNDING_WS_"
DEFAULT_URL = "wss://fstream.binance.com/market/stream"
DEFAULT_STREAMS = "!markPrice@arr@1s,!ticker@arr"


class UsageError(Exception):
    """A bad option value; the message is one line naming the flag or variable."""


@dataclass(frozen=True)
class RunOptions:
    """Everything ``run`` is told, validated (the defaults live in :data:`SETTINGS` only)."""

    endpoint: Endpoint
    state_file: Path
    write_interval: float
    stall_timeout: float
    rotate_after: float
    forget_after: float
    file_mode: int
    log_level: str
    max_symbols: int


@dataclass(frozen=True)
class _Setting:
    flag: str
    env: str
    kind: Callable[[str], Any]
    default: str
    help: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


def _text(value: str) -> str:
    return value


_FORGET_AFTER = seconds(3600, 100 * 365 * 86400)


def forget_after(value: str) -> float:
    """``0`` (never forget), or at least an hour: forgetting must never race an outage."""
    return 0.0 if value.strip() in ("0", "0.0") else _FORGET_AFTER(value)


def _path(value: str) -> Path:
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(value)


SETTINGS = (
    _Setting("--ws-url", "URL", _text, DEFAULT_URL, "stream endpoint"),
    _Setting("--streams", "STREAMS", _text, DEFAULT_STREAMS, "comma-separated stream names"),
    _Setting("--state-file", "STATE_FILE", _path, DEFAULT_STATE_FILE, "where to publish"),
    _Setting(
        "--write-interval",
        "WRITE_INTERVAL",
        seconds(0.01, 60),
        "1.0",
        "seconds between writes, 0.01 to 60",
    ),
    _Setting(
        "--stall-timeout",
        "STALL_TIMEOUT",
        seconds(0.5, 3600),
        "30",
        "seconds of silence before a redial, 0.5 to 3600",
    ),
    _Setting(
        "--rotate-after",
        "ROTATE_AFTER",
        seconds(0.5, 86400),
        "84600",
        "connection age (s) at which a replacement is dialled, 0.5 to 86400; Binance cuts at 24 h",
    ),
    _Setting(
        "--forget-after",
        "FORGET_AFTER",
        forget_after,
        "604800",
        "drop entries with no update for this many seconds (a week; 0 = never, else >= 3600)",
    ),
    _Setting("--file-mode", "FILE_MODE", file_mode, "644", "octal permissions of the state file"),
    _Setting("--log-level", "LOG_LEVEL", log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    _Setting(
        "--max-symbols",
        "MAX_SYMBOLS",
        count,
        str(DEFAULT_MAX_SYMBOLS),
        "symbols the state file may hold; rows of further symbols are skipped and counted",
    ),
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    run = sub.add_parser("run", help="run the daemon: stream market data into the state file")
    for setting in SETTINGS:
        run.add_argument(
            setting.flag,
            type=setting.kind,
            default=None,
            help=f"{setting.help} [{setting.default}; ${ENV_PREFIX}{setting.env}]",
        )
    return run


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> RunOptions:
    """Flags, then environment variables, then defaults; raise :class:`UsageError`."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = getattr(args, setting.dest)
        if value is None:
            variable = ENV_PREFIX + setting.env
            raw = environ.get(variable)
            source = variable if raw is not None else f"default of {setting.flag}"
            try:
                value = setting.kind(setting.default if raw is None else raw)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{source}: {exc}") from None
        values[setting.dest] = value
    streams = [name.strip() for name in values.pop("streams").split(",") if name.strip()]
    try:
        endpoint = stream_endpoint(values.pop("ws_url"), streams)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    state_file: Path = values["state_file"]
    if not state_file.parent.is_dir():
        raise UsageError(f"--state-file: directory {state_file.parent} does not exist")
    return RunOptions(endpoint=endpoint, **values)


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from binance_funding_ws.runtime.feed import FeedConfig
    from binance_funding_ws.runtime.logs import setup_logging
    from binance_funding_ws.runtime.service import DaemonConfig, run_daemon

    try:
        options = resolve(args, os.environ)
    except UsageError as exc:
        parser.error(str(exc))
    setup_logging(options.log_level)
    config = DaemonConfig(
        state_file=options.state_file,
        feed=FeedConfig(
            endpoint=options.endpoint,
            stall_timeout=options.stall_timeout,
            rotate_after=options.rotate_after,
        ),
        write_interval=options.write_interval,
        file_mode=options.file_mode,
        forget_after=options.forget_after,
        max_symbols=options.max_symbols,
    )
    return run_daemon(config)
