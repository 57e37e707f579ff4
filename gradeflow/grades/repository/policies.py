"""SQL of grading policies: stored versions, the course's assessments as their catalogue, and the
recompute records that follow a change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import clock
from gradeflow.core.statuses import RecomputeStatus

# The course's assessments' stamp: their count and last change (a catalogue cache key).
_STAMP = "(SELECT count(*) || '@' || coalesce(max(updated_at)::text, '') FROM assessments WHERE course_id = :c)"


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    external_id: str
    category: str
    points_possible: float
    title: str


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    policy: dict[str, Any]  # the stored body: the PolicyRules as JSON
    fingerprint: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    version: PolicyVersion
    grades_version: int | None


@dataclass(frozen=True, slots=True)
class Recompute:
    id: int
    policy_version: int
    status: RecomputeStatus
    progress: int
    message: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class GradingState:
    """A course's active policy version, the version whose grades are served, and its catalogue stamp."""

    policy_version: int | None
    grades_version: int | None
    stamp: str


async def catalogue_stamp(session: AsyncSession, course_id: int) -> str | None:
    stamp: str | None = await session.scalar(text(f"SELECT {_STAMP}"), {"c": course_id})
    return stamp


async def grading_state(session: AsyncSession, course_id: int) -> GradingState | None:
    """None: the course is gone."""
    row = (
        await session.execute(
            text(f"SELECT policy_version, grades_version, {_STAMP} FROM courses WHERE id = :c"),  # noqa: S608
            {"c": course_id},
        )
    ).first()
    return None if row is None else GradingState(row[0], row[1], row[2] or "")


async def policy_body(session: AsyncSession, course_id: int, version: int) -> dict[str, Any] | None:
    body: dict[str, Any] | None = await session.scalar(
        text("SELECT body FROM grading_policies WHERE course_id = :c AND version = :v"), {"c": course_id, "v": version}
    )
    return body


async def catalogue(session: AsyncSession, course_id: int) -> list[CatalogueRow]:
    """The course's assessments in course order."""
    rows = await session.execute(
        text(
            "SELECT external_id, category, points_possible, title FROM assessments"
            " WHERE course_id = :c ORDER BY position, id"
        ),
        {"c": course_id},
    )
    return [CatalogueRow(r[0], r[1], float(r[2]), r[3]) for r in rows]


async def active_policy(session: AsyncSession, course_id: int) -> ActivePolicy | None:
    row = (
        await session.execute(
            text(
                """
                SELECT p.version, p.body, p.fingerprint, p.created_by, p.created_at, c.grades_version
                FROM courses c JOIN grading_policies p ON p.course_id = c.id AND p.version = c.policy_version
                WHERE c.id = :c
                """
            ),
            {"c": course_id},
        )
    ).first()
    return None if row is None else ActivePolicy(PolicyVersion(*row[:5]), row[5])


async def latest_recompute(session: AsyncSession, course_id: int) -> Recompute | None:
    row = (
        await session.execute(
            text(
                """
                SELECT id, policy_version, status, progress, message, error, created_at, started_at, finished_at
                FROM grade_recomputes WHERE course_id = :c ORDER BY id DESC LIMIT 1
                """
            ),
            {"c": course_id},
        )
    ).first()
    return None if row is None else Recompute(*row)


async def lock_policy_version(session: AsyncSession, course_id: int) -> int | None:
    """The course's active policy version, its row locked against a concurrent change."""
    version: int | None = await session.scalar(
        text("SELECT policy_version FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": course_id}
    )
    return version


async def policy_version(session: AsyncSession, course_id: int) -> int | None:
    version: int | None = await session.scalar(
        text("SELECT policy_version FROM courses WHERE id = :c"), {"c": course_id}
    )
    return version


async def grades_version(session: AsyncSession, course_id: int) -> int | None:
    version: int | None = await session.scalar(
        text("SELECT grades_version FROM courses WHERE id = :c"), {"c": course_id}
    )
    return version


async def add_version(
    session: AsyncSession, course_id: int, version: int, body: str, fingerprint: str, actor: str
) -> None:
    """Store policy `version` (body as JSON text) and make it the course's active one."""
    await session.execute(
        text(
            """
            INSERT INTO grading_policies (course_id, version, body, fingerprint, created_by)
            VALUES (:c, :v, CAST(:body AS jsonb), :fp, :by)
            """
        ),
        {"c": course_id, "v": version, "body": body, "fp": fingerprint, "by": actor},
    )
    await session.execute(text("UPDATE courses SET policy_version = :v WHERE id = :c"), {"c": course_id, "v": version})


