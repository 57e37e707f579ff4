"""Who is calling: API keys (stored as hashes) and LMS-minted user tokens (JWT)."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from datetime import datetime
from typing import Any, NoReturn, TypedDict

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.identity import KeyRole as KeyRole
from gradeflow.access.identity import Principal as Principal
from gradeflow.access.repository import keys
from gradeflow.access.repository.keys import BootstrapKey
from gradeflow.access.service import staff
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, Unauthenticated, ValidationFailed
from gradeflow.core.settings import API_KEY_PREFIX
from gradeflow.core.single_flight import SingleFlight
from gradeflow.core.validation import storable_text
from gradeflow.db.models import ApiKey, Organization

KEY_PREFIX = API_KEY_PREFIX

log = logging.getLogger("gradeflow.auth")


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


# The one answer to every refused credential: which organization, key or check failed is for the
# operators' log, never for the caller (it would tell whether a slug exists and how it signs).
CREDENTIAL_NOT_ACCEPTED = "The credential was not accepted: send `Authorization: Bearer <API key or user token>`."

# A slug is at most 64 characters (organizations.slug); a user's id is stored like any other actor (255).
_ISSUER_MAX = 64
_SUBJECT_MAX = 255
_TOKEN_ALGORITHMS = ("HS256", "RS256")


def refuse(reason: str, *args: object) -> NoReturn:
    """Refuse a credential: the reason goes to the log (redacted by shared/logs), the caller learns nothing."""
    log.info("credential not accepted: " + reason, *args)
    raise Unauthenticated(CREDENTIAL_NOT_ACCEPTED)


async def authenticate(
    session: AsyncSession,
    credential: str,
    leeway: int = 30,
    *,
    max_lifetime: int,
    max_length: int,
) -> Principal:
    """Resolve a bearer credential to a Principal, or raise Unauthenticated (always with the same detail).

    A credential longer than `max_length` is refused unread; a user token must expire (`exp`, a number)
    within `max_lifetime` seconds (plus `leeway`)."""
    if len(credential) > max_length:
        refuse("credential of %d characters (over %d)", len(credential), max_length)
    if credential.startswith(KEY_PREFIX):
        return await _authenticate_key(session, credential)
    return await _authenticate_token(session, credential, leeway, max_lifetime)


# API keys found valid in the last second, by their secret's hash: (when the entry ends, on the monotonic clock;
# the principal). Most requests then need no look-up of their key. An entry lasts a second from the moment its
# look-up started, so a key revoked in any process is refused within a second (at once in the process that
# revoked it: revoke_api_key drops its entries). Unknown and revoked keys are never kept.
KEY_CACHE_SECONDS = 1.0
_KEY_CACHE_MAX = 10_000
_key_cache: dict[str, tuple[float, Principal]] = {}


def forget_cached_keys(key_id: int | None = None) -> None:
    """Drop the cached look-ups of one key (None: of every key)."""
    if key_id is None:
        _key_cache.clear()
        return
    for digest, (_, principal) in list(_key_cache.items()):
        if principal.subject == str(key_id):
            _key_cache.pop(digest, None)


def known_key(secret: str) -> Principal | None:
    """The caller of an API key found valid within the last KEY_CACHE_SECONDS, without a look-up; None when
    it was not (then `authenticate` looks it up)."""
    cached = _key_cache.get(hash_secret(secret))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return None


async def _authenticate_key(session: AsyncSession, secret: str) -> Principal:
    digest = hash_secret(secret)
    started = time.monotonic()
    cached = _key_cache.get(digest)
    if cached is not None and cached[0] > started:
        return cached[1]
    row = await keys.active_key(session, digest)
    if row is None:
        _key_cache.pop(digest, None)
        refuse("API key unknown or revoked")
    principal = Principal(row.organization_id, "key", str(row.id), row.role)
    if len(_key_cache) >= _KEY_CACHE_MAX:
        _key_cache.clear()
    _key_cache[digest] = (started + KEY_CACHE_SECONDS, principal)
    return principal


# The look-ups of keys under way, by hash: callers that find a key's cache entry ended while another is looking
# it up wait for that look-up instead of making their own.
_key_lookups: SingleFlight[Principal | None] = SingleFlight()


async def current_key(sessionmaker: async_sessionmaker[AsyncSession], secret: str) -> Principal | None:
    """The caller of an API key: from the cache, else from one look-up shared by every concurrent caller of
    the key; None when it is unknown or revoked (`authenticate` then refuses it with its answer)."""
    principal = known_key(secret)
    if principal is not None:
        return principal
    return await _key_lookups.do(hash_secret(secret), lambda: _look_up_key(sessionmaker, secret))


async def _look_up_key(sessionmaker: async_sessionmaker[AsyncSession], secret: str) -> Principal | None:
    async with sessionmaker() as session:
        try:
            return await _authenticate_key(session, secret)
        except Unauthenticated:
            return None


async def _authenticate_token(session: AsyncSession, token: str, leeway: int, max_lifetime: int) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        refuse("neither an API key nor a well-formed JWT (%s)", type(exc).__name__)
    issuer = unverified.get("iss")
    if not storable_text(issuer, _ISSUER_MAX):
        refuse("user token without a usable `iss`")
    alg = header.get("alg")
    if alg not in _TOKEN_ALGORITHMS:
        refuse("user token for %r signed with an unsupported algorithm", issuer)
    org = await keys.organization_by_slug(session, str(issuer))  # a string: checked above
    if org is None:
        refuse("user token of unknown issuer %r", issuer)
    key = _verification_key(org, alg, header.get("kid"))
    if key is None:
        refuse("organization %r has no %s key for this token (kid %.64r)", org.slug, alg, header.get("kid"))
    audience = org.token_audience
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            # Without an audience setting `aud` is not looked at (PyJWT would refuse any token carrying one).
            options={"require": ["sub", "exp", "iss"], "verify_aud": audience is not None},
            issuer=issuer,
            audience=audience,
            leeway=leeway,
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        refuse("user token of %r: %s", org.slug, f"{type(exc).__name__}: {exc}"[:200])
    expires = claims["exp"]
    # PyJWT takes "exp" strings such as "99999999999" too; a token must say when it ends, and soon.
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        refuse("user token of %r: `exp` is not a number", org.slug)
    if expires > clock.now().timestamp() + max_lifetime + leeway:
        refuse("user token of %r: `exp` more than %d s ahead", org.slug, max_lifetime)
    subject = claims["sub"]
    if not storable_text(subject, _SUBJECT_MAX):
        refuse("user token of %r: `sub` is not a user id (1-%d characters, no NUL)", org.slug, _SUBJECT_MAX)
    # The token is the LMS's word on who the user is called: reports print it beside the id.
    await staff.remember(session, org.id, subject, staff.names_in(claims))
    return Principal(org.id, "user", subject)


def _verification_key(org: Organization, alg: str, kid: Any) -> Any:
    """The key that checks a token of `org` signed with `alg` (and naming `kid`), or None."""
    if alg == "HS256":
        return org.jwt_hs256_secret or None
    keys = org.jwks.get("keys") if isinstance(org.jwks, dict) else None
    for jwk in keys if isinstance(keys, list) else []:
        if kid is None or (isinstance(jwk, dict) and jwk.get("kid") == kid):
            try:
                return rs256_public_key(jwk)
            except ValueError:
                # Stored before key sets were checked: it verifies nothing, so the token is refused.
                log.warning("organization %r has an unusable JWKS entry (kid %.64r)", org.slug, kid)
                return None
    return None


# RFC 7518 section 3.3: keys of 2048 bits or more MUST be used with RS256.
RSA_MIN_BITS = 2048
JWKS_MAX_KEYS = 20
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")


def rs256_public_key(jwk: Any) -> RSAPublicKey:
    """One JWKS entry as an RS256 verification key; ValueError says why it is not one."""
    if not isinstance(jwk, dict):
        raise ValueError("must be a JWK: a JSON object")
    if jwk.get("kty") != "RSA":
        raise ValueError("must be an RSA key (`kty`: `RSA`)")
    if jwk.get("alg", "RS256") != "RS256" or jwk.get("use", "sig") != "sig":
        raise ValueError("must be a signing key for RS256 (`alg`: `RS256`, `use`: `sig` when given)")
    if "kid" in jwk and not isinstance(jwk["kid"], str):
        raise ValueError("`kid` must be a string")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise ValueError("must be a public key: it holds private members (`d`, `p`, `q`, ...); never send those")
    try:
        key = jwt.PyJWK(jwk, algorithm="RS256").key
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ValueError("is not a usable RSA public key (`n` and `e` base64url-encoded)") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError("must be an RSA public key")
    if key.key_size < RSA_MIN_BITS:
        raise ValueError(f"must be at least {RSA_MIN_BITS} bits long (RFC 7518 section 3.3)")
    return key


def _check_jwks(jwks: dict[str, Any]) -> list[str | None]:
    """Refuse a key set any of whose keys would not verify RS256 tokens (422 naming each); its kids."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValidationFailed.one("/jwks/keys", "must be a list of JWKs (RFC 7517)")
    if len(keys) > JWKS_MAX_KEYS:
        raise ValidationFailed.one("/jwks/keys", f"at most {JWKS_MAX_KEYS} keys")
    errors: list[FieldError] = []
    kids: list[str | None] = []
    for i, jwk in enumerate(keys):
        try:
            rs256_public_key(jwk)
        except ValueError as exc:
            errors.append(FieldError(f"/jwks/keys/{i}", str(exc)))
            continue
        kid = jwk.get("kid")
        if kid is not None and kid in kids:
            errors.append(FieldError(f"/jwks/keys/{i}/kid", "another key has this `kid`: each must be unique"))
        kids.append(kid)
    if errors:
        raise ValidationFailed(errors)
    return kids


