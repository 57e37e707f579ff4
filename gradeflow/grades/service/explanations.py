"""A stored grade's explanation: per category and version what counted, what was dropped and the
weight applied; and the stored explanation joined with its policy version's rules, as the API shows
it. Pure functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from gradeflow.grading import engine
from gradeflow.grading.policy import Policy
from gradeflow.grading.results import LearnerResult

# A category's entry in an explanation: its name, the weight applied and the engine's figures (CategoryResult:
# percent, score, possible, dropped, counted, and what its preset adds); explained, also its weight and drop rules.
# Open, as what a preset adds is.
CategoryEntry = Mapping[str, object]


class Explanation(TypedDict):
    """What is stored per learner to explain the grade: per version, each category's entry."""

    current: list[CategoryEntry]
    final: list[CategoryEntry]


class Explained(Explanation):
    """A stored explanation as the API shows it: with the policy version, its preset and weighting."""

    policy_version: int
    preset: str | None
    weighting: str | None


def explanation(
    policy: Policy, result: LearnerResult, applied: Callable[[Sequence[bool]], list[float | None]] | None = None
) -> Explanation:
    """What is stored per learner to explain the grade: per category and version what counted, what
    was dropped and the weight applied (the preset's rule, `engine.applied_weights`, which the grade
    used too). The rules come from the policy version when it is read."""
    weights_of = applied or engine.applied_weights(policy)

    def entries(final: bool) -> list[CategoryEntry]:
        cats = [(name, fin if final else cur) for name, cur, fin in result.categories]
        weights = weights_of([(c.possible or 0) > 0 for _, c in cats])
        return [{"name": n, "applied_weight": w, **c.as_dict()} for (n, c), w in zip(cats, weights, strict=True)]

    return {"current": entries(final=False), "final": entries(final=True)}


def explained(stored: dict[str, Any], rules: dict[str, Any], version: int) -> Explained:
    """The stored explanation joined with the policy version's rules, as the API shows it."""
    by_name = {c["name"]: c for c in rules.get("categories", [])}

    def entries(version_name: str) -> list[CategoryEntry]:
        return [
            {
                **entry,
                "weight": by_name.get(entry["name"], {}).get("weight"),
                "rules": {
                    k: by_name.get(entry["name"], {}).get(k)
                    for k in ("drop_lowest", "drop_highest", "min_count", "never_drop")
                },
            }
            for entry in stored.get(version_name, [])
        ]

    return {
        "policy_version": version,
        "preset": rules.get("preset"),
        "weighting": rules.get("weighting"),
        "current": entries("current"),
        "final": entries("final"),
    }
