"""Organization settings and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from services.api.schemas.common import Out
from shared.validation import Input


class OrganizationOut(Out):
    slug: str
    name: str
    accepts_hs256_tokens: bool
    accepts_rs256_tokens: bool
    created_at: datetime


class TokenKeysIn(Input):
    """How the LMS signs user tokens. Tokens carry `iss` = the organization's slug and `sub` = the user."""

    hs256_secret: str | None = Field(default=None, min_length=32, max_length=512)
    jwks: dict[str, Any] | None = Field(default=None, description="A JWKS document with the RS256 public keys.")


class ApiKeyIn(Input):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "service"] = "service"


class ApiKeyOut(Out):
    id: int
    name: str
    role: str
    prefix: str = Field(description="The first characters of the secret, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown once; only its hash is stored.")