# --- organizations and keys -------------------------------------------------------------------


async def create_organization(session: AsyncSession, slug: str, name: str) -> Organization:
    """Create a tenant; slugs are unique."""
    if await keys.slug_taken(session, slug):
        raise Conflict(f"An organization with slug {slug!r} exists.")
    org = await keys.add_organization(session, slug, name)
    await session.commit()
    return org


async def get_organization(session: AsyncSession, organization_id: int) -> Organization:
    org = await keys.organization(session, organization_id)
    if org is None:
        raise NotFound("Organization not found.")
    return org


async def get_organization_by_slug(session: AsyncSession, slug: str) -> Organization:
    org = await keys.organization_by_slug(session, slug)
    if org is None:
        raise NotFound(f"No organization {slug!r}.")
    return org


class TokenKeysSummary(TypedDict):
    """What the audit log says about an organization's token keys: which kinds, kids, audience; no secret."""

    hs256: bool
    rs256_kids: list[str | None]
    audience: str | None


def token_keys_summary(org: Organization) -> TokenKeysSummary:
    """The organization's `TokenKeysSummary`."""
    keys = org.jwks.get("keys") if isinstance(org.jwks, dict) else None
    return {
        "hs256": bool(org.jwt_hs256_secret),
        "rs256_kids": [k.get("kid") if isinstance(k, dict) else None for k in keys] if isinstance(keys, list) else [],
        "audience": org.token_audience,
    }


