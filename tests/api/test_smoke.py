from tests.conftest import Tenant


async def test_create_course(tenant: Tenant) -> None:
    r = await tenant.post("/v1/courses", json={"external_id": "c1", "title": "Course 1"})
    assert r.status_code == 201, r.text
    r = await tenant.get("/v1/courses/c1")
    assert r.json()["title"] == "Course 1"
