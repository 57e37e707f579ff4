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
    tells it to stop. An empty "Result" cell says what the frame's "Result text" column says (not a
    column of the sheet: "Excused"), else `no_result`."""

    def __init__(
        self, path: Path, header: list[str], rows: int, title: str = "Results", no_result: str = "No result yet"
    ) -> None:
        self.path, self.header, self.title, self.no_result = path, header, title, no_result
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
            book = rx.FastExcel(str(self.path)).format(datetime_format="yyyy-mm-dd hh:mm", bold_headers=True)
            book = book.freeze(row=1)
            for n in range(1, self.sheets + 1):
                # The row count is known (one snapshot); an empty frame keeps the header of an empty sheet.
                data: Any = (
                    itertools.islice(rows, MAX_ROWS - 1)
                    if self.expected
                    else pl.DataFrame(schema=dict.fromkeys(self.header, pl.String))
                )
                book = book.sheet(self.title if n == 1 else f"{self.title} {n}", data, autofilter=True)
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
            for row in frame.iter_rows(named=True):
                note = row.pop("Result text", None)
                if row["Result"] is None:
                    row["Result"] = note or self.no_result
                self.rows += 1
                yield row
