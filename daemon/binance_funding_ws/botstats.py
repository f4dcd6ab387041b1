"""Counting a consumer's lookups, so that fallbacks are visible (pure: no I/O, no clock).

Every lookup is counted exactly once as ``websocket`` (the state file answered), ``rest`` (a
REST answer, fresh or reused) or ``unavailable`` (``None``): the three always add up to the
lookups made. The other counters say why and at what cost; see :data:`COUNTERS`.

The same counters reach three places: ``FundingSource.stats``, one INFO line per interval
in which fallbacks happened (:func:`summary_line`), and the stats file (:class:`BotStats`)
that the audit ``report --bot-stats`` reads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Literal

import msgspec

from binance_funding_ws.durations import format_age
from binance_funding_ws.state import EpochMs

COUNTERS = (
    "websocket",  # answered from the state file
    "rest",  # answered from REST (a request, or an earlier answer still within max_age)
    "unavailable",  # answered None: unknown or invalid symbol, REST down or refused, ws-only
    "rest_reused",  # REST answers given again while within max_age (no request)
    "rest_requests",  # HTTP requests made
    # requests that failed: network, timeout (the request's deadline), 429, 418, 5xx, a
    # redirect, garbage, an answer dated over an hour ago or in the future
    "rest_errors",
    "rest_skipped",  # lookups refused without a request: circuit open, too many in flight
    "invalid_symbols",  # lookups for something that is not a symbol (never sent anywhere)
    "file_checks",  # stat() calls on the state file (at most one per check interval)
    "file_parses",  # state file versions decoded (once per change)
    "file_errors",  # reads that found the file missing, unreadable or corrupt
)
# Distinct symbols remembered for "which symbols fell back most": the names are the caller's
# (validated, but unbounded in number), so memory must not grow with a runaway caller.
MAX_TRACKED_SYMBOLS = 1_000
OTHER_SYMBOLS = "(other)"
MAX_SHARDS = 64  # per-thread counter shards kept before those of ended threads are folded
TOP_SYMBOLS = 10


class LookupCounters:
    """Thread-safe lookup counters and the symbols that fell back.

    Counting is on every lookup's path, so it takes no lock: each thread counts in a shard of
    its own, written by that thread only. Readers sum the shards under a lock and fold the
    shards of threads that have ended into ``_retired``, so a bot that runs a thread per alert
    does not accumulate shards (nor between reads: a new shard past :data:`MAX_SHARDS` folds
    them too). Totals are exact; a reader may miss a count being made at that instant.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._shards: list[tuple[threading.Thread, dict[str, int]]] = []
        self._retired = dict.fromkeys(COUNTERS, 0)
        self._fallback_symbols: Counter[str] = Counter()
        self._window_symbols: Counter[str] = Counter()

    def add(self, *names: str) -> None:
        """Count one more of each of ``names``."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._new_shard()
        for name in names:
            shard[name] += 1

    def add_shared(self, *names: str) -> None:
        """Like :meth:`add`, under the lock and without a shard: for short-lived threads that
        count once and end (a REST request's), so that they leave no shard behind."""
        with self._lock:
            for name in names:
                self._retired[name] += 1

    def _new_shard(self) -> dict[str, int]:
        shard = self._local.shard = dict.fromkeys(COUNTERS, 0)
        with self._lock:
            if len(self._shards) >= MAX_SHARDS:  # fold ended threads' now, not at the next read
                self._totals()
            self._shards.append((threading.current_thread(), shard))
        return shard

    def _totals(self) -> dict[str, int]:
        """The sum of every shard (the lock is held); ended threads' shards are folded."""
        totals = dict(self._retired)
        live = []
        for thread, shard in self._shards:
            alive = thread.is_alive()  # read first: a thread that ended counts no more
            for name, count in dict(shard).items():
                totals[name] += count
            if alive:
                live.append((thread, shard))
            else:
                for name, count in shard.items():
                    self._retired[name] += count
        self._shards = live
        return totals

    def fell_back(self, symbol: str) -> None:
        """``symbol``'s lookup was not answered by the file."""
        with self._lock:
            for counts in (self._fallback_symbols, self._window_symbols):
                if symbol in counts or len(counts) < MAX_TRACKED_SYMBOLS:
                    counts[symbol] += 1
                else:
                    counts[OTHER_SYMBOLS] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return self._totals()

    def top_symbols(self) -> dict[str, int]:
        """The symbols that fell back most since the start, most first."""
        with self._lock:
            return dict(self._fallback_symbols.most_common(TOP_SYMBOLS))

    def take_window(self) -> tuple[dict[str, int], Counter[str]]:
        """The totals now and the symbols that fell back since the last call (then forgotten)."""
        with self._lock:
            window, self._window_symbols = self._window_symbols, Counter()
            return self._totals(), window


def summary_line(
    before: Mapping[str, int],
    after: Mapping[str, int],
    symbols: Counter[str],
    interval: float,
    circuit_open_for: float,
) -> str | None:
    """The INFO line for one interval, or ``None`` when the file answered every lookup."""
    delta = {name: after[name] - before.get(name, 0) for name in COUNTERS}
    fallbacks = delta["rest"] + delta["unavailable"]
    if not fallbacks:
        return None
    lookups = fallbacks + delta["websocket"]
    most = ", ".join(f"{name} {count}" for name, count in symbols.most_common(5)) or "none"
    line = (
        f"{fallbacks} of {lookups} lookups not answered by the state file in the last "
        f"{format_age(interval)}: {delta['rest']} from REST, {delta['unavailable']} unavailable; "
        f"most: {most}; REST requests {delta['rest_requests']}, errors {delta['rest_errors']}, "
        f"skipped {delta['rest_skipped']}"
    )
    if delta["invalid_symbols"]:
        line += f"; invalid symbols {delta['invalid_symbols']}"
    if delta["file_errors"]:
        line += f"; state file unreadable {delta['file_errors']} times"
    if circuit_open_for > 0:
        line += f"; REST paused for {circuit_open_for:.0f} s more"
    return line


Mode = Literal["fallback", "websocket-only"]


class BotStats(msgspec.Struct, kw_only=True):
    """The stats file: a consumer's counters, cumulative since ``started_at``.

    Written atomically once per report interval (and at close), so ``updated_at`` tells a
    reader whether the bot is alive. Readers must ignore keys they do not know.
    ``top_rest_symbols`` holds the symbols whose lookups the file could not answer most often.
    """

    updated_at: EpochMs
    started_at: EpochMs
    mode: Mode
    max_age_s: float
    websocket: int
    rest: int
    unavailable: int
    rest_errors: int
    rest_requests: int
    rest_skipped: int
    invalid_symbols: int
    file_errors: int
    top_rest_symbols: dict[str, int]


# The counters the stats file carries: the fields of BotStats that are counters, in its order.
STATS_FILE_COUNTERS = tuple(name for name in BotStats.__struct_fields__ if name in COUNTERS)

_stats_encoder = msgspec.json.Encoder()


def encode_bot_stats(stats: BotStats) -> bytes:
    return _stats_encoder.encode(stats) + b"\n"


def decode_bot_stats(data: bytes) -> BotStats:
    """Parse a stats file (for the audit report); ``msgspec.DecodeError`` if it is not one."""
    return msgspec.json.decode(data, type=BotStats)
