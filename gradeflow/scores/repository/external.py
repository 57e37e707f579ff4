"""Scores a registered tool posts (LTI AGS) to a line item: the SQL of that entry point into the score path.

A tool names the assessment by its line item (lti_line_items: its own, or one a planner exposed to every tool)
and orders its scores by its own timestamp: per learner and assessment the last one is kept in
lti_score_timestamps, and a score whose timestamp is not later than it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.scores.repository.scores import TOTALS_CONFLICT  # the one override rule of score writes

# Points are numeric(18, 6): a rescaled score must stay below this.
POINTS_LIMIT = Decimal(10) ** 12

# The line item the tool may use in the course, with the assessment it is and the learner's attempt at it.
_PROBE = """
    SELECT a.id AS assessment_id, a.external_id AS assessment, a.points_possible AS points,
           e.id AS enrollment_id, t.id AS attempt_id, t.status, s.timestamp AS last_timestamp,
           EXISTS (SELECT 1 FROM items x WHERE x.assessment_id = a.id) AS has_items,
           EXISTS (SELECT 1 FROM late_policies p WHERE p.course_id = l.course_id) AS late_policy,
           CASE WHEN t.entered IS NOT NULL THEN
                  jsonb_build_object('earned', trim_scale(t.entered), 'possible', trim_scale(t.possible),
                                     'source', t.source, 'graded_by', t.scored_by)
           END AS old,
           f.text AS old_comment
    FROM lti_line_items l
    JOIN assessments a ON a.id = l.assessment_id
    LEFT JOIN enrollments e ON e.course_id = l.course_id AND e.external_id = $learner
    LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN lti_score_timestamps s ON s.assessment_id = a.id AND s.enrollment_id = e.id
    LEFT JOIN feedback f ON f.attempt_id = t.id AND f.item_id IS NULL
    WHERE l.id = $line_item AND l.course_id = $course AND (l.tool_id IS NULL OR l.tool_id = $tool)
"""

# The score rescaled from the tool's maximum to the assessment's points (exact when they are equal).
_RESCALED = (
    "CASE WHEN CAST($maximum AS numeric) = p.points THEN CAST($given AS numeric)"
    " ELSE round(CAST($given AS numeric) * p.points / CAST($maximum AS numeric), 6) END"
)

# The common case as one statement, as scores.put_single is for the native PUT: a graded score (and the comment,
# if any, as the learner's feedback on the attempt) on an assessment without items, in a course without a late
# policy, the attempt not cancelled, the timestamp later than the last one. The timestamp is advanced first and
# every write hangs on it, so of two concurrent posts with the same timestamp one writes. Audited as the general
# path audits: score.set and feedback.set, each when it changes something. Always one row: what was found, and
# whether the score was written.
_POST_COMMON = f"""
    WITH probe AS ({_PROBE}),
    target AS (
      SELECT p.*, {_RESCALED} AS earned FROM probe p
      WHERE p.enrollment_id IS NOT NULL AND NOT p.has_items AND NOT p.late_policy
        AND p.status IS DISTINCT FROM 'cancelled'
        AND (p.last_timestamp IS NULL OR p.last_timestamp < CAST($timestamp AS timestamptz))
    ), stamped AS (
      INSERT INTO lti_score_timestamps AS s (assessment_id, enrollment_id, timestamp)
      SELECT assessment_id, enrollment_id, CAST($timestamp AS timestamptz) FROM target
      WHERE earned < {POINTS_LIMIT}
      ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET timestamp = excluded.timestamp
        WHERE s.timestamp < excluded.timestamp
      RETURNING s.assessment_id
    ), go AS (
      SELECT target.*,
             jsonb_build_object('earned', trim_scale(earned), 'possible', trim_scale(points),
                                'source', 'auto', 'graded_by', CAST($actor AS text)) AS new
      FROM target JOIN stamped USING (assessment_id)
    ), audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT CAST($organization AS bigint), CAST($course AS bigint), CAST($now AS timestamptz), CAST($actor AS text),
             CAST($request AS text), 'score.set', CAST($learner AS text), assessment, NULL, old, new
      FROM go WHERE old IS DISTINCT FROM new
    ), stale AS (
      INSERT INTO stale_grades (enrollment_id, course_id)
      SELECT enrollment_id, CAST($course AS bigint) FROM go ON CONFLICT DO NOTHING
    ), written AS (
      INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
      SELECT assessment_id, enrollment_id, 'graded', earned, points, 'auto', CAST($actor AS text),
             CAST($now AS timestamptz)
      FROM go
      {TOTALS_CONFLICT.replace(":now", "CAST($now AS timestamptz)")}
      RETURNING t.id
    ), commented AS (
      INSERT INTO feedback (attempt_id, item_id, text, updated_by, updated_at)
      SELECT w.id, NULL, CAST($comment AS text), CAST($actor AS text), CAST($now AS timestamptz)
      FROM written w CROSS JOIN go
      WHERE CAST($comment AS text) IS NOT NULL AND go.old_comment IS DISTINCT FROM CAST($comment AS text)
      ON CONFLICT (attempt_id, coalesce(item_id, 0)) DO UPDATE SET
        text = excluded.text, updated_by = excluded.updated_by, updated_at = excluded.updated_at
    ), comment_audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT CAST($organization AS bigint), CAST($course AS bigint), CAST($now AS timestamptz), CAST($actor AS text),
             CAST($request AS text), 'feedback.set', CAST($learner AS text), assessment, NULL,
             jsonb_build_object('text', old_comment), jsonb_build_object('text', CAST($comment AS text))
      FROM go WHERE CAST($comment AS text) IS NOT NULL AND old_comment IS DISTINCT FROM CAST($comment AS text)
    )
    SELECT p.assessment_id, p.enrollment_id, p.last_timestamp, p.has_items, p.status,
           EXISTS (SELECT 1 FROM written) AS written
    FROM (SELECT 1) one LEFT JOIN probe p ON true
