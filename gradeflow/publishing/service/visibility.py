"""How staff see whether learners see a result (scores and course grades alike).

The SQL rules it rests on live in gradeflow/publishing/repository/visibility.py: the repositories that read
publication state import them from there, as SQL belongs below the service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict


class PublicationState(TypedDict):
    """Whether learners see a result. A TypedDict, not a dataclass: the views that hold it are validated as
    mappings and as objects alike."""

    state: Literal["unpublished", "published", "changed"]
    published_at: datetime | None


def state(published_at: datetime | None, changed_since: bool | None) -> PublicationState:
    """unpublished; published; or changed since published (learners still see the published one)."""
    if published_at is None:
        return {"state": "unpublished", "published_at": None}
    return {"state": "changed" if changed_since else "published", "published_at": published_at}
