"""Invariants of the grading engine, over generated policies and scores."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gradeflow.grading.engine import evaluate
from gradeflow.grading.policy import EvaluateRequest

CATS = ["Homework", "Quiz", "Exam"]
points = st.integers(min_value=1, max_value=200)


@st.composite
def cases(draw: Any, preset: str = "standard") -> dict[str, Any]:
    n_a = draw(st.integers(min_value=1, max_value=8))
    catalogue = [{"id": f"a{j}", "category": draw(st.sampled_from(CATS)), "possible": draw(points)} for j in range(n_a)]
    categories = [
        {
            "name": c,
            "weight": draw(st.integers(min_value=0, max_value=100)) / 100,
            "drop_lowest": draw(st.integers(min_value=0, max_value=3)),
            "min_count": draw(st.integers(min_value=0, max_value=3)),
        }
        for c in CATS
    ]
    learners = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        scores = []
        for a in catalogue:
            kind = draw(st.sampled_from(["graded", "graded", "graded", "ungraded", "missing"]))
            if kind == "missing":
                continue
            earned = None if kind == "ungraded" else draw(st.integers(0, 2 * a["possible"] * 100)) / 100
            scores.append({"assessment_id": a["id"], "earned": earned})
        learners.append({"learner_id": f"l{i}", "scores": scores})
    cutoffs = [{"grade": "A", "min": 0.9}, {"grade": "B", "min": 0.8}, {"grade": "F", "min": 0}]
    return {
        "policy": {"preset": preset, "categories": categories, "cutoffs": cutoffs, "assessments": catalogue},
        "learners": learners,
    }


def run(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in evaluate(EvaluateRequest.model_validate(body))]


def percents(results: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(r["current"]["percent"], r["final"]["percent"]) for r in results]


@settings(max_examples=150, deadline=None)
@given(cases())
def test_dropping_never_lowers_the_best_outcome_grade(body: dict[str, Any]) -> None:
    without = {
        **body,
        "policy": {**body["policy"], "categories": [{**c, "drop_lowest": 0} for c in body["policy"]["categories"]]},
    }
    for dropped, kept in zip(run(body), run(without), strict=True):
        for version in ("current", "final"):
            for cd, ck in zip(dropped["categories"], kept["categories"], strict=True):
                if cd[version]["percent"] is not None and ck[version]["percent"] is not None:
                    assert cd[version]["percent"] >= ck[version]["percent"]
            if dropped[version]["percent"] is not None and kept[version]["percent"] is not None:
                # Every category rises or holds; a category can only enter the weighting by having work.
                assert dropped[version]["percent"] >= kept[version]["percent"] - 0.01


@settings(max_examples=100, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_permuting_learners_changes_nothing(body: dict[str, Any], rnd: Any) -> None:
    shuffled = list(body["learners"])
    rnd.shuffle(shuffled)
    before = {r["learner_id"]: r for r in run(body)}
    after = {r["learner_id"]: r for r in run({**body, "learners": shuffled})}
    assert before == after


@settings(max_examples=100, deadline=None)
@given(cases(), st.sampled_from([2, 3, 10, 0.5, 0.25]), st.sampled_from(["standard", "canvas", "openedx"]))
def test_scaling_all_points_changes_no_percent(body: dict[str, Any], k: float, preset: str) -> None:
    body = {**body, "policy": {**body["policy"], "preset": preset}}
    scaled = {
        "policy": {
            **body["policy"],
            # Rounded as a client would send them: 1.13 * 3 is 3.3899999999999997 in binary floating point.
            "assessments": [{**a, "possible": round(a["possible"] * k, 6)} for a in body["policy"]["assessments"]],
        },
        "learners": [
            {
                **learner,
                "scores": [
                    {**s, "earned": None if s["earned"] is None else round(s["earned"] * k, 6)}
                    for s in learner["scores"]
                ],
            }
            for learner in body["learners"]
        ],
    }
    assert percents(run(body)) == percents(run(scaled))
