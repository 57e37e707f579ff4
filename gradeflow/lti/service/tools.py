"""LTI tools an organization registers (admin keys): who they are (client id, keys), what they may do (scopes)
and where (courses: the deployment).

Keys are checked on save: inline keys must be public signing keys with a `kid`; a JWKS URL is fetched and its keys
checked the same way (422 at `/jwks_url` saying why it cannot be used). Every change is on the organization's
audit trail (no course) as lti_tool.created, lti_tool.updated (old and new of the changed fields) and
lti_tool.deleted. A change of scopes or courses, or a deletion, reaches access tokens already issued within a
second (gradeflow/lti/service/tokens.py)."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Required, TypedDict, cast

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import FieldError, NotFound, ValidationFailed
from gradeflow.core.settings import WebhookSettings
from gradeflow.lti.commands import ToolIn, ToolPatch
from gradeflow.lti.keysets import JwkSet
from gradeflow.lti.repository import tools as repository
from gradeflow.lti.repository.tools import Tool
from gradeflow.lti.scopes import ALL_SCOPES
from gradeflow.lti.service import jwks, tokens

_AUDITED = ("name", "jwks_url", "jwks", "scopes", "courses")


class _Audited(TypedDict, total=False):
    """What the audit trail keeps of a tool: who it is, and its fields (of a change, the fields it changed)."""

    tool: Required[int]
    client_id: Required[str]
    name: str
    jwks_url: str | None
    jwks: JwkSet | None
    scopes: list[str]
    courses: list[str] | None


def _audited(tool: Tool, fields: tuple[str, ...] = _AUDITED) -> _Audited:
    every: _Audited = {
        "tool": tool.id,
        "client_id": tool.client_id,
        "name": tool.name,
        "jwks_url": tool.jwks_url,
        "jwks": tool.jwks,
        "scopes": tool.scopes,
        "courses": tool.courses,
    }
    return cast(_Audited, {k: v for k, v in every.items() if k in ("tool", "client_id") or k in fields})


def _ordered_scopes(scopes: Collection[str]) -> list[str]:
    return [str(s) for s in ALL_SCOPES if s in scopes]


async def _checked_url(url: str, targets: WebhookSettings) -> JwkSet:
    """The keys at a JWKS URL, checked; 422 at /jwks_url when they cannot be fetched or used."""
    try:
        if httpx.URL(url).userinfo:
            raise ValidationFailed.one("/jwks_url", "Must not hold a user name or password.")
    except httpx.InvalidURL as exc:
        raise ValidationFailed.one("/jwks_url", f"Not a usable URL: {exc}") from exc
    try:
        return await jwks.fetch(url, targets)
    except jwks.JwksUnavailable as exc:
        raise ValidationFailed.one("/jwks_url", f"The tool's keys cannot be used from this URL: {exc}") from exc


async def _course_ids(session: AsyncSession, organization_id: int, keys: list[str] | None) -> list[int] | None:
    """The ids of the courses named (None: every course); 422 naming each key that is not a course of the
    organization (another organization's course is unknown here, as anywhere)."""
    if keys is None:
        return None
    found = await repository.course_ids(session, organization_id, keys)
    missing = [FieldError(f"/courses/{i}", f"No course {k!r}.") for i, k in enumerate(keys) if k not in found]
    if missing:
        raise ValidationFailed(missing)
    return [found[k] for k in keys]


async def _one(session: AsyncSession, organization_id: int, tool_id: int) -> Tool:
    found = await repository.tool(session, organization_id, tool_id)
    if found is None:
        raise NotFound(f"LTI tool {tool_id} not found.")
    return found


async def create(
    session: AsyncSession, organization_id: int, body: ToolIn, targets: WebhookSettings, actor: str
) -> Tool:
    """Register a tool: a new client id and deployment id, its keys checked (fetched from its URL)."""
    inline = None if body.jwks is None else jwks.check_jwks(body.jwks)
    course_ids = await _course_ids(session, organization_id, body.courses)
    fetched = None if body.jwks_url is None else await _checked_url(body.jwks_url, targets)
    tool_id = await repository.create_tool(
        session,
        organization_id,
        name=body.name,
        client_id=secrets.token_hex(16),
        deployment_id=secrets.token_hex(8),
        jwks_url=body.jwks_url,
        jwks=inline,
        fetched_jwks=fetched,
        scopes=_ordered_scopes(body.scopes),
        all_courses=course_ids is None,
        now=clock.now(),
    )
    if course_ids is not None:
        await repository.set_courses(session, tool_id, course_ids)
    created = await _one(session, organization_id, tool_id)
    await audit.record(session, organization_id, None, actor, "lti_tool.created", new=_audited(created))
    await session.commit()
    return created


async def get(session: AsyncSession, organization_id: int, tool_id: int) -> Tool:
    return await _one(session, organization_id, tool_id)


async def list_tools(session: AsyncSession, organization_id: int) -> list[Tool]:
    return await repository.tools(session, organization_id)


async def update(
    session: AsyncSession, organization_id: int, tool_id: int, body: ToolPatch, targets: WebhookSettings, actor: str
) -> Tool:
    """Change the fields sent. New keys are checked as on registration; sending the same JWKS URL fetches its keys
    again. The client id and deployment id never change."""
    old = await _one(session, organization_id, tool_id)
    sent = body.model_fields_set
    jwks_url, inline, fetched, fetched_at = old.jwks_url, old.jwks, None, None
    if old.jwks_url is not None:
        fetched, fetched_at = await repository.fetched_keys(session, tool_id)
    if body.jwks is not None:
        jwks_url, inline, fetched, fetched_at = None, jwks.check_jwks(body.jwks), None, None
    elif body.jwks_url is not None:
        fetched = await _checked_url(body.jwks_url, targets)
        jwks_url, inline, fetched_at = body.jwks_url, None, clock.now()
    all_courses = old.courses is None
    if "courses" in sent:
        course_ids = await _course_ids(session, organization_id, body.courses)
        all_courses = course_ids is None
        await repository.set_courses(session, tool_id, course_ids or [])
    await repository.update_tool(
        session,
        tool_id,
        name=body.name or old.name,
        jwks_url=jwks_url,
        jwks=inline,
        fetched_jwks=fetched,
        fetched_at=fetched_at,
        scopes=_ordered_scopes(body.scopes) if body.scopes is not None else old.scopes,
        all_courses=all_courses,
        now=clock.now(),
    )
    new = await _one(session, organization_id, tool_id)
    if changed := tuple(f for f in _AUDITED if getattr(old, f) != getattr(new, f)):
        old_fields, new_fields = _audited(old, changed), _audited(new, changed)
        await audit.record(session, organization_id, None, actor, "lti_tool.updated", old=old_fields, new=new_fields)
    await session.commit()
    tokens.forget_tool(tool_id)
    return new


async def delete(session: AsyncSession, organization_id: int, tool_id: int, actor: str) -> None:
    """Remove a tool: its access tokens stop working (within a second in other processes), the line items it created
    go with it (their assessments stay)."""
    old = await _one(session, organization_id, tool_id)
    await repository.delete_tool(session, organization_id, tool_id)
    await audit.record(session, organization_id, None, actor, "lti_tool.deleted", old=_audited(old))
    await session.commit()
    tokens.forget_tool(tool_id)
