"""Manual marking: allocating work to graders, graders' marks, and reconciling several marks into
the item's score (which then flows through the one score path: totals, grades, audit)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import csv_cells
from gradeflow.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gradeflow.courses.commands import MarkingSettings
from gradeflow.courses.service.assessments import AssessmentView, get_assessment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import grades
from gradeflow.marking.commands import AllocationRequest, MarkIn
from gradeflow.marking.repository import marking as repository
from gradeflow.marking.repository.marking import Allocation, AllocationView, Mark, MarkView, Workgroup
from gradeflow.marking.service.views import (
    Allocated,
    Confirmation,
    MarkDone,
    MarkingQueue,
    ModerationState,
    Reconciled,
    Released,
    Skipped,
)
from gradeflow.notify import events
from gradeflow.scores.commands import ScoreRow
from gradeflow.scores.service import scores

SIX = Decimal("0.000001")


def settings(view: AssessmentView) -> MarkingSettings:
    return MarkingSettings.model_validate(view.assessment.marking or {})


# --- who marks ------------------------------------------------------------------------------------


async def identities(session: AsyncSession, ref: CourseRef, user: str) -> list[str]:
    """The names a user marks under: themselves, then their workgroups in the course."""
    return [user, *await repository.workgroups_of(session, ref.id, user)]


async def put_workgroup(session: AsyncSession, ref: CourseRef, name: str, members: list[str], actor: str) -> Workgroup:
    """Create or replace a workgroup (shared workflow: its members mark together, as the group)."""
    old = await repository.workgroup_members(session, ref.id, name)
    await repository.put_workgroup(session, ref.id, name, sorted(set(members)))
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "workgroup.set",
        old=None if old is None else {"name": name, "members": old},
        new={"name": name, "members": sorted(set(members))},
    )
    await session.commit()
    return Workgroup(name, sorted(set(members)))


async def list_workgroups(session: AsyncSession, ref: CourseRef) -> list[Workgroup]:
    return await repository.workgroups(session, ref.id)


# --- allocation -----------------------------------------------------------------------------------


async def _units(session: AsyncSession, view: AssessmentView, by: str) -> list[tuple[int, int | None, str, str]]:
    """Work to mark: (attempt id, item id or None, learner, item external id or '') in course order.

    Only submitted or pending-grading attempts of an assessment with manual items need marking.
    """
    manual = [i for i in view.items if i.marking == "manual"]
    if not manual:
        return []
    rows = await repository.attempts_to_mark(session, view.assessment.id)
    if by == "candidate":
        return [(r.attempt, None, r.learner, "") for r in rows]
    return [(r.attempt, item.id, r.learner, item.external_id) for r in rows for item in manual]


async def _discrepant_units(session: AsyncSession, view: AssessmentView) -> list[tuple[int, int | None, str, str]]:
    """Items whose marks differ by more than the threshold and have no third mark yet (one query)."""
    marks = _by_unit(await repository.marks_of_assessment(session, view.assessment.id))
    cfg = settings(view)
    factors = await repository.scalings(session, view.assessment.id)
    return [
        unit
        for unit in await _units(session, view, "item")
        if reconcile(cfg, _points_of(view, unit[1]), marks.get((unit[0], unit[1]), []), factors).status  # type: ignore[arg-type]
        == "needs_third_marker"
    ]


async def allocate(
    session: AsyncSession, ref: CourseRef, assessment: str, body: AllocationRequest, actor: str
) -> Allocated:
    """Give unallocated work to the graders: `even` balances counts (ties in the order given),
    `random` does the same in a seeded random order. Each unit gets graders_per_item markers
    (one third marker for role third)."""
    view = await get_assessment(session, ref, assessment)
    # Candidate numbers are given when work is handed out: committed with the allocation.
    await anonymity.ensure_numbers(session, ref.id, [view.assessment.id])
    cfg = settings(view)
    units = await (_discrepant_units(session, view) if body.role == "third" else _units(session, view, body.by))
    needed = 1 if body.role == "third" else cfg.graders_per_item
    existing = await repository.allocations_in_role(session, view.assessment.id, body.role)
    on_unit: dict[tuple[int, int | None], set[str]] = defaultdict(set)
    load: Counter[str] = Counter({g: 0 for g in body.graders})
    for e in existing:
        on_unit[(e.attempt, e.item)].add(e.grader)
        if e.grader in load:
            load[e.grader] += 1
    rng = random.Random(body.seed)  # noqa: S311  (an allocation order, not a secret)
    new: list[Allocation] = []
    given: dict[str, list[list[str]]] = defaultdict(list)
    for attempt, item_id, learner, item_ext in units:
        already = on_unit[(attempt, item_id)] | on_unit[(attempt, None)]
        free = [g for g in body.graders if g not in already]
        if body.mode == "random":
            rng.shuffle(free)
        for grader in sorted(free, key=lambda g: load[g])[: max(0, needed - len(already))]:
            load[grader] += 1
            new.append(Allocation(attempt, item_id, grader, body.role))
            given[grader].append([learner, item_ext])
    if new:
        await repository.add_allocations(session, new)
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "allocation.add",
            assessment=assessment,
            new={"mode": body.mode, "by": body.by, "role": body.role, "allocated": given},
        )
    await session.commit()
    return Allocated(len(new), {g: len(v) for g, v in given.items()})


async def remove_grader(session: AsyncSession, ref: CourseRef, assessment: str, grader: str, actor: str) -> Released:
    """Take a grader off the assessment; their unmarked work goes evenly to the remaining graders."""
    view = await get_assessment(session, ref, assessment)
    removed = await repository.release_unmarked(session, view.assessment.id, grader)
    if not removed:
        raise NotFound(f"{grader!r} has no unmarked work allocated in {assessment!r}.")
    others = await repository.other_graders_by_load(session, view.assessment.id, grader)
    load: Counter[str] = Counter()
    on_attempt: dict[int, set[str]] = defaultdict(set)
    for attempt, g in await repository.graders_on(session, sorted({r.attempt for r in removed})):
        on_attempt[attempt].add(g)
    moved: list[Allocation] = []
    for r in removed:
        taken = on_attempt[r.attempt]
        free = sorted((g for g in others if g not in taken), key=lambda g: load[g])
        if free:
            load[free[0]] += 1
            moved.append(Allocation(r.attempt, r.item, free[0], r.role))
    if moved:
        await repository.add_allocations(session, moved)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "allocation.remove",
        assessment=assessment,
        old={"grader": grader, "units": len(removed)},
        new={"reallocated": dict(load)},
    )
    await session.commit()
    return Released(len(removed), dict(load))


async def list_allocations(session: AsyncSession, ref: CourseRef, assessment: str) -> list[AllocationView]:
    view = await get_assessment(session, ref, assessment)
    return await repository.allocations_of(session, view.assessment.id)


async def queue(session: AsyncSession, ref: CourseRef, grader: str, hide: bool = False) -> MarkingQueue:
    """The grader's allocated items (their own and their workgroups') not marked yet, with counts; on an
    anonymous assessment a concealed caller (`hide`) gets each learner's candidate label."""
    names = await identities(session, ref, grader)
    drawn = hide and await anonymity.ensure_numbers(session, ref.id)
    rows = await repository.unmarked_allocated(session, ref.id, names, hide)
    if drawn:  # the labels shown hold for the next request
        await session.commit()
    counts = Counter(r.assessment for r in rows)
    # Every attempt of a hidden assessment was numbered above (under the numbering lock).
    to_mark = [replace(r, learner=anonymity.label(cast(int, r.number))) if hide and r.hidden else r for r in rows]
    return MarkingQueue(grader, to_mark, dict(counts))


