"""CSV cells that spreadsheets cannot run: the one rule against formula injection in exports, and
the one writer that applies it. Every CSV the service produces goes through `Writer` (or, for
polars frames in the worker, through the same rule as `FORMULA_PATTERN`)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The same starts as a regular expression, for polars columns (tests hold the two to agreement).
FORMULA_PATTERN = r"^[=+\-@\t\r]"


def neutralise(value: str) -> str:
    """Prefix a formula-like cell with an apostrophe, so spreadsheets show it as text."""
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(value: Any) -> Any:
    """A value for a CSV cell: text neutralised, anything else as it is."""
    return neutralise(value) if isinstance(value, str) else value


class Writer:
    """CSV rows into text, every text cell (the header's too) neutralised."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values: Iterable[Any]) -> None:
        self._writer.writerow([cell(v) for v in values])

    def take(self) -> str:
        """The text written since the last take."""
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def to_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as one CSV text, every text cell neutralised."""
    writer = Writer()
    for row in rows:
        writer.row(row)
    return writer.take()


async def stream(rows: AsyncIterator[list[Any]], batch: int = 1000) -> AsyncIterator[str]:
    """Rows as CSV text in batches, every text cell neutralised."""
    writer = Writer()
    n = 0
    async for row in rows:
        writer.row(row)
        n += 1
        if n % batch == 0:
            yield writer.take()
    yield writer.take()
