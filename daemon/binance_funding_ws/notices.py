"""Pure: what the audit tells a person, and when — notifications, without any I/O.

The audit samples the state file once a minute (a systemd timer runs ``audit --once``); this
module turns each sample into the messages a person should get, in one vocabulary:

* **DEGRADED** — unhealthy (the ``status`` rules) for ``--notify-after`` on end; the title
  names the cause (:func:`binance_funding_ws.report.cause_of`) and the data's age.
* **RECOVERED** — healthy again after a DEGRADED was said; with how long the outage lasted.
* **RESTARTS** — more than :data:`RESTARTS_PER_HOUR` daemon restarts within an hour.
* **MISMATCH** — a compare round found values that differ from REST, naming the symbols.
* **COVERAGE** — TRADING perpetuals missing from the file for :data:`COVERAGE_AFTER_S`.
* **REPORT** — the daily digest (``--digest-at``) and ``report --notify``: the verdict.

One message per transition: each event is said once, and said again only after its condition
has cleared. A flapping feed is not paged every time: at most :data:`MAX_PER_HOUR` messages an
hour (the digest and the report aside); the rest are *folded* and the next message says how
many. When the cap has hidden the last word (a RECOVERED folded after a DEGRADED was sent),
the person is told the current condition as soon as the cap allows.

What must survive between runs (the timer starts a fresh process each minute) is
:class:`NoticeState`; messages not yet delivered wait in an :class:`Outbox`. Both are stored
beside the history by :mod:`binance_funding_ws.tools.notify`, which also does the sending.

URLs hold secrets (a Telegram bot token, a webhook's path): :func:`mask_url` is the only
form in which one is ever shown, and :func:`redact` removes their parts from any text.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Sequence

import msgspec

from binance_funding_ws.durations import HOUR, MINUTE, format_age
from binance_funding_ws.history import CompareRound, Sample
from binance_funding_ws.report import CAUSES, SAFE, AuditReport, cause_of, render_text
from binance_funding_ws.text import name_list, one_line

DEGRADED, RECOVERED, RESTARTS, MISMATCH, COVERAGE, REPORT = (
    "DEGRADED",
    "RECOVERED",
    "RESTARTS",
    "MISMATCH",
    "COVERAGE",
    "REPORT",
)
MAX_PER_HOUR = 6  # paged messages an hour at most; the rest are folded into the next one
RESTARTS_PER_HOUR = 3  # more than this many daemon restarts in an hour is news
COVERAGE_AFTER_S = 20 * MINUTE  # a TRADING symbol missing this long is news
DEFAULT_NOTIFY_AFTER_S = 2 * MINUTE
MAX_OUTBOX = 200  # messages waiting at most; the oldest are dropped (and counted) beyond it
MAX_TITLE = 250  # characters (Apprise's own title limit for most services)
MAX_BODY = 3500  # characters: under Telegram's 4,096 with room for the fold note
MAX_TRACKED_SYMBOLS = 2000  # coverage and mismatch bookkeeping, per kind (Binance lists ~600)
WAITING_TITLES = 5  # outbox titles recorded in each history sample
NOTICE_STATE_VERSION = 1


# -- URLs: shown as scheme and host only -----------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
# A host that is a name or an address. Many Apprise services put a secret where a host goes
# (tgram://BOT_TOKEN/CHAT, discord://WEBHOOK_ID/TOKEN, ntfy://TOPIC): only a dotted DNS
# name, an IPv4 or IPv6 literal or "localhost" is shown; anything else is "…".
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
HIDDEN = "…"


def scheme_of(url: str) -> str | None:
    match = _SCHEME.match(url.strip())
    return match[1].lower() if match else None


def host_of(url: str) -> str:
    """The host part of ``url`` (no user, password or port), or ``""``."""
    rest = _SCHEME.sub("", url.strip(), count=1)
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else ""
    return host.partition(":")[0]


def mask_url(url: str) -> str:
    """``url`` as scheme and host only — the one form a URL is ever logged, recorded or
    shown in. Apprise's own ``url(privacy=True)`` keeps a generic webhook's path, and for
    ``json://`` or Discord-style webhooks the path is the secret; for many services the
    "host" is the token itself, so only a real host name or address is kept."""
    scheme = scheme_of(url)
    if scheme is None:
        return f"{HIDDEN} (not a URL)"
    host = host_of(url)
    shown = host.lower() == "localhost" or bool(
        _DNS_NAME.match(host) or _IPV4.match(host) or _IPV6.match(host)
    )
    return f"{scheme}://{host.lower() if shown else HIDDEN}"


def secret_parts(url: str) -> list[str]:
    """The pieces of ``url`` that may be secret: all but its scheme and a shown host, and
    their percent-decoded forms. Used to scrub text that a library produced about the URL."""
    from urllib.parse import unquote  # stdlib, pure

    rest = _SCHEME.sub("", url.strip(), count=1)
    shown_host = mask_url(url).partition("://")[2]
    parts = {url.strip(), rest}
    for piece in re.split(r"[/?#&=@:]", rest):
        if len(piece) >= 3 and piece.lower() != shown_host:
            parts.add(piece)
            parts.add(unquote(piece))
    return sorted((p for p in parts if len(p) >= 3), key=len, reverse=True)


def redact(text: str, urls: Iterable[str]) -> str:
    """``text`` with every secret part of ``urls`` replaced by ``…``, on one line."""
    for url in urls:
        for part in secret_parts(url):
            text = text.replace(part, HIDDEN)
    return one_line(text)


class NotifyFileError(ValueError):
    """A notify file that cannot be used; the message is one line naming the line at fault."""


def parse_notify_lines(text: str, source: str) -> list[tuple[int, str]]:
    """``(line number, URL)`` of each URL in a notify file: one a line, blank lines and ``#``
    comments ignored. A line that is not ``scheme://…`` is an error naming its line (and
    the line's scheme at most: it may hold a secret)."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if scheme_of(line) is None or line != line.split()[0]:
            raise NotifyFileError(
                f"{source} line {number}: not an Apprise URL (expected scheme://..., one a line)"
            )
        found.append((number, line))
    return found


