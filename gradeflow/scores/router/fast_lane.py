"""The common case of `PUT /v1/courses/{course}/assessments/{assessment}/scores/{learner}`, answered
without the framework's routing and dependency solving (which cost a score write many times its own work).

`FastLane` is ASGI middleware, the innermost of the app's (inside request ids, metrics and the access log,
and the size limits, which therefore apply to it unchanged). It recognises exactly this method and path shape
and answers only when every one of these holds:
- the caller is a valid API key (`auth.current_key`: cached for a second, then looked up once for all the
  requests waiting on it) and the course one this process resolved for such a key before (`scores.known_course`);
- the body is a JSON object that validates as `ScoreIn` with `earned` (no items) and no Idempotency-Key
  is sent;
- the write is the common case (`scores.put_common`, one statement: no items, no late policy, the
  attempt not cancelled).
Anything else (any doubt, any error) falls through to the app with the body as it came, so every rule and
every error answer stays in one place: the route, which stays declared there (and in the OpenAPI document).
The answer is the route's: the same use case, the same response model and serialization, and the route
set in the scope for the metrics and the access log line. The rate limit is counted the same way and its
429 comes from the app's own error handler.

The follow-up after a write (`followup.ask`, inside put_common as on the route) asks Redis at most once per
course per `followup.DELAY` in a process, not once per PUT. That is safe: the job it asks for runs DELAY
later and refreshes every stale grade of the course (each write marks its learner's grade stale in its own
statement first), a job id dedupes asks from several processes, and stale grades are also found by the
worker's sweep and refreshed on any read of a grade.

Registered in the app factory before any other middleware (`app.add_middleware(FastLane)`: the first added
is the innermost).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gradeflow.access.service.auth import KEY_PREFIX, current_key
from gradeflow.core.commands import ExternalId
from gradeflow.core.errors import RateLimited
from gradeflow.courses.schemas.records import ScoreOut
from gradeflow.http.deps import actor
from gradeflow.scores.commands import ScoreIn
from gradeflow.scores.service import scores

log = logging.getLogger(__name__)

ROUTE = "/v1/courses/{course}/assessments/{assessment}/scores/{learner}"
# The route's own pattern (Starlette's `{name}` is `[^/]+`), on the decoded path.
_PATH = re.compile(r"^/v1/courses/([^/]+)/assessments/([^/]+)/scores/([^/]+)$")
_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
_SCORE_OUT: TypeAdapter[ScoreOut] = TypeAdapter(ScoreOut)
# The request header fields the lane reads; a request sending any of them twice is left to the app.
_READ = (b"authorization", b"content-type", b"idempotency-key")


class _Outcome(enum.Enum):
    ANSWERED = enum.auto()
    APP = enum.auto()  # for the app to answer
    NOT_COMMON = enum.auto()  # for the app to answer: put_common found it is not the common case


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        outcome = await self._answer(scope, receive, send, match.groups(), received)
        if outcome is _Outcome.ANSWERED:
            return
        token = scores.NOT_COMMON.set(outcome is _Outcome.NOT_COMMON)
        try:
            await self.app(scope, _replay(received, receive), send)
        finally:
            scores.NOT_COMMON.reset(token)
        if self.route is None:
            # The route as the app's router matched it (what the metrics and the access log name): until
            # the app has answered one such request, the lane leaves every request to it.
            route = scope.get("route")
            if getattr(route, "path", None) == ROUTE and "PUT" in (getattr(route, "methods", None) or ()):
                self.route = route

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, path: tuple[str, ...], received: list[Message]
    ) -> _Outcome:
        """Answer the request when it is the common case; else nothing is sent nor written, and `received`
        holds what was read of the body."""
        app: Any = scope["app"]
        route = self.route
        if route is None:
            return _Outcome.APP
        fields = _fields(scope["headers"])
        if fields is None or b"idempotency-key" in fields:
            return _Outcome.APP
        # As the route's HTTPBearer reads the header field, and `auth.authenticate` the credential.
        scheme, _, credential = fields.get(b"authorization", b"").decode("latin-1").partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential.startswith(KEY_PREFIX):
            return _Outcome.APP
        if len(credential) > app.state.settings.limits.max_credential_bytes:
            return _Outcome.APP
        try:
            principal = await current_key(app.state.sessionmaker, credential)
        except Exception:  # e.g. the database is away: the app answers as it does
            log.debug("the score PUT's fast lane could not look its key up; the app takes the request", exc_info=True)
            return _Outcome.APP
        if principal is None:
            return _Outcome.APP
        course, assessment, learner = path
        ref = scores.known_course(principal, course)
        if ref is None:
            return _Outcome.APP
        content_type = fields.get(b"content-type")
        if content_type is not None and content_type.split(b";")[0].strip().lower() != b"application/json":
            return _Outcome.APP
        try:
            assessment = _EXTERNAL_ID.validate_python(assessment)
            learner = _EXTERNAL_ID.validate_python(learner)
        except Exception:  # the app answers its 422
            return _Outcome.APP
        body = await _read_body(receive, received)
        if body is None:
            return _Outcome.APP
        try:
            # As the route's body: JSON (orjson refuses what it does not read exactly as json.loads does:
            # NaN, huge numbers, other encodings; those go to the app), validated as Python objects.
            data = orjson.loads(body)
            command = ScoreIn.model_validate(data) if isinstance(data, dict) else None
        except Exception:  # any doubt: the app answers, with its own error
            return _Outcome.APP
        if command is None or command.items is not None:
            return _Outcome.APP
        try:
            await app.state.limiter.check(principal)
        except RateLimited as exc:
            scope["route"] = route
            # The app's own answer (its exception handler, found as Starlette finds it).
            handlers = app.exception_handlers
            handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
            await (await handler(Request(scope, receive), exc))(scope, receive, send)
            return _Outcome.ANSWERED
        try:
            # On the engine: the statement is its own transaction, so the request needs no session.
            view = await scores.put_common(
                app.state.engine, app.state.redis, ref, assessment, learner, command, actor(principal)
            )
        except Exception:  # the app does it again (the PUT is idempotent) and answers any error
            log.debug("the score PUT's fast lane failed; the app takes the request", exc_info=True)
            return _Outcome.APP
        if view is None:
            return _Outcome.NOT_COMMON
        scope["route"] = route  # what the metrics and the access log line name, as for the route
        content = _SCORE_OUT.dump_json(_SCORE_OUT.validate_python(view, from_attributes=True), by_alias=True)
        await Response(content, media_type="application/json")(scope, receive, send)
        return _Outcome.ANSWERED


def _fields(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The header fields the lane reads (names are lower case in ASGI); None when one is sent twice."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _READ:
            if name in found:
                return None
            found[name] = value
    return found


async def _read_body(receive: Receive, received: list[Message]) -> bytes | None:
    """The whole body (its size is capped by BodyLimit around the app); None if the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """`receive` with the messages the lane has read first."""
    pending = list(received)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
