"""The Open edX CSV reports: the course grade report (a row per learner, a column per assessment, the
category averages, cohort, experiment groups, team, track, verification and certificate) and the problem
grade report (earned and possible points per item), read chunk by chunk in the report's snapshot."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.certificates.repository.eligibility import ID_VERIFIED_TRACKS, course_rule_sql
from gradeflow.readside.service import course_data
from gradeflow.readside.service.course_data import (
    CANCELLED,
    EXCUSED,
    EXCUSED_TEXT,
    FINAL,
    NOT_ATTEMPTED,
    NOT_AVAILABLE,
    UNAVAILABLE,
    Bounds,
    CourseInfo,
    Extra,
    Snapshot,
    chunk_bounds,
    distinct,
    learner_chunks,
    learners_in,
    result_cells,
)
from gradeflow.reports.repository import grade_report as grade_repository
from gradeflow.reports.service.cells import CELL_DIGITS, cells, grade, number_text
from gradeflow.reports.service.streams import in_parallel

# --- the course grade report (Open edX layout) ----------------------------------------------------


@dataclass(frozen=True)
class _GradeLayout:
    """The course grade report's optional columns, decided once for the whole file."""

    cohorts: bool
    teams: bool
    experiments: list[str]  # group configuration names, sorted
    averaged: dict[str, int]  # category with several assessments -> its place in the stored explanation
    eligible: str  # the course certification's rule (SQL, no parameters)

    def extra(self) -> Extra:
        """The learners' COPY for the report (reports/repository/grade_report.py)."""
        return grade_repository.grade_columns(self.eligible, list(self.averaged.values()), self.experiments)


async def _grade_layout(session: AsyncSession, course: CourseInfo) -> _GradeLayout:
    """Cohort and team columns appear only when a learner has one; an experiment group column per group
    configuration some learner is in."""
    fields = await grade_repository.learner_fields(session, course.id)
    sizes: dict[str, int] = {}
    for a in course.assessments:
        sizes[a.category] = sizes.get(a.category, 0) + 1
    # The stored explanation lists the served policy's categories in the policy's order.
    place = {c.name: k for k, c in enumerate(course.rules.categories)} if course.rules else {}
    averaged = {name: place[name] for name, n in sizes.items() if n > 1 and name in place}
    eligible = await course_rule_sql(session, course.id)
    return _GradeLayout(fields.cohorts, fields.teams, fields.experiments, averaged, eligible)


