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

from gradeflow.db.copy import copy_frame, fetch
from gradeflow.publishing.service import visibility as published
from gradeflow.reports.service.report_data import CHUNK, EXCUSED_TEXT, AssessmentInfo, CourseInfo, chunk_bounds

# Each row's score, whether it was marked by hand, and who marked it, for the attempts at assessment $1
# ($2: the shared workflow). Items without an item score still get a row (empty scores); an
# assessment without items gets one row from the attempt's own score.
#
# The graders of a question: those who marked it (markers, oldest mark first, then the third marker or
# the final grader, whose mark decides), then whoever decided the score when it is not what the marks
# gave: an override (of a marked or of an automatic question), or a score given by hand without marks.
# Someone who both marked and decided is listed once. The shared workflow lists workgroups only
# (Inspera: "the ID of individual graders is not included").
_JOINS = """
    FROM attempts t
    JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN items i ON i.assessment_id = t.assessment_id
    CROSS JOIN LATERAL (
      SELECT CASE WHEN i.id IS NULL THEN t.earned ELSE sc.earned END AS earned,
             CASE WHEN i.id IS NULL THEN t.computed_earned ELSE sc.computed_earned END AS computed,
             coalesce(CASE WHEN i.id IS NULL THEN t.source ELSE sc.source END = 'override', false) AS overridden,
             CASE WHEN i.id IS NULL THEN t.scored_by ELSE sc.scored_by END AS decided_by,
             CASE WHEN i.id IS NULL THEN coalesce(t.source = 'manual', false)
                  ELSE i.marking = 'manual' END AS manual,
             array(SELECT m.grader FROM marks m WHERE m.attempt_id = t.id AND m.item_id = i.id
                   ORDER BY CASE m.role WHEN 'marker' THEN 0 WHEN 'third' THEN 1 ELSE 2 END, m.id) AS markers
      FROM (SELECT 1) one LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
      -- A fence: each row's score is looked up by its key and its marks read once. Flattened, the plan
      -- merged with item_scores from their first row on for every chunk (each chunk slower than the one
      -- before) and read the marks again for each use of them (eight times a row).
      OFFSET 0
    ) s
    CROSS JOIN LATERAL (
      SELECT CASE WHEN NOT (s.manual OR s.overridden) THEN ARRAY[]::text[]
                  WHEN CAST($2 AS boolean) OR s.decided_by IS NULL OR s.decided_by = ANY(s.markers)
                       OR (NOT s.overridden AND cardinality(s.markers) > 0) THEN s.markers
                  ELSE s.markers || s.decided_by END AS graders
    ) g
"""
_ATTEMPTS = "t.assessment_id = $1 AND t.status <> 'cancelled'"
# The course's organization (an InitPlan: computed once a statement).
_ORGANIZATION = "(SELECT c.organization_id FROM courses c JOIN assessments x ON x.course_id = c.id WHERE x.id = $1)"

# How many grader columns the file needs, and the username of each grader the directory knows.
_GRADERS = f"""
    WITH lists AS (SELECT g.graders {_JOINS} WHERE {_ATTEMPTS})
    SELECT w.width, st.user_id, st.username
    FROM (SELECT coalesce(max(cardinality(graders)), 0) AS width FROM lists) w
    LEFT JOIN staff st ON st.organization_id = {_ORGANIZATION}
     AND st.user_id IN (SELECT DISTINCT unnest(graders) FROM lists) AND st.username IS NOT NULL
"""  # noqa: S608  (constant SQL)

# One chunk of learners ($3-$4) with `{graders}` grader columns; a result is final once graded and, where
# the assessment has manually marked questions, confirmed. UserID is the learner's id across the organization.
_ROWS = f"""
    SELECT e.external_id AS candidate,
           (SELECT l.id FROM learners l WHERE l.organization_id = {_ORGANIZATION} AND l.external_id = e.external_id)
             AS user_id,
           CASE WHEN i.id IS NOT NULL THEN coalesce(i.number, i.external_id) END AS question_no,
           CASE WHEN i.id IS NULL THEN a.title ELSE i.title END AS question_title,
           i.revision, i.id AS question_id, {{graders}}
           CASE WHEN s.manual OR s.overridden THEN trim_scale(s.earned) END AS manual_score,
           CASE WHEN s.manual THEN NULL WHEN s.overridden THEN trim_scale(s.computed)
                ELSE trim_scale(s.earned) END AS auto_score,
           t.status = 'graded' AND NOT ({published.AWAITS_CONFIRMATION}) AS final,
           t.excused, trim_scale(t.earned) AS total,
           CASE WHEN t.possible > 0 THEN CAST(t.earned AS float8) / CAST(t.possible AS float8) END AS fraction
    {_JOINS}
    JOIN assessments a ON a.id = t.assessment_id
    WHERE {_ATTEMPTS} AND t.enrollment_id BETWEEN $3 AND $4 AND e.id BETWEEN $3 AND $4
    ORDER BY e.id, i.position, i.id
"""  # noqa: S608  (constant SQL)

HEADER = ["CandidateExternalId", "UserID", "QuestionNo", "QuestionTitle", "QuestionRevisionId", "QuestionId"]


def _rows_sql(width: int) -> str:
    return _ROWS.format(graders="".join(f"g.graders[{n}] AS g{n}, " for n in range(1, width + 1)))


def _schema(width: int) -> dict[str, type[pl.DataType]]:
    return {
        "candidate": pl.String,
        "user_id": pl.String,
        "question_no": pl.String,
        "question_title": pl.String,
        "revision": pl.String,
        "question_id": pl.String,
        **{f"g{n}": pl.String for n in range(1, width + 1)},
        "manual_score": pl.String,
        "auto_score": pl.String,
        "final": pl.String,
        "excused": pl.String,
        "total": pl.String,
        "fraction": pl.Float64,
    }


async def marks_and_grades(
    session: AsyncSession, course: CourseInfo, assessment: AssessmentInfo
) -> AsyncIterator[pl.DataFrame]:
    """The file's frames, a chunk of learners each (the header comes with the first, even when empty).

    ManualScore holds manually marked questions' scores and the value of any override; AutoScore the
    calculated score of automatically marked questions, overridden or not. FinalGrade is the letter
    (or the total without cutoffs) once grading is confirmed, `Excused` for an excused learner."""
    shared = (assessment.marking or {}).get("workflow") == "shared"
    rows = await fetch(session, _GRADERS, [assessment.id, shared])
    width = int(rows[0]["width"])
    usernames = {r["user_id"]: r["username"] for r in rows if r["user_id"] is not None}
    sql, schema = _rows_sql(width), _schema(width)
    # About CHUNK rows a frame, however many questions the assessment has.
    size = max(1, CHUNK // max(1, len(assessment.items)))
    sent = False
    for bounds in await chunk_bounds(session, course.id, size=size):
        raw = await copy_frame(session, sql, [assessment.id, shared, *bounds], schema)
        if raw.height or not sent:
            yield await asyncio.to_thread(_frame, raw, course, width, shared, usernames)
            sent = True
    if not sent:
        yield _frame(pl.DataFrame(schema=schema), course, width, shared, usernames)


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