"""  # noqa: S608  (constant SQL)

_COMMON_NAMES = (
    "course",
    "organization",
    "line_item",
    "tool",
    "learner",
    "given",
    "maximum",
    "timestamp",
    "actor",
    "request",
    "now",
    "comment",
)


def _numbered(sql: str, names: tuple[str, ...]) -> str:
    """The statement with `$name` as asyncpg's `$n`, in the order of `names`."""
    for n, name in enumerate(names, start=1):
        sql = sql.replace(f"${name}", f"${n}")
    return sql


_POST_COMMON_SQL = _numbered(_POST_COMMON, _COMMON_NAMES)


@dataclass(frozen=True, slots=True)
class ToolScore:
    """A score as the tool posted it: where, for whom, and how much out of how much (None: no score)."""

    course_id: int
    organization_id: int
    line_item_id: int
    tool_id: int
    learner: str
    given: Decimal | None
    maximum: Decimal | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class CommonOutcome:
    """What the one statement found: the assessment (None: no such line item for the tool), the learner (None:
    not enrolled), the last timestamp, and whether it wrote the score."""

    assessment_id: int | None
    enrollment_id: int | None
    last_timestamp: datetime | None
    has_items: bool | None
    status: str | None
    written: bool


async def post_common(
    db: AsyncSession | AsyncEngine,
    score: ToolScore,
    comment: str | None,
    actor: str,
    request_id: str | None,
    now: datetime,
) -> CommonOutcome:
    """Write a graded score (and `comment` as feedback; None: none) in the common case as one statement (see
    _POST_COMMON); given an engine, or a session that has not used the database yet, on a pool connection in
    autocommit (one round trip), else in the session's transaction, which the caller commits."""
    parameters = (
        score.course_id,
        score.organization_id,
        score.line_item_id,
        score.tool_id,
        score.learner,
        score.given,
        score.maximum,
        score.timestamp,
        actor,
        request_id,
        now,
        comment,
    )
    row: Mapping[Any, Any] | None
    if isinstance(db, AsyncSession) and db.in_transaction():
        result = await (await db.connection()).exec_driver_sql(_POST_COMMON_SQL, parameters)
        row = result.mappings().first()
    else:
        engine = db if isinstance(db, AsyncEngine) else db.bind
        assert isinstance(engine, AsyncEngine)
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            row = await driver.fetchrow(_POST_COMMON_SQL, *parameters)
    assert row is not None
    return CommonOutcome(
        row["assessment_id"],
        row["enrollment_id"],
        row["last_timestamp"],
        row["has_items"],
        row["status"],
        bool(row["written"]),
    )


