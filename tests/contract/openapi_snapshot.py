"""The OpenAPI document as a client sees it, without its prose: what `test_openapi_unchanged` holds the app to.

Run `python -m tests.contract.openapi_snapshot` after a deliberate change to the API's shapes, paths or parameters,
and commit `openapi.json` with it; prose (descriptions, summaries) may change freely and is not kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("openapi.json")
PROSE = {"description", "summary"}


def without_prose(node: Any, parent: str | None = None) -> Any:
    """The document with every description and summary removed (a property named "description" is kept)."""
    if isinstance(node, dict):
        return {
            k: without_prose(v, k)
            for k, v in node.items()
            if not (k in PROSE and isinstance(v, str) and parent != "properties")
        }
    if isinstance(node, list):
        return [without_prose(v) for v in node]
    return node


def current() -> dict[str, Any]:
    from gradeflow.api.main import create_app

    return without_prose(create_app().openapi())  # type: ignore[no-any-return]


def text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    SNAPSHOT.write_text(text(current()))
    print(f"wrote {SNAPSHOT}")