# --- marks ----------------------------------------------------------------------------------------


async def _attempt_and_item(
    session: AsyncSession, view: AssessmentView, ref: CourseRef, learner: str, item: str
) -> tuple[int | None, int]:
    found = next((i for i in view.items if i.external_id == item), None)
    if found is None:
        raise NotFound(f"Item {item!r} not found in {view.assessment.external_id!r}.")
    if found.marking != "manual":
        raise ValidationFailed.one("item", "This item is scored automatically; override its score instead.", "path")
    row = await repository.attempt_of(session, ref.id, view.assessment.id, learner)
    if row is not None and row.status == "cancelled":
        raise Conflict("The attempt is cancelled: it takes no marks.")
    return (None if row is None else row.id), found.id


async def _role_for(
    session: AsyncSession, cfg: MarkingSettings, attempt: int | None, item_id: int, names: list[str]
) -> tuple[str, str]:
    """Under which name and role the user marks this item: allocated to them (individual) or to one
    of their workgroups (shared), as marker or third marker; or as the final grader. A learner
    without an attempt is 404 only to the final grader: to any other grader it is work not allocated
    to them, so a grader learns nothing of others' learners (whether they started, for one)."""
    candidates = names[1:] if cfg.workflow == "shared" else names[:1]
    allocated = await repository.allocation_for(session, attempt, item_id, candidates)
    if allocated is not None:
        return allocated
    if cfg.reconciliation == "final_grader" and names[0] == cfg.final_grader:
        if attempt is None:
            raise NotFound("The learner has no attempt at this assessment.")
        return names[0], "final"
    raise Forbidden("This item is not allocated to you" + (" or your workgroup." if cfg.workflow == "shared" else "."))


