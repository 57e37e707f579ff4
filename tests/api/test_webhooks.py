"""Webhooks against a real HTTP receiver on loopback: signed deliveries, retries, rotation, replay,
refused targets, and events that exist only when their change committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import clock
from shared.settings import Settings
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
