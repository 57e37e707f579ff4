"""Names. How Gradeflow names a learner wherever it prints or says a name (diplomas, reports, lists, ZIP
entry names, e-mail greetings): the full name, else the given and family names, else the username, else
the learner's id. One rule, as SQL (`learner_name_sql`) and its Python twin (`learner_name`); an empty or
blank value counts as none.

And the one rule for a part of a downloaded file's name (reports, diplomas, learners' documents, ZIP
entries): `safe_name`. Non-ASCII letters are kept; `gradeflow.storage.s3.attachment` keeps the header ASCII."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def learner_name_sql(e: str = "e") -> str:
    """SQL: the name of the learner of enrollment alias `e`."""
    return (
        f"coalesce(nullif(btrim({e}.full_name), ''),"
        f" nullif(concat_ws(' ', nullif(btrim({e}.given_name), ''), nullif(btrim({e}.family_name), '')), ''),"
        f" nullif(btrim({e}.username), ''), {e}.external_id)"
    )


def _clean(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def learner_name(person: Mapping[str, Any]) -> str:
    """The name of a learner from their enrollment's columns (full_name, given_name, family_name,
    username, external_id; missing ones count as none)."""
    given = " ".join(p for p in (_clean(person.get("given_name")), _clean(person.get("family_name"))) if p)
    return _clean(person.get("full_name")) or given or _clean(person.get("username")) or str(person["external_id"])


# Characters kept at most: a name is a part of a file name (the course's, the assessment's, a learner's).
MAX_CHARS = 100


def safe_name(text: str) -> str:
    """`text` as a part of a file name: letters, digits, '-', '_' and '.' kept, anything else '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:MAX_CHARS]
