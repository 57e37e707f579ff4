"""Scores a registered tool posts (LTI AGS) to a line item: the SQL of that entry point into the score path.

A tool names the assessment by its line item (lti_line_items: its own, or one a planner exposed to every tool)
and orders its scores by its own timestamp: per learner and assessment the last one is kept in
lti_score_timestamps, and a score whose timestamp is not later than it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS
from gradeflow.db import grouped
from gradeflow.scores.repository.scores import TOTALS_CONFLICT  # the one override rule of score writes

# Points are numeric(18, 6): a rescaled score must stay below this.
POINTS_LIMIT = Decimal(10) ** 12

# Each given row's line item (if the tool may use it in the course), with the assessment it is and the learner's
# attempt at it. `given` is a relation of (course, line_item, tool, learner), one row per score, `g`.
_PROBE = """
    SELECT g.*, a.id AS assessment_id, a.external_id AS assessment, a.points_possible AS points,
           e.id AS enrollment_id, t.id AS attempt_id, t.status, s.timestamp AS last_timestamp,
           EXISTS (SELECT 1 FROM items x WHERE x.assessment_id = a.id) AS has_items,
           EXISTS (SELECT 1 FROM late_policies p WHERE p.course_id = l.course_id) AS late_policy,
           CASE WHEN t.entered IS NOT NULL THEN
                  jsonb_build_object('earned', trim_scale(t.entered), 'possible', trim_scale(t.possible),
                                     'source', t.source, 'graded_by', t.scored_by)
           END AS old,
           f.text AS old_comment
    FROM {given} g
    JOIN lti_line_items l ON l.id = g.line_item AND l.course_id = g.course AND (l.tool_id IS NULL OR l.tool_id = g.tool)
    JOIN assessments a ON a.id = l.assessment_id
    LEFT JOIN enrollments e ON e.course_id = l.course_id AND e.external_id = g.learner
    LEFT JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN lti_score_timestamps s ON s.assessment_id = a.id AND s.enrollment_id = e.id
    LEFT JOIN feedback f ON f.attempt_id = t.id AND f.item_id IS NULL
"""

# The score rescaled from the tool's maximum to the assessment's points (exact when they are equal).
_RESCALED = "CASE WHEN p.maximum = p.points THEN p.given ELSE round(p.given * p.points / p.maximum, 6) END"

# The common case as one statement for several scores (each with its own course, tool, times and caller), as
# scores.put_scores is for the native PUT: a graded score (and the comment, if any, as the learner's feedback on
# the attempt) on an assessment without items, in a course without a late policy, the attempt not cancelled, the
# timestamp later than the last one. The timestamp is advanced first and every write hangs on it, so of two
# concurrent posts with the same timestamp one writes. Audited as the general path audits: score.set and
# feedback.set, each when it changes something. One row per score, by its number `rn` (from 1): what was found,
# and whether the score was written. No two scores may name the same learner's line item. Rows are written in key
# order, so that two statements writing the same rows lock them in the same order (no deadlock).
_POST_COMMON = f"""
    WITH given AS (
      SELECT * FROM unnest(CAST($1 AS bigint[]), CAST($2 AS bigint[]), CAST($3 AS bigint[]), CAST($4 AS bigint[]),
                           CAST($5 AS text[]), CAST($6 AS numeric[]), CAST($7 AS numeric[]),
                           CAST($8 AS timestamptz[]), CAST($9 AS text[]), CAST($10 AS text[]),
                           CAST($11 AS timestamptz[]), CAST($12 AS text[]))
        WITH ORDINALITY AS g(course, organization, line_item, tool, learner, given, maximum, timestamp, actor,
                             request, now, comment, rn)
    ), probe AS ({_PROBE.format(given="given")}),
    target AS (
      SELECT p.*, {_RESCALED} AS earned FROM probe p
      WHERE p.enrollment_id IS NOT NULL AND NOT p.has_items AND NOT p.late_policy
        AND p.status IS DISTINCT FROM 'cancelled'
        AND (p.last_timestamp IS NULL OR p.last_timestamp < p.timestamp)
    ), stamped AS (
      INSERT INTO lti_score_timestamps AS s (assessment_id, enrollment_id, timestamp)
      SELECT assessment_id, enrollment_id, timestamp FROM target
      WHERE earned < {POINTS_LIMIT} ORDER BY assessment_id, enrollment_id
      ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET timestamp = excluded.timestamp
        WHERE s.timestamp < excluded.timestamp
      RETURNING s.assessment_id, s.enrollment_id
    ), go AS (
      SELECT target.*,
             jsonb_build_object('earned', trim_scale(earned), 'possible', trim_scale(points),
                                'source', 'auto', 'graded_by', actor) AS new
      FROM target JOIN stamped USING (assessment_id, enrollment_id)
    ), audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT organization, course, now, actor, request, 'score.set', learner, assessment, NULL, old, new
      FROM go WHERE old IS DISTINCT FROM new
    ), stale AS (
      INSERT INTO stale_grades (enrollment_id, course_id)
      SELECT enrollment_id, course FROM go ORDER BY enrollment_id ON CONFLICT DO NOTHING
    ), written AS (
      INSERT INTO attempts AS t (assessment_id, enrollment_id, status, entered, possible, source, scored_by, scored_at)
      SELECT assessment_id, enrollment_id, 'graded', earned, points, 'auto', actor, now
      FROM go ORDER BY assessment_id, enrollment_id
      {TOTALS_CONFLICT.replace(":now", "excluded.scored_at")}
      RETURNING t.id, t.assessment_id, t.enrollment_id
    ), commented AS (
      INSERT INTO feedback (attempt_id, item_id, text, updated_by, updated_at)
      SELECT w.id, NULL, go.comment, go.actor, go.now
      FROM written w JOIN go USING (assessment_id, enrollment_id)
      WHERE go.comment IS NOT NULL AND go.old_comment IS DISTINCT FROM go.comment ORDER BY w.id
      ON CONFLICT (attempt_id, coalesce(item_id, 0)) DO UPDATE SET
        text = excluded.text, updated_by = excluded.updated_by, updated_at = excluded.updated_at
    ), comment_audited AS (
      INSERT INTO audit_log ({AUDIT_COLUMNS})
      SELECT organization, course, now, actor, request, 'feedback.set', learner, assessment, NULL,
             jsonb_build_object('text', old_comment), jsonb_build_object('text', comment)
      FROM go WHERE comment IS NOT NULL AND old_comment IS DISTINCT FROM comment
    )
    SELECT g.rn, p.assessment_id, p.enrollment_id, p.last_timestamp, p.has_items, p.status,
           w.id IS NOT NULL AS written
    FROM given g
    LEFT JOIN probe p ON p.rn = g.rn
    LEFT JOIN written w ON w.assessment_id = p.assessment_id AND w.enrollment_id = p.enrollment_id
    ORDER BY g.rn
