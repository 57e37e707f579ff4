"""AGS line items: a line item is an assessment.

A tool creates line items (each a new assessment of the course: its label the title, its scoreMaximum the
points) and sees only those it created, plus the existing assessments a planner exposed to every tool that
may reach the course (as Canvas shows a tool its own line items and those bound to its links). A tool
changes or deletes only its own; exposed ones are the planner's. The tool's own fields (resourceId,
resourceLinkId, tag, startDateTime, endDateTime) are stored as sent and never changed by Gradeflow.

Deleting a line item never loses marks: the line item goes (the tool no longer sees it, its scores posts are
404), the assessment and every score on it stay in the course as an ordinary assessment the planner keeps or
deletes. Un-exposing an assessment is the same for the planner's line items.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gradeflow.courses.commands import AssessmentCreate, AssessmentFields
from gradeflow.courses.service import assessments
from gradeflow.lti.repository import ags as repository
from gradeflow.lti.repository.ags import LineItemFilters, LineItemRow, LineItemValues

__all__ = [
    "CATEGORY",
    "LineItemFilters",
    "LineItemIn",
    "LineItemRow",
    "LineItemValues",
    "create",
    "delete",
    "expose",
    "get",
    "page",
    "unexpose",
    "update",
]

# The category of the assessments tools create (a planner may move them into another).
CATEGORY = "LTI"

_TOOL_FIELDS = ("resource_id", "resource_link_id", "tag", "start_date_time", "end_date_time")


@dataclass(frozen=True)
class LineItemIn:
    """A line item as a tool (or a planner exposing an assessment) sends it. `given`: the tool's own fields
    present in the body (an update leaves the others as they are)."""

    label: str | None = None
    score_maximum: Decimal | None = None
    resource_id: str | None = None
    resource_link_id: str | None = None
    tag: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    given: frozenset[str] = field(default_factory=frozenset)

    def values(self, current: LineItemRow | None = None) -> LineItemValues:
        """The tool's fields: those given, the others as they are (or none)."""
        return LineItemValues(
            **{
                name: getattr(self, name) if name in self.given or current is None else getattr(current, name)
                for name in _TOOL_FIELDS
            }
        )


async def page(
    session: AsyncSession, ref: CourseRef, tool_id: int | None, filters: LineItemFilters, after: int, limit: int
) -> tuple[list[LineItemRow], int | None]:
    """The line items the tool sees (staff, tool None: all), by id after `after`; with the next page's start."""
    rows = await repository.line_items_page(session, ref.id, tool_id, filters, after, limit + 1)
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


async def get(session: AsyncSession, ref: CourseRef, tool_id: int | None, line_item_id: int) -> LineItemRow:
    found = await repository.line_item(session, ref.id, tool_id, line_item_id)
    if found is None:
        raise NotFound("Line item not found in this course.")
    return found


async def create(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, tool_id: int, body: LineItemIn, actor: str
) -> LineItemRow:
    """A new assessment of the course as the tool's line item (audited: the assessment and the line item)."""
    assert body.label is not None and body.score_maximum is not None
    _check_dates(body.values())
    external_id = f"lti-{tool_id}-{secrets.token_hex(6)}"
    command = AssessmentCreate(
        external_id=external_id, title=body.label, category=CATEGORY, points_possible=body.score_maximum
    )
    view = await assessments.create_assessment(session, queue, ref, command, actor)
    values = body.values()
    line_item_id = await repository.add_line_item(session, ref.id, view.assessment.id, tool_id, values)
    await _audit(session, ref, actor, "line_item.created", external_id, None, _record(values, tool_id))
    await session.commit()
    return await get(session, ref, tool_id, line_item_id)


async def update(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    tool_id: int,
    line_item_id: int,
    body: LineItemIn,
    actor: str,
) -> LineItemRow:
    """Change the tool's own line item: label and scoreMaximum change the assessment's title and points (as an
    assessment update: audited, grades recomputed), the tool's fields change as given."""
    current = await _own(session, ref, tool_id, line_item_id)
    values = body.values(current)
    _check_dates(values)
    changes: dict[str, Any] = {}
    if body.label is not None and body.label != current.label:
        changes["title"] = body.label
    if body.score_maximum is not None and body.score_maximum != current.points:
        if current.has_items:
            raise ValidationFailed.one(
                "/scoreMaximum", "The assessment has items: its points are the sum of theirs and cannot be set."
            )
        changes["points_possible"] = body.score_maximum
    old = _record(values_of(current), tool_id)
    if values != values_of(current):
        await repository.update_line_item(session, line_item_id, values)
        await _audit(session, ref, actor, "line_item.updated", current.assessment, old, _record(values, tool_id))
    if changes:
        # Commits the line item's change with the assessment's.
        await assessments.update_assessment(
            session, queue, ref, current.assessment, AssessmentFields.model_validate(changes), actor
        )
    else:
        await session.commit()
    return await get(session, ref, tool_id, line_item_id)