# --- the general path's statements (in the caller's transaction) ------------------------------------


@dataclass(frozen=True, slots=True)
class ToolTarget:
    """The line item's assessment and the learner's attempt at it, as the general path reads them."""

    assessment_id: int
    assessment: str
    points: Decimal
    enrollment_id: int | None
    attempt_id: int | None
    status: str | None
    last_timestamp: datetime | None
    has_items: bool
    late_policy: bool
    old: dict[str, Any] | None
    old_comment: str | None


_TARGET = text(
    _PROBE.replace("$learner", ":learner")
    .replace("$line_item", ":line_item")
    .replace("$course", ":course")
    .replace("$tool", ":tool")
)


async def target(
    session: AsyncSession, course_id: int, line_item_id: int, tool_id: int, learner: str
) -> ToolTarget | None:
    """The line item (None: the tool has no such line item in the course) with the learner's attempt."""
    row = (
        (
            await session.execute(
                _TARGET, {"course": course_id, "line_item": line_item_id, "tool": tool_id, "learner": learner}
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else ToolTarget(**row)


_ADVANCE = text(
    """
    INSERT INTO lti_score_timestamps AS s (assessment_id, enrollment_id, timestamp) VALUES (:a, :e, :ts)
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET timestamp = excluded.timestamp
      WHERE s.timestamp < excluded.timestamp
    RETURNING s.assessment_id
    """
)


async def advance_timestamp(session: AsyncSession, assessment_id: int, enrollment_id: int, timestamp: datetime) -> bool:
    """Record the learner's latest score timestamp; False when it is not later than the one on record."""
    row = (await session.execute(_ADVANCE, {"a": assessment_id, "e": enrollment_id, "ts": timestamp})).first()
    return row is not None


_CLEAR = text(
    """
    INSERT INTO attempts AS t (assessment_id, enrollment_id, status) VALUES (:a, :e, :status)
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
      status = excluded.status, entered = NULL, source = NULL, scored_by = NULL, scored_at = NULL,
      computed_earned = NULL, confirmed_at = NULL, confirmed_by = NULL, updated_at = :now
    RETURNING t.id
    """
)


async def clear(session: AsyncSession, assessment_id: int, enrollment_id: int, status: str, now: datetime) -> int:
    """Remove the learner's score at the assessment (an override too: the tool withdrew the result) and set
    the attempt's status (creating the attempt); its id."""
    result = await session.execute(_CLEAR, {"a": assessment_id, "e": enrollment_id, "status": status, "now": now})
    return int(result.scalar_one())


_SET_STATUS = text(
    """
    INSERT INTO attempts AS t (assessment_id, enrollment_id, status) VALUES (:a, :e, :status)
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET status = excluded.status,
      confirmed_at = CASE WHEN t.status = excluded.status THEN t.confirmed_at END,
      confirmed_by = CASE WHEN t.status = excluded.status THEN t.confirmed_by END,
      updated_at = :now
    RETURNING t.id
    """
)


async def set_status(session: AsyncSession, assessment_id: int, enrollment_id: int, status: str, now: datetime) -> int:
    """Set the attempt's status as the tool reports it (creating the attempt); its id."""
    result = await session.execute(_SET_STATUS, {"a": assessment_id, "e": enrollment_id, "status": status, "now": now})
    return int(result.scalar_one())


_ENSURE = text(
    """
    INSERT INTO attempts AS t (assessment_id, enrollment_id, status) VALUES (:a, :e, 'to_be_taken')
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET updated_at = t.updated_at
    RETURNING t.id
    """
)


async def ensure_attempt(session: AsyncSession, assessment_id: int, enrollment_id: int) -> int:
    """The learner's attempt at the assessment (created to be taken when there is none); its id."""
    return int((await session.execute(_ENSURE, {"a": assessment_id, "e": enrollment_id})).scalar_one())
