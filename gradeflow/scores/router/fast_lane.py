"""The common case of `PUT /v1/courses/{course}/assessments/{assessment}/scores/{learner}`, answered
without the framework's routing and dependency solving (which cost a score write many times its own work).

`FastLane` is ASGI middleware, the innermost of the app's (inside request ids, metrics and the access log,
and the size limits, which therefore apply to it unchanged). It recognises exactly this method and path shape
and answers only when every one of these holds:
- the caller is a valid API key (`auth.current_key`: cached for a second, then looked up once for all the
  requests waiting on it) and the course one this process resolved for such a key before (`scores.known_course`);
- the body is a JSON object that validates as `ScoreIn` with `earned` (no items) and no Idempotency-Key
  is sent;
- the write is the common case (`scores.put_common`, one statement with the writes of concurrent requests:
  no items, no late policy, the attempt not cancelled).
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

import logging
import re
from typing import Any

import orjson
from pydantic import TypeAdapter

from gradeflow.access.service.auth import KEY_PREFIX, current_key
from gradeflow.core.commands import ExternalId
from gradeflow.courses.schemas.records import ScoreOut
from gradeflow.http import lanes
from gradeflow.http.deps import actor
from gradeflow.scores.commands import ScoreIn
from gradeflow.scores.service import scores

log = logging.getLogger(__name__)

ROUTE = "/v1/courses/{course}/assessments/{assessment}/scores/{learner}"
# The route's own pattern (Starlette's `{name}` is `[^/]+`), on the decoded path.
_PATH = re.compile(r"^/v1/courses/([^/]+)/assessments/([^/]+)/scores/([^/]+)$")
_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
_SCORE_OUT: TypeAdapter[ScoreOut] = TypeAdapter(ScoreOut)


class FastLane(lanes.Lane):
    METHOD = "PUT"
    ROUTE = ROUTE
    PATH = _PATH
    NOT_COMMON = scores.NOT_COMMON

    async def answer(self, call: lanes.Call) -> lanes.Outcome:
        """Answer the request when it is the common case; else nothing is sent nor written, and `call.received`
        holds what was read of the body."""
        app: Any = call.scope["app"]
        fields = lanes.header_fields(call.scope["headers"])
        if fields is None or b"idempotency-key" in fields:
            return lanes.Outcome.APP
        # As `auth.authenticate` reads the credential.
        credential = lanes.bearer(fields, KEY_PREFIX, app.state.settings.limits.max_credential_bytes)
        if credential is None:
            return lanes.Outcome.APP
        try:
            principal = await current_key(app.state.sessionmaker, credential)
        except Exception:  # e.g. the database is away: the app answers as it does
            log.debug("the score PUT's fast lane could not look its key up; the app takes the request", exc_info=True)
            return lanes.Outcome.APP
        if principal is None:
            return lanes.Outcome.APP
        course, assessment, learner = call.path
        ref = scores.known_course(principal, course)
        if ref is None or lanes.media_type(fields) not in (None, b"application/json"):
            return lanes.Outcome.APP
        try:
            assessment = _EXTERNAL_ID.validate_python(assessment)
            learner = _EXTERNAL_ID.validate_python(learner)
        except Exception:  # the app answers its 422
            return lanes.Outcome.APP
        body = await lanes.read_body(call.receive, call.received)
        if body is None:
            return lanes.Outcome.APP
        try:
            # As the route's body: JSON (orjson refuses what it does not read exactly as json.loads does:
            # NaN, huge numbers, other encodings; those go to the app), validated as Python objects.
            data = orjson.loads(body)
            command = ScoreIn.model_validate(data) if isinstance(data, dict) else None
        except Exception:  # any doubt: the app answers, with its own error
            return lanes.Outcome.APP
        if command is None or command.items is not None:
            return lanes.Outcome.APP
        if await call.rate_limited(app.state.limiter, principal):
            return lanes.Outcome.ANSWERED
        try:
            # With the writes of concurrent requests (one statement, its own transaction): no session.
            view = await scores.put_common(
                app.state.score_writes, app.state.redis, ref, assessment, learner, command, actor(principal)
            )
        except Exception:  # the app does it again (the PUT is idempotent) and answers any error
            log.debug("the score PUT's fast lane failed; the app takes the request", exc_info=True)
            return lanes.Outcome.APP
        if view is None:
            return lanes.Outcome.NOT_COMMON
        await call.answer_json(
            _SCORE_OUT.dump_json(_SCORE_OUT.validate_python(view, from_attributes=True), by_alias=True)
        )
        return lanes.Outcome.ANSWERED
