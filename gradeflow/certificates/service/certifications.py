"""Certifications: what a course (or one assessment) certifies - who passes, and what the diploma says.

A course without a certification certifies as Open edX does: a passing course grade, the default
diploma (the label catalogue's title). An assessment certifies only once it is given one (a pass mark
on its final results). Every change that alters anything bumps `revision` (the diplomas' digest reads
it) and is audited as `certification.updated`; removing one as `certification.deleted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.certificates.commands import CertificationIn
from gradeflow.certificates.service import diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.reports.labels import languages

# Open edX marks these tracks "ID Verified" when the learner's identity was checked; other tracks say N/A.
ID_VERIFIED_TRACKS = ("verified", "professional", "masters", "executive-education")


def eligible_now(threshold: str | None = None) -> str:
    """SQL: who may have the course certificate right now. Aliases: `e` enrollments, `g` course_grades of
    the served version (LEFT JOIN), `w` certificate_allowlist (LEFT JOIN on w.enrollment_id = e.id). The
    allow list wins over track and grade; otherwise an audit-track learner never gets one and anybody
    else needs a passing grade (the course_passing rule) or, given `threshold` (SQL of a numeric, the
    course_percent rule), a course grade of at least that percent. Only enrolled learners: an
    unenrolled learner's row says N (as the document's example), never Y without a certificate to
    deliver."""
    passes = "g.final_passed IS TRUE" if threshold is None else f"g.final_percent >= {threshold}"
    return f"(e.status = 'enrolled' AND (w.id IS NOT NULL OR (e.track <> 'audit' AND {passes})))"


ELIGIBLE_NOW = eligible_now()


def threshold_literal(threshold: Decimal) -> str:
    """A stored threshold (ours, a Decimal) as an SQL numeric, for statements that take no parameters
    of their own (the grade report's COPY)."""
    if not isinstance(threshold, Decimal) or not threshold.is_finite():
        raise TypeError("a threshold is a finite Decimal")
    return f"CAST('{threshold}' AS numeric)"


async def course_rule_sql(session: AsyncSession, course_id: int) -> str:
    """ELIGIBLE_NOW under the course's certification (its threshold, with the course_percent rule)."""
    threshold = await session.scalar(
        text("SELECT threshold FROM certifications WHERE course_id = :c AND assessment_id IS NULL"), {"c": course_id}
    )
    return ELIGIBLE_NOW if threshold is None else eligible_now(threshold_literal(threshold))


# What a stored certification holds beside its scope, in the API's order.
FIELDS = (
    "rule",
    "threshold",
    "title",
    "body",
    "language",
    "signatory_name",
    "signatory_title",
    "logo_image",
    "signature_image",
)
# The course certification of a course that has none.
DEFAULT: dict[str, Any] = {
    "rule": "course_passing",
    "threshold": None,
    "title": None,  # the label catalogue's default title, in `language`
    "body": None,
    "language": "en",
    "signatory_name": None,
    "signatory_title": None,
    "logo_image": None,
    "signature_image": None,
}


@dataclass(frozen=True)
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


async def scope_of(session: AsyncSession, ref: CourseRef, assessment: str | None) -> Scope:
    """The course, or the course's assessment `assessment` (404 naming it when the course has none)."""
    return await scope_in(session, ref.id, assessment)


async def scope_in(session: AsyncSession, course_id: int, assessment: str | None) -> Scope:
    """`scope_of` by the course's id (the worker's side)."""
    if assessment is None:
        return Scope(None, None)
    found = await session.scalar(
        text("SELECT id FROM assessments WHERE course_id = :c AND external_id = :a"), {"c": course_id, "a": assessment}
    )
    if found is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    return Scope(int(found), assessment)


async def certifies(session: AsyncSession, course_id: int, assessment: str) -> bool:
    """Whether the course's assessment `assessment` has a certification (an assessment's certificates
    exist only under one: its certification cannot be removed while valid ones exist, and removing it
    removes the revoked ones)."""
    found = await session.scalar(
        text(
            "SELECT 1 FROM assessments a JOIN certifications cf ON cf.assessment_id = a.id"
            " WHERE a.course_id = :c AND a.external_id = :a"
        ),
        {"c": course_id, "a": assessment},
    )
    return found is not None


async def lock_course(session: AsyncSession, course_id: int) -> None:
    """Serialise what decides on a course's certificates: generations, revocations and reinstatements,
    changes of its certifications. The second waits for the first's commit, then reads what it wrote
    (so read the rule and the certificates after this)."""
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": course_id})


_ROW = """
    SELECT rule, threshold, title, body, language, signatory_name, signatory_title, logo_image, signature_image,
           revision, updated_by, updated_at
    FROM certifications WHERE course_id = :c AND assessment_id IS NOT DISTINCT FROM CAST(:a AS bigint)
"""


async def _row(session: AsyncSession, ref: CourseRef, scope: Scope, lock: bool = False) -> dict[str, Any] | None:
    sql = _ROW + (" FOR UPDATE" if lock else "")
    row = (await session.execute(text(sql), {"c": ref.id, "a": scope.assessment_id})).mappings().first()
    return None if row is None else dict(row)


def _shape(scope: Scope, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"assessment": None, "defined": False, **DEFAULT, "revision": 0, "updated_by": None, "updated_at": None}
    return {"assessment": scope.assessment, "defined": True, **row}


async def rule_of(session: AsyncSession, ref: CourseRef, scope: Scope) -> tuple[str, Decimal | None]:
    """The pass rule and threshold a generation applies (the default for a course without one); 404 for
    an assessment without a certification."""
    row = await _row(session, ref, scope)
    if row is None:
        if scope.assessment_id is not None:
            raise NotFound(f"The assessment {scope.assessment!r} has no certification.")
        return DEFAULT["rule"], None
    return row["rule"], row["threshold"]


async def get(session: AsyncSession, ref: CourseRef, assessment: str | None) -> dict[str, Any]:
    """The course's certification (the default, `defined: false`, when it has none), or an assessment's
    (404 when it has none)."""
    scope = await scope_of(session, ref, assessment)
    row = await _row(session, ref, scope)
    if row is None and scope.assessment_id is not None:
        raise NotFound(f"The assessment {assessment!r} has no certification.")
    return _shape(scope, row)


def _rule(scope: Scope, body: CertificationIn) -> str:
    """The rule the body asks for, or the scope's default; 422 for one the scope cannot have, or a
    percent rule without its threshold."""
    rule: str
    if body.rule is None:
        if scope.assessment_id is not None:
            rule = "assessment_percent"
        else:
            rule = "course_percent" if body.threshold is not None else "course_passing"
    elif scope.assessment_id is not None and body.rule != "assessment_percent":
        raise ValidationFailed.one("/rule", "An assessment's certification has the rule assessment_percent.")
    elif scope.assessment_id is None and body.rule == "assessment_percent":
        raise ValidationFailed.one("/rule", "A course's certification has the rule course_passing or course_percent.")
    else:
        rule = body.rule
    if rule != "course_passing" and body.threshold is None:
        raise ValidationFailed.one("/threshold", f"The rule {rule} needs a threshold (0-100).")
    return rule


async def _check_references(session: AsyncSession, organization_id: int, body: CertificationIn) -> None:
    """422 naming each field that names what does not exist: a language without labels, an image the
    organization has not uploaded. The images found are locked (KEY SHARE) until the commit, so they
    cannot be deleted in between."""
    errors: list[FieldError] = []
    if body.language not in languages():
        choices = ", ".join(languages())
        errors.append(FieldError("/language", f"No labels in {body.language!r}; the languages are {choices}."))
    names = [n for n in (body.logo_image, body.signature_image) if n is not None]
    found: set[str] = set()
    if names:
        rows = await session.execute(
            text(
                "SELECT name FROM certificate_images WHERE organization_id = :o AND name = ANY(CAST(:n AS text[]))"
                " FOR KEY SHARE"
            ),
            {"o": organization_id, "n": names},
        )
        found = {r[0] for r in rows}
    for field in ("logo_image", "signature_image"):
        name = getattr(body, field)
        if name is not None and name not in found:
            errors.append(FieldError(f"/{field}", f"The organization has no certificate image {name!r}."))
    if errors:
        raise ValidationFailed(errors)


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


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    # 70 and 70.0000 are one threshold.
    t = values["threshold"]
    return {**values, "threshold": None if t is None else Decimal(t).normalize()}


async def put(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str | None,
    body: CertificationIn,
    actor: str,
) -> dict[str, Any]:
    """Create or replace a certification. Nothing changes (no revision, no audit entry) when the body
    says what is stored already. After a change, the course's diplomas it altered are rendered again
    ahead of time (asked for after the commit), so a link to one rarely has to wait."""
    scope = await scope_of(session, ref, assessment)
    new = {field: getattr(body, field) for field in FIELDS} | {"rule": _rule(scope, body)}
    await _check_references(session, ref.organization_id, body)
    # One change of a course's certifications at a time, and none while a generation decides.
    await lock_course(session, ref.id)
    old_row = await _row(session, ref, scope, lock=True)
    old = None if old_row is None else {field: old_row[field] for field in FIELDS}
    if old is not None and _comparable(old) == _comparable(new):
        await session.commit()
        return _shape(scope, old_row)
    await session.execute(_UPSERT, {"c": ref.id, "a": scope.assessment_id, **new, "actor": actor, "now": clock.now()})
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certification.updated",
        assessment=scope.assessment,
        old=old,
        new=new,
    )
    await session.commit()
    await diplomas.request_render(queue, ref.id)
    return _shape(scope, await _row(session, ref, scope))


