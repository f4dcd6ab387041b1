"""Pure: where the daemon connects. The stream URL is built here, and only here.

A combined endpoint (``.../market/stream``) takes ``?streams=a/b`` and wraps every frame as
``{"stream": NAME, "data": [...]}``; a raw endpoint (``.../market/ws/<stream>``) carries one
stream and sends bare arrays, so the daemon must be told that stream's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    """The URL to dial, and the stream name of a raw endpoint (``None`` when combined)."""

    url: str
    raw_stream: str | None = None


def stream_endpoint(ws_url: str, streams: list[str]) -> Endpoint:
    """The endpoint for ``streams`` at ``ws_url``; ``ValueError`` (one line) if impossible.

    * ``.../stream`` → ``.../stream?streams=a/b`` (combined);
    * ``.../ws`` → ``.../ws/<stream>`` (raw; exactly one stream);
    * a URL that already names a raw stream (``.../ws/<stream>``) or has a query is dialled
      as given.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"--ws-url must be a ws:// or wss:// URL, got {ws_url!r}")
    if not streams:
        raise ValueError("--streams names no stream")
    if "/ws/" in parts.path:
        return Endpoint(ws_url, parts.path.rsplit("/ws/", 1)[1] or None)
    if parts.query:
        return Endpoint(ws_url)
    if parts.path.rstrip("/").endswith("/ws"):
        if len(streams) != 1:
            raise ValueError("a raw /ws endpoint carries exactly one stream; use .../stream")
        return Endpoint(f"{ws_url.rstrip('/')}/{streams[0]}", streams[0])
    return Endpoint(f"{ws_url}?streams={'/'.join(streams)}")
