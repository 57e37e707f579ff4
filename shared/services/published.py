"""How staff see whether learners see a result (scores and course grades alike)."""

from __future__ import annotations

from typing import Any


def state(published_at: Any, changed_since: bool | None) -> dict[str, Any]:
    """unpublished; published; or changed since published (learners still see the published one)."""
    if published_at is None:
        return {"state": "unpublished", "published_at": None}
    return {"state": "changed" if changed_since else "published", "published_at": published_at}
