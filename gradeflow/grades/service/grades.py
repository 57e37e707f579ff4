"""Stored course grades: computing them from the database, keeping them current, reading them.

Grades are computed in chunks of learners: their scores come out with COPY into polars and numpy
(`sheets.py`), go through the grading engine, and go back with one multi-row upsert. Score writes
refresh the grades of the learners they touch in the same transaction; a policy change recomputes the
course in a worker job under the new version while the old version's grades stay served.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.grades.repository import grades as repository
from gradeflow.grades.repository.grades import GradeRows, StoredGrade
from gradeflow.grades.repository.policies import grading_state
from gradeflow.grades.service.catalogue import course_policy
from gradeflow.grades.service.explanations import Explained, explained, explanation
from gradeflow.grades.service.sheets import load_sheet
from gradeflow.grading import engine
from gradeflow.grading.policy import Policy
from gradeflow.grading.results import LearnerResult, many_objects
from gradeflow.notify import events
from gradeflow.publishing.service import visibility as published

CHUNK = 20_000


async def compute_and_store(
    session: AsyncSession,
    course_id: int,
    version: int,
    policy: Policy,
    enrollment_ids: np.ndarray,
    announce: bool = False,
) -> int:
    """Grade these learners (sorted ids) under `policy` and upsert their rows for `version`; with
    `announce` (the served version), a `grade.changed` event for each learner whose grade changed."""
    if len(enrollment_ids) == 0:
        return 0
    sheet = await load_sheet(session, course_id, policy, enrollment_ids)
    results = engine.PRESETS[policy.preset](policy, sheet)
    if announce:
        await _announce_changes(session, course_id, version, enrollment_ids, results)
    applied = engine.applied_weights(policy)
    with many_objects():
        rows = GradeRows(
            enrollment_ids=enrollment_ids.tolist(),
            current_percent=[_dec(r.current.percent) for r in results],
            current_grade=[r.current.grade for r in results],
            current_passed=[r.current.passed for r in results],
            final_percent=[_dec(r.final.percent) for r in results],
            final_grade=[r.final.grade for r in results],
            final_passed=[r.final.passed for r in results],
            explanation=[orjson.dumps(explanation(policy, r, applied)).decode() for r in results],
        )
    await repository.upsert_grades(session, course_id, version, rows)
    return len(results)


async def _announce_changes(
    session: AsyncSession, course_id: int, version: int, enrollment_ids: np.ndarray, results: list[LearnerResult]
) -> None:
    before = await repository.stored_finals(session, version, enrollment_ids.tolist())
    changes = []
    for eid, result in zip(enrollment_ids.tolist(), results, strict=True):
        old_row = before[eid]
        new_percent = result.final.percent
        old = None if old_row.percent is None else float(old_row.percent)
        if old == new_percent and old_row.grade == result.final.grade:
            continue
        changes.append(
            {
                "learner": old_row.learner,
                "policy_version": version,
                "old": None
                if old_row.percent is None
                else {"percent": old, "grade": old_row.grade, "passed": old_row.passed},
                "new": {"percent": new_percent, "grade": result.final.grade, "passed": result.final.passed},
            }
        )
    if changes:
        organization_id, course = await repository.course_names(session, course_id)
        await events.emit(session, organization_id, "grade.changed", *({"course": course, **c} for c in changes))


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(repr(x))


async def refresh_learners(session: AsyncSession, course_id: int, enrollment_ids: list[int]) -> None:
    """Recompute these learners' grades inside the caller's transaction (after their scores changed).

    Both the served version and a newer one being recomputed are kept current. The learners' rows
    are locked first, so a concurrent recompute chunk either waits for this commit or is overwritten
    by it.
    """
    if not enrollment_ids:
        return
    state = await grading_state(session, course_id)
    if state is None:  # the course is gone
        return
    wanted = sorted({v for v in (state.policy_version, state.grades_version) if v is not None})
    if not wanted:
        return
    ids = np.array(sorted(set(enrollment_ids)), dtype=np.int64)
    await repository.lock_learners(session, ids.tolist())
    for version in wanted:
        policy = await course_policy(session, course_id, version, state.stamp)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            announce = version == state.grades_version
            await compute_and_store(session, course_id, version, policy, chunk, announce=announce)


# Single score writes only mark their learner stale (one row in the write's transaction) and ask the
# worker to refresh the course a moment later (followup.py), so a burst of writes costs one vectorised
# refresh. Every grade read first refreshes what is stale, so nobody reads a grade older than its
# scores.


async def mark_stale(session: AsyncSession, course_id: int, enrollment_ids: list[int]) -> None:
    """Mark learners' stored grades stale in the caller's transaction (refreshed by the follow-up or
    the next grade read), as a single score write does."""
    await repository.mark_stale(session, course_id, enrollment_ids)


async def refresh_stale(session: AsyncSession, course_id: int, limit: int = CHUNK) -> int:
    """Refresh up to `limit` stale learners of the course in the caller's transaction; how many."""
    ids = await repository.take_stale(session, course_id, limit)
    await refresh_learners(session, course_id, ids)
    return len(ids)


async def bring_current(session: AsyncSession, course_id: int) -> int:
    """Refresh every stale learner of the course, committing chunk by chunk; how many."""
    total = 0
    while n := await refresh_stale(session, course_id):
        await session.commit()
        total += n
    return total


# --- reads ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GradeFigures:
    """One version (current or final) of a stored course grade."""

    percent: Decimal | None
    grade: str | None
    passed: bool | None


@dataclass(frozen=True, slots=True)
class CourseGrade:
    """A learner's stored course grade as the API shows it."""

    learner: str
    policy_version: int
    current: GradeFigures
    final: GradeFigures
    computed_at: datetime
    publication: published.PublicationState


@dataclass(frozen=True, slots=True)
class ExplainedCourseGrade(CourseGrade):
    """A stored course grade with its explanation."""

    explanation: Explained


def _grade_view(row: StoredGrade) -> CourseGrade:
    return CourseGrade(
        learner=row.learner,
        policy_version=row.policy_version,
        current=GradeFigures(row.current_percent, row.current_grade, row.current_passed),
        final=GradeFigures(row.final_percent, row.final_grade, row.final_passed),
        computed_at=row.computed_at,
        publication=published.state(row.published_at, row.changed_since_published),
    )


async def list_grades(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[CourseGrade]:
    """Stored grades of the served version, in enrollment order."""
    await bring_current(session, ref.id)
    rows = await repository.served_grades_page(session, ref.id, last_id_after(cursor), limit + 1)
    page = page_of(rows, limit, lambda r: r[0])
    return Page([_grade_view(r) for _, r in page.items], page.next_cursor)


async def learner_grade(session: AsyncSession, ref: CourseRef, learner: str) -> ExplainedCourseGrade:
    await bring_current(session, ref.id)
    row = await repository.served_grade(session, ref.id, learner)
    if row is None:
        raise NotFound(f"No stored grade for learner {learner!r} (not enrolled, or the course has no policy yet).")
    grade = _grade_view(row.grade)
    return ExplainedCourseGrade(
        **{f.name: getattr(grade, f.name) for f in fields(grade)},
        explanation=explained(row.explanation, row.rules, row.grade.policy_version),
    )
