"""Statements built from optional conditions: each value gets its own positional placeholder, so
every combination of filters is planned for what it asks (no `$1 IS NULL OR ...`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Params:
    """The values of a statement's placeholders; calling it with a value adds one and says where."""

    def __init__(self, *first: Any) -> None:
        self.values: list[Any] = list(first)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def like_pattern(search: str) -> str:
    """`search` anywhere in a text, matched literally by (I)LIKE."""
    return "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def contains(columns: Sequence[str], search: str, params: Params) -> str:
    """Any of `columns` contains `search`, case-insensitively (in any script)."""
    p = params(like_pattern(search))
    return "(" + " OR ".join(f"{c} ILIKE {p}" for c in columns) + ")"
