"""Score imports."""

from __future__ import annotations

from typing import Any

from shared.services import imports


async def run_score_import(ctx: dict[str, Any], import_id: int) -> str:
    """Validate and (unless a dry run) apply one CSV import, all rows or none."""
    return await imports.run_import(ctx["sessionmaker"], import_id)
