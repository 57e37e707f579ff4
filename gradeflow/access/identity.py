"""Who is calling, and the course they may act on: what the rest of the code is handed once authentication and
access are checked.

No imports back into the domains: audit, courses, ... name these in their signatures without pulling in auth
(jwt) or staff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeyRole = Literal["admin", "service"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key of an organization, or a user of its LMS."""

    organization_id: int
    kind: Literal["key", "user"]
    subject: str  # the key's id, or the user's external id (JWT `sub`)
    key_role: KeyRole | None = None

    @property
    def is_key(self) -> bool:
        return self.kind == "key"

    @property
    def is_admin(self) -> bool:
        return self.key_role == "admin"


@dataclass(frozen=True)
class CourseRef:
    """A course the caller may act on, as resolved from its external id."""

    id: int
    organization_id: int
    external_id: str
    roles: frozenset[str]
