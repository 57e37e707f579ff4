"""The PDF reports as documents: every script prints and reads back (poppler's pdftotext, as a reader's
copy-paste or search would), the files are tagged PDF/UA-1 with their language and title, tables have
header cells, charts say what they show, labels come in the report's language. Records are built by
hand: no database, no worker."""

from __future__ import annotations

import dataclasses
import importlib.resources
import io
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from pypdf.generic import ArrayObject, DictionaryObject

from gradeflow.reports import labels as report_labels
from gradeflow.reports.labels import LabelCatalogue, languages
from gradeflow.reports.service.report_records import (
    AssessmentLine,
    CategoryLine,
    GroupResults,
    ItemLine,
    LearnerRecord,
    Ranked,
)
from gradeflow.reports.writers import pdf

RLE, PDF_ = "\u202b", "\u202c"
DASH = "\N{EN DASH}"
# A name in each script, and how pdftotext gives it back. Arabic comes back in logical order (the order
# it is typed and read), the run wrapped in RIGHT-TO-LEFT EMBEDDING ... POP DIRECTIONAL FORMATTING.
# Known limits of reading text back (the page shows them right; README, "PDF engine"): poppler
# reverses the two letters of a lam-alef ligature (الأحمد reads األحمد; the PDF maps the glyph to لأ),
# and a Thai or Devanagari mark that the font shifts vertically can repeat its cluster's base letter
# (Typst's PDF writer, typst#7610).
SCRIPTS = {
    "Latin": ("Zoë Øster-Müller", "Zoë Øster-Müller"),
    "Chinese": ("王小明", "王小明"),
    "Japanese": ("山田さくら", "山田さくら"),
    "Korean": ("김민준", "김민준"),
    "Devanagari": ("प्रिया शर्मा", "प्रिया शर्मा"),  # conjuncts and vowel signs: shaped, read back as typed
    "Arabic": ("فاطمة علي", f"{RLE}فاطمة علي{PDF_}"),
    "Thai": ("ก่อน สุดใจ", "ก่อน สุดใจ"),  # a tone mark above, a vowel below
}


def pdftotext(content: bytes, *args: str) -> str:
    program = shutil.which("pdftotext")
    assert program, "pdftotext is missing: `make test` installs poppler-utils"
    return subprocess.run([program, *args, "-", "-"], input=content, capture_output=True, check=True).stdout.decode()


def lines(content: bytes) -> list[str]:
    """The page's lines as pdftotext lays them out, each run of spaces one space: a table row is one
    line, its cells in order."""
    return [" ".join(line.split()) for line in pdftotext(content, "-layout").splitlines() if line.strip()]


def ranked(rank: int | None, learner: str, name: str, earned: float, letter: str | None = "A") -> Ranked:
    return Ranked(rank=rank, learner=learner, name=name, earned=earned, percent=earned * 10, letter=letter)


def group_results(**changes: Any) -> GroupResults:
    names = [name for name, _ in SCRIPTS.values()]
    scores = [10, 9.5, 9.5, 8, 7.5, 6, 4.5]  # two share the second place
    ranks = [1, 2, 2, 4, 5, 6, 7]
    letters = ["A", "A", "A", "B", "B", "C", "F"]
    results = GroupResults(
        course="Algebra I",
        assessment="Quiz 1",
        language="en",
        group="g1",
        cohort=None,
        since=datetime(2026, 9, 1, tzinfo=UTC),
        until=datetime(2026, 12, 1, tzinfo=UTC),
        possible=10.0,
        ranking=[
            ranked(r, f"l{k}", n, s, x)
            for k, (r, n, s, x) in enumerate(zip(ranks, names, scores, letters, strict=True))
        ],
        team=[ranked(None, "t1", "Teacher Tom", 9)],
        not_graded=2,
        not_taken=3,
        excused=1,
        stats={"count": 7, "mean": 78.57, "median": 80.0, "stdev": 18.48, "min": 45.0, "max": 100.0},
        histogram=[0, 0, 0, 0, 1, 0, 1, 2, 0, 3],
        letters={"A": 3, "B": 2, "C": 1, "F": 1},
    )
    return dataclasses.replace(results, **changes)


def homework(n: int, earned: float | None, *, dropped: bool = False, state: str = "final") -> AssessmentLine:
    return AssessmentLine(
        label=f"Homework {n}",
        title=f"Homework {n}: quadratic equations",
        state=state,
        earned=earned,
        possible=10.0,
        percent=None if earned is None else earned * 10,
        dropped=dropped,
        feedback=None,
        items=[],
    )


