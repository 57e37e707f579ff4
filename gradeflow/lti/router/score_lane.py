"""The common case of a tool's `POST /lti/courses/{course}/lineitems/{line_item}/scores`, answered in front of the
framework's routing and dependency solving (which cost a score write many times its own work), as the native score
PUT's fast lane (gradeflow/scores/router/fast_lane.py) does for the PUT.

`ScoreLane` is ASGI middleware, registered right after `FastLane` (inside the request ids, metrics and access log,
and the size limits, which apply to it unchanged). It recognises exactly this method and path shape and answers
only when every one of these holds:
- the access token's grant was found valid within the last second (`tokens.known_grant`) and holds the score
  scope, and the course is one this process resolved for a tool before (`ags.known_course`) and the tool may
  still reach;
- the body is a JSON object sent as the score media type (or application/json) that validates as `ScoreBody`
  and is the common case (graded, with a score; a comment, if any, to set as feedback);
- the write is the common case (`external.post_common_score`, one statement).
Anything else (any doubt, any error) goes to the app with the body as it came, so every rule and every error
answer stays in one place: the route, which stays declared there (and in the OpenAPI document). The answer is
the route's, and the route is set in the scope for the metrics and the access log line. The rate limit is
counted as the route counts it and its 429 comes from the app's own error handler.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gradeflow.access.identity import Principal
from gradeflow.core.errors import RateLimited
from gradeflow.core.paging import BIGINT
from gradeflow.lti.router.deps import base_url
from gradeflow.lti.schemas.ags import SCORE_MEDIA_TYPE, ScoreBody
from gradeflow.lti.scopes import Scope as LtiScope
from gradeflow.lti.service import ags, tokens
from gradeflow.scores.router.fast_lane import _fields, _read_body, _replay  # the native lane's request reading
from gradeflow.scores.service import external

log = logging.getLogger(__name__)

_MEDIA_TYPES = (SCORE_MEDIA_TYPE.encode(), b"application/json")


ROUTE = "/lti/courses/{course}/lineitems/{line_item}/scores"
# The route's own pattern (Starlette's `{name}` is `[^/]+`), on the decoded path.
_PATH = re.compile(r"^/lti/courses/([^/]+)/lineitems/([^/]+)/scores$")


class _Outcome(enum.Enum):
    ANSWERED = enum.auto()
    APP = enum.auto()  # for the app to answer
    NOT_COMMON = enum.auto()  # for the app to answer: post_common_score found it is not the common case


class ScoreLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        try:
            outcome = await self._answer(scope, receive, send, match.groups(), received)
        except Exception:  # nothing was sent nor written: the app takes the request and answers any error
            log.debug("the AGS score lane failed; the app takes the request", exc_info=True)
            outcome = _Outcome.APP
        if outcome is _Outcome.ANSWERED:
            return
        token = external.NOT_COMMON.set(outcome is _Outcome.NOT_COMMON)
        try:
            await self.app(scope, _replay(received, receive), send)
        finally:
            external.NOT_COMMON.reset(token)
        if self.route is None:
            # The route as the app's router matched it (what the metrics and the access log name): until the app
            # has answered one such request, the lane leaves every request to it.
            route = scope.get("route")
            if getattr(route, "path", None) == ROUTE and "POST" in (getattr(route, "methods", None) or ()):
                self.route = route

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, path: tuple[str, ...], received: list[Message]
    ) -> _Outcome:
        """Answer the request when it is the common case; else nothing is sent nor written, and `received` holds
        what was read of the body."""
        app: Any = scope["app"]
        route = self.route
        if route is None:
            return _Outcome.APP
        fields = _fields(scope["headers"])
        if fields is None:
            return _Outcome.APP
        scheme, _, secret = fields.get(b"authorization", b"").decode("latin-1").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(tokens.ACCESS_TOKEN_PREFIX):
            return _Outcome.APP
        settings = app.state.settings
        if len(secret) > settings.limits.max_credential_bytes:
            return _Outcome.APP
        grant = tokens.known_grant(secret)
        if grant is None or LtiScope.AGS_SCORE not in grant.scopes:
            return _Outcome.APP
        course, line_item = path
        if not (line_item.isascii() and line_item.isdigit() and 0 < int(line_item) <= BIGINT[-1]):
            return _Outcome.APP
        ref = ags.known_course(grant, course)
        if ref is None:
            return _Outcome.APP
        content_type = fields.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in _MEDIA_TYPES:
            return _Outcome.APP
        body = await _read_body(receive, received)
        if body is None:
            return _Outcome.APP
        data = orjson.loads(body)
        if not isinstance(data, dict):
            return _Outcome.APP
        command = ScoreBody.model_validate(data).command(ref, grant.tool_id, int(line_item))
        try:
            await app.state.limiter.check(Principal(grant.organization_id, "key", grant.actor))
        except RateLimited as exc:
            scope["route"] = route
            handlers = app.exception_handlers
            handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
            await (await handler(Request(scope, receive), exc))(scope, receive, send)
            return _Outcome.ANSWERED
        if not await external.post_common_score(app.state.engine, app.state.redis, ref, command, grant.actor):
            return _Outcome.NOT_COMMON
        scope["route"] = route  # what the metrics and the access log line name, as for the route
        url = f"{base_url(Request(scope), settings)}/lti/courses/{quote(course, safe='')}/lineitems/{line_item}"
        answer = {"resultUrl": f"{url}/results?{urlencode({'user_id': command.score.learner})}"}
        await Response(orjson.dumps(answer), media_type="application/json")(scope, receive, send)
        return _Outcome.ANSWERED
