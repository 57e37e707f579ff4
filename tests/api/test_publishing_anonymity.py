"""A marker who also publishes (grader or moderator with the publisher role, not planner) may not name learners in
a publication of an anonymous assessment: its counts would say, learner by learner, how far their work is marked."""

from __future__ import annotations

import pytest

from tests.api.test_anonymity import LEARNERS, anonymous_exam
from tests.conftest import Tenant, assert_problem
from tests.helpers import grant, user_token

PUBS = "/v1/courses/c1/publications"


@pytest.mark.parametrize("roles", [("grader", "publisher"), ("moderator", "publisher")])
async def test_a_marker_who_publishes_names_no_learner_of_an_anonymous_assessment(
    tenant: Tenant, roles: tuple[str, ...]
) -> None:
    tok = await anonymous_exam(tenant)
    await grant(tenant, "c1", "mp", *roles)
    token = await user_token(tenant, "mp")
    learner = next(iter(LEARNERS))
    for action in ("publish", "retract"):
        body = {"action": action, "assessments": ["exam"], "audience": {"learners": [learner]}}
        assert_problem(await tenant.post(PUBS, json=body, as_=token), 403)
    # The whole course, or what is not yet published, is theirs to publish.
    r = await tenant.post(PUBS, json={"assessments": ["exam"], "audience": {"unpublished": True}}, as_=token)
    assert r.status_code == 201, r.text
    # A publisher who does not mark, and an API key, name learners as before.
    await grant(tenant, "c1", "pub", "publisher")
    body = {"assessments": ["exam"], "audience": {"learners": [learner]}}
    r = await tenant.post(PUBS, json=body, as_=await user_token(tenant, "pub"))
    assert r.status_code == 201, r.text
    assert (await tenant.post(PUBS, json=body)).status_code == 201
    # Once its anonymity is lifted, the marker names learners too.
    assert (await tenant.post("/v1/courses/c1/assessments/exam/anonymity:lift", as_=tok["p1"])).status_code == 200
    assert (await tenant.post(PUBS, json=body, as_=token)).status_code == 201
