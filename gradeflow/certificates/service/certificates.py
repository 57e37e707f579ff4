"""Certificates: the allow list, generation runs per certification, revoking and reinstating, and the
eligibility rule the grade report shares.

A generation records who is eligible at that moment under a certification (the course's, or one
assessment's) and makes that certification's certificates agree with it: the latest generation is the
truth, so a learner no longer eligible loses their certificate. A revoked certificate is the exception:
staff took it back, so generations leave it as it is (never deleted, never issued again) until it is
reinstated. Two words keep the two apart: a generation *removes* a certificate (`certificate.removed`,
the row goes), staff *revoke* one (`certificate.revoked`, the row stays, marked).

Which certificates a reader means - one certification's, of the learners the results table's filters
select, issued in a period - is said once (`select`): the certificates list, the ZIP of diplomas and
the certificate mailing all read it. The SQL is the repository's (gradeflow/certificates/repository)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.access.service import access
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.certificates.repository import certificates as repository
from gradeflow.certificates.repository.certificates import (
    Allowance,
    Certificate,
    Generated,
    Generation,
    Held,
    Selection,
)
from gradeflow.certificates.repository.certifications import Scope, lock_course
from gradeflow.certificates.service import certifications, diplomas
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, NotFound, ValidationFailed
from gradeflow.core.paging import Page
from gradeflow.courses.service import enrollments
from gradeflow.grades.service import grades
from gradeflow.notify import events
from gradeflow.readside.service import course_data
from gradeflow.storage.s3 import ObjectStore

# Learners listed by name in a `certificates.generated` event (the counts are always complete).
MAX_EVENT_LEARNERS = 1000


# --- the allow list -------------------------------------------------------------------------------


async def list_allowlist(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Allowance]:
    """The course's allow list in the order learners were added."""
    return await repository.allowances(session, ref.id, limit, cursor)


async def allow(session: AsyncSession, ref: CourseRef, learner: str, notes: str | None, actor: str) -> Allowance:
    """Put an enrolled learner on the allow list, or change the notes of one who is on it."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    old = await repository.lock_allowance(session, enrollment_id)
    await repository.allow(session, ref.id, enrollment_id, notes, actor, clock.now())
    new = {"notes": notes}
    if old != new:
        await audit.record(
            session, ref.organization_id, ref.id, actor, "certificate.allowlisted", learner=learner, old=old, new=new
        )
    await session.commit()
    return await repository.allowance_of(session, enrollment_id)


async def disallow(session: AsyncSession, ref: CourseRef, learner: str, actor: str) -> None:
    """Take an enrolled learner off the allow list (nothing to do if they are not on it). A certificate
    they already hold stays until the next generation decides again."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    removed = await repository.disallow(session, enrollment_id)
    if removed is not None:
        await audit.record(
            session, ref.organization_id, ref.id, actor, "certificate.allowlist_removed", learner=learner, old=removed
        )
    await session.commit()


# --- generation -----------------------------------------------------------------------------------


async def generate(
    session: AsyncSession, queue: jobs.Queue, ref: CourseRef, assessment: str | None, actor: str
) -> Generated:
    """Record who is eligible for a certification now (the course's, or the assessment `assessment`'s:
    404 when it has none) and make its certificates agree: eligible learners get (or keep) one of this
    generation, typed by their track; the others lose theirs (removed); revoked ones are left alone.
    After the commit, the diplomas are queued for rendering."""
    scope = await certifications.scope_of(session, ref, assessment)
    if scope.assessment_id is None:
        # The decision reads stored grades: bring the stale ones current first, as every grade reader does.
        await grades.bring_current(session, ref.id)
    # One generation of a course at a time, and none while its certifications change: the second waits,
    # then decides on what the first wrote - the rule and threshold are read after the lock.
    await lock_course(session, ref.id)
    rule, threshold = await certifications.rule_of(session, ref, scope)
    stamp = audit.stamp(ref.organization_id, ref.id, actor)
    done = await repository.generate(session, stamp, ref.id, scope, threshold, MAX_EVENT_LEARNERS)
    summary = {
        "generation": done.id,
        "assessment": scope.assessment,
        "rule": rule,
        "policy_version": done.policy_version,
        "eligible": done.eligible,
        "issued_count": done.issued,
        "removed_count": done.removed,
    }
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "certificates.generated",
        assessment=scope.assessment,
        new={k: v for k, v in summary.items() if k not in ("assessment", "rule")},
    )
    await events.emit(
        session,
        ref.organization_id,
        "certificates.generated",
        {
            "course": ref.external_id,
            **{k: v for k, v in summary.items() if k != "rule"},
            "issued": done.issued_learners,
            "removed": done.removed_learners,
        },
    )
    await session.commit()
    await diplomas.request_render(queue, ref.id)
    return done


