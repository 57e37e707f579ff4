"""How the Open edX reports print a result: numbers rounded as numpy rounds them, written once per
distinct text, and the cell texts of results that have no number."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from gradeflow.readside.service.course_data import (
    CANCELLED,
    EXCUSED,
    EXCUSED_TEXT,
    FINAL,
    NOT_ATTEMPTED,
    NOT_AVAILABLE,
    UNAVAILABLE,
)

# Up to this many decimals, fractions are written from a table of all their texts (10,001 at 4).
_TABLE_DIGITS = 4


def number_text(values: np.ndarray, digits: int) -> pl.Series:
    """The one way the reports print a number: rounded to `digits` decimals as numpy (and Open edX's
    numpy.around) rounds, half to even on the scaled double, then the shortest text of the rounded
    value: `1`, `0.4`, `0.3333`, never `1.0`, `1e-06` or `0.7250000000000001`. NaN is null."""
    steps = np.rint(np.asarray(values, dtype=np.float64) * 10**digits)  # np.round(values, digits) * 10**digits
    known = ~np.isnan(steps)
    if digits <= _TABLE_DIGITS and np.all(~known | ((steps >= 0) & (steps <= 10**digits))):
        # Fractions between 0 and 1 (most cells) are picked from a table of their texts: an enum column,
        # no number written per cell.
        return _fractions(digits).gather(np.where(known, steps, 10**digits + 1).astype(np.uint32))
    texts = pl.Series(steps / 10**digits + 0.0, nan_to_null=True).cast(pl.String)  # + 0.0: no "-0"
    if texts.str.contains("e", literal=True).any():  # polars writes tiny and huge doubles with an exponent
        return _spelled(steps, digits)
    return texts.str.strip_suffix(".0")


def _spelled(steps: np.ndarray, digits: int) -> pl.Series:
    """Whole numbers of 10**-digits written out in decimal, trailing zeros trimmed (NaN: null)."""
    scale = 10**digits
    n = pl.col("n")
    whole = (n.abs() // scale).cast(pl.String)
    fraction = (n.abs() % scale).cast(pl.String).str.zfill(digits).str.strip_chars_end("0")
    sign = pl.when(n < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    frame = pl.DataFrame({"n": pl.Series(steps, nan_to_null=True).cast(pl.Int64)})
    return frame.select(
        pl.when(fraction == "").then(sign + whole).otherwise(sign + whole + "." + fraction).alias("n")
    ).to_series()


@functools.cache
def _fractions(digits: int) -> pl.Series:
    """The texts of the fractions 0, 1/10**digits, ..., 1, then a null, as an enum."""
    texts = _spelled(np.arange(10**digits + 1, dtype=np.float64), digits)
    return pl.concat([texts, pl.Series([None], dtype=pl.String)]).cast(pl.Enum(texts))


def cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    """Every assessment's cells at once (a column per assessment, course order): the rounded fraction
    when final, else Excused / Not Available / Not Attempted. A fraction between 0 and 1 (all of them,
    unless a result earned more than its points) is picked from the texts of every rounded fraction (an
    enum column: no number formatted per cell)."""
    scale = 10**digits
    final = state == FINAL
    steps = np.rint(np.where(final, value, 0.0) * scale)  # np.round(value, digits) is steps / scale
    if digits > _TABLE_DIGITS or ((steps < 0) | (steps > scale))[final].any():
        return formatted_cells(value, state, digits)
    codes = np.select(
        [final, state == EXCUSED, np.isin(state, (UNAVAILABLE, CANCELLED))], [steps, scale + 3, scale + 1], scale + 2
    ).astype(np.uint32)
    labels = _labels(digits)
    return pl.DataFrame({str(j): labels.gather(codes[:, j]) for j in range(value.shape[1])})


@functools.cache
def _labels(digits: int) -> pl.Series:
    """The texts of the fractions 0, 1/10**digits, ..., 1 (as `number_text` writes them), then Not
    Available, Not Attempted and Excused, as an enum."""
    fractions = _fractions(digits).cast(pl.String).head(10**digits + 1)
    texts = pl.concat([fractions, pl.Series([NOT_AVAILABLE, NOT_ATTEMPTED, EXCUSED_TEXT])])
    return texts.cast(pl.Enum(texts))


def formatted_cells(value: np.ndarray, state: np.ndarray, digits: int) -> pl.DataFrame:
    names = [str(j) for j in range(value.shape[1])]
    numbers = pl.DataFrame({n: number_text(value[:, j], digits).cast(pl.String) for j, n in enumerate(names)})
    frame = numbers.hstack(pl.DataFrame(state, schema=[f"s{n}" for n in names]))
    return frame.select(
        pl.when(pl.col(f"s{n}") == FINAL)
        .then(pl.col(n))
        .when(pl.col(f"s{n}") == EXCUSED)
        .then(pl.lit(EXCUSED_TEXT))
        .when(pl.col(f"s{n}").is_in([UNAVAILABLE, CANCELLED]))
        .then(pl.lit(NOT_AVAILABLE))
        .otherwise(pl.lit(NOT_ATTEMPTED))
        .alias(n)
        for n in names
    )


# Decimals printed: a result as Open edX's percent_graded (4); the course grade exactly as stored (its
# percent has at most 6 decimals, so 8 as a fraction).
CELL_DIGITS = 4
GRADE_DIGITS = 8


def grade(frame: pl.DataFrame) -> pl.Series:
    """The stored course grade as Open edX reports it: a fraction (0.74, 1), 0 when there is none."""
    return number_text(frame["final_percent"].fill_null(0.0).to_numpy() / 100, GRADE_DIGITS)