async def put_mark(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    item: str,
    grader: str,
    body: MarkIn,
    hide: bool = False,
) -> MarkDone:
    """Record the caller's mark for one item, then reconcile the item's marks into its score (`rescore`;
    a score the marks no longer give is removed). A changed mark of an attempt a moderator already decided
    sends it back to pending in the sample. A concealed caller (`hide`) names the learner of an anonymous
    assessment by candidate label, and is answered so."""
    view = await get_assessment(session, ref, assessment)
    shown = learner
    learner = (await anonymity.resolve(session, ref, hide, assessment, shown)).learner
    cfg = settings(view)
    attempt, item_id = await _attempt_and_item(session, view, ref, learner, item)
    possible = _points_of(view, item_id)
    if body.points > possible:
        raise ValidationFailed.one("/points", f"At most the item's {possible.normalize()} points.")
    marker, role = await _role_for(session, cfg, attempt, item_id, await identities(session, ref, grader))
    assert attempt is not None  # _role_for refuses a learner without one
    if cfg.reconciliation == "final_grader" and role == "marker" and grader == cfg.final_grader:
        marker, role = grader, "final"
    await lock(session, view.assessment.id, [attempt])
    previous = await repository.mark_of(session, attempt, item_id, marker)
    await repository.put_mark(session, attempt, item_id, marker, role, body.points, body.comment)
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        grader,
        "mark.set",
        learner=learner,
        assessment=assessment,
        item=item,
        old=None if previous is None else {"points": _num(previous.points), "comment": previous.comment},
        new={"points": _num(body.points), "comment": body.comment, "role": role, "marked_as": marker},
    )
    if previous is None or previous.points != body.points:
        await _reopen_sample(session, ref, view, attempt, learner, grader)
    # The grader's new mark decides again even where a planner had overridden the item's score.
    done = await rescore(session, ref, view, [attempt], grader, items=[item_id], replace={(attempt, item_id)})
    state = done.states.get((attempt, item_id))
    if state is None:  # cancelled meanwhile: nothing of this mark is kept
        raise Conflict("The attempt is cancelled: it takes no marks.")
    await session.commit()
    return MarkDone(shown, item, role, marker, body.points, state.status)


# --- the one path from marks to item scores --------------------------------------------------------
#
# Marks (graders', third markers', the final grader's, a moderator's) and scalings become item scores
# only through `rescore`, under `lock`: whatever changes marks or scalings (put_mark, a moderator's
# agreement or adjustment, scaling) takes the locks first and reads after, so the last to commit
# reconciles from everything committed before it, never from a stale snapshot.


async def lock(session: AsyncSession, assessment_id: int, attempts: list[int], *, exclusive: bool = False) -> None:
    """Serialise changes of marks and scalings until the transaction ends: the assessment shared (a
    scaling takes it exclusive, as it touches every attempt its grader marked), then each attempt
    exclusive, in one order so that two callers never wait on each other."""
    await repository.lock_assessment(session, assessment_id, exclusive=exclusive)
    if attempts:
        await repository.lock_attempts(session, attempts)


@dataclass
class Rescored:
    changed: int  # item scores written or removed
    states: dict[tuple[int, int], Reconciled]  # (attempt, item) -> reconcile() of its marks


