"""Who may do what: the one permission table, and the course lookup that enforces it."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef, Principal
from gradeflow.access.repository import access as repository
from gradeflow.core.errors import Forbidden, NotFound, ValidationFailed

COURSE_ROLES = ("planner", "grader", "publisher", "viewer", "moderator")


class Action(StrEnum):
    COURSE_READ = "course.read"
    COURSE_WRITE = "course.write"
    MEMBER_READ = "member.read"
    MEMBER_WRITE = "member.write"
    ENROLLMENT_READ = "enrollment.read"
    ENROLLMENT_WRITE = "enrollment.write"
    ASSESSMENT_READ = "assessment.read"
    ASSESSMENT_WRITE = "assessment.write"
    ATTEMPT_WRITE = "attempt.write"
    SCORE_READ = "score.read"
    SCORE_WRITE = "score.write"
    POLICY_READ = "policy.read"
    POLICY_WRITE = "policy.write"
    GRADE_READ = "grade.read"
    AUDIT_READ = "audit.read"
    ALLOCATE = "marking.allocate"
    MARK_READ = "marking.read"
    MARK_WRITE = "marking.write"
    CONFIRM = "marking.confirm"
    IMPORT = "scores.import"
    PUBLISH = "results.publish"
    PUBLICATION_READ = "results.publication_read"
    REPORT_WRITE = "report.write"
    REPORT_READ = "report.read"
    CERTIFICATES = "certificates.manage"
    CERTIFICATE_READ = "certificates.read"
    MODERATION_SAMPLE = "moderation.sample"
    MODERATE = "moderation.moderate"


_STAFF = frozenset(COURSE_ROLES)
_PLANNER = frozenset({"planner"})
_MARKERS = frozenset({"planner", "grader"})
# Roles that see every result in the course; a grader without one of them sees only allocated work.
_OVERSIGHT = frozenset({"planner", "viewer", "publisher"})

# Course roles allowed to take each action. API keys (admin and service) may take every course action.
COURSE_RULES: dict[Action, frozenset[str]] = {
    Action.COURSE_READ: _STAFF,
    Action.COURSE_WRITE: _PLANNER,
    Action.MEMBER_READ: _PLANNER,
    Action.MEMBER_WRITE: _PLANNER,
    Action.ENROLLMENT_READ: _STAFF,
    Action.ENROLLMENT_WRITE: _PLANNER,
    Action.ASSESSMENT_READ: _STAFF,
    Action.ASSESSMENT_WRITE: _PLANNER,
    # Graders change results only through marks on work allocated to them.
    Action.ATTEMPT_WRITE: _PLANNER,
    Action.SCORE_READ: _STAFF,
    Action.SCORE_WRITE: _PLANNER,
    Action.POLICY_READ: _STAFF,
    Action.POLICY_WRITE: _PLANNER,
    Action.GRADE_READ: _OVERSIGHT,
    Action.AUDIT_READ: _PLANNER,
    Action.ALLOCATE: _PLANNER,
    Action.MARK_READ: _MARKERS,
    Action.MARK_WRITE: _MARKERS,
    Action.IMPORT: _PLANNER,
    Action.CONFIRM: _MARKERS,  # graders only where the assessment allows it (checked by the service)
    # Publishing is its own role, independent of grading (a publisher may be limited to assessments).
    Action.PUBLISH: frozenset({"publisher"}),
    Action.PUBLICATION_READ: _OVERSIGHT,
    # Reports hold every learner's results: asked for by planners, read by those who oversee results.
    Action.REPORT_WRITE: _PLANNER,
    Action.REPORT_READ: _OVERSIGHT,
    # Certificates follow enrollment: who is on the allow list, and when certificates are generated.
    Action.CERTIFICATES: _PLANNER,
    # Who holds a certificate (and what a certification asks) is results: read by those who oversee them,
    # publishers included (they send candidates their certificates); not by graders.
    Action.CERTIFICATE_READ: _OVERSIGHT,
    # Moderation: planners pick the sample; moderators (and planners) review it, adjust marks and scale a
    # grader's marks. Graders never moderate.
    Action.MODERATION_SAMPLE: _PLANNER,
    Action.MODERATE: frozenset({"planner", "moderator"}),
}


def marker_identity(principal: Principal, ref: CourseRef, grader: str | None) -> str:
    """Who marks: a user marks as themselves; an API key (an LMS acting for its users) names the grader."""
    if principal.is_key:
        if grader is None:
            raise ValidationFailed.one("grader", "An API key must say which grader this is for.", "query")
        return grader
    if grader is not None and grader != principal.subject:
        raise Forbidden("You can only act as yourself.")
    return principal.subject


def sees_all_marks(principal: Principal, ref: CourseRef) -> bool:
    """API keys and planners see every grader's marks; graders see their own until reconciliation."""
    return principal.is_key or "planner" in ref.roles


def sees_all_results(principal: Principal, ref: CourseRef) -> bool:
    """False for a grader with no overseeing role: they see only the attempts allocated to them."""
    return principal.is_key or bool(ref.roles & _OVERSIGHT)


def require_key(principal: Principal, *, admin: bool = False) -> None:
    """Organization-level actions: API keys only (admin keys when `admin`)."""
    if not principal.is_key or (admin and not principal.is_admin):
        raise Forbidden("This action needs an admin API key." if admin else "This action needs an API key.")


async def course_access(
    session: AsyncSession, principal: Principal, course_external_id: str, action: Action
) -> CourseRef:
    """Resolve a course of the caller's organization and check `action` on it.

    A course of another organization, or one a user has no role in, is 404: its existence is not revealed.
    """
    found = await repository.course_roles(
        session, principal.organization_id, course_external_id, None if principal.is_key else principal.subject
    )
    if found is None:
        raise NotFound(f"Course {course_external_id!r} not found.")
    roles = found.roles
    ref = CourseRef(found.id, principal.organization_id, course_external_id, roles)
    if principal.is_key:
        return ref
    if not roles:
        raise NotFound(f"Course {course_external_id!r} not found.")
    if not roles & COURSE_RULES[action]:
        raise Forbidden(f"Your course roles ({', '.join(sorted(roles))}) do not allow {action.value}.")
    return ref


async def _publisher_scope(session: AsyncSession, course_id: int, principal: Principal) -> list[str] | None:
    """The assessments a user may publish (None: the whole course, the course grade included)."""
    if principal.is_key:
        return None
    memberships = await repository.publisher_assessments(session, course_id, principal.subject)
    if not memberships or any(m is None for m in memberships):
        return None
    return sorted({a for m in memberships if m is not None for a in m})


def _check_scope(scope: list[str] | None, assessments: list[str], course_grade: bool) -> None:
    """A publisher limited to some assessments acts only on publications within them (never the course grade)."""
    if scope is None:
        return
    outside = [a for a in assessments if a not in scope]
    if outside or course_grade:
        what = f"assessment {outside[0]!r}" if outside else "the course grade"
        raise Forbidden(f"Your publisher role does not cover {what}.")


async def check_publisher_scope(
    session: AsyncSession, course_id: int, principal: Principal, assessments: list[str], course_grade: bool
) -> None:
    """What reaches learners (a publication, a candidate mailing) stays within a limited publisher's
    assessments, never the course as a whole: 403 otherwise."""
    _check_scope(await _publisher_scope(session, course_id, principal), assessments, course_grade)
