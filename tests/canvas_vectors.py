"""The shared Canvas sample vectors (tests/vectors/canvas-sample.json, spec §5): each case as the
evaluate API takes it, and the check that results are Canvas's answer (§2.6: except where Canvas's
drop search kept a strictly worse set). Used through the API and in-process."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

CANVAS = json.loads((Path(__file__).resolve().parent / "vectors" / "canvas-sample.json").read_text())["cases"]


def canvas_request(case: dict[str, Any]) -> dict[str, Any]:
    data = case["input"]
    assignments = sorted(((a, g) for g in data["groups"] for a in g["assignments"]), key=lambda ag: float(ag[0]["id"]))
    known = {a["id"] for a, _ in assignments}

    def rules(g: dict[str, Any]) -> dict[str, Any]:
        r = g.get("rules") or {}
        # Canvas matches never_drop with ===, so only ids of the same type and present count.
        never = [str(x) for x in r.get("never_drop", []) if x in known]
        return {"drop_lowest": r.get("drop_lowest", 0), "drop_highest": r.get("drop_highest", 0), "never_drop": never}

    return {
        "policy": {
            "preset": "canvas",
            "weighting": "categories" if data["weighting"] else "points",
            "categories": [
                {"name": str(g["id"]), "weight": float(Decimal(repr(g.get("weight") or 0)) / 100), **rules(g)}
                for g in data["groups"]
            ],
            "cutoffs": [{"grade": g, "min": m} for g, m in (data.get("scheme") or [])],
            "assessments": [
                {
                    "id": str(a["id"]),
                    "category": str(g["id"]),
                    "possible": a.get("points_possible") or 0,
                    "omit_from_final": bool(a.get("omit_from_final_grade")),
                }
                for a, g in assignments
            ],
        },
        "learners": [
            {
                "learner_id": str(learner["id"]),
                "scores": [
                    {
                        "assessment_id": str(s["assignment_id"]),
                        "earned": s.get("score"),
                        "excused": bool(s.get("excused")),
                    }
                    for s in learner["submissions"]
                ],
            }
            for learner in data["learners"]
        ],
    }


def ids(values: list[Any]) -> list[str]:
    return [str(v) for v in values]


def assert_matches_canvas(case: dict[str, Any], learners: list[dict[str, Any]]) -> None:
    """Results shaped as the API's are Canvas's answer everywhere, except that where Canvas's drop
    search missed the optimum (§2.5) the group has the true best ratio and the course result is not
    compared."""
    got = {g["learner_id"]: g for g in learners}
    suboptimal = {
        (c["learner"], c["group"], c["version"]): c
        for c in case["analysis"]["drop_checks"]
        if c["path"] == "pointed" and not c["optimal"]
    }
    for expected in case["expected"]["learners"]:
        learner = got[str(expected["id"])]
        affected = {v for (lid, _, v) in suboptimal if lid == expected["id"]}
        for version in ("current", "final"):
            groups = {c["name"]: c[version] for c in learner["categories"]}
            for eg in expected["groups"]:
                ours = groups[str(eg["id"])]
                check = suboptimal.get((expected["id"], eg["id"], version))
                if check is not None:
                    ratio = Fraction(Decimal(repr(ours["score"]))) / Fraction(Decimal(repr(ours["possible"])))
                    assert float(ratio) == check["best_ratio"] != check["canvas_kept_ratio"]
                    continue
                want = eg[version]
                assert (ours["score"], ours["possible"], ours["percent"]) == (
                    want["score"],
                    want["possible"],
                    want["percent"],
                ), (eg["id"], version, ours, want)
                assert sorted(ours["dropped"]) == sorted(ids(want["dropped"])), (eg["id"], version)
            if version in affected:
                continue
            want_course = expected[version]
            ours_course = learner[version]
            assert (ours_course["score"], ours_course["possible"], ours_course["percent"], ours_course["grade"]) == (
                want_course["score"],
                want_course["possible"],
                want_course["percent"],
                want_course["letter"],
            ), (version, ours_course, want_course)
