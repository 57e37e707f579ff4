"""The OAuth 2.0 token endpoint of LTI Advantage (client credentials with a JWT client assertion, RFC 7523 and the
1EdTech Security Framework), and the access tokens it issues.

An assertion is accepted when it is signed (header `kid`, an algorithm of jwks.ALGORITHMS) by a key of the tool whose
client id is its `iss` and `sub`, names the token URL in `aud`, has not expired, was not issued in the future, lives at
most ASSERTION_MAX_SECONDS, and its `jti` was never used before (kept in Redis until the assertion expires). Refusals
are RFC 6749 errors; their descriptions say what to fix without telling whether another organization's tool exists.

An access token (`gft_...`) is a random secret stored as a hash with the scopes granted. What it allows is read again
at most once a second per process (grant_for): the scopes granted that its tool still holds, in the courses the tool
may reach now, so removing a tool or narrowing it reaches issued tokens within a second."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.identity import CourseRef
from gradeflow.core import clock
from gradeflow.core.errors import NotFound
from gradeflow.core.settings import WebhookSettings
from gradeflow.core.single_flight import SingleFlight
from gradeflow.core.validation import storable_text
from gradeflow.jobs import Queue
from gradeflow.lti.keysets import JwkSet
from gradeflow.lti.repository import tools as repository
from gradeflow.lti.repository.tools import LtiCourse, ToolKeys
from gradeflow.lti.scopes import ALL_SCOPES
from gradeflow.lti.service import jwks

log = logging.getLogger("gradeflow.lti")

ACCESS_TOKEN_PREFIX = "gft_"  # noqa: S105  (a prefix, not a secret)
ACCESS_TOKEN_SECONDS = 3600
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_SECONDS = 3600
# A key id the stored keys lack fetches the tool's JWKS again, at most this often; keys older than the maximum age
# are fetched again before use (a failure then keeps the old ones).
JWKS_REFETCH_SECONDS = 10
JWKS_MAX_AGE_SECONDS = 3600
_JTI_MAX = 255
_CLIENT_ID_MAX = 64


class TokenError(Exception):
    """An RFC 6749 error answer: `error` code, a description, and the HTTP status (400, 401 or 503)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _refuse_client(description: str) -> TokenError:
    log.info("LTI client assertion refused: %s", description)
    return TokenError("invalid_client", description, 401)


def tool_actor(tool_id: int) -> str:
    """How a tool is recorded as the author of a change (API keys are `key:<id>`), and counted by rate limits."""
    return f"lti_tool:{tool_id}"


@dataclass(frozen=True)
class LtiGrant:
    """What the bearer of an access token may do: these scopes, for this tool, in these courses (None: every course
    of the organization)."""

    tool_id: int
    organization_id: int
    client_id: str
    scopes: frozenset[str]
    course_ids: frozenset[int] | None

    @property
    def actor(self) -> str:
        return tool_actor(self.tool_id)

    def reaches(self, course_id: int) -> bool:
        return self.course_ids is None or course_id in self.course_ids


@dataclass(frozen=True)
class Assertion:
    """A token request as sent: the client assertion (not yet verified) and the scopes asked for."""

    token: str
    alg: str
    kid: str
    client_id: str
    scopes: frozenset[str] | None  # None: the request named none (all the tool holds)


@dataclass(frozen=True)
class VerifiedClaims:
    """What issuing a token reads of a verified client assertion: its `jti`, and its `exp` (seconds since the epoch)
    that bounds how long the jti is remembered."""

    jti: str
    exp: int


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def _single(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise TokenError("invalid_request", f"The parameter {name} must not be repeated.")
    return values[0] if values else None


def _required(form: Mapping[str, list[str]], name: str) -> str:
    value = _single(form, name)
    if not value:
        raise TokenError("invalid_request", f"The parameter {name} is missing.")
    return value


def read_request(form: Mapping[str, list[str]], max_length: int) -> Assertion:
    """The client assertion of a token request, its header and claims parsed but not yet trusted."""
    grant_type = _required(form, "grant_type")
    if grant_type != "client_credentials":
        raise TokenError("unsupported_grant_type", "Only grant_type=client_credentials is supported.")
    if _required(form, "client_assertion_type") != ASSERTION_TYPE:
        raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}.")
    token = _required(form, "client_assertion")
    if len(token) > max_length:
        raise _refuse_client(f"The client assertion is longer than {max_length} characters.")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise _refuse_client("The client assertion is not a well-formed JWT.") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in jwks.ALGORITHMS:
        raise _refuse_client(f"The client assertion must be signed with one of {', '.join(jwks.ALGORITHMS)}.")
    if not isinstance(kid, str) or not 0 < len(kid) <= jwks.KID_MAX:
        raise _refuse_client(
            f"The client assertion's header must name its key (kid, at most {jwks.KID_MAX} characters)."
        )
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not storable_text(subject, _CLIENT_ID_MAX) or issuer != subject:
        raise _refuse_client("The client assertion's iss and sub must both be the client id.")
    client_id = _single(form, "client_id")
    if client_id is not None and client_id != subject:
        raise _refuse_client("client_id does not match the client assertion's sub.")
    scope = _single(form, "scope")
    scopes = None if scope is None else frozenset(scope.split())
    return Assertion(token, str(alg), kid, subject, scopes)


