"""The daemon's log (:mod:`binance_funding_ws.runtime.logs`): rate-limited lines and printable,
one-line records."""

from __future__ import annotations

import logging

from binance_funding_ws.runtime.logs import RateLimitedLog
from factories import ESCAPES


def test_rate_limited_log_holds_back_and_reports_suppressed(caplog):
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("t"), burst=2, period=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        results = [limited.log(logging.WARNING, "k", f"line {i}") for i in range(5)]
        now[0] = 11
        limited.log(logging.WARNING, "k", "after")
    assert results == [True, True, False, False, False]
    assert caplog.messages == ["line 0", "line 1", "after (3 similar lines suppressed)"]


def test_log_lines_fold_input_onto_one_printable_line():
    import io
    import logging

    from binance_funding_ws.runtime.logs import PrintableFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test-printable")
    logger.addHandler(handler)
    try:
        logger.warning("bad input: %s", f"X{ESCAPES}\nFORGED line")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("unexpected")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING bad input: X FORGED line"
    assert lines[1] == "ERROR unexpected" and lines[2].startswith("Traceback")
