"""Delivering events to webhook endpoints, the Standard Webhooks way.

Headers `webhook-id` (the event id, the same on every retry), `webhook-timestamp` and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, one per live secret while a
secret is being rotated). 10 s timeout, redirects not followed. A non-2xx answer or no answer is
retried on a schedule covering more than 24 h, then the delivery fails; an endpoint failing for 5
days in a row is disabled with the reason.

A URL is parsed once, by httpx's parser (the one that sends), and only http(s) to a host name or a
canonical address is accepted (no octal, hex, short or integer IPv4 forms). The host is resolved
once per batch, every address is judged (an IPv6 address embedding an IPv4 one by that IPv4
address), and the request goes to a judged address, with the Host header and, for https, the TLS
server name and certificate check of the URL's host: no second resolution can point it elsewhere.
Private, loopback and link-local targets are refused unless allowed by the settings, when
subscribing and at every send. Whatever goes wrong with one delivery is recorded as its attempt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import http.cookiejar
import ipaddress
import logging
import random
import re
import secrets
import socket
import ssl
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.core import clock, jsonutil, metrics
from gradeflow.core.settings import WebhookSettings

log = logging.getLogger(__name__)

SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]
DISABLE_AFTER = timedelta(days=5)
BATCH = 50


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the `attempts`-th failed try (with jitter), or None when the schedule is over."""
    if attempts > len(SCHEDULE):
        return None
    base = SCHEDULE[attempts - 1]
    return base + timedelta(seconds=base.total_seconds() * random.uniform(0, 0.1))  # noqa: S311 (jitter)


class Refused(Exception):
    """The target address is not allowed."""


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A last label of digits or 0x-hex makes resolvers (inet_aton, browsers) read the host as an IPv4
# address in octal, hex, short (127.1) or integer (2130706433) form: only dotted decimal is accepted.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")  # after IDNA encoding, which lowercases
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class Target:
    """A webhook URL as httpx (the client that connects) parses it, with the host it connects to."""

    url: httpx.URL
    host: str  # IDNA-encoded name, or the address literal without brackets
    port: int
    literal: Address | None  # the host is an address: no resolution

    @property
    def https(self) -> bool:
        return self.url.scheme == "https"


def parse_target(url: str) -> Target:
    """Parse a URL once, with the parser that sends; refuse what is not plainly an http(s) URL to a
    host name or a canonical address."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError) as exc:
        raise Refused(f"not a usable URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not host:
        raise Refused("only http and https URLs with a host can receive webhooks")
    port = (443 if parsed.scheme == "https" else 80) if parsed.port is None else parsed.port
    if not 0 < port < 65536:
        raise Refused("the port must be between 1 and 65535")
    literal: Address | None = None
    if ":" in host:  # an IPv6 literal, which httpx has validated
        if "%" in host:
            raise Refused("an IPv6 address with a zone cannot receive webhooks")
        literal = ipaddress.IPv6Address(host)
    elif _NUMERIC_LABEL.fullmatch(host.removesuffix(".").rsplit(".", 1)[-1]):
        try:
            literal = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise Refused(f"{host} is not an IPv4 address in dotted decimal form (such as 192.0.2.10)") from exc
    elif not _HOST_NAME.fullmatch(host):
        raise Refused(f"{host} is not a valid host name")
    return Target(parsed, host, port, literal)


def _judged(address: Address) -> list[Address]:
    """The addresses a connection to `address` reaches: the IPv4 address embedded in an IPv6 one
    (IPv4-mapped or -compatible, NAT64, 6to4, Teredo server and client), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # not :: and ::1
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return [address]


def networks(allow: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(n, strict=False) for n in allow]


def judge(host: str, address: Address, allowed: Sequence[Network]) -> None:
    """Refuse private, loopback, link-local, multicast or reserved addresses unless allowed."""
    for a in _judged(address):
        if any(a in n for n in allowed):
            continue
        if not a.is_global or a.is_multicast or a.is_reserved or (a.version == 6 and a.is_site_local):
            shown = host if a == address else f"{host} ({address})"
            raise Refused(f"{shown} resolves to {a}, a private or reserved address")


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _lookup(target: Target, allowed: Sequence[Network]) -> list[Address]:
    """Every address of the target's host, each judged (the port plays no part: one lookup per host)."""
    if target.literal is not None:
        addresses = [target.literal]
    else:
        try:
            found = await _getaddrinfo(target.host, target.port)
            addresses = list(dict.fromkeys(ipaddress.ip_address(a) for a in found))
        except (OSError, UnicodeError, ValueError) as exc:
            raise Refused(f"the host does not resolve: {exc}") from exc
        if not addresses:
            raise Refused("the host does not resolve")
    for address in addresses:
        judge(target.host, address, allowed)
    return addresses


