"""CSV: UTF-8 (optionally with a BOM), text cells neutralised against formula injection."""

from __future__ import annotations

from typing import BinaryIO

import polars as pl

from gradeflow.core.csv_cells import FORMULA_PATTERN, neutralise

BOM = b"\xef\xbb\xbf"


def _safe(frame: pl.DataFrame) -> pl.DataFrame:
    # Text columns picked by polars: asking for the frame's schema in Python builds every enum column's
    # category list (10,003 texts a grade report column) each time. Enum columns hold only the grade
    # report's own cell texts (numbers, Not Available, Not Attempted), never a client's text.
    text = pl.col(pl.String)
    return frame.with_columns(
        pl.when(text.str.contains(FORMULA_PATTERN)).then(pl.lit("'") + text).otherwise(text).name.keep()
    ).rename({c: neutralise(c) for c in frame.columns if neutralise(c) != c})


class CsvFile:
    """Appends frames to one CSV file; the header comes from the first frame."""

    def __init__(self, out: BinaryIO, bom: bool) -> None:
        self.out = out
        self.rows = 0
        self._header_written = False
        if bom:
            out.write(BOM)

    def write(self, frame: pl.DataFrame) -> None:
        if not self._header_written and frame.width:
            _safe(frame.head(0)).write_csv(self.out, include_header=True)
            self._header_written = True
        if frame.height:
            _safe(frame).write_csv(self.out, include_header=False)
            self.rows += frame.height