def learner_record(**changes: Any) -> LearnerRecord:
    exam = AssessmentLine(
        label="Final Exam",
        title="Final exam",
        state="final",
        earned=42.5,
        possible=50.0,
        percent=85.0,
        dropped=False,
        feedback="Well argued; check your units.",
        items=[
            ItemLine(number="1", title="Limits", earned=10.0, possible=10.0, feedback="Clear steps"),
            ItemLine(number="2", title=None, earned=7.5, possible=10.0, feedback=None),
            ItemLine(number=None, title="Essay", earned=25.0, possible=30.0, feedback=None),
        ],
    )
    record = LearnerRecord(
        learner="l1",
        name="Zoë Øster-Müller",
        course="Algebra I",
        language="en",
        grade_percent=78.25,
        grade_letter="B",
        categories=[
            CategoryLine(
                name="Homework",
                percent=65.0,
                assessments=[
                    homework(1, 7),
                    homework(2, 6),
                    homework(3, 2.5, dropped=True),
                    homework(4, None, state="not_attempted"),
                ],
            ),
            CategoryLine(name="Final Exam", percent=85.0, assessments=[exam]),
        ],
        cutoffs=[("A", 90.0), ("B", 75.0), ("F", 0.0)],
    )
    return dataclasses.replace(record, **changes)


# --- the PDF's structure, read with pypdf ----------------------------------------------------------


def structure(content: bytes) -> tuple[DictionaryObject, DictionaryObject]:
    root = pypdf.PdfReader(io.BytesIO(content)).trailer["/Root"]
    return root, root["/StructTreeRoot"].get_object()


def children(element: DictionaryObject) -> list[DictionaryObject]:
    k = element.get("/K")
    if k is None:
        return []
    k = k.get_object()
    kids = list(k) if isinstance(k, ArrayObject) else [k]
    return [c.get_object() for c in kids if isinstance(c.get_object(), DictionaryObject) and "/S" in c.get_object()]


def elements(element: DictionaryObject, kind: str) -> list[DictionaryObject]:
    found = [element] if element.get("/S") == kind else []
    return found + [e for child in children(element) for e in elements(child, kind)]


def document_outline(content: bytes) -> list[str]:
    """The structure elements under /Document: what assistive technology reads, in its order."""
    _, tree = structure(content)
    (document,) = children(tree)
    assert document["/S"] == "/Document"
    return [str(e["/S"]) for e in children(document)]


def header_cells(table: DictionaryObject) -> int:
    (head,) = elements(table, "/THead")
    assert not elements(head, "/TD")
    return len(elements(head, "/TH"))


# --- scripts ----------------------------------------------------------------------------------------


def test_a_name_in_every_script_prints_and_reads_back() -> None:
    """The group report ranks a learner named in each script; each comes back from pdftotext, in rank
    order; an individual report titled with each name does too."""
    shown = lines(pdf.group_report(group_results()))
    ranking = shown[shown.index("Rank Learner Name Score Percent Grade") + 1 :][:7]
    assert ranking == [
        f"1 l0 {SCRIPTS['Latin'][1]} 10 100% A",
        f"2 l1 {SCRIPTS['Chinese'][1]} 9.5 95% A",  # ties share a rank
        f"2 l2 {SCRIPTS['Japanese'][1]} 9.5 95% A",
        f"4 l3 {SCRIPTS['Korean'][1]} 8 80% B",
        f"5 l4 {SCRIPTS['Devanagari'][1]} 7.5 75% B",
        f"6 l5 {SCRIPTS['Arabic'][1]} 6 60% C",
        f"7 l6 {SCRIPTS['Thai'][1]} 4.5 45% F",
    ]
    for name, expected in SCRIPTS.values():
        assert lines(pdf.individual_report(learner_record(name=name)))[0] == f"Results: {expected}"


def test_fonts_are_embedded_per_script() -> None:
    """Each script is drawn with a face that has it (no empty boxes): the faces are embedded subsets."""
    reader = pypdf.PdfReader(io.BytesIO(pdf.group_report(group_results())))
    fonts = {
        str(font.get_object()["/BaseFont"]).split("+", 1)[-1]
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }
    expected = {"NotoSans-Regular", "NotoSans-Bold", "NotoSansArabic-Regular", "NotoSansDevanagari-Regular"}
    assert expected | {"NotoSansThai-Regular"} <= {f.removesuffix("-Identity-H") for f in fonts}
    assert any(f.startswith("NotoSansCJK") for f in fonts)


