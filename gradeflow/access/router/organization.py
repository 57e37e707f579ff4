"""The caller's organization: user-token verification keys and API keys (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gradeflow.access.schemas.organization import ApiKeyCreated, ApiKeyIn, ApiKeyOut, OrganizationOut, TokenKeysIn
from gradeflow.access.service import auth
from gradeflow.access.service.access import require_key
from gradeflow.db.models import Organization
from gradeflow.http.deps import PrincipalDep, RecordId, SessionDep, actor

router = APIRouter(prefix="/v1", tags=["organization"])


def _org_out(org: Organization) -> OrganizationOut:
    return OrganizationOut(
        slug=org.slug,
        name=org.name,
        accepts_hs256_tokens=bool(org.jwt_hs256_secret),
        accepts_rs256_tokens=bool(org.jwks),
        token_audience=org.token_audience,
        created_at=org.created_at,
    )


@router.get("/organization")
async def get_organization(session: SessionDep, principal: PrincipalDep) -> OrganizationOut:
    """The caller's organization (API keys only)."""
    require_key(principal)
    return _org_out(await auth.get_organization(session, principal.organization_id))


@router.put("/organization/token-keys")
async def put_token_keys(session: SessionDep, principal: PrincipalDep, body: TokenKeysIn) -> OrganizationOut:
    """Register how the LMS signs user tokens: an HS256 shared secret and/or an RS256 JWKS document,
    and optionally the audience (`aud`) tokens must carry. Replaces what was there; audited as
    `token_keys.changed` (which kinds, kids and audience, never a secret). Every JWKS key must load as
    an RS256 public key. A body with no key at all is refused (422) unless it sets
    `disable_user_tokens: true`: that stops every user login."""
    require_key(principal, admin=True)
    org = await auth.set_token_keys(
        session,
        principal.organization_id,
        actor(principal),
        body.hs256_secret,
        body.jwks,
        audience=body.audience,
        disable_user_tokens=body.disable_user_tokens,
    )
    return _org_out(org)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(session: SessionDep, principal: PrincipalDep, body: ApiKeyIn) -> ApiKeyCreated:
    """Create an API key; the secret is in this response only. Audited as `api_key.created`."""
    require_key(principal, admin=True)
    key, secret = await auth.create_api_key(
        session, principal.organization_id, body.name, body.role, actor=actor(principal)
    )
    return ApiKeyCreated.model_validate({**ApiKeyOut.model_validate(key).model_dump(), "secret": secret})


@router.get("/api-keys")
async def list_api_keys(session: SessionDep, principal: PrincipalDep) -> list[ApiKeyOut]:
    """The organization's keys, revoked ones included; secrets are never shown again."""
    require_key(principal, admin=True)
    return [ApiKeyOut.model_validate(k) for k in await auth.list_api_keys(session, principal.organization_id)]


@router.delete("/api-keys/{key_id}")
async def revoke_api_key(session: SessionDep, principal: PrincipalDep, key_id: RecordId) -> ApiKeyOut:
    """Revoke a key: it stops working at once. Audited as `api_key.revoked` (revoking again changes nothing)."""
    require_key(principal, admin=True)
    key = await auth.revoke_api_key(session, principal.organization_id, key_id, actor(principal))
    return ApiKeyOut.model_validate(key)
