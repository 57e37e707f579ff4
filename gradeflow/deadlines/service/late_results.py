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

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.deadlines.repository import late_results as repository
from gradeflow.grades.service import grades


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
    org = await repository.organization_of(session, course_id)
    if org is None:
        return []
    await repository.tune_for_short_statements(session)
    if attempt_ids is None:
        await repository.insert_missing_attempts(session, course_id, now, assessment_ids, enrollment_ids)
    # An override written meanwhile applies itself once committed (inline, or a worker application after this).
    overridden = await repository.due_dates_moved(session, course_id)
    changed = await repository.apply_policy(
        session,
        course_id,
        now,
        assessment_ids=assessment_ids,
        enrollment_ids=enrollment_ids,
        attempt_ids=attempt_ids,
        stamp=audit.stamp(org, course_id, actor),
        overridden=overridden,
    )
    if changed:
        await grades.mark_stale(session, course_id, changed)
    return changed
