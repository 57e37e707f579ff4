"""The course's late policy applied to attempts (set-based): the deduction and late/missing status of each result.

INTERFACE ONLY for now (being implemented in this change): callers already call it after what can change a result's
lateness (a score write, a status or submission time, an excuse, a due date, an override, the policy).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


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
    return []