async def find_client(session: AsyncSession, assertion: Assertion) -> ToolKeys:
    """The tool the assertion claims to come from (invalid_client when there is none)."""
    tool = await repository.tool_by_client_id(session, assertion.client_id)
    if tool is None:
        raise _refuse_client("Unknown client: register the tool and use its client_id as iss and sub.")
    return tool


async def issue(
    session: AsyncSession,
    redis: Queue,
    tool: ToolKeys,
    assertion: Assertion,
    *,
    token_url: str,
    targets: WebhookSettings,
    leeway: int,
) -> IssuedToken:
    """Verify the assertion of `tool` and issue an access token for the scopes asked for that the tool holds."""
    key = await _verification_key(session, tool, assertion, targets)
    claims = _verified_claims(assertion, key, token_url, leeway)
    granted = [str(s) for s in ALL_SCOPES if s in tool.scopes and (assertion.scopes is None or s in assertion.scopes)]
    if not granted:
        raise TokenError("invalid_scope", "None of the scopes requested is one this tool may be granted.")
    await _first_use(redis, tool.id, claims.jti, claims.exp + leeway)
    secret = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    expires_at = now + timedelta(seconds=ACCESS_TOKEN_SECONDS)
    await repository.add_access_token(session, secret_hash(secret), tool.id, granted, expires_at, now)
    await session.commit()
    return IssuedToken(secret, ACCESS_TOKEN_SECONDS, " ".join(granted))


async def _verification_key(
    session: AsyncSession, tool: ToolKeys, assertion: Assertion, targets: WebhookSettings
) -> jwks.PublicKey:
    """The tool's key named by the assertion, its JWKS fetched again when the key is unknown (at most every
    JWKS_REFETCH_SECONDS) or the keys are older than JWKS_MAX_AGE_SECONDS."""
    keys = tool.keys
    key = jwks.key_for(keys, assertion.kid, assertion.alg)
    if tool.jwks_url is not None:
        now = clock.now()
        stale = tool.fetched_at is None or tool.fetched_at <= now - timedelta(seconds=JWKS_MAX_AGE_SECONDS)
        if key is None or stale:
            wait = JWKS_REFETCH_SECONDS if key is None else JWKS_MAX_AGE_SECONDS
            fresh = await _refetched(session, tool.id, now, now - timedelta(seconds=wait), targets)
            if fresh is not None:
                key = jwks.key_for(fresh, assertion.kid, assertion.alg)
    if key is None:
        raise _refuse_client(f"The tool has no {assertion.alg} key with kid {assertion.kid!r}.")
    return key


async def _refetched(
    session: AsyncSession, tool_id: int, now: datetime, due: datetime, targets: WebhookSettings
) -> JwkSet | None:
    """The tool's keys fetched now, if they were last fetched at `due` or before (None: not due, or failed)."""
    url = await repository.claim_fetch(session, tool_id, now, due)
    await session.commit()
    if url is None:
        return None
    try:
        keys = await jwks.fetch(url, targets)
    except jwks.JwksUnavailable as exc:
        log.warning("the JWKS of LTI tool %d cannot be fetched: %s", tool_id, exc)
        return None
    await repository.store_fetched(session, tool_id, url, keys)
    await session.commit()
    return keys


_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti"]


