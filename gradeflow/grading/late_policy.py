"""Late and missing submission policy: Canvas's arithmetic, exact, for one submission at a time.

Canvas's rules (``app/models/late_policy.rb`` ``points_deducted`` and ``points_for_missing``,
``lib/late_policy_applicator.rb``, ``app/models/submission.rb`` ``score_late_or_none`` /
``score_missing`` / ``Tardiness``) with exact decimals instead of Canvas's mix of BigDecimal and Float:

- intervals late = ceil(seconds late / 3600 or 86 400), a day being a fixed 86 400 s;
- points deducted = points possible x min(percent x intervals, max(raw % - floor %, 0)) / 100,
  rounded half up to 2 decimals; only the deduction is rounded, the score is entered - deduction;
- a score at or below the floor is not deducted and never raised; points possible 0 deducts nothing;
- a missing submission without a score gets points possible x (100 - missing deduction) / 100.

Pure: no clock, no I/O. The caller passes the time of submission (or "now" for unsubmitted work).
There is no bulk (vectorised) path yet: the exact integer scaling a numpy path needs would overflow
int64 for the largest points possible this engine accepts, so the bulk path is left for later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Overflow, Underflow
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from gradeflow.grading.policy import Strict

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)
INTERVAL_SECONDS: dict[str, int] = {"hour": 3600, "day": 86_400}

# Every product and difference below must be exact: a rounding anywhere but the final half-up to
# cents is a bug, so the context traps it instead of rounding silently.
_EXACT = Context(prec=200, traps=[Inexact, InvalidOperation, Overflow, Underflow])


def _to_cents(x: Decimal) -> Decimal:
    # Canvas keeps these in decimal(5,2) columns: 25.225 is stored (and used) as 25.23.
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False), AfterValidator(_to_cents)]
Interval = Literal["hour", "day"]
Status = Literal["late", "missing", "none"]
Number = Decimal | int


class LatePolicy(Strict):
    """A course's late policy, with Canvas's field names (``LatePolicy`` in Canvas's API)."""

    missing_submission_deduction_enabled: bool = False
    missing_submission_deduction: Percent = Field(
        default=ZERO, description="Percent of points possible deducted from a missing submission (0-100)."
    )
    late_submission_deduction_enabled: bool = False
    late_submission_deduction: Percent = Field(
        default=ZERO, description="Percent of points possible deducted per interval late (0-100)."
    )
    late_submission_interval: Interval = "day"
    late_submission_minimum_percent_enabled: bool = False
    late_submission_minimum_percent: Percent = Field(
        default=ZERO, description="A late deduction never takes a score below this percent of points possible."
    )


@dataclass(frozen=True, slots=True)
class LateResult:
    """What the policy makes of one submission: staff see all three numbers, the learner the deduction."""

    entered_score: Decimal | None
    points_deducted: Decimal | None  # None unless late (Canvas's nil), 0.00 for a late one without deduction
    final_score: Decimal | None
    status: Status


def _dec(x: Number, name: str) -> Decimal:
    # Floats are refused: their binary value is not the decimal a teacher typed (use policy.exact).
    if isinstance(x, bool) or not isinstance(x, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or an int, not {type(x).__name__}")
    d = Decimal(x)
    if not d.is_finite():
        raise ValueError(f"{name} must be finite")
    return d


def seconds_late(submitted_at: datetime, due_at: datetime | None, grace_seconds: int = 0) -> int:
    """Whole seconds after the due date (0 when on time or without a due date), as Canvas's ``Tardiness``.

    ``grace_seconds`` is subtracted from the submission time first (Canvas gives quizzes 60). Submitting
    at the due second exactly is on time; a fraction of a second is dropped, not rounded up.
    """
    if grace_seconds < 0:
        raise ValueError("grace_seconds must be 0 or more")
    if submitted_at.tzinfo is None or (due_at is not None and due_at.tzinfo is None):
        raise ValueError("times must be timezone-aware")
    if due_at is None:
        return 0
    delta = submitted_at - due_at
    # timedelta keeps whole microseconds; whole seconds truncated, as Ruby's Float#to_i on a positive value.
    late_us = (delta.days * 86_400 + delta.seconds - grace_seconds) * 1_000_000 + delta.microseconds
    return late_us // 1_000_000 if late_us > 0 else 0


def intervals_late(seconds: int, interval: Interval) -> int:
    """Canvas's ``(late_for / interval).ceil``: any part of an hour or day counts as a whole one."""
    if seconds <= 0:
        return 0
    return -(-seconds // INTERVAL_SECONDS[interval])


def late_deduction(
    entered_score: Number | None, points_possible: Number, seconds_late: int, policy: LatePolicy
) -> Decimal:
    """Points to deduct from a late score, rounded half up to cents (``LatePolicy#points_deducted``).

    0.00 when the late deduction is disabled, there is no score, nothing is possible or it is not late.
    Computed in points rather than percents, which is the same quantity without a division:
    possible x min(p x n, raw% - floor%) / 100 = min(possible x p x n / 100, entered - possible x floor / 100).
    """
    if seconds_late < 0:
        raise ValueError("seconds_late must be 0 or more")
    if entered_score is None or not policy.late_submission_deduction_enabled:
        return ZERO.quantize(CENT)
    entered = _dec(entered_score, "entered_score")
    possible = _dec(points_possible, "points_possible")
    if possible <= 0 or seconds_late == 0:
        return ZERO.quantize(CENT)
    n = intervals_late(seconds_late, policy.late_submission_interval)
    floor = policy.late_submission_minimum_percent if policy.late_submission_minimum_percent_enabled else ZERO
    late_points = _EXACT.divide(
        _EXACT.multiply(possible, _EXACT.multiply(policy.late_submission_deduction, n)), HUNDRED
    )
    floor_points = _EXACT.divide(_EXACT.multiply(possible, floor), HUNDRED)
    room = max(_EXACT.subtract(entered, floor_points), ZERO)
    return min(late_points, room).quantize(CENT, rounding=ROUND_HALF_UP)


def missing_score(points_possible: Number, policy: LatePolicy) -> Decimal | None:
    """The score a missing submission gets (``LatePolicy#points_for_missing``), None when the policy is off.

    Not rounded, as in Canvas: 25 points with a 70 % deduction give 7.5. Points possible 0 give 0.
    """
    if not policy.missing_submission_deduction_enabled:
        return None
    possible = _dec(points_possible, "points_possible")
    if possible <= 0:
        return ZERO
    taken = _EXACT.divide(_EXACT.multiply(possible, policy.missing_submission_deduction), HUNDRED)
    return _EXACT.subtract(possible, taken)


def apply(
    entered_score: Number | None,
    points_possible: Number,
    seconds_late: int,
    policy: LatePolicy,
    *,
    submitted: bool,
    excused: bool = False,
) -> LateResult:
    """Canvas's ``apply_late_policy`` for one submission, given its seconds late (see ``seconds_late``).

    - excused: status none, the entered score untouched;
    - missing (not submitted, past due, no score yet): the missing score if the policy sets one;
      a score already entered is the teacher's grade and stays (it is then not missing);
    - late (submitted, past due): entered - deduction; if the rounded deduction exceeds the entered score
      (a negative score, or a rounding edge), min(0, entered), as Canvas;
    - otherwise: status none, no deduction, the entered score.
    """
    if seconds_late < 0:
        raise ValueError("seconds_late must be 0 or more")
    entered = None if entered_score is None else _dec(entered_score, "entered_score")
    if excused:
        return LateResult(entered, None, entered, "none")
    if not submitted and seconds_late > 0 and entered is None:
        return LateResult(None, None, missing_score(points_possible, policy), "missing")
    if submitted and seconds_late > 0:
        deducted = late_deduction(entered, points_possible, seconds_late, policy)
        if entered is None:
            return LateResult(None, deducted, None, "late")
        final = min(ZERO, entered) if deducted > entered else _EXACT.subtract(entered, deducted)
        return LateResult(entered, deducted, final, "late")
    return LateResult(entered, None, entered, "none")
