"""Input text rules shared by every request model: what PostgreSQL can store, nothing else."""

from __future__ import annotations

from typing import Annotated, Any, TypeGuard

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

# The longest title a client may give (an assessment's title also labels it in grading explanations).
TITLE_MAX = 500


def storable_text(value: Any, max_length: int) -> TypeGuard[str]:
    """A non-empty string PostgreSQL can compare and store (no NUL, no lone surrogate) within `max_length`."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        return False
    try:
        clean_text(value)
    except ValueError:
        return False
    return True


def clean_text(value: Any) -> Any:
    """Reject NUL characters and lone surrogates anywhere in a value (strings, lists, objects)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (it has a lone surrogate)") from exc
    elif isinstance(value, list | tuple):
        for item in value:
            clean_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            clean_text(key)
            clean_text(item)
    return value


CleanStr = Annotated[str, AfterValidator(clean_text)]


class Input(BaseModel):
    """Base of request bodies: unknown fields are errors and all text must be storable."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return value if isinstance(value, BaseModel) else clean_text(value)