# -- messages ------------------------------------------------------------------------------


class Message(msgspec.Struct, kw_only=True):
    """One message for a person; ``pending`` are the keys of the services it still awaits."""

    seq: int = 0  # its place in the outbox: delivered in this order
    kind: str
    title: str
    body: str
    created_at: int  # epoch ms
    pending: list[str] = msgspec.field(default_factory=list)
    attempts: int = 0
    last_error: str | None = None


def message(kind: str, title: str, body: str, at: int) -> Message:
    title = one_line(title)
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 1] + "…"
    return Message(kind=kind, title=title, body=body, created_at=at)


class Outbox(msgspec.Struct, kw_only=True):
    """Messages not yet delivered to every service, oldest first."""

    v: int = NOTICE_STATE_VERSION
    next_seq: int = 1
    messages: list[Message] = msgspec.field(default_factory=list)
    dropped: int = 0  # dropped in all (the outbox was full)


def enqueue(outbox: Outbox, messages: Sequence[Message], targets: Sequence[str]) -> int:
    """Add ``messages`` for every service in ``targets``; drop the oldest beyond
    :data:`MAX_OUTBOX`. Returns how many were dropped now."""
    for m in messages:
        m.seq, outbox.next_seq = outbox.next_seq, outbox.next_seq + 1
        m.pending = list(targets)
        outbox.messages.append(m)
    overflow = max(0, len(outbox.messages) - MAX_OUTBOX)
    if overflow:
        del outbox.messages[:overflow]
        outbox.dropped += overflow
    return overflow


def forget_services(outbox: Outbox, targets: Sequence[str]) -> None:
    """Services no longer configured are not waited for; messages no one awaits go."""
    keep = set(targets)
    for m in outbox.messages:
        m.pending = [key for key in m.pending if key in keep]
    outbox.messages = [m for m in outbox.messages if m.pending]


def settle(outbox: Outbox, seq: int, target: str, error: str | None) -> Message | None:
    """Record one attempt to deliver message ``seq`` to ``target``; the message leaves the
    outbox once every service has it."""
    for m in outbox.messages:
        if m.seq == seq:
            m.attempts += 1
            if error is None:
                m.pending = [key for key in m.pending if key != target]
            else:
                m.last_error = error
            if not m.pending:
                outbox.messages.remove(m)
            return m
    return None


