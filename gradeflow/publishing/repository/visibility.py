"""How a published result compares with the attempt it was published from: the SQL fragments publishing, the read
side and reports share (staff's `changed`, confirmation awaited, the items learners see, the feedback digest)."""

from __future__ import annotations


def feedback_digest_sql(attempt: str, with_items: str) -> str:
    """SQL: a digest of the feedback learners are shown on attempt `attempt` (the assessment's, and
    the items' where `with_items`, an SQL condition, holds); null when there is none. Publishing
    stores it with the result, so a later change of feedback shows as a changed publication."""
    return f"""(SELECT md5(string_agg(coalesce(CAST(f.item_id AS text), '-') || ':' || length(f.text) || ':'
                                   || f.text, ',' ORDER BY f.item_id NULLS FIRST))
       FROM feedback f WHERE f.attempt_id = {attempt} AND (f.item_id IS NULL OR {with_items}))"""  # noqa: S608


# SQL: attempt `t` at assessment `a` is graded but its manual marking is not confirmed yet (publishing
# waits for it; a review shows no items of it).
AWAITS_CONFIRMATION = """t.confirmed_at IS NULL
    AND EXISTS (SELECT 1 FROM items i WHERE i.assessment_id = a.id AND i.marking = 'manual')"""

# The same rule over many assessments at once: `{manual}` is an SQL bigint[] of the assessments with
# manual items (read once, not probed per attempt). Format it in.
CONFIRMED_OR_AUTOMATIC = "(t.confirmed_at IS NOT NULL OR NOT t.assessment_id = ANY({manual}))"

# SQL: the item detail of attempt `t` at assessment `a` as learners see it (a publication with items
# stores it; a review of a total-only publication shows it): each item's score and the feedback
# written on it, in the assessment's order; never the markers' marks or comments.
ITEMS_JSON = """(SELECT coalesce(jsonb_agg(jsonb_build_object(
        'item', i.external_id, 'number', i.number, 'title', i.title,
        'earned', trim_scale(sc.earned), 'possible', trim_scale(coalesce(sc.possible, i.points_possible)),
        'feedback', (SELECT f.text FROM feedback f WHERE f.attempt_id = t.id AND f.item_id = i.id))
      ORDER BY i.position, i.id), '[]')
    FROM items i LEFT JOIN item_scores sc ON sc.attempt_id = t.id AND sc.item_id = i.id
    WHERE i.assessment_id = a.id)"""

# SQL: published result `pr` of attempt `t` no longer says what the attempt says now: excused or not,
# points and the late policy's figures (deduction, late or missing; unless excused), or the feedback shown
# with it. Staff see it as `changed`; the learner keeps the published one. Publishing offers a result again
# exactly when this holds (or its item detail differs from what the new publication shows).
CHANGED = f"""(pr.excused IS DISTINCT FROM t.excused
      OR NOT t.excused AND (pr.earned IS DISTINCT FROM t.earned OR pr.possible IS DISTINCT FROM t.possible
                            OR pr.points_deducted IS DISTINCT FROM t.points_deducted
                            OR pr.late_status IS DISTINCT FROM t.late_status)
      OR pr.published_at IS NOT NULL
         AND pr.feedback_digest IS DISTINCT FROM {feedback_digest_sql("t.id", "pr.items IS NOT NULL")})"""
