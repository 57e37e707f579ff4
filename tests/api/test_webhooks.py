"""Webhooks against a real HTTP receiver on loopback: signed deliveries, retries, rotation, replay,
refused targets, one tenant's bad target never holding up another's, https to the checked address,
passwords never shown, every change audited, and events that exist only when their change committed."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from gradeflow.core import clock
from gradeflow.core.settings import Settings
from gradeflow.devstack.infra import free_port
from gradeflow.notify import webhooks
from tests.conftest import Receiver, Tenant, assert_problem, run_worker
from tests.helpers import assessment, course, enroll

POLICY = {
    "categories": [{"name": "Homework", "weight": 1}],
    "cutoffs": [{"grade": "P", "min": 0.5}, {"grade": "F", "min": 0}],
}


async def _subscribe(t: Tenant, url: str, *events: str) -> dict[str, Any]:
    r = await t.post("/v1/webhooks", json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _verify(secret: str, request: dict[str, Any]) -> bool:
    """Checked by the `standardwebhooks` package: an implementation independent of ours."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    try:
        StandardWebhook(secret).verify(request["body"], headers)
    except WebhookVerificationError:
        return False
    return True


async def test_signed_delivery_of_committed_changes(tenant: Tenant, settings: Settings, receiver: Receiver) -> None:
    await course(tenant)
    await assessment(tenant, "c1", "hw1")
    await enroll(tenant, "c1", "ann")
    hook = await _subscribe(tenant, receiver.base + "/hook", "policy.changed", "grade.changed")
    assert hook["secret"].startswith("whsec_") and hook["active"]
    assert (await tenant.get(f"/v1/webhooks/{hook['id']}")).json()["secret"] is None  # shown once
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)  # recomputes; the served grades appear
    # A write rolled back (a bad row) leaves no event; a committed one does.
    bad = {
        "scores": [
            {"assessment": "hw1", "learner": "ann", "earned": 9},
            {"assessment": "nope", "learner": "ann", "earned": 1},
        ]
    }
    assert (await tenant.post("/v1/courses/c1/scores:batch", json=bad)).status_code == 422
    good = {"scores": [{"assessment": "hw1", "learner": "ann", "earned": 8}]}
    assert (await tenant.post("/v1/courses/c1/scores:batch", json=good)).status_code == 200
    await run_worker(settings)
    got = receiver.to("/hook")
    types = [orjson.loads(r["body"])["type"] for r in got]
    assert types.count("policy.changed") == 1 and types.count("grade.changed") == 1
    for request in got:
        assert _verify(hook["secret"], request)
        body = orjson.loads(request["body"])
        assert request["headers"]["webhook-id"] == body["id"] and body["id"].startswith("evt_")
    change = next(orjson.loads(r["body"]) for r in got if orjson.loads(r["body"])["type"] == "grade.changed")
    assert change["data"]["learner"] == "ann" and change["data"]["new"] == {
        "percent": 80.0,
        "grade": "P",
        "passed": True,
    }
    deliveries = (await tenant.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert {d["status"] for d in deliveries} == {"succeeded"}
    assert deliveries[0]["attempt_log"][0]["status_code"] == 200 and deliveries[0]["attempt_log"][0]["response"] == "ok"


async def test_failures_are_retried_then_redelivered(tenant: Tenant, settings: Settings, receiver: Receiver) -> None:
    await course(tenant)
    receiver.answers["/down"] = 500
    hook = await _subscribe(tenant, receiver.base + "/down", "policy.changed")
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)
    [delivery] = (await tenant.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("pending", 1, 500)
    assert len(delivery["attempt_log"][0]["response"]) == 1024  # the first 1 KB of the answer
    clock.freeze(datetime.now(UTC) + timedelta(seconds=10))
    try:
        await run_worker(settings)  # the second try, 5 s (plus jitter) later
    finally:
        clock.freeze(None)
    [delivery] = (await tenant.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert delivery["attempts"] == 2 and delivery["status"] == "pending"
    ids = {r["headers"]["webhook-id"] for r in receiver.to("/down")}
    assert len(ids) == 1 and len(receiver.to("/down")) == 2  # the same event id on every retry
    receiver.answers["/down"] = 204
    assert (await tenant.post(f"/v1/webhooks/deliveries/{delivery['id']}:redeliver")).status_code == 202
    await run_worker(settings)
    [delivery] = (await tenant.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "succeeded" and len(delivery["attempt_log"]) == 3


async def test_an_endpoint_failing_for_five_days_is_disabled(
    tenant: Tenant, settings: Settings, receiver: Receiver, sessionmaker: Any
) -> None:
    await course(tenant)
    receiver.answers["/dead"] = 503
    hook = await _subscribe(tenant, receiver.base + "/dead", "policy.changed")
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE webhooks SET failing_since = now() - interval '6 days' WHERE id = :id"), {"id": hook["id"]}
        )
        await session.commit()
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)
    shown = (await tenant.get(f"/v1/webhooks/{hook['id']}")).json()
    assert not shown["active"] and "5 days" in shown["disabled_reason"] and "HTTP 503" in shown["disabled_reason"]
    r = await tenant.patch(f"/v1/webhooks/{hook['id']}", json={"active": True})
    assert r.json()["active"] and r.json()["disabled_reason"] is None


async def test_rotation_signs_with_both_secrets(tenant: Tenant, settings: Settings, receiver: Receiver) -> None:
    await course(tenant)
    hook = await _subscribe(tenant, receiver.base + "/rot", "policy.changed")
    rotated = (await tenant.patch(f"/v1/webhooks/{hook['id']}", json={"rotate_secret": True})).json()
    assert rotated["secret"] != hook["secret"]
    assert (await tenant.post(f"/v1/webhooks/{hook['id']}:ping")).status_code == 202
    await run_worker(settings)
    [request] = receiver.to("/rot")
    assert orjson.loads(request["body"])["type"] == "webhook.ping"
    assert _verify(hook["secret"], request) and _verify(rotated["secret"], request)
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2


async def test_replay_and_refused_targets(tenant: Tenant, settings: Settings, receiver: Receiver) -> None:
    await course(tenant)
    since = datetime.now(UTC) - timedelta(minutes=1)
    hook = await _subscribe(tenant, receiver.base + "/replay", "policy.changed")
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)
    r = await tenant.post(f"/v1/webhooks/{hook['id']}:replay", json={"since": since.isoformat()})
    assert r.status_code == 202 and r.json()["deliveries"] == 1
    await run_worker(settings)
    assert len(receiver.to("/replay")) == 2
    # A redirect is not followed: it counts as a failed try.
    receiver.answers["/moved"] = 302
    moved = await _subscribe(tenant, receiver.base + "/moved", "policy.changed")
    assert (await tenant.put("/v1/courses/c1/policy", json={**POLICY, "weighting": "points"})).status_code == 200
    await run_worker(settings)
    [delivery] = (await tenant.get(f"/v1/webhooks/{moved['id']}/deliveries")).json()["items"]
    assert delivery["last_status"] == 302 and receiver.to("/elsewhere") == []
    # Private, link-local and metadata addresses are refused unless allowed.
    for url in ("http://10.1.2.3/x", "http://169.254.169.254/latest", "ftp://example.org/x", "http://[fd00::1]/x"):
        assert_problem(await tenant.post("/v1/webhooks", json={"url": url, "events": ["policy.changed"]}), 422, "/url")