def _check_port(target: Target, addresses: Sequence[Address], deny_ports: Sequence[int]) -> None:
    """A port in `deny_ports` on an address allowed only because it is listed (a development
    stack's own services on loopback) is refused."""
    if target.port in deny_ports and any(not a.is_global for a in addresses):
        raise Refused(f"{target.host}:{target.port} is one of this deployment's own services")


async def resolve(target: Target, allowed: Sequence[Network], deny_ports: Sequence[int] = ()) -> list[Address]:
    """Every address of the target's host, each judged, its port checked: the ones a connection may go to."""
    addresses = await _lookup(target, allowed)
    _check_port(target, addresses, deny_ports)
    return addresses


async def check_target(url: str, allow: list[str], deny_ports: Sequence[int] = ()) -> None:
    """Refuse URLs that are not http(s) to a host name or canonical address, and hosts that resolve
    to private, loopback, link-local or otherwise reserved addresses unless they are in `allow`
    (networks such as 127.0.0.0/8)."""
    await resolve(parse_target(url), networks(allow), deny_ports)


def redacted(url: str) -> str:
    """The URL as shown back: its password replaced by `***` (a user part alone, often a token, too).
    Textual, so that any stored URL can be shown; the authority ends where httpx ends it."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user + ':***' if colon else '***'}@{hostport}{rest[end:]}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one more attempt, with its endpoint and its event."""

    id: int
    attempts: int
    webhook_id: int
    url: str
    active: bool
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    event_id: str
    type: str
    data: dict[str, Any]
    created_at: datetime


_CLAIM = text(
    """
    UPDATE webhook_deliveries d SET status = 'sending', attempts = d.attempts + 1, next_attempt_at = :lease
    FROM webhooks w, outbox_events e
    WHERE d.id IN (SELECT id FROM webhook_deliveries
                   WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now
                   ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
      AND w.id = d.webhook_id AND e.id = d.event_id
    RETURNING d.id, d.attempts, d.webhook_id, w.url, w.active, w.secret, w.previous_secret, w.previous_until,
              e.id AS event_id, e.type, e.data, e.created_at
    """
)


async def claim_due(session: AsyncSession, now: datetime, lease_until: datetime, n: int) -> list[Claimed]:
    """Claim up to `n` deliveries due at `now` (pending, or sending with their lease over) for one more
    attempt, leased until `lease_until`; other senders skip them."""
    rows = await session.execute(_CLAIM, {"now": now, "lease": lease_until, "n": n})
    return [Claimed(*r) for r in rows]


def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


class _NoCookies(http.cookiejar.CookieJar):
    """Answers' cookies are never kept: a client serves many endpoints (of many organizations) at
    one address, and a cookie one of them sets must not be sent to the next."""

    def extract_cookies(self, response: http.client.HTTPResponse, request: urllib.request.Request) -> None:
        return None


class _Senders:
    """The HTTP clients, parsed URLs and host resolutions of one run of deliver_due.

    A pooled connection is keyed by the address it goes to, so https gets a client per host name: a
    TLS connection checked against one name is never reused for another name at the same address.
    Each URL is parsed once per run; each host is resolved once per batch and judged, and every
    delivery to it goes to those addresses (its port checked per delivery: hosts share lookups).
    """

    def __init__(self, stack: contextlib.AsyncExitStack, settings: WebhookSettings) -> None:
        self._stack = stack
        self._timeout = settings.timeout_seconds
        self.allowed = networks(settings.allow_private)
        self.deny_ports = settings.deny_ports
        self._ssl: ssl.SSLContext | None = None
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._targets: dict[str, Target] = {}
        self._resolved: dict[str, asyncio.Task[list[Address]]] = {}

    def new_batch(self) -> None:
        self._resolved = {}

    def target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = parse_target(url)
        return target

    def client(self, target: Target) -> httpx.AsyncClient:
        key = target.host if target.https else None
        if key not in self._clients:
            if self._ssl is None:
                self._ssl = _ssl_context()  # costly (the CA certificates): made once there is something to send
            client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, verify=self._ssl, cookies=_NoCookies()
            )
            self._stack.push_async_callback(client.aclose)
            self._clients[key] = client
        return self._clients[key]

    async def addresses(self, target: Target) -> list[Address]:
        task = self._resolved.get(target.host)
        if task is None:
            task = self._resolved[target.host] = asyncio.create_task(_lookup(target, self.allowed))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved even if all timed out
        # Shielded: one delivery timing out must not cancel the resolution the others wait for.
        addresses = task.result() if task.done() else await asyncio.shield(task)
        _check_port(target, addresses, self.deny_ports)
        return addresses


