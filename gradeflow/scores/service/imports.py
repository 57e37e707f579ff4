"""CSV score imports: a dry run shows the diff; a real run applies every row or none, marks every
change with the import's id (the audit entries' `import_id`, which no client can set), and can be
reverted as a whole."""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import polars as pl
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock, context
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades
from gradeflow.notify import events
from gradeflow.scores.commands import ScoreRow
from gradeflow.scores.service import scores

FIELDS = ("learner", "assessment", "item", "earned", "possible", "source")
REQUIRED = ("learner", "assessment", "earned")
MAX_ROWS = 1_000_000
MAX_LISTED = 1000


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
) -> dict[str, Any]:
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
    import_id: int = await session.scalar(
        text(
            """
            INSERT INTO score_imports (organization_id, course_id, dry_run, file_name, mapping, content, requested_by)
            VALUES (:org, :c, :dry, :name, CAST(:mapping AS jsonb), :content, :by) RETURNING id
            """
        ),
        {
            "org": ref.organization_id,
            "c": ref.id,
            "dry": dry_run,
            "name": file_name,
            "mapping": orjson.dumps(columns).decode(),
            "content": content,
            "by": actor,
        },
    )
    await session.commit()
    await jobs.enqueue(queue, jobs.RUN_IMPORT, f"import-{import_id}", import_id)
    return await get_import(session, ref, import_id)


async def get_import(session: AsyncSession, ref: CourseRef, import_id: int) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(
                    """
                SELECT id, status, dry_run, file_name, mapping, result, error, requested_by, created_at, finished_at
                FROM score_imports WHERE id = :id AND course_id = :c
                """
                ),
                {"id": import_id, "c": ref.id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Import {import_id} not found in this course.")
    return dict(row)


def parse(content: bytes, columns: dict[str, str]) -> tuple[list[ScoreRow], list[int], list[dict[str, Any]]]:
    """Rows of the file as score rows (with their line numbers) and the lines that cannot be read."""
    frame = pl.read_csv(io.BytesIO(content), infer_schema=False, n_rows=MAX_ROWS, truncate_ragged_lines=True)
    data = {f: frame[columns[f]].to_list() if columns[f] in frame.columns else [None] * frame.height for f in FIELDS}
    rows: list[ScoreRow] = []
    lines: list[int] = []
    errors: list[dict[str, Any]] = []
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


_OUT_OF_RANGE = text(
    """
    SELECT rn FROM score_in
    WHERE earned > coalesce(possible, CASE WHEN item_ext IS NULL THEN a_possible ELSE i_possible END)
    ORDER BY rn
    """
)


async def run_import(sessionmaker: async_sessionmaker[AsyncSession], import_id: int) -> str:
    """Worker side: validate every row, then show the diff (dry run) or apply all rows in one
    transaction. Claimed with a conditional update: a job delivered twice runs once."""
    async with sessionmaker() as session:
        claimed = (
            await session.execute(
                text(
                    """
                    UPDATE score_imports SET status = 'running' WHERE id = :id AND status = 'queued'
                    RETURNING organization_id, course_id, dry_run, mapping, content, requested_by
                    """
                ),
                {"id": import_id},
            )
        ).first()
        await session.commit()
    if claimed is None:
        return "not queued"
    org, course_id, dry_run, columns, content, actor = claimed
    async with sessionmaker() as session:
        course = await session.scalar(text("SELECT external_id FROM courses WHERE id = :c"), {"c": course_id})
        ref = CourseRef(course_id, org, course or "", frozenset())
        try:
            result = await _process(session, ref, import_id, dry_run, columns, content, actor)
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
) -> dict[str, Any]:
    rows, lines, errors = parse(content, columns)
    staged = await scores.stage(session, ref, rows, actor) if rows else []
    errors += [{"line": lines[e.row], "field": e.field, "detail": e.detail} for e in staged]
    if rows:
        errors += [
            {"line": lines[rn], "field": "earned", "detail": "more points than possible"}
            for (rn,) in (await session.execute(_OUT_OF_RANGE)).all()
        ]
    errors.sort(key=lambda e: e["line"])
    summary: dict[str, Any] = {
        "rows": len(rows) + len({e["line"] for e in errors if e["line"] not in lines}),
        "errors": errors[:MAX_LISTED],
        "error_count": len(errors),
    }
    if errors:
        return summary
    diff = await scores.staged_diff(session)
    counts = {effect: sum(1 for d in diff if d["effect"] == effect) for effect in ("create", "change", "unchanged")}
    summary.update(counts)
    summary["changes"] = [
        {"line": lines[d["rn"]], **{k: d[k] for k in ("effect", "learner", "assessment", "item", "old", "new")}}
        for d in diff
        if d["effect"] != "unchanged"
    ][:MAX_LISTED]
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
    result: Any,
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
            "rows": None if result is None else result.get("rows"),
            "errors": None if result is None else result.get("error_count"),
        },
    )
    await session.execute(
        text(
            """
            UPDATE score_imports SET status = :s, result = CAST(:r AS jsonb), error = :e, finished_at = :now
            WHERE id = :id
            """
        ),
        {
            "id": import_id,
            "s": status,
            "r": None if result is None else orjson.dumps(result, default=str).decode(),
            "e": error,
            "now": clock.now(),
        },
    )
    await session.commit()


