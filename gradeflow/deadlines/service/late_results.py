"""The course's late policy applied to attempts (set-based): the deduction and late/missing status of each result.

The arithmetic is Canvas's as ``gradeflow/grading/late_policy.py`` states it for one submission (the reference the
property test holds this SQL to), here for every selected attempt in one statement:

- late: submitted after the learner's own due date (``due_dates.py``) by at least a whole second;
  ``points_deducted`` = possible x min(percent x intervals late, max(entered % - floor %, 0)) / 100 rounded half up
  to cents (0.00 when the late deduction is off, nothing is entered or nothing is possible); no grace period;
- missing: not submitted, not started-and-submitted, no entered score, not excused, past the learner's due date,
  the course's missing deduction on: status ``graded``, possible = the assessment's points, ``points_deducted`` =
  possible x missing percent / 100 (so the result is possible - that); a missing result that stops being missing
  goes back to ``to_be_taken`` (``in_progress`` once started) with no deduction;
- excused, cancelled, no due date: neither; a score someone entered is never changed (the result is the generated
  column ``attempts.earned``, FINAL_SCORE in gradeflow/db/models/scores.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.deadlines.service import due_dates
from gradeflow.grades.service import grades

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
                       AND (b.status IN ('to_be_taken', 'in_progress')
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
# The same where no override of the course moves a due date: the lateral overrides lookup per result was a third of
# a 5,000-learner chunk's time (measured on bench.late's course), and most courses have none.
_NO_OVERRIDE = "CROSS JOIN (SELECT CAST(NULL AS timestamptz) AS due_at) ov"
_APPLY_PLAIN = text(_APPLY_SQL.replace(due_dates.overrides_join("a.id", "t.enrollment_id"), _NO_OVERRIDE))
assert _APPLY_PLAIN.text != _APPLY.text
_MOVES_DUE_DATES = text(
    """
    SELECT EXISTS (SELECT 1 FROM assessment_overrides o JOIN assessments a ON a.id = o.assessment_id
                   WHERE a.course_id = :c AND o.due_at IS NOT NULL)
    """
)


async def apply(
    session: AsyncSession,
    course_id: int,
    *,
    assessment_ids: list[int] | None = None,
    enrollment_ids: list[int] | None = None,
    attempt_ids: list[int] | None = None,
    actor: str = "gradeflow:late-policy",
) -> list[int]:
    """Recompute ``points_deducted`` / ``late_status`` of the course's attempts selected by the filters (all given
    filters apply; none: the whole course), audit each result it changes, mark those learners' grades stale, and
    return their enrollment ids. Flushes only: the caller commits, then asks for the follow-up refresh."""
    now = clock.now()
    return await apply_at(
        session,
        course_id,
        now,
        assessment_ids=assessment_ids,
        enrollment_ids=enrollment_ids,
        attempt_ids=attempt_ids,
        actor=actor,
    )


async def apply_at(
    session: AsyncSession,
    course_id: int,
    now: datetime,
    *,
    assessment_ids: list[int] | None = None,
    enrollment_ids: list[int] | None = None,
    attempt_ids: list[int] | None = None,
    actor: str = "gradeflow:late-policy",
) -> list[int]:
    """``apply`` as of ``now`` (what "past the due date" means for work not submitted)."""
    org = await session.scalar(text("SELECT organization_id FROM courses WHERE id = :c"), {"c": course_id})
    if org is None:
        return []
    filters = {"c": course_id, "a": assessment_ids, "e": enrollment_ids, "now": now}
    # These statements are short and run often: compiling them (JIT) cost more than running them (a third of a
    # 5,000-learner chunk of the worker's application).
    await session.execute(text("SET LOCAL jit = off"))
    # The optional filters (``CAST(:e AS bigint[]) IS NULL OR ...``) fold away only in a plan made for the values:
    # a cached generic plan (from the sixth run of a prepared statement on) scans every attempt of the database.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if attempt_ids is None:
        await session.execute(_INSERT_MISSING, filters)
    # An override written meanwhile applies itself once committed (inline, or a worker application after this).
    overridden = await session.scalar(_MOVES_DUE_DATES, {"c": course_id})
    changed = list(
        (
            await session.scalars(
                _APPLY if overridden else _APPLY_PLAIN,
                {**filters, "t": attempt_ids, **audit.stamp(org, course_id, actor), "now": now},
            )
        ).all()
    )
    if changed:
        await grades.mark_stale(session, course_id, changed)
    return changed
