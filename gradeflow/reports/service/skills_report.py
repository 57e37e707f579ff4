"""The skills file (`skills_xlsx`): per learner, the share of each skill's points they earned, per
assessment and over all of them - the test platform's "skills file, a detailed Excel export of skill
levels per candidate (useful for HR analyses)".

Items carry skills with weights (`items.skills`: `[{"skill": name, "weight": w}]`). A learner's level in
a skill on an assessment is sum(weight x item score earned) / sum(weight x item score possible), in
percent, over the items of that skill they hold a final score on: the attempt graded, not excused and,
where the assessment has manual items, confirmed (what the problem grade report shows as a result). The
overall level is the same sums over every assessment the filter covers. A learner with no such score
on a skill has an empty cell, never 0: "not measured" is not "failed".

Rows and attempts are the results table's: the same selection read through the same SQL
(readside/repository/results_table.py), so a filter means here what it means there; a row per learner with an attempt
the filter keeps, in learner order. The sheet is streamed in chunks of learners, two COPYs a chunk: the
learners, and their scores of tagged items. The sums are exact: points (6 decimals) and weights (at most
6) are read as whole millionths and summed as integers in numpy (Python integers in the unlikely case
int64 could overflow), and the percent is rounded half up to hundredths from those integers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.readside.service import course_data, results_table
from gradeflow.readside.service.results_table import Selection
from gradeflow.reports.repository import skills as repository

# The learner's columns, as the results table names them, in the skills file's order.
IDENTITY = ("learner", "family_name", "given_name", "full_name", "username", "groups", "cohort")
OVERALL = "Overall"
PERCENT_FORMAT = results_table.NUMBER_FORMATS["percent"]
MAX_COLUMNS = 16_384  # an Excel sheet's limit
# Cells a chunk's arrays may hold (learners x columns, or scores fanned out to their columns): about
# 32 MB an array, so a course of many tagged items or skills reads fewer learners at a time.
CELL_BUDGET = 4_000_000


def _identity() -> list[results_table.Column]:
    by_field = {c.field: c for c in results_table.COLUMNS}
    return [by_field[f] for f in IDENTITY]


@dataclass(frozen=True, eq=False)
class Layout:
    """The sheet's columns: the learner's, then "<assessment title> - <skill>" per assessment (course
    order) and skill (in the order its items name them), then "Overall - <skill>" per skill; and where
    each tagged item's points go: item `items[j]` adds its points, times `weight[e]`, to column
    `column[e]` for e in `start[j]:start[j + 1]` (its skills' columns of its assessment and overall)."""

    identity: list[str]
    skills: list[str]  # the percent columns' headers, in order
    items: np.ndarray[Any, Any]  # tagged item ids, ascending
    start: np.ndarray[Any, Any]
    column: np.ndarray[Any, Any]
    weight: np.ndarray[Any, Any]  # millionths
    manual: list[int]  # assessments with manual items: their results count once confirmed

    @property
    def headers(self) -> list[str]:
        return [*self.identity, *self.skills]

    @property
    def formats(self) -> dict[str, str]:
        return dict.fromkeys(self.skills, PERCENT_FORMAT)

    def learners_per_chunk(self, most: int) -> int:
        """At most `most`, fewer when a learner's scores fan out to many columns (each tagged item
        counts in one column per skill and again overall) or the sheet is wide."""
        return max(1, min(most, CELL_BUDGET // max(1, len(self.column), len(self.skills))))

    def too_wide(self) -> str | None:
        """Why the sheet cannot be written, if it has more columns than Excel allows."""
        if len(self.headers) <= MAX_COLUMNS:
            return None
        return (
            f"The skills file would have {len(self.headers):,} columns, more than a sheet's {MAX_COLUMNS:,}:"
            " ask for one assessment at a time."
        )


async def layout(session: AsyncSession, course_id: int, assessment: str | None) -> Layout:
    """The columns for the course (one assessment's skills when the filter names one)."""
    rows = await repository.item_skills(session, course_id, assessment)
    # A skill that several items of an assessment name is one column of it.
    pairs: dict[tuple[int, str], str] = {}  # (assessment, skill) -> "<title> - <skill>", in order
    for r in rows:
        pairs.setdefault((r.assessment_id, r.skill), f"{r.title} - {r.skill}")
    skills = list(dict.fromkeys(skill for _, skill in pairs))
    identity = [c.header for c in _identity()]
    overall = [f"{OVERALL} - {skill}" for skill in skills]
    # Clients' titles may repeat, or read "Overall": an assessment's column then gets " (2)", never the
    # overall one, which keeps its name.
    per_assessment = course_data.distinct(list(pairs.values()), taken=[*identity, *overall])
    k_pair = {pair: k for k, pair in enumerate(pairs)}
    k_overall = {skill: len(pairs) + k for k, skill in enumerate(skills)}
    entries = sorted(
        (r.item, k, r.weight) for r in rows for k in (k_pair[(r.assessment_id, r.skill)], k_overall[r.skill])
    )
    items, first = np.unique(np.array([e[0] for e in entries], dtype=np.int64), return_index=True)
    manual = await repository.manual_assessments(session, course_id)
    return Layout(
        identity,
        [*per_assessment, *overall],
        items,
        np.append(first, len(entries)).astype(np.int64),
        np.array([e[1] for e in entries], dtype=np.int64),
        np.array([e[2] for e in entries], dtype=np.int64),
        manual,
    )


async def total(session: AsyncSession, course_id: int, s: Selection) -> int:
    """The rows: learners with an attempt the selection keeps."""
    return await repository.count_learners(session, course_id, s)


async def frames(
    session: AsyncSession, course_id: int, s: Selection, shape: Layout, chunk: int
) -> AsyncIterator[pl.DataFrame]:
    """The sheet in frames of up to `chunk` learners, with `shape`'s headers: the learner's columns as
    text, the levels as percents rounded half up to 2 decimals, null where the learner has no final
    score of the skill (or its items are worth nothing)."""
    chunk = shape.learners_per_chunk(chunk)
    read = repository.Chunks(course_id, s, _identity(), shape.identity)
    after = 0
    while True:
        people = await read.learners(session, after, chunk)
        if not people.height:
            return
        ids = people["enrollment"].to_numpy()
        after = int(ids[-1])
        if not shape.skills:  # no item carries a skill: the learners alone
            yield people.drop("enrollment")
            continue
        found = await read.scores(session, int(ids[0]), after, shape.manual)
        yield await asyncio.to_thread(_sheet_rows, people, found, shape)


def _sheet_rows(people: pl.DataFrame, found: pl.DataFrame, shape: Layout) -> pl.DataFrame:
    """The chunk's rows: the learners' columns, then each level in its column."""
    percent = _levels(people["enrollment"].to_numpy(), found, shape)
    levels = pl.from_numpy(percent, schema=shape.skills, orient="row").fill_nan(None)
    return pl.concat([people.drop("enrollment"), levels], how="horizontal")


def _levels(ids: np.ndarray[Any, Any], found: pl.DataFrame, shape: Layout) -> np.ndarray[Any, Any]:
    """Learners x columns: 100 x sum(weight x earned) / sum(weight x possible) rounded half up to
    hundredths, NaN without a scored item (or where the items are worth nothing)."""
    width = len(shape.skills)
    item = found["item"].to_numpy()
    j = np.minimum(np.searchsorted(shape.items, item), len(shape.items) - 1)
    tagged = shape.items[j] == item
    j, found = j[tagged], found.filter(tagged)
    earned, possible = found["earned"].to_numpy(), found["possible"].to_numpy()
    # Each score once per column its item counts in (its skills, for its assessment and overall).
    counts = shape.start[j + 1] - shape.start[j]
    score = np.repeat(np.arange(len(j)), counts)
    entry = shape.start[j][score] + np.arange(len(score)) - np.repeat(np.cumsum(counts) - counts, counts)
    cell = np.searchsorted(ids, found["enrollment"].to_numpy())[score] * width + shape.column[entry]
    weight = shape.weight[entry]
    # Exact integers: int64 when the largest possible sum (times 20,000 for the rounding) fits, else Python's.
    largest = max(int(earned.max(initial=0)), int(possible.max(initial=0))) * int(weight.max(initial=0))
    exact: Any = np.int64 if largest * len(shape.items) * 20_001 < 2**63 else object
    top = np.zeros(len(ids) * width, dtype=exact)
    bottom = np.zeros(len(ids) * width, dtype=exact)
    np.add.at(top, cell, earned[score].astype(exact) * weight.astype(exact))
    np.add.at(bottom, cell, possible[score].astype(exact) * weight.astype(exact))
    worth = bottom > 0
    hundredths = np.zeros(len(top), dtype=exact)
    # Half up: floor((100 x 100 x top / bottom) + 1/2), all in integers.
    hundredths[worth] = (20_000 * top[worth] + bottom[worth]) // (2 * bottom[worth])
    percent = np.where(worth, hundredths.astype(np.float64) / 100, np.nan)
    return percent.reshape(len(ids), width)
