"""Domain errors, independent of HTTP. gradeflow/http/errors.py maps them to problem+json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def json_pointer(parts: tuple[Any, ...] | list[Any]) -> str:
    """RFC 6901: the path of a field as a JSON pointer ("~" and "/" escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class FieldError:
    """One bad field: `pointer` is a JSON pointer into the request body (or a parameter name)."""

    pointer: str
    detail: str
    location: str = "body"


class DomainError(Exception):
    """Base of every error a client can cause. `code` is stable and becomes the problem type."""

    code = "error"
    title = "Request failed"
    # Seconds a client should wait before trying again (sent as Retry-After), when that is known.
    retry_after: int | None = None

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        if retry_after is not None:
            self.retry_after = retry_after


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(DomainError):
    code = "precondition-failed"
    title = "Precondition failed"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class InvalidTransition(Conflict):
    code = "invalid-transition"
    title = "Illegal state transition"


class ServiceUnavailable(DomainError):
    code = "unavailable"
    title = "Service unavailable"
    retry_after = 5


class RateLimited(DomainError):
    code = "rate-limited"
    title = "Too many requests"
    retry_after = 1


class TooLarge(DomainError):
    """More work in one request than a configured limit allows (the detail names the limit)."""

    code = "payload-too-large"
    title = "Request too large"


class UnsupportedMediaType(DomainError):
    """A request body of a media type the operation does not take (the detail names those it takes)."""

    code = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationFailed(DomainError):
    """One or more fields are invalid; each error names its JSON pointer."""

    code = "validation"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError]) -> None:
        n = len(errors)
        super().__init__(f"{n} field{'s' if n != 1 else ''} failed validation")
        self.errors = errors

    @classmethod
    def one(cls, pointer: str, detail: str, location: str = "body") -> ValidationFailed:
        return cls([FieldError(pointer, detail, location)])
