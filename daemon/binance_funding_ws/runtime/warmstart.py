"""Warm start: a restarted daemon starts from the previous state file, so a restart (a deploy,
a watchdog kill, an OOM kill, a reboot before the network is up) never blanks the consumers'
data.

Read after the single-writer lock is taken, with the one reader (:func:`read_state`). Every
entry is kept exactly as it was (values, ``event_time``, ``received_at``): it ages by its own
event time, so the stale rule treats old entries honestly, and the merge replaces one only by
a row at least as new, so no value goes back in time across a restart.

A previous file that cannot be used (torn, not JSON, the wrong shape, an unsupported
``schema_version``, absurdly large) never stops the daemon: it is moved aside as
``<state file>.corrupt-<UTC time>`` for forensics (the newest :data:`KEEP_CORRUPT` are kept)
and the daemon starts with empty maps. A missing file is the ordinary first start.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from binance_funding_ws.state import StateDocument, StateFileError, read_state

log = logging.getLogger(__name__)

KEEP_CORRUPT = 3
_SET_ASIDE = ("corrupt", "unsupported")  # StateFileError reasons that mean "not usable"


def load_previous(path: Path, now_ms: int) -> StateDocument | None:
    """The previous document at ``path``, or ``None`` (first start, or not usable)."""
    try:
        return read_state(path)
    except StateFileError as exc:
        if exc.reason == "missing":
            return None
        if exc.reason not in _SET_ASIDE:  # unreadable: nothing to judge, nothing to move
            log.warning("previous state file not used (%s); starting empty", exc)
            return None
        try:
            aside = set_aside(path, now_ms)
        except OSError as move:
            log.warning(
                "previous state file not used (%s) and not moved aside (%s); starting empty",
                exc,
                move.strerror or move,
            )
            return None
        log.warning("previous state file not used (%s); kept as %s; starting empty", exc, aside)
        return None


def set_aside(path: Path, now_ms: int) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` and keep only the newest few."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ms / 1000))
    aside = path.with_name(f"{path.name}.corrupt-{stamp}.{now_ms % 1000:03d}Z")
    os.rename(path, aside)  # same directory: atomic, and never follows a link at the target
    prefix = f"{path.name}.corrupt-"
    # The names sort by time (fixed-width UTC stamps), so the oldest come first.
    kept = sorted(p for p in path.parent.iterdir() if p.name.startswith(prefix))
    for old in kept[:-KEEP_CORRUPT]:
        old.unlink(missing_ok=True)
    return aside
