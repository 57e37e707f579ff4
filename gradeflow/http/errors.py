"""The one mapping from errors to RFC 9457 application/problem+json."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from gradeflow.core import errors as e

log = logging.getLogger("gradeflow.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:gradeflow:problem:"

_STATUS: list[tuple[type[e.DomainError], int]] = [
    (e.ValidationFailed, 422),
    (e.NotFound, 404),
    (e.PreconditionFailed, 412),
    (e.Conflict, 409),
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.ServiceUnavailable, 503),
    (e.RateLimited, 429),
    (e.TooLarge, 413),
    (e.UnsupportedMediaType, 415),
]

_HTTP_CODES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


class InvalidParam(BaseModel):
    pointer: str | None = Field(default=None, description="JSON pointer (RFC 6901) into the request body.")
    parameter: str | None = Field(default=None, description="Name of the bad query, path or header parameter.")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=[TYPE_PREFIX + "validation"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[InvalidParam] | None = Field(default=None, description="One entry per bad field (422).")


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_errors(errors: list[e.FieldError]) -> list[dict[str, str]]:
    out = []
    for fe in errors:
        key = "pointer" if fe.location == "body" else "parameter"
        out.append({key: fe.pointer, "detail": fe.detail})
    return out


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.DomainError)
    status = next((s for cls, s in _STATUS if isinstance(exc, cls)), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    errors = _field_errors(exc.errors) if isinstance(exc, e.ValidationFailed) else None
    return problem(status, exc.code, exc.title, exc.detail, request, headers, errors=errors, **exc.extra)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return problem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.", request)
    errors = []
    for err in exc.errors():
        where, *path = err.get("loc", ("body",))
        msg = err.get("msg", "invalid")
        if path[-1:] == ["[key]"]:  # pydantic's marker of a bad object key: point at the member, say it is its name
            path, msg = path[:-1], f"Name: {msg}"
        if where == "body":
            errors.append({"pointer": e.json_pointer(path), "detail": msg})
        else:
            errors.append({"parameter": ".".join(str(p) for p in path) or str(where), "detail": msg})
    return problem(
        422,
        e.ValidationFailed.code,
        e.ValidationFailed.title,
        f"{len(errors)} field{'s' if len(errors) != 1 else ''} failed validation",
        request,
        errors=errors,
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's method; list every route on this path.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return problem(exc.status_code, code, title, detail, request, headers)


def _allowed_methods(request: Request) -> set[str]:
    # Built from the OpenAPI document: it lists every method of every path template.
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(request.app.state, "method_table", None)
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), {m.upper() for m in ops})
            for path, ops in request.app.openapi()["paths"].items()
        ]
        request.app.state.method_table = table
    return {m for pattern, methods in table if pattern.match(request.url.path) for m in methods}


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not isinstance(exc, OperationalError):
        return await _unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "The database is unreachable; retry shortly.",
        request,
        {"Retry-After": str(e.ServiceUnavailable.retry_after)},
    )


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    log.warning("no database connection free within the pool timeout")
    return overloaded(request, "Every database connection is busy; retry shortly.")


def overloaded(request: Request | None, detail: str) -> JSONResponse:
    return problem(503, "overloaded", "Service overloaded", detail, request, {"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal", "Internal error", "An unexpected error occurred.", request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(ConnectionError, _database_down)
    app.add_exception_handler(PoolTimeout, _overloaded)
    app.add_exception_handler(Exception, _unexpected)


def _doc(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


# Documented on every v1 operation.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("Malformed JSON or an unusable request."),
    401: _doc("Missing, unknown, revoked or expired credentials."),
    403: _doc("The caller's roles do not allow this."),
    404: _doc("Not found, or not the caller's to see."),
    405: _doc("Method not allowed on this path."),
    413: _doc("Request body, or the work it asks for, over a configured limit."),
    422: _doc("Validation failed; `errors` names each bad field by JSON pointer."),
    429: _doc("Too many requests for this credential; retry after `Retry-After` seconds."),
    431: _doc("Request header fields together over the configured limit."),
    503: _doc("A backing service is unreachable or the service is overloaded; retry after `Retry-After` seconds."),
}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _doc("Conflicts with the current state.")}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: _doc("The If-Match version is stale.")}
UNSUPPORTED_MEDIA: dict[int | str, dict[str, Any]] = {415: _doc("The body is not of a media type the operation takes.")}
