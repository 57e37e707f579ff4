"""Keyset pagination: an opaque cursor holding the last row's sort key."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gradeflow.core.errors import ValidationFailed
from gradeflow.core.validation import clean_text

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The key a cursor holds; one whose text PostgreSQL could not take (a forged one) is refused here,
    once for every list, so no caller sends it to the database (a 500)."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = clean_text(json.loads(raw))  # a text PostgreSQL cannot store would be a 500
    except (ValueError, UnicodeDecodeError) as exc:
        raise not_ours() from exc
    return key


BIGINT = range(-(2**63), 2**63)


def not_ours() -> ValidationFailed:
    return ValidationFailed.one("cursor", "Not a cursor this API issued.", "query")


def last_id_after(cursor: str | None) -> int:
    """Decode an id-keyed cursor (0 = start)."""
    key = decode_cursor(cursor)
    if key is None:
        return 0
    if not isinstance(key, int) or isinstance(key, bool) or key not in BIGINT:
        raise not_ours()
    return key


def pair_after(cursor: str | None) -> tuple[Any, int] | None:
    """Decode a (sort key, id) cursor; the caller checks the key's kind."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    if not (isinstance(key, list) and len(key) == 2 and type(key[1]) is int and key[1] in BIGINT):
        raise not_ours()
    return key[0], key[1]


def page_of(rows: list[T], limit: int, key: Any) -> Page[T]:
    """Rows were fetched with limit+1; the extra row means there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(key(rows[-1])))
    return Page(rows, None)