def _verified_claims(assertion: Assertion, key: jwks.PublicKey, token_url: str, leeway: int) -> VerifiedClaims:
    try:
        claims = jwt.decode(
            assertion.token,
            key,
            algorithms=[assertion.alg],
            audience=token_url,
            issuer=assertion.client_id,
            leeway=leeway,
            options={"require": _REQUIRED_CLAIMS, "verify_iat": True},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise _refuse_client(f"The client assertion lacks the claim {exc.claim}.") from exc
    except jwt.InvalidSignatureError as exc:
        raise _refuse_client("The client assertion's signature does not verify with the key it names.") from exc
    except jwt.ExpiredSignatureError as exc:
        raise _refuse_client("The client assertion has expired (exp).") from exc
    except jwt.ImmatureSignatureError as exc:
        raise _refuse_client("The client assertion is not valid yet (iat or nbf in the future).") from exc
    except jwt.InvalidAudienceError as exc:
        raise _refuse_client(f"The client assertion's aud must be the token URL {token_url}.") from exc
    except jwt.PyJWTError as exc:
        raise _refuse_client(f"The client assertion is not valid: {exc}.") from exc
    if time.time() + ASSERTION_MAX_SECONDS + leeway < claims["exp"]:
        raise _refuse_client(f"The client assertion must expire within {ASSERTION_MAX_SECONDS} seconds.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= _JTI_MAX:
        raise _refuse_client(f"The client assertion's jti must be a string of 1 to {_JTI_MAX} characters.")
    return VerifiedClaims(jti, int(claims["exp"]))


async def _first_use(redis: Queue, tool_id: int, jti: str, until: int) -> None:
    """Remember the assertion's jti until it expires; invalid_client when it was used before."""
    name = f"gradeflow:lti:jti:{tool_id}:{hashlib.sha256(jti.encode()).hexdigest()}"
    try:
        first = await redis.set(name, b"1", nx=True, exat=max(until, int(time.time()) + 1))
    except (RedisError, OSError) as exc:
        log.warning("the LTI replay cache cannot be reached: %s", type(exc).__name__)
        raise TokenError("temporarily_unavailable", "The token service cannot check replays now; retry.", 503) from exc
    if not first:
        raise _refuse_client("The client assertion was used before (jti): sign a new one for each request.")


# --- access tokens ---------------------------------------------------------------------------------

# Grants found valid in the last second, by their token's hash: (when the entry ends on the monotonic clock, the
# grant, when the token expires on the wall clock). Like API keys (gradeflow/access/service/auth.py).
GRANT_CACHE_SECONDS = 1.0
_GRANT_CACHE_MAX = 10_000
_grant_cache: dict[str, tuple[float, LtiGrant, float]] = {}
_COURSE_CACHE_MAX = 10_000
_course_cache: dict[tuple[int, str], tuple[float, LtiCourse]] = {}


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def purge_expired(session: AsyncSession) -> int:
    """Delete expired access tokens (a tool's own are also dropped whenever it is issued a new one); how many."""
    purged = await repository.delete_expired_tokens(session, clock.now())
    await session.commit()
    return purged


def forget_tool(tool_id: int | None = None) -> None:
    """Drop this process's cached grants of a tool (None: of every tool)."""
    for digest, (_, grant, _) in list(_grant_cache.items()):
        if tool_id is None or grant.tool_id == tool_id:
            _grant_cache.pop(digest, None)


def known_grant(secret: str) -> LtiGrant | None:
    """The grant of an access token found valid within the last second, without a look-up (None: look it up)."""
    cached = _grant_cache.get(secret_hash(secret))
    if cached is not None and cached[0] > time.monotonic() and cached[2] > time.time():
        return cached[1]
    return None


# The look-ups of tokens under way, by hash (as for API keys: auth.current_key).
_grant_lookups: SingleFlight[LtiGrant | None] = SingleFlight()


async def current_grant(sessionmaker: async_sessionmaker[AsyncSession], secret: str) -> LtiGrant | None:
    """What an access token allows now: from the cache, else from one look-up shared by every concurrent caller
    of the token; None when it is unknown, expired or its tool is gone."""
    grant = known_grant(secret)
    if grant is not None:
        return grant

    async def look_up() -> LtiGrant | None:
        async with sessionmaker() as session:
            return await grant_for(session, secret)

    return await _grant_lookups.do(secret_hash(secret), look_up)


async def grant_for(session: AsyncSession, secret: str) -> LtiGrant | None:
    """What an access token allows now; None when it is unknown, expired or its tool is gone."""
    if not secret.startswith(ACCESS_TOKEN_PREFIX):
        return None
    digest = secret_hash(secret)
    started = time.monotonic()
    cached = _grant_cache.get(digest)
    if cached is not None and cached[0] > started and cached[2] > time.time():
        return cached[1]
    row = await repository.token_grant(session, digest)
    if row is None or row.expires_at <= clock.now():
        _grant_cache.pop(digest, None)
        return None
    grant = LtiGrant(
        row.tool_id,
        row.organization_id,
        row.client_id,
        frozenset(row.scopes),
        None if row.course_ids is None else frozenset(row.course_ids),
    )
    if len(_grant_cache) >= _GRANT_CACHE_MAX:
        _grant_cache.clear()
    _grant_cache[digest] = (started + GRANT_CACHE_SECONDS, grant, row.expires_at.timestamp())
    return grant


async def lti_course(session: AsyncSession, grant: LtiGrant, key: str) -> LtiCourse:
    """The course `key` of the grant's organization, if the tool may reach it; NotFound otherwise (the same answer
    as for a course that does not exist, or is another organization's)."""
    started = time.monotonic()
    cached = _course_cache.get((grant.organization_id, key))
    if cached is not None and cached[0] > started:
        found: LtiCourse | None = cached[1]
    else:
        found = await repository.course(session, grant.organization_id, key)
        if found is not None:
            if len(_course_cache) >= _COURSE_CACHE_MAX:
                _course_cache.clear()
            _course_cache[(grant.organization_id, key)] = (started + GRANT_CACHE_SECONDS, found)
    if found is None or not grant.reaches(found.id):
        raise NotFound(f"Course {key!r} not found.")
    return found


async def course_for(session: AsyncSession, grant: LtiGrant, key: str) -> CourseRef:
    """The course `key` as the rest of the code takes it (no staff roles: a tool acts as its organization's tool)."""
    found = await lti_course(session, grant, key)
    return CourseRef(found.id, grant.organization_id, found.external_id, frozenset())
