"""What the audit trail keeps of LTI tools and line items: the documents an auditor reads, key for key.

The API tests see these entries only through the audit listing; here each shape is pinned, including which fields
a change records (those it changed, with who the tool is)."""

from __future__ import annotations

from datetime import UTC, datetime

from gradeflow.lti.keysets import JwkSet
from gradeflow.lti.repository.ags import LineItemValues
from gradeflow.lti.repository.tools import Tool
from gradeflow.lti.service import line_items, tools

NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
KEYS: JwkSet = {"keys": [{"kid": "k1", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]}
TOOL = Tool(3, "Quiz", "client", "deployment", None, KEYS, ["scope"], ["c1"], NOW, NOW)


def test_a_tool_is_recorded_with_every_audited_field() -> None:
    assert tools._audited(TOOL) == {
        "tool": 3,
        "client_id": "client",
        "name": "Quiz",
        "jwks_url": None,
        "jwks": KEYS,
        "scopes": ["scope"],
        "courses": ["c1"],
    }


def test_a_change_of_a_tool_records_only_the_fields_it_changed() -> None:
    assert tools._audited(TOOL, ("name", "courses")) == {
        "tool": 3,
        "client_id": "client",
        "name": "Quiz",
        "courses": ["c1"],
    }


def test_a_line_item_is_recorded_with_its_times_in_iso_8601_and_its_tool() -> None:
    values = LineItemValues("res", None, "tag", NOW, None)
    assert line_items._record(values, 3) == {
        "resource_id": "res",
        "resource_link_id": None,
        "tag": "tag",
        "start_date_time": "2026-05-06T07:08:09+00:00",
        "end_date_time": None,
        "tool": 3,
    }
    assert line_items._record(values, None)["tool"] is None
