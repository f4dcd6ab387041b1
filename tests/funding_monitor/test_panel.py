"""One host's panel (:mod:`funding_monitor.panel`), mounted in a bare app: it shows what it is
given."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

import funding_monitor.app
from funding_monitor.model import HostView, PollResult
from funding_monitor.panel import HostPanel
from funding_monitor.sources import LocalSource
from monitor_helpers import FIXED_NOW, write_state


async def test_a_panel_shows_what_it_is_given_without_the_monitor_app(tmp_path):
    path = tmp_path / "s.json"
    write_state(path, state="reconnecting")
    view = HostView("somewhere")
    view.apply(PollResult(FIXED_NOW, True, document=LocalSource(path).read_state()))
    panel = HostPanel(0, max_age=30, local=False)
    panel.show(view, FIXED_NOW)  # before mounting: drawn once mounted

    class Bare(App[None]):
        CSS_PATH = Path(funding_monitor.app.__file__).with_name("monitor.tcss")

        def compose(self) -> ComposeResult:
            yield panel

    async with Bare().run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = str(panel.query_one("#header").render())
        assert "somewhere  DEGRADED" in text and "RECONNECTING" in text
        assert "service: unknown (no systemd data)" in text
        assert panel.query_one("#stale").border_title == "stale > 30 s"
        assert panel.query_one("#funding").row_count == 30
        panel.show(view, FIXED_NOW + 100)  # the file ages: the same view, later
        await pilot.pause()
        assert "STATE FILE STALE: not written for" in str(panel.query_one("#banner").render())
