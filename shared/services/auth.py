"""Who is calling: API keys (stored as hashes) and LMS-minted user tokens (JWT)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import clock
from shared.db.models import ApiKey, Organization
from shared.errors import Conflict, NotFound, Unauthenticated

KEY_PREFIX = "gfk_"
KeyRole = Literal["admin", "service"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key of an organization, or a user of its LMS."""

    organization_id: int
    kind: Literal["key", "user"]
    subject: str  # the key's id, or the user's external id (JWT `sub`)
    key_role: KeyRole | None = None

    @property
    def is_key(self) -> bool:
        return self.kind == "key"

    @property
    def is_admin(self) -> bool:
        return self.key_role == "admin"


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def authenticate(session: AsyncSession, credential: str, leeway: int = 30) -> Principal:
    """Resolve a bearer credential to a Principal, or raise Unauthenticated."""
    if credential.startswith(KEY_PREFIX):
        return await _authenticate_key(session, credential)
    return await _authenticate_token(session, credential, leeway)


async def _authenticate_key(session: AsyncSession, secret: str) -> Principal:
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.organization_id, ApiKey.role).where(
                ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        raise Unauthenticated("The API key is unknown or revoked.")
    return Principal(row.organization_id, "key", str(row.id), row.role)


async def _authenticate_token(session: AsyncSession, token: str, leeway: int) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise Unauthenticated("The bearer token is neither an API key nor a well-formed JWT.") from exc
    if not isinstance(issuer, str):
        raise Unauthenticated("The token has no `iss` claim naming the organization.")
    org = (await session.execute(select(Organization).where(Organization.slug == issuer))).scalar_one_or_none()
    if org is None:
        raise Unauthenticated("The token's issuer is not a known organization.")
    key = _verification_key(org, header)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[header.get("alg", "")],
            options={"require": ["sub", "exp", "iss"]},
            issuer=issuer,
            leeway=leeway,
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"The token was rejected: {exc}.") from exc
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("The token's `sub` must be the user's external id.")
    return Principal(org.id, "user", subject)


def _verification_key(org: Organization, header: dict[str, Any]) -> Any:
    alg = header.get("alg")
    if alg == "HS256" and org.jwt_hs256_secret:
        return org.jwt_hs256_secret
    if alg == "RS256" and org.jwks:
        keys = [k for k in org.jwks.get("keys", []) if header.get("kid") in (None, k.get("kid"))]
        if keys:
            return jwt.PyJWK(keys[0], algorithm="RS256").key
        raise Unauthenticated("No key in the organization's JWKS matches the token's `kid`.")
    raise Unauthenticated(f"The organization accepts no tokens signed with {alg!r}.")


# --- organizations and keys -------------------------------------------------------------------


async def create_organization(session: AsyncSession, slug: str, name: str) -> Organization:
    """Create a tenant; slugs are unique."""
    exists = await session.scalar(select(Organization.id).where(Organization.slug == slug))
    if exists is not None:
        raise Conflict(f"An organization with slug {slug!r} exists.")
    org = Organization(slug=slug, name=name)
    session.add(org)
    await session.commit()
    return org


async def get_organization(session: AsyncSession, organization_id: int) -> Organization:
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound("Organization not found.")
    return org


async def get_organization_by_slug(session: AsyncSession, slug: str) -> Organization:
    org = (await session.execute(select(Organization).where(Organization.slug == slug))).scalar_one_or_none()
    if org is None:
        raise NotFound(f"No organization {slug!r}.")
    return org


async def set_token_keys(
    session: AsyncSession, organization_id: int, hs256_secret: str | None, jwks: dict[str, Any] | None
) -> Organization:
    """Register the material that verifies the LMS's user tokens (replaces what was there)."""
    org = await get_organization(session, organization_id)
    org.jwt_hs256_secret = hs256_secret
    org.jwks = jwks
    await session.commit()
    return org


async def create_api_key(
    session: AsyncSession, organization_id: int, name: str, role: KeyRole, secret: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned here once and only its hash is kept."""
    secret = secret or new_key_secret()
    key = ApiKey(
        organization_id=organization_id,
        name=name,
        role=role,
        prefix=secret[:12],
        secret_hash=hash_secret(secret),
    )
    session.add(key)
    await session.commit()
    return key, secret


async def list_api_keys(session: AsyncSession, organization_id: int) -> list[ApiKey]:
    rows = await session.scalars(select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id))
    return list(rows)


async def revoke_api_key(session: AsyncSession, organization_id: int, key_id: int) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or key.organization_id != organization_id:
        raise NotFound("API key not found.")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.commit()
    return key


async def ensure_bootstrap_key(session: AsyncSession, slug: str, secret: str) -> None:
    """Make sure an admin key with exactly `secret` exists in organization `slug` (safe to race)."""
    await session.execute(
        text("INSERT INTO organizations (slug, name) VALUES (:slug, :slug) ON CONFLICT (slug) DO NOTHING"),
        {"slug": slug},
    )
    await session.execute(
        text(
            """
            INSERT INTO api_keys (organization_id, name, role, prefix, secret_hash)
            SELECT id, 'bootstrap', 'admin', :prefix, :hash FROM organizations WHERE slug = :slug
            ON CONFLICT (secret_hash) DO UPDATE SET role = 'admin', revoked_at = NULL
            """
        ),
        {"slug": slug, "prefix": secret[:12], "hash": hash_secret(secret)},
    )
    await session.commit()
