"""The late policy applied to attempts, set-based (gradeflow/deadlines/service/late_results.py says the rule): the
statements that insert the missing learners' attempts and recompute each selected attempt's figures, auditing each
changed result in the same statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import repository as audit
from gradeflow.core.statuses import NOT_HANDED_IN_STATUSES, sql_in
from gradeflow.deadlines.repository import due_dates

ACTION = "result.late_policy"
# Selected attempts (or pairs, for the insert): every given filter applies.
_FILTERS = """
    (CAST(:a AS bigint[]) IS NULL OR {assessment} = ANY(CAST(:a AS bigint[])))
    AND (CAST(:e AS bigint[]) IS NULL OR {enrollment} = ANY(CAST(:e AS bigint[])))
"""

# The course's policy as one row (defaults when it has none: nothing deducted, late work still flagged late).
_POLICY = """
    SELECT coalesce(p.missing_submission_deduction_enabled, false) AS m_on,
           coalesce(p.missing_submission_deduction, 0) AS m_pct,
           coalesce(p.late_submission_deduction_enabled, false) AS l_on,
           coalesce(p.late_submission_deduction, 0) AS l_pct,
           CASE p.late_submission_interval WHEN 'hour' THEN 3600 ELSE 86400 END AS iv,
           CASE WHEN p.late_submission_minimum_percent_enabled THEN p.late_submission_minimum_percent ELSE 0 END
             AS floor_pct
    FROM (SELECT 1) one LEFT JOIN late_policies p ON p.course_id = :c
"""

# Learners the missing policy must see without an attempt (whole assessments or learners selected): one to_be_taken
# attempt each, which the update below then marks missing.
_INSERT_MISSING = text(
    f"""
    INSERT INTO attempts (assessment_id, enrollment_id, status)
    SELECT a.id, e.id, 'to_be_taken'
    FROM late_policies p
    JOIN assessments a ON a.course_id = p.course_id
    JOIN enrollments e ON e.course_id = p.course_id AND {due_dates.learner()}
    {due_dates.overrides_join("a.id", "e.id")}
    WHERE p.course_id = :c AND p.missing_submission_deduction_enabled
      AND {due_dates.due_at()} <= CAST(:now AS timestamptz) - interval '1 second'
      AND {_FILTERS.format(assessment="a.id", enrollment="e.id")}
      AND NOT EXISTS (SELECT 1 FROM attempts t WHERE t.assessment_id = a.id AND t.enrollment_id = e.id)
    ON CONFLICT (assessment_id, enrollment_id) DO NOTHING
    """  # noqa: S608  (constant SQL)
)

# Whole seconds late (fractions dropped, as late_policy.seconds_late), then the new figures of each attempt.
_CALC = f"""
    base AS (
      SELECT t.id, t.enrollment_id, t.assessment_id, t.status, t.entered, t.possible, t.excused, t.started_at,
             t.submitted_at, t.points_deducted AS old_pd, t.late_status AS old_ls, t.earned AS old_earned,
             coalesce(t.possible, a.points_possible) AS pp, a.points_possible AS a_pp,
             {due_dates.learner()} AS learner, e.external_id AS learner_ext,
             a.external_id AS assessment_ext,
             pol.*,
             CASE WHEN {due_dates.due_at()} IS NULL THEN 0
                  ELSE greatest(floor(extract(epoch FROM coalesce(t.submitted_at, CAST(:now AS timestamptz))
                                                      - {due_dates.due_at()})), 0)
             END AS late_s
      FROM attempts t
      JOIN assessments a ON a.id = t.assessment_id
      JOIN enrollments e ON e.id = t.enrollment_id
      {due_dates.overrides_join("a.id", "t.enrollment_id")}
      CROSS JOIN ({_POLICY}) pol
      WHERE a.course_id = :c AND (CAST(:t AS bigint[]) IS NULL OR t.id = ANY(CAST(:t AS bigint[])))
        AND {_FILTERS.format(assessment="t.assessment_id", enrollment="t.enrollment_id")}
    ),
    flagged AS (
      SELECT b.*,
             CASE WHEN b.excused OR b.status = 'cancelled' OR b.late_s = 0 THEN NULL
                  WHEN b.submitted_at IS NOT NULL THEN 'late'
                  WHEN b.m_on AND b.learner AND b.entered IS NULL
                       AND ({sql_in("b.status", NOT_HANDED_IN_STATUSES)}
                            OR (b.status = 'graded' AND b.old_ls = 'missing'))
                    THEN 'missing'
             END AS new_ls
      FROM base b
    ),
    calc AS (
      SELECT s.*,
             CASE WHEN s.new_ls = 'missing' THEN s.a_pp * s.m_pct * 0.01
                  WHEN s.new_ls = 'late' AND s.l_on AND s.entered IS NOT NULL AND s.pp > 0 THEN
                    round(least(s.pp * s.l_pct * div(s.late_s + s.iv - 1, s.iv) * 0.01,
                                greatest(s.entered - s.pp * s.floor_pct * 0.01, 0)), 2)
                  WHEN s.new_ls = 'late' THEN 0.00
             END AS new_pd,
             CASE WHEN s.new_ls = 'missing' THEN 'graded'
                  WHEN s.old_ls = 'missing' AND s.status = 'graded' AND s.entered IS NULL THEN
                    CASE WHEN s.started_at IS NOT NULL THEN 'in_progress' ELSE 'to_be_taken' END
                  ELSE s.status
             END AS new_status,
             CASE WHEN s.new_ls = 'missing' THEN s.a_pp ELSE s.possible END AS new_possible
      FROM flagged s
    )