async def rescore(
    session: AsyncSession,
    ref: CourseRef,
    view: AssessmentView,
    attempts: list[int],
    actor: str,
    *,
    items: list[int] | None = None,
    replace: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(),
) -> Rescored:
    """Reconcile the marked items of these attempts (all their marked items, or `items`) and write each
    item score that changes through the one score path, in one batch. An overridden score stands unless
    its (attempt, item) is in `replace` (someone decided that item just now). Where the marks no longer
    give a score (a moderator's mark withdrawn before every grader marked, markers now too far apart)
    the score marking gave is removed: totals, status, late policy and grades follow, audited as
    `item_score.removed`. Cancelled attempts take no score. Call under `lock`."""
    cfg = settings(view)
    factors = await repository.scalings(session, view.assessment.id)
    by_id = {i.id: i for i in view.items}
    marks = _by_unit(await repository.marks_of_attempts(session, attempts, items))
    current = await repository.item_scores_of(session, attempts)
    learners = await repository.learners_of_live_attempts(session, attempts)
    rows: list[ScoreRow] = []
    gone: list[tuple[int, int]] = []
    states: dict[tuple[int, int], Reconciled] = {}
    for (attempt, item_id), given in marks.items():
        item = by_id.get(item_id)
        if item is None or item.marking != "manual" or attempt not in learners:
            continue
        state = states[(attempt, item_id)] = reconcile(cfg, item.points_possible, given, factors)
        now = current.get((attempt, item_id))
        earned, source = (None, "") if now is None else (now.earned, now.source)
        if source == "override" and (attempt, item_id) not in replace:
            continue
        if state.score is None:
            if source == "manual":  # a score marking gave, which no mark gives now
                gone.append((attempt, item_id))
            continue
        if state.score == earned and source == "manual":
            continue
        rows.append(
            ScoreRow(
                assessment=view.assessment.external_id,
                learner=learners[attempt],
                item=item.external_id,
                earned=state.score,
                source="manual",
                graded_by=state.decided_by,
            )
        )
    if rows:
        errors = await scores.write_rows(session, ref, rows, actor)
        if errors:
            raise Conflict(errors[0].detail)
    if gone:
        await _remove_scores(session, ref, view, gone, learners, actor)
    return Rescored(len(rows) + len(gone), states)


async def _remove_scores(
    session: AsyncSession,
    ref: CourseRef,
    view: AssessmentView,
    gone: list[tuple[int, int]],
    learners: dict[int, str],
    actor: str,
) -> None:
    """Take away item scores no mark gives any more, as the score path would: audit, totals and status
    (the attempt is pending grading again and unconfirmed), the late policy, the learners' grades."""
    removed = await repository.remove_marking_scores(session, gone)
    if not removed:
        return
    items = {i.id: i.external_id for i in view.items}
    await audit.record_many(
        session,
        ref.organization_id,
        ref.id,
        actor,
        [
            {
                "action": "item_score.removed",
                "learner": learners[r.attempt],
                "assessment": view.assessment.external_id,
                "item": items[r.item],
                "old": {
                    "earned": _num(r.earned),
                    "possible": _num(r.possible),
                    "source": "manual",
                    "graded_by": r.scored_by,
                },
            }
            for r in removed
        ],
    )
    touched = sorted({r.attempt for r in removed})
    await scores.derive_totals(session, touched)
    await late_results.apply(session, ref.id, attempt_ids=touched, actor=actor)
    await grades.refresh_learners(session, ref.id, await repository.enrollments_of(session, touched))


async def _reopen_sample(
    session: AsyncSession, ref: CourseRef, view: AssessmentView, attempt: int, learner: str, grader: str
) -> None:
    """A grader changed a mark of an attempt a moderator has already decided: the decision was about other
    marks, so the attempt goes back to pending in the sample (and confirmation waits for the moderator
    again). A moderator's own marks stay and still decide their items. Audited as `moderation.reopened`."""
    old = await repository.reopen_sample(session, attempt)
    if old is not None:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            grader,
            "moderation.reopened",
            learner=learner,
            assessment=view.assessment.external_id,
            old=asdict(old),
            new={"status": "pending", "reason": "a grader changed a mark"},
        )


