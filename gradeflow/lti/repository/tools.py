"""The SQL of LTI tools: registrations, the courses each may reach, their fetched keys and their access tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import jsonutil
from gradeflow.lti.keysets import JwkSet


@dataclass(frozen=True, slots=True)
class Tool:
    """A registration as its organization sees it; `courses` None: every course of the organization."""

    id: int
    name: str
    client_id: str
    deployment_id: str
    jwks_url: str | None
    jwks: JwkSet | None
    scopes: list[str]
    courses: list[str] | None
    created_at: datetime
    updated_at: datetime


_TOOL_COLUMNS = """
    t.id, t.name, t.client_id, t.deployment_id, t.jwks_url, t.jwks, t.scopes,
    CASE WHEN t.all_courses THEN NULL ELSE ARRAY(
        SELECT c.external_id FROM lti_tool_courses tc JOIN courses c ON c.id = tc.course_id
        WHERE tc.tool_id = t.id ORDER BY c.external_id COLLATE "C") END,
    t.created_at, t.updated_at
"""
_ONE = text(f"SELECT {_TOOL_COLUMNS} FROM lti_tools t WHERE t.id = :id AND t.organization_id = :o")  # noqa: S608
_ALL = text(f"SELECT {_TOOL_COLUMNS} FROM lti_tools t WHERE t.organization_id = :o ORDER BY t.id")  # noqa: S608


async def tool(session: AsyncSession, organization_id: int, tool_id: int) -> Tool | None:
    """The organization's tool `tool_id` (None: it has none of that id)."""
    row = (await session.execute(_ONE, {"id": tool_id, "o": organization_id})).first()
    return None if row is None else Tool(*row)


async def tools(session: AsyncSession, organization_id: int) -> list[Tool]:
    """The organization's tools in the order they were registered."""
    return [Tool(*r) for r in await session.execute(_ALL, {"o": organization_id})]


_COURSE_IDS = text(
    "SELECT external_id, id FROM courses WHERE organization_id = :o AND external_id = ANY(CAST(:keys AS text[]))"
)


async def course_ids(session: AsyncSession, organization_id: int, keys: list[str]) -> dict[str, int]:
    """The ids of those of `keys` that are courses of the organization."""
    rows = await session.execute(_COURSE_IDS, {"o": organization_id, "keys": keys})
    return {key: course_id for key, course_id in rows}


_CREATE = text(
    """
    INSERT INTO lti_tools (organization_id, name, client_id, deployment_id, jwks_url, jwks, fetched_jwks, fetched_at,
                           scopes, all_courses, updated_at)
    VALUES (:o, :name, :client_id, :deployment_id, :jwks_url, CAST(:jwks AS jsonb), CAST(:fetched AS jsonb),
            :fetched_at, :scopes, :all_courses, :now)
    RETURNING id
    """
)


async def create_tool(
    session: AsyncSession,
    organization_id: int,
    *,
    name: str,
    client_id: str,
    deployment_id: str,
    jwks_url: str | None,
    jwks: JwkSet | None,
    fetched_jwks: JwkSet | None,
    scopes: list[str],
    all_courses: bool,
    now: datetime,
) -> int:
    """Register a tool; its id."""
    params = {
        "o": organization_id,
        "name": name,
        "client_id": client_id,
        "deployment_id": deployment_id,
        "jwks_url": jwks_url,
        "jwks": _json(jwks),
        "fetched": _json(fetched_jwks),
        "fetched_at": now if fetched_jwks is not None else None,
        "scopes": scopes,
        "all_courses": all_courses,
        "now": now,
    }
    tool_id: int = (await session.execute(_CREATE, params)).scalar_one()
    return tool_id


def _json(value: JwkSet | None) -> str | None:
    return None if value is None else jsonutil.dumps(value)


_SET_COURSES = (
    text("DELETE FROM lti_tool_courses WHERE tool_id = :t"),
    text("INSERT INTO lti_tool_courses (tool_id, course_id) SELECT :t, unnest(CAST(:ids AS bigint[]))"),
)


async def set_courses(session: AsyncSession, tool_id: int, course_ids: list[int]) -> None:
    """The courses a tool registered for some courses may reach: exactly these."""
    for statement in _SET_COURSES:
        await session.execute(statement, {"t": tool_id, "ids": course_ids})


_UPDATE = text(
    """
    UPDATE lti_tools SET name = :name, jwks_url = :jwks_url, jwks = CAST(:jwks AS jsonb),
      fetched_jwks = CAST(:fetched AS jsonb), fetched_at = :fetched_at, scopes = :scopes, all_courses = :all_courses,
      revision = revision + 1, updated_at = :now
    WHERE id = :id
    """
)


async def update_tool(
    session: AsyncSession,
    tool_id: int,
    *,
    name: str,
    jwks_url: str | None,
    jwks: JwkSet | None,
    fetched_jwks: JwkSet | None,
    fetched_at: datetime | None,
    scopes: list[str],
    all_courses: bool,
    now: datetime,
) -> None:
    """Store a tool's registration as changed."""
    params = {
        "id": tool_id,
        "name": name,
        "jwks_url": jwks_url,
        "jwks": _json(jwks),
        "fetched": _json(fetched_jwks),
        "fetched_at": fetched_at,
        "scopes": scopes,
        "all_courses": all_courses,
        "now": now,
    }
    await session.execute(_UPDATE, params)


