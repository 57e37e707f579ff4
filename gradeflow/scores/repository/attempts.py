"""Attempts' SQL: the attempt as its status moves read it, the moves, the excused flag, and the reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository.access import IN_SCOPE
from gradeflow.core.statuses import AttemptStatus, LateStatus
from gradeflow.deadlines.repository import due_dates


@dataclass(frozen=True, slots=True)
class CurrentAttempt:
    """An attempt as a move reads it (locked): the status it counts as, its entered score, its number and
    how many attempts the learner is allowed."""

    id: int
    status: str
    entered: Decimal | None
    attempt_number: int
    allowed: int


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: int
    learner: str
    assessment: str
    status: AttemptStatus
    earned: Decimal | None
    possible: Decimal | None
    entered: Decimal | None
    points_deducted: Decimal | None
    late_status: LateStatus | None
    excused: bool
    started_at: datetime | None
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempt_number: int
    allowed_attempts: int
    number: int | None  # the candidate number (anonymous assessments, once numbered)


_SELECT = f"""
    SELECT t.id, e.external_id AS learner, a.external_id AS assessment, t.status, t.earned, t.possible,
           t.entered, t.points_deducted, t.late_status, t.excused, t.started_at, t.submitted_at, t.created_at,
           t.updated_at,
           t.attempt_number, {due_dates.allowed_attempts()} AS allowed_attempts,
           (SELECT n.number FROM candidate_numbers n
            WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id) AS number
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
    {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
"""  # noqa: S608 (constant SQL)


# The attempt's candidate number (anonymous assessments: what a concealed caller's lists are ordered by).
_NUMBER = (
    "(SELECT n.number FROM candidate_numbers n"
    " WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id)"
)

# Work the late policy marked missing is graded by the policy, not handed in: the learner may still hand it in
# (late), so its status for the moves is the one it had (started or not).
_CURRENT = text(
    f"""
    SELECT t.id,
           CASE WHEN t.late_status = 'missing' AND t.entered IS NULL
                THEN CASE WHEN t.started_at IS NULL THEN 'to_be_taken' ELSE 'in_progress' END
                ELSE t.status END AS status,
           t.entered, t.attempt_number, {due_dates.allowed_attempts()} AS allowed
    FROM attempts t JOIN assessments a ON a.id = t.assessment_id
    {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
    WHERE t.assessment_id = :a AND t.enrollment_id = :e FOR UPDATE OF t
    """  # noqa: S608 (constant SQL)
)

_MOVE = text(
    """
    INSERT INTO attempts (assessment_id, enrollment_id, status, started_at, submitted_at)
    VALUES (:a, :e, :status, :started,
            coalesce(CAST(:submitted AS timestamptz), CAST(:stamp AS timestamptz)))
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
      status = excluded.status,
      started_at = coalesce(excluded.started_at, attempts.started_at),
      submitted_at = coalesce(CAST(:submitted AS timestamptz), attempts.submitted_at,
                              CAST(:stamp AS timestamptz)),
      -- a confirmed missing result was the policy's, not this work's: handing in (or any move) reopens it
      confirmed_at = CASE WHEN :moved AND attempts.late_status = 'missing' AND attempts.entered IS NULL
                          THEN NULL ELSE attempts.confirmed_at END,
      confirmed_by = CASE WHEN :moved AND attempts.late_status = 'missing' AND attempts.entered IS NULL
                          THEN NULL ELSE attempts.confirmed_by END,
      updated_at = now()
    RETURNING id
    """
)

_START_AGAIN = text(
    """
    UPDATE attempts SET status = 'in_progress', attempt_number = attempt_number + 1, started_at = :started,
      submitted_at = NULL, confirmed_at = NULL, confirmed_by = NULL, updated_at = now()
    WHERE id = :id
    """
)

_EXCUSED = text("SELECT excused FROM attempts WHERE assessment_id = :a AND enrollment_id = :e FOR UPDATE")

_SET_EXCUSED = text(
    """
    INSERT INTO attempts (assessment_id, enrollment_id, status, excused) VALUES (:a, :e, 'to_be_taken', :x)
    ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET excused = excluded.excused, updated_at = now()
    RETURNING id
    """
)


async def lock_current(session: AsyncSession, assessment_id: int, enrollment_id: int) -> CurrentAttempt | None:
    """The learner's attempt at the assessment, locked for a move (None: no attempt yet)."""
    row = (await session.execute(_CURRENT, {"a": assessment_id, "e": enrollment_id})).mappings().first()
    return None if row is None else CurrentAttempt(**row)


async def move(
    session: AsyncSession,
    assessment_id: int,
    enrollment_id: int,
    status: str,
    started_at: datetime | None,
    submitted_at: datetime | None,
    stamp: datetime | None,
    moved: bool,
) -> int:
    """Create the attempt in `status` or move it there (`submitted_at`, else `stamp`, is its submission time
    when it has none; `moved`: the status changes, which reopens a confirmed missing result); its id."""
    attempt_id = await session.scalar(
        _MOVE,
        {
            "a": assessment_id,
            "e": enrollment_id,
            "status": status,
            "started": started_at,
            "submitted": submitted_at,
            "stamp": stamp,
            "moved": moved,
        },
    )
    return int(attempt_id)


async def start_again(session: AsyncSession, attempt_id: int, started_at: datetime) -> None:
    """The attempt becomes the learner's next one: in progress, the next number, nothing handed in or confirmed."""
    await session.execute(_START_AGAIN, {"id": attempt_id, "started": started_at})


async def lock_excused(session: AsyncSession, assessment_id: int, enrollment_id: int) -> bool | None:
    """Whether the learner's attempt is excused, locked (None: no attempt)."""
    was = await session.scalar(_EXCUSED, {"a": assessment_id, "e": enrollment_id})
    return None if was is None else bool(was)


async def set_excused(session: AsyncSession, assessment_id: int, enrollment_id: int, excused: bool) -> int:
    """Set the excused flag (creating an attempt to be taken to carry it); the attempt's id."""
    attempt_id = await session.scalar(_SET_EXCUSED, {"a": assessment_id, "e": enrollment_id, "x": excused})
    return int(attempt_id)


def _row(row: Mapping[Any, Any]) -> AttemptRow:
    return AttemptRow(**row)


async def attempt_of(
    session: AsyncSession, course_id: int, assessment: str, learner: str, scope: list[str] | None
) -> AttemptRow | None:
    """The learner's attempt at the assessment (external ids), within `scope` (a grader's names; None: all)."""
    row = (
        (
            await session.execute(
                text(_SELECT + " WHERE a.course_id = :c AND a.external_id = :a AND e.external_id = :e AND " + IN_SCOPE),
                {"c": course_id, "a": assessment, "e": learner, "scope": scope},
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _row(row)


async def attempts_at(
    session: AsyncSession,
    assessment_id: int,
    after: int,
    limit: int,
    status: str | None,
    scope: list[str] | None,
    by_number: bool,
) -> list[AttemptRow]:
    """A page of the assessment's attempts after `after` (in `status` when given, within `scope`), by attempt
    id or by candidate number."""
    key = _NUMBER if by_number else "t.id"
    rows = (
        await session.execute(
            text(
                _SELECT
                + f" WHERE t.assessment_id = :a AND {key} > :after AND "
                + IN_SCOPE
                + (" AND t.status = :status" if status else "")
                + f" ORDER BY {key} LIMIT :lim"
            ),
            {"a": assessment_id, "after": after, "lim": limit, "status": status, "scope": scope},
        )
    ).mappings()
    return [_row(r) for r in rows]
