"""What the ASGI fast lanes (the score PUT's, the LTI score POST's) share: reading the few header fields
and the body they decide on, and handing the app a request whose body they have already read."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import ClassVar

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


async def app_error(scope: Scope, receive: Receive, send: Send, route: BaseRoute, exc: Exception) -> None:
    """Answer `exc` for `route` with the app's own exception handler (found as Starlette finds it)."""
    scope["route"] = route
    handlers = scope["app"].exception_handlers
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
    await (await handler(Request(scope, receive), exc))(scope, receive, send)


async def answer_json(send: Send, content: bytes) -> None:
    """A 200 with `content` as application/json: what the routes' JSON response sends, without building one."""
    headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})


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
                outcome = await self.answer(scope, receive, tracked_send, match.groups(), received, self.route)
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

    async def answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: tuple[str, ...],
        received: list[Message],
        route: BaseRoute,
    ) -> Outcome:
        """Answer the request when it is the common case (set `scope["route"] = route` first); else send and
        write nothing, and leave in `received` what was read of the body."""
        raise NotImplementedError