"""  # noqa: S608  (constant SQL)


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
class ToolPost:
    """A graded score to write in the common case, with its comment (None: none), its caller and times."""

    score: ToolScore
    comment: str | None
    actor: str
    request_id: str | None
    now: datetime

    def key(self) -> tuple[int, int, str]:
        """The learner's line item it writes (no two in one statement)."""
        return self.score.course_id, self.score.line_item_id, self.score.learner

    def row(self) -> tuple[Any, ...]:
        """Its values in _POST_COMMON's column order."""
        score = self.score
        return (
            score.course_id,
            score.organization_id,
            score.line_item_id,
            score.tool_id,
            score.learner,
            score.given,
            score.maximum,
            score.timestamp,
            self.actor,
            self.request_id,
            self.now,
            self.comment,
        )


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


async def post_scores(driver: Any, posts: Sequence[ToolPost]) -> list[CommonOutcome]:
    """Write graded scores (and their comments as feedback) in the common case as one statement (see
    _POST_COMMON) on `driver`, an asyncpg connection outside any transaction (the statement is its own): each
    one's outcome, in order."""
    return _outcomes(await driver.fetch(_POST_COMMON, *grouped.columns([post.row() for post in posts])))


async def post_common(session: AsyncSession, post: ToolPost) -> CommonOutcome:
    """post_scores for one score, with the request's session (grouped.fetch_in)."""
    return _outcomes(await grouped.fetch_in(session, _POST_COMMON, [post.row()]))[0]


def _outcomes(rows: Sequence[Mapping[Any, Any]]) -> list[CommonOutcome]:
    return [
        CommonOutcome(
            row["assessment_id"],
            row["enrollment_id"],
            row["last_timestamp"],
            row["has_items"],
            row["status"],
            bool(row["written"]),
        )
        for row in rows
    ]


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
    _PROBE.format(
        given="(SELECT CAST(:course AS bigint) AS course, CAST(:line_item AS bigint) AS line_item,"
        " CAST(:tool AS bigint) AS tool, CAST(:learner AS text) AS learner)"
    )
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
    return None if row is None else ToolTarget(**{name: row[name] for name in ToolTarget.__dataclass_fields__})


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
