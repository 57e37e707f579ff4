"""The set-based late policy (deadlines/service/late_results.py) gives, on the real database, exactly what the reference
arithmetic (gradeflow/grading/late_policy.py ``apply``) gives for one submission, for random policies, scores and times;
and on the stored results: a late policy never raises a score, never takes it below the floor (beyond the half-cent
of rounding), and an extension never lowers a result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gradeflow.deadlines.service import late_results
from gradeflow.grading import late_policy as ref
from tests.conftest import Tenant
from tests.helpers import assessment, course, enroll

DUE = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
N = 12  # cases per example: one assessment each, one learner
_SETUP: dict[str, tuple[int, int, list[int]]] = {}  # tenant -> (course id, enrollment id, assessment ids)


@dataclass(frozen=True)
class Case:
    entered: D | None
    possible: D
    offset_us: int  # submission (or "now" when not submitted) relative to the due date
    submitted: bool
    excused: bool
    extension_us: int  # how much later an override moves this learner's due date


pcts = st.integers(min_value=0, max_value=10_000).map(lambda c: D(c) / 100)


@st.composite
def policies(draw: st.DrawFn) -> ref.LatePolicy:
    return ref.LatePolicy(
        late_submission_deduction_enabled=draw(st.booleans()),
        late_submission_deduction=draw(pcts),
        late_submission_interval=draw(st.sampled_from(["hour", "day"])),
        late_submission_minimum_percent_enabled=draw(st.booleans()),
        late_submission_minimum_percent=draw(pcts),
        missing_submission_deduction_enabled=draw(st.booleans()),
        missing_submission_deduction=draw(pcts),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    submitted = draw(st.booleans())
    entered = draw(st.none() | st.integers(min_value=0, max_value=200_000).map(lambda m: D(m) / 1000))
    offset = draw(
        st.one_of(
            st.integers(min_value=-3_000_000, max_value=3_000_000),  # around the due second
            st.integers(min_value=-3 * 86_400, max_value=40 * 86_400).map(lambda s: s * 1_000_000),
            st.integers(min_value=-(10**12), max_value=4 * 10**12),
        )
    )
    return Case(
        entered=entered,
        possible=draw(st.integers(min_value=0, max_value=50_000).map(lambda c: D(c) / 100)),
        offset_us=offset,
        submitted=submitted,
        excused=draw(st.booleans()),
        extension_us=draw(st.integers(min_value=0, max_value=20 * 86_400 * 1_000_000)),
    )


async def _setup(t: Tenant, sessionmaker: Any) -> tuple[int, int, list[int]]:
    if t.slug not in _SETUP:
        await course(t, "sql")
        await enroll(t, "sql", "ann")
        for i in range(N):
            await assessment(t, "sql", f"a{i}", points_possible=1)
        async with sessionmaker() as s:
            c = await s.scalar(text("SELECT id FROM courses WHERE organization_id = :o"), {"o": t.id})
            e = await s.scalar(text("SELECT id FROM enrollments WHERE course_id = :c"), {"c": c})
            a = list(await s.scalars(text("SELECT id FROM assessments WHERE course_id = :c ORDER BY id"), {"c": c}))
        _SETUP[t.slug] = (c, e, a)
    return _SETUP[t.slug]


def _status(x: Case) -> str:
    """The attempt's status before the policy: graded once scored, else submitted or not yet taken."""
    return "graded" if x.entered is not None else "submitted" if x.submitted else "to_be_taken"


def _at(us: int) -> datetime:
    return DUE + timedelta(microseconds=us)


