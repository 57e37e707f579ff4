"""A learner's own due date and number of attempts on an assessment: the one rule, as SQL fragments.

Overrides (``assessment_overrides``) name a learner or a group. Every override that applies to a learner (their own,
and those of each group they are in) counts, as Canvas's assignment overrides do: the latest due date among them
replaces the assessment's (an override without a due date only grants attempts), and the most extra attempts among
them are added to the assessment's ``allowed_attempts``.
"""

from __future__ import annotations


def learner(enrollment_alias: str = "e") -> str:
    """SQL: the enrollment is a learner's whom due dates bind (enrolled, not on the course team): the late policy's
    missing rule and the release after every learner's due date count the same people."""
    e = enrollment_alias
    return f"({e}.status = 'enrolled' AND NOT {e}.is_course_team)"


def overrides_join(assessment: str, enrollment: str, alias: str = "ov") -> str:
    """A LEFT JOIN LATERAL giving ``{alias}.due_at`` (null: no override moves it) and ``{alias}.extra_attempts``
    for the pair (assessment id expression, enrollment id expression)."""
    return f"""LEFT JOIN LATERAL (
        SELECT max(o.due_at) AS due_at, coalesce(max(o.extra_attempts), 0) AS extra_attempts
        FROM assessment_overrides o
        WHERE o.assessment_id = {assessment}
          AND (o.enrollment_id = {enrollment}
               OR o.group_name = ANY(SELECT unnest(g.groups) FROM enrollments g WHERE g.id = {enrollment}))
    ) {alias} ON true"""  # noqa: S608 (aliases and column expressions, never values)


def due_at(assessment_alias: str = "a", alias: str = "ov") -> str:
    """The learner's own due date (null: none), given ``overrides_join`` as ``alias`` and the assessment row."""
    return f"coalesce({alias}.due_at, {assessment_alias}.due_at)"


def allowed_attempts(assessment_alias: str = "a", alias: str = "ov") -> str:
    """How many attempts the learner may take, given ``overrides_join`` as ``alias`` and the assessment row."""
    return f"({assessment_alias}.allowed_attempts + {alias}.extra_attempts)"


def every_due_passed(assessment_alias: str = "a", now: str = ":now") -> str:
    """SQL: at ``now`` every learner's own due date (as ``due_at`` gives it) has passed, or they have none (learners
    as ``learner`` says: the course team's dates hold nothing back).

    The rule above taken over the course at once, without a row per learner: some learner's date is still ahead
    when an override that applies to an enrolled learner moves it past ``now`` (their own date is the latest of
    their overrides', so at least that one), or when the assessment's own date is ahead and some enrolled learner
    has no override moving theirs."""
    a = assessment_alias
    applies = "(o.enrollment_id = e.id OR o.group_name = ANY(e.groups))"
    enrolled = f"e.course_id = {a}.course_id AND {learner('e')}"
    return f"""(NOT EXISTS (
        SELECT 1 FROM assessment_overrides o JOIN enrollments e ON {enrolled} AND {applies}
        WHERE o.assessment_id = {a}.id AND o.due_at > {now})
      AND NOT (coalesce({a}.due_at > {now}, false) AND EXISTS (
        SELECT 1 FROM enrollments e WHERE {enrolled} AND NOT EXISTS (
          SELECT 1 FROM assessment_overrides o
          WHERE o.assessment_id = {a}.id AND o.due_at IS NOT NULL AND {applies}))))"""  # noqa: S608 (aliases)
