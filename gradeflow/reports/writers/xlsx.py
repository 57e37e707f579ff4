"""XLSX streamed in constant memory by rust_xlsxwriter (the rustpy-xlsxwriter binding): rows are
written and forgotten as they come. Text stays text: no formulas, numbers or links are made out of
what learners typed."""

from __future__ import annotations

import itertools
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import rustpy_xlsxwriter as rx

MAX_ROWS = 1_048_576  # a worksheet's limit, header included
_END: Any = object()


class Aborted(Exception):
    """The rows stopped coming (the report failed or was cancelled)."""


class XlsxFile:
    """One results sheet, continued on "Results 2", ... past a sheet's row limit. `save()` runs in a
    thread and writes while `put()` hands it frames with the header's columns; `end()` or `abort()`
    tells it to stop. `formats` gives columns an Excel number format (date-times, decimals); `texts`
    names, for a column whose cells are numbers or words, the frame's column (not one of the sheet)
    saying what its cell says where it has no number ("Excused")."""

    def __init__(
        self,
        path: Path,
        header: list[str],
        rows: int,
        title: str = "Results",
        formats: dict[str, str] | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        self.path, self.header, self.title = path, header, title
        self.formats, self.texts = formats or {}, texts or {}
        self.expected = rows
        self.sheets = max(1, -(-rows // (MAX_ROWS - 1)))
        self.rows = 0
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stopped = False

    def put(self, frame: pl.DataFrame) -> None:
        while not self._stopped:
            try:
                self._chunks.put(frame, timeout=0.5)
                return
            except queue.Full:
                continue
        raise Aborted("the XLSX writer stopped")

    def end(self) -> None:
        if not self._stopped:  # an empty table's writer is done already
            self.put(_END)

    def abort(self) -> None:
        self._stopped = True
        while True:  # make room, then wake the writer if it waits
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                break
        self._chunks.put_nowait(None)

    def save(self) -> None:
        try:
            rows = self._rows()
            book = rx.FastExcel(str(self.path)).format(bold_headers=True).freeze(row=1)
            formats = {column: rx.Format().set_num_format(f) for column, f in self.formats.items()}
            for n in range(1, self.sheets + 1):
                # The row count is known (one snapshot); an empty frame keeps the header of an empty sheet.
                data: Any = (
                    itertools.islice(rows, MAX_ROWS - 1)
                    if self.expected
                    else pl.DataFrame(schema=dict.fromkeys(self.header, pl.String))
                )
                name = self.title if n == 1 else f"{self.title} {n}"
                book = book.sheet(name, data, autofilter=True, column_formats=formats)
            book.save()
        finally:
            self._stopped = True

    def _rows(self) -> Iterator[dict[str, Any]]:
        while True:
            frame = self._chunks.get()
            if frame is None:
                raise Aborted("the rows stopped coming")
            if frame is _END:
                return
            texts = self.texts.items()
            for row in frame.iter_rows(named=True):
                for column, text in texts:
                    note = row.pop(text)
                    if row[column] is None:
                        row[column] = note
                self.rows += 1
                yield row
