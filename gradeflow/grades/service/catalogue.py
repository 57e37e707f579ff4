"""The policy a course grades with: a stored policy version with the course's assessments as its
catalogue (course order), cached per process."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.errors import NotFound
from gradeflow.grades.repository import policies as repository
from gradeflow.grading.policy import Policy, PolicyRules

# Policy versions never change, and the catalogue is keyed by its stamp (count and last change of the
# course's assessments), so cached entries can never disagree between processes.
_POLICIES: OrderedDict[tuple[int, int, str], Policy] = OrderedDict()


async def course_policy(session: AsyncSession, course_id: int, version: int, stamp: str | None = None) -> Policy:
    """The stored policy `version` with the course's assessments as its catalogue (course order)."""
    if stamp is None:
        stamp = await repository.catalogue_stamp(session, course_id)
    key = (course_id, version, stamp or "")
    if key in _POLICIES:
        _POLICIES.move_to_end(key)
        return _POLICIES[key]
    body = await repository.policy_body(session, course_id, version)
    if body is None:
        raise NotFound(f"Policy version {version} not found.")
    policy = with_catalogue(await catalogue(session, course_id), PolicyRules.model_validate(body), pointer="")
    _POLICIES[key] = policy
    if len(_POLICIES) > 256:
        _POLICIES.popitem(last=False)
    return policy


class Listed(TypedDict):
    """A course's assessment as a policy's catalogue lists it (`Policy` validates it as a `CatalogueEntry`)."""

    id: str
    category: str
    possible: float
    label: str


async def catalogue(session: AsyncSession, course_id: int) -> list[Listed]:
    """The course's assessments as a policy's catalogue entries."""
    return [
        {"id": a.external_id, "category": a.category, "possible": a.points_possible, "label": a.title}
        for a in await repository.catalogue(session, course_id)
    ]


def with_catalogue(assessments: list[Listed], rules: PolicyRules, pointer: str) -> Policy:
    return Policy.model_validate({**rules.model_dump(), "assessments": assessments}, context={"pointer": pointer})
