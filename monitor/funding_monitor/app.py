"""The Textual app: one live screen per host, or a fleet view with one row per host.

Blocking I/O never runs in the UI thread: each host's :class:`~funding_monitor.poller.Poller`
runs in an exclusive thread worker that posts a :class:`PollDone` message, and the next poll
is scheduled only once that message arrived (a timer set after completion, never an
interval), so polls of one host can neither overlap nor pile up behind a slow link.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer

from binance_funding_ws.durations import format_age, format_age_or
from binance_funding_ws.health import EXIT_HEALTHY
from funding_monitor.hosts import Host
from funding_monitor.model import PollResult, host_summary
from funding_monitor.panel import HostPanel, state_text, verdict_text
from funding_monitor.poller import Poller
from funding_monitor.safe import scrubbed, strip_control
from funding_monitor.screens import HelpScreen, HistoryScreen, HostScreen, JournalScreen

FLEET_COLUMNS = (
    "host", "verdict", "service", "feed", "last msg", "written", "funding", "tickers", "stale",
    "errors", "problem",
)  # fmt: skip


class PollDone(Message):
    """A poll of ``host`` finished (posted from the worker thread)."""

    def __init__(self, host: Host, result: PollResult) -> None:
        super().__init__()
        self.host = host
        self.result = result


class MonitorApp(App[int]):
    """``funding-monitor``: returns the last verdict's exit code when it quits."""

    TITLE = "funding-monitor"
    CSS_PATH = "monitor.tcss"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("l", "journal", "journal"),
        Binding("h", "history", "history"),
        Binding("r", "refresh", "refresh"),
        Binding("question_mark", "help", "help"),
        Binding("escape", "escape", show=False),
    ]

    def __init__(
        self,
        pollers: list[Poller],
        max_age: float = 60.0,
        local: bool = False,
        clock: Callable[[], float] = time.time,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        self.hosts = [Host(index, poller) for index, poller in enumerate(pollers)]
        self.max_age = max_age
        self.local = local
        self.clock = clock
        self.autostart = autostart
        # Kept rather than queried: it stays on the base screen and is redrawn while a host
        # or a window is shown over it.
        self.fleet_table: DataTable[str | Text] | None = None

    def _new_panel(self, host: Host) -> HostPanel:
        panel = HostPanel(host.index, max_age=self.max_age, local=self.local)
        panel.show(host.view, self.clock())
        return panel

    def compose(self) -> ComposeResult:
        if len(self.hosts) > 1:
            self.fleet_table = DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
            yield self.fleet_table
        else:
            yield self._new_panel(self.hosts[0])
        yield Footer()

    def on_mount(self) -> None:
        if self.fleet_table is not None:
            self.fleet_table.add_columns(*FLEET_COLUMNS)
            self._draw_fleet(self.fleet_table)
        self.set_interval(1.0, self._tick)  # ages move even when no poll arrives
        if self.autostart:
            for host in self.hosts:
                self.poll_now(host)

    # -- polling --------------------------------------------------------------------------

    def poll_now(self, host: Host) -> None:
        """Start a poll of ``host`` now, or right after the one in flight."""
        if not host.try_start_poll():
            return
        self.run_worker(
            partial(self._poll_in_thread, host, *host.take_requests()),
            name=f"poll {host.name}",
            # Else Textual describes the worker by repr(work), the whole document included.
            description=f"poll {host.name}",
            group=f"host-{host.index}",
            exclusive=True,
            thread=True,
        )

    def _poll_in_thread(self, host: Host, journal: bool, history: bool) -> None:
        result = host.poller.poll(want_journal=journal, want_history=history)
        self.post_message(PollDone(host, result))

    def on_poll_done(self, message: PollDone) -> None:
        host, result = message.host, message.result
        delay = host.finish_poll(result)
        self._redraw(host)
        for screen in self.screen_stack:  # the host's windows, if open
            if not isinstance(screen, JournalScreen | HistoryScreen) or screen.index != host.index:
                continue
            if isinstance(screen, JournalScreen) and result.journal is not None:
                screen.show(result.journal)
            elif isinstance(screen, HistoryScreen) and result.history is not None:
                screen.show(host.view)
        if delay == 0:
            self.poll_now(host)
        else:
            host.timer = self.set_timer(delay, partial(self.poll_now, host))

    def _redraw(self, host: Host | None = None) -> None:
        if not self.is_running:
            # Shutting down: the screens are being removed, but a poll that was in flight
            # or the tick timer may still deliver.
            return
        now_s = self.clock()
        for panel in self.screen.query(HostPanel):
            if host is None or panel.index == host.index:
                panel.show(self.hosts[panel.index].view, now_s)
        if self.fleet_table is not None:
            self._draw_fleet(self.fleet_table)

    def _tick(self) -> None:
        self._redraw()

    def _draw_fleet(self, table: DataTable[str | Text]) -> None:
        cursor = table.cursor_row
        table.clear()
        now_s = self.clock()
        for host in self.hosts:
            table.add_row(*self._fleet_cells(host, now_s))
        table.move_cursor(row=min(cursor, len(self.hosts) - 1))

    def _fleet_cells(self, host: Host, now_s: float) -> list[str | Text]:
        """One host's fleet row; what came from the host is plain, clean text."""
        summary = scrubbed(host_summary(host.view, now_s, self.max_age))
        service = Text(strip_control(host.view.service.active) if host.view.service else "?")
        problem = Text(summary.problems[0] if summary.exit_code != EXIT_HEALTHY else "")
        name = Text(summary.source)
        if summary.state is None or summary.counters is None:
            return [name, verdict_text(summary), service, *["-"] * 7, problem]
        message_age = summary.last_message_age_s
        return [
            name,
            verdict_text(summary),
            service,
            state_text(summary.state),
            format_age_or(message_age, "never"),
            format_age(summary.last_write_age_s or 0.0),
            str(summary.funding_symbols),
            str(summary.ticker_symbols),
            str(len(summary.stale_funding)),
            str(summary.counters.errors),
            problem,
        ]

    # -- keys -----------------------------------------------------------------------------

    def _panel(self) -> HostPanel | None:
        panels = list(self.screen.query(HostPanel))
        return panels[0] if panels else None

    def _current_host(self) -> Host | None:
        """The host on screen, or the fleet row under the cursor."""
        panel = self._panel()
        if panel is not None:
            return self.hosts[panel.index]
        if self.fleet_table is not None and not isinstance(self.screen, ModalScreen):
            return self.hosts[self.fleet_table.cursor_row]
        return None

    def action_filter(self) -> None:
        panel = self._panel()
        if panel is not None:
            panel.open_filter()

    def action_sort(self) -> None:
        panel = self._panel()
        if panel is not None:
            panel.next_sort()

    def action_refresh(self) -> None:
        """Poll the host on screen now, its history included; from the fleet view, every host."""
        panel = self._panel()
        for host in self.hosts if panel is None else [self.hosts[panel.index]]:
            host.want_history = True
            self.poll_now(host)

    def action_journal(self) -> None:
        host = self._current_host()
        if host is None:
            return
        host.want_journal = True
        self.push_screen(JournalScreen(host.index, host.name))
        self.poll_now(host)

    def action_history(self) -> None:
        """The audit history of the host on screen (or under the fleet's cursor), read anew."""
        host = self._current_host()
        if host is None:
            return
        screen = HistoryScreen(host.index, host.name)
        screen.show(host.view)  # what is known now; the poll below brings the latest
        self.push_screen(screen)
        if host.view.history_enabled:
            host.want_history = True
            self.poll_now(host)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_escape(self) -> None:
        panel = self._panel()
        if panel is not None and panel.filter_text:
            panel.clear_filter()
        elif panel is not None:
            panel.hide_filter()

    @on(DataTable.RowSelected, "#fleet")
    def _open_host(self, event: DataTable.RowSelected) -> None:
        self.push_screen(HostScreen(self._new_panel(self.hosts[event.cursor_row])))

    def action_quit(self) -> None:  # type: ignore[override]
        now_s = self.clock()
        summaries = [host_summary(host.view, now_s, self.max_age) for host in self.hosts]
        self.exit(max((summary.exit_code for summary in summaries), default=EXIT_HEALTHY))

    def on_unmount(self) -> None:
        for host in self.hosts:
            host.poller.close()
