"""The state file: its schema, its encoder and its reader — the one definition of the format.

The daemon encodes a :class:`StateDocument`; ``status``, ``compare``, the monitor and any
consumer (the volume-alert bot) decode it with :func:`read_state`. Everything here is pure
except :func:`read_state`, which reads one file.

Versioning: ``schema_version`` changes only when a change would break an existing reader
(a field removed, renamed or retyped, a new connection state). Adding an optional field does
not bump it, and readers ignore fields they do not know, so old readers keep working.
"""

from __future__ import annotations

import errno
import inspect
import os
import stat
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1
# Where the daemon publishes and every command reads by default: the bot's working directory.
DEFAULT_STATE_FILE = ".funding_state.json"
# Readers refuse a larger file: today's file is ~0.4 MB for ~900 symbols and 2.6 MB for 4,000.
MAX_STATE_BYTES = 64 * 1024 * 1024

ConnectionState = Literal["connecting", "connected", "stalled", "reconnecting", "stopped"]

# Exchange decimals are kept as the exchange's strings: never rounded through float.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
DecimalString = Annotated[str, msgspec.Meta(pattern=DECIMAL_PATTERN)]
EpochMs = Annotated[int, msgspec.Meta(ge=0, description="Unix epoch milliseconds")]


# Entries may be built by position (the daemon does: it is cheaper than keywords), so the
# order of their fields is part of these types' contract; JSON readers see names only.
class FundingEntry(msgspec.Struct, frozen=True, gc=False):
    """One symbol's latest mark-price update (``markPriceUpdate`` row)."""

    mark_price: DecimalString
    index_price: DecimalString
    estimated_settle_price: DecimalString
    funding_rate: DecimalString
    next_funding_time: Annotated[
        EpochMs, msgspec.Meta(description="0 when no funding is scheduled (SETTLING contracts)")
    ]
    event_time: Annotated[EpochMs, msgspec.Meta(description="exchange event time (E)")]
    received_at: Annotated[EpochMs, msgspec.Meta(description="local time the row arrived")]
    mark_price_avg: DecimalString | None = None
    contract_type: Annotated[
        int | None, msgspec.Meta(description="Binance 'st': 1 USDⓈ-M, 2 COIN-M")
    ] = None
    pair: str | None = None


class TickerEntry(msgspec.Struct, frozen=True, gc=False):
    """One symbol's latest 24 h ticker (``24hrTicker`` or ``24hrMiniTicker`` row)."""

    last_price: DecimalString
    open_price: DecimalString
    high_price: DecimalString
    low_price: DecimalString
    volume: DecimalString
    quote_volume: DecimalString
    event_time: EpochMs
    received_at: EpochMs
    price_change: DecimalString | None = None
    price_change_percent: DecimalString | None = None
    weighted_avg_price: DecimalString | None = None
    trade_count: int | None = None
    contract_type: int | None = None
    pair: str | None = None


class StreamStatus(msgspec.Struct, kw_only=True):
    """Per-stream traffic on the feed."""

    messages: int = 0
    last_message_at: EpochMs | None = None


class ConnectionStatus(msgspec.Struct, kw_only=True):
    """How the feed is doing. ``state`` is ``connected`` only while market data flows."""

    state: ConnectionState
    state_since: EpochMs
    connected_since: EpochMs | None
    last_message_at: Annotated[
        EpochMs | None, msgspec.Meta(description="last frame carrying market data")
    ]
    reconnects: int
    messages: Annotated[int, msgspec.Meta(description="frames received, all kinds")]
    errors: Annotated[
        int,
        msgspec.Meta(
            description="bad frames and rows skipped, and input refused by a limit "
            "(rows dated over 60 s ahead, symbols over --max-symbols, unlisted streams)"
        ),
    ]
    last_error: str | None
    last_error_at: EpochMs | None = None
    url: str = ""
    pid: int = 0
    started_at: EpochMs = 0
    stalls: int = 0
    rotations: int = 0
    writes: Annotated[int, msgspec.Meta(description="state files written before this one")] = 0
    write_errors: int = 0
    last_write_error: str | None = None
    hint: str | None = None
    streams: Annotated[
        dict[str, StreamStatus],
        msgspec.Meta(description="per-stream traffic; at most 16 stream names are listed"),
    ] = msgspec.field(default_factory=dict)
    restored_at: Annotated[
        EpochMs | None,
        msgspec.Meta(
            description="when this daemon started from the previous file's entries (warm start); "
            "those entries keep their own event_time and received_at"
        ),
    ] = None
    restored_funding: Annotated[int, msgspec.Meta(description="funding entries restored")] = 0
    restored_tickers: Annotated[int, msgspec.Meta(description="ticker entries restored")] = 0


class MissingSymbols(msgspec.Struct, kw_only=True):
    """Symbols present in one map but not the other, so a gap is visibly expected.

    A new listing or a SETTLING contract (MATICUSDT) has a mark price but no ticker for a
    while; that is normal, and this section says so instead of leaving a mystery.
    """

    no_ticker: list[str]
    no_funding: list[str]


class StateDocument(msgspec.Struct, kw_only=True):
    """The whole state file."""

    schema_version: int
    updated_at: Annotated[EpochMs, msgspec.Meta(description="when this file was written")]
    connection_status: ConnectionStatus
    funding: dict[str, FundingEntry]
    tickers: dict[str, TickerEntry]
    missing: MissingSymbols


