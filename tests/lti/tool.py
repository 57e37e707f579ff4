"""The tool's side of LTI Advantage, as a tool built on pylti1p3 has it: its RSA key pair, the registration the
platform gave it, and a service connector that keeps access tokens until they expire."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@dataclass(frozen=True)
class ToolKey:
    """An RSA key pair as PEM; its public JWK (kid = the key's thumbprint) is what the platform verifies."""

    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls) -> ToolKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private.decode(), public.decode())

    def jwks(self) -> dict[str, Any]:
        """The key set the tool publishes (built by the library, as a tool's JWKS endpoint serves it)."""
        return {"keys": [dict(Registration.get_jwk(self.public_pem))]}

    def registration(self, client_id: str, token_url: str) -> Registration:
        return (
            Registration()
            .set_client_id(client_id)
            .set_auth_token_url(token_url)
            .set_tool_private_key(self.private_pem)
            .set_tool_public_key(self.public_pem)
        )


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes


class Connector(ServiceConnector):
    """pylti1p3's connector with the token cache a tool supplies (in memory, until the token expires), and a
    record of every request it sent."""

    def __init__(self, registration: Registration) -> None:
        session = requests.Session()
        session.headers["User-Agent"] = "gradeflow-lti-test"
        session.hooks["response"].append(self._remember)
        super().__init__(registration, session)
        self.sent: list[Sent] = []
        self._tokens: dict[str, tuple[str, float]] = {}

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self.sent.append(
            Sent(str(request.method), str(request.url), response.status_code, response.headers, response.content)
        )

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        token, until = self._tokens.get(scope_key, ("", 0.0))
        return token if time.monotonic() < until else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        self._tokens[scope_key] = (access_token, time.monotonic() + float(expires_in) - 30)

    def to(self, method: str, url_start: str) -> list[Sent]:
        """The requests sent with `method` to a URL starting with `url_start`."""
        return [s for s in self.sent if s.method == method and s.url.startswith(url_start)]

    def close(self) -> None:
        self._requests_session.close()
