"""Pure: the audit's notifications as the monitor shows them — the last messages sent (or
refused), those still waiting in the outbox, and the last heartbeat.

All of it comes from the history the monitor already reads: each sample of an audit that
sends notifications records what it sent (:class:`binance_funding_ws.history.Notices`), with
services masked to scheme and host by the audit. Everything is still text from a host:
folded onto one line without terminal control before it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from binance_funding_ws.durations import format_ago
from binance_funding_ws.history import Sample
from binance_funding_ws.text import one_line

LAST_SENT = 8  # messages listed, the newest first


class SentNotice(msgspec.Struct, kw_only=True):
    at: int  # epoch ms of the sample that sent it
    kind: str
    title: str
    service: str  # scheme and host only
    ok: bool
    error: str | None = None


class Heartbeat(msgspec.Struct, kw_only=True):
    at: int
    service: str
    ok: bool
    error: str | None = None


class NoticesView(msgspec.Struct, kw_only=True):
    """``funding-monitor --once --json``'s ``notifications``: what the audit said lately."""

    sent: list[SentNotice]  # the newest first, at most LAST_SENT
    waiting: int  # messages in the outbox after the last sample
    waiting_titles: list[str]  # the oldest few of them
    dropped: int  # dropped from a full outbox over the window
    folded: int  # held back by the hourly cap over the window
    heartbeat: Heartbeat | None = None  # the last one fetched


def notices_of(samples: Sequence[Sample]) -> NoticesView | None:
    """The notifications in ``samples`` (oldest first); ``None`` when the audit sends none."""
    recorded = [s for s in samples if s.notices is not None]
    if not recorded:
        return None
    sent: list[SentNotice] = []
    beat: Heartbeat | None = None
    for sample in reversed(recorded):
        assert sample.notices is not None
        for d in reversed(sample.notices.deliveries):
            if d.kind == "HEARTBEAT":
                beat = beat or Heartbeat(
                    at=sample.at, service=one_line(d.service), ok=d.ok, error=_line(d.error)
                )
            elif len(sent) < LAST_SENT:
                sent.append(
                    SentNotice(at=sample.at, kind=one_line(d.kind), title=one_line(d.title),
                               service=one_line(d.service), ok=d.ok, error=_line(d.error))
                )  # fmt: skip
    last = recorded[-1].notices
    assert last is not None
    return NoticesView(
        sent=sent,
        waiting=last.waiting,
        waiting_titles=[one_line(t) for t in last.waiting_titles],
        dropped=sum(s.notices.dropped for s in recorded if s.notices is not None),
        folded=sum(s.notices.folded for s in recorded if s.notices is not None),
        heartbeat=beat,
    )


def _line(text: str | None) -> str | None:
    return None if text is None else one_line(text)


def notice_lines(view: NoticesView | None, now_ms: int) -> list[str]:
    """The history screen's and ``--once``'s lines about notifications (none when the audit
    sends none)."""
    if view is None:
        return []
    lines = [f"outbox      {_waiting(view)}"]
    if view.heartbeat is not None:
        b = view.heartbeat
        result = "ok" if b.ok else f"failed: {b.error}"
        lines.append(f"heartbeat   {result}, {format_ago((now_ms - b.at) / 1000)} ({b.service})")
    if not view.sent:
        lines.append("sent        nothing in the last 24 h")
    for n, s in enumerate(view.sent):
        label = "sent        " if n == 0 else "            "
        result = "" if s.ok else f" — NOT delivered: {s.error}"
        lines.append(
            f"{label}{format_ago((now_ms - s.at) / 1000)} to {s.service}: {s.title}{result}"
        )
    return lines


def _waiting(view: NoticesView) -> str:
    text = "empty" if not view.waiting else f"{view.waiting} waiting"
    if view.waiting_titles:
        text += ", the oldest: " + "; ".join(view.waiting_titles[:3])
    if view.dropped:
        text += f"; {view.dropped} dropped (outbox full)"
    if view.folded:
        text += f"; {view.folded} held back by the hourly cap"
    return text