async def set_token_keys(
    session: AsyncSession,
    organization_id: int,
    actor: str,
    hs256_secret: str | None,
    jwks: dict[str, Any] | None,
    *,
    audience: str | None = None,
    disable_user_tokens: bool = False,
) -> Organization:
    """Register the material that verifies the LMS's user tokens (replaces what was there).

    Every RS256 key must load (422 naming `/jwks/keys/<i>`). A request with no key at all would stop
    every user login, so it is refused unless `disable_user_tokens` says that is the point."""
    kids = _check_jwks(jwks) if jwks is not None else []
    has_keys = bool(hs256_secret) or bool(kids)
    if not has_keys and not disable_user_tokens:
        raise ValidationFailed.one(
            "/disable_user_tokens",
            "No verification key given: this would refuse every user token. Send `hs256_secret` and/or"
            " `jwks` with keys, or `disable_user_tokens: true` to stop accepting user tokens on purpose.",
        )
    if has_keys and disable_user_tokens:
        raise ValidationFailed.one("/disable_user_tokens", "must be false (or left out) when keys are given")
    org = await get_organization(session, organization_id)
    old = token_keys_summary(org)
    new_jwks = jwks if kids else None  # `{"keys": []}` is stored as no key set
    changed = (org.jwt_hs256_secret, org.jwks, org.token_audience) != (hs256_secret, new_jwks, audience)
    org.jwt_hs256_secret = hs256_secret
    org.jwks = new_jwks
    org.token_audience = audience
    if changed:
        await audit.record(
            session, organization_id, None, actor, "token_keys.changed", old=old, new=token_keys_summary(org)
        )
    await session.commit()
    return org


