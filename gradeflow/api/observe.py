"""ASGI middleware: request metrics and one access log line per request, and a cap on the requests
one process answers at once (past it: 503 with Retry-After at once, never a silent queue)."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gradeflow.core import logs, metrics
from gradeflow.http.errors import overloaded

log = logging.getLogger("gradeflow.access")


# Methods named in metrics and log lines; any other token a client sends counts as OTHER (bounded labels, and
# a line built only from these, route templates and numbers holds nothing to redact).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(scope: Scope) -> str:
    # The route's template (bounded label values); the path itself may hold learners' ids.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class Observe:
    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        # The metrics' children by their labels (bounded: methods, route templates, statuses), looked up once.
        self.children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _metrics(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        key = (method, route, status)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = (
                metrics.REQUESTS.labels(method=method, route=route, status=str(status)),
                metrics.REQUEST_SECONDS.labels(method=method, route=route),
            )
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            metrics.REJECTED.labels(reason="overload").inc()
            response = overloaded(None, f"More than {self.max_in_flight} requests in progress; retry shortly.")
            await response(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = _route(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            counted, timed = self._metrics(method, route, status)
            counted.inc()
            timed.observe(elapsed)
            log.info(
                "%s %s %s %.1f ms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    logs.NOTHING_TO_REDACT: True,
                },
            )