async def deliver_due(sessionmaker: async_sessionmaker[AsyncSession], settings: WebhookSettings) -> int:
    """Send every delivery that is due, in batches; returns how many were tried."""
    tried = 0
    lease = timedelta(seconds=settings.lease_seconds)
    async with contextlib.AsyncExitStack() as stack:
        senders = _Senders(stack, settings)
        while True:
            now = clock.now()
            async with sessionmaker() as session:
                claimed = await claim_due(session, now, now + lease, BATCH)
                await session.commit()
            if not claimed:
                return tried
            senders.new_batch()
            outcomes = await asyncio.gather(*(_send(senders, settings, d) for d in claimed))
            async with sessionmaker() as session:
                await _record(session, claimed, outcomes)
                await session.commit()
            tried += len(claimed)
    return tried


def payload(event_id: str, type_: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    return jsonutil.dumps({"id": event_id, "type": type_, "timestamp": created_at.isoformat(), "data": data}).encode()


def _text(value: str, limit: int) -> str:
    """Storable text: PostgreSQL refuses NUL, and one unstorable answer would fail the batch's record."""
    return value[:limit].replace("\x00", "\ufffd")


async def _send(senders: _Senders, settings: WebhookSettings, d: Claimed) -> dict[str, Any]:
    """One delivery's attempt. Whatever goes wrong is this delivery's recorded error, never the batch's."""
    if not d.active:
        return {"status_code": None, "latency_ms": None, "response": None, "error": "the endpoint is disabled"}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            status_code, head = await _post(senders, d)
    except Refused as exc:
        return {"status_code": None, "latency_ms": None, "response": None, "error": _text(f"refused: {exc}", 1000)}
    except Exception as exc:  # any failure is this delivery's attempt, never the batch's
        latency = int((time.perf_counter() - started) * 1000)
        if isinstance(exc, TimeoutError):
            message = f"no complete answer within {settings.timeout_seconds:g} s"
        else:
            message = str(exc)
        error = _text(f"{type(exc).__name__}: {message}", 1000)
        return {"status_code": None, "latency_ms": latency, "response": None, "error": error}
    latency = int((time.perf_counter() - started) * 1000)
    snippet = _text(head.decode("utf-8", "replace"), 1024)
    return {"status_code": status_code, "latency_ms": latency, "response": snippet, "error": None}


async def _post(senders: _Senders, d: Claimed) -> tuple[int, bytes]:
    """POST the event to the checked addresses of the target (the next one if one cannot be reached),
    as the URL's host: Host header and, for https, the TLS server name and certificate check."""
    target = senders.target(d.url)
    addresses = await senders.addresses(target)
    body = payload(d.event_id, d.type, d.created_at, d.data)
    timestamp = int(time.time())
    secrets_ = [d.secret]
    if d.previous_secret and d.previous_until and d.previous_until > clock.now():
        secrets_.append(d.previous_secret)
    headers = {
        "host": target.url.netloc.decode("ascii"),
        "accept-encoding": "identity",  # the first 1 KB of the answer is kept, not an inflated body
        "content-type": "application/json",
        "user-agent": "Gradeflow-Webhooks/1",
        "webhook-id": d.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, d.event_id, timestamp, body) for s in secrets_),
    }
    extensions = {"sni_hostname": target.host} if target.https and target.literal is None else {}
    client = senders.client(target)
    for address in addresses[:-1]:
        with contextlib.suppress(httpx.ConnectError):
            return await _exchange(client, target, address, body, headers, extensions)
    return await _exchange(client, target, addresses[-1], body, headers, extensions)


