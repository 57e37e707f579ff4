"""Per-request (or per-job) context that log lines and audit records carry."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)
# The score import being applied: its audit entries carry its id (what a revert of it undoes).
import_id: ContextVar[int | None] = ContextVar("import_id", default=None)