async def delete(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str | None, actor: str) -> None:
    """Remove a certification. The course's goes back to the default (nothing to do if it has none;
    its diplomas are rendered again with the default text ahead of time); an assessment's is 404 when
    it has none, and 409 while valid certificates of it exist; its revoked certificates go with it
    (each audited as `certificate.removed`, with who revoked it and why)."""
    scope = await scope_of(session, ref, assessment)
    await lock_course(session, ref.id)
    row = await _row(session, ref, scope, lock=True)
    if row is None:
        if scope.assessment_id is not None:
            raise NotFound(f"The assessment {assessment!r} has no certification.")
        return
    if scope.assessment_id is not None:
        held = int(
            await session.scalar(
                text("SELECT count(*) FROM certificates WHERE assessment_id = :a AND revoked_at IS NULL"),
                {"a": scope.assessment_id},
            )
            or 0
        )
        if held:
            raise Conflict(
                f"{held} valid certificate{'s' if held != 1 else ''} of the assessment {assessment!r} exist"
                f"{'' if held != 1 else 's'}: revoke them (or generate after changing the rule) before"
                " removing its certification.",
                extra={"certificates": held},
            )
        await session.execute(
            text(
                f"""
                WITH gone AS (
                  DELETE FROM certificates k USING enrollments e
                  WHERE k.assessment_id = :a AND e.id = k.enrollment_id
                  RETURNING e.external_id AS learner, k.code, k.type, k.reason, k.revoked_at, k.revoked_by,
                            k.revoke_reason
                )
                INSERT INTO audit_log ({audit.COLUMNS})
                SELECT :org, :course, :at, :actor, :rid, 'certificate.removed', learner, :assessment_name, NULL,
                       jsonb_build_object('code', code, 'type', type, 'reason', reason, 'revoked_at', revoked_at,
                                          'revoked_by', revoked_by, 'revoke_reason', revoke_reason),
                       jsonb_build_object('certification', 'deleted')
                FROM gone ORDER BY learner
                """  # noqa: S608  (constant SQL)
            ),
            {
                **audit.stamp(ref.organization_id, ref.id, actor),
                "a": scope.assessment_id,
                "assessment_name": assessment,
            },
        )
    await session.execute(
        text(
            "DELETE FROM certifications WHERE course_id = :c AND assessment_id IS NOT DISTINCT FROM CAST(:a AS bigint)"
        ),
        {"c": ref.id, "a": scope.assessment_id},
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certification.deleted",
        assessment=scope.assessment,
        old={field: row[field] for field in FIELDS},
    )
    await session.commit()
    if scope.assessment_id is None:
        await diplomas.request_render(queue, ref.id)
