"""The SQL of certifications: what a course (or one of its assessments) certifies, and the lock that
serialises everything deciding on a course's certificates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.audit.repository import COLUMNS as AUDIT_COLUMNS


@dataclass(frozen=True, slots=True)
class Scope:
    """A certification's place: the course (assessment None) or one of its assessments."""

    assessment_id: int | None
    assessment: str | None  # its external id

    def holds(self, k: str = "k") -> str:
        """SQL: certificate `k` is of this certification - the one way every reader says "which
        certification" (spelt so each reads by an index). Its parameters: `:c` the course and, for an
        assessment's, `params()`."""
        if self.assessment_id is None:
            return f"{k}.course_id = :c AND {k}.assessment_id IS NULL"
        return f"{k}.course_id = :c AND {k}.assessment_id = :cert_a"

    def params(self) -> dict[str, Any]:
        return {"cert_a": self.assessment_id}

    def of(self) -> str:
        """How a message names the certification."""
        return "the course" if self.assessment is None else f"the assessment {self.assessment!r}"


@dataclass(frozen=True, slots=True)
class CertificationFields:
    """What a certification holds beside its scope, as written (and audited as old and new)."""

    rule: str
    threshold: Decimal | None
    title: str | None
    body: str | None
    language: str
    signatory_name: str | None
    signatory_title: str | None
    logo_image: str | None
    signature_image: str | None


@dataclass(frozen=True, slots=True)
class CertificationRow(CertificationFields):
    """A stored certification (its scope aside)."""

    revision: int
    updated_by: str | None
    updated_at: datetime | None


_CERTIFIES = text(
    "SELECT 1 FROM assessments a JOIN certifications cf ON cf.assessment_id = a.id"
    " WHERE a.course_id = :c AND a.external_id = :a"
)


async def certifies(session: AsyncSession, course_id: int, assessment: str) -> bool:
    """Whether the course's assessment `assessment` has a certification."""
    return await session.scalar(_CERTIFIES, {"c": course_id, "a": assessment}) is not None


_LOCK_COURSE = text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE")


async def lock_course(session: AsyncSession, course_id: int) -> None:
    """Serialise what decides on a course's certificates: generations, revocations and reinstatements,
    changes of its certifications. The second waits for the first's commit, then reads what it wrote
    (so read the rule and the certificates after this)."""
    await session.execute(_LOCK_COURSE, {"c": course_id})


_ROW = """
    SELECT rule, threshold, title, body, language, signatory_name, signatory_title, logo_image, signature_image,
           revision, updated_by, updated_at
    FROM certifications WHERE course_id = :c AND assessment_id IS NOT DISTINCT FROM CAST(:a AS bigint)
"""
_READ = text(_ROW)
_READ_LOCKED = text(_ROW + " FOR UPDATE")


async def certification_of(
    session: AsyncSession, course_id: int, scope: Scope, lock: bool = False
) -> CertificationRow | None:
    """The stored certification of the scope (None: it has none), locked FOR UPDATE if `lock`."""
    row = (await session.execute(_READ_LOCKED if lock else _READ, {"c": course_id, "a": scope.assessment_id})).first()
    return None if row is None else CertificationRow(*row)


_IMAGES_FOUND = text(
    "SELECT name FROM certificate_images WHERE organization_id = :o AND name = ANY(CAST(:n AS text[])) FOR KEY SHARE"
)


async def lock_images_named(session: AsyncSession, organization_id: int, names: Sequence[str]) -> set[str]:
    """Which of the organization's certificate images `names` exist, each locked (KEY SHARE) until the
    commit so that it cannot be deleted in between."""
    if not names:
        return set()
    rows = await session.execute(_IMAGES_FOUND, {"o": organization_id, "n": list(names)})
    return {r[0] for r in rows}


_UPSERT = text(
    """
    INSERT INTO certifications AS x (course_id, assessment_id, rule, threshold, title, body, language,
        signatory_name, signatory_title, logo_image, signature_image, revision, updated_by, updated_at)
    VALUES (:c, :a, :rule, :threshold, :title, :body, :language, :signatory_name, :signatory_title,
        :logo_image, :signature_image, 1, :actor, :now)
    ON CONFLICT ON CONSTRAINT uq_certifications_course_id_assessment_id DO UPDATE SET
      rule = excluded.rule, threshold = excluded.threshold, title = excluded.title, body = excluded.body,
      language = excluded.language, signatory_name = excluded.signatory_name,
      signatory_title = excluded.signatory_title, logo_image = excluded.logo_image,
      signature_image = excluded.signature_image, revision = x.revision + 1, updated_by = excluded.updated_by,
      updated_at = excluded.updated_at
    """
)


async def save_certification(
    session: AsyncSession, course_id: int, scope: Scope, values: CertificationFields, actor: str, now: datetime
) -> None:
    """Create the scope's certification, or replace it (its revision goes up)."""
    await session.execute(
        _UPSERT, {"c": course_id, "a": scope.assessment_id, **dataclasses.asdict(values), "actor": actor, "now": now}
    )


_VALID_OF_ASSESSMENT = text("SELECT count(*) FROM certificates WHERE assessment_id = :a AND revoked_at IS NULL")


async def count_valid_certificates(session: AsyncSession, assessment_id: int) -> int:
    """How many valid (not revoked) certificates of the assessment exist."""
    return int(await session.scalar(_VALID_OF_ASSESSMENT, {"a": assessment_id}) or 0)


# Every certificate of the assessment goes, each audited as `certificate.removed` with what it was.
_REMOVE_CERTIFICATES_OF_ASSESSMENT = text(
    f"""
    WITH gone AS (
      DELETE FROM certificates k USING enrollments e
      WHERE k.assessment_id = :a AND e.id = k.enrollment_id
      RETURNING e.external_id AS learner, k.code, k.type, k.reason, k.revoked_at, k.revoked_by,
                k.revoke_reason
    )
    INSERT INTO audit_log ({AUDIT_COLUMNS})
    SELECT :org, :course, :at, :actor, :rid, 'certificate.removed', learner, :assessment_name, NULL,
           jsonb_build_object('code', code, 'type', type, 'reason', reason, 'revoked_at', revoked_at,
                              'revoked_by', revoked_by, 'revoke_reason', revoke_reason),
           jsonb_build_object('certification', 'deleted')
    FROM gone ORDER BY learner
    """  # noqa: S608  (constant SQL)
)


async def remove_certificates_of_assessment(
    session: AsyncSession, stamp: dict[str, Any], assessment_id: int, assessment: str
) -> None:
    """Delete every certificate of the assessment, auditing each (`stamp`: audit.stamp's parameters)."""
    await session.execute(
        _REMOVE_CERTIFICATES_OF_ASSESSMENT, {**stamp, "a": assessment_id, "assessment_name": assessment}
    )


_DELETE = text(
    "DELETE FROM certifications WHERE course_id = :c AND assessment_id IS NOT DISTINCT FROM CAST(:a AS bigint)"
)


async def delete_certification(session: AsyncSession, course_id: int, scope: Scope) -> None:
    await session.execute(_DELETE, {"c": course_id, "a": scope.assessment_id})
