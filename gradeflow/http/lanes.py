"""What the ASGI fast lanes (the score PUT's, the LTI score POST's) share: reading the few header fields
and the body they decide on, and handing the app a request whose body they have already read."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gradeflow.access.identity import Principal
from gradeflow.core.errors import RateLimited
from gradeflow.http.rate_limits import RateLimiter

log = logging.getLogger(__name__)

# The request header fields a lane reads; a request sending any of them twice is left to the app.
READ = (b"authorization", b"content-type", b"idempotency-key")


def header_fields(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes] | None:
    """The header fields a lane reads (names are lower case in ASGI); None when one is sent twice."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in READ:
            if name in found:
                return None
            found[name] = value
    return found


async def read_body(receive: Receive, received: list[Message]) -> bytes | None:
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


def replay(received: list[Message], receive: Receive) -> Receive:
    """`receive` with the messages the lane has read first."""
    pending = list(received)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def bearer(fields: dict[bytes, bytes], prefix: str, max_bytes: int) -> str | None:
    """The credential of the Authorization field, read as the routes' HTTPBearer reads it, when it starts with
    `prefix` and is at most `max_bytes` long; else None (the app answers)."""
    scheme, _, credential = fields.get(b"authorization", b"").decode("latin-1").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential.startswith(prefix) or len(credential) > max_bytes:
        return None
    return credential


def media_type(fields: dict[bytes, bytes]) -> bytes | None:
    """The Content-Type field's media type in lower case (None: not sent)."""
    value = fields.get(b"content-type")
    return None if value is None else value.split(b";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Call:
    """A request a lane may answer: the ASGI triple, the path's parameters, what the lane has read of the body
    (for the app, when the lane leaves the request to it) and the route the app's router matches."""

    scope: Scope
    receive: Receive
    send: Send
    path: tuple[str, ...]
    received: list[Message]
    route: BaseRoute

    async def rate_limited(self, limiter: RateLimiter, principal: Principal) -> bool:
        """Count the request against `principal`'s rate limit, as the route does; over it, answer the app's own
        429 and say so."""
        try:
            await limiter.check(principal)
        except RateLimited as exc:
            await self.app_error(exc)
            return True
        return False

    async def app_error(self, exc: Exception) -> None:
        """Answer `exc` for the route with the app's own exception handler (found as Starlette finds it)."""
        scope = self.scope
        scope["route"] = self.route
        handlers = scope["app"].exception_handlers
        handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
        await (await handler(Request(scope, self.receive), exc))(scope, self.receive, self.send)

    async def answer_json(self, content: bytes) -> None:
        """A 200 with `content` as application/json for the route (named in the scope for the metrics and the
        access log line): what the routes' JSON response sends, without building one."""
        self.scope["route"] = self.route
        headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": content})


class Outcome(enum.Enum):
    ANSWERED = enum.auto()
    APP = enum.auto()  # for the app to answer
    NOT_COMMON = enum.auto()  # for the app to answer: the use case found it is not the common case


class Lane:
    """ASGI middleware that answers one route's common case itself and leaves every other request, with
    the body as it came, to the app (where every rule and every error answer stays). A subclass names the
    route (`METHOD`, `ROUTE`, `PATH`: the route's pattern on the decoded path), the flag that tells the
    route the lane found the request not common (`NOT_COMMON`), and decides in `answer`."""

    METHOD: ClassVar[str]
    ROUTE: ClassVar[str]
    PATH: ClassVar[re.Pattern[str]]
    NOT_COMMON: ClassVar[ContextVar[bool]]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != self.METHOD or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        match = self.PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        outcome = Outcome.APP
        sent = False

        async def tracked_send(message: Message) -> None:
            nonlocal sent
            sent = True
            await send(message)

        if self.route is not None:
            try:
                outcome = await self.answer(Call(scope, receive, tracked_send, match.groups(), received, self.route))
            except Exception:
                if sent:
                    raise
                # Nothing was sent: the app takes the request and answers any error.
                log.debug("%s failed; the app takes the request", type(self).__name__, exc_info=True)
        if outcome is Outcome.ANSWERED:
            return
        token = self.NOT_COMMON.set(outcome is Outcome.NOT_COMMON)
        try:
            await self.app(scope, replay(received, receive), send)
        finally:
            self.NOT_COMMON.reset(token)
        if self.route is None:
            # The route as the app's router matched it (what the metrics and the access log name): until
            # the app has answered one such request, the lane leaves every request to it.
            route = scope.get("route")
            if getattr(route, "path", None) == self.ROUTE and self.METHOD in (getattr(route, "methods", None) or ()):
                self.route = route

    async def answer(self, call: Call) -> Outcome:
        """Answer the request when it is the common case (through `call`'s answers); else send and write nothing,
        and leave in `call.received` what was read of the body."""
        raise NotImplementedError
