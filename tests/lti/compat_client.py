"""A tool built on PyLTI1p3 2.0.0, run in its own virtual environment (the package shares its module name with
pylti1p3next): reads its registration and launch claims as JSON on stdin, drives AGS and NRPS through the
library, and prints what it saw as JSON for tests/lti/test_pylti1p3_compat.py to check.

PyLTI1p3 2.0.0 lower-cases the whole Link header before taking the next page's URL, and reads one page of results
only. Only the standard library, requests and pylti1p3 may be imported here."""

from __future__ import annotations

import json
import sys
from typing import Any, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector


def with_query(url: str, **params: str | int) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def score(user: str, given: float, maximum: float, timestamp: str) -> Grade:
    return (
        Grade()
        .set_user_id(user)
        .set_score_given(given)
        .set_score_maximum(maximum)
        .set_timestamp(timestamp)
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
    )


def run(setup: dict[str, Any]) -> dict[str, Any]:
    sent: list[tuple[str, str, int]] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: sent.append((r.request.method, r.request.url, r.status_code)))
    registration = (
        Registration()
        .set_client_id(setup["client_id"])
        .set_auth_token_url(setup["token_url"])
        .set_tool_private_key(setup["private_key"])
        .set_tool_public_key(setup["public_key"])
    )
    connector = ServiceConnector(registration, session)
    ags_claim, memberships = setup["ags"], setup["nrps"]["context_memberships_url"]
    container = ags_claim["lineitems"]
    ags = AssignmentsGradesService(connector, ags_claim)
    report: dict[str, Any] = {}

    quiz = LineItem().set_tag("quiz").set_label("quiz").set_score_maximum(20).set_resource_id("quiz")
    made = ags.find_or_create_lineitem(quiz)
    report["created"] = made.get_id()
    report["found"] = ags.find_or_create_lineitem(LineItem().set_tag("quiz").set_score_maximum(5)).get_id()
    for n in range(4):
        part = LineItem().set_tag(f"t{n % 2}").set_label(f"part {n}").set_score_maximum(10).set_resource_id(f"p{n}")
        ags.find_or_create_lineitem(part, find_by="resource_id")

    def labels(url: str) -> list[str]:
        service = AssignmentsGradesService(connector, cast(Any, {**ags_claim, "lineitems": url}))
        return sorted(str(x["label"]) for x in service.get_lineitems())

    report["paged_labels"] = labels(with_query(container, limit=2))
    report["tagged_labels"] = labels(with_query(container, tag="t0", limit=1))

    for n, user in enumerate(setup["learners"]):
        ags.put_grade(score(user, 2 * n, 10, setup["timestamp"]), made)
    report["results"] = sorted((r["userId"], r["resultScore"], r["resultMaximum"]) for r in ags.get_grades(made))
    try:
        ags.put_grade(score("nobody", 1, 10, setup["timestamp"]), made)
        report["unknown_user_status"] = None
    except LtiServiceException as e:
        report["unknown_user_status"] = e.response.status_code

    def members(url: str) -> list[str]:
        service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
        return sorted(str(m["user_id"]) for m in service.get_members())

    report["members"] = members(with_query(memberships, limit=2))
    report["learners"] = members(with_query(memberships, role="Learner", limit=2))
    report["token_requests"] = sum(1 for method, url, _ in sent if method == "POST" and url == setup["token_url"])
    report["container_pages"] = sum(1 for method, url, _ in sent if method == "GET" and url.startswith(container))
    report["member_pages"] = sum(1 for method, url, _ in sent if method == "GET" and url.startswith(memberships))
    report["failed"] = [(method, url, status) for method, url, status in sent if status >= 400]
    session.close()
    return report


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
