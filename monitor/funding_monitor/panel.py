"""One host on screen: banner, header, counts, the audit's last 24 h, stale entries and the
funding table.

A :class:`HostPanel` is given what it shows (:meth:`HostPanel.show`) and the settings it needs
at construction; it never reaches into the app. Its facts come from the shared
:class:`~binance_funding_ws.health.Summary`, the same object ``--once --json`` prints.

Everything that came from the file or the host is shown as :class:`~rich.text.Text` (never
parsed as markup) after :func:`~funding_monitor.safe.strip_control`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widgets import DataTable, Input, Static

from binance_funding_ws.durations import format_age, format_clock
from binance_funding_ws.health import EXIT_DEGRADED, EXIT_HEALTHY, Summary, freshness
from binance_funding_ws.report import NOT_SAFE, NOT_YET, SAFE
from funding_monitor.history_view import (
    HistoryOutcome,
    availability_levels,
    bar_rows,
    columns,
    compare_text,
    headline,
    silence,
    tone,
)
from funding_monitor.lazy_rows import Cells, LazyRows
from funding_monitor.model import (
    SORT_KEYS,
    HostView,
    SortKey,
    format_in,
    format_rate,
    funding_rows,
    host_summary,
    select_rows,
)
from funding_monitor.safe import scrubbed, strip_control

VERDICT_STYLES = {EXIT_HEALTHY: "bold green", EXIT_DEGRADED: "bold yellow"}
UNHEALTHY_STYLE = "bold red"  # exit code 2: unreachable or unreadable
STATE_STYLES = {
    "connected": "green",
    "connecting": "yellow",
    "reconnecting": "yellow",
    "stalled": "red",
    "stopped": "red",
}
FUNDING_COLUMNS = ("symbol", "funding", "mark", "next", "age")
FUNDING_LABELS = ("symbol", "funding", "mark price", "next funding in", "age")
WIDE_COLUMNS = 120  # from this width the stale table moves beside the funding table
AUDIT_STYLES = {SAFE: "bold green", NOT_YET: "bold yellow", NOT_SAFE: "bold red"}
TONE_STYLES = {"good": "green", "partial": "yellow", "down": "bold red", "none": "dim"}
CHART_LEFT, CHART_RIGHT = "24 h ago ", " now"


def verdict_text(summary: Summary) -> Text:
    return Text(summary.verdict, style=VERDICT_STYLES.get(summary.exit_code, UNHEALTHY_STYLE))


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, "white"))


def audit_verdict_text(verdict: str) -> Text:
    return Text(verdict, style=AUDIT_STYLES.get(verdict, UNHEALTHY_STYLE))


def chart_text(rows: Sequence[str], tones: Sequence[str]) -> Text:
    """Chart rows (:func:`~funding_monitor.history_view.bar_rows`), each column in its tone's
    colour."""
    text = Text()
    for number, row in enumerate(rows):
        if number:
            text.append("\n")
        for shade, cells in groupby(zip(row, tones, strict=True), key=lambda cell: cell[1]):
            text.append("".join(char for char, _ in cells), style=TONE_STYLES[shade])
    return text


def _clock_of(epoch_s: float | None) -> str:
    """A monitor time (epoch seconds, its clock's unit) as ``%H:%M:%S UTC``."""
    return format_clock(None if epoch_s is None else epoch_s * 1000, "%H:%M:%S UTC", "never")


class HostPanel(Vertical):
    """One host's live screen; the app calls :meth:`show` after each poll and every second."""

    def __init__(self, index: int, max_age: float, local: bool) -> None:
        super().__init__()
        self.index = index  # which host this panel shows, for the app's routing
        self.max_age = max_age
        self.local = local  # a local file: there is no service to speak of
        self.filter_text = ""
        self.sort_key: SortKey = "symbol"
        self.sort_reverse = False
        self._view: HostView | None = None
        self._now_s = 0.0
        self._ready = False  # mounted: the widgets to draw into exist
        self._shown_document: object = None
        self._shown_query: tuple[str, str, bool] | None = None
        self._shown_audit: Text | None = None
        self._funding: LazyRows | None = None
        self._stale_widths: tuple[int, int] | None = None  # the stale table's column widths

    def compose(self) -> ComposeResult:
        yield Static(id="banner")
        yield Static(id="header")
        yield Static(id="counts")
        yield Static(id="audit")
        with Container(id="tables"):
            yield DataTable(id="stale", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="funding", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter symbols (Enter keeps it, Esc clears)", id="filter")

    def on_mount(self) -> None:
        funding = self.query_one("#funding", DataTable)
        for label, key in zip(FUNDING_LABELS, FUNDING_COLUMNS, strict=True):
            funding.add_column(label, key=key)
        self._funding = LazyRows(funding, FUNDING_COLUMNS)
        self.watch(funding, "scroll_y", self._funding.write_visible, init=False)
        self._ready = True
        self._draw()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE_COLUMNS, "wide")
        if self._funding is not None:
            self._funding.write_visible()  # a taller terminal shows more rows

    def show(self, view: HostView, now_s: float) -> None:
        """Show ``view`` as of ``now_s`` (epoch s); the tables only when their content changed."""
        self._view, self._now_s = view, now_s
        if self._ready:  # before mounting, on_mount draws what was given
            self._draw()

    def _draw(self) -> None:
        view = self._view
        if view is None:
            return
        summary = scrubbed(host_summary(view, self._now_s, self.max_age))
        alarm = self._alarm(view, summary)
        banner = self.query_one("#banner", Static)
        banner.update(Text(alarm or ""))
        banner.set_class(bool(alarm), "shown")
        self.query_one("#header", Static).update(self._header_text(view, summary))
        self.query_one("#counts", Static).update(self._counts_text(summary))
        audit = self.query_one("#audit", Static)
        audit.set_class(view.history_enabled, "shown")
        if view.history_enabled:
            text = self._audit_text(view.history)
            if text != self._shown_audit:  # it changes once a read, not once a second
                self._shown_audit = text
                audit.update(text)
        query = (self.filter_text, self.sort_key, self.sort_reverse)
        if view.document is not self._shown_document or query != self._shown_query:
            self._shown_document, self._shown_query = view.document, query
            self._draw_tables(view, summary)

    def _alarm(self, view: HostView, summary: Summary) -> str | None:
        now_s = self._now_s
        error = None if view.error is None else strip_control(view.error)
        if error is not None and not view.connected:
            since = view.disconnected_since
            ago = format_age(now_s - since) if since else "?"
            old = f"; showing data read at {_clock_of(view.document_at)}" if view.document else ""
            return f"DISCONNECTED since {_clock_of(since)} ({ago}): {error}{old}"
        if error is not None:
            old = " — showing the last good data, marked old" if view.document else ""
            kind = view.error_kind.upper() if view.error_kind else "ERROR"
            return f"STATE FILE {kind}: {error}{old}"
        write_age = summary.last_write_age_s
        if write_age is not None and write_age > self.max_age:
            return (
                f"STATE FILE STALE: not written for {format_age(write_age)} "
                "— is the daemon running?"
            )
        return None

    def _header_text(self, view: HostView, summary: Summary) -> Text:
        text = Text.assemble((summary.source, "bold"), "  ", verdict_text(summary))
        service = summary.service or "unknown (no systemd data)"
        text.append(f"   service: {'n/a (local file)' if self.local else service}")
        if summary.state is None or summary.counters is None:
            text.append("\nno state file read yet")
            return text
        text.append("\nfeed ")
        text.append(summary.state.upper(), style=f"bold {STATE_STYLES.get(summary.state, 'white')}")
        text.append(f" · last data {freshness(summary)}")
        if view.showing_old_data:
            text.append(f" · OLD (read {_clock_of(view.document_at)})", style="bold red")
        counters = summary.counters
        text.append(f"\nreconnects {counters.reconnects} · errors {counters.errors}")
        if summary.last_error:
            text.append(f" · last error: {summary.last_error}", style="yellow")
        if summary.hint:
            text.append(f"\nhint: {summary.hint}", style="yellow")
        return text

    @staticmethod
    def _counts_text(summary: Summary) -> Text:
        if summary.state is None:
            return Text()
        no_ticker = ", ".join(summary.no_ticker[:3]) + ("…" if len(summary.no_ticker) > 3 else "")
        return Text(
            f"funding {summary.funding_symbols} · tickers {summary.ticker_symbols} · "
            f"no ticker {len(summary.no_ticker)}{f' ({no_ticker})' if no_ticker else ''} · "
            f"no funding {len(summary.no_funding)} · stale {len(summary.stale_funding)}"
        )

    def _audit_text(self, outcome: HistoryOutcome | None) -> Text:
        """The last 24 h of the audit: verdict, availability, outages, last compare, chart."""
        if outcome is None:
            return Text("last 24 h: reading the audit history…", style="dim")
        problem = outcome.problem()
        if problem is not None or outcome.report is None:
            style = "dim" if outcome.missing else "yellow"  # no history is no fault
            return Text(f"last 24 h: {problem or 'not read yet'}", style=style)
        report = outcome.report
        text = Text.assemble("last 24 h  ", audit_verdict_text(report.verdict))
        text.append(f" · {headline(report)}")
        quiet = silence(outcome)
        if quiet is not None:
            text.append(f" · no sample for {format_age(quiet)}", style="yellow")
        last = outcome.last_compare
        differs = last is not None and bool(last.round.mismatched or last.round.missing)
        text.append(f"\nlast compare: {compare_text(last)}", style="red" if differs else "")
        width = (self.size.width or self.app.size.width) - 2 - len(CHART_LEFT + CHART_RIGHT)
        shown = columns(outcome.buckets, width)
        tones = [tone(bucket, "availability", report.max_age_s) for bucket in shown]
        text.append(f"\n{CHART_LEFT}", style="dim")
        text.append_text(chart_text(bar_rows(availability_levels(shown), 1), tones))
        text.append(CHART_RIGHT, style="dim")
        return text

    def _draw_stale(self, table: DataTable[object], summary: Summary) -> None:
        """The stale entries, in columns as wide as their widest cell, set here.

        Not left to the table: a DataTable (Textual 8) measures new rows when idle and keeps
        whatever it rendered before that, so a frame drawn in between left the header and
        the cells at the labels' widths, cutting symbols short, until the next redraw.
        """
        rows = [(symbol, format_age(age)) for symbol, age in summary.stale_funding.items()]
        widths = (
            max([len("symbol"), *(cell_len(symbol) for symbol, _ in rows)]),
            max([len("age"), *(cell_len(age) for _, age in rows)]),
        )
        if widths != self._stale_widths:
            table.clear(columns=True)
            table.add_column("symbol", width=widths[0])
            table.add_column("age", width=widths[1])
            self._stale_widths = widths
        else:
            table.clear()
        table.add_rows((Text(symbol), age) for symbol, age in rows)

    def _draw_tables(self, view: HostView, summary: Summary) -> None:
        assert self._funding is not None  # set on mount, before any draw
        stale_table = self.query_one("#stale", DataTable)
        funding_table = self.query_one("#funding", DataTable)
        stale_table.border_title = f"stale > {self.max_age:g} s"
        self._draw_stale(stale_table, summary)
        document = view.document
        if document is None:
            funding_table.border_title = "funding"
            self._funding.show({})
            return
        now_ms = int(self._now_s * 1000)
        rows = select_rows(
            funding_rows(document), self.filter_text, self.sort_key, self.sort_reverse, now_ms
        )
        wanted: dict[str, Cells] = {
            row.symbol: (
                strip_control(row.symbol),
                strip_control(format_rate(row.funding_rate)),
                strip_control(row.mark_price),
                format_in(row.next_funding_in(now_ms)),
                format_age(row.age(now_ms)),
            )
            for row in rows
        }
        self._funding.show(wanted)
        arrow = "↓" if self.sort_reverse else "↑"
        shown_filter = f" · filter {self.filter_text!r}" if self.filter_text else ""
        funding_table.border_title = Text(
            f"funding {len(rows)}/{len(document.funding)} · sort {self.sort_key} {arrow}"
            f"{shown_filter}"
        )

    # -- filter and sort ------------------------------------------------------------------

    def open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def hide_filter(self) -> None:
        self.query_one("#filter", Input).remove_class("shown")

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        cleaned = strip_control(event.value)
        if cleaned != event.value:  # a pasted escape sequence is not kept, nor shown
            event.input.value = cleaned  # which posts another Changed, with the clean text
            return
        self.filter_text = cleaned
        self._draw()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.hide_filter()
        self.query_one("#funding", DataTable).focus()

    def clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        self.hide_filter()
        self.filter_text = ""
        self.query_one("#funding", DataTable).focus()
        self._draw()

    def next_sort(self) -> None:
        position = SORT_KEYS.index(self.sort_key)
        if self.sort_reverse:
            self.sort_key, self.sort_reverse = SORT_KEYS[(position + 1) % len(SORT_KEYS)], False
        else:
            self.sort_reverse = True
        self._draw()
