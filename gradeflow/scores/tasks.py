"""Score imports and item rescores."""

from __future__ import annotations

from gradeflow.jobs import WorkerContext
from gradeflow.scores.service import imports, rescoring


async def run_score_import(ctx: WorkerContext, import_id: int) -> str:
    """Validate and (unless a dry run) apply one CSV import, all rows or none."""
    return await imports.run_import(ctx["sessionmaker"], import_id)


async def rescore_item(ctx: WorkerContext, rescore_id: int) -> str:
    """Rescore one item for every attempt after its points or answer key changed."""
    return await rescoring.run(ctx["sessionmaker"], rescore_id)
