"""The screens pushed over the main one: help, a host's journal, one host of a fleet."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from funding_monitor.panel import HostPanel
from funding_monitor.safe import strip_control

HELP = Text.from_markup(
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
