"""Organization settings and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from gradeflow.core.validation import Input
from gradeflow.http.schemas import Out


class OrganizationOut(Out):
    slug: str
    name: str
    accepts_hs256_tokens: bool
    accepts_rs256_tokens: bool
    token_audience: str | None = Field(description="The `aud` every user token must carry; null: not checked.")
    created_at: datetime


class TokenKeysIn(Input):
    """How the LMS signs user tokens. Tokens carry `iss` = the organization's slug, `sub` = the user and
    `exp` (a number, at most 24 hours ahead by default). The request replaces all three settings."""

    hs256_secret: str | None = Field(default=None, min_length=32, max_length=512)
    jwks: dict[str, Any] | None = Field(
        default=None,
        description='A JWKS document (`{"keys": [...]}`) of RS256 public keys, at most 20, each at least 2048'
        " bits; unique `kid`s. A key that does not load is refused (422 naming `/jwks/keys/<i>`).",
    )
    audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="When set, every user token must name it in `aud` (e.g. the LMS's client id for Gradeflow);"
        " left out or null, `aud` is not checked.",
    )
    disable_user_tokens: bool = Field(
        default=False,
        description='Send `true` with no key (`{"disable_user_tokens": true}`, optionally with'
        ' `"jwks": {"keys": []}`) to stop accepting every user token on purpose; a request without any key'
        " is otherwise refused (422), since it would lock every LMS user out.",
    )


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