async def _write(s: Any, course_id: int, e: int, a: list[int], policy: ref.LatePolicy, cs: list[Case]) -> None:
    body = policy.model_dump()
    await s.execute(
        text(
            f"""
            INSERT INTO late_policies (course_id, {", ".join(body)}, updated_by)
            VALUES (:c, {", ".join(f":{k}" for k in body)}, 'test')
            """  # noqa: S608
        ),
        {"c": course_id, **body},
    )
    for aid, x in zip(a, cs, strict=False):
        await s.execute(
            text("UPDATE assessments SET points_possible = :p, due_at = :due WHERE id = :a"),
            {"a": aid, "p": x.possible, "due": DUE},
        )
        status = _status(x)
        await s.execute(
            text(
                """
                INSERT INTO attempts (assessment_id, enrollment_id, status, entered, possible, excused, submitted_at)
                VALUES (:a, :e, :st, :en, :p, :x, :sub)
                """
            ),
            {
                "a": aid,
                "e": e,
                "st": status,
                "en": x.entered,
                "p": x.possible,
                "x": x.excused,
                "sub": _at(x.offset_us) if x.submitted else None,
            },
        )


async def _read(s: Any, a: list[int]) -> list[Any]:
    rows = await s.execute(
        text(
            "SELECT assessment_id, entered, points_deducted, late_status, earned, status FROM attempts"
            " WHERE assessment_id = ANY(:a) ORDER BY assessment_id"
        ),
        {"a": a},
    )
    return list(rows)


def _expected(x: Case, policy: ref.LatePolicy, now: datetime, due: datetime) -> tuple[Any, ...]:
    when = _at(x.offset_us) if x.submitted else now
    r = ref.apply(
        x.entered,
        x.possible,
        ref.seconds_late(when, due),
        policy,
        submitted=x.submitted,
        excused=x.excused,
    )
    if r.status == "missing" and not policy.missing_submission_deduction_enabled:
        return (None, None, None, _status(x))  # the reference's "missing" flag only: we mark it with the policy
    if r.status == "missing":
        assert r.final_score is not None
        return (x.possible - r.final_score, "missing", r.final_score, "graded")
    return (r.points_deducted, None if r.status == "none" else r.status, r.final_score, _status(x))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(policy=policies(), cs=st.lists(cases(), min_size=1, max_size=N))
async def test_sql_gives_what_the_reference_gives(
    tenant: Tenant, sessionmaker: Any, policy: ref.LatePolicy, cs: list[Case]
) -> None:
    course_id, e, a = await _setup(tenant, sessionmaker)
    a = a[: len(cs)]
    now = _at(cs[0].offset_us if not cs[0].submitted else 86_400_000_000)
    async with sessionmaker() as s:
        try:
            await _write(s, course_id, e, a, policy, cs)
            await late_results.apply_at(s, course_id, now, assessment_ids=a)
            before = await _read(s, a)
            for x, row in zip(cs, before, strict=True):
                got = (row.points_deducted, row.late_status, row.earned, row.status)
                assert got == _expected(x, policy, now, DUE), (x, got)
                if x.entered is not None and row.earned is not None:
                    assert row.earned <= x.entered  # never raises a score
                    floor = x.possible * policy.late_submission_minimum_percent / 100
                    if policy.late_submission_minimum_percent_enabled and x.entered >= floor:
                        assert row.earned >= floor - D("0.005")  # never below the floor beyond the rounding
            # An extension for the learner: the result never goes down, and matches the reference at the new date.
            for aid, x in zip(a, cs, strict=False):
                await s.execute(
                    text(
                        "INSERT INTO assessment_overrides (assessment_id, enrollment_id, due_at, created_by)"
                        " VALUES (:a, :e, :due, 'test')"
                    ),
                    {"a": aid, "e": e, "due": _at(x.extension_us)},
                )
            await late_results.apply_at(s, course_id, now, assessment_ids=a)
            after = await _read(s, a)
            for x, old, new in zip(cs, before, after, strict=True):
                got = (new.points_deducted, new.late_status, new.earned, new.status)
                assert got == _expected(x, policy, now, _at(x.extension_us)), (x, got)
                if old.earned is not None and new.earned is not None:
                    assert new.earned >= old.earned
        finally:
            await s.rollback()
