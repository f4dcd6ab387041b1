"""Pure text helpers shared by every command: symbol lists and one-line errors.

Everything a command prints about the feed or a file goes through here, so the wording and
the sanitising of untrusted text (:func:`strip_control`) are defined once.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")


def name_list(names: list[str], limit: int = 10) -> str:
    """``A, B, C (+7 more)``, or ``none``: long symbol lists stay one readable line."""
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown


def one_line(text: object) -> str:
    """``text`` folded onto one line without terminal control (white space runs become one
    space)."""
    return _WHITESPACE.sub(" ", strip_control(str(text))).strip()


def error_line(prog: str, message: object) -> str:
    """The one error format of every command: ``prog: error: message`` on one line."""
    return f"{prog}: error: {one_line(message)}"


# Terminal control, removed from everything that came from the feed, a file or a host. Whole
# escape sequences first, so that their parameters go with them (``ESC [2J`` must not leave
# ``[2J`` behind): CSI; the string commands OSC, DCS, SOS, PM and APC up to their terminator
# (BEL or ST) or the end of the text; then the other two-character escapes. Then any C0
# control (ESC included when alone), DEL and C1 control that is left.
_ESCAPE_SEQUENCE = (
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\Z)"
    r"|\x1b[ -/]*[0-~]"
)
# Unicode format characters (category Cf) are invisible but not inert: the bidi controls
# (U+202A-202E, U+2066-2069) reorder what follows (a symbol shown as another, "Trojan
# Source"), zero-width ones (U+200B-200D, U+2060, U+FEFF) make two names look the same, and
# tags hide text. All of Cf as of Unicode 15.1 (Python 3.13), a superset of older tables;
# written out because ``re`` has no ``\p{Cf}`` and scanning ``unicodedata`` at import costs
# a third of a second. tests/binance_funding_ws/test_text.py checks it against the running
# Python's table.
_FORMAT = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
_CONTROL = re.compile(
    f"{_ESCAPE_SEQUENCE}|[\\x00-\\x1f\\x7f-\\x9f{_FORMAT}\u2028\u2029]", re.DOTALL
)
# Line and paragraph separators (U+2028, U+2029) break lines too: a space, like \n.
_LINE_BREAKING = re.compile(r"[\t\n\v\f\r\u2028\u2029]+")


def strip_control(text: str) -> str:
    """``text`` without terminal control: escape sequences, C0, DEL, C1 and Unicode format
    (Cf: bidi, zero-width) characters removed.

    Tabs and line breaks become one space (words stay apart, and nothing can start a line of
    its own that looks like ours). Printable text, any script, is left alone. Everything from
    the feed, a file or a host goes through this before it reaches a terminal or a log line.
    """
    if _CONTROL.search(text) is None:  # the common case: nothing to do
        return text
    return _CONTROL.sub("", _LINE_BREAKING.sub(" ", text))