# --- accessibility --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["group", "individual"])
def test_tagged_pdf_ua_with_language_and_title(kind: str) -> None:
    content = (
        pdf.group_report(group_results(language="fr"))
        if kind == "group"
        else pdf.individual_report(learner_record(language="fr"))
    )
    root, tree = structure(content)
    assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712 - a PDF boolean object
    assert tree["/Type"] == "/StructTreeRoot"
    assert root["/Lang"] == "fr"
    assert root["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712 - viewers show the title, not the file name
    reader = pypdf.PdfReader(io.BytesIO(content))
    title = "Rapport de groupe - Quiz 1 - Algebra I" if kind == "group" else "Résultats - Zoë Øster-Müller - Algebra I"
    assert reader.metadata is not None and reader.metadata.title == title
    xmp = reader.xmp_metadata
    assert xmp is not None and xmp.dc_title == {"x-default": title} and xmp.dc_language == ["fr"]
    assert re.search(rb"<pdfuaid:part>1</pdfuaid:part>", content)


def test_reading_order_and_table_headers_group() -> None:
    content = pdf.group_report(group_results())
    assert document_outline(content) == [
        "/H1",
        "/Div",  # course, learners, period, points
        "/H2",
        "/Table",  # statistics
        "/H2",
        "/Figure",  # score distribution
        "/H2",
        "/Figure",  # grade distribution
        "/H2",
        "/Table",  # ranking
        "/H2",
        "/Table",  # course team
    ]
    _, tree = structure(content)
    assert [header_cells(t) for t in elements(tree, "/Table")] == [9, 6, 5]
    shown = lines(content)
    assert shown[:8] == [
        "Group report: Quiz 1",
        "Course Algebra I",
        "Learners Group g1",
        "Period September 1, 2026 to November 30, 2026",  # the exclusive end's day before: inclusive
        "Out of 10 points",
        "Overall statistics (percent)",
        "Graded Not graded Not taken Excused Mean Median Std. dev. Min Max",
        "7 2 3 1 78.57% 80% 18.48% 45% 100%",
    ]
    # The course team is listed apart, unranked.
    assert shown[-4:] == [
        "Course team (not ranked)",
        "Learner Name Score Percent Grade",
        "t1 Teacher Tom 9 90% A",
        "Page 1 of 1",
    ]


def test_reading_order_and_table_headers_individual() -> None:
    content = pdf.individual_report(learner_record())
    assert document_outline(content) == [
        "/H1",
        "/Div",  # course, learner, grade
        "/H2",
        "/P",  # dropped work does not count
        "/Figure",  # progress
        "/H2",
        "/P",  # the category's average
        "/Table",
        "/H2",
        "/P",
        "/Table",
        "/H2",  # detail of the final exam
        "/P",  # its feedback
        "/Table",  # its questions
    ]
    _, tree = structure(content)
    assert [header_cells(t) for t in elements(tree, "/Table")] == [6, 5, 4]


def test_charts_say_what_they_show_with_the_numbers() -> None:
    _, tree = structure(pdf.group_report(group_results()))
    assert [str(f["/Alt"]) for f in elements(tree, "/Figure")] == [
        "Bar chart of the number of learners per band of percent: "
        + ", ".join(f"{10 * k}{DASH}{10 * k + 10}%: {n}" for k, n in enumerate([0, 0, 0, 0, 1, 0, 1, 2, 0, 3]))
        + ".",
        "Bar chart of the number of learners per grade: A: 3, B: 2, C: 1, F: 1.",
    ]
    _, tree = structure(pdf.individual_report(learner_record()))
    (figure,) = elements(tree, "/Figure")
    assert figure["/Alt"] == (
        "Bar chart of the percent earned per assessment, each category's average and the total: Homework 1: 70%,"
        " Homework 2: 60%, Homework 3: 25% (dropped), Homework 4: Not Attempted, Homework average: 65%,"
        " Final Exam: 85%, Total: 78.25%. Lines mark the grade cutoffs: A 90%, B 75%."
    )


def test_a_published_result_on_an_assessment_worth_no_points_is_drawn() -> None:
    # Points possible may be 0 (a practice quiz): the result is final, with points but no percent.
    practice = dataclasses.replace(homework(1, 0), possible=0.0, percent=None)
    record = learner_record(categories=[CategoryLine(name="Practice", percent=None, assessments=[practice])])
    _, tree = structure(pdf.individual_report(record))
    (figure,) = elements(tree, "/Figure")
    assert "Homework 1: 0 points" in str(figure["/Alt"])


# --- what the individual report says ----------------------------------------------------------------


def test_individual_report_marks_dropped_work_and_shows_the_published_detail() -> None:
    shown = lines(pdf.individual_report(learner_record()))
    assert shown[:6] == [
        "Results: Zoë Øster-Müller",
        "Course Algebra I",
        "Learner l1",
        "Course grade 78.25% (B)",
        "Progress",
        "Dropped work does not count towards the grade.",
    ]
    # The chart: a bar per assessment, the dropped one marked with Open edX's x, the average, the total.
    labels = "Homework 1 Homework 2 Homework 3 Homework 4 Homework average Final Exam Total"
    assert shown[shown.index(f"\N{MULTIPLICATION SIGN} {DASH}") + 1] == labels  # a dash over Homework 4
    tables = shown[shown.index(labels) + 1 :]
    assert tables == [
        "Homework",
        "Average: 65%",
        "Assessment Title Score Out of Percent Note",
        "Homework 1 Homework 1: quadratic equations 7 10 70%",
        "Homework 2 Homework 2: quadratic equations 6 10 60%",
        "Homework 3 Homework 3: quadratic equations 2.5 10 25% dropped",
        "Homework 4 Homework 4: quadratic equations Not Attempted 10",
        "Final Exam",
        "Average: 85%",
        "Assessment Title Score Out of Percent",
        "Final Exam Final exam 42.5 50 85%",
        "Detail: Final Exam",
        "Feedback: Well argued; check your units.",
        "Question Score Out of Feedback",
        "1. Limits 10 10 Clear steps",
        "2 7.5 10",
        "Essay 25 30",
        "Page 1 of 1",
    ]


@pytest.mark.parametrize(
    ("labels", "upright"),
    [
        ([f"Weekly problem set {n}" for n in range(1, 13)], False),  # every word fits its column: wrapped
        ([f"Homework {n}" for n in range(1, 18)] + ["Extraordinarily-long-final-assessment"], True),
    ],
)
def test_bar_labels_are_never_cut_off(labels: list[str], upright: bool) -> None:
    """Every word of every bar label is on the page, under the chart, and no two overlap: labels wrap
    at spaces when their words fit the bars' width, else stand upright."""
    bars = [dataclasses.replace(homework(n, 8), label=label) for n, label in enumerate(labels, start=1)]
    record = learner_record(
        categories=[CategoryLine(name="Coursework", percent=None, assessments=bars)], grade_percent=80.0, cutoffs=[]
    )
    content = pdf.individual_report(record)
    page = pypdf.PdfReader(io.BytesIO(content)).pages[0]
    width, height = float(page.mediabox.width), float(page.mediabox.height)
    words = [
        (float(x0), float(y0), float(x1), float(y1), word)
        for x0, y0, x1, y1, word in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
            pdftotext(content, "-bbox", "-l", "1"),
        )
    ]
    assert all(0 < x0 < x1 < width and 0 < y0 < y1 < height for x0, y0, x1, y1, _ in words)
    bottom = next(w[1] for w in words if w[4] == "Coursework")  # the heading after the chart
    top = max(w[3] for w in words if w[4].endswith("%") and w[3] < bottom)  # the bars' values, above the axis
    under = [w for w in words if top < w[1] and w[3] < bottom]
    # Every character of every label is there (wherever a line broke: at spaces, after a hyphen).
    assert sorted("".join(w[4] for w in under)) == sorted("".join([*labels, "Total"]).replace(" ", ""))
    for i, a in enumerate(under):
        for b in under[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)  # no overlap
    assert all((w[3] - w[1] > w[2] - w[0]) == upright for w in under if len(w[4]) > 3)


