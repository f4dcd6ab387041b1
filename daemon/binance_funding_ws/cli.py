"""Command line: ``binance-funding-ws run | status | compare | simulate``.

Every ``run`` flag has an environment variable (``FUNDING_WS_*``) so a systemd unit or a
container can configure the daemon without a wrapper script. Flags win over variables.
Bad arguments end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from binance_funding_ws import __version__
from binance_funding_ws.argtypes import positive

DEFAULT_URL = "wss://fstream.binance.com/market/stream"
DEFAULT_STREAMS = "!markPrice@arr@1s,!ticker@arr"
DEFAULT_STATE_FILE = ".funding_state.json"
DEFAULT_REST_URL = "https://fapi.binance.com"
ENV_PREFIX = "FUNDING_WS_"


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _file_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"mode out of range: {text!r}")
    return mode


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise argparse.ArgumentTypeError(f"unknown log level: {text!r}")
    return level


def _with_env(kind: Callable[[str], object], name: str, default: str) -> object:
    """Parse an environment default with the flag's own validation, naming the variable."""
    raw = _env(name, default)
    try:
        return kind(raw)
    except argparse.ArgumentTypeError as exc:
        print(f"binance-funding-ws: error: {ENV_PREFIX}{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def build_stream_url(ws_url: str, streams: list[str]) -> str:
    """The URL to dial: ``{ws_url}?streams=a/b`` for a combined ``.../stream`` endpoint.

    A raw endpoint (``.../ws/<stream>``) or a URL that already has a query is used as given;
    a bare ``.../ws`` endpoint takes exactly one stream as its last path segment.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"--ws-url must be a ws:// or wss:// URL, got {ws_url!r}")
    if parts.query or "/ws/" in parts.path:
        return ws_url
    if parts.path.rstrip("/").endswith("/ws"):
        if len(streams) != 1:
            raise ValueError("a raw /ws endpoint carries exactly one stream; use .../stream")
        return f"{ws_url.rstrip('/')}/{streams[0]}"
    return f"{ws_url}?streams={'/'.join(streams)}"


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the daemon: stream market data into the state file")
    run.add_argument(
        "--ws-url", default=_env("URL", DEFAULT_URL), help="stream endpoint [%(default)s]"
    )
    run.add_argument(
        "--streams",
        default=_env("STREAMS", DEFAULT_STREAMS),
        help="comma-separated stream names [%(default)s]",
    )
    run.add_argument(
        "--state-file",
        type=Path,
        default=Path(_env("STATE_FILE", DEFAULT_STATE_FILE)),
        help="where to publish the state [%(default)s]",
    )
    run.add_argument(
        "--write-interval",
        type=positive,
        default=_with_env(positive, "WRITE_INTERVAL", "1.0"),
        help="seconds between writes at most [%(default)s]",
    )
    run.add_argument(
        "--stall-timeout",
        type=positive,
        default=_with_env(positive, "STALL_TIMEOUT", "30"),
        help="seconds without market data before reconnecting [%(default)s]",
    )
    run.add_argument(
        "--rotate-after",
        type=positive,
        default=_with_env(positive, "ROTATE_AFTER", str(23.5 * 3600)),
        help="connection age (s) at which a replacement is dialled; Binance cuts at 24 h "
        "[%(default)s]",
    )
    run.add_argument(
        "--file-mode",
        type=_file_mode,
        default=_with_env(_file_mode, "FILE_MODE", "644"),
        help="octal permissions of the state file, whatever the umask [0644]",
    )
    run.add_argument(
        "--log-level",
        type=_log_level,
        default=_with_env(_log_level, "LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR [%(default)s]",
    )


def _add_status(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="summarise the state file; exit 0/1/2")
    status.add_argument(
        "--state-file",
        type=Path,
        default=Path(_env("STATE_FILE", DEFAULT_STATE_FILE)),
        help="state file to read [%(default)s]",
    )
    status.add_argument(
        "--max-age",
        type=positive,
        default=60.0,
        help="seconds after which data or the file counts as stale [%(default)s]",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")


def _symbols(text: str) -> list[str] | None:
    if text.strip().lower() == "all":
        return None
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not name.replace("_", "").isalnum()]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected SYMBOL,SYMBOL,... or 'all', got {text!r}")
    return names


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"must be a percentage from 0 to 100: {text!r}")
    return value


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, got {text!r}")
    return text


def _add_compare(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="compare the state file with the REST API; exit 0/1/2")
    compare.add_argument(
        "--state-file",
        type=Path,
        default=Path(_env("STATE_FILE", DEFAULT_STATE_FILE)),
        help="state file to read [%(default)s]",
    )
    compare.add_argument(
        "--rest-url", type=_http_url, default=DEFAULT_REST_URL, help="REST API [%(default)s]"
    )
    compare.add_argument(
        "--symbols",
        type=_symbols,
        default=None,
        metavar="SYMBOL,...|all",
        help="symbols to compare [all]",
    )
    compare.add_argument(
        "--mark-tolerance-pct",
        type=_percent,
        default=0.05,
        help="largest acceptable mark-price difference, in percent [%(default)s]",
    )
    compare.add_argument(
        "--max-age",
        type=positive,
        default=60.0,
        help="seconds after which the state file counts as stale [%(default)s]",
    )
    compare.add_argument(
        "--timeout", type=positive, default=10.0, help="HTTP timeout, seconds [%(default)s]"
    )
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    compare.add_argument("--output", type=Path, help="also write the report to this file")


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from binance_funding_ws import simulator

    simulate = sub.add_parser("simulate", help="run a local fake of Binance fstream/fapi")
    simulator.add_arguments(simulate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binance-funding-ws",
        description="Binance USDⓈ-M funding rates and tickers in an atomic local state file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_status(sub)
    _add_compare(sub)
    _add_simulate(sub)
    return parser


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from binance_funding_ws.feed import FeedConfig
    from binance_funding_ws.logs import setup_logging
    from binance_funding_ws.service import DaemonConfig, run_daemon

    streams = [name.strip() for name in args.streams.split(",") if name.strip()]
    if not streams:
        parser.error("--streams names no stream")
    try:
        url = build_stream_url(args.ws_url, streams)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.state_file.parent.is_dir():
        parser.error(f"--state-file: directory {args.state_file.parent} does not exist")
    setup_logging(args.log_level)
    config = DaemonConfig(
        state_file=args.state_file,
        feed=FeedConfig(url=url, stall_timeout=args.stall_timeout, rotate_after=args.rotate_after),
        write_interval=args.write_interval,
        file_mode=args.file_mode,
    )
    return run_daemon(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args, parser)
    if args.command == "status":
        from binance_funding_ws import status_cmd

        return status_cmd.run(args)
    if args.command == "compare":
        from binance_funding_ws import compare_cmd

        return compare_cmd.run(args)
    if args.command == "simulate":
        from binance_funding_ws import simulator
        from binance_funding_ws.logs import setup_logging

        setup_logging("INFO")
        return simulator.run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
