"""Inputs the fuzzer found producing 500s: each must be a clear 4xx naming the field."""

from __future__ import annotations

from tests.conftest import Tenant, assert_problem


async def test_course_with_unusual_text(tenant: Tenant) -> None:
    r = await tenant.post(
        "/v1/courses", json={"external_id": "\u011c:\u010f\u00fbe\u00af\u00c6\u00c4\u00a5Z", "title": "__main__"}
    )
    assert r.status_code == 201, r.text


async def test_lone_surrogates_and_nul_are_422(tenant: Tenant) -> None:
    body = b'{"external_id": "ok", "title": "\\uda21\\uddc7W\\u001a=J\\ud99f"}'
    r = await tenant.post("/v1/courses", content=body, headers={"content-type": "application/json"})
    assert_problem(r, 422, "/title")
    r = await tenant.post("/v1/courses", json={"external_id": "ok", "title": "a\x00b"})
    assert_problem(r, 422, "/title")
    r = await tenant.put("/v1/organization/token-keys", json={"jwks": {"keys": [{"kid": "a\x00"}]}})
    assert_problem(r, 422, "/jwks")


async def test_ids_beyond_bigint_are_422(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    assert_problem(await tenant.get("/v1/courses/c1/imports/99999999999999999999"), 422, "import_id")
    assert_problem(await tenant.get("/v1/courses/c1/rescores/0"), 422, "rescore_id")


async def test_weights_that_could_overflow_are_422(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    r = await tenant.put("/v1/courses/c1/policy", json={"categories": [{"name": "H", "weight": 1e30}]})
    assert_problem(r, 422, "/categories/0/weight")


async def test_streamed_audit_export_after_changes(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    await tenant.put("/v1/courses/c1/policy", json={"categories": [{"name": "H", "weight": 1}]})
    r = await tenant.get("/v1/courses/c1/audit.csv", params={"action": "policy.set"})
    assert r.status_code == 200 and r.text.count("\n") == 2


async def test_webhook_urls_that_are_no_urls_are_422(tenant: Tenant) -> None:
    for url in ("https://\u023aY=6\u0091", "https://example.org:\u00fc\u008c/x"):
        r = await tenant.post("/v1/webhooks", json={"url": url, "events": ["grade.changed"]})
        assert_problem(r, 422, "/url")


async def test_a_bad_sort_of_a_streamed_export_is_422_not_a_broken_download(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    assert_problem(await tenant.get("/v1/courses/c1/gradebook.csv", params={"sort": "-assessment:\x16"}), 422, "sort")


async def test_an_assessment_with_the_longest_title_is_graded(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    assert (await tenant.put("/v1/courses/c1/policy", json={"categories": [{"name": "H", "weight": 1}]})).is_success
    body = {"external_id": "a1", "title": "0" * 500, "category": "H", "points_possible": 10}
    assert (await tenant.post("/v1/courses/c1/assessments", json=body)).status_code == 201
    r = await tenant.post("/v1/courses/c1/enrollments:batch", json={"enrollments": [{"external_id": "u1"}]})
    assert r.status_code == 200, r.text
    assert (await tenant.put("/v1/courses/c1/assessments/a1/scores/u1", json={"earned": 5})).status_code == 200
    r = await tenant.post("/v1/courses/c1/policy:preview", json={"categories": [{"name": "H", "weight": 1}]})
    assert r.status_code == 200, r.text


async def test_an_import_whose_first_line_is_no_csv_is_422(tenant: Tenant) -> None:
    await tenant.post("/v1/courses", json={"external_id": "c1", "title": "C"})
    r = await tenant.post(
        "/v1/courses/c1/imports", files={"file": ("x.csv", b"\xf2\xb3\xbd\x94\r\xc2\xa1|\n", "text/csv")}
    )
    assert_problem(r, 422, "file")
    r = await tenant.post(
        "/v1/courses/c1/imports", files={"file": ("x.csv", b'"learner\nx",earned\r1,2\n', "text/csv")}
    )
    assert_problem(r, 422, "file")  # a quoted header cell may hold a line break: still no `learner` column
