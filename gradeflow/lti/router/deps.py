"""Dependencies of the LTI service routes (/lti/courses/...): the tool's access token, its scopes, its course.

    grant: Annotated[LtiGrant, require(Scope.AGS_SCORE)]           # 401 / 403 as RFC 6750 says
    ref = await course_for(session, grant, course)                  # 404 unless the tool may reach the course

Answers to a missing, unknown or expired token are 401 with `WWW-Authenticate: Bearer error="invalid_token"`; to a
token without the scope, 403 with `error="insufficient_scope"` and the scopes that would do. Each tool is rate
limited like an API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from gradeflow.access.identity import Principal
from gradeflow.core.settings import Settings
from gradeflow.http.deps import SessionDep, SettingsDep
from gradeflow.lti.scopes import Scope
from gradeflow.lti.service import tokens
from gradeflow.lti.service.tokens import LtiGrant, course_for, lti_course

__all__ = ["LtiGrant", "LtiGrantDep", "base_url", "course_for", "lti_course", "lti_grant", "require"]

_REALM = 'Bearer realm="gradeflow-lti"'

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="LtiAccessToken",
    description="An LTI access token (`gft_...`) from `POST /lti/token`.",
)


def _unauthenticated(detail: str, error: str | None = "invalid_token") -> HTTPException:
    challenge = _REALM if error is None else f'{_REALM}, error="{error}", error_description="{detail}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def lti_grant(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> LtiGrant:
    """The grant of the request's access token; 401 when there is none, or it is unknown, expired or its tool gone."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthenticated("Send Authorization: Bearer <access token from POST /lti/token>.", None)
    secret = credentials.credentials
    grant = None
    if len(secret) <= settings.limits.max_credential_bytes:
        grant = await tokens.grant_for(session, secret)
    if grant is None:
        raise _unauthenticated("The access token is unknown or expired: request a new one.")
    await request.app.state.limiter.check(Principal(grant.organization_id, "key", grant.actor))
    return grant


LtiGrantDep = Annotated[LtiGrant, Depends(lti_grant)]


def require(scope: Scope, *alternatives: Scope) -> Any:
    """A dependency (use in Annotated[LtiGrant, ...]): the grant, if it holds one of the scopes; 403 otherwise."""
    wanted = (scope, *alternatives)

    async def scoped(grant: LtiGrantDep) -> LtiGrant:
        if not any(s in grant.scopes for s in wanted):
            names = " ".join(wanted)
            raise HTTPException(
                403,
                f"The access token was not granted a scope this needs: {names}.",
                headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{names}"'},
            )
        return grant

    return Depends(scoped)


def base_url(request: Request, settings: Settings) -> str:
    """The API's address as clients reach it (GRADEFLOW_PUBLIC_URL, else the request's own), without a final /."""
    return (settings.public_url or str(request.base_url)).rstrip("/")
