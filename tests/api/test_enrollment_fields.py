"""The enrollment records behind the Open edX grade report: names, ID verification, experiment groups."""

from __future__ import annotations

from tests.conftest import Tenant, assert_problem
from tests.helpers import course


async def test_names_verification_and_experiment_groups_round_trip_and_are_audited(tenant: Tenant) -> None:
    await course(tenant)
    base = "/v1/courses/c1/enrollments"
    body = {
        "username": "ann",
        "full_name": "Ann Lee",
        "given_name": "Ann",
        "family_name": "Lee",
        "track": "verified",
        "id_verified": True,
        "experiment_groups": {"Video length": "Short", "Hints": "On"},
    }
    r = await tenant.put(f"{base}/ann", json=body)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in body} == body
    # A batch row without the new fields gets their defaults.
    r = await tenant.post(f"{base}:batch", json={"enrollments": [{"external_id": "bob", "track": "audit"}]})
    assert r.status_code == 200, r.text
    bob = (await tenant.get(f"{base}/bob")).json()
    assert (bob["given_name"], bob["family_name"], bob["id_verified"], bob["experiment_groups"]) == (
        None,
        None,
        False,
        {},
    )

    # PATCH changes what it names; null clears a name but leaves the flags and the groups as they are.
    r = await tenant.patch(f"{base}/ann", json={"family_name": "Lee-Park", "experiment_groups": {"Hints": "Off"}})
    assert r.json()["family_name"] == "Lee-Park" and r.json()["experiment_groups"] == {"Hints": "Off"}
    r = await tenant.patch(f"{base}/ann", json={"given_name": None, "id_verified": None, "experiment_groups": None})
    assert r.json()["given_name"] is None and r.json()["id_verified"] is True
    assert r.json()["experiment_groups"] == {"Hints": "Off"}
    assert (await tenant.get(f"{base}/ann")).json()["family_name"] == "Lee-Park"

    entries = (await tenant.get("/v1/courses/c1/audit", params={"learner": "ann"})).json()["items"]
    assert [e["action"] for e in entries] == ["enrollment.created", "enrollment.changed", "enrollment.changed"]
    assert entries[0]["new"]["experiment_groups"] == {"Video length": "Short", "Hints": "On"}
    assert entries[0]["new"]["id_verified"] is True
    assert (entries[1]["old"], entries[1]["new"]) == (
        {"family_name": "Lee", "experiment_groups": {"Video length": "Short", "Hints": "On"}},
        {"family_name": "Lee-Park", "experiment_groups": {"Hints": "Off"}},
    )
    assert (entries[2]["old"], entries[2]["new"]) == ({"given_name": "Ann"}, {"given_name": None})


async def test_bad_values_name_their_field(tenant: Tenant) -> None:
    await course(tenant)
    base = "/v1/courses/c1/enrollments"
    too_many = {f"config {i}": "A" for i in range(21)}
    assert_problem(await tenant.put(f"{base}/ann", json={"experiment_groups": too_many}), 422, "/experiment_groups")
    assert_problem(
        await tenant.put(f"{base}/ann", json={"experiment_groups": {"Hints": ""}}), 422, "/experiment_groups/Hints"
    )
    r = await tenant.put(f"{base}/ann", json={"experiment_groups": {"a/b" * 100: "A"}})
    assert assert_problem(r, 422, "/experiment_groups/" + "a~1b" * 100)["errors"][0]["detail"].startswith("Name: ")
    assert_problem(await tenant.put(f"{base}/ann", json={"experiment_groups": ["Hints"]}), 422, "/experiment_groups")
    assert_problem(await tenant.put(f"{base}/ann", json={"id_verified": "maybe"}), 422, "/id_verified")
    assert_problem(await tenant.patch(f"{base}/ann", json={"given_name": "x" * 256}), 422, "/given_name")
    rows = [{"external_id": "a"}, {"external_id": "b", "family_name": ""}]
    assert_problem(await tenant.post(f"{base}:batch", json={"enrollments": rows}), 422, "/enrollments/1/family_name")
    assert (await tenant.get(f"{base}/ann")).status_code == 404