async def list_generations(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[Generation]:
    """The course's generations (of every certification), latest first."""
    return await repository.generations(session, ref.id, limit, cursor)


# --- revoking and reinstating ---------------------------------------------------------------------


async def _lock_certificate(session: AsyncSession, ref: CourseRef, learner: str, scope: Scope) -> Held:
    """The learner's certificate of the certification, locked (404 when they hold none)."""
    enrollment_id = (await enrollments.get_enrollment(session, ref, learner)).id
    # Serialised with generations, which decide on every certificate of the course.
    await lock_course(session, ref.id)
    held = await repository.lock_certificate(session, ref.id, enrollment_id, scope)
    if held is None:
        raise NotFound(f"Learner {learner!r} holds no certificate of {scope.of()}.")
    return held


_REVOCATION = ("code", "revoked_at", "revoked_by", "revoke_reason")


async def _record_status_change(
    session: AsyncSession,
    ref: CourseRef,
    learner: str,
    scope: Scope,
    action: str,
    held: Held,
    changed: dict[str, Any],
    actor: str,
) -> Certificate:
    """Audit a revocation or reinstatement, announce it, commit; the certificate as it is now."""
    before = {k: getattr(held, k) for k in _REVOCATION}
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        action,
        learner=learner,
        assessment=scope.assessment,
        old=before,
        new=changed,
    )
    reason = changed["revoke_reason"] if action == "certificate.revoked" else None
    data = {
        "course": ref.external_id,
        "learner": learner,
        "assessment": scope.assessment,
        "code": held.code,
        "reason": reason,
        "actor": actor,
    }
    await events.emit(session, ref.organization_id, action, data)
    await session.commit()
    return await repository.certificate(session, held.id, scope)


async def revoke(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, reason: str, actor: str
) -> Certificate:
    """Revoke a learner's certificate (409 if it is revoked already): it stops being valid, shown or sent
    at once, and generations leave it revoked until it is reinstated. Audited and announced as
    `certificate.revoked`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _lock_certificate(session, ref, learner, scope)
    if held.revoked_at is not None:
        raise Conflict(f"The certificate of {learner!r} is already revoked.")
    changed = await repository.set_revoked(session, held.id, clock.now(), actor, reason)
    return await _record_status_change(
        session, ref, learner, scope, "certificate.revoked", held, dataclasses.asdict(changed), actor
    )


async def reinstate(
    session: AsyncSession, ref: CourseRef, learner: str, assessment: str | None, actor: str
) -> Certificate:
    """Make a revoked certificate valid again at once (409 if it is not revoked); the next generation
    decides on it as on any other. Audited and announced as `certificate.reinstated`."""
    scope = await certifications.scope_of(session, ref, assessment)
    held = await _lock_certificate(session, ref, learner, scope)
    if held.revoked_at is None:
        raise Conflict(f"The certificate of {learner!r} is not revoked.")
    changed = await repository.set_revoked(session, held.id, None, None, None)
    return await _record_status_change(
        session, ref, learner, scope, "certificate.reinstated", held, dataclasses.asdict(changed), actor
    )


# --- the selection and the list ------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFilter:
    """Which certificates of one certification: the results table's learner filters, issued in a period,
    valid (revoked False), revoked (True) or both (None)."""

    assessment: str | None = None  # None: the course certificates
    group: str | None = None
    cohort: str | None = None
    session: str | None = None
    include_archived: bool = False
    search: str | None = None
    since: datetime | None = None  # issued at or after
    until: datetime | None = None  # ... and before
    revoked: bool | None = False
    learner: str | None = None  # one learner's


async def select(session: AsyncSession, course_id: int, params: Any) -> Selection:
    """The selection `params` asks for (a CertificateFilter, a certificates_zip report's params, a
    certificate mailing's request: assessment, group, cohort, learners, session, include_archived,
    search, since, until - whichever it has). 404 naming an unknown assessment or session."""
    scope = await certifications.scope_in(session, course_id, getattr(params, "assessment", None))
    who = await course_data.who_of(session, course_id, params)
    return repository.selection(course_id, scope, who, getattr(params, "since", None), getattr(params, "until", None))


# Staff who oversee results see every certificate; a publisher whose only overseeing role is theirs,
# limited to some assessments, sees those assessments' certificates only (never the course's), as they
# may send only those (access.check_publisher_scope).
_UNLIMITED = frozenset({"planner", "viewer"})


async def check_reader(session: AsyncSession, ref: CourseRef, principal: Principal, assessment: str | None) -> None:
    """403 for a publisher limited to some assessments reading certificates outside them."""
    if principal.is_key or ref.roles & _UNLIMITED:
        return
    await access.check_publisher_scope(
        session, ref.id, principal, [assessment] if assessment else [], assessment is None
    )


async def list_certificates(
    session: AsyncSession, ref: CourseRef, principal: Principal, f: CertificateFilter, limit: int, cursor: str | None
) -> Page[Certificate]:
    """A certification's certificates under the filters, in enrollment order (404 naming an unknown
    assessment or session; 422 when `until` is not after `since`; 403 outside a limited publisher's
    assessments)."""
    if f.since is not None and f.until is not None and f.until <= f.since:
        raise ValidationFailed.one("until", "Must be later than since.", "query")
    await check_reader(session, ref, principal, f.assessment)
    chosen = await select(session, ref.id, f)
    return await repository.certificates(session, chosen, f.learner, f.revoked, limit, cursor)


# --- diplomas ---------------------------------------------------------------------------------------


async def diploma_link(
    session: AsyncSession,
    store: ObjectStore,
    queue: jobs.Queue,
    ref: CourseRef,
    principal: Principal,
    learner: str,
    assessment: str | None,
    actor: str,
    link_seconds: int,
) -> diplomas.DiplomaLink:
    """A learner's diploma of the course's (or the assessment's) certificate for staff: a link minted
    now, or `rendering` (diplomas.staff_link). 404 naming an unknown assessment; 403 outside a limited
    publisher's assessments."""
    scope = await certifications.scope_of(session, ref, assessment)
    await check_reader(session, ref, principal, assessment)
    return await diplomas.staff_link(session, store, queue, ref, learner, scope, actor, link_seconds)
