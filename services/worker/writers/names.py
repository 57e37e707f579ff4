"""File names: the one rule the worker's files and ZIP entries follow for names made of ids and names."""

from __future__ import annotations

# Characters kept at most: a name is a part of a file name (the course's, the assessment's, a learner's).
MAX_CHARS = 100


def safe_name(text: str) -> str:
    """`text` as a part of a file name: letters, digits, '-', '_' and '.' kept, anything else '_'."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:MAX_CHARS]
