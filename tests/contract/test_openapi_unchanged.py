"""Nothing a client sees changes by accident: paths, parameters, shapes and schema names are held to a snapshot."""

from __future__ import annotations

import difflib

from tests.contract.openapi_snapshot import SNAPSHOT, current, text


def test_the_openapi_document_matches_the_snapshot_but_for_prose() -> None:
    live, kept = text(current()), SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(kept.splitlines(True), live.splitlines(True), "snapshot", "app", n=2))
    assert live == kept, (
        "The OpenAPI document changed. If that is deliberate, run `python -m tests.contract.openapi_snapshot` "
        "and commit tests/contract/openapi.json.\n" + diff[:6000]
    )
