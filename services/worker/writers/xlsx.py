"""XLSX in constant memory (XlsxWriter): rows are written and forgotten as they come."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import xlsxwriter

MAX_ROWS = 1_048_576  # a worksheet's limit, header included


class XlsxFile:
    """One results sheet; past a sheet's row limit the rows continue on a new sheet."""

    def __init__(self, path: Path, header: list[str], title: str = "Results") -> None:
        # Text stays text: no formulas, numbers or links made out of what learners typed.
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "remove_timezone": True,
            },
        )
        self.header, self.title = header, title
        self.bold = self.book.add_format({"bold": True})
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        self.rows = 0
        self.sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        self.sheet = self.book.add_worksheet(self.title if self.sheets == 1 else f"{self.title} {self.sheets}")
        self.sheet.write_row(0, 0, self.header, self.bold)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def write(self, rows: list[list[Any]]) -> None:
        for values in rows:
            if self.row >= MAX_ROWS:
                self._new_sheet()
            for col, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, datetime):
                    self.sheet.write_datetime(self.row, col, value, self.when)
                elif isinstance(value, str):
                    self.sheet.write_string(self.row, col, value)
                else:
                    self.sheet.write_number(self.row, col, value)
            self.row += 1
        self.rows += len(rows)

    def close(self) -> None:
        self.sheet.autofilter(0, 0, 0, len(self.header) - 1)
        self.book.close()
