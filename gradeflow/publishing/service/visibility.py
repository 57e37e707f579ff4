"""How staff see whether learners see a result (scores and course grades alike).

The SQL rules it rests on live in gradeflow/publishing/repository/visibility.py (imported from here by the domains
that read them, until they import the repository)."""

from __future__ import annotations

from typing import Any

from gradeflow.publishing.repository.visibility import (
    AWAITS_CONFIRMATION,
    CHANGED,
    CONFIRMED_OR_AUTOMATIC,
    ITEMS_JSON,
    feedback_digest_sql,
)

__all__ = ["AWAITS_CONFIRMATION", "CHANGED", "CONFIRMED_OR_AUTOMATIC", "ITEMS_JSON", "feedback_digest_sql", "state"]


def state(published_at: Any, changed_since: bool | None) -> dict[str, Any]:
    """unpublished; published; or changed since published (learners still see the published one)."""
    if published_at is None:
        return {"state": "unpublished", "published_at": None}
    return {"state": "changed" if changed_since else "published", "published_at": published_at}
