"""AGS results: what Gradeflow holds as each learner's result at a line item's assessment.

The result is the final one (after overrides and the late policy; none until graded and, where the
assessment has manually marked items, confirmed; none when excused), out of the assessment's points, with
the feedback on the attempt as its comment.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.lti.repository import ags as repository
from gradeflow.lti.repository.ags import LineItemRow, ResultRow
from gradeflow.lti.service import line_items

__all__ = ["ResultRow", "page"]


async def page(
    session: AsyncSession, ref: CourseRef, tool_id: int, line_item_id: int, learner: str | None, after: int, limit: int
) -> tuple[LineItemRow, list[ResultRow], int | None]:
    """The line item and a page of its results (one learner's with `learner`) after attempt `after`, with the
    next page's start."""
    line_item = await line_items.get(session, ref, tool_id, line_item_id)
    rows = await repository.results_page(session, line_item.assessment_id, learner, after, limit + 1)
    if len(rows) > limit:
        return line_item, rows[:limit], rows[limit - 1].id
    return line_item, rows, None
