"""CSV score imports (planners): dry run, apply, revert."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import orjson
from fastapi import APIRouter, File, Form, Response, UploadFile, status

from gradeflow.core.errors import ValidationFailed
from gradeflow.core.validation import clean_text
from gradeflow.http.deps import ImportWrite, PrincipalDep, RecordId, RedisDep, SessionDep, SettingsDep, actor
from gradeflow.http.errors import CONFLICT
from gradeflow.scores.schemas.imports import ImportOut, RevertOut
from gradeflow.scores.service import imports

router = APIRouter(prefix="/v1/courses/{course}/imports", tags=["imports"])


def _mapping(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed.one("mapping", "Not JSON.", "form") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationFailed.one(
            "mapping", 'An object of field -> CSV header, e.g. {"learner": "Student ID"}.', "form"
        )
    return dict(clean_text(value))


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_import(
    session: SessionDep,
    queue: RedisDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    ref: ImportWrite,
    response: Response,
    file: Annotated[
        UploadFile, File(description="CSV with a header row: learner, assessment, item?, earned, possible?, source?")
    ],
    dry_run: Annotated[bool, Form()] = False,
    mapping: Annotated[
        str | None, Form(description='JSON: our field -> your header, e.g. {"learner": "Student ID"}')
    ] = None,
) -> ImportOut:
    """Queue a CSV import of scores and overrides. `dry_run` reports what would be created, changed
    or left alone and every row in error (by line) without writing; a real run applies every row or
    none and can be reverted as a whole."""
    content = await file.read(settings.limits.max_body_bytes + 1)
    if len(content) > settings.limits.max_body_bytes:
        raise ValidationFailed.one("file", "The file is over the size limit.", "form")
    record = await imports.create_import(
        session, queue, ref, content, file.filename, _mapping(mapping), dry_run, actor(principal)
    )
    response.headers["Location"] = f"/v1/courses/{quote(ref.external_id, safe='')}/imports/{record.id}"
    return ImportOut.model_validate(record, from_attributes=True)


@router.get("/{import_id}")
async def get_import(session: SessionDep, ref: ImportWrite, import_id: RecordId) -> ImportOut:
    """An import's state and, when done, its diff or its row errors."""
    return ImportOut.model_validate(await imports.get_import(session, ref, import_id), from_attributes=True)


@router.post("/{import_id}:revert", responses=CONFLICT)
async def revert_import(
    session: SessionDep, principal: PrincipalDep, ref: ImportWrite, import_id: RecordId
) -> RevertOut:
    """Undo an applied import as a whole (scores changed again since then are left alone and listed)."""
    return RevertOut.model_validate(await imports.revert(session, ref, import_id, actor(principal)))
