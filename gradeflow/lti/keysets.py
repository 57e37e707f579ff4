"""A tool's public keys as JSON: a JWK Set (RFC 7517 section 5) whose every key gradeflow/lti/service/jwks.py checked.

Here, not in the service: the repository stores and reads the same document, and a layer below the service cannot
import it."""

from __future__ import annotations

from typing import Literal, Required, TypedDict


class Jwk(TypedDict, total=False):
    """A public signing key, with the members Gradeflow reads (RFC 7517 section 4, RFC 7518 section 6). A key may hold
    others (`x5c`, `key_ops`, ...): they are kept as the tool sent them."""

    kid: Required[str]
    kty: Required[Literal["RSA", "EC"]]
    use: str
    alg: str
    crv: str  # EC
    x: str  # EC
    y: str  # EC
    n: str  # RSA
    e: str  # RSA


class JwkSet(TypedDict):
    keys: list[Jwk]
