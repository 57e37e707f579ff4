"""Organizations and their API keys (`organizations`, `api_keys`), as authentication and key management read and
write them. ORM objects: the use cases change an organization's token keys or revoke a key on the object."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import KeyRole
from gradeflow.db.models import ApiKey, Organization


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """An API key that is not revoked: whose it is and its role."""

    id: int
    organization_id: int
    role: KeyRole


async def active_key(session: AsyncSession, secret_hash: str) -> ActiveKey | None:
    """The key with this secret's hash, unless it is unknown or revoked."""
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.organization_id, ApiKey.role).where(
                ApiKey.secret_hash == secret_hash, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    return None if row is None else ActiveKey(row.id, row.organization_id, row.role)


async def organization_by_slug(session: AsyncSession, slug: str) -> Organization | None:
    org: Organization | None = (
        await session.execute(select(Organization).where(Organization.slug == slug))
    ).scalar_one_or_none()
    return org


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return await session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None


async def add_organization(session: AsyncSession, slug: str, name: str) -> Organization:
    org = Organization(slug=slug, name=name)
    session.add(org)
    return org


async def organization(session: AsyncSession, organization_id: int) -> Organization | None:
    return await session.get(Organization, organization_id)


async def add_api_key(
    session: AsyncSession, organization_id: int, name: str, role: str, prefix: str, secret_hash: str
) -> ApiKey:
    """A new key (flushed: it has its id)."""
    key = ApiKey(organization_id=organization_id, name=name, role=role, prefix=prefix, secret_hash=secret_hash)
    session.add(key)
    await session.flush()
    return key


async def api_keys_of(session: AsyncSession, organization_id: int) -> list[ApiKey]:
    """The organization's keys, revoked ones included, oldest first."""
    rows = await session.scalars(select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id))
    return list(rows)


async def api_key(session: AsyncSession, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


@dataclass(frozen=True, slots=True)
class BootstrapKey:
    """The bootstrap key as written, and what it was before (`old_role` None: it did not exist)."""

    id: int
    organization_id: int
    name: str
    role: str
    prefix: str
    revoked_at: datetime | None
    old_role: str | None
    old_revoked_at: datetime | None


async def ensure_admin_key(session: AsyncSession, slug: str, prefix: str, secret_hash: str) -> BootstrapKey | None:
    """Make organization `slug` exist, and a key with this secret's hash in it an active admin key; the key when it
    was created or changed (None: it was as it should be)."""
    await session.execute(
        text("INSERT INTO organizations (slug, name) VALUES (:slug, :slug) ON CONFLICT (slug) DO NOTHING"),
        {"slug": slug},
    )
    row = (
        await session.execute(
            text(
                """
                WITH before AS (SELECT role, revoked_at FROM api_keys WHERE secret_hash = :hash)
                INSERT INTO api_keys (organization_id, name, role, prefix, secret_hash)
                SELECT id, 'bootstrap', 'admin', :prefix, :hash FROM organizations WHERE slug = :slug
                ON CONFLICT (secret_hash) DO UPDATE SET role = 'admin', revoked_at = NULL
                    WHERE api_keys.role <> 'admin' OR api_keys.revoked_at IS NOT NULL
                RETURNING id, organization_id, name, role, prefix, revoked_at,
                          (SELECT role FROM before) AS old_role, (SELECT revoked_at FROM before) AS old_revoked_at
                """
            ),
            {"slug": slug, "prefix": prefix, "hash": secret_hash},
        )
    ).first()
    return None if row is None else BootstrapKey(*row)
