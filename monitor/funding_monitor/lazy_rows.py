"""A large DataTable kept current through its public API: only the rows on screen are written.

``DataTable.update_cell`` repaints once per call (~20 µs). A new state file changes about one
cell per symbol, so writing every row of a 2,000-symbol table would add ~40 ms to each poll,
as much as the redraw itself. A row off screen cannot be seen, so it is written when it
scrolls into view instead; what the table holds for it until then is never shown.

Cells are plain text: they are written as :class:`~rich.text.Text`, which a DataTable shows as
it is, where it would parse a ``str`` as Rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

Cells = tuple[str, ...]


class LazyRows:
    """The rows a table should show, written to it as they become visible.

    The owner calls :meth:`write_visible` whenever other rows may have come into view (the
    table scrolled, the terminal was resized).
    """

    def __init__(self, table: DataTable[Any], columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._order: list[str] = []  # row keys, in table order
        self._wanted: dict[str, Cells] = {}
        self._written: dict[str, Cells] = {}  # what the table holds, row by row

    def show(self, wanted: dict[str, Cells]) -> None:
        """Make the table show ``wanted`` (row key -> cells, in display order)."""
        order = list(wanted)
        if order != self._order:
            # Other rows or another order: only a rebuild can express that. It measures every
            # cell (~300 ms for 2,000 rows), which is why the same rows are updated in place.
            self.table.clear()
            for key, cells in wanted.items():
                self.table.add_row(*map(Text, cells), key=key)
            self._order, self._wanted, self._written = order, wanted, dict(wanted)
            return
        self._wanted = wanted
        self.write_visible()

    def write_visible(self) -> None:
        """Write the rows that may be on screen and differ from what is wanted."""
        first = max(0, int(self.table.scroll_y) - 1)
        # No layout can show more rows than the terminal has lines, so that bounds the window
        # even when the table's own size is not known yet.
        last = int(self.table.scroll_y) + self.table.app.size.height + 1
        for key in self._order[first:last]:
            cells, written = self._wanted[key], self._written[key]
            if cells == written:
                continue
            for column, old, new in zip(self.columns, written, cells, strict=True):
                if old != new:
                    self.table.update_cell(key, column, Text(new))
            self._written[key] = cells
