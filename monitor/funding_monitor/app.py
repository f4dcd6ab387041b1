"""The Textual shell: one live screen per host, or a fleet view with one row per host.

Blocking I/O never runs in the UI thread: each host's :class:`~funding_monitor.poller.Poller`
runs in an exclusive thread worker that posts a :class:`PollDone` message, and the next poll
is scheduled only once that message arrived (a timer set after completion, never an
interval), so polls of one host can neither overlap nor pile up behind a slow link.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static
from textual.widgets.data_table import ColumnKey, RowKey

from binance_funding_ws.text import format_age
from funding_monitor.model import (
    EXIT_HEALTHY,
    SORT_KEYS,
    STATE_STYLES,
    HostView,
    PollResult,
    SortKey,
    format_in,
    format_rate,
    funding_rows,
    judge,
    select_rows,
    stale_count,
    stale_entries,
)
from funding_monitor.poller import Poller

VERDICT_STYLES = {0: "bold green", 1: "bold yellow", 2: "bold red"}
FUNDING_COLUMNS = ("symbol", "funding", "mark", "next", "age")
FUNDING_LABELS = ("symbol", "funding", "mark price", "next funding in", "age")


class PollDone(Message):
    """A poll of host ``index`` finished (posted from the worker thread)."""

    def __init__(self, index: int, result: PollResult) -> None:
        super().__init__()
        self.index = index
        self.result = result


def _clock_text(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "never"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%H:%M:%S UTC")


class HostPanel(Vertical):
    """Header, counts, stale entries and the funding table of one host."""

    DEFAULT_CSS = """
    HostPanel { height: 1fr; }
    HostPanel #banner { height: auto; background: $error; color: $text; text-style: bold;
                        padding: 0 1; display: none; }
    HostPanel #banner.shown { display: block; }
    HostPanel #header { height: auto; padding: 0 1; }
    HostPanel #counts { height: 1; padding: 0 1; background: $boost; }
    HostPanel #tables { height: 1fr; }
    HostPanel #stale { height: 7; border: round $warning; }
    HostPanel #funding { height: 1fr; border: round $primary; }
    HostPanel.wide #tables { layout: horizontal; }
    HostPanel.wide #stale { height: 1fr; width: 44; }
    HostPanel #filter { display: none; }
    HostPanel #filter.shown { display: block; }
    """

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.filter_text = ""
        self.sort_key: SortKey = "symbol"
        self.sort_reverse = False
        self._shown_document: object = None
        self._shown_query: tuple[str, str, bool] | None = None
        self._shown_rows: dict[str, tuple[str, ...]] = {}  # symbol -> cells, in table order

    def compose(self) -> ComposeResult:
        yield Static(id="banner")
        yield Static(id="header")
        yield Static(id="counts")
        with Horizontal(id="tables"):
            yield DataTable(id="stale", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="funding", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter symbols (Enter keeps it, Esc clears)", id="filter")

    def on_mount(self) -> None:
        stale = self.query_one("#stale", DataTable)
        stale.add_columns("symbol", "age")
        funding = self.query_one("#funding", DataTable)
        for label, key in zip(FUNDING_LABELS, FUNDING_COLUMNS, strict=True):
            funding.add_column(label, key=key)
        self.query_one("#tables").styles.layout = "vertical"
        self.update_view()

    def on_resize(self) -> None:
        wide = self.size.width >= 120
        self.set_class(wide, "wide")
        self.query_one("#tables").styles.layout = "horizontal" if wide else "vertical"

    @property
    def monitor(self) -> MonitorApp:
        app = self.app
        assert isinstance(app, MonitorApp)
        return app

    def update_view(self) -> None:
        """Redraw from the app's model; the tables only when their content changed."""
        app = self.monitor
        view = app.views[self.index]
        now = app.clock()
        self._draw_header(view, now)
        document = view.document
        now_ms = int(now * 1000)
        query = (self.filter_text, self.sort_key, self.sort_reverse)
        if document is not self._shown_document or query != self._shown_query:
            self._shown_document, self._shown_query = document, query
            self._draw_tables(view, now_ms)

    def _draw_header(self, view: HostView, now: float) -> None:
        app = self.monitor
        verdict = judge(view, now, app.max_age)
        banner = self.query_one("#banner", Static)
        alarm = self._alarm(view, now)
        banner.update(alarm or "")
        banner.set_class(bool(alarm), "shown")
        self.query_one("#header", Static).update(self._header_text(view, now, verdict.code))
        self.query_one("#counts", Static).update(self._counts_text(view, now))

    def _alarm(self, view: HostView, now: float) -> str | None:
        if view.error is not None and not view.connected:
            since = view.disconnected_since
            ago = format_age(now - since) if since else "?"
            old = f"; showing data read at {_clock_text(view.document_at)}" if view.document else ""
            return f"DISCONNECTED since {_clock_text(since)} ({ago}): {view.error}{old}"
        if view.error is not None:
            old = " — showing the last good data, marked old" if view.document else ""
            return f"STATE FILE {view.error_kind.upper() if view.error_kind else 'ERROR'}: " + (
                f"{view.error}{old}"
            )
        doc = view.document
        if doc is not None and now - doc.updated_at / 1000 > self.monitor.max_age:
            return (
                f"STATE FILE STALE: not written for {format_age(now - doc.updated_at / 1000)} "
                "— is the daemon running?"
            )
        return None

    def _header_text(self, view: HostView, now: float, code: int) -> Text:
        verdict = {0: "HEALTHY", 1: "DEGRADED"}.get(code, "UNREACHABLE")
        text = Text.from_markup(f"[b]{escape(view.name)}[/b]  [{VERDICT_STYLES[code]}]{verdict}[/]")
        service = view.service.describe() if view.service else "unknown (no systemd data)"
        if self.monitor.local:
            service = "n/a (local file)"
        text.append(f"   service: {service}")
        doc = view.document
        if doc is None:
            text.append("\nno state file read yet")
            return text
        status = doc.connection_status
        style = STATE_STYLES.get(status.state, "white")
        message_age = (
            "never" if status.last_message_at is None
            else f"{format_age(now - status.last_message_at / 1000)} ago"
        )  # fmt: skip
        text.append("\nfeed ")
        text.append(status.state.upper(), style=f"bold {style}")
        text.append(
            f" · last message {message_age} · file written "
            f"{format_age(now - doc.updated_at / 1000)} ago"
        )
        if view.showing_old_data:
            text.append(f" · OLD (read {_clock_text(view.document_at)})", style="bold red")
        text.append(f"\nreconnects {status.reconnects} · errors {status.errors}")
        if status.last_error:
            text.append(f" · last error: {status.last_error}", style="yellow")
        if status.hint:
            text.append(f"\nhint: {status.hint}", style="yellow")
        return text

    def _counts_text(self, view: HostView, now: float) -> str:
        doc = view.document
        if doc is None:
            return ""
        missing = doc.missing
        stale = stale_count(doc, int(now * 1000), self.monitor.stale_after)
        no_ticker = ", ".join(missing.no_ticker[:3]) + ("…" if len(missing.no_ticker) > 3 else "")
        return (
            f"funding {len(doc.funding)} · tickers {len(doc.tickers)} · "
            f"no ticker {len(missing.no_ticker)}{f' ({no_ticker})' if no_ticker else ''} · "
            f"no funding {len(missing.no_funding)} · stale {stale}"
        )

    def _fill_funding(self, table: DataTable[str], wanted: dict[str, tuple[str, ...]]) -> None:
        """Show ``wanted`` (symbol -> cells, in order) with as little work as possible.

        Adding 2,000 rows to a DataTable costs ~300 ms (it measures every cell), so when the
        same symbols are shown in the same order only the cells that changed are updated:
        about 10 ms for a whole file of new prices.
        """
        if list(wanted) != list(self._shown_rows):
            table.clear()
            for symbol, cells in wanted.items():
                table.add_row(*cells, key=symbol)
        else:
            _update_cells(table, self._shown_rows, wanted)
        self._shown_rows = wanted

    def _draw_tables(self, view: HostView, now_ms: int) -> None:
        stale_table = self.query_one("#stale", DataTable)
        funding_table = self.query_one("#funding", DataTable)
        stale_table.clear()
        doc = view.document
        stale_table.border_title = f"stale > {self.monitor.stale_after:g} s"
        arrow = "↓" if self.sort_reverse else "↑"
        shown_filter = f" · filter {self.filter_text!r}" if self.filter_text else ""
        if doc is None:
            funding_table.border_title = "funding"
            self._fill_funding(funding_table, {})
            return
        stale = stale_entries(doc, now_ms, self.monitor.stale_after)
        stale_table.add_rows((row.symbol, format_age(row.age(now_ms))) for row in stale)
        rows = select_rows(
            funding_rows(doc), self.filter_text, self.sort_key, self.sort_reverse, now_ms
        )
        self._fill_funding(funding_table, {
            row.symbol: (
                row.symbol,
                format_rate(row.funding_rate),
                row.mark_price,
                format_in(row.next_funding_in(now_ms)),
                format_age(row.age(now_ms)),
            )
            for row in rows
        })  # fmt: skip
        funding_table.border_title = (
            f"funding {len(rows)}/{len(doc.funding)} · sort {self.sort_key} {arrow}{shown_filter}"
        )

    # -- filter and sort ------------------------------------------------------------------

    def open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.update_view()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        self.query_one("#funding", DataTable).focus()

    def clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.filter_text = ""
        self.query_one("#funding", DataTable).focus()
        self.update_view()

    def next_sort(self) -> None:
        position = SORT_KEYS.index(self.sort_key)
        if self.sort_reverse:
            self.sort_key, self.sort_reverse = SORT_KEYS[(position + 1) % len(SORT_KEYS)], False
        else:
            self.sort_reverse = True
        self.update_view()


