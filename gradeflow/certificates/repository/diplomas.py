"""The SQL of diplomas: what each certificate's diploma prints (`_DIPLOMAS`, one source), which stored
diplomas are stale, recording rendered ones, and the objects no certificate points to any more.

`_DIPLOMAS` says what each certificate's diploma prints: its certification's title, text, language,
signatory and images (the default diploma when the course or assessment has no certification row),
the course and assessment titles, the learner's name (the reports' rule), the code and the issue date;
and `digest`, a hash of all of it computed in SQL, so that a listing tells a stale diploma from a
current one set-based (`diploma_digest` is the digest it was rendered from)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.certificates.repository.certificates import Selection
from gradeflow.certificates.repository.certifications import Scope
from gradeflow.certificates.repository.eligibility import SHOWN_TO_LEARNER
from gradeflow.core import names

# Part of every digest: raise it when the layout changes, and every stored diploma is rendered again.
LAYOUT = 1


@dataclass(frozen=True, slots=True)
class DiplomaRow:
    """One certificate's diploma: what it prints, where it is kept, and whether that is current
    (`diploma_digest` == `digest`)."""

    id: int
    course_id: int
    enrollment_id: int
    code: str
    type: str
    issued_at: datetime
    revoked_at: datetime | None
    diploma_key: str | None
    diploma_digest: str | None
    diploma_bytes: int | None
    learner: str
    name: str
    course_ref: str
    organization_id: int
    course: str
    assessment: str | None
    assessment_title: str | None
    title: str | None
    body: str | None
    language: str
    signatory_name: str | None
    signatory_title: str | None
    logo_key: str | None
    logo_sha256: str | None
    logo_type: str | None
    signature_key: str | None
    signature_sha256: str | None
    signature_type: str | None
    digest: str

    @property
    def current(self) -> bool:
        """The stored diploma says what the certificate's diploma would print now."""
        return self.diploma_key is not None and self.diploma_digest == self.digest


# One row per certificate `k` (aliases: `e` enrollment, `c` course, `a` its assessment or none, `cf` its
# certification or none, `li`/`si` the logo and signature images, `x` the name and language printed).
# The name is gradeflow.core.names' rule; the date is the UTC day the certificate was issued
# (a date, so the digest reads the same in every session's time zone).
_DIPLOMAS = """
    SELECT k.id, k.course_id, k.enrollment_id, k.code, k.type, k.created_at AS issued_at, k.revoked_at,
           k.diploma_key, k.diploma_digest, k.diploma_bytes,
           e.external_id AS learner, x.name, c.external_id AS course_ref, c.organization_id,
           c.title AS course, a.external_id AS assessment, a.title AS assessment_title,
           cf.title, cf.body, x.language, cf.signatory_name, cf.signatory_title,
           li.object_key AS logo_key, li.sha256 AS logo_sha256, li.content_type AS logo_type,
           si.object_key AS signature_key, si.sha256 AS signature_sha256, si.content_type AS signature_type,
           md5(jsonb_build_array(
             {layout}, x.name, c.title, a.title, cf.title, cf.body, x.language, cf.signatory_name,
             cf.signatory_title, li.sha256, si.sha256, k.code, x.issued_on, k.type
           )::text) AS digest
    FROM certificates k
    JOIN enrollments e ON e.id = k.enrollment_id
    JOIN courses c ON c.id = k.course_id
    LEFT JOIN assessments a ON a.id = k.assessment_id
    LEFT JOIN certifications cf ON cf.course_id = k.course_id AND cf.assessment_id IS NOT DISTINCT FROM k.assessment_id
    LEFT JOIN certificate_images li ON li.organization_id = c.organization_id AND li.name = cf.logo_image
    LEFT JOIN certificate_images si ON si.organization_id = c.organization_id AND si.name = cf.signature_image
    CROSS JOIN LATERAL (
      SELECT {name} AS name,
             coalesce(cf.language, 'en') AS language,
             CAST(k.created_at AT TIME ZONE 'UTC' AS date) AS issued_on
    ) x
"""


def _diplomas(where: str) -> str:
    return _DIPLOMAS.format(layout=LAYOUT, name=names.learner_name_sql("e")) + " WHERE " + where


def _rows(result: Any) -> list[DiplomaRow]:
    return [DiplomaRow(*r) for r in result]


# --- the worker's side: rendering stale diplomas ----------------------------------------------------

# One render of a course at a time: a session-level advisory lock, held on its own connection.
_TRY_RENDER_LOCK = text("SELECT pg_try_advisory_lock(hashtextextended('render_diplomas', :c))")
_RENDER_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended('render_diplomas', :c))")


async def try_render_lock(session: AsyncSession, course_id: int) -> bool:
    """Take the course's render lock on the session's connection (False: another holds it)."""
    return bool(await session.scalar(_TRY_RENDER_LOCK, {"c": course_id}))


async def render_unlock(session: AsyncSession, course_id: int) -> None:
    await session.execute(_RENDER_UNLOCK, {"c": course_id})


async def stale(session: AsyncSession, course_id: int, after: int, limit: int) -> list[DiplomaRow]:
    """Valid certificates of the course (ids above `after`, ascending) whose stored diploma is missing
    or no longer says what it would print now."""
    sql = _diplomas("k.course_id = :c AND k.id > :after AND k.revoked_at IS NULL") + " ORDER BY k.id"
    rows = await session.execute(
        text(f"SELECT * FROM ({sql}) d WHERE d.diploma_digest IS DISTINCT FROM d.digest LIMIT :n"),  # noqa: S608
        {"c": course_id, "after": after, "n": limit},
    )
    return _rows(rows)


