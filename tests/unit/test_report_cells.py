"""The grade report's assessment cells: picked from precomputed texts, the same as formatting each one."""

from __future__ import annotations

import numpy as np
import polars as pl

from shared.services import report_data
from shared.services.report_data import CANCELLED, EMPTY, FINAL, UNAVAILABLE


def test_cells_read_as_formatted_fractions() -> None:
    rng = np.random.default_rng(20261201)
    value = rng.random((2000, 12))
    # the ends, and ties rounded as numpy (and Open edX's numpy.around) does: 0.12345 -> 0.1234
    value[:, 0], value[:, 1], value[:, 2], value[:, 3] = 1.0, 0.0, 0.12345, 0.99995
    state = rng.choice([EMPTY, FINAL, UNAVAILABLE, CANCELLED], size=value.shape).astype(np.int8)
    state[0, :4] = FINAL
    state[0, 4:7] = [EMPTY, UNAVAILABLE, CANCELLED]
    cells = report_data._cells(value, state, 4)
    assert cells.with_columns(pl.all().cast(pl.String)).equals(report_data._formatted_cells(value, state, 4))
    assert cells.row(0)[:7] == ("1.0", "0.0", "0.1234", "1.0", "Not Attempted", "Not Available", "Not Available")


def test_a_result_above_its_points_is_shown_as_it_is() -> None:
    value = np.array([[1.25, 0.5]])
    state = np.array([[FINAL, FINAL]], dtype=np.int8)
    assert report_data._cells(value, state, 4).row(0) == ("1.25", "0.5")


def test_report_csv_cells_follow_the_one_formula_rule() -> None:
    """The polars writer's pattern and the Python writer's rule neutralise exactly the same cells."""
    import csv
    import io

    from services.worker.writers.csv import CsvFile
    from shared import csv_cells

    texts = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=1", " =1", "'=1", "", "1.5", "Not Attempted"]
    for start in csv_cells.FORMULA_START:
        assert pl.Series([start + "x"]).str.contains(csv_cells.FORMULA_PATTERN).item()
    out = io.BytesIO()
    report = CsvFile(out, bom=False)
    report.write(pl.DataFrame({"=Title": texts, "@q": texts}))
    written = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    expected = csv_cells.to_text([["=Title", "@q"], *([t, t] for t in texts)])
    assert written == list(csv.reader(io.StringIO(expected, newline="")))
    assert written[1:7] == [["'" + t, "'" + t] for t in texts[:6]] and written[7:] == [[t, t] for t in texts[6:]]
