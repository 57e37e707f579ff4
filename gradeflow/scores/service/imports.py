"""CSV score imports: a dry run shows the diff; a real run applies every row or none, marks every
change with the import's id (the audit entries' `import_id`, which no client can set), and can be
reverted as a whole."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NotRequired, TypedDict

import orjson
import polars as pl
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock, context
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades
from gradeflow.jobs import JobName
from gradeflow.notify import events
from gradeflow.scores.commands import ScoreRow
from gradeflow.scores.repository import imports as repository
from gradeflow.scores.repository.imports import ImportRecord, Revertable
from gradeflow.scores.service import scores

FIELDS = ("learner", "assessment", "item", "earned", "possible", "source")
REQUIRED = ("learner", "assessment", "earned")
MAX_ROWS = 1_000_000
MAX_LISTED = 1000


# An import's result is a JSON document stored with it (ImportRecord.result): its parts as TypedDicts.


class LineError(TypedDict):
    line: int
    field: str
    detail: str


class LineChange(TypedDict):
    """What applying a line changes (create or change), with the old and new score."""

    line: int
    effect: str
    learner: str
    assessment: str
    item: str | None
    old: dict[str, Any] | None
    new: dict[str, Any]


class ImportSummary(TypedDict):
    """A run's result: every line in error, or (none in error) the counts per effect and the changes."""

    rows: int
    errors: list[LineError]  # the first MAX_LISTED
    error_count: int
    create: NotRequired[int]
    change: NotRequired[int]
    unchanged: NotRequired[int]
    changes: NotRequired[list[LineChange]]  # the first MAX_LISTED


class KeptScore(TypedDict):
    learner: str
    assessment: str
    item: str | None


@dataclass(frozen=True, slots=True)
class Reverted:
    """A revert: how many scores went back, and those left alone (changed again since the import)."""

    reverted: int
    kept: list[KeptScore]  # the first MAX_LISTED


def header_of(content: bytes) -> list[str]:
    """The file's first CSV record (any line ending; a header longer than 64 KB is not one)."""
    head = content[:65536].decode("utf-8-sig", errors="replace")
    try:
        return next(csv.reader(io.StringIO(head, newline="")), [])
    except csv.Error as exc:
        raise ValidationFailed.one("file", f"The first line cannot be read as CSV: {exc}.", "form") from exc


def check_quoting(content: bytes) -> None:
    """Refuse a file whose quoting is broken (a quote never closed, text after a closing quote): read
    leniently, it would swallow every later line into one field and import nothing."""
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig", errors="replace"), newline=""), strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValidationFailed.one(
            "file", f"Line {start} cannot be read as CSV ({exc}): check its quotes.", "form"
        ) from exc


async def create_import(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    content: bytes,
    file_name: str | None,
    mapping: dict[str, str],
    dry_run: bool,
    actor: str,
) -> ImportRecord:
    """Check the file's header against the mapping, record the import, and queue it."""
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise ValidationFailed.one("mapping", f"Unknown fields {unknown}; map any of {list(FIELDS)}.", "form")
    columns = {f: mapping.get(f, f) for f in FIELDS}
    header = header_of(content)
    missing = [f for f in REQUIRED if columns[f] not in header]
    if missing:
        wanted = ", ".join(repr(columns[f]) for f in missing)
        raise ValidationFailed.one("file", f"The header has no column {wanted} (it has {header}).", "form")
    await asyncio.to_thread(check_quoting, content)
    import_id = await repository.create(
        session,
        ref.organization_id,
        ref.id,
        dry_run,
        file_name,
        orjson.dumps(columns).decode(),
        content,
        actor,
    )
    await session.commit()
    await jobs.enqueue(queue, JobName.RUN_IMPORT, jobs.job_id(JobName.RUN_IMPORT, import_id), import_id)
    return await get_import(session, ref, import_id)