def due_for(outbox: Outbox, target: str) -> list[Message]:
    """What ``target`` still awaits, oldest first (it gets them in this order, stopping at
    the first it refuses)."""
    return [m for m in outbox.messages if target in m.pending]


# -- the state carried from one sample to the next -------------------------------------------


class NoticeState(msgspec.Struct, kw_only=True):
    """What the notifier remembers between samples (and between ``--once`` runs)."""

    v: int = NOTICE_STATE_VERSION
    last_at: int | None = None  # the last sample seen
    unhealthy_since: int | None = None  # the first unhealthy sample of the current outage
    degraded_said: bool = False  # a DEGRADED was decided for the current outage
    degraded_cause: str | None = None
    believed_degraded: bool = False  # what the last *sent* DEGRADED/RECOVERED told the person
    restarts_seen: int | None = None  # the sample's running count, to notice new restarts
    restart_times: list[int] = msgspec.field(default_factory=list)  # within the last hour
    restarts_said: bool = False
    mismatch_said: list[str] = msgspec.field(default_factory=list)
    missing_since: dict[str, int] = msgspec.field(default_factory=dict)
    coverage_said: list[str] = msgspec.field(default_factory=list)
    sent_times: list[int] = msgspec.field(default_factory=list)  # paged in the last hour
    folded: dict[str, int] = msgspec.field(default_factory=dict)  # kind: count, not yet said
    digest_day: str | None = None  # "YYYY-MM-DD" (UTC) of the last daily digest
    safe_said_for: str | None = None  # the release the first SAFE was announced for
    checked_urls: str | None = None  # digest of the URL list Apprise last accepted


def healthy(sample: Sample) -> bool:
    """The one health rule of notifications: the ``status`` verdict."""
    return sample.verdict == "HEALTHY"


def transitions(
    state: NoticeState,
    sample: Sample,
    *,
    host: str,
    notify_after_s: float,
    state_file: str,
    history: str,
) -> list[Message]:
    """The messages ``sample`` calls for, before the hourly cap; updates ``state``."""
    found = [
        *_health(state, sample, host, notify_after_s, state_file, history),
        *_restarts(state, sample, host, state_file),
    ]
    if sample.compare is not None:
        found += _mismatch(state, sample.compare, sample.at, host, state_file)
        found += _coverage(state, sample.compare, sample.at, host)
    state.last_at = sample.at
    return found


def _health(
    state: NoticeState,
    sample: Sample,
    host: str,
    notify_after_s: float,
    state_file: str,
    history: str,
) -> list[Message]:
    if healthy(sample):
        since, said, cause = state.unhealthy_since, state.degraded_said, state.degraded_cause
        state.unhealthy_since, state.degraded_said, state.degraded_cause = None, False, None
        if since is None or not said:
            return []  # never said (shorter than --notify-after): nothing to take back
        lasted = format_age((sample.at - since) / 1000)
        return [
            message(
                RECOVERED,
                f"RECOVERED {host}: healthy again after {lasted} ({cause or 'outage'})",
                f"The funding state file is fresh again; the outage lasted {lasted}.\n"
                f"Next: binance-funding-ws report --history {history} --since 24h",
                sample.at,
            )
        ]
    if state.unhealthy_since is None:
        state.unhealthy_since = sample.at
    # The outage is named by the most telling cause seen in it, as the report names it: a
    # stall is followed by reconnecting, and "stalled" is what happened.
    causes = [c for c in (state.degraded_cause, cause_of(sample)) if c is not None]
    state.degraded_cause = min(causes, key=CAUSES.index)
    lasted_s = (sample.at - state.unhealthy_since) / 1000
    if state.degraded_said or lasted_s < notify_after_s:
        return []
    state.degraded_said = True
    return [degraded_message(sample, state.degraded_cause, host, lasted_s, state_file)]