_STORE_RENDERED = text(
    f"""
    WITH new AS (
      SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:digests AS text[]), CAST(:keys AS text[]),
                           CAST(:sizes AS int[])) AS n(id, digest, key, size)
    ),
    current AS ({_diplomas("k.id = ANY(CAST(:ids AS bigint[])) AND k.revoked_at IS NULL")}),
    locked AS (SELECT k.id, k.diploma_key FROM certificates k JOIN new USING (id) FOR UPDATE OF k),
    recorded AS (
      UPDATE certificates k SET diploma_key = new.key, diploma_digest = new.digest, diploma_bytes = new.size
      FROM new JOIN current ON current.id = new.id AND current.digest = new.digest
      WHERE k.id = new.id
      RETURNING k.id
    )
    SELECT locked.diploma_key AS old_key, new.key, recorded.id IS NOT NULL AS recorded
    FROM new LEFT JOIN locked USING (id) LEFT JOIN recorded USING (id)
    """  # noqa: S608  (constant SQL; a certificate gone meanwhile: its new object is garbage too)
)


@dataclass(frozen=True, slots=True)
class Stored:
    """A rendered diploma's fate: its object `key`, whether it was recorded, and the object it replaced."""

    old_key: str | None
    key: str
    recorded: bool


async def record_rendered(session: AsyncSession, rendered: Sequence[tuple[int, str, str, int]]) -> list[Stored]:
    """Record rendered diplomas (certificate id, digest, object key, bytes), each only if the certificate
    is still valid and the digest still what it would print."""
    rows = await session.execute(
        _STORE_RENDERED,
        {
            "ids": [r[0] for r in rendered],
            "digests": [r[1] for r in rendered],
            "keys": [r[2] for r in rendered],
            "sizes": [r[3] for r in rendered],
        },
    )
    return [Stored(*r) for r in rows]


# Of a page of the course's objects (key, certificate id, last modified): those no certificate points
# to whose certificate is gone (it never comes back: ids are not reused), or that are older than
# `before` (younger ones may be a running job's, uploaded but not recorded yet).
_GARBAGE = text(
    """
    WITH o AS (
      SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:ids AS bigint[]), CAST(:modified AS timestamptz[]))
        AS o(key, certificate_id, modified)
    ),
    referenced AS (
      SELECT diploma_key FROM certificates WHERE course_id = :c AND diploma_key = ANY(CAST(:keys AS text[]))
    )
    SELECT o.key FROM o
    LEFT JOIN referenced r ON r.diploma_key = o.key
    LEFT JOIN certificates k ON k.id = o.certificate_id
    WHERE r.diploma_key IS NULL
      AND (o.modified < :before OR (o.certificate_id IS NOT NULL AND k.id IS NULL))
    """
)


async def unreferenced(
    session: AsyncSession,
    course_id: int,
    objects: Sequence[tuple[str, int | None, datetime]],
    before: datetime,
) -> list[str]:
    """Of the course's objects (key, certificate id or None, last modified), the keys of those no
    certificate points to whose certificate is gone or that were modified before `before`."""
    params = {
        "c": course_id,
        "keys": [o[0] for o in objects],
        "ids": [o[1] for o in objects],
        "modified": [o[2] for o in objects],
        "before": before,
    }
    return list(await session.scalars(_GARBAGE, params))


# --- the ZIP of diplomas, and links -----------------------------------------------------------------


async def count_valid(session: AsyncSession, selection: Selection) -> int:
    """How many valid certificates the selection holds."""
    sql = f"""
        SELECT count(*) FROM certificates k JOIN enrollments e ON e.id = k.enrollment_id
        WHERE {selection.where} AND k.revoked_at IS NULL
    """  # noqa: S608  (constant SQL)
    return int(await session.scalar(text(sql), selection.params) or 0)


async def valid_chunks(session: AsyncSession, selection: Selection, size: int) -> AsyncIterator[list[DiplomaRow]]:
    """The diploma rows of the selection's valid certificates, chunk by chunk in certificate order."""
    where, params = f"{selection.where} AND k.revoked_at IS NULL", selection.params
    after = 0
    while True:
        sql = _diplomas(f"{where} AND k.id > :after") + " ORDER BY k.id LIMIT :n"
        rows = _rows(await session.execute(text(sql), {**params, "after": after, "n": size}))
        if not rows:
            return
        yield rows
        after = rows[-1].id


async def diploma_of_learner(session: AsyncSession, course_id: int, learner: str, scope: Scope) -> DiplomaRow | None:
    """The learner's diploma of the scope's certification (None: they hold no such certificate)."""
    where = f"{scope.holds()} AND e.external_id = :l"
    row = (await session.execute(text(_diplomas(where)), {"c": course_id, "l": learner, **scope.params()})).first()
    return None if row is None else DiplomaRow(*row)


_SHOWN_OF_ENROLLMENT = text(
    _diplomas(f"k.enrollment_id = :e AND {SHOWN_TO_LEARNER}") + " ORDER BY a.position NULLS FIRST, k.id"
)
_SHOWN_BY_CODE = text(_diplomas(f"k.enrollment_id = :e AND k.code = :code AND {SHOWN_TO_LEARNER}"))


async def shown_to(session: AsyncSession, enrollment_id: int) -> list[DiplomaRow]:
    """The diplomas of the enrollment's certificates the learner may see: the course's first, then
    each assessment's in course order."""
    return _rows(await session.execute(_SHOWN_OF_ENROLLMENT, {"e": enrollment_id}))


async def shown_by_code(session: AsyncSession, enrollment_id: int, code: str) -> DiplomaRow | None:
    """The diploma of the enrollment's certificate `code` (upper case), if the learner may see it."""
    row = (await session.execute(_SHOWN_BY_CODE, {"e": enrollment_id, "code": code})).first()
    return None if row is None else DiplomaRow(*row)
