"""A tool's public keys: the JWK Set checked on save, fetched from its URL, and the key that verifies an assertion.

A fetched JWKS goes through the webhooks' target policy (gradeflow/notify/webhooks.py): http(s) to a host that
resolves to public addresses, or to the private networks the deployment allows (`GRADEFLOW_WEBHOOKS__ALLOW_PRIVATE`);
plain http only to those private networks. The request goes to the addresses that were checked (no second
resolution a DNS answer could change), follows no redirect and reads at most JWKS_MAX_BYTES."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from gradeflow.core.errors import FieldError, ValidationFailed
from gradeflow.core.settings import WebhookSettings
from gradeflow.lti.keysets import JwkSet
from gradeflow.notify.webhooks import Address, Refused, Target, networks, parse_target, resolve

PublicKey = RSAPublicKey | EllipticCurvePublicKey

# What a client assertion may be signed with (LTI Security Framework: RS256 at least; never HS* or none).
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384")
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384"}
KID_MAX = 255
JWKS_MAX_KEYS = 20
JWKS_MAX_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
RSA_MIN_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class JwksUnavailable(Exception):
    """The tool's JWKS URL could not be used; the message says why (for the admin, never for a token caller)."""


def _algorithms_of(jwk: Mapping[str, object]) -> tuple[str, ...]:
    """The allowed algorithms a key can verify (by its type and curve, narrowed by its own `alg`)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        fits: tuple[str, ...] = ("RS256", "RS384", "RS512")
    elif kty == "EC":
        fits = tuple(alg for alg, crv in _EC_CURVES.items() if jwk.get("crv") == crv)
    else:
        fits = ()
    alg = jwk.get("alg")
    return fits if alg is None else tuple(a for a in fits if a == alg)


def public_key(jwk: Any) -> PublicKey:
    """One JWKS entry as a verification key; ValueError says why it is not one."""
    if not isinstance(jwk, dict):
        raise ValueError("must be a JWK: a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= KID_MAX:
        raise ValueError(f"needs a `kid` (a string of 1 to {KID_MAX} characters): assertions name their key by it")
    if jwk.get("kty") not in ("RSA", "EC"):
        raise ValueError("must be an RSA or EC key (`kty`: `RSA` or `EC`)")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise ValueError("must be a public key: it holds private members (`d`, `p`, `q`, ...); never send those")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("must be a signing key (`use`: `sig` when given)")
    algorithms = _algorithms_of(jwk)
    if not algorithms:
        raise ValueError(f"fits none of the accepted algorithms ({', '.join(ALGORITHMS)}; EC on P-256 or P-384)")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithms[0]).key
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ValueError(f"is not a usable {jwk['kty']} public key: {exc}") from exc
    if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
        raise ValueError("must be a public key")
    if isinstance(key, RSAPublicKey) and key.key_size < RSA_MIN_BITS:
        raise ValueError(f"must be at least {RSA_MIN_BITS} bits long (RFC 7518 section 3.3)")
    return key


def check_jwks(jwks: Any, pointer: str = "/jwks") -> JwkSet:
    """A JWK Set whose every key is a usable public signing key with a unique `kid`; 422 naming each bad one."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValidationFailed.one(pointer, 'must be a JWK Set: {"keys": [...]} (RFC 7517)')
    keys = jwks["keys"]
    if not 0 < len(keys) <= JWKS_MAX_KEYS:
        raise ValidationFailed.one(f"{pointer}/keys", f"must hold 1 to {JWKS_MAX_KEYS} keys")
    errors: list[FieldError] = []
    kids: set[str] = set()
    for i, jwk in enumerate(keys):
        try:
            public_key(jwk)
        except ValueError as exc:
            errors.append(FieldError(f"{pointer}/keys/{i}", str(exc)))
            continue
        if jwk["kid"] in kids:
            errors.append(FieldError(f"{pointer}/keys/{i}/kid", "another key has this `kid`: each must be unique"))
        kids.add(jwk["kid"])
    if errors:
        raise ValidationFailed(errors)
    return {"keys": keys}


def key_for(jwks: JwkSet | None, kid: str, alg: str) -> PublicKey | None:
    """The key `kid` of a checked set, if it verifies `alg` (None: no such key, or not for this algorithm)."""
    for jwk in [] if jwks is None else jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            if alg not in _algorithms_of(jwk):
                return None
            with contextlib.suppress(ValueError):
                return public_key(jwk)
            return None
    return None


async def _checked(url: str, targets: WebhookSettings) -> tuple[Target, list[Address]]:
    """The URL as a target keys may be fetched from, and the addresses to connect to: https to public (or
    allowed private) addresses, or http to allowed private networks only."""
    allowed = networks(targets.allow_private)
    try:
        target = parse_target(url)
        addresses = await resolve(target, allowed, targets.deny_ports)
    except Refused as exc:
        raise JwksUnavailable(str(exc)) from exc
    if not target.https and not all(any(a in n for n in allowed) for a in addresses):
        raise JwksUnavailable("must be an https URL")
    return target, addresses


async def fetch(url: str, targets: WebhookSettings) -> JwkSet:
    """GET the tool's JWK Set and check it; JwksUnavailable says why it cannot be used."""
    body = await _get(*await _checked(url, targets))
    try:
        return check_jwks(json.loads(body), "")
    except ValueError as exc:
        raise JwksUnavailable("the answer is not JSON") from exc
    except ValidationFailed as exc:
        why = "; ".join(f"{e.pointer.lstrip('/') or 'the set'} {e.detail}" for e in exc.errors)
        raise JwksUnavailable(f"the keys are not usable: {why}") from exc


async def _get(target: Target, addresses: list[Address]) -> bytes:
    """The body of a GET of the target from the first checked address that answers (as the URL's host)."""
    headers = {
        "host": target.url.netloc.decode("ascii"),
        "accept": "application/jwk-set+json, application/json",
        "accept-encoding": "identity",
        "user-agent": "Gradeflow-LTI/1",
    }
    extensions = {"sni_hostname": target.host} if target.https and target.literal is None else {}
    failure = "no address to connect to"
    async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
        for address in addresses:
            url = target.url.copy_with(host=str(address))
            try:
                async with client.stream("GET", url, headers=headers, extensions=extensions) as response:
                    if response.status_code != 200:
                        raise JwksUnavailable(f"the URL answered HTTP {response.status_code}")
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > JWKS_MAX_BYTES:
                            raise JwksUnavailable(f"the answer is over {JWKS_MAX_BYTES // 1024} KB")
                    return body
            except httpx.ConnectError as exc:
                failure = f"cannot connect: {exc}"
            except httpx.HTTPError as exc:
                raise JwksUnavailable(f"the request failed: {type(exc).__name__}") from exc
    raise JwksUnavailable(failure)
