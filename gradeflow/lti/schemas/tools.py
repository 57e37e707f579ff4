"""LTI tool registrations as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gradeflow.lti.repository.tools import Tool


class ToolOut(BaseModel):
    id: int
    name: str
    client_id: str = Field(description="The tool's OAuth 2.0 client id: `iss` and `sub` of its client assertions.")
    deployment_id: str = Field(description="The LTI deployment id to configure in the tool.")
    jwks_url: str | None = Field(description="Where the tool's public keys are fetched (null: inline keys).")
    jwks: dict[str, Any] | None = Field(description="The tool's public keys, when registered inline.")
    scopes: list[str] = Field(description="The scopes the tool may be granted.")
    courses: list[str] | None = Field(description="The course keys the tool may reach; null: every course.")
    token_url: str = Field(description="The token endpoint: also the `aud` of the tool's client assertions.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tool: Tool, base_url: str) -> ToolOut:
        return cls(
            id=tool.id,
            name=tool.name,
            client_id=tool.client_id,
            deployment_id=tool.deployment_id,
            jwks_url=tool.jwks_url,
            jwks=tool.jwks,
            scopes=tool.scopes,
            courses=tool.courses,
            token_url=token_url(base_url),
            created_at=tool.created_at,
            updated_at=tool.updated_at,
        )


def token_url(base_url: str) -> str:
    return f"{base_url}/lti/token"


class TokenOut(BaseModel):
    """An access token (RFC 6749 section 5.1)."""

    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>` to the /lti services.")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the token type, not a secret)
    expires_in: int = Field(description="Seconds the token is valid for.")
    scope: str = Field(description="The scopes granted, space-separated: those asked for that the tool may have.")


class TokenErrorOut(BaseModel):
    """An error of the token endpoint (RFC 6749 section 5.2)."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "temporarily_unavailable",
    ]
    error_description: str