async def test_webhook_access_and_catalogue(
    tenant: Tenant, other_tenant: Tenant, receiver: Receiver, client: Any
) -> None:
    hook = await _subscribe(tenant, receiver.base + "/a", "report.succeeded")
    assert_problem(await other_tenant.get(f"/v1/webhooks/{hook['id']}"), 404)
    assert_problem(await other_tenant.post(f"/v1/webhooks/{hook['id']}:ping"), 404)
    assert_problem(await tenant.post("/v1/webhooks", json={"url": receiver.base, "events": ["nope"]}), 422, "/events/0")
    assert [w["id"] for w in (await tenant.get("/v1/webhooks")).json()] == [hook["id"]]
    assert (await tenant.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
    assert_problem(await tenant.get(f"/v1/webhooks/{hook['id']}"), 404)
    catalogue = (await client.get("/openapi.json")).json()["webhooks"]
    assert {"grade.changed", "results.published", "report.failed", "import.completed"} <= set(catalogue)


async def test_timeouts_give_up_and_a_worker_dying_mid_delivery(
    tenant: Tenant, settings: Settings, receiver: Receiver, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await course(tenant)
    receiver.answers["/slow"] = 0
    monkeypatch.setattr(settings.webhooks, "timeout_seconds", 0.5)
    slow = await _subscribe(tenant, receiver.base + "/slow", "policy.changed")
    fine = await _subscribe(tenant, receiver.base + "/fine", "policy.changed")
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    # A worker died while sending to /fine: its claim lapses and the delivery is sent after all.
    async with sessionmaker() as session:
        await session.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'sending', attempts = 1,"
                " next_attempt_at = now() - interval '1 s' WHERE webhook_id = :w"
            ),
            {"w": fine["id"]},
        )
        await session.commit()
    await run_worker(settings)
    assert len(receiver.to("/fine")) == 1
    [delivery] = (await tenant.get(f"/v1/webhooks/{slow['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "pending" and "Timeout" in delivery["last_error"]
    # The last try of the schedule fails for good.
    async with sessionmaker() as session:
        await session.execute(
            text("UPDATE webhook_deliveries SET attempts = 7, next_attempt_at = now() WHERE id = :d"),
            {"d": delivery["id"]},
        )
        await session.commit()
    await run_worker(settings)
    [delivery] = (await tenant.get(f"/v1/webhooks/{slow['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "failed" and delivery["finished_at"] is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1:18997/",  # octal: httpx refuses to send it, resolvers read 127.0.0.1
        "http://01.1.1.1/",
        "http://0x7f.0.0.1/",  # hex
        "http://127.1/",  # short
        "http://2130706433/",  # integer
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
        "http://[::10.0.0.1]/",  # IPv4-compatible
        "http://[64:ff9b::169.254.169.254]/",  # NAT64
        "http://[2002:a00:1::1]/",  # 6to4 of 10.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
        "http://[::1]:99999/",
    ],
)
async def test_ambiguous_hosts_and_private_addresses_embedded_in_ipv6_are_refused(tenant: Tenant, url: str) -> None:
    r = await tenant.post("/v1/webhooks", json={"url": url, "events": ["policy.changed"]})
    assert_problem(r, 422, "/url")


async def test_ipv6_embedding_a_public_address_is_accepted(tenant: Tenant) -> None:
    for url in ("http://[2002:5db8:d822::1]/x", "https://[64:ff9b::93.184.216.34]/x"):
        await _subscribe(tenant, url, "policy.changed")


async def test_a_poisoned_target_never_holds_up_another_tenants_delivery(
    tenant: Tenant, other_tenant: Tenant, settings: Settings, receiver: Receiver, sessionmaker: Any
) -> None:
    await course(tenant)
    await course(other_tenant)
    good = await _subscribe(tenant, receiver.base + "/good", "policy.changed")
    # Stored before targets were parsed strictly: httpx cannot even build a request for these.
    poisoned = []
    async with sessionmaker() as session:
        for url in ("http://0177.0.0.1:18997/", "http://01.1.1.1/", "http://[::1]:99999/"):
            poisoned.append(
                await session.scalar(
                    text(
                        "INSERT INTO webhooks (organization_id, url, events, active, secret, updated_at)"
                        " VALUES (:o, :url, ARRAY['policy.changed'], true, :s, now()) RETURNING id"
                    ),
                    {"o": other_tenant.id, "url": url, "s": good["secret"]},
                )
            )
        await session.commit()
    assert (await other_tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
    await run_worker(settings)  # one batch holds all four deliveries
    [delivery] = (await tenant.get(f"/v1/webhooks/{good['id']}/deliveries")).json()["items"]
    assert delivery["status"] == "succeeded" and [a["status_code"] for a in delivery["attempt_log"]] == [200]
    for hook in poisoned:
        [bad] = (await other_tenant.get(f"/v1/webhooks/{hook}/deliveries")).json()["items"]
        assert bad["status"] == "pending" and bad["attempts"] == 1, bad
        [attempt] = bad["attempt_log"]
        assert attempt["status_code"] is None and attempt["error"].startswith("refused:"), attempt
    # Long after the lease: the poisoned ones are retried on their schedule, the good one is not sent again.
    clock.freeze(datetime.now(UTC) + timedelta(minutes=10))
    try:
        await run_worker(settings)
    finally:
        clock.freeze(None)
    assert len(receiver.to("/good")) == 1
    for hook in poisoned:
        [bad] = (await other_tenant.get(f"/v1/webhooks/{hook}/deliveries")).json()["items"]
        assert bad["attempts"] == 2 and len(bad["attempt_log"]) == 2


def _certificates(name: str) -> tuple[bytes, bytes, bytes]:
    """A CA (PEM) and a server certificate and key (PEM) for `name`, signed by it."""
    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test CA", ca_key, "Test CA", ca_key, True)
    server = cert(name, key, "Test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), server.public_bytes(pem), key_pem


@pytest.fixture
async def tls_receiver(tmp_path: Any) -> AsyncIterator[tuple[int, list[dict[str, Any]], bytes]]:
    """An https receiver on 127.0.0.1 whose certificate is for `hooks.test`: its port, what it
    received (the TLS server names clients asked for first) and the CA that signed it."""
    ca, cert, key = _certificates("hooks.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    received: list[dict[str, Any]] = [{"server_names": set()}]
    context.sni_callback = lambda _socket, name, _context: received[0]["server_names"].add(name)

    async def handle(request: web.Request) -> web.Response:
        received.append({"headers": dict(request.headers), "body": await request.read()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield port, received, ca
    await runner.cleanup()


async def test_requests_go_to_the_checked_address_as_the_urls_host(
    tenant: Tenant,
    settings: Settings,
    receiver: Receiver,
    tls_receiver: tuple[int, list[dict[str, Any]], bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, received, ca = tls_receiver
    # Names only this resolver knows: a request that resolved them again itself could not connect.
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        if host not in ("hooks.test", "wrong.test"):
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return ["127.0.0.1"]

    monkeypatch.setattr(webhooks, "_getaddrinfo", resolver)
    monkeypatch.setattr(webhooks, "_ssl_context", lambda: ssl.create_default_context(cadata=ca.decode()))
    tls = await _subscribe(tenant, f"https://hooks.test:{port}/tls", "policy.changed")
    wrong = await _subscribe(tenant, f"https://wrong.test:{port}/tls", "policy.changed")
    plain = await _subscribe(tenant, receiver.base.replace("127.0.0.1", "hooks.test") + "/named", "policy.changed")
    for hook in (tls, tls, wrong, plain):
        assert (await tenant.post(f"/v1/webhooks/{hook['id']}:ping")).status_code == 202
    resolved.clear()
    await run_worker(settings)
    assert sorted(resolved) == ["hooks.test", "wrong.test"]  # once per host and batch
    # https: the certificate was checked against the URL's host name, sent as the TLS server name.
    handshakes, *requests = received
    assert handshakes["server_names"] == {"hooks.test", "wrong.test"}
    assert [r["headers"]["Host"] for r in requests] == [f"hooks.test:{port}"] * 2
    for r in requests:
        assert _verify(tls["secret"], {"headers": r["headers"], "body": r["body"]})
    [refused] = (await tenant.get(f"/v1/webhooks/{wrong['id']}/deliveries")).json()["items"]
    assert refused["status"] == "pending" and "certificate" in refused["last_error"].lower()
    [request] = receiver.to("/named")
    assert request["headers"]["Host"] == receiver.base.replace("http://127.0.0.1", "hooks.test")


async def test_changes_are_audited_and_passwords_never_shown(
    tenant: Tenant, settings: Settings, receiver: Receiver
) -> None:
    url = receiver.base.replace("http://", "http://hook:s3cret@") + "/cred"
    shown = receiver.base.replace("http://", "http://hook:***@") + "/cred"
    hook = await _subscribe(tenant, url, "policy.changed")
    path = f"/v1/webhooks/{hook['id']}"
    assert hook["url"] == shown
    assert (await tenant.get(path)).json()["url"] == shown
    assert [w["url"] for w in (await tenant.get("/v1/webhooks")).json()] == [shown]
    # Sending back the URL as shown keeps the password.
    change = {"url": shown, "events": ["grade.changed", "policy.changed"], "description": "LMS"}
    r = await tenant.patch(path, json=change)
    assert r.status_code == 200 and r.json()["url"] == shown
    rotated = (await tenant.patch(path, json={"rotate_secret": True})).json()
    assert (await tenant.post(f"{path}:ping")).status_code == 202
    await run_worker(settings)
    [request] = receiver.to("/cred")
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"hook:s3cret").decode()
    [delivery] = (await tenant.get(f"{path}/deliveries")).json()["items"]
    assert (await tenant.post(f"/v1/webhooks/deliveries/{delivery['id']}:redeliver")).status_code == 202
    since = datetime.now(UTC) - timedelta(hours=1)
    assert (await tenant.post(f"{path}:replay", json={"since": since.isoformat()})).status_code == 202
    moved = receiver.base.replace("http://", "http://hook:n3w@") + "/moved"
    assert (await tenant.patch(path, json={"url": moved})).json()["url"] == moved.replace("n3w", "***")
    assert (await tenant.delete(path)).status_code == 204

    entries = (await tenant.get("/v1/audit", params={"limit": 100})).json()["items"]
    entries = [e for e in entries if e["action"].startswith("webhook.")]
    assert [e["action"] for e in entries] == [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.pinged",
        "webhook.redelivered",
        "webhook.replayed",
        "webhook.updated",
        "webhook.deleted",
    ]
    assert all(e["actor"].startswith("key:") for e in entries)
    created, updated, _, _, redelivered, replayed, moved_entry, deleted = entries
    webhook = hook["id"]
    assert created["new"] == {
        "webhook": webhook,
        "url": shown,
        "events": ["policy.changed"],
        "description": None,
        "active": True,
    }
    assert updated["old"] == {"webhook": webhook, "events": ["policy.changed"], "description": None}
    assert updated["new"] == {"webhook": webhook, "events": ["grade.changed", "policy.changed"], "description": "LMS"}
    assert redelivered["new"] == {"webhook": webhook, "delivery": delivery["id"], "event": delivery["event_id"]}
    assert replayed["new"] == {"webhook": webhook, "since": since.isoformat(), "deliveries": 0}  # ping is not a type
    assert moved_entry["old"] == {"webhook": webhook, "url": shown}
    assert moved_entry["new"] == {"webhook": webhook, "url": moved.replace("n3w", "***")}
    assert deleted["old"]["url"] == moved.replace("n3w", "***")
    trail = orjson.dumps(entries).decode()
    for secret in ("s3cret", "n3w", hook["secret"], rotated["secret"], "whsec_"):
        assert secret not in trail


async def test_a_deployments_own_ports_are_never_targets(
    tenant: Tenant, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` allows loopback targets but lists its own services' ports (the API, storage,
    PostgreSQL, Redis...) as denied: a webhook can reach a receiver, never the stack itself."""
    monkeypatch.setattr(settings.webhooks, "deny_ports", [5432, 6379])
    for url in ("http://127.0.0.1:5432/", "http://localhost:6379/x", "http://[::1]:5432/"):
        r = await tenant.post("/v1/webhooks", json={"url": url, "events": ["grade.changed"]})
        assert_problem(r, 422, "/url")
    await _subscribe(tenant, receiver.base + "/ok", "grade.changed")
    with pytest.raises(webhooks.Refused):  # at send time too, for a URL stored before the setting
        await webhooks.check_target("http://127.0.0.1:6379/", ["127.0.0.0/8"], settings.webhooks.deny_ports)


async def test_one_batch_judges_each_port_and_keeps_no_cookies(
    tenant: Tenant, other_tenant: Tenant, settings: Settings, sessionmaker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host resolved once per batch is still judged per port (a denied port of the same host is
    refused), and an endpoint's cookie never travels to another organization's endpoint."""
    seen: dict[str, list[dict[str, str]]] = {"/a": [], "/b": [], "/denied": []}

    async def handle(request: web.Request) -> web.Response:
        seen[request.path].append(dict(request.headers))
        return web.Response(text="ok", headers={"Set-Cookie": "session=org-a-secret; Path=/"})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    allowed, denied = free_port(), free_port()
    for port in (allowed, denied):
        await web.TCPSite(runner, "127.0.0.1", port).start()
    monkeypatch.setattr(settings.webhooks, "deny_ports", [denied])
    monkeypatch.setattr(webhooks, "BATCH", 1)  # one delivery a batch: /a is answered before /b is sent
    try:
        await course(tenant)
        await course(other_tenant)
        a = await _subscribe(tenant, f"http://127.0.0.1:{allowed}/a", "policy.changed")
        async with sessionmaker() as session:  # stored before the port was denied
            await session.execute(
                text(
                    "INSERT INTO webhooks (organization_id, url, events, active, secret, updated_at)"
                    " VALUES (:o, :url, ARRAY['policy.changed'], true, :s, now())"
                ),
                {"o": tenant.id, "url": f"http://127.0.0.1:{denied}/denied", "s": a["secret"]},
            )
            await session.commit()
        assert (await tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
        await _subscribe(other_tenant, f"http://127.0.0.1:{allowed}/b", "policy.changed")
        assert (await other_tenant.put("/v1/courses/c1/policy", json=POLICY)).status_code == 200
        await webhooks.deliver_due(sessionmaker, settings.webhooks)
    finally:
        await runner.cleanup()
    assert len(seen["/a"]) == 1 and len(seen["/b"]) == 1 and seen["/denied"] == []
    assert "Cookie" not in seen["/b"][0]
