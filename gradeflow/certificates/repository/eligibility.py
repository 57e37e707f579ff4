"""Who may hold a certificate, and who may see one, as SQL fragments: the rules the certificates, their
generations, the grade report (reports) and the certificate mailings (mailings) share.

A module of its own below the use cases, so that every reader imports the rule from here and nothing
imports a use case for it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.publishing.repository.visibility import AWAITS_CONFIRMATION

# Open edX marks these tracks "ID Verified" when the learner's identity was checked; other tracks say N/A.
ID_VERIFIED_TRACKS = ("verified", "professional", "masters", "executive-education")


def eligible_now(threshold: str | None = None) -> str:
    """SQL: who may have the course certificate right now. Aliases: `e` enrollments, `g` course_grades of
    the served version (LEFT JOIN), `w` certificate_allowlist (LEFT JOIN on w.enrollment_id = e.id). The
    allow list wins over track and grade; otherwise an audit-track learner never gets one and anybody
    else needs a passing grade (the course_passing rule) or, given `threshold` (SQL of a numeric, the
    course_percent rule), a course grade of at least that percent. Only enrolled learners: an
    unenrolled learner's row says N (as the document's example), never Y without a certificate to
    deliver."""
    passes = "g.final_passed IS TRUE" if threshold is None else f"g.final_percent >= {threshold}"
    return f"(e.status = 'enrolled' AND (w.id IS NOT NULL OR (e.track <> 'audit' AND {passes})))"


ELIGIBLE_NOW = eligible_now()


def threshold_literal(threshold: Decimal) -> str:
    """A stored threshold (ours, a Decimal) as an SQL numeric, for statements that take no parameters
    of their own (the grade report's COPY)."""
    if not isinstance(threshold, Decimal) or not threshold.is_finite():
        raise TypeError("a threshold is a finite Decimal")
    return f"CAST('{threshold}' AS numeric)"


_COURSE_THRESHOLD = text("SELECT threshold FROM certifications WHERE course_id = :c AND assessment_id IS NULL")


async def course_rule_sql(session: AsyncSession, course_id: int) -> str:
    """ELIGIBLE_NOW under the course's certification (its threshold, with the course_percent rule)."""
    threshold = await session.scalar(_COURSE_THRESHOLD, {"c": course_id})
    return ELIGIBLE_NOW if threshold is None else eligible_now(threshold_literal(threshold))


# An assessment's certification: the learner's result at the assessment `a` (attempt `t`) is final -
# graded, not excused (an excused result never passes), with points, confirmed where it has manual
# items - and is at least the threshold (:threshold) percent, compared exactly (70 % of 10 is 7).
ASSESSMENT_PASSED = f"""(t.status = 'graded' AND NOT t.excused AND t.earned IS NOT NULL AND t.possible > 0
    AND NOT ({AWAITS_CONFIRMATION}) AND t.earned * 100 >= CAST(:threshold AS numeric) * t.possible)"""


def shown_to_learner(k: str = "k") -> str:
    """SQL: the learner may see certificate `k` (shown on their list, its diploma handed out, sent to
    them) - valid, and a course certificate (issued by a generation, the release, as Open edX's) or an
    assessment's whose result is published to them (a certificate never tells a learner a result before
    the result itself does)."""
    return f"""({k}.revoked_at IS NULL AND ({k}.assessment_id IS NULL OR EXISTS (
      SELECT 1 FROM published_results pr WHERE pr.enrollment_id = {k}.enrollment_id
        AND pr.assessment_id = {k}.assessment_id)))"""  # noqa: S608  (an alias)


SHOWN_TO_LEARNER = shown_to_learner()