def _by_unit(marks: list[Mark]) -> dict[tuple[int, int], list[tuple[Any, ...]]]:
    """Marks by (attempt, item): (grader, role, points) each, in the order given."""
    out: dict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    for m in marks:
        out[(m.attempt, m.item)].append((m.grader, m.role, m.points))
    return out


def _points_of(view: AssessmentView, item_id: int) -> Decimal:
    return next(i.points_possible for i in view.items if i.id == item_id)


def scaled(points: Decimal, factor: Decimal, possible: Decimal) -> Decimal:
    """A mark under a moderator's scaling of its grader: times the factor, capped at the item's points,
    rounded to 6 decimals as reconciliation rounds."""
    return min(points * factor, possible).quantize(SIX, rounding=ROUND_HALF_UP)


def reconcile(
    cfg: MarkingSettings,
    possible: Decimal,
    marks: list[tuple[Any, ...]],
    scalings: dict[str, Decimal] | None = None,
) -> Reconciled:
    """The item's score from its marks (grader, role, points; oldest first), and its status.

    A moderator's mark decides the item (the graders' marks stay beside it). A grader's marks count
    scaled when a moderator scaled them (`scalings`: grader -> factor); a moderator's own never are.
    Whether markers disagree (a third marker is needed) is judged on the marks as given: a scaling
    corrects one grader's standard after the fact, it is not a disagreement about the work."""
    by_role: dict[str, list[tuple[str, Decimal, Decimal]]] = defaultdict(list)
    for grader, role, points in marks:
        factor = (scalings or {}).get(grader) if role != "moderator" else None
        by_role[role].append((grader, points, points if factor is None else scaled(points, factor, possible)))
    if by_role["moderator"]:
        grader, _, points = by_role["moderator"][-1]
        return Reconciled("moderated", points, grader)
    if cfg.reconciliation == "final_grader":
        if by_role["final"]:
            grader, _, points = by_role["final"][-1]
            return Reconciled("reconciled", points, grader)
        return Reconciled("awaiting_final_grader", None, None)
    if by_role["third"]:
        grader, _, points = by_role["third"][-1]
        return Reconciled("reconciled", points, grader)
    given = [p for _, p, _ in by_role["marker"]]
    markers = [p for _, _, p in by_role["marker"]]
    if len(markers) < cfg.graders_per_item:
        return Reconciled("awaiting_marks", None, None)
    spread = max(given) - min(given)
    limits = [Decimal(str(cfg.discrepancy_points))] if cfg.discrepancy_points is not None else []
    if cfg.discrepancy_fraction is not None:
        limits.append(Decimal(repr(cfg.discrepancy_fraction)) * possible)
    if any(spread > limit for limit in limits):
        return Reconciled("needs_third_marker", None, None)
    if cfg.reconciliation == "max":
        score = max(markers)
    elif cfg.reconciliation == "min":
        score = min(markers)
    else:
        score = (sum(markers, Decimal(0)) / len(markers)).quantize(SIX, rounding=ROUND_HALF_UP)
    decided_by = by_role["marker"][0][0] if len(markers) == 1 else "reconciled"
    return Reconciled("reconciled", score, decided_by)


async def list_marks(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    viewer: str | None,
    scope: list[str] | None = None,
    hide: bool = False,
) -> list[MarkView]:
    """Marks of the assessment. A grader (`viewer`) sees their own and their workgroups' marks, plus
    the others' on items already reconciled, of attempts in their `scope` (the results they see:
    None for all, or the names whose allocated attempts they see). Full access (viewer None) sees
    every mark. A concealed caller (`hide`) sees candidate labels on an anonymous assessment."""
    view = await get_assessment(session, ref, assessment)
    labels = await anonymity.view(session, ref, hide, assessment)
    mine = await identities(session, ref, viewer) if viewer is not None else None
    rows = await repository.marks_seen(session, view.assessment.id, mine, scope, labels.hidden)
    await anonymity.keep_numbers(session, labels)
    return labels.rows(rows)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# --- confirmation ---------------------------------------------------------------------------------


def moderation_state(view: AssessmentView, marked: int, sampled: int, pending: int) -> ModerationState:
    """THE rule of where moderation stands (the status shown, and what confirmation waits for).

    Only graders' marks are moderated: an assessment without manual items, or whose manual items were all
    scored without marks (imported or PUT as scores), has nothing to moderate and never waits for it.
    """
    required = view.assessment.moderation_required and any(i.marking == "manual" for i in view.items)
    if not sampled:
        return "not_started" if required and marked else "not_required"
    return "in_progress" if pending else "complete"


