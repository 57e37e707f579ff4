"""The common case of a tool's `POST /lti/courses/{course}/lineitems/{line_item}/scores`, answered in front of the
framework's routing and dependency solving (which cost a score write many times its own work), as the native score
PUT's fast lane (gradeflow/scores/router/fast_lane.py) does for the PUT.

`ScoreLane` is ASGI middleware, registered right after `FastLane` (inside the request ids, metrics and access log,
and the size limits, which apply to it unchanged). It recognises exactly this method and path shape and answers
only when every one of these holds:
- the access token's grant is valid (`tokens.current_grant`: cached for a second, then looked up once for all
  the requests waiting on it) and holds the score scope, and the course is one this process resolved for a tool
  before (`ags.known_course`) and the tool may still reach;
- the body is a JSON object sent as the score media type (or application/json) that validates as `ScoreBody`
  and is the common case (graded, with a score; a comment, if any, to set as feedback);
- the write is the common case (`external.post_common_score`, one statement with the posts of concurrent
  requests).
Anything else (any doubt, any error) goes to the app with the body as it came, so every rule and every error
answer stays in one place: the route, which stays declared there (and in the OpenAPI document). The answer is
the route's, and the route is set in the scope for the metrics and the access log line. The rate limit is
counted as the route counts it and its 429 comes from the app's own error handler.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from starlette.requests import Request

from gradeflow.access.identity import Principal
from gradeflow.core.paging import BIGINT
from gradeflow.http import lanes
from gradeflow.lti.router.ags import line_item_url, score_answer
from gradeflow.lti.schemas.ags import SCORE_MEDIA_TYPE, ScoreBody
from gradeflow.lti.scopes import Scope as LtiScope
from gradeflow.lti.service import ags, tokens
from gradeflow.scores.service import external

log = logging.getLogger(__name__)

_MEDIA_TYPES = (SCORE_MEDIA_TYPE.encode(), b"application/json")


ROUTE = "/lti/courses/{course}/lineitems/{line_item}/scores"
# The route's own pattern (Starlette's `{name}` is `[^/]+`), on the decoded path.
_PATH = re.compile(r"^/lti/courses/([^/]+)/lineitems/([^/]+)/scores$")


class ScoreLane(lanes.Lane):
    METHOD = "POST"
    ROUTE = ROUTE
    PATH = _PATH
    NOT_COMMON = external.NOT_COMMON

    async def answer(self, call: lanes.Call) -> lanes.Outcome:
        """Answer the request when it is the common case; else nothing is sent nor written, and `call.received`
        holds what was read of the body."""
        app: Any = call.scope["app"]
        fields = lanes.header_fields(call.scope["headers"])
        if fields is None:
            return lanes.Outcome.APP
        settings = app.state.settings
        secret = lanes.bearer(fields, tokens.ACCESS_TOKEN_PREFIX, settings.limits.max_credential_bytes)
        if secret is None:
            return lanes.Outcome.APP
        try:
            grant = await tokens.current_grant(app.state.sessionmaker, secret)
        except Exception:  # e.g. the database is away: the app answers as it does
            log.debug("the AGS score lane could not look its token up; the app takes the request", exc_info=True)
            return lanes.Outcome.APP
        if grant is None or LtiScope.AGS_SCORE not in grant.scopes:
            return lanes.Outcome.APP
        course, line_item = call.path
        if not (line_item.isascii() and line_item.isdigit() and 0 < int(line_item) <= BIGINT[-1]):
            return lanes.Outcome.APP
        ref = ags.known_course(grant, course)
        if ref is None or lanes.media_type(fields) not in _MEDIA_TYPES:
            return lanes.Outcome.APP
        body = await lanes.read_body(call.receive, call.received)
        if body is None:
            return lanes.Outcome.APP
        data = orjson.loads(body)
        if not isinstance(data, dict):
            return lanes.Outcome.APP
        command = ScoreBody.model_validate(data).command(ref, grant.tool_id, int(line_item))
        if await call.rate_limited(app.state.limiter, Principal(grant.organization_id, "key", grant.actor)):
            return lanes.Outcome.ANSWERED
        writes = app.state.tool_score_writes
        if not await external.post_common_score(writes, app.state.redis, ref, command, grant.actor):
            return lanes.Outcome.NOT_COMMON
        url = line_item_url(Request(call.scope), settings, course, int(line_item))
        await call.answer_json(orjson.dumps(score_answer(url, command.score.learner)))
        return lanes.Outcome.ANSWERED