async def delete(session: AsyncSession, ref: CourseRef, tool_id: int, line_item_id: int, actor: str) -> None:
    """Remove the tool's own line item; its assessment and scores stay (see the module)."""
    current = await _own(session, ref, tool_id, line_item_id)
    await repository.delete_line_item(session, line_item_id)
    await _audit(
        session, ref, actor, "line_item.deleted", current.assessment, _record(values_of(current), tool_id), None
    )
    await session.commit()


async def _own(session: AsyncSession, ref: CourseRef, tool_id: int, line_item_id: int) -> LineItemRow:
    current = await get(session, ref, tool_id, line_item_id)
    if current.tool_id is None:
        raise Forbidden("A planner exposed this assessment to tools: only a planner changes or removes it.")
    return current


# --- planners exposing existing assessments ---------------------------------------------------------


async def expose(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str, body: LineItemIn, actor: str
) -> LineItemRow:
    """Make an existing assessment a line item every tool of the course sees (idempotent: again, it updates
    the line item's fields; a label renames the assessment). 409 for a tool's own line item."""
    view = await assessments.get_assessment(session, ref, assessment)
    current = await repository.line_item_of(session, ref.id, assessment)
    if current is not None and current.tool_id is not None:
        raise Conflict(f"Assessment {assessment!r} is a line item a tool created: the tool manages it.")
    values = body.values(current)
    _check_dates(values)
    if current is None:
        await repository.add_line_item(session, ref.id, view.assessment.id, None, values)
        await _audit(session, ref, actor, "line_item.exposed", assessment, None, _record(values, None))
    elif values != values_of(current):
        await repository.update_line_item(session, current.id, values)
        await _audit(
            session,
            ref,
            actor,
            "line_item.updated",
            assessment,
            _record(values_of(current), None),
            _record(values, None),
        )
    if body.label is not None and body.label != view.assessment.title:
        # Commits the line item's change with the assessment's.
        await assessments.update_assessment(session, queue, ref, assessment, AssessmentFields(title=body.label), actor)
    else:
        await session.commit()
    found = await repository.line_item_of(session, ref.id, assessment)
    assert found is not None
    return found


async def unexpose(session: AsyncSession, ref: CourseRef, assessment: str, actor: str) -> None:
    """Tools no longer see the assessment (its scores stay); 404 when it is not exposed, 409 for a tool's own."""
    await assessments.get_assessment(session, ref, assessment)
    current = await repository.line_item_of(session, ref.id, assessment)
    if current is None:
        raise NotFound(f"Assessment {assessment!r} is not exposed to tools.")
    if current.tool_id is not None:
        raise Conflict(f"Assessment {assessment!r} is a line item a tool created: the tool manages it.")
    await repository.delete_line_item(session, current.id)
    await _audit(session, ref, actor, "line_item.unexposed", assessment, _record(values_of(current), None), None)
    await session.commit()


def values_of(row: LineItemRow) -> LineItemValues:
    return LineItemValues(**{name: getattr(row, name) for name in _TOOL_FIELDS})


def _check_dates(values: LineItemValues) -> None:
    if values.start_date_time and values.end_date_time and values.end_date_time < values.start_date_time:
        raise ValidationFailed.one("/endDateTime", "Must not be earlier than startDateTime.")


class _LineItemRecord(TypedDict):
    """What the audit trail keeps of a line item: the tool's fields (times in ISO 8601), and the tool that owns it
    (None: a planner exposed the assessment)."""

    resource_id: str | None
    resource_link_id: str | None
    tag: str | None
    start_date_time: str | None
    end_date_time: str | None
    tool: int | None


def _record(values: LineItemValues, tool_id: int | None) -> _LineItemRecord:
    return {
        "resource_id": values.resource_id,
        "resource_link_id": values.resource_link_id,
        "tag": values.tag,
        "start_date_time": _iso(values.start_date_time),
        "end_date_time": _iso(values.end_date_time),
        "tool": tool_id,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def _audit(
    session: AsyncSession,
    ref: CourseRef,
    actor: str,
    action: str,
    assessment: str,
    old: _LineItemRecord | None,
    new: _LineItemRecord | None,
) -> None:
    await audit.record(session, ref.organization_id, ref.id, actor, action, assessment=assessment, old=old, new=new)