async def _exchange(
    client: httpx.AsyncClient,
    target: Target,
    address: Address,
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, Any],
) -> tuple[int, bytes]:
    url = target.url.copy_with(host=str(address))
    async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
        head = b""
        async for chunk in response.aiter_bytes():
            head += chunk
            if len(head) >= 1024:  # the rest is not read: an endless answer holds nothing up
                break
        return response.status_code, head


_LOG_ATTEMPTS = text(
    """
    INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, response, error)
    SELECT u.d, :now, u.code, u.latency, u.response, u.error
    FROM unnest(CAST(:d AS bigint[]), CAST(:code AS int[]), CAST(:latency AS int[]), CAST(:response AS text[]),
                CAST(:error AS text[])) AS u(d, code, latency, response, error)
    """
)
_SET_OUTCOMES = text(
    """
    UPDATE webhook_deliveries d SET status = u.status, next_attempt_at = u.next, last_status = u.code,
           last_error = u.error, finished_at = u.finished
    FROM unnest(CAST(:d AS bigint[]), CAST(:status AS text[]), CAST(:next AS timestamptz[]), CAST(:code AS int[]),
                CAST(:error AS text[]), CAST(:finished AS timestamptz[])) AS u(d, status, next, code, error, finished)
    WHERE d.id = u.d
    """
)
# An endpoint that answered is healthy again; one that failed has been failing since its first failure,
# and is disabled once that is 5 days ago.
_ENDPOINT_HEALTH = text(
    """
    UPDATE webhooks w SET
      failing_since = CASE WHEN u.ok THEN NULL ELSE coalesce(w.failing_since, :now) END,
      active = CASE WHEN NOT u.ok AND coalesce(w.failing_since, :now) <= :cutoff THEN false ELSE w.active END,
      disabled_reason = CASE WHEN NOT u.ok AND coalesce(w.failing_since, :now) <= :cutoff
        THEN 'disabled after failing for 5 days in a row; last error: ' || u.error ELSE w.disabled_reason END
    FROM unnest(CAST(:w AS bigint[]), CAST(:ok AS boolean[]), CAST(:error AS text[])) AS u(w, ok, error)
    WHERE w.id = u.w
    """
)


async def _record(session: AsyncSession, claimed: Sequence[Claimed], outcomes: list[dict[str, Any]]) -> None:
    """Every attempt of a batch, the deliveries' new state and the endpoints' health: three statements."""
    now = clock.now()
    statuses, nexts, errors, finished = [], [], [], []
    health: dict[int, tuple[bool, str | None]] = {}
    for d, o in zip(claimed, outcomes, strict=True):
        ok = o["status_code"] is not None and 200 <= o["status_code"] < 300
        delay = None if ok else retry_delay(d.attempts)
        status = "succeeded" if ok else ("pending" if delay is not None else "failed")
        error = o["error"] or (None if ok else f"HTTP {o['status_code']}")
        statuses.append(status)
        metrics.WEBHOOK_DELIVERIES.labels(outcome="succeeded" if ok else status.replace("pending", "retry")).inc()
        nexts.append(now + (delay or timedelta(0)))
        errors.append(error)
        finished.append(None if status == "pending" else now)
        if d.active:
            health[d.webhook_id] = (ok, error) if not ok or d.webhook_id not in health else health[d.webhook_id]
    ids = [d.id for d in claimed]
    codes = [o["status_code"] for o in outcomes]
    await session.execute(
        _LOG_ATTEMPTS,
        {
            "now": now,
            "d": ids,
            "code": codes,
            "latency": [o["latency_ms"] for o in outcomes],
            "response": [o["response"] for o in outcomes],
            "error": [o["error"] for o in outcomes],
        },
    )
    await session.execute(
        _SET_OUTCOMES,
        {"d": ids, "status": statuses, "next": nexts, "code": codes, "error": errors, "finished": finished},
    )
    if health:
        await session.execute(
            _ENDPOINT_HEALTH,
            {
                "now": now,
                "cutoff": now - DISABLE_AFTER,
                "w": list(health),
                "ok": [h[0] for h in health.values()],
                "error": [h[1] for h in health.values()],
            },
        )
