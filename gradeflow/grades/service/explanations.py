"""A stored grade's explanation: per category and version what counted, what was dropped and the
weight applied; and the stored explanation joined with its policy version's rules, as the API shows
it. Pure functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gradeflow.grading import engine
from gradeflow.grading.policy import Policy
from gradeflow.grading.results import LearnerResult


def explanation(
    policy: Policy, result: LearnerResult, applied: Callable[[Sequence[bool]], list[float | None]] | None = None
) -> dict[str, Any]:
    """What is stored per learner to explain the grade: per category and version what counted, what
    was dropped and the weight applied (the preset's rule, `engine.applied_weights`, which the grade
    used too). The rules come from the policy version when it is read."""
    weights_of = applied or engine.applied_weights(policy)
    out: dict[str, Any] = {}
    for version in ("current", "final"):
        cats = [(name, cur if version == "current" else fin) for name, cur, fin in result.categories]
        weights = weights_of([(c.possible or 0) > 0 for _, c in cats])
        out[version] = [
            {"name": n, "applied_weight": w, **c.as_dict()} for (n, c), w in zip(cats, weights, strict=True)
        ]
    return out


def explained(stored: dict[str, Any], rules: dict[str, Any], version: int) -> dict[str, Any]:
    """The stored explanation joined with the policy version's rules, as the API shows it."""
    by_name = {c["name"]: c for c in rules.get("categories", [])}
    out: dict[str, Any] = {
        "policy_version": version,
        "preset": rules.get("preset"),
        "weighting": rules.get("weighting"),
    }
    for version_name in ("current", "final"):
        out[version_name] = [
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
    return out
