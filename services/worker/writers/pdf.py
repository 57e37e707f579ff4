"""PDF reports with reportlab: a group's results on one assessment, and a learner's individual report.

Text uses DejaVu Sans (shipped with matplotlib) so names in most scripts print as written.
"""

from __future__ import annotations

import importlib.resources
import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Table, TableStyle

from shared.services.report_records import GroupResults, LearnerRecord

_FONTS = importlib.resources.files("matplotlib") / "mpl-data" / "fonts" / "ttf"
pdfmetrics.registerFont(TTFont("DejaVu", str(_FONTS / "DejaVuSans.ttf")))
pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(_FONTS / "DejaVuSans-Bold.ttf")))

TITLE = ParagraphStyle("title", fontName="DejaVu-Bold", fontSize=16, leading=20, spaceAfter=4)
HEADING = ParagraphStyle("heading", fontName="DejaVu-Bold", fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
BODY = ParagraphStyle("body", fontName="DejaVu", fontSize=9, leading=12)
GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "DejaVu", 8),
        ("FONT", (0, 0), (-1, 0), "DejaVu-Bold", 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf1")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c4")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
)
BAR = colors.HexColor("#3b6ea5")


def _text(value: Any) -> Paragraph:
    return Paragraph(escape("" if value is None else str(value)), BODY)


def _number(x: float | None, suffix: str = "") -> str:
    return "-" if x is None else f"{x:g}{suffix}"


def _bars(labels: list[str], values: list[float], *, height: float = 55 * mm, top: float | None = None) -> Drawing:
    width = 170 * mm
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 12 * mm, width - 16 * mm, height - 18 * mm
    chart.data = [values or [0]]
    chart.categoryAxis.categoryNames = labels or [""]
    chart.categoryAxis.labels.fontName = "DejaVu"
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.labels.angle = 30 if len(labels) > 8 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(labels) > 8 else "n"
    chart.valueAxis.labels.fontName = "DejaVu"
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    if top is not None:
        chart.valueAxis.valueMax = top
    chart.bars[0].fillColor = BAR
    drawing.add(chart)
    return drawing


def group_report(g: GroupResults) -> bytes:
    """Ranking, overall statistics, a histogram of percents and the grade distribution."""
    story: list[Any] = [
        Paragraph(f"Group report: {escape(g.assessment)}", TITLE),
        Paragraph(f"{escape(g.course)} · {escape(g.group)} · out of {_number(g.possible)} points", BODY),
        Paragraph("Overall statistics (percent)", HEADING),
    ]
    s = g.stats
    stats = [
        ["Graded", "Not graded", "Mean", "Median", "Std. dev.", "Min", "Max"],
        [
            str(s["count"]),
            str(g.not_graded),
            *(_number(s[k]) for k in ("mean", "median", "stdev", "min", "max")),
        ],
    ]
    story += [Table(stats, style=GRID, hAlign="LEFT")]
    story += [Paragraph("Score distribution", HEADING)]
    story += [_bars([f"{10 * i}-{10 * i + 10}" for i in range(10)], [float(c) for c in g.histogram])]
    if g.letters:
        story += [
            Paragraph("Grade distribution", HEADING),
            _bars(list(g.letters), [float(v) for v in g.letters.values()]),
        ]
    story += [Paragraph("Ranking", HEADING)]
    rows: list[list[Any]] = [["Rank", "Learner", "Name", "Score", "Percent", "Grade"]]
    rows += [
        [
            str(r["rank"]),
            _text(r["learner"]),
            _text(r["name"]),
            _number(r["earned"]),
            _number(r["percent"], " %"),
            r["letter"] or "",
        ]
        for r in g.ranking
    ]
    story += [
        LongTable(
            rows,
            repeatRows=1,
            style=GRID,
            hAlign="LEFT",
            colWidths=[14 * mm, 35 * mm, 60 * mm, 20 * mm, 20 * mm, 16 * mm],
        )
    ]
    return _build(story, f"Group report - {g.assessment}")


def individual_report(r: LearnerRecord) -> bytes:
    """A learner's scores per category and assessment, the published item detail, and a progress
    chart with the grade cutoffs."""
    grade = (
        "not graded yet"
        if r.grade_percent is None
        else f"{r.grade_percent:g} %" + (f" ({r.grade_letter})" if r.grade_letter else "")
    )
    story: list[Any] = [
        Paragraph(f"Results: {escape(r.name)}", TITLE),
        Paragraph(f"{escape(r.course)} · learner {escape(r.learner)} · course grade {escape(grade)}", BODY),
        Paragraph("Progress", HEADING),
        _progress_chart(r),
    ]
    for c in r.categories:
        avg = "" if c["average"] is None else f" - average {c['average'] * 100:.2f} %"
        story.append(Paragraph(escape(c["name"] + avg), HEADING))
        rows: list[list[Any]] = [["Assessment", "Score", "Out of", "Percent"]]
        rows += [
            [_text(a["title"]), _number(a["earned"]), _number(a["possible"]), _number(a["percent"], " %")]
            for a in c["assessments"]
        ]
        story.append(Table(rows, style=GRID, hAlign="LEFT", colWidths=[80 * mm, 25 * mm, 25 * mm, 25 * mm]))
    for title, items in r.items.items():
        story.append(Paragraph(f"Detail: {escape(title)}", HEADING))
        rows = [["Question", "Score", "Out of", "Feedback"]]
        rows += [
            [
                _text(i.get("number") or i.get("title") or i.get("item")),
                _number(i.get("earned")),
                _number(i.get("possible")),
                _text(i.get("feedback") or ""),  # the feedback published, never markers' comments
            ]
            for i in items
        ]
        story.append(Table(rows, style=GRID, hAlign="LEFT", colWidths=[35 * mm, 20 * mm, 20 * mm, 80 * mm]))
    return _build(story, f"Results - {r.name}")


def _progress_chart(r: LearnerRecord) -> Drawing:
    """Bars per assessment (grouped by category), an average bar per category, the total; dashed
    lines at the cutoffs, labelled with their letters."""
    labels: list[str] = []
    values: list[float] = []
    for c in r.categories:
        for a in c["assessments"]:
            labels.append(a["title"][:14])
            values.append(a["percent"] or 0.0)
        if c["average"] is not None:
            labels.append(f"{c['name'][:10]} avg")
            values.append(round(c["average"] * 100, 2))
    labels.append("Total")
    values.append(r.grade_percent or 0.0)
    top = max(100.0, *values)
    drawing = _bars(labels, values, height=65 * mm, top=top)
    chart = drawing.contents[0]
    for letter, fraction in r.cutoffs:
        if fraction <= 0:
            continue
        y = chart.y + chart.height * (fraction * 100) / top
        drawing.add(
            Line(
                chart.x,
                y,
                chart.x + chart.width,
                y,
                strokeColor=colors.HexColor("#c0392b"),
                strokeDashArray=[3, 2],
                strokeWidth=0.6,
            )
        )
        drawing.add(
            String(
                chart.x + chart.width + 1,
                y - 2,
                letter,
                fontName="DejaVu",
                fontSize=6,
                fillColor=colors.HexColor("#c0392b"),
            )
        )
    return drawing


def _build(story: list[Any], title: str) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=title, author="Gradeflow", leftMargin=18 * mm, rightMargin=18 * mm)
    doc.build(story)
    return out.getvalue()
