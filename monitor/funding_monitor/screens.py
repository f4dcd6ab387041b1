"""The screens pushed over the main one: help, a host's journal, its audit history, one host
of a fleet."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

from binance_funding_ws.durations import format_age
from funding_monitor.history_view import (
    NO_SAMPLE,
    WINDOW_S,
    HistoryOutcome,
    age_levels,
    availability_levels,
    axis,
    bar_rows,
    columns,
    outage_rows,
    report_lines,
    tone,
)
from funding_monitor.model import HostView
from funding_monitor.notices import notice_lines
from funding_monitor.panel import HostPanel, chart_text
from funding_monitor.safe import strip_control

HELP = Text.from_markup(
    "[b]funding-monitor[/b]\n\n"
    "  /        filter the funding table by symbol\n"
    "  s        sort: symbol, funding, mark, next funding, age (asc, desc)\n"
    "  l        the service's last journal lines\n"
    "  h        the audit history: the last 24 h judged, charts, outages\n"
    "  r        refresh now\n"
    "  Enter    (fleet view) open the selected host\n"
    "  Esc      close a window, clear the filter, back to the fleet\n"
    "  ?        this help\n"
    "  q        quit\n\n"
    "Colours: [green]connected[/] · [yellow]connecting / reconnecting[/] · "
    "[red]stalled / stopped[/]. A red banner means the data shown is old: the host "
    "is unreachable, the file is missing or corrupt, or nobody writes it any more."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP)


class JournalScreen(ModalScreen[None]):
    """The service's last journal lines; they arrive with the next poll (:meth:`show`)."""

    BINDINGS = [Binding("escape,q,l", "dismiss", "close")]

    def __init__(self, index: int, host_name: str) -> None:
        super().__init__()
        self.index = index  # which host's journal, for the app's routing
        self.host_name = host_name
        self._lines: list[str] | None = None
        self._ready = False  # mounted: the widget to show them in exists

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text(f"journal of {strip_control(self.host_name)} (Esc closes)")
            yield Static("reading the journal…", id="journal")

    def on_mount(self) -> None:
        self._ready = True
        if self._lines is not None:  # the poll was quicker than the screen
            self.show(self._lines)

    def show(self, lines: list[str]) -> None:
        """Show the host's journal lines: their text, never their escape sequences."""
        self._lines = lines
        if self._ready:
            shown = "\n".join(strip_control(line) for line in lines)
            self.query_one("#journal", Static).update(Text(shown or "(empty)"))


class HistoryScreen(ModalScreen[None]):
    """A host's audit history: the report of the last 24 h, its charts and its outages.

    Given what it shows (:meth:`show`, after each read of the history); drawn again only when
    that changed, or the screen's width did (the charts fill it).
    """

    BINDINGS = [Binding("escape,q,h", "dismiss", "close")]
    AVAILABILITY_ROWS, AGE_ROWS = 6, 4
    MAX_OUTAGE_ROWS = 500  # the newest; a flapping feed could have thousands

    def __init__(self, index: int, host_name: str) -> None:
        super().__init__()
        self.index = index  # which host's history, for the app's routing
        self.host_name = host_name
        self._view: HostView | None = None
        self._ready = False  # mounted: the widgets to draw into exist
        self._drawn: tuple[HistoryOutcome | None, int] | None = None  # outcome, chart width

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text(
                f"audit history of {strip_control(self.host_name)}: the last 24 h (Esc closes)"
            )
            yield Static("reading the audit history…", id="facts")
            yield Static(id="charts")
            yield DataTable(id="outages", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#outages", DataTable).add_columns(
            "start (UTC)", "end", "duration", "cause", "first problem"
        )
        self._ready = True
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def show(self, view: HostView) -> None:
        """Show ``view``'s history (the view is the host's, kept current by the app)."""
        self._view = view
        if self._ready:
            self._draw()

    def _chart_width(self) -> int:
        width = self.query_one("#charts", Static).content_region.width
        # Not laid out yet: 95 % of the screen less the border, the gutter and the padding.
        return width if width > 0 else self.app.size.width * 95 // 100 - 6

    def _draw(self) -> None:
        view = self._view
        if view is None:
            return
        outcome, width = view.history, self._chart_width()
        drawn = self._drawn
        if drawn is not None and drawn[0] is outcome and drawn[1] == width:
            return  # each read posts a new outcome: the same one is on screen already
        self._drawn = (outcome, width)
        self.query_one("#facts", Static).update(Text(self._facts(view)))
        charts = self.query_one("#charts", Static)
        table = self.query_one("#outages", DataTable)
        table.clear()
        if outcome is None or outcome.report is None:
            charts.update("")
            table.display = False
            return
        charts.update(self._charts(outcome, width))
        rows = outage_rows(outcome.report)
        table.add_rows([tuple(map(Text, row)) for row in rows[: self.MAX_OUTAGE_ROWS]])
        more = (
            f", the newest {self.MAX_OUTAGE_ROWS} shown" if len(rows) > self.MAX_OUTAGE_ROWS else ""
        )
        table.border_title = f"outages: {len(rows)}, newest first{more}"
        table.display = bool(rows)

    @staticmethod
    def _facts(view: HostView) -> str:
        if not view.history_enabled:
            return (
                "The audit history is not read: give --history PATH (a local --state-file "
                "reads none unless asked; --no-history turns it off)."
            )
        if view.history is None:
            return "reading the audit history…"
        history = view.history
        generated = history.report.generated_at if history.report else None
        said = notice_lines(history.notices, generated) if generated is not None else []
        return "\n".join([*report_lines(history), *said])

    def _charts(self, outcome: HistoryOutcome, width: int) -> Text:
        """The availability and data-age charts, as wide as the screen allows."""
        report = outcome.report
        assert report is not None  # drawn only with a report
        shown = columns(outcome.buckets, width)
        time_axis = axis(
            len(shown), report.generated_at - int(WINDOW_S * 1000), report.generated_at
        )
        max_age = report.max_age_s
        top = max([max_age, *(b.max_age_s or 0.0 for b in shown)])
        text = _chart(
            f"availability, 0 to 100 % (a column is {format_age(WINDOW_S / len(shown))}; "
            f"{NO_SAMPLE} no sample: the audit was not running)",
            bar_rows(availability_levels(shown), self.AVAILABILITY_ROWS),
            [tone(b, "availability", max_age) for b in shown],
            time_axis,
        )
        text.append("\n")
        text.append_text(
            _chart(
                f"data age, the oldest per column: 0 to {format_age(top)} (red: older than "
                f"{max_age:g} s)",
                bar_rows(age_levels(shown, top), self.AGE_ROWS),
                [tone(b, "age", max_age) for b in shown],
                time_axis,
            )
        )
        return text


def _chart(title: str, rows: list[str], tones: list[str], time_axis: str) -> Text:
    """A titled chart over a time axis."""
    text = Text(f"\n{title}\n", style="bold")
    text.append_text(chart_text(rows, tones))
    text.append(f"\n{time_axis}", style="dim")
    return text


class HostScreen(Screen[None]):
    """One host of a fleet, full screen; Esc clears the filter, then goes back."""

    BINDINGS = [Binding("escape", "back", "fleet")]

    def __init__(self, panel: HostPanel) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield self.panel
        yield Footer()

    def action_back(self) -> None:
        if self.panel.filter_text:
            self.panel.clear_filter()
        else:
            self.dismiss()
