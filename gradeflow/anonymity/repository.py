"""Anonymous marking's SQL: which assessments hide identities, candidate numbers, and lifting anonymity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# SQL condition: assessment `a` hides identities from concealed callers.
HIDDEN = "(a.anonymous AND a.anonymity_lifted_at IS NULL)"


async def hidden_assessments(session: AsyncSession, course_id: int) -> frozenset[str]:
    """The course's assessments that hide identities now (external ids)."""
    rows = await session.execute(
        text(f"SELECT a.external_id FROM assessments a WHERE a.course_id = :c AND {HIDDEN}"),  # noqa: S608
        {"c": course_id},
    )
    return frozenset(str(r[0]) for r in rows)


# Numbers for learners with an attempt and none yet: each drawn at random from 1001 up to ten times the
# assessment's attempts (at least 9,999), so a number says nothing of enrollment order, ids, or when the
# learner started (a late starter's number falls among the others', not above them). A number another
# candidate holds (or drew in the same statement) is skipped: the caller draws again for those.
_ASSIGN = text(
    f"""
    WITH missing AS (
      SELECT t.assessment_id, t.enrollment_id FROM attempts t JOIN assessments a ON a.id = t.assessment_id
      WHERE a.course_id = :c AND {HIDDEN} AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(CAST(:ids AS bigint[])))
        AND NOT EXISTS (SELECT 1 FROM candidate_numbers n
                        WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id)
    ),
    sizes AS (
      SELECT t.assessment_id, greatest(8999, 10 * count(*)) AS size FROM attempts t
      WHERE t.assessment_id IN (SELECT assessment_id FROM missing) GROUP BY t.assessment_id
    )
    INSERT INTO candidate_numbers (assessment_id, enrollment_id, number)
    SELECT m.assessment_id, m.enrollment_id, 1001 + floor(random() * s.size)::int
    FROM missing m JOIN sizes s ON s.assessment_id = m.assessment_id
    ON CONFLICT DO NOTHING
    """  # noqa: S608  (constant SQL)
)

_ANY_MISSING = text(
    f"""
    SELECT EXISTS (
      SELECT 1 FROM attempts t JOIN assessments a ON a.id = t.assessment_id
      WHERE a.course_id = :c AND {HIDDEN} AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(CAST(:ids AS bigint[])))
        AND NOT EXISTS (SELECT 1 FROM candidate_numbers n
                        WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id))
    """  # noqa: S608  (constant SQL)
)


async def unnumbered_exist(session: AsyncSession, course_id: int, assessment_ids: list[int] | None) -> bool:
    """Whether a learner with an attempt at the course's hidden assessments (or these) has no number yet."""
    return bool(await session.scalar(_ANY_MISSING, {"c": course_id, "ids": assessment_ids}))


async def lock_numbering(session: AsyncSession, course_id: int) -> None:
    """One numbering of the course at a time, until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('candidate_numbers', :c))"), {"c": course_id}
    )


async def draw_numbers(session: AsyncSession, course_id: int, assessment_ids: list[int] | None) -> None:
    """One round of drawing numbers for those without one (a drawn number already taken is skipped)."""
    await session.execute(_ASSIGN, {"c": course_id, "ids": assessment_ids})


@dataclass(frozen=True, slots=True)
class Anonymity:
    """An assessment of the course as anonymity sees it."""

    id: int
    hidden: bool
    allowed_attempts: int


async def anonymity_of(session: AsyncSession, course_id: int, assessment: str) -> Anonymity | None:
    row = (
        await session.execute(
            text(
                f"SELECT a.id, {HIDDEN}, a.allowed_attempts FROM assessments a"  # noqa: S608
                " WHERE a.course_id = :c AND a.external_id = :a"
            ),
            {"c": course_id, "a": assessment},
        )
    ).first()
    return None if row is None else Anonymity(int(row[0]), bool(row[1]), int(row[2]))


async def numbers_of(session: AsyncSession, assessment_id: int) -> dict[str, int]:
    """The assessment's candidate numbers: learner external id -> number."""
    rows = await session.execute(
        text(
            """
            SELECT e.external_id, n.number FROM candidate_numbers n JOIN enrollments e ON e.id = n.enrollment_id
            WHERE n.assessment_id = :a
            """
        ),
        {"a": assessment_id},
    )
    return {str(ext): int(number) for ext, number in rows}


async def learner_numbered(session: AsyncSession, assessment_id: int, number: int) -> str | None:
    """The learner (external id) holding this candidate number at the assessment."""
    ext = await session.scalar(
        text(
            """
            SELECT e.external_id FROM candidate_numbers n JOIN enrollments e ON e.id = n.enrollment_id
            WHERE n.assessment_id = :a AND n.number = :n
            """
        ),
        {"a": assessment_id, "n": number},
    )
    return None if ext is None else str(ext)


@dataclass(frozen=True, slots=True)
class LiftState:
    """An assessment's anonymity: asked for, and lifted when and by whom."""

    id: int
    assessment: str  # external id
    anonymous: bool
    anonymity_lifted_at: datetime | None
    anonymity_lifted_by: str | None


async def lock_lift_state(session: AsyncSession, course_id: int, assessment: str) -> LiftState | None:
    """The assessment's anonymity, its row locked until the transaction ends."""
    row = (
        await session.execute(
            text(
                """
                SELECT id, external_id, anonymous, anonymity_lifted_at, anonymity_lifted_by FROM assessments
                WHERE course_id = :c AND external_id = :a FOR UPDATE
                """
            ),
            {"c": course_id, "a": assessment},
        )
    ).first()
    return None if row is None else LiftState(int(row.id), str(row.external_id), bool(row.anonymous), row[3], row[4])


async def lift(session: AsyncSession, assessment_id: int, at: datetime, by: str) -> None:
    await session.execute(
        text("UPDATE assessments SET anonymity_lifted_at = :now, anonymity_lifted_by = :by WHERE id = :id"),
        {"now": at, "by": by, "id": assessment_id},
    )
