"""Stored course grades (never recomputed on read)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.core.commands import ExternalId
from gradeflow.grades.schemas import CourseGradeExplained, CourseGradeOut
from gradeflow.grades.service import grades
from gradeflow.http.deps import Cursor, GradeRead, Limit, SessionDep
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}", tags=["grades"])


@router.get("/grades")
async def list_grades(
    session: SessionDep, ref: GradeRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[CourseGradeOut]:
    """Every learner's stored course grade (current and final), under the served policy version."""
    page = await grades.list_grades(session, ref, limit, cursor)
    return PageOut(items=[CourseGradeOut.model_validate(g) for g in page.items], next_cursor=page.next_cursor)


@router.get("/learners/{learner}/grade")
async def learner_grade(session: SessionDep, ref: GradeRead, learner: ExternalId) -> CourseGradeExplained:
    """One learner's stored grade with its explanation: per category the counted and dropped
    assessments, placeholders, the weights actually applied, and the policy version."""
    return CourseGradeExplained.model_validate(await grades.learner_grade(session, ref, learner))
