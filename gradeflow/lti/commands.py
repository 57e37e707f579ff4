"""LTI commands: the tool registrations the API accepts and the use cases take."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from gradeflow.core.commands import Command, ExternalId, check_unique
from gradeflow.core.errors import ValidationFailed
from gradeflow.lti.scopes import ALL_SCOPES, Scope

JwksUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$"),
    Field(description="Where the tool publishes its public keys (https; http only to the allowed private networks)."),
]
Jwks = Annotated[
    dict[str, Any],
    Field(description='The tool\'s public keys inline, as a JWK Set: `{"keys": [{"kty", "kid", ...}]}`.'),
]
ToolName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Scopes = Annotated[list[Scope], Field(min_length=1, max_length=len(ALL_SCOPES))]
Courses = Annotated[
    list[ExternalId] | None,
    Field(max_length=10_000, description="The course keys the tool may reach; null: every course of the organization."),
]


def _one_key_source(jwks_url: str | None, jwks: dict[str, Any] | None, required: bool) -> None:
    # Domain errors, not ValueError: they keep the pointer of the field at fault.
    if jwks_url is not None and jwks is not None:
        raise ValidationFailed.one("/jwks", "Give either jwks_url or jwks, not both.")
    if required and jwks_url is None and jwks is None:
        raise ValidationFailed.one("/jwks_url", "Give the tool's keys: jwks_url or jwks.")


class ToolIn(Command):
    name: ToolName
    jwks_url: JwksUrl | None = None
    jwks: Jwks | None = None
    scopes: Scopes = Field(default_factory=lambda: list(ALL_SCOPES))
    courses: Courses = None

    @model_validator(mode="after")
    def _checked(self) -> ToolIn:
        _one_key_source(self.jwks_url, self.jwks, required=True)
        check_unique([str(s) for s in self.scopes], "scopes", None)
        check_unique(self.courses or [], "courses", None)
        return self


class ToolPatch(Command):
    """Only the fields sent change; `courses: null` opens every course of the organization."""

    name: ToolName | None = None
    jwks_url: JwksUrl | None = Field(default=None, description="Replaces the keys' source (and inline keys).")
    jwks: Jwks | None = Field(default=None, description="Replaces the keys' source (and a JWKS URL).")
    scopes: Scopes | None = None
    courses: Courses = None

    @model_validator(mode="after")
    def _checked(self) -> ToolPatch:
        _one_key_source(self.jwks_url, self.jwks, required=False)
        for field in ("name", "scopes"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValidationFailed.one(f"/{field}", "Must not be null.")
        check_unique([str(s) for s in self.scopes or []], "scopes", None)
        check_unique(self.courses or [], "courses", None)
        return self
