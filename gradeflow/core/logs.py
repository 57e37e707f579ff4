"""Structured logs: one JSON object per line, with the request id or job id, and nothing secret.

Both processes call `configure()` once at start. Every line carries `request_id` (the API, from
`X-Request-ID`) and `job_id` (the worker). Messages and tracebacks pass through `redact()`, which
removes API keys, user tokens, signed URLs, passwords and e-mail addresses whatever logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import IO, Any

from pythonjsonlogger.orjson import OrjsonFormatter

from gradeflow.core import context

_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # A URL with a query string may be signed (S3 presigned links) or carry a learner's address.
    (re.compile(r"\b(https?://[^\s?\"']+)\?[^\s\"']*"), r"\1?[redacted]"),
    (re.compile(r"\bgfk_[A-Za-z0-9_-]+"), "gfk_[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[token]"),
    (re.compile(r"(?i)\b(bearer)\s+\S+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(password|passwd|secret|secret_key|access_key)(['\"]?\s*[:=]\s*)[^\s,;]+"), r"\1\2[redacted]"),
    # user:password@ in connection strings
    (re.compile(r"(\w+://[^:/\s@]+):[^@\s/]+@"), r"\1:[redacted]@"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# A record logged with `extra={NOTHING_TO_REDACT: True}` is built only from values that cannot hold a secret
# (the access line: method, route template, status, duration) and skips redact(), which would cost the access
# line several times its own formatting.
NOTHING_TO_REDACT = "nothing_to_redact"


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.request_id.get()
        record.job_id = context.job_id.get()
        message = record.getMessage()
        safe = record.__dict__.pop(NOTHING_TO_REDACT, False)
        record.msg, record.args = (message if safe else redact(message)), None
        return True


class _Formatter(OrjsonFormatter):
    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return redact(text if isinstance(text, str) else "\n".join(text))


FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s"


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing JSON lines (with request and job ids, redacted) to `stream` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_Context())
    handler.setFormatter(_Formatter(FIELDS, rename_fields={"levelname": "level", "name": "logger"}, timestamp="time"))
    return handler


def configure(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) as JSON lines; returns the handler."""
    handler = json_handler(stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # A line names no source file, thread or process (FIELDS): the records need not look them up, which
    # would cost the access line (every request writes one) a third of its time (the logging HOWTO's
    # "Optimization" list).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # Access lines come from our own middleware (route template, no query string).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
