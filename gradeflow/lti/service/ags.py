"""The courses tools post scores to, remembered per process: the score lane answers a tool's score POST with no
look-up before its one statement.

A course never changes its organization nor its key, so what a route resolved stays true; whether the tool may
still reach it is asked of the grant each time (grants are re-read within a second of a change).
"""

from __future__ import annotations

from gradeflow.access.identity import CourseRef
from gradeflow.lti.service.tokens import LtiGrant

_COURSES: dict[tuple[int, str], int] = {}
_COURSES_MAX = 100_000


def remember_course(ref: CourseRef) -> None:
    """Remember a course a tool's request resolved (by organization and key)."""
    if len(_COURSES) >= _COURSES_MAX:
        _COURSES.clear()
    _COURSES[(ref.organization_id, ref.external_id)] = ref.id


def known_course(grant: LtiGrant, key: str) -> CourseRef | None:
    """The course `key` of the grant's organization when this process resolved it before and the tool may reach
    it; None: resolve it (the route answers)."""
    course_id = _COURSES.get((grant.organization_id, key))
    if course_id is None or not grant.reaches(course_id):
        return None
    return CourseRef(course_id, grant.organization_id, key, frozenset())