"""  # noqa: S608  (constant SQL)

_APPLY_SQL = f"""
    WITH {_CALC},
    changed AS (
      UPDATE attempts t SET points_deducted = c.new_pd, late_status = c.new_ls, status = c.new_status,
                            possible = c.new_possible, updated_at = CAST(:now AS timestamptz),
                            -- a result the policy gave (missing) or took back is a new result: confirmed again
                            confirmed_at = CASE WHEN c.new_status IS DISTINCT FROM c.status THEN NULL
                                                ELSE t.confirmed_at END,
                            confirmed_by = CASE WHEN c.new_status IS DISTINCT FROM c.status THEN NULL
                                                ELSE t.confirmed_by END
      FROM calc c
      -- the selection again on the target: found by the same index, not a scan of every attempt
      WHERE t.id = c.id AND (CAST(:t AS bigint[]) IS NULL OR t.id = ANY(CAST(:t AS bigint[])))
        AND {_FILTERS.format(assessment="t.assessment_id", enrollment="t.enrollment_id")}
        AND (c.new_pd, c.new_ls, c.new_status, c.new_possible)
            IS DISTINCT FROM (c.old_pd, c.old_ls, c.status, c.possible)
      -- the old figures and the names come along from the FROM list: no join back for the audit entries
      RETURNING t.enrollment_id, t.points_deducted, t.late_status, t.earned, c.old_pd, c.old_ls, c.old_earned,
                c.learner_ext, c.assessment_ext
    ),
    logged AS (
      INSERT INTO audit_log ({audit.COLUMNS})
      SELECT :org, :course, :at, :actor, :rid, '{ACTION}', x.learner_ext, x.assessment_ext, NULL,
             jsonb_build_object('points_deducted', trim_scale(x.old_pd), 'late_status', x.old_ls,
                                'earned', trim_scale(x.old_earned)),
             jsonb_build_object('points_deducted', trim_scale(x.points_deducted), 'late_status', x.late_status,
                                'earned', trim_scale(x.earned))
      FROM changed x
      WHERE (x.old_pd, x.old_ls, x.old_earned) IS DISTINCT FROM (x.points_deducted, x.late_status, x.earned)
    )
    SELECT DISTINCT enrollment_id FROM changed ORDER BY enrollment_id
"""  # noqa: S608  (constant SQL)
_APPLY = text(_APPLY_SQL)
# The same where no override of the course moves a due date: the lateral overrides lookup per result is a large part
# of a chunk's time, and most courses have none.
_NO_OVERRIDE = "CROSS JOIN (SELECT CAST(NULL AS timestamptz) AS due_at) ov"
_APPLY_PLAIN = text(_APPLY_SQL.replace(due_dates.overrides_join("a.id", "t.enrollment_id"), _NO_OVERRIDE))
assert _APPLY_PLAIN.text != _APPLY.text
_MOVES_DUE_DATES = text(
    """
    SELECT EXISTS (SELECT 1 FROM assessment_overrides o JOIN assessments a ON a.id = o.assessment_id
                   WHERE a.course_id = :c AND o.due_at IS NOT NULL)
    """
)


async def organization_of(session: AsyncSession, course_id: int) -> int | None:
    """The course's organization (None: no such course)."""
    org: int | None = await session.scalar(text("SELECT organization_id FROM courses WHERE id = :c"), {"c": course_id})
    return org


async def tune_for_short_statements(session: AsyncSession) -> None:
    """For the rest of the transaction: no JIT, and plans made for the values given."""
    # These statements are short and run often: compiling them (JIT) costs more than running them.
    await session.execute(text("SET LOCAL jit = off"))
    # The optional filters (``CAST(:e AS bigint[]) IS NULL OR ...``) fold away only in a plan made for the values:
    # a cached generic plan (from the sixth run of a prepared statement on) scans every attempt of the database.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def insert_missing_attempts(
    session: AsyncSession,
    course_id: int,
    now: datetime,
    assessment_ids: list[int] | None,
    enrollment_ids: list[int] | None,
) -> None:
    """A to_be_taken attempt for each selected learner without one whose due date passed, when the course's missing
    deduction is on (the update then marks it missing)."""
    await session.execute(_INSERT_MISSING, {"c": course_id, "a": assessment_ids, "e": enrollment_ids, "now": now})


async def due_dates_moved(session: AsyncSession, course_id: int) -> bool:
    """Some override of the course moves a due date."""
    return bool(await session.scalar(_MOVES_DUE_DATES, {"c": course_id}))


async def apply_policy(
    session: AsyncSession,
    course_id: int,
    now: datetime,
    *,
    assessment_ids: list[int] | None,
    enrollment_ids: list[int] | None,
    attempt_ids: list[int] | None,
    stamp: dict[str, Any],
    overridden: bool,
) -> list[int]:
    """Recompute the selected attempts' figures, write those that change, audit each changed result (``stamp``: the
    audit entries' organization, course, time, actor and request); the changed learners' enrollment ids.
    `overridden`: some override of the course moves a due date (``due_dates_moved``)."""
    params = {"c": course_id, "a": assessment_ids, "e": enrollment_ids, "now": now}
    rows = await session.scalars(
        _APPLY if overridden else _APPLY_PLAIN, {**params, "t": attempt_ids, **stamp, "now": now}
    )
    return list(rows.all())
