"""The shared Open edX sample vectors (tests/vectors/openedx-sample.json, produced by edX's own graders):
each learner of a case as the evaluate API takes it, and the check that our answer is edX's. Used
in-process (tests/unit/test_grading_vectors.py) and through the API (tests/api/test_grading_vectors.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

OPENEDX = json.loads((Path(__file__).resolve().parent / "vectors" / "openedx-sample.json").read_text())["cases"]

# Two GRADER entries of one type: a policy Gradeflow rejects (duplicate category names).
REJECTED = "duplicate_type"


def pct(fraction: float) -> float:
    return float(Decimal(repr(fraction)) * 100)


def openedx_request(case: dict[str, Any], learner: dict[str, Any]) -> dict[str, Any]:
    """The case as our API takes it, the way an importer of an Open edX course would map it."""
    policy = case["effective_policy"]
    categories = [
        {
            "name": g["type"],
            "short_label": g.get("short_label"),
            "weight": g.get("weight", 0),
            "drop_lowest": g["drop_count"],
            "min_count": int(float(g["min_count"])),  # Open edX's own coercion
        }
        for g in policy["GRADER"]
    ]
    cutoffs = sorted(policy["GRADE_CUTOFFS"].items(), key=lambda kv: -kv[1])  # stable: ties keep order
    scores = learner["scores"]
    if scores and all("index" in s for s in scores):
        scores = sorted(scores, key=lambda s: s["index"])
    scores = [s for s in scores if s.get("graded", True)]
    return {
        "policy": {
            "preset": "openedx",
            "categories": categories,
            "cutoffs": [{"grade": g, "min": m} for g, m in cutoffs],
            "assessments": [
                {"id": f"s{k}", "category": s["type"], "possible": s["possible"], "label": s["label"]}
                for k, s in enumerate(scores)
            ],
        },
        "learners": [
            {
                "learner_id": learner["id"],
                "scores": [{"assessment_id": f"s{k}", "earned": s["earned"]} for k, s in enumerate(scores)],
            }
        ],
    }


def assert_matches_openedx(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """One learner of the evaluate answer is edX's answer for that learner."""
    assert got["current"] == got["final"]
    assert got["current"]["percent"] == pct(expected["percent"]), expected["raw_percent"]
    assert got["current"]["grade"] == expected["letter_grade"]
    assert got["current"]["passed"] == expected["passed_raw"]
    for cat, typ in zip(got["categories"], expected["types"], strict=True):
        assert cat["name"] == typ["type"]
        assert cat["current"]["percent"] == pct(typ["average"]), (cat, typ)
        dropped_real = sum(1 for it in typ["items"] if it["dropped"] and it["source"] == "score")
        assert len(cat["current"]["dropped"]) == dropped_real
