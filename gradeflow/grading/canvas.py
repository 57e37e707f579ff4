"""The `canvas` preset: Canvas LMS's gradebook arithmetic (spec: canvas-grading.md, docs/grading.md).

`grade` runs the bulk path over all learners (`canvas_bulk.py`), which hands every learner it cannot
decide with certainty to the per-learner reference (`canvas_reference.py`); the two agree on every
learner. Drops are Canvas's own search, departing only where it is strictly worse (`canvas_drops.py`).
"""

from __future__ import annotations

from gradeflow.grading.canvas_bulk import evaluate, grade
from gradeflow.grading.canvas_reference import applied_weights, reference_grade

__all__ = ["applied_weights", "evaluate", "grade", "reference_grade"]
