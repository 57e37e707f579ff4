"""AGS SQL: line items (assessments a tool created or a planner exposed) and the results a tool reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.models import LtiLineItem


@dataclass(frozen=True, slots=True)
class LineItemRow:
    """A line item with what it shows of its assessment (label = title, scoreMaximum = points)."""

    id: int
    assessment_id: int
    assessment: str
    label: str
    points: Decimal
    tool_id: int | None
    resource_id: str | None
    resource_link_id: str | None
    tag: str | None
    start_date_time: datetime | None
    end_date_time: datetime | None
    has_items: bool


@dataclass(frozen=True, slots=True)
class LineItemFilters:
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None


_LINE_ITEMS = """
    SELECT l.id, l.assessment_id, a.external_id AS assessment, a.title AS label, a.points_possible AS points,
           l.tool_id, l.resource_id, l.resource_link_id, l.tag, l.start_date_time, l.end_date_time,
           EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id) AS has_items
    FROM lti_line_items l JOIN assessments a ON a.id = l.assessment_id
    WHERE l.course_id = :course
"""

# A tool sees the line items it created and those a planner exposed (tool_id null); staff (tool null) see all.
_VISIBLE = " AND (CAST(:tool AS bigint) IS NULL OR l.tool_id IS NULL OR l.tool_id = :tool)"

_PAGE = text(
    _LINE_ITEMS
    + _VISIBLE
    + """
      AND l.id > :after
      AND (CAST(:resource_link_id AS text) IS NULL OR l.resource_link_id = :resource_link_id)
      AND (CAST(:resource_id AS text) IS NULL OR l.resource_id = :resource_id)
      AND (CAST(:tag AS text) IS NULL OR l.tag = :tag)
    ORDER BY l.id LIMIT :limit
    """
)

_ONE = text(_LINE_ITEMS + _VISIBLE + " AND l.id = :id")

_BY_ASSESSMENT = text(_LINE_ITEMS + " AND a.external_id = :assessment")


async def line_items_page(
    session: AsyncSession, course_id: int, tool_id: int | None, filters: LineItemFilters, after: int, limit: int
) -> list[LineItemRow]:
    """The course's line items the tool sees (all for staff: tool None) after id `after`, by id."""
    result = await session.execute(
        _PAGE,
        {
            "course": course_id,
            "tool": tool_id,
            "after": after,
            "limit": limit,
            "resource_link_id": filters.resource_link_id,
            "resource_id": filters.resource_id,
            "tag": filters.tag,
        },
    )
    return [LineItemRow(**r) for r in result.mappings()]


async def line_item(
    session: AsyncSession, course_id: int, tool_id: int | None, line_item_id: int
) -> LineItemRow | None:
    """One line item of the course, if the tool sees it."""
    result = await session.execute(_ONE, {"course": course_id, "tool": tool_id, "id": line_item_id})
    row = result.mappings().first()
    return None if row is None else LineItemRow(**row)


async def line_item_of(session: AsyncSession, course_id: int, assessment: str) -> LineItemRow | None:
    """The line item an assessment (by external id) is, if any."""
    row = (await session.execute(_BY_ASSESSMENT, {"course": course_id, "assessment": assessment})).mappings().first()
    return None if row is None else LineItemRow(**row)


@dataclass(frozen=True, slots=True)
class LineItemValues:
    """The tool's own fields of a line item, stored as sent."""

    resource_id: str | None
    resource_link_id: str | None
    tag: str | None
    start_date_time: datetime | None
    end_date_time: datetime | None


async def add_line_item(
    session: AsyncSession, course_id: int, assessment_id: int, tool_id: int | None, values: LineItemValues
) -> int:
    """A new line item for the assessment; its id."""
    row = LtiLineItem(
        course_id=course_id,
        assessment_id=assessment_id,
        tool_id=tool_id,
        resource_id=values.resource_id,
        resource_link_id=values.resource_link_id,
        tag=values.tag,
        start_date_time=values.start_date_time,
        end_date_time=values.end_date_time,
    )
    session.add(row)
    await session.flush()
    return row.id


_UPDATE = text(
    """
    UPDATE lti_line_items SET resource_id = :resource_id, resource_link_id = :resource_link_id, tag = :tag,
      start_date_time = :start_date_time, end_date_time = :end_date_time, updated_at = now()
    WHERE id = :id
    """
)


async def update_line_item(session: AsyncSession, line_item_id: int, values: LineItemValues) -> None:
    await session.execute(
        _UPDATE,
        {
            "id": line_item_id,
            "resource_id": values.resource_id,
            "resource_link_id": values.resource_link_id,
            "tag": values.tag,
            "start_date_time": values.start_date_time,
            "end_date_time": values.end_date_time,
        },
    )


_DELETE = text("DELETE FROM lti_line_items WHERE id = :id")


async def delete_line_item(session: AsyncSession, line_item_id: int) -> None:
    await session.execute(_DELETE, {"id": line_item_id})


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultRow:
    """A learner's result at the assessment as Gradeflow holds it: the final score (after overrides and the
    late policy; None until graded and, where grading needs it, confirmed) and the feedback."""

    id: int
    learner: str
    score: Decimal | None
    possible: Decimal
    comment: str | None


_RESULTS = text(
    """
    SELECT t.id, e.external_id AS learner,
           CASE WHEN t.status = 'graded' AND NOT t.excused
                     AND (t.confirmed_at IS NOT NULL OR NOT EXISTS (
                           SELECT 1 FROM items i WHERE i.assessment_id = t.assessment_id AND i.marking = 'manual'))
                THEN t.earned END AS score,
           a.points_possible AS possible, f.text AS comment
    FROM attempts t
    JOIN assessments a ON a.id = t.assessment_id
    JOIN enrollments e ON e.id = t.enrollment_id
    LEFT JOIN feedback f ON f.attempt_id = t.id AND f.item_id IS NULL
    WHERE t.assessment_id = :a AND t.id > :after
      AND (CAST(:learner AS text) IS NULL OR e.external_id = :learner)
    ORDER BY t.id LIMIT :limit
    """
)


async def results_page(
    session: AsyncSession, assessment_id: int, learner: str | None, after: int, limit: int
) -> list[ResultRow]:
    """The assessment's attempts' results after attempt `after` (one learner's with `learner`), by attempt."""
    result = await session.execute(_RESULTS, {"a": assessment_id, "learner": learner, "after": after, "limit": limit})
    return [ResultRow(**r) for r in result.mappings()]