class StateFileError(Exception):
    """The state file is missing, unreadable, corrupt or of an unsupported schema.

    ``reason`` is one of ``missing``, ``unreadable``, ``corrupt``, ``unsupported``; ``str()`` is
    a one-line message fit for a terminal or a log.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _VersionOnly(msgspec.Struct):
    schema_version: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(StateDocument)
_version_decoder = msgspec.json.Decoder(_VersionOnly)


def missing_symbols(funding: Mapping[str, object], tickers: Mapping[str, object]) -> MissingSymbols:
    """Name the symbols that are in one map but not the other (sorted)."""
    return MissingSymbols(
        no_ticker=sorted(funding.keys() - tickers.keys()),
        no_funding=sorted(tickers.keys() - funding.keys()),
    )


def encode_state(document: StateDocument) -> bytes:
    """Serialise a document as compact JSON followed by a newline."""
    return _encoder.encode(document) + b"\n"


def encode_state_into(document: StateDocument, buffer: bytearray) -> None:
    """:func:`encode_state` into ``buffer``, which is resized to fit.

    For a writer that publishes every second: reusing one buffer keeps its pages mapped,
    where a fresh ~0.6 MB ``bytes`` each time costs ~150 page faults to map it (and as many
    again for the newline appended to a copy). See docs/benchmarks.md.
    """
    _encoder.encode_into(document, buffer)
    buffer.extend(b"\n")


def decode_state(data: bytes, source: str = "state file") -> StateDocument:
    """Parse and validate a state document; raise :class:`StateFileError` if it is not one.

    Every failure is a :class:`StateFileError`, whatever the bytes: a 1,000-deep nesting
    (msgspec's recursion guard) included.
    """
    try:
        return _decode(data, source)
    except RecursionError:
        raise StateFileError("corrupt", f"{source}: not a state file (nested too deeply)") from None


def _decode(data: bytes, source: str) -> StateDocument:
    if not data.strip():
        raise StateFileError("corrupt", f"{source}: file is empty")
    try:
        version = _version_decoder.decode(data).schema_version
    except msgspec.DecodeError as exc:
        raise StateFileError("corrupt", f"{source}: not a state file ({exc})") from None
    if version != SCHEMA_VERSION:
        hint = "upgrade this reader" if version > SCHEMA_VERSION else "upgrade the daemon"
        raise StateFileError(
            "unsupported",
            f"{source}: schema_version {version}, this reader understands {SCHEMA_VERSION}; {hint}",
        )
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise StateFileError("corrupt", f"{source}: invalid state document ({exc})") from None


def read_state(path: str | os.PathLike[str]) -> StateDocument:
    """Read and validate the state file at ``path``.

    The daemon replaces the file atomically, so a read never sees a half-written document.
    Raises :class:`StateFileError` with a one-line message when the file is missing,
    unreadable, not a regular file, larger than :data:`MAX_STATE_BYTES`, not valid JSON, or of
    a schema version this reader does not understand.
    """
    return decode_state(read_bounded(path), os.fspath(path))


def read_bounded(path: str | os.PathLike[str], limit: int = MAX_STATE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Opened with :func:`open_regular` (no symlink followed, no blocking on a FIFO, nothing but
    a regular file), and a file over ``limit`` is refused rather than read until memory runs
    out. Raises :class:`StateFileError`.
    """
    try:
        fd = open_regular(path)
    except StateFileError as exc:
        if exc.reason == "missing":
            raise StateFileError(
                "missing", f"{path}: no such file (is the daemon running?)"
            ) from None
        raise
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise StateFileError("unreadable", f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # no state file is ever this large: call it corrupt
        raise StateFileError(
            "corrupt", f"{path}: larger than {limit // (1024 * 1024)} MiB; refusing to read it"
        )
    return data


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of the regular file at ``path``: the one safe open of every
    reader of a file the service user can write (the state file, the audit history, the bot's
    stats, the monitor's local files).

    A symlink is not followed (``O_NOFOLLOW``), the open never blocks (a FIFO would hang a
    reader for ever), never becomes a controlling terminal, and anything but a regular file
    (a FIFO, a device such as ``/dev/zero``, a directory, a socket) is refused after
    ``fstat``. Raises :class:`StateFileError` (reason ``missing`` or ``unreadable``) with a
    one-line message; the caller owns the descriptor.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise StateFileError("missing", f"{path}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateFileError(
                "unreadable", f"{path}: is a symbolic link; not following it"
            ) from None
        raise StateFileError("unreadable", f"{path}: cannot read ({exc.strerror})") from None
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise StateFileError("unreadable", f"{path}: cannot read ({exc.strerror})") from None
    if kind != stat.S_IFREG:
        os.close(fd)
        what = _FILE_KINDS.get(kind, "not a regular file")
        raise StateFileError("unreadable", f"{path}: {what}, not a regular file")
    return fd


_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def json_schema() -> dict[str, object]:
    """The JSON Schema of the state file, as shipped in ``state.schema.json``."""
    schema = msgspec.json.schema(StateDocument)
    properties = schema["$defs"]["StateDocument"]["properties"]
    properties["schema_version"]["const"] = SCHEMA_VERSION
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "binance-funding-ws state file"
    schema["$comment"] = f"schema_version {SCHEMA_VERSION}; generated from binance_funding_ws.state"
    _clean_descriptions(schema)
    return schema


def _clean_descriptions(node: object) -> None:
    """Dedent every description taken from a docstring, as msgspec 0.23 does and 0.22 did
    not, so the generated schema is the same whichever msgspec is installed."""
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = inspect.cleandoc(node["description"])
        for value in node.values():
            _clean_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _clean_descriptions(value)