async def get_import(session: AsyncSession, ref: CourseRef, import_id: int) -> ImportRecord:
    record = await repository.get(session, ref.id, import_id)
    if record is None:
        raise NotFound(f"Import {import_id} not found in this course.")
    return record


def parse(content: bytes, columns: dict[str, str]) -> tuple[list[ScoreRow], list[int], list[LineError]]:
    """Rows of the file as score rows (with their line numbers) and the lines that cannot be read."""
    frame = pl.read_csv(io.BytesIO(content), infer_schema=False, n_rows=MAX_ROWS, truncate_ragged_lines=True)
    data = {f: frame[columns[f]].to_list() if columns[f] in frame.columns else [None] * frame.height for f in FIELDS}
    rows: list[ScoreRow] = []
    lines: list[int] = []
    errors: list[LineError] = []
    for k in range(frame.height):
        line = k + 2  # 1 is the header
        values = {f: (data[f][k] or "").strip() for f in FIELDS}
        try:
            earned = Decimal(values["earned"])
            possible = Decimal(values["possible"]) if values["possible"] else None
            if not earned.is_finite() or (possible is not None and not possible.is_finite()):
                raise InvalidOperation
        except InvalidOperation:
            errors.append({"line": line, "field": "earned", "detail": "points must be a number"})
            continue
        try:
            rows.append(
                ScoreRow(
                    assessment=values["assessment"],
                    learner=values["learner"],
                    item=values["item"] or None,
                    earned=earned,
                    possible=possible,
                    source=values["source"] or "manual",
                )
            )
            lines.append(line)
        except ValidationError as exc:
            for err in exc.errors():
                errors.append(
                    {"line": line, "field": str(err["loc"][0]) if err["loc"] else "row", "detail": err["msg"]}
                )
    return rows, lines, errors


async def run_import(sessionmaker: async_sessionmaker[AsyncSession], import_id: int) -> str:
    """Worker side: validate every row, then show the diff (dry run) or apply all rows in one
    transaction. Claimed with a conditional update: a job delivered twice runs once."""
    async with sessionmaker() as session:
        claimed = await repository.claim(session, import_id)
        await session.commit()
    if claimed is None:
        return "not queued"
    async with sessionmaker() as session:
        ref = CourseRef(claimed.course_id, claimed.organization_id, claimed.course, frozenset())
        dry_run, actor = claimed.dry_run, claimed.requested_by
        try:
            result = await _process(session, ref, import_id, dry_run, claimed.mapping, claimed.content, actor)
        except Exception as exc:
            await session.rollback()
            await _finish(session, ref, import_id, dry_run, "failed", None, f"{type(exc).__name__}: {exc}")
            raise
        status = "failed" if result["errors"] and not dry_run else "succeeded"
        await _finish(
            session, ref, import_id, dry_run, status, result, None if status == "succeeded" else "rows in error"
        )
    return status


async def _process(
    session: AsyncSession,
    ref: CourseRef,
    import_id: int,
    dry_run: bool,
    columns: dict[str, str],
    content: bytes,
    actor: str,
) -> ImportSummary:
    rows, lines, errors = parse(content, columns)
    staged = await scores.stage(session, ref, rows, actor) if rows else []
    errors += [LineError(line=lines[e.row], field=e.field, detail=e.detail) for e in staged]
    if rows:
        errors += [
            LineError(line=lines[rn], field="earned", detail="more points than possible")
            for rn in await repository.staged_out_of_range(session)
        ]
    errors.sort(key=lambda e: e["line"])
    if errors:
        return ImportSummary(
            rows=len(rows) + len({e["line"] for e in errors if e["line"] not in lines}),
            errors=errors[:MAX_LISTED],
            error_count=len(errors),
        )
    diff = await scores.staged_diff(session)
    counts = {effect: sum(1 for d in diff if d.effect == effect) for effect in ("create", "change", "unchanged")}
    changes = [
        LineChange(
            line=lines[d.rn],
            effect=d.effect,
            learner=d.learner,
            assessment=d.assessment,
            item=d.item,
            old=d.old,
            new=d.new,
        )
        for d in diff
        if d.effect != "unchanged"
    ]
    summary = ImportSummary(
        rows=len(rows),
        errors=[],
        error_count=0,
        create=counts["create"],
        change=counts["change"],
        unchanged=counts["unchanged"],
        changes=changes[:MAX_LISTED],
    )
    if not dry_run:
        token = context.import_id.set(import_id)
        try:
            await scores.apply_staged(session, ref, actor, any(r.item is not None for r in rows))
            await audit.record(
                session, ref.organization_id, ref.id, actor, "import.apply", new={"import": import_id, **counts}
            )
        finally:
            context.import_id.reset(token)
    return summary


