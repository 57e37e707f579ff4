"""Import shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from gradeflow.http.schemas import Out


class ImportOut(BaseModel):
    id: int
    status: str
    dry_run: bool
    file_name: str | None
    mapping: dict[str, str]
    result: dict[str, Any] | None
    error: str | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class RevertOut(Out):
    reverted: int
    kept: list[dict[str, Any]]
