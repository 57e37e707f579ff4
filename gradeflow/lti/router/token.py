"""The LTI Advantage token endpoint: OAuth 2.0 client credentials with a JWT client assertion (RFC 7523)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gradeflow.access.identity import Principal
from gradeflow.core.errors import RateLimited
from gradeflow.http.deps import SessionDep, SettingsDep
from gradeflow.lti.router.deps import base_url
from gradeflow.lti.schemas.tools import TokenErrorOut, TokenOut, token_url
from gradeflow.lti.service import tokens
from gradeflow.lti.service.tokens import TokenError

router = APIRouter(tags=["lti"])

_FORM = "application/x-www-form-urlencoded"
# RFC 6749 section 5.1: token answers, and their errors, are never cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FIELDS = 20
_MAX_FORM_BYTES = 64 * 1024  # an assertion is a few KB; the API's body limit is far larger


def _error_doc(description: str) -> dict[str, Any]:
    return {"model": TokenErrorOut, "description": description}


_REQUEST_BODY = {
    "required": True,
    "content": {
        _FORM: {
            "schema": {
                "type": "object",
                "required": ["grant_type", "client_assertion_type", "client_assertion"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "client_assertion_type": {"type": "string", "enum": [tokens.ASSERTION_TYPE]},
                    "client_assertion": {"type": "string", "description": "A JWT signed by the tool (header kid)."},
                    "scope": {"type": "string", "description": "Space-separated scopes (default: all the tool's)."},
                    "client_id": {"type": "string", "description": "Optional; must be the assertion's sub."},
                },
            }
        }
    },
}


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_NO_STORE | (headers or {}))


def _refused(exc: TokenError) -> JSONResponse:
    return _answer(exc.status, {"error": exc.error, "error_description": exc.description})


async def _form(request: Request) -> dict[str, list[str]]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        raise TokenError("invalid_request", f"Send the parameters as {_FORM}.")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise TokenError("invalid_request", f"The form is over {_MAX_FORM_BYTES // 1024} KB.")
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except ValueError as exc:  # not UTF-8, or too many fields
        raise TokenError("invalid_request", "The form is not UTF-8 or has too many parameters.") from exc


@router.post(
    "/lti/token",
    response_model=TokenOut,
    responses={
        400: _error_doc("invalid_request, unsupported_grant_type or invalid_scope."),
        401: _error_doc("invalid_client: the client assertion was not accepted (the description says why)."),
        429: _error_doc("Too many token requests for this tool; retry after `Retry-After` seconds."),
        503: _error_doc("The replay cache is unreachable; retry."),
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def token(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """An access token for a registered LTI tool (LTI Advantage, 1EdTech Security Framework 1.0 section 4.1).

    The client assertion is a JWT signed (RS256/384/512, ES256/384) by a key of the tool's JWKS named by its header
    `kid`, with `iss` = `sub` = the tool's client id, `aud` the token URL (this endpoint's absolute URL), `exp` within
    an hour, `iat` not in the future and a `jti` never used before. The token is granted the scopes asked for that
    the tool may have (`invalid_scope` if none) and lasts `expires_in` seconds. Rate limited per tool like an API
    key."""
    try:
        assertion = tokens.read_request(await _form(request), settings.limits.max_credential_bytes)
        tool = await tokens.find_client(session, assertion)
        await request.app.state.limiter.check(Principal(tool.organization_id, "key", tokens.tool_actor(tool.id)))
        issued = await tokens.issue(
            session,
            request.app.state.redis,
            tool,
            assertion,
            token_url=token_url(base_url(request, settings)),
            targets=settings.webhooks,
            leeway=settings.token_leeway_seconds,
        )
    except TokenError as exc:
        return _refused(exc)
    except RateLimited as exc:
        body = {"error": "temporarily_unavailable", "error_description": exc.detail}
        return _answer(429, body, {"Retry-After": str(exc.retry_after or 1)})
    out = TokenOut(access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope)
    return _answer(200, out.model_dump())
