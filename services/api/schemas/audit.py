"""Audit entries as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