class _KeyEntry(TypedDict):
    """An API key as the audit log shows it (the prefix is shown in listings too; the secret never)."""

    id: int
    name: str
    role: str
    prefix: str
    revoked_at: datetime | None


def _key_entry(key: ApiKey | BootstrapKey) -> _KeyEntry:
    return {"id": key.id, "name": key.name, "role": key.role, "prefix": key.prefix, "revoked_at": key.revoked_at}


async def create_api_key(
    session: AsyncSession,
    organization_id: int,
    name: str,
    role: KeyRole,
    secret: str | None = None,
    *,
    actor: str = "gradeflow:cli",
) -> tuple[ApiKey, str]:
    """Create a key; the secret is returned here once and only its hash is kept."""
    secret = secret or new_key_secret()
    key = await keys.add_api_key(session, organization_id, name, role, secret[:12], hash_secret(secret))
    await audit.record(session, organization_id, None, actor, "api_key.created", new=_key_entry(key))
    await session.commit()
    return key, secret


async def list_api_keys(session: AsyncSession, organization_id: int) -> list[ApiKey]:
    return await keys.api_keys_of(session, organization_id)


async def revoke_api_key(session: AsyncSession, organization_id: int, key_id: int, actor: str) -> ApiKey:
    """Revoke a key (it stops working at once); revoking a revoked key changes nothing."""
    key = await keys.api_key(session, key_id)
    if key is None or key.organization_id != organization_id:
        raise NotFound("API key not found.")
    if key.revoked_at is None:
        old = _key_entry(key)
        key.revoked_at = clock.now()
        await audit.record(session, organization_id, None, actor, "api_key.revoked", old=old, new=_key_entry(key))
        await session.commit()
        forget_cached_keys(key.id)
    return key


BOOTSTRAP_ACTOR = "gradeflow:bootstrap"


async def ensure_bootstrap_key(session: AsyncSession, slug: str, secret: str) -> None:
    """Make sure an admin key with exactly `secret` exists in organization `slug` (safe to race).

    Creating the key, or making it an active admin key again, is audited; finding it as it should be is not."""
    row = await keys.ensure_admin_key(session, slug, secret[:12], hash_secret(secret))
    if row is not None:
        new = _key_entry(row)
        if row.old_role is None:
            await audit.record(session, row.organization_id, None, BOOTSTRAP_ACTOR, "api_key.created", new=new)
        else:
            old = {**new, "role": row.old_role, "revoked_at": row.old_revoked_at}
            await audit.record(
                session, row.organization_id, None, BOOTSTRAP_ACTOR, "api_key.restored", old=old, new=new
            )
    await session.commit()
    forget_cached_keys()  # a key made an admin key again
