"""Inspera's "Marks and grades as CSV" for one assessment: a row per candidate per question.

Columns as the Inspera document lists them: CandidateExternalId, UserID (the learner's id across the
organization's courses), QuestionNo, QuestionTitle, QuestionRevisionId, QuestionId, who marked the
question (GraderUserID{n} / GraderUsername{n} in the individual workflow, WorkgroupID{n} in the shared
one), ManualScore, AutoScore and FinalGrade (empty until grading is confirmed).

The cells are made in SQL and read by COPY a chunk of learners at a time; only the usernames (from the
staff directory) and the letter grades are filled in afterwards, per distinct value.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.readside.service.course_data import CHUNK, EXCUSED_TEXT, AssessmentInfo, CourseInfo, chunk_bounds
from gradeflow.reports.repository import marks as repository

HEADER = ["CandidateExternalId", "UserID", "QuestionNo", "QuestionTitle", "QuestionRevisionId", "QuestionId"]


async def marks_and_grades(
    session: AsyncSession, course: CourseInfo, assessment: AssessmentInfo
) -> AsyncIterator[pl.DataFrame]:
    """The file's frames, a chunk of learners each (the header comes with the first, even when empty).

    ManualScore holds manually marked questions' scores and the value of any override; AutoScore the
    calculated score of automatically marked questions, overridden or not. FinalGrade is the letter
    (or the total without cutoffs) once grading is confirmed, `Excused` for an excused learner."""
    shared = (assessment.marking or {}).get("workflow") == "shared"
    found = await repository.graders(session, assessment.id, shared)
    width, usernames = found.width, found.usernames
    # About CHUNK rows a frame, however many questions the assessment has.
    size = max(1, CHUNK // max(1, len(assessment.items)))
    sent = False
    for bounds in await chunk_bounds(session, course.id, size=size):
        raw = await repository.rows(session, assessment.id, shared, width, bounds)
        if raw.height or not sent:
            yield await asyncio.to_thread(_frame, raw, course, width, shared, usernames)
            sent = True
    if not sent:
        yield _frame(pl.DataFrame(schema=repository.schema(width)), course, width, shared, usernames)


def _frame(raw: pl.DataFrame, course: CourseInfo, width: int, shared: bool, usernames: dict[str, str]) -> pl.DataFrame:
    """Name the columns, add the usernames and the final grades. Empty cells stay null: written as
    nothing at all (Inspera's "empty/null"), not as a quoted empty text."""
    graders: list[pl.Expr] = []
    for n in range(1, width + 1):
        grader = pl.col(f"g{n}")
        if shared:
            graders.append(grader.alias(f"WorkgroupID{n}"))
            continue
        # Never the id again as the username: a grader the directory does not name has none.
        username = grader.replace_strict(usernames, default=None, return_dtype=pl.String)
        graders += [grader.alias(f"GraderUserID{n}"), username.alias(f"GraderUsername{n}")]
    letters = {f: course.letter(f) for f in raw["fraction"].drop_nulls().unique().to_list()}
    letter = pl.col("fraction").replace_strict(letters, default=None, return_dtype=pl.String)
    final_grade = (
        pl.when(pl.col("excused") == "t")
        .then(pl.lit(EXCUSED_TEXT))
        .when(pl.col("final") == "t")
        .then(pl.coalesce(letter, pl.col("total")))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return raw.select(
        *(pl.col(c).alias(h) for c, h in zip(list(raw.columns)[:6], HEADER, strict=True)),
        *graders,
        pl.col("manual_score").alias("ManualScore"),
        pl.col("auto_score").alias("AutoScore"),
        final_grade.alias("FinalGrade"),
    )