NEXT_STEPS = {
    "file missing": "systemctl status binance-funding-ws; journalctl -u binance-funding-ws -n 50",
    "file unreadable": "ls -l {state}; binance-funding-ws status --state-file {state}",
    "daemon down": "systemctl status binance-funding-ws; journalctl -u binance-funding-ws -n 50",
    "write errors": "df -h {dir}; journalctl -u binance-funding-ws -n 50",
    "stalled": "binance-funding-ws status --state-file {state}; "
    "journalctl -u binance-funding-ws -n 50",
    "reconnecting": "binance-funding-ws status --state-file {state}; "
    "journalctl -u binance-funding-ws -n 50",
    "stale": "binance-funding-ws status --state-file {state}",
}


def degraded_message(
    sample: Sample, cause: str, host: str, lasted_s: float, state_file: str
) -> Message:
    age = sample.last_message_age_s
    detail = f"data {format_age(age)} old" if age is not None else one_line(sample.error or "")
    title = f"DEGRADED {host}: {cause}" + (f", {detail}" if detail else "")
    problems = "\n".join(f"- {one_line(p)}" for p in sample.problems[:5])
    directory = state_file.rpartition("/")[0] or "."
    steps = NEXT_STEPS[cause].format(state=state_file, dir=directory)
    body = (
        f"Unhealthy for {format_age(lasted_s)}: the bot gets no fresh funding data from the "
        f"state file.\n{problems}\nNext: {steps}"
    )
    return message(DEGRADED, title, body, sample.at)


def _restarts(state: NoticeState, sample: Sample, host: str, state_file: str) -> list[Message]:
    before, state.restarts_seen = state.restarts_seen, sample.restarts_seen
    if before is not None and sample.restarts_seen > before:
        new = min(sample.restarts_seen - before, RESTARTS_PER_HOUR + 1)
        state.restart_times += [sample.at] * new
    hour_ago = sample.at - int(HOUR * 1000)
    state.restart_times = [t for t in state.restart_times if t > hour_ago][-100:]
    count = len(state.restart_times)
    if count <= RESTARTS_PER_HOUR:
        state.restarts_said = False
        return []
    if state.restarts_said:
        return []
    state.restarts_said = True
    return [
        message(
            RESTARTS,
            f"RESTARTS {host}: the daemon restarted {count} times in an hour",
            "The daemon keeps restarting (a crash loop, or the service manager killing it).\n"
            "Next: journalctl -u binance-funding-ws -n 200; systemctl status binance-funding-ws",
            sample.at,
        )
    ]


def _mismatch(
    state: NoticeState, round_: CompareRound, at: int, host: str, state_file: str
) -> list[Message]:
    if round_.error is not None:
        return []  # the round did not run: nothing was compared, nothing cleared
    symbols = sorted(round_.mismatched)[:MAX_TRACKED_SYMBOLS]
    if not symbols:
        state.mismatch_said = []
        return []
    new = [s for s in symbols if s not in state.mismatch_said]
    state.mismatch_said = symbols
    if not new:
        return []
    lines = "\n".join(f"- {one_line(s)}: {one_line(round_.mismatched[s])}" for s in symbols[:10])
    return [
        message(
            MISMATCH,
            f"MISMATCH {host}: {one_line(name_list(symbols, 5))} differ from REST",
            f"A compare round found the state file's values differ from Binance REST:\n{lines}\n"
            f"Next: binance-funding-ws compare --state-file {state_file}",
            at,
        )
    ]


def _coverage(state: NoticeState, round_: CompareRound, at: int, host: str) -> list[Message]:
    if round_.error is not None or round_.coverage_error is not None:
        return []  # not judged this round: the clocks keep running
    missing = set(round_.missing[:MAX_TRACKED_SYMBOLS])
    state.missing_since = {s: t for s, t in state.missing_since.items() if s in missing}
    for symbol in sorted(missing):
        state.missing_since.setdefault(symbol, at)
    state.coverage_said = [s for s in state.coverage_said if s in missing]
    overdue = sorted(
        s
        for s, since in state.missing_since.items()
        if at - since >= COVERAGE_AFTER_S * 1000 and s not in state.coverage_said
    )
    if not overdue:
        return []
    state.coverage_said = sorted({*state.coverage_said, *overdue})
    return [
        message(
            COVERAGE,
            f"COVERAGE {host}: {one_line(name_list(overdue, 5))} missing for "
            f"{format_age(COVERAGE_AFTER_S)}",
            f"TRADING perpetuals on Binance but not in the state file: "
            f"{one_line(name_list(overdue, 50))}.\n"
            "The bot gets no funding data for them. Next: restart the daemon "
            "(systemctl restart binance-funding-ws) and see if they appear.",
            at,
        )
    ]