_FETCHED = text("SELECT fetched_jwks, fetched_at FROM lti_tools WHERE id = :id")


async def fetched_keys(session: AsyncSession, tool_id: int) -> tuple[JwkSet | None, datetime | None]:
    """The keys last fetched from a tool's JWKS URL, and when."""
    row = (await session.execute(_FETCHED, {"id": tool_id})).one()
    return row[0], row[1]


_DELETE = text("DELETE FROM lti_tools WHERE id = :id AND organization_id = :o")


async def delete_tool(session: AsyncSession, organization_id: int, tool_id: int) -> bool:
    """Remove a tool (its courses and access tokens with it); False: the organization has no such tool."""
    result = await session.execute(_DELETE, {"id": tool_id, "o": organization_id})
    return bool(getattr(result, "rowcount", 0))


# --- the token endpoint ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolKeys:
    """What the token endpoint needs of a tool: who it is, what it may be granted, how it signs."""

    id: int
    organization_id: int
    client_id: str
    scopes: list[str]
    jwks_url: str | None
    keys: JwkSet | None  # inline, or last fetched from jwks_url
    fetched_at: datetime | None


_BY_CLIENT_ID = text(
    """
    SELECT id, organization_id, client_id, scopes, jwks_url, coalesce(jwks, fetched_jwks), fetched_at
    FROM lti_tools WHERE client_id = :c
    """
)


async def tool_by_client_id(session: AsyncSession, client_id: str) -> ToolKeys | None:
    row = (await session.execute(_BY_CLIENT_ID, {"c": client_id})).first()
    return None if row is None else ToolKeys(*row)


# Claimed by one request at a time, at most once per interval: a flood of assertions naming unknown keys
# fetches the tool's JWKS no more often than that.
_CLAIM_FETCH = text(
    """
    UPDATE lti_tools SET fetched_at = :now
    WHERE id = :id AND jwks_url IS NOT NULL AND (fetched_at IS NULL OR fetched_at <= :due)
    RETURNING jwks_url
    """
)
_STORE_FETCHED = text("UPDATE lti_tools SET fetched_jwks = CAST(:keys AS jsonb) WHERE id = :id AND jwks_url = :url")


async def claim_fetch(session: AsyncSession, tool_id: int, now: datetime, due: datetime) -> str | None:
    """The JWKS URL to fetch now, if the keys were last fetched at `due` or earlier (None: not yet)."""
    url: str | None = (await session.execute(_CLAIM_FETCH, {"id": tool_id, "now": now, "due": due})).scalar()
    return url


async def store_fetched(session: AsyncSession, tool_id: int, url: str, keys: JwkSet) -> None:
    """Keep the keys fetched from `url` (unless the tool's URL changed meanwhile)."""
    await session.execute(_STORE_FETCHED, {"id": tool_id, "url": url, "keys": jsonutil.dumps(keys)})


_ADD_TOKEN = (
    text("DELETE FROM lti_access_tokens WHERE tool_id = :t AND expires_at <= :now"),
    text("INSERT INTO lti_access_tokens (secret_hash, tool_id, scopes, expires_at) VALUES (:h, :t, :scopes, :exp)"),
)


async def add_access_token(
    session: AsyncSession, secret_hash: str, tool_id: int, scopes: list[str], expires_at: datetime, now: datetime
) -> None:
    """Store an access token issued to a tool (and forget the tool's expired ones)."""
    params = {"h": secret_hash, "t": tool_id, "scopes": scopes, "exp": expires_at, "now": now}
    for statement in _ADD_TOKEN:
        await session.execute(statement, params)


_PURGE_TOKENS = text("DELETE FROM lti_access_tokens WHERE expires_at <= :now")


async def delete_expired_tokens(session: AsyncSession, now: datetime) -> int:
    """Forget every access token expired at `now`; how many."""
    result = await session.execute(_PURGE_TOKENS, {"now": now})
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What an access token allows now: the scopes granted that its tool still holds, in the tool's courses."""

    tool_id: int
    organization_id: int
    client_id: str
    deployment_id: str
    scopes: list[str]
    course_ids: list[int] | None
    expires_at: datetime


_GRANT = text(
    """
    SELECT t.id, t.organization_id, t.client_id, t.deployment_id,
           ARRAY(SELECT unnest(a.scopes) INTERSECT SELECT unnest(t.scopes)),
           CASE WHEN t.all_courses THEN NULL
                ELSE ARRAY(SELECT tc.course_id FROM lti_tool_courses tc WHERE tc.tool_id = t.id) END,
           a.expires_at
    FROM lti_access_tokens a JOIN lti_tools t ON t.id = a.tool_id
    WHERE a.secret_hash = :h
    """
)


async def token_grant(session: AsyncSession, secret_hash: str) -> TokenGrant | None:
    """The grant of the access token with this hash (None: no such token, or its tool is gone)."""
    row = (await session.execute(_GRANT, {"h": secret_hash})).first()
    return None if row is None else TokenGrant(*row)


@dataclass(frozen=True, slots=True)
class LtiCourse:
    id: int
    external_id: str
    title: str


_COURSE = text("SELECT id, external_id, title FROM courses WHERE organization_id = :o AND external_id = :key")


async def course(session: AsyncSession, organization_id: int, key: str) -> LtiCourse | None:
    """The organization's course with this key."""
    row = (await session.execute(_COURSE, {"o": organization_id, "key": key})).first()
    return None if row is None else LtiCourse(*row)