async def versions_page(session: AsyncSession, course_id: int, before: int | None, limit: int) -> list[PolicyVersion]:
    """Up to `limit` versions older than `before` (all when None), newest first."""
    rows = await session.execute(
        text(
            """
            SELECT version, body, fingerprint, created_by, created_at FROM grading_policies
            WHERE course_id = :c AND (CAST(:before AS int) IS NULL OR version < :before)
            ORDER BY version DESC LIMIT :lim
            """
        ),
        {"c": course_id, "before": before, "lim": limit},
    )
    return [PolicyVersion(*r) for r in rows]


async def queue_recompute(session: AsyncSession, course_id: int, version: int) -> int:
    recompute_id: int = await session.scalar(
        text("INSERT INTO grade_recomputes (course_id, policy_version) VALUES (:c, :v) RETURNING id"),
        {"c": course_id, "v": version},
    )
    return recompute_id


async def claim_recompute(session: AsyncSession, recompute_id: int) -> tuple[int, int] | None:
    """Mark a queued recompute running: (course, policy version), or None when it is not queued."""
    row = (
        await session.execute(
            text(
                """
                UPDATE grade_recomputes SET status = 'running', started_at = :now, message = 'starting'
                WHERE id = :id AND status = 'queued' RETURNING course_id, policy_version
                """
            ),
            {"id": recompute_id, "now": clock.now()},
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def learner_count(session: AsyncSession, course_id: int) -> int:
    count: int = await session.scalar(text("SELECT count(*) FROM enrollments WHERE course_id = :c"), {"c": course_id})
    return count


async def share_learners_after(session: AsyncSession, course_id: int, after: int, n: int) -> list[int]:
    """The next `n` learner ids after `after`, locked FOR SHARE: a score write for one of these
    learners either commits first or waits."""
    ids = await session.scalars(
        text(
            """
            SELECT id FROM enrollments WHERE course_id = :c AND id > :after
            ORDER BY id LIMIT :n FOR SHARE
            """
        ),
        {"c": course_id, "after": after, "n": n},
    )
    return list(ids.all())


async def recompute_progress(session: AsyncSession, recompute_id: int, progress: int, message: str) -> None:
    await session.execute(
        text("UPDATE grade_recomputes SET progress = :p, message = :m WHERE id = :id"),
        {"id": recompute_id, "p": progress, "m": message},
    )


async def drop_grades_of_version(session: AsyncSession, course_id: int, version: int) -> None:
    await session.execute(
        text("DELETE FROM course_grades WHERE course_id = :c AND policy_version = :v"),
        {"c": course_id, "v": version},
    )


async def serve_version(session: AsyncSession, course_id: int, version: int) -> None:
    """Serve `version`'s grades and drop every other version's."""
    await session.execute(text("UPDATE courses SET grades_version = :v WHERE id = :c"), {"c": course_id, "v": version})
    await session.execute(
        text("DELETE FROM course_grades WHERE course_id = :c AND policy_version <> :v"),
        {"c": course_id, "v": version},
    )


async def finish_recompute(
    session: AsyncSession, recompute_id: int, status: RecomputeStatus, message: str | None, error: str | None
) -> None:
    await session.execute(
        text(
            """
            UPDATE grade_recomputes SET status = CAST(:s AS text),
              progress = CASE WHEN CAST(:s AS text) = 'succeeded' THEN 100 ELSE progress END,
              message = coalesce(CAST(:m AS text), message), error = :e, finished_at = :now WHERE id = :id
            """
        ),
        {"id": recompute_id, "s": status, "m": message, "e": error, "now": clock.now()},
    )


@dataclass(frozen=True, slots=True)
class ServedGrade:
    enrollment_id: int
    learner: str
    final_grade: str | None
    final_percent: float | None


async def served_final_grades(session: AsyncSession, course_id: int) -> list[ServedGrade]:
    """Every learner's served final grade (None without one), in enrollment order."""
    rows = await session.execute(
        text(
            """
            SELECT e.id, e.external_id, g.final_grade, g.final_percent FROM enrollments e
            JOIN courses c ON c.id = e.course_id
            LEFT JOIN course_grades g ON g.enrollment_id = e.id AND g.policy_version = c.grades_version
            WHERE e.course_id = :c ORDER BY e.id
            """
        ),
        {"c": course_id},
    )
    return [ServedGrade(r[0], r[1], r[2], None if r[3] is None else float(r[3])) for r in rows]
