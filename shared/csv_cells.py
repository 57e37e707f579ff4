"""CSV cells that spreadsheets cannot run: the one rule against formula injection in exports."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PATTERN = r"^[=+\-@\t\r]"


def neutralise(value: str) -> str:
    """Prefix a formula-like cell with an apostrophe, so spreadsheets show it as text."""
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(value: Any) -> Any:
    """A value for a CSV cell: text neutralised, anything else as it is."""
    return neutralise(value) if isinstance(value, str) else value


async def stream(rows: AsyncIterator[list[Any]], batch: int = 1000) -> AsyncIterator[str]:
    """Rows as CSV text in batches, every text cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    n = 0
    async for row in rows:
        writer.writerow([cell(v) for v in row])
        n += 1
        if n % batch == 0:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
