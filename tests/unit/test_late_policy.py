"""Canvas's late and missing policy arithmetic: hand-computed examples and invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gradeflow.grading.late_policy import (
    LatePolicy,
    LateResult,
    apply,
    intervals_late,
    late_deduction,
    missing_score,
    seconds_late,
)

D = Decimal
DUE = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
HOUR, DAY = 3600, 86_400


def late(pct: str, interval: str = "day", floor: str | None = None) -> LatePolicy:
    return LatePolicy.model_validate(
        {
            "late_submission_deduction_enabled": True,
            "late_submission_deduction": pct,
            "late_submission_interval": interval,
            "late_submission_minimum_percent_enabled": floor is not None,
            "late_submission_minimum_percent": floor or "0",
        }
    )


# --- worked examples (notes20_canvas_late.md §12) -------------------------------------------------


def test_day_interval_rounds_a_partial_day_up() -> None:
    # 25 h = 90 000 s; ceil(90000/86400) = 2 days; 2 x 10 % = 20 %; raw 95 %, room 95 %;
    # min(20, 95) = 20 % of 100 = 20.00 -> 95 - 20 = 75.
    r = apply(D(95), D(100), 90_000, late("10"), submitted=True)
    assert r == LateResult(D(95), D("20.00"), D("75.00"), "late")
    # Canvas's spec: 1000/1000 at 10 %/day, 25 h -> 2 days = 20 % of 1000 = 200.
    assert late_deduction(D(1000), D(1000), 25 * HOUR, late("10")) == D("200.00")


def test_floor_binds_and_a_score_below_it_is_left_alone() -> None:
    p = late("10", floor="50")
    # 8 days x 10 % = 80 %; raw 90 %, room 90 - 50 = 40 % -> 40 of 100 -> 90 - 40 = 50.
    assert apply(D(90), D(100), 8 * DAY, p, submitted=True).final_score == D(50)
    # raw 45 % is under the 50 % floor: room max(45 - 50, 0) = 0 -> nothing deducted, not raised to 50.
    r = apply(D(45), D(100), 8 * DAY, p, submitted=True)
    assert (r.points_deducted, r.final_score) == (D("0.00"), D(45))
    # Canvas's spec: 800/1000, floor 30 %, 7 days x 10 % = 70 %; room 80 - 30 = 50 % -> 500.
    assert late_deduction(D(800), D(1000), 7 * DAY, late("10", floor="30")) == D("500.00")
    # 200/1000 = 20 % is under the floor: 0.
    assert late_deduction(D(200), D(1000), 8 * DAY, late("10", floor="30")) == D("0.00")


def test_hour_interval_with_fractional_points() -> None:
    # 3 h 20 m = 12 000 s; ceil(12000/3600) = 4 h; 4 x 1.5 % = 6 %; raw 6.5/7 = 92.857 %;
    # 7 x 6 / 100 = 0.42 -> 6.5 - 0.42 = 6.08.
    r = apply(D("6.5"), D(7), 12_000, late("1.5", "hour"), submitted=True)
    assert (r.points_deducted, r.final_score) == (D("0.42"), D("6.08"))


def test_only_the_deduction_is_rounded_half_up() -> None:
    # 7 x 3.33 / 100 = 0.2331 -> 0.23 -> 7 - 0.23 = 6.77.
    assert apply(D(7), D(7), DAY, late("3.33"), submitted=True).final_score == D("6.77")
    # 1 s late is 1 hour: 9 x 0.5 / 100 = 0.045 -> half up 0.05 -> 8.95.
    assert apply(D(9), D(9), 1, late("0.5", "hour"), submitted=True).final_score == D("8.95")
    # Floor-limited: 3 pts, floor 60 % = 1.8 pts, 5 days x 10 % = 50 % = 1.5 pts;
    # room 2 - 1.8 = 0.2 -> min(1.5, 0.2) = 0.20 -> 1.80 (exactly the floor; Canvas's Float gives 0.2000…2).
    assert apply(D(2), D(3), 5 * DAY, late("10", floor="60"), submitted=True).final_score == D("1.80")
    # Score unrounded: 2.345 - (10 x 1 day x 10 % = 1.00) = 1.345, kept to the last place.
    assert apply(D("2.345"), D(10), DAY, late("10"), submitted=True).final_score == D("1.345")


def test_missing_score() -> None:
    missing = LatePolicy(missing_submission_deduction_enabled=True, missing_submission_deduction=D(70))
    # 25 - 25 x 70 / 100 = 25 - 17.5 = 7.5.
    assert missing_score(D(25), missing) == D("7.5")
    r = apply(None, D(25), 3600, missing, submitted=False)
    assert r == LateResult(None, None, D("7.5"), "missing")
    # A score the teacher entered stays (then it is not missing): 12 stays 12.
    assert apply(D(12), D(25), 3600, missing, submitted=False) == LateResult(D(12), None, D(12), "none")
    # Not yet due: not missing.
    assert apply(None, D(25), 0, missing, submitted=False).status == "none"
    # Disabled: still missing, but no score is made up.
    assert apply(None, D(25), 3600, LatePolicy(), submitted=False) == LateResult(None, None, None, "missing")
    # Points possible 0: 0.
    assert missing_score(D(0), missing) == D(0)


def test_quiz_grace_and_extra_credit() -> None:
    # 10:00:45 less 60 s grace = 09:59:45: on time.
    assert seconds_late(DUE + timedelta(seconds=45), DUE, grace_seconds=60) == 0
    # 10:01:30 less 60 s = 10:00:30: 30 s late -> 1 day -> 10 % of 10 = 1 -> 9.
    s = seconds_late(DUE + timedelta(seconds=90), DUE, grace_seconds=60)
    assert s == 30
    assert apply(D(10), D(10), s, late("10"), submitted=True).final_score == D(9)
    # Extra credit: 12/10 = 120 %, 5 days x 30 % = 150 %; room 120 % -> 12 off -> 0, never below 0.
    r = apply(D(12), D(10), 5 * DAY, late("30"), submitted=True)
    assert (r.points_deducted, r.final_score) == (D("12.00"), D(0))


def test_seconds_late_edges() -> None:
    assert seconds_late(DUE, DUE) == 0  # at the due second: on time
    assert seconds_late(DUE + timedelta(microseconds=1), DUE) == 0  # under a second: truncated to 0
    assert seconds_late(DUE + timedelta(seconds=1, microseconds=999_999), DUE) == 1
    assert seconds_late(DUE + timedelta(days=2, seconds=5), DUE) == 2 * DAY + 5
    assert seconds_late(DUE - timedelta(days=3), DUE) == 0
    assert seconds_late(DUE + timedelta(days=3), None) == 0  # no due date: never late
    with pytest.raises(ValueError, match="timezone-aware"):
        seconds_late(datetime(2025, 3, 2), DUE)  # noqa: DTZ001 - naive on purpose
    assert intervals_late(3600, "hour") == 1
    assert intervals_late(3601, "hour") == 2
    assert intervals_late(DAY, "day") == 1
    assert intervals_late(DAY + 1, "day") == 2


def test_no_deduction_cases() -> None:
    p = late("10")
    assert apply(D(8), D(10), DAY, p, submitted=True, excused=True) == LateResult(D(8), None, D(8), "none")
    assert apply(D(8), D(10), 0, p, submitted=True) == LateResult(D(8), None, D(8), "none")
    assert apply(D(8), D(0), DAY, p, submitted=True) == LateResult(D(8), D("0.00"), D(8), "late")
    # Late but disabled: late, 0.00 deducted (Canvas's 0.0, not nil).
    assert apply(D(8), D(10), DAY, LatePolicy(), submitted=True) == LateResult(D(8), D("0.00"), D(8), "late")
    # Late and not graded yet: late, nothing to deduct from.
    assert apply(None, D(10), DAY, p, submitted=True) == LateResult(None, D("0.00"), None, "late")
    # A negative score is never deducted further.
    assert apply(D(-2), D(10), DAY, p, submitted=True).final_score == D(-2)


def test_policy_validation() -> None:
    # Canvas's decimal(5,2) columns: 25.225 -> 25.23.
    assert late("25.225").late_submission_deduction == D("25.23")
    for bad in ({"late_submission_deduction": 101}, {"missing_submission_deduction": -1}):
        with pytest.raises(ValidationError):
            LatePolicy.model_validate(bad)
    with pytest.raises(ValidationError):
        LatePolicy.model_validate({"late_submission_interval": "week"})
    with pytest.raises(ValidationError):
        LatePolicy.model_validate({"late_deduction": 5})  # unknown field
    with pytest.raises(TypeError):
        late_deduction(0.1, D(10), DAY, late("10"))  # type: ignore[arg-type]


# --- invariants -------------------------------------------------------------------------------------

cents = st.integers(min_value=-1000, max_value=300_000).map(lambda c: D(c) / 100)
millis = st.integers(min_value=-1000, max_value=3_000_000).map(lambda m: D(m) / 1000)
possible = st.integers(min_value=0, max_value=1000).map(D)
pcts = st.integers(min_value=0, max_value=10_000).map(lambda c: D(c) / 100)
secs = st.integers(min_value=0, max_value=60 * DAY)


@st.composite
def policies(draw: Any) -> LatePolicy:
    return LatePolicy(
        late_submission_deduction_enabled=draw(st.booleans()),
        late_submission_deduction=draw(pcts),
        late_submission_interval=draw(st.sampled_from(["hour", "day"])),
        late_submission_minimum_percent_enabled=draw(st.booleans()),
        late_submission_minimum_percent=draw(pcts),
        missing_submission_deduction_enabled=draw(st.booleans()),
        missing_submission_deduction=draw(pcts),
    )


def floor_points(pp: Decimal, p: LatePolicy) -> Decimal:
    return pp * p.late_submission_minimum_percent / 100 if p.late_submission_minimum_percent_enabled else D(0)


@settings(max_examples=500, deadline=None)
@given(millis, possible, secs, policies())
def test_never_raises_and_deducts_whole_cents(entered: Decimal, pp: Decimal, s: int, p: LatePolicy) -> None:
    r = apply(entered, pp, s, p, submitted=True)
    assert r.final_score is not None
    assert r.final_score <= entered
    if r.points_deducted is not None:
        assert r.points_deducted >= 0
        assert r.points_deducted == r.points_deducted.quantize(D("0.01"))
        assert r.final_score in (entered - r.points_deducted, min(D(0), entered))


@settings(max_examples=500, deadline=None)
@given(cents, possible, secs, policies(), st.integers(min_value=0, max_value=100))
def test_never_below_the_floor_unless_it_started_there(
    entered: Decimal, pp: Decimal, s: int, p: LatePolicy, whole_floor: int
) -> None:
    # Scores in cents, whole points possible and a whole floor percent put the floor in points on the
    # cent grid (pp x floor / 100); then rounding the deduction cannot cross it and the floor holds exactly.
    p = p.model_copy(update={"late_submission_minimum_percent": D(whole_floor)})
    fp = floor_points(pp, p)
    r = apply(entered, pp, s, p, submitted=True)
    assert r.final_score is not None
    if entered <= fp:
        assert r.final_score == entered  # at or below the floor: untouched, never raised
    else:
        assert r.final_score >= fp
        assert r.final_score >= min(D(0), entered)  # never below 0 either


@settings(max_examples=300, deadline=None)
@given(millis, possible, secs, policies())
def test_floor_off_by_at_most_the_rounding(entered: Decimal, pp: Decimal, s: int, p: LatePolicy) -> None:
    # Scores with more than 2 decimals: rounding the deduction half up (Canvas) can cost up to 0.005 more.
    fp = floor_points(pp, p)
    r = apply(entered, pp, s, p, submitted=True)
    assert r.final_score is not None
    if entered > fp:
        assert r.final_score >= fp - D("0.005")


@settings(max_examples=300, deadline=None)
@given(millis, possible, secs, policies())
def test_no_deduction_when_excused_on_time_or_nothing_possible(
    entered: Decimal, pp: Decimal, s: int, p: LatePolicy
) -> None:
    assert apply(entered, pp, s, p, submitted=True, excused=True) == LateResult(entered, None, entered, "none")
    assert apply(entered, pp, 0, p, submitted=True) == LateResult(entered, None, entered, "none")
    assert late_deduction(entered, D(0), s, p) == 0
    assert apply(None, pp, s, p, submitted=False, excused=True) == LateResult(None, None, None, "none")


@settings(max_examples=300, deadline=None)
@given(millis, possible, secs, secs, policies())
def test_monotone_in_lateness(entered: Decimal, pp: Decimal, s1: int, s2: int, p: LatePolicy) -> None:
    a, b = sorted((s1, s2))
    assert late_deduction(entered, pp, a, p) <= late_deduction(entered, pp, b, p)
    ra = apply(entered, pp, a, p, submitted=True).final_score
    rb = apply(entered, pp, b, p, submitted=True).final_score
    assert ra is not None and rb is not None and rb <= ra


@settings(max_examples=300, deadline=None)
@given(possible, policies())
def test_missing_score_between_0_and_possible(pp: Decimal, p: LatePolicy) -> None:
    m = missing_score(pp, p)
    if not p.missing_submission_deduction_enabled:
        assert m is None
    else:
        assert m is not None and D(0) <= m <= pp
        assert m == pp - pp * p.missing_submission_deduction / 100
