"""Request limits: header fields over the limit (431, in uvicorn while they arrive and in the app),
bodies over the limit (413, declared or streamed), paths PostgreSQL cannot hold (404)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gradeflow.core.settings import get_settings
from gradeflow.http.errors import problem


def headers_too_large(max_bytes: int) -> JSONResponse:
    """The one 431 answer, sent by the app (HeadLimits) and by the server protocol alike."""
    return problem(
        431,
        "headers-too-large",
        "Request header fields too large",
        f"The request's header fields together exceed the limit of {max_bytes} bytes.",
    )


class HeadLimits:
    """Answers before any work: 431 when the header fields together exceed `max_header_bytes`, 404 for
    a path with a NUL character (no resource has one, and PostgreSQL cannot compare text holding one)."""

    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # As sent: "name: value\r\n" per field.
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_header_bytes:
                await headers_too_large(self.max_header_bytes)(scope, receive, send)
                return
            if "\x00" in scope["path"]:
                await problem(404, "not-found", "Not found", "No resource has a NUL character in its path.")(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "payload-too-large", "Request body too large", f"The limit is {self.max_bytes} bytes.")
        await response(scope, receive, send)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (what `gradeflow api` serves with), refusing a request head that
    grows over the header limit while it is still arriving: httptools itself buffers a head of any
    size before the app sees it. The app applies the exact limit (HeadLimits); here the request line
    and one read's worth of slack are allowed on top, so that memory stays bounded per connection."""

    REQUEST_LINE_BYTES = 8 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().limits.max_header_bytes
        self.head_bytes = 0
        self.in_head = True
        self.refused = False

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # read and dropped until the connection closes, so the client can read the 431
        if self.in_head:
            self.head_bytes += len(data)
        super().data_received(data)
        over = self.head_bytes > self.max_header_bytes + self.REQUEST_LINE_BYTES
        if self.in_head and over and not self.transport.is_closing():
            self._refuse_head()

    def _refuse_head(self) -> None:
        self.refused = True
        response = headers_too_large(self.max_header_bytes)  # its content-type and content-length too
        head = [STATUS_LINE[431]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + response.body)
        # Half-close and drain for a moment: closing at once with unread input would reset the
        # connection and the client might never see the answer.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(1.0, self.transport.close)
