"""Audit entries as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    request_id: str | None
    action: str
    learner: str | None
    assessment: str | None
    item: str | None
    old: Any
    new: Any
    import_id: int | None = Field(None, description="The score import that made this change, if one did.")