# --- languages --------------------------------------------------------------------------------------


def test_labels_in_french_and_norwegian() -> None:
    shown = lines(pdf.individual_report(learner_record(language="fr")))
    assert shown[:4] == ["Résultats : Zoë Øster-Müller", "Cours Algebra I", "Apprenant l1", "Note du cours 78,25 % (B)"]
    assert "Les travaux écartés ne comptent pas dans la note." in shown
    assert "Moyenne : 65 %" in shown and "Commentaire : Well argued; check your units." in shown
    shown = lines(pdf.group_report(group_results(language="nb")))
    assert shown[0] == "Grupperapport: Quiz 1"
    assert "Periode 1. september 2026 til 30. november 2026" in shown
    assert "Rangering" in shown and "Emneansvarlige (ikke rangert)" in shown


def test_period_bounds_that_are_not_midnight_carry_their_time_and_zone() -> None:
    results = group_results(since=None, until=datetime(2026, 12, 1, 12, 30, tzinfo=UTC))
    assert "Period until December 1, 2026, 12:30:00 PM UTC" in lines(pdf.group_report(results))
    everyone = group_results(group=None, since=None, until=None, ranking=[], team=[], letters={})
    shown = lines(pdf.group_report(everyone))
    assert shown[1:4] == ["Course Algebra I", "Learners All learners", "Out of 10 points"]
    assert "No graded results yet." in shown and "Course team (not ranked)" not in shown