def _update_cells(
    table: DataTable[str], shown: dict[str, tuple[str, ...]], wanted: dict[str, tuple[str, ...]]
) -> None:
    """Change the cells that differ, then repaint once.

    ``DataTable.update_cell`` repaints per call (~20 µs each, 40 ms for a file of new
    prices); writing the table's cell store directly and bumping its update counter (which
    invalidates its render caches, exactly as update_cell does) costs a few ms. Falls back
    to the public API if a Textual release changes those internals.
    """
    data = getattr(table, "_data", None)
    if not isinstance(data, dict) or not hasattr(table, "_update_count"):
        for symbol, cells in wanted.items():
            for column, old, new in zip(FUNDING_COLUMNS, shown[symbol], cells, strict=True):
                if old != new:
                    table.update_cell(symbol, column, new)
        return
    keys = {column: ColumnKey(column) for column in FUNDING_COLUMNS}
    changed = False
    for symbol, cells in wanted.items():
        row = data[RowKey(symbol)]
        for column, old, new in zip(FUNDING_COLUMNS, shown[symbol], cells, strict=True):
            if old != new:
                row[keys[column]] = new
                changed = True
    if changed:
        table._update_count += 1
        table.refresh()


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 64; height: auto; border: round $primary; padding: 1 2;
                          background: $panel; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Static(
            "[b]funding-monitor[/b]\n\n"
            "  /        filter the funding table by symbol\n"
            "  s        sort: symbol, funding, mark, next funding, age (asc, desc)\n"
            "  l        the service's last journal lines\n"
            "  r        refresh now\n"
            "  Enter    (fleet view) open the selected host\n"
            "  Esc      close a window, clear the filter, back to the fleet\n"
            "  ?        this help\n"
            "  q        quit\n\n"
            "Colours: [green]connected[/] · [yellow]connecting / reconnecting[/] · "
            "[red]stalled / stopped[/]. A red banner means the data shown is old: the host "
            "is unreachable, the file is missing or corrupt, or nobody writes it any more."
        )


class JournalScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    JournalScreen { align: center middle; }
    JournalScreen > VerticalScroll { width: 95%; height: 90%; border: round $primary;
                                     background: $panel; }
    """
    BINDINGS = [Binding("escape,q,l", "dismiss", "close")]

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("reading the journal…", id="journal")

    def on_mount(self) -> None:
        app = self.app
        assert isinstance(app, MonitorApp)
        host = app.views[self.index].name
        self.query_one(VerticalScroll).border_title = f"journal of {host} (Esc closes)"

    def show(self, lines: list[str]) -> None:
        self.query_one("#journal", Static).update(Text("\n".join(lines) or "(empty)"))


class HostScreen(Screen[None]):
    """One host, full screen (opened from the fleet view)."""

    BINDINGS = [Binding("escape", "back", "fleet")]

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def compose(self) -> ComposeResult:
        yield HostPanel(self.index)
        yield Footer()

    def action_back(self) -> None:
        panel = self.query_one(HostPanel)
        if panel.filter_text:
            panel.clear_filter()
        else:
            self.app.pop_screen()


class MonitorApp(App[int]):
    """``funding-monitor``: returns the last verdict's exit code when it quits."""

    TITLE = "funding-monitor"
    CSS = """
    #fleet { height: 1fr; }
    """
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("slash", "filter", "filter"),
        Binding("s", "sort", "sort"),
        Binding("l", "journal", "journal"),
        Binding("r", "refresh", "refresh"),
        Binding("question_mark", "help", "help"),
        Binding("escape", "escape", show=False),
    ]

    def __init__(
        self,
        pollers: list[Poller],
        stale_after: float = 60.0,
        max_age: float = 60.0,
        local: bool = False,
        clock: Callable[[], float] = time.time,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        self.pollers = pollers
        self.views = [HostView(p.source.name) for p in pollers]
        self.stale_after = stale_after
        self.max_age = max_age
        self.local = local
        self.clock = clock
        self.autostart = autostart
        self._poll_busy = [False] * len(pollers)
        self._poll_again = [False] * len(pollers)
        self._poll_journal = [False] * len(pollers)
        self._poll_timers: list[Timer | None] = [None] * len(pollers)

    @property
    def fleet(self) -> bool:
        return len(self.pollers) > 1

    def compose(self) -> ComposeResult:
        if self.fleet:
            table: DataTable[str] = DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
            yield table
        else:
            yield HostPanel(0)
        yield Footer()

    def on_mount(self) -> None:
        if self.fleet:
            table = self.query_one("#fleet", DataTable)
            table.add_columns(
                "host", "verdict", "service", "feed", "last msg", "written", "funding",
                "tickers", "stale", "errors", "problem",
            )  # fmt: skip
            self._draw_fleet()
        self.set_interval(1.0, self._tick)  # ages move even when no poll arrives
        if self.autostart:
            for index in range(len(self.pollers)):
                self.poll_now(index)

    # -- polling --------------------------------------------------------------------------

    def poll_now(self, index: int) -> None:
        """Start a poll of host ``index`` now, or right after the one in flight."""
        timer = self._poll_timers[index]
        if timer is not None:
            timer.stop()
            self._poll_timers[index] = None
        if self._poll_busy[index]:
            self._poll_again[index] = True
            return
        self._poll_busy[index] = True
        journal, self._poll_journal[index] = self._poll_journal[index], False
        self.run_worker(
            partial(self._poll_in_thread, index, journal),
            name=f"poll {self.views[index].name}",
            group=f"host-{index}",
            exclusive=True,
            thread=True,
        )

    def _poll_in_thread(self, index: int, journal: bool) -> None:
        result = self.pollers[index].poll(want_journal=journal)
        self.post_message(PollDone(index, result))

    def on_poll_done(self, message: PollDone) -> None:
        index = message.index
        self.views[index].apply(message.result)
        self._poll_busy[index] = False
        self._redraw(index)
        if message.result.journal is not None:
            for screen in self.screen_stack:
                if isinstance(screen, JournalScreen) and screen.index == index:
                    screen.show(message.result.journal)
        if self._poll_again[index] or self._poll_journal[index]:
            self._poll_again[index] = False
            self.poll_now(index)
        else:
            delay = self.pollers[index].next_delay(message.result)
            self._poll_timers[index] = self.set_timer(delay, partial(self.poll_now, index))

    def _redraw(self, index: int | None = None) -> None:
        for panel in self.screen.query(HostPanel):
            if index is None or panel.index == index:
                panel.update_view()
        if self.fleet:
            self._draw_fleet()

    def _tick(self) -> None:
        for panel in self.screen.query(HostPanel):
            panel._draw_header(self.views[panel.index], self.clock())
        if self.fleet and not isinstance(self.screen, HostScreen):
            self._draw_fleet()

    def _draw_fleet(self) -> None:
        table = self.query_one("#fleet", DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.clock()
        for view in self.views:
            table.add_row(*self._fleet_cells(view, now))
        if self.views:
            table.move_cursor(row=min(cursor, len(self.views) - 1))

    def _fleet_cells(self, view: HostView, now: float) -> list[str | Text]:
        verdict = judge(view, now, self.max_age)
        label = Text(verdict.label, style=VERDICT_STYLES[verdict.code])
        service = view.service.active if view.service else "?"
        doc = view.document
        if doc is None:
            return [view.name, label, service, "-", "-", "-", "-", "-", "-", "-",
                    verdict.problems[0] if verdict.problems else ""]  # fmt: skip
        status = doc.connection_status
        message_age = (
            "never" if status.last_message_at is None
            else format_age(now - status.last_message_at / 1000)
        )  # fmt: skip
        stale = stale_count(doc, int(now * 1000), self.stale_after)
        return [
            view.name,
            label,
            service,
            Text(status.state, style=STATE_STYLES.get(status.state, "white")),
            message_age,
            format_age(now - doc.updated_at / 1000),
            str(len(doc.funding)),
            str(len(doc.tickers)),
            str(stale),
            str(status.errors),
            verdict.problems[0] if verdict.code != EXIT_HEALTHY and verdict.problems else "",
        ]

    # -- keys -----------------------------------------------------------------------------

    def _panel(self) -> HostPanel | None:
        panels = list(self.screen.query(HostPanel))
        return panels[0] if panels else None

    def _current_index(self) -> int | None:
        panel = self._panel()
        if panel is not None:
            return panel.index
        if self.fleet and not isinstance(self.screen, ModalScreen):
            return self.query_one("#fleet", DataTable).cursor_row
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
        index = self._current_index()
        indices = range(len(self.pollers)) if index is None or self._panel() is None else [index]
        for i in indices:
            self.poll_now(i)

    def action_journal(self) -> None:
        index = self._current_index()
        if index is None:
            return
        self._poll_journal[index] = True
        self.push_screen(JournalScreen(index))
        self.poll_now(index)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_escape(self) -> None:
        panel = self._panel()
        if panel is not None and panel.filter_text:
            panel.clear_filter()
        elif panel is not None:
            panel.query_one("#filter", Input).remove_class("shown")

    @on(DataTable.RowSelected, "#fleet")
    def _open_host(self, event: DataTable.RowSelected) -> None:
        self.push_screen(HostScreen(event.cursor_row))

    def action_quit(self) -> None:  # type: ignore[override]
        now = self.clock()
        codes = [judge(view, now, self.max_age).code for view in self.views]
        self.exit(max(codes, default=0))

    def on_unmount(self) -> None:
        for poller in self.pollers:
            poller.close()