# -- the hourly cap ------------------------------------------------------------------------


def admit(
    state: NoticeState, found: Sequence[Message], now: int, host: str
) -> tuple[list[Message], int]:
    """The messages to send now, under the hourly cap; returns them and how many were folded.

    When the cap hid the last word about the feed's health, a catch-up message says the
    current condition as soon as the cap allows."""
    hour_ago = now - int(HOUR * 1000)
    state.sent_times = [t for t in state.sent_times if t > hour_ago]
    admitted: list[Message] = []
    folded_now = 0
    candidates = list(found)
    health_kinds = {DEGRADED, RECOVERED}
    said_health = any(m.kind in health_kinds for m in candidates)
    room = len(state.sent_times) < MAX_PER_HOUR
    if room and not said_health and state.folded and state.believed_degraded != state.degraded_said:
        candidates.append(_catch_up(state, now, host))
    for m in candidates:
        if len(state.sent_times) >= MAX_PER_HOUR:
            state.folded[m.kind] = state.folded.get(m.kind, 0) + 1
            folded_now += 1
            continue
        if state.folded:
            _say_folded(m, state.folded)
            state.folded = {}
        state.sent_times.append(now)
        if m.kind in health_kinds:
            state.believed_degraded = m.kind == DEGRADED
        admitted.append(m)
    return admitted, folded_now


def _catch_up(state: NoticeState, now: int, host: str) -> Message:
    if state.degraded_said:
        return message(
            DEGRADED,
            f"DEGRADED {host}: {state.degraded_cause or 'unhealthy'} (still)",
            "The feed is unhealthy now; messages were held back by the hourly cap.",
            now,
        )
    return message(
        RECOVERED,
        f"RECOVERED {host}: healthy now",
        "The feed is healthy now; messages were held back by the hourly cap.",
        now,
    )


def _say_folded(m: Message, folded: dict[str, int]) -> None:
    total = sum(folded.values())
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(folded.items()))
    m.title = message(m.kind, f"{m.title} (+{total} folded)", "", m.created_at).title
    m.body += (
        f"\n({total} earlier message(s) were held back by the cap of {MAX_PER_HOUR} an hour: "
        f"{kinds}; the audit history has them all.)"
    )


# -- the daily digest ----------------------------------------------------------------------


def parse_clock(text: str) -> tuple[int, int]:
    """``HH:MM`` (UTC) as (hours, minutes); ``ValueError`` (one line) otherwise."""
    match = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", text.strip())
    if match is None:
        raise ValueError(f"not a time of day HH:MM (UTC, 00:00 to 23:59): {text!r}")
    return int(match[1]), int(match[2])


def utc_day(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_ms / 1000))


def digest_due(state: NoticeState, now: int, at: tuple[int, int]) -> bool:
    """Whether the day's digest is due: ``at`` has passed today (UTC) and none was sent
    today. A run that missed the minute (the droplet was down) sends it later that day."""
    day = utc_day(now)
    moment = calendar.timegm(time.strptime(day, "%Y-%m-%d")) + at[0] * 3600 + at[1] * 60
    return now >= moment * 1000 and state.digest_day != day


SAFE_WORDS = (
    "This is the first SAFE verdict for this release: the bot may now drop its REST "
    "fallback for funding data (keep the state file's freshness check)."
)


def report_message(report: AuditReport, host: str, first_safe: bool = False) -> Message:
    """The verdict as one message: the ``report`` text, and in words when the REST fallback
    may go."""
    pct = report.availability_pct
    available = "no samples" if pct is None else f"{pct:.3f} % available"
    title = f"REPORT {host}: {report.verdict}, {available}"
    words = f"{SAFE_WORDS}\n\n" if first_safe and report.verdict == SAFE else ""
    return message(REPORT, title, words + render_text(report), report.generated_at)


def waiting_titles(outbox: Outbox) -> list[str]:
    return [m.title for m in outbox.messages[:WAITING_TITLES]]