def test_names_no_font_can_print_still_get_their_report() -> None:
    """A name with an emoji or control characters still has its report (PDF/UA-1 claimed only when
    every character has a glyph)."""
    content = pdf.individual_report(learner_record(name="Zoë 🎓\x00\x07 Smith"))
    assert lines(content)[0].startswith("Results: Zoë") and lines(content)[0].endswith("Smith")
    root, _ = structure(content)
    assert root["/MarkInfo"]["/Marked"] == True  # noqa: E712 - a PDF boolean object


# --- the label catalogue ----------------------------------------------------------------------------


def test_built_in_catalogues_are_complete() -> None:
    """Every built-in language has every label (none falls back to English)."""
    assert {"en", "fr", "nb"} <= set(languages())
    built_in = importlib.resources.files(report_labels)
    english = json.loads((built_in / "en.json").read_text(encoding="utf-8"))
    for language in ("fr", "nb"):
        catalogue = json.loads((built_in / f"{language}.json").read_text(encoding="utf-8"))
        assert set(catalogue) == set(english), language


def test_a_school_adds_a_language_and_rewords_labels(tmp_path: Path) -> None:
    (tmp_path / "de.json").write_text(json.dumps({"individual.title": "Ergebnisse: {name}", "course": "Kurs"}))
    (tmp_path / "fr.json").write_text(json.dumps({"course": "Module"}))
    catalogue = LabelCatalogue.load(tmp_path)
    assert catalogue.languages() == ["de", "en", "fr", "nb"]
    german = catalogue.labels("de")
    assert german["individual.title"] == "Ergebnisse: {name}" and german["course"] == "Kurs"
    assert german["group.ranking"] == "Ranking"  # missing: English
    assert catalogue.labels("fr")["course"] == "Module"
    assert catalogue.labels("fr")["group.ranking"] == "Classement"  # the built-in French stays
    assert catalogue.labels("fr-CA")["course"] == "Module"  # a region falls back to its language
    assert catalogue.labels("xx")["course"] == "Course"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("de.json", {"individual.titel": "Ergebnisse"}, "unknown label 'individual.titel'"),
        ("de.json", {"individual.title": "Ergebnisse: {nom}"}, "must use the placeholders ['name']"),
        ("de.json", {"individual.title": "Ergebnisse: {name"}, "is not a valid template"),
        ("de.json", {"course": 3}, "'course' must be a string"),
        ("de.json", ["Kurs"], "must be a JSON object"),
        ("German.json", {"course": "Kurs"}, "the file name must be a language tag"),
    ],
)
def test_a_broken_school_catalogue_is_refused_naming_the_file(
    tmp_path: Path, name: str, content: Any, message: str
) -> None:
    (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        LabelCatalogue.load(tmp_path)
    assert name in str(raised.value)


def test_a_school_language_reaches_the_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalogue in the school's directory is a language reports can be asked in: its labels, its
    numbers (CLDR), its /Lang."""
    (tmp_path / "de.json").write_text(json.dumps({"individual.title": "Ergebnisse: {name}", "course": "Kurs"}))
    monkeypatch.setattr(report_labels, "catalogue", lambda: LabelCatalogue.load(tmp_path))
    assert "de" in report_labels.languages()
    content = pdf.individual_report(learner_record(language="de"))
    shown = lines(content)
    assert shown[:4] == ["Ergebnisse: Zoë Øster-Müller", "Kurs Algebra I", "Learner l1", "Course grade 78,25 % (B)"]
    root, _ = structure(content)
    assert root["/Lang"] == "de"
