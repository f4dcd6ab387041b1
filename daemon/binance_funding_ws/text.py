"""Pure text helpers shared by every command: ages, symbol lists and one-line errors.

Everything a command prints about the feed or a file goes through here, so the wording and
the sanitising of untrusted text (:func:`printable`) are defined once.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")


def format_age(seconds: float) -> str:
    """A short human age: ``0.4 s``, ``12 s``, ``3m 05s``, ``2h 10m``, ``3d 4h``."""
    if seconds < 0:
        return "in the future (clock skew?)" if seconds < -1 else "0.0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def name_list(names: list[str], limit: int = 10) -> str:
    """``A, B, C (+7 more)``, or ``none``: long symbol lists stay one readable line."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown


def one_line(text: object) -> str:
    """``text`` folded onto one printable line (white space runs become one space)."""
    return _WHITESPACE.sub(" ", printable(text)).strip()


def error_line(prog: str, message: object) -> str:
    """The one error format of every command: ``prog: error: message`` on one line."""
    return f"{prog}: error: {one_line(message)}"


# C0 controls but tab and newline, DEL and C1: never written raw to a terminal or a log.
# An escape sequence (ESC [ ... final byte, ESC ] ... BEL/ST) is removed whole, so no residue
# such as "[2J" is left behind to confuse a reader.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` with terminal control removed: escape sequences and control characters (but
    tab and newline) become ``?``. Everything from the feed, a file or a host goes through this
    before it reaches a terminal or a log line."""
    return _CONTROL.sub("?", _ESCAPE_SEQUENCE.sub("?", str(text)))