async def _finish(
    session: AsyncSession,
    ref: CourseRef,
    import_id: int,
    dry_run: bool,
    status: str,
    result: ImportSummary | None,
    error: str | None,
) -> None:
    await events.emit(
        session,
        ref.organization_id,
        "import.completed",
        {
            "course": ref.external_id,
            "import": import_id,
            "status": "applied" if status == "succeeded" and not dry_run else status,
            "dry_run": dry_run,
            "rows": None if result is None else result["rows"],
            "errors": None if result is None else result["error_count"],
        },
    )
    await repository.finish(
        session,
        import_id,
        status,
        None if result is None else orjson.dumps(result, default=str).decode(),
        error,
        clock.now(),
    )
    await session.commit()


async def revert(session: AsyncSession, ref: CourseRef, import_id: int, actor: str) -> Reverted:
    """Undo an applied import: every score it changed goes back to its value before the import.

    A score changed again after the import is left alone and reported, so no later work is lost.
    """
    record = await get_import(session, ref, import_id)
    if record.dry_run or record.status != "succeeded":
        raise Conflict(
            f"Only an applied import can be reverted (this one is {'a dry run' if record.dry_run else record.status})."
        )
    kept: list[KeptScore] = []
    restore: list[Revertable] = []
    for entry in await repository.revertable(session, ref.id, import_id):
        current = entry.now_value
        if current.get("earned") != entry.new["earned"] or current.get("source") != entry.new["source"]:
            kept.append(KeptScore(learner=entry.learner, assessment=entry.assessment, item=entry.item))
        else:
            restore.append(entry)
    for is_item in (False, True):
        batch = [e for e in restore if (e.item is not None) == is_item]
        if batch:
            await _restore(session, batch, is_item)
    await audit.record_many(
        session,
        ref.organization_id,
        ref.id,
        actor,
        [
            *(
                {
                    "action": e.action.replace(".set", ".revert"),
                    "learner": e.learner,
                    "assessment": e.assessment,
                    "item": e.item,
                    "old": e.new,
                    "new": e.old,
                }
                for e in restore
            ),
            {"action": "import.revert", "new": {"import": import_id, "reverted": len(restore), "kept": len(kept)}},
        ],
    )
    # The restored scores under the course's late policy (a deduction depends on the entered score).
    await late_results.apply(session, ref.id, attempt_ids=sorted({e.attempt_id for e in restore}), actor=actor)
    await grades.refresh_learners(session, ref.id, sorted({e.enrollment_id for e in restore}))
    await repository.mark_reverted(session, import_id)
    await session.commit()
    return Reverted(len(restore), kept[:MAX_LISTED])


async def _restore(session: AsyncSession, entries: list[Revertable], is_item: bool) -> None:
    """Put the old values back (or remove scores that did not exist before), set-based. An attempt that had no
    score goes back to the status its own times give (handed in, started, or still to be taken): the late policy,
    applied after, then finds it missing again where it was."""
    if is_item:
        await repository.restore_item_scores(session, entries)
        await scores.derive_totals(session, [e.attempt_id for e in entries])
    else:
        await repository.restore_totals(session, entries)
