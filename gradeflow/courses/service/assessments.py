"""Assessments and their items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.core.paging import Page, decode_cursor, page_of
from gradeflow.courses.commands import AssessmentCreate, AssessmentFields, ItemIn, SkillIn
from gradeflow.courses.repository import assessments as repository
from gradeflow.db.models import Assessment, Item
from gradeflow.deadlines.service import late_policies
from gradeflow.grades.service import policies


class ItemRecord(TypedDict):
    """What the audit trail keeps of an item."""

    external_id: str
    number: str | None
    title: str | None
    points_possible: float
    marking: str
    revision: int
    skills: Sequence[Mapping[str, object]]


class AssessmentRecord(TypedDict):
    """What the audit trail keeps of an assessment: every field that shapes its results."""

    title: str
    category: str
    points_possible: float
    position: int
    due_at: str | None
    marking: Mapping[str, object] | None
    release: Mapping[str, object] | None
    initial_assessment: str | None
    allowed_attempts: int
    anonymous: bool
    moderation_required: bool
    items: list[ItemRecord]


@dataclass
class AssessmentView:
    assessment: Assessment
    items: list[Item]
    initial_assessment: str | None = None  # the initial test's external id, for a final test

    def record(self) -> AssessmentRecord:
        """The assessment's `AssessmentRecord`."""
        a = self.assessment
        return {
            "title": a.title,
            "category": a.category,
            "points_possible": _number(a.points_possible),
            "position": a.position,
            "due_at": a.due_at.isoformat() if a.due_at else None,
            "marking": a.marking,
            "release": a.release,
            "initial_assessment": self.initial_assessment,
            "allowed_attempts": a.allowed_attempts,
            "anonymous": a.anonymous,
            "moderation_required": a.moderation_required,
            "items": [
                {
                    "external_id": i.external_id,
                    "number": i.number,
                    "title": i.title,
                    "points_possible": _number(i.points_possible),
                    "marking": i.marking,
                    "revision": i.revision,
                    "skills": i.skills,
                }
                for i in self.items
            ],
        }


def _number(points: Decimal) -> int | float:
    return int(points) if points == points.to_integral_value() else float(points)


async def create_assessment(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: AssessmentCreate, actor: str
) -> AssessmentView:
    """Create an assessment with its items; without a position it goes last in the course.

    The course's grades are recomputed (the new assessment counts, as not graded yet)."""
    if await repository.assessment_id(session, ref.id, body.external_id) is not None:
        raise Conflict(f"Assessment {body.external_id!r} already exists in this course.")
    position = body.position
    if position is None:
        last = await repository.last_position(session, ref.id)
        position = 0 if last is None else last + 1
    assessment = Assessment(
        course_id=ref.id,
        external_id=body.external_id,
        title=body.title,
        category=body.category,
        points_possible=body.points_possible or Decimal(0),
        position=position,
        due_at=body.due_at,
        marking=body.marking.model_dump(mode="json") if body.marking else None,
        release=body.release.model_dump(mode="json") if body.release else None,
        allowed_attempts=body.allowed_attempts or 1,
        anonymous=bool(body.anonymous),
        moderation_required=bool(body.moderation_required),
    )
    await repository.add_assessment(session, assessment)
    initial = await _link_initial(session, ref, assessment, body.initial_assessment)
    items = _merge_items(assessment, [], body.items or [])
    _check_release(assessment, items)
    repository.add_items(session, items)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "assessment.created",
        assessment=body.external_id,
        new=AssessmentView(assessment, items, initial).record(),
    )
    await session.commit()
    await policies.recompute_after_change(session, queue, ref.id)
    return AssessmentView(assessment, items, initial)


async def update_assessment(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, external_id: str, body: AssessmentFields, actor: str
) -> AssessmentView:
    """Change an assessment; `items` are upserted by external id (items not named are kept).

    An item's revision increases whenever its points or its marking change.
    """
    view = await get_assessment(session, ref, external_id)
    before = view.record()
    a = view.assessment
    changes = body.model_dump(exclude_unset=True, exclude={"items", "initial_assessment"})
    if "initial_assessment" in body.model_fields_set:
        view.initial_assessment = await _link_initial(session, ref, a, body.initial_assessment)
    for field in ("marking", "release"):
        if field in changes:
            value = getattr(body, field)
            changes[field] = value.model_dump(mode="json") if value else None
    if "points_possible" in changes and (view.items or body.items):
        raise ValidationFailed.one("/points_possible", "An assessment with items takes its points from them.")
    for field, value in changes.items():
        if value is None and field not in ("due_at", "marking", "release"):
            continue
        setattr(a, field, value)
    if body.items:
        new = _merge_items(a, view.items, body.items)
        repository.add_items(session, new)
        view.items.extend(new)
        a.points_possible = sum((i.points_possible for i in view.items), Decimal(0))
    _check_release(a, view.items)
    after = view.record()
    was: dict[str, object] = dict(before)
    now: dict[str, object] = dict(after)
    changed = [k for k in now if now[k] != was[k]]
    if changed:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "assessment.updated",
            assessment=external_id,
            old={k: was[k] for k in changed},
            new={k: now[k] for k in changed},
        )
    # A new due date or points possible changes who is late or missing and by how much: every learner's result,
    # applied by the worker (late_policies.request_application).
    late = None
    if {"due_at", "points_possible"} & set(changed):
        late = await late_policies.request_application(session, ref.id, [a.id])
    await session.commit()
    await policies.recompute_after_change(session, queue, ref.id)
    if late is not None:
        await late_policies.enqueue_application(queue, ref.id, late)
    return await get_assessment(session, ref, external_id)