_REVERTABLE = text(
    """
    SELECT l.action, l.learner, l.assessment, l.item, l.old, l.new,
           t.id AS attempt_id, i.id AS item_id, e.id AS enrollment_id,
           CASE WHEN l.item IS NULL THEN jsonb_build_object('earned', trim_scale(t.entered), 'source', t.source)
                ELSE jsonb_build_object('earned', trim_scale(sc.earned), 'source', sc.source) END AS now_value
    FROM audit_log l
    JOIN assessments a ON a.course_id = l.course_id AND a.external_id = l.assessment
    JOIN enrollments e ON e.course_id = l.course_id AND e.external_id = l.learner
    JOIN attempts t ON t.assessment_id = a.id AND t.enrollment_id = e.id
    LEFT JOIN items i ON i.assessment_id = a.id AND i.external_id = l.item
    LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
    WHERE l.course_id = :c AND l.import_id = :i AND l.action IN ('score.set', 'item_score.set')
    ORDER BY l.id
    """
)


async def revert(session: AsyncSession, ref: CourseRef, import_id: int, actor: str) -> dict[str, Any]:
    """Undo an applied import: every score it changed goes back to its value before the import.

    A score changed again after the import is left alone and reported, so no later work is lost.
    """
    record = await get_import(session, ref, import_id)
    if record["dry_run"] or record["status"] != "succeeded":
        raise Conflict(
            "Only an applied import can be reverted (this one is "
            f"{'a dry run' if record['dry_run'] else record['status']})."
        )
    entries = (await session.execute(_REVERTABLE, {"c": ref.id, "i": import_id})).mappings().all()
    kept, restore = [], []
    for entry in entries:
        current = entry["now_value"]
        if current.get("earned") != entry["new"]["earned"] or current.get("source") != entry["new"]["source"]:
            kept.append({"learner": entry["learner"], "assessment": entry["assessment"], "item": entry["item"]})
        else:
            restore.append(entry)
    for is_item in (False, True):
        batch = [e for e in restore if (e["item"] is not None) == is_item]
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
                    "action": e["action"].replace(".set", ".revert"),
                    "learner": e["learner"],
                    "assessment": e["assessment"],
                    "item": e["item"],
                    "old": e["new"],
                    "new": e["old"],
                }
                for e in restore
            ),
            {"action": "import.revert", "new": {"import": import_id, "reverted": len(restore), "kept": len(kept)}},
        ],
    )
    # The restored scores under the course's late policy (a deduction depends on the entered score).
    await late_results.apply(session, ref.id, attempt_ids=sorted({e["attempt_id"] for e in restore}), actor=actor)
    await grades.refresh_learners(session, ref.id, sorted({e["enrollment_id"] for e in restore}))
    await session.execute(text("UPDATE score_imports SET status = 'reverted' WHERE id = :id"), {"id": import_id})
    await session.commit()
    return {"reverted": len(restore), "kept": kept[:MAX_LISTED]}


async def _restore(session: AsyncSession, entries: list[Any], is_item: bool) -> None:
    """Put the old values back (or remove scores that did not exist before), set-based. An attempt that had no
    score goes back to the status its own times give (handed in, started, or still to be taken): the late policy,
    applied after, then finds it missing again where it was."""
    params = {
        "attempt": [e["attempt_id"] for e in entries],
        "item": [e["item_id"] for e in entries],
        "had": [e["old"] is not None for e in entries],
        "earned": [None if e["old"] is None else str(e["old"]["earned"]) for e in entries],
        "possible": [None if e["old"] is None else str(e["old"]["possible"]) for e in entries],
        "source": [None if e["old"] is None else e["old"]["source"] for e in entries],
        "by": [None if e["old"] is None else e["old"]["graded_by"] for e in entries],
    }
    unnest = """unnest(CAST(:attempt AS bigint[]), CAST(:item AS bigint[]), CAST(:had AS bool[]),
                       CAST(:earned AS numeric[]), CAST(:possible AS numeric[]), CAST(:source AS text[]),
                       CAST(:by AS text[])) AS o(attempt, item, had, earned, possible, source, by)"""
    if is_item:
        await session.execute(
            text(
                f"DELETE FROM item_scores sc USING {unnest} WHERE NOT o.had AND sc.attempt_id = o.attempt"  # noqa: S608
                " AND sc.item_id = o.item"
            ),
            params,
        )
        await session.execute(
            text(
                f"UPDATE item_scores sc SET earned = o.earned, possible = o.possible, source = o.source,"  # noqa: S608
                f" scored_by = o.by FROM {unnest} WHERE o.had AND sc.attempt_id = o.attempt AND sc.item_id = o.item"
            ),
            params,
        )
        await scores.derive_totals(session, params["attempt"])
    else:
        await session.execute(
            text(
                f"UPDATE attempts t SET entered = o.earned, possible = o.possible, source = o.source,"  # noqa: S608
                " scored_by = o.by, confirmed_at = NULL, confirmed_by = NULL,"
                " status = CASE WHEN o.had THEN 'graded' WHEN t.submitted_at IS NOT NULL THEN 'submitted'"
                " WHEN t.started_at IS NOT NULL THEN 'in_progress' ELSE 'to_be_taken' END"
                f" FROM {unnest} WHERE t.id = o.attempt"
            ),
            params,
        )
