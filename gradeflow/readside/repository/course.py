"""A course as the reports read it: its assessments and items in course order, and the served policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.grading import letters
from gradeflow.grading.policy import Category, PolicyRules


@dataclass(frozen=True, slots=True)
class ItemInfo:
    id: int
    external_id: str
    number: str | None
    title: str | None
    points: float
    marking: str
    revision: int

    @property
    def label(self) -> str:
        return self.title or self.number or self.external_id


@dataclass(frozen=True, slots=True)
class AssessmentInfo:
    id: int
    external_id: str
    title: str
    category: str
    points: float
    items: list[ItemInfo]
    marking: dict[str, Any] | None


@dataclass
class CourseInfo:
    id: int
    external_id: str
    title: str
    assessments: list[AssessmentInfo]
    rules: PolicyRules | None
    served_version: int | None = None  # the policy version whose stored grades are served
    columns: list[tuple[str, AssessmentInfo]] = field(default_factory=list)  # report label, assessment
    labels: dict[str, str] = field(default_factory=dict)  # category -> its name in the Open edX reports

    def assessment(self, external_id: str) -> AssessmentInfo | None:
        return next((a for a in self.assessments if a.external_id == external_id), None)

    def rule(self, category: str) -> Category | None:
        """The served policy's rule for a category (None: the policy does not grade it)."""
        return next((c for c in self.rules.categories if c.name == category), None) if self.rules else None

    def letter(self, fraction: float | None) -> str | None:
        """The policy's letter for a fraction (0.85), if the course has cutoffs."""
        if self.rules is None:
            return None
        return letters.letter(fraction, self.rules.cutoffs, letters.fraction)


async def load_course(session: AsyncSession, course_id: int) -> CourseInfo:
    """The course, its assessments and items in course order, and the policy whose grades are served
    (its report columns are left for the reports to name)."""
    course = (
        await session.execute(
            text(
                """
                SELECT c.external_id, c.title, p.body, c.grades_version FROM courses c
                LEFT JOIN grading_policies p ON p.course_id = c.id AND p.version = c.grades_version
                WHERE c.id = :c
                """
            ),
            {"c": course_id},
        )
    ).one()
    items: dict[int, list[ItemInfo]] = {}
    for r in await session.execute(
        text(
            """
            SELECT i.assessment_id, i.id, i.external_id, i.number, i.title, i.points_possible, i.marking, i.revision
            FROM items i JOIN assessments a ON a.id = i.assessment_id WHERE a.course_id = :c
            ORDER BY i.assessment_id, i.position, i.id
            """
        ),
        {"c": course_id},
    ):
        items.setdefault(r[0], []).append(ItemInfo(r[1], r[2], r[3], r[4], float(r[5]), r[6], r[7]))
    assessments = [
        AssessmentInfo(r[0], r[1], r[2], r[3], float(r[4]), items.get(r[0], []), r[5])
        for r in await session.execute(
            text(
                "SELECT id, external_id, title, category, points_possible, marking FROM assessments"
                " WHERE course_id = :c ORDER BY position, id"
            ),
            {"c": course_id},
        )
    ]
    info = CourseInfo(
        course_id,
        course[0],
        course[1],
        assessments,
        PolicyRules.model_validate(course[2]) if course[2] else None,
        course[3],
    )
    return info
