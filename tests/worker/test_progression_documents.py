"""The progression reports as documents: what the group and the individual progression PDFs say, read
back with pdftotext; tagged PDF/UA-1 in their language; the distribution chart says both series with
the numbers. Records are built by hand: no database, no worker."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime
from typing import Any

import pypdf

from gradeflow.reports.service.progression_report import (
    BY_ITEM,
    BY_NOTHING,
    BY_SKILL,
    GroupProgression,
    LearnerChange,
    LearnerProgression,
    PartChange,
    Published,
)
from gradeflow.reports.writers import pdf
from tests.worker.test_pdf_documents import DASH, document_outline, elements, header_cells, lines, structure


def group(**changes: Any) -> GroupProgression:
    g = GroupProgression(
        course="Algebra I",
        initial="Diagnostic test",
        final="Final test",
        language="en",
        group="g1",
        cohort=None,
        since=datetime(2026, 9, 1, tzinfo=UTC),
        until=datetime(2027, 1, 1, tzinfo=UTC),
        learners=[
            LearnerChange("l1", "Zoë Øster-Müller", 40.0, 70.0),
            LearnerChange("l2", "王小明", 80.0, 75.5),
            LearnerChange("l3", "Ann Test", 55.0, 55.0),
        ],
        not_compared=2,
        by=BY_ITEM,
        parts=[PartChange.of("Limits", 3, 50.0, 75.0), PartChange.of("Vectors", 2, 62.5, 60.0)],
        before_histogram=[0, 0, 0, 0, 1, 1, 0, 0, 1, 0],
        after_histogram=[0, 0, 0, 0, 0, 1, 0, 2, 0, 0],
    )
    return dataclasses.replace(g, **changes)


def learner(**changes: Any) -> LearnerProgression:
    r = LearnerProgression(
        learner="l1",
        name="Zoë Øster-Müller",
        course="Algebra I",
        language="en",
        initial="Diagnostic test",
        final="Final test",
        before=Published(8.0, 20.0, []),
        after=Published(14.5, 20.0, []),
        by=BY_SKILL,
        parts=[PartChange.of("algebra", 1, 40.0, 80.0), PartChange.of("geometry", 1, 50.0, 45.0)],
        detail_published=True,
    )
    return dataclasses.replace(r, **changes)


def test_group_progression_says_who_was_compared_and_how_each_changed() -> None:
    content = pdf.group_progression(group())
    shown = lines(content)
    assert shown[:12] == [
        "Group progression: Final test",
        "Course Algebra I",
        "Initial test Diagnostic test",
        "Final test Final test",
        "Learners Group g1",
        "Period September 1, 2026 to December 31, 2026",
        "Learners",
        "Compared Not compared Improved Unchanged Declined",
        "3 2 1 1 1",
        "Overall statistics (percent)",
        "Before After Change",
        "Mean 58.33% 66.83% +8.5%",  # the mean change: (30 - 4.5 + 0) / 3
    ]
    assert shown[12] == "Median 55% 70% +15%"
    at = shown.index("Change per learner")
    assert shown[at + 1 : at + 5] == [
        "Learner Name Before After Change",
        "l1 Zoë Øster-Müller 40% 70% +30%",
        "l2 王小明 80% 75.5% -4.5%",
        "l3 Ann Test 55% 55% 0%",
    ]
    at = shown.index("Change per question")
    assert shown[at + 1].startswith("Compared per question (2 in both tests)")
    at = shown.index("Question Learners Before After Change")
    assert shown[at : at + 3] == [
        "Question Learners Before After Change",
        "Limits 3 50% 75% +25%",
        "Vectors 2 62.5% 60% -2.5%",
    ]


def test_group_progression_is_tagged_and_its_chart_says_both_distributions() -> None:
    content = pdf.group_progression(group(language="fr"))
    root, tree = structure(content)
    assert root["/Lang"] == "fr"
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert reader.metadata is not None
    assert reader.metadata.title == "Rapport de progression du groupe - Final test - Algebra I"
    assert re.search(rb"<pdfuaid:part>1</pdfuaid:part>", content)
    assert document_outline(content) == [
        "/H1",
        "/Div",  # course, tests, learners, period
        *["/H2", "/Table"] * 2,  # counts, statistics
        *["/H2", "/Figure"],  # both distributions
        *["/H2", "/Table"],  # per learner
        *["/H2", "/P", "/Table"],  # per question, saying which it is
    ]
    assert [header_cells(t) for t in elements(tree, "/Table")] == [5, 4, 5, 5]
    (figure,) = elements(tree, "/Figure")
    alt = str(figure["/Alt"])
    assert alt.startswith("Diagramme en barres du nombre d'apprenants par tranche de pourcentage, avant et après")
    assert f"40{DASH}50\xa0% : avant 1, après 0" in alt and f"70{DASH}80\xa0% : avant 0, après 2" in alt


def test_group_progression_says_when_it_compares_skills_or_nothing() -> None:
    skills = lines(pdf.group_progression(group(by=BY_SKILL, parts=[PartChange.of("algebra", 3, 40.0, 52.5)])))
    at = skills.index("Change per skill")
    assert skills[at + 1].startswith("The two tests share no questions: compared per skill.")
    assert "algebra 3 40% 52.5% +12.5%" in skills
    nothing = lines(pdf.group_progression(group(by=BY_NOTHING, parts=[])))
    assert "The two tests share no questions and no skills: only their totals are compared." in nothing
    nobody = lines(pdf.group_progression(group(learners=[], before_histogram=[0] * 10, after_histogram=[0] * 10)))
    assert "No learner has a final result on both tests yet." in nobody
    assert f"Mean {DASH} {DASH} {DASH}" in nobody


def test_individual_progression_shows_both_results_the_change_and_each_skill() -> None:
    shown = lines(pdf.individual_progression(learner()))
    assert shown[:9] == [
        "Progression: Zoë Øster-Müller",
        "Course Algebra I",
        "Learner l1",
        "Results",
        "Change: +32.5%",
        "Assessment Title Score Out of Percent",
        "Initial test Diagnostic test 8 20 40%",
        "Final test Final test 14.5 20 72.5%",
        "Change",
    ]
    at = shown.index("Skill Before After Change")
    assert shown[at + 1 : at + 3] == ["algebra 40% 80% +40%", "geometry 50% 45% -5%"]
    _, tree = structure(pdf.individual_progression(learner()))
    (figure,) = elements(tree, "/Figure")
    assert str(figure["/Alt"]) == (
        "Bar chart of the percent earned on the initial and the final test: Initial test: 40%, Final test: 72.5%."
    )


def test_individual_progression_without_published_questions_says_so_in_its_language() -> None:
    shown = lines(pdf.individual_progression(learner(language="nb", parts=[], detail_published=False, by=BY_ITEM)))
    assert shown[0] == "Progresjon: Zoë Øster-Müller"
    assert "Endring: +32,5 %" in shown
    assert "Oppgavene på begge prøvene er ikke publisert for deg: bare totalene sammenlignes." in shown