async def grade_report(snap: Snapshot, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Frames of the course grade report; chunks are read by all the snapshot's sessions at once
    while the one before is built."""
    layout = await _grade_layout(snap.session, course)
    extra = layout.extra()

    async def read(session: AsyncSession, bounds: Bounds) -> tuple[pl.DataFrame, tuple[np.ndarray, np.ndarray]]:
        people = await learners_in(session, course.id, bounds, extra=extra)
        return people, await result_cells(session, course, people["id"].to_numpy())

    bounds = await chunk_bounds(snap.session, course.id, size=course_data.PARALLEL_CHUNK)
    chunks = in_parallel(snap.sessions, bounds, read)
    async for people, (value, state) in chunks:
        yield await asyncio.to_thread(_grade_frame, course, layout, people, value, state)


def _grade_frame(
    course: CourseInfo, layout: _GradeLayout, people: pl.DataFrame, value: np.ndarray, state: np.ndarray
) -> pl.DataFrame:
    position = {a.id: j for j, a in enumerate(course.assessments)}
    texts = cells(value, state, CELL_DIGITS)
    head = {
        "Student ID": people["external_id"],
        "Email": people["email"].fill_null(""),
        "Username": people["username"].fill_null(""),
        "Grade": grade(people),
    }
    results: list[tuple[str, pl.Series]] = []
    for category, labelled in itertools.groupby(course.columns, key=lambda c: c[1].category):
        members = list(labelled)
        results += [(label, texts[str(position[a.id])]) for label, a in members]
        if len(members) > 1:
            results.append((f"{course.labels[category]} (Avg)", _average(layout, people, category)))
    groups: dict[str, pl.Series] = {}
    if layout.cohorts:
        groups["Cohort Name"] = people["cohort"].fill_null("")
    for i, name in enumerate(layout.experiments):
        groups[f"Experiment Group ({name})"] = people[f"group{i}"].fill_null("")
    if layout.teams:
        groups["Team Name"] = people["team"].fill_null("")
    certified = pl.col("certificate").is_not_null()
    tail = people.select(
        pl.col("track").alias("Enrollment Track"),
        pl.when(pl.col("track").is_in(ID_VERIFIED_TRACKS).not_())
        .then(pl.lit("N/A"))
        .when(pl.col("id_verified") == 1)
        .then(pl.lit("ID Verified"))
        .otherwise(pl.lit("Not ID Verified"))
        .alias("Verification Status"),
        pl.when(pl.col("eligible") == 1).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("Certificate Eligible"),
        pl.when(certified).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("Certificate Delivered"),
        pl.col("certificate").fill_null("N/A").alias("Certificate Type"),
        pl.col("status").alias("Enrollment Status"),
    )
    names = distinct([name for name, _ in results], taken=[*head, *groups, *tail.columns])
    return pl.DataFrame(head | dict(zip(names, (s for _, s in results), strict=True)) | groups).hstack(tail)


def _average(layout: _GradeLayout, people: pl.DataFrame, category: str) -> pl.Series:
    """Open edX's "(Avg)": the category's average as the stored grade computed it (its drops; with the
    openedx preset, its min_count placeholders) times the weight the grade applied to it, read from the
    grade's explanation; 0 when the learner has no grade, empty for a category the policy does not grade."""
    k = layout.averaged.get(category)
    if k is None:
        return pl.Series([""] * people.height, dtype=pl.String)
    percent = people[f"percent{k}"].fill_null(0.0).to_numpy()
    weight = people[f"weight{k}"].fill_null(1.0).to_numpy()  # points weighting applies no category weight
    return number_text(percent / 100 * weight, CELL_DIGITS)


# --- the problem grade report ---------------------------------------------------------------------

POINT_DIGITS = 6  # points are stored with 6 decimals


async def problem_grade_report(session: AsyncSession, course: CourseInfo) -> AsyncIterator[pl.DataFrame]:
    """Per item (or per assessment without items) an Earned / Possible pair: `earned, possible` when
    scored, `Not Attempted, possible` when not, `Not Available, possible` while the result waits for
    grading or confirmation (an assessment with manual items shows nothing before it is confirmed),
    `Not Available` twice when the attempt is cancelled, `Excused, possible` when the learner is excused."""
    position = {a.id: j for j, a in enumerate(course.assessments)}
    all_items = [i for a in course.assessments for i in a.items]
    item_column = {i.id: k for k, i in enumerate(all_items)}
    # Per pair of columns: its name, its assessment's column, its item's (None: the assessment's total), points.
    pairs: list[tuple[str, int, int | None, float]] = []
    for label, a in course.columns:
        if a.items:
            pairs += [(f"{label}: {a.title} - {i.label}", position[a.id], item_column[i.id], i.points) for i in a.items]
        else:  # named once: the title is not repeated as an item name
            pairs.append((f"{label}: {a.title}", position[a.id], None, a.points))
    fixed = {"Student ID", "Email", "Username", "Enrollment Status", "Grade"}
    heads = distinct([head for head, *_ in pairs], taken=[*fixed])
    async for people in learner_chunks(session, course.id):
        ids = people["id"].to_numpy()
        value, state = await result_cells(session, course, ids)
        earned = np.full((len(ids), len(all_items)), np.nan)
        scores = await grade_repository.item_scores(session, [a.id for a in course.assessments if a.items], ids)
        if scores.height:
            rows = np.searchsorted(ids, scores["enrollment"].to_numpy())
            cols = np.array([item_column[i] for i in scores["item"].to_list()], dtype=np.int64)
            earned[rows, cols] = scores["earned"].to_numpy()
        columns: dict[str, pl.Series] = {
            "Student ID": people["external_id"],
            "Email": people["email"].fill_null(""),
            "Username": people["username"].fill_null(""),
            "Enrollment Status": people["status"],
            "Grade": grade(people),
        }
        for head, (_, j, k, points) in zip(heads, pairs, strict=True):
            got = earned[:, k] if k is not None else np.where(state[:, j] == FINAL, value[:, j] * points, np.nan)
            possible = number_text(np.array([points]), POINT_DIGITS).cast(pl.String).item()
            shown = pl.DataFrame({"state": state[:, j], "earned": number_text(got, POINT_DIGITS).cast(pl.String)})
            shown = shown.select(
                pl.when(pl.col("state").is_in([CANCELLED, UNAVAILABLE]))
                .then(pl.lit(NOT_AVAILABLE))
                .when(pl.col("state") == EXCUSED)
                .then(pl.lit(EXCUSED_TEXT))
                .otherwise(pl.col("earned").fill_null(NOT_ATTEMPTED))
                .alias("earned"),
                pl.when(pl.col("state") == CANCELLED)
                .then(pl.lit(NOT_AVAILABLE))
                .otherwise(pl.lit(possible))
                .alias("possible"),
            )
            columns[f"{head} (Earned)"] = shown["earned"]
            columns[f"{head} (Possible)"] = shown["possible"]
        yield pl.DataFrame(columns)