async def _link_initial(session: AsyncSession, ref: CourseRef, final: Assessment, initial: str | None) -> str | None:
    """Point the final test at its initial test (None unlinks); return the initial test's external id.

    A test cannot be its own initial test, nor close a loop (A after B after A): progression reports
    follow the link one step, and a loop would make "before" and "after" meaningless."""
    if initial is None:
        final.initial_assessment_id = None
        return None
    if initial == final.external_id:
        raise ValidationFailed.one("/initial_assessment", "An assessment cannot be its own initial assessment.")
    target = await repository.assessment_id(session, ref.id, initial)
    if target is None:
        raise ValidationFailed.one("/initial_assessment", f"The course has no assessment {initial!r}.")
    if await repository.leads_to(session, target, final.id):
        raise ValidationFailed.one(
            "/initial_assessment", f"{initial!r} is already compared after {final.external_id!r}: that would be a loop."
        )
    final.initial_assessment_id = target
    return initial


async def _initial_ids(session: AsyncSession, assessments: list[Assessment]) -> dict[int, str]:
    """The external ids of the initial tests these assessments name, by id (one query)."""
    ids = {a.initial_assessment_id for a in assessments if a.initial_assessment_id is not None}
    if not ids:
        return {}
    return await repository.external_ids(session, ids)


def _check_release(assessment: Assessment, items: list[Item]) -> None:
    if (assessment.release or {}).get("mode") == "automatic" and any(i.marking == "manual" for i in items):
        raise ValidationFailed.one(
            "/release/mode", "Automatic release is for fully auto-scored assessments; this one has manual items."
        )


def _merge_items(assessment: Assessment, existing: list[Item], incoming: list[ItemIn]) -> list[Item]:
    """Apply `incoming` to `existing` in place; return the items to add."""
    by_ext = {i.external_id: i for i in existing}
    next_position = max((i.position for i in existing), default=-1) + 1
    added: list[Item] = []
    for spec in incoming:
        item = by_ext.get(spec.external_id)
        if item is None:
            added.append(
                Item(
                    assessment_id=assessment.id,
                    external_id=spec.external_id,
                    number=spec.number,
                    title=spec.title,
                    points_possible=spec.points_possible,
                    marking=spec.marking,
                    skills=_skills(spec.skills or []),
                    position=next_position,
                    revision=1,
                )
            )
            next_position += 1
            continue
        if item.points_possible != spec.points_possible or item.marking != spec.marking:
            item.revision += 1
        item.number, item.title = spec.number, spec.title
        item.points_possible, item.marking = spec.points_possible, spec.marking
        if spec.skills is not None:  # omitted: an LMS that knows nothing of skills keeps them
            item.skills = _skills(spec.skills)
    if added and not existing:
        assessment.points_possible = sum((i.points_possible for i in added), Decimal(0))
    return added


def _skills(skills: list[SkillIn]) -> list[dict[str, str | float]]:
    """As stored (`[{"skill": name, "weight": w}]`): weights as JSON numbers, so the skills file's SQL weighs
    points by them."""
    return [{"skill": s.skill, "weight": _number(s.weight)} for s in skills]


async def get_assessment(session: AsyncSession, ref: CourseRef, external_id: str) -> AssessmentView:
    a = await repository.assessment(session, ref.id, external_id)
    if a is None:
        raise NotFound(f"Assessment {external_id!r} not found in this course.")
    items = await repository.items_of(session, a.id)
    initial = (await _initial_ids(session, [a])).get(a.initial_assessment_id or 0)
    return AssessmentView(a, items, initial)


async def list_assessments(
    session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None
) -> Page[AssessmentView]:
    """Assessments in course order (position, then creation)."""
    after = _decode_position_cursor(cursor)
    rows = await repository.assessments_page(session, ref.id, after, limit + 1)
    ids = [a.id for a in rows]
    items: dict[int, list[Item]] = {i: [] for i in ids}
    for item in await repository.items_of_many(session, ids):
        items[item.assessment_id].append(item)
    initial = await _initial_ids(session, rows)
    views = [AssessmentView(a, items[a.id], initial.get(a.initial_assessment_id or 0)) for a in rows]
    return page_of(views, limit, lambda v: [v.assessment.position, v.assessment.id])


def _decode_position_cursor(cursor: str | None) -> tuple[int, int] | None:
    key = decode_cursor(cursor)
    if key is None:
        return None
    if not (isinstance(key, list) and len(key) == 2 and all(type(k) is int for k in key)):
        raise ValidationFailed.one("cursor", "Not a cursor this API issued.", "query")
    return key[0], key[1]