async def confirm(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learners: list[str] | None,
    who: str,
    full_access: bool,
    hide: bool = False,
) -> Confirmation:
    """Confirm grading: the attempts' results become final (and count in the final course grade).

    Planners confirm any graded attempt; a grader only where the assessment allows graders to
    confirm, and only attempts allocated to them. Returns what was confirmed and what was skipped, why.
    A concealed caller (`hide`) lists and is answered candidate labels on an anonymous assessment (a
    label that names no candidate is skipped as not found).
    """
    labels = await anonymity.view(session, ref, hide, assessment)
    learners, unknown = labels.reals(learners)
    view = await get_assessment(session, ref, assessment)
    if not full_access and not settings(view).graders_confirm:
        raise Forbidden("Only planners confirm grading of this assessment.")
    if view.assessment.moderation_required:
        marked, sampled, pending = await repository.moderation_progress(session, view.assessment.id)
        state = moderation_state(view, marked, sampled, pending)
        if state in ("not_started", "in_progress"):
            why = "no moderation sample has been picked yet" if not sampled else f"{pending} sampled attempts pending"
            raise Conflict(f"Moderation of {assessment!r} is not complete: {why}.")
    scope = None if full_access else await identities(session, ref, who)
    rows = await repository.to_confirm(session, ref.id, view.assessment.id, scope, learners)
    found = {r.learner for r in rows}
    skipped = [Skipped(learner, "not enrolled") for learner in learners or [] if learner not in found]
    chosen: list[tuple[str, int, int]] = []
    for r in rows:
        # Allocation first: a grader learns nothing of work that is not theirs.
        reason = (
            "not allocated to you"
            if not r.allocated
            else "no attempt"
            if r.attempt is None
            else "not graded yet"
            if r.status != "graded"
            else "already confirmed"
            if r.confirmed
            else None
        )
        if reason is None:
            assert r.attempt is not None  # "no attempt" otherwise
            chosen.append((r.learner, r.enrollment, r.attempt))
        elif learners is not None:
            skipped.append(Skipped(r.learner, reason))
    if chosen:
        await repository.confirm_attempts(session, [attempt for _, _, attempt in chosen], who)
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            who,
            "confirmation.set",
            assessment=assessment,
            new={"learners": [learner for learner, _, _ in chosen]},
        )
        await grades.refresh_learners(session, ref.id, [enrollment for _, enrollment, _ in chosen])
        await events.emit(
            session,
            ref.organization_id,
            "grading.confirmed",
            {
                "course": ref.external_id,
                "assessment": assessment,
                "confirmed_by": who,
                "learners": [learner for learner, _, _ in chosen],
            },
        )
    await session.commit()
    # As the caller sees it: labels when hidden, and what named no candidate skipped as not found.
    confirmed = [labels.show(learner) for learner, _, _ in chosen]
    return Confirmation(confirmed, [*labels.rows(skipped), *(Skipped(g, "not found") for g in unknown)])


async def marks_csv(session: AsyncSession, ref: CourseRef, assessment: str) -> str:
    """Every manual item of every marked attempt, one column per grader (or workgroup), then the
    item's score: what each marker gave, side by side."""
    marks = await list_marks(session, ref, assessment, viewer=None)
    graders = sorted({m.grader for m in marks})
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for m in marks:
        cells.setdefault((m.learner, m.item), {})[m.grader] = _num(m.points)
    view = await get_assessment(session, ref, assessment)
    scored = {
        (s.learner, s.item): (s.earned, s.source)
        for s in await repository.manual_item_scores(session, view.assessment.id)
    }
    rows: list[list[Any]] = [["learner", "item", *graders, "score", "source"]]
    for (learner, item), given in cells.items():
        score, source = scored.get((learner, item), (None, None))
        rows.append([learner, item, *(given.get(g, "") for g in graders), "" if score is None else score, source or ""])
    # Learners, items and graders (JWT subjects, workgroup names) are anyone's text: neutralised.
    return csv_cells.to_text(rows)
