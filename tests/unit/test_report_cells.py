"""The grade report's assessment cells: picked from precomputed texts, the same as formatting each one."""

from __future__ import annotations

import numpy as np
import polars as pl

from gradeflow.readside.service.course_data import CANCELLED, EMPTY, FINAL, UNAVAILABLE
from gradeflow.reports.service import cells as report_cells


def test_cells_read_as_formatted_fractions() -> None:
    rng = np.random.default_rng(20261201)
    value = rng.random((2000, 12))
    # the ends, and ties rounded as numpy (and Open edX's numpy.around) does: 0.12345 -> 0.1234
    value[:, 0], value[:, 1], value[:, 2], value[:, 3] = 1.0, 0.0, 0.12345, 0.99995
    state = rng.choice([EMPTY, FINAL, UNAVAILABLE, CANCELLED], size=value.shape).astype(np.int8)
    state[0, :4] = FINAL
    state[0, 4:7] = [EMPTY, UNAVAILABLE, CANCELLED]
    cells = report_cells.cells(value, state, 4)
    assert cells.with_columns(pl.all().cast(pl.String)).equals(report_cells.formatted_cells(value, state, 4))
    assert cells.row(0)[:7] == ("1", "0", "0.1234", "1", "Not Attempted", "Not Available", "Not Available")


def test_a_result_above_its_points_is_shown_as_it_is() -> None:
    value = np.array([[1.25, 0.5]])
    state = np.array([[FINAL, FINAL]], dtype=np.int8)
    assert report_cells.cells(value, state, 4).row(0) == ("1.25", "0.5")


def test_numbers_print_as_the_shortest_text_of_the_rounded_value() -> None:
    """One rule whichever way a number is written (the table of fractions, polars, or spelled out)."""
    values = np.array([0.7250000000000001, 0.29000000000000004, 1.0, 0.0, -0.0, 0.66666, 0.12345, np.nan])
    assert report_cells.number_text(values, 4).to_list() == ["0.725", "0.29", "1", "0", "0", "0.6667", "0.1234", None]
    assert report_cells.number_text(values * 3, 4).to_list() == ["2.175", "0.87", "3", "0", "0", "2", "0.3704", None]
    points = np.array([1e-06, 5.5, 10.0, 2.0000004, 123456789.123456, 1e12])
    assert report_cells.number_text(points, 6).to_list() == [
        "0.000001", "5.5", "10", "2", "123456789.123456", "1000000000000",
    ]  # fmt: skip
    grades = np.array([87.25, 93.0, 100.0, 0.0, 66.666667, 120.5]) / 100
    assert report_cells.number_text(grades, 8).to_list() == ["0.8725", "0.93", "1", "0", "0.66666667", "1.205"]
    rng = np.random.default_rng(17)
    for digits in (0, 2, 4, 6):
        x = rng.random(500) * 10.0 ** rng.integers(-7, 6, 500)
        expected = [
            np.format_float_positional(v, precision=digits, unique=False, trim="-") for v in np.round(x, digits)
        ]
        assert report_cells.number_text(x, digits).to_list() == [e.rstrip(".") for e in expected]


def test_report_csv_cells_follow_the_one_formula_rule() -> None:
    """The polars writer's pattern and the Python writer's rule neutralise exactly the same cells."""
    import csv
    import io

    from gradeflow.core import csv_cells
    from gradeflow.reports.writers.csv import CsvFile

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
