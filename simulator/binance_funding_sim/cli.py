"""``binance-funding-sim``: run the simulator until interrupted; print where it listens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from binance_funding_sim.server import GARBAGE_KINDS, Simulator, SimulatorConfig
from binance_funding_ws.argtypes import count, options_from, port, positive
from binance_funding_ws.runtime.logs import setup_logging
from binance_funding_ws.text import error_line

log = logging.getLogger("binance_funding_sim")
PROG = "binance-funding-sim"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A local stand-in for Binance USDⓈ-M fstream/fapi, with fault injection.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's flags."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on [%(default)s]")
    parser.add_argument("--port", type=port, default=9000, help="0 picks a free port [%(default)s]")
    parser.add_argument("--tick", type=positive, default=1.0, help="seconds per tick [%(default)s]")
    parser.add_argument(
        "--symbols",
        type=count,
        default=50,
        help="ordinary contracts, plus 3 special [%(default)s]",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed [%(default)s]")
    parser.add_argument(
        "--mark-frames", type=count, default=2, help="mark-price frames per tick [%(default)s]"
    )
    parser.add_argument(
        "--ticker-changes", type=count, default=None, help="ticker rows per tick [a third]"
    )
    parser.add_argument(
        "--max-connection-age",
        type=positive,
        default=86_400.0,
        help="close connections after this many seconds, as Binance at 24 h [%(default)s]",
    )
    faults = parser.add_argument_group(
        "fault switches", "also at run time: GET http://HOST:PORT/_sim/<fault>"
    )
    faults.add_argument("--drop-every", type=positive, metavar="S", help="cut connections")
    faults.add_argument("--stall-every", type=positive, metavar="S", help="go silent")
    faults.add_argument(
        "--stall-for", type=positive, default=10.0, metavar="S", help="silence length [10]"
    )
    faults.add_argument("--garbage-every", type=positive, metavar="S", help="send bad frames")
    faults.add_argument(
        "--legacy-only",
        action="store_true",
        help="serve /market paths silently too, like a stream that never delivers",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("INFO")
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted; print where it listens."""
    config = options_from(SimulatorConfig, args)
    try:
        asyncio.run(_serve(config, args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(error_line(PROG, f"cannot listen: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    return 0


async def _serve(config: SimulatorConfig, args: argparse.Namespace) -> None:
    sim = Simulator(config)
    await sim.start()
    if args.legacy_only:
        sim.stall()
    print(
        f"simulator listening on {sim.ws_url()} (REST {sim.rest_url()})",
        flush=True,
    )
    periodic = [
        (args.drop_every, sim.drop),
        (args.stall_every, lambda: sim.stall(args.stall_for)),
        (args.garbage_every, lambda: sim.garbage(len(GARBAGE_KINDS))),
    ]
    tasks = [asyncio.create_task(_every(s, f)) for s, f in periodic if s is not None]
    try:
        await asyncio.Event().wait()
    finally:
        for task in tasks:
            task.cancel()
        await sim.stop()


async def _every(seconds: float, fault: Callable[[], Any]) -> None:
    while True:
        await asyncio.sleep(seconds)
        log.info("fault: %s", getattr(fault, "__name__", "scheduled fault"))
        fault()


if __name__ == "__main__":
    sys.exit(main())
