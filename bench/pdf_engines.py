"""PDF engines compared on the same reports: Typst (the `typst` wheel, what the worker uses), reportlab
(the writer before it, DejaVu Sans) and WeasyPrint (Pango/HarfBuzz, HTML and CSS).

Every engine draws the same content: the writer's own (gradeflow/reports/writers/pdf.py builds it in
the report's language, then hands it to Typst; this bench hands it to the other two as well). For each
engine it prints individual reports per second on one core, the time of a 300-row group report, whether
the output is tagged, and, for names in each script, whether pdftotext gives the name back exactly.
Then the goal, with the chosen engine: 1,000 individual reports drawn in a process pool of one process
per core and zipped, as `individual_reports_zip` does.

    .venv/bin/pip install -e '.[bench]'      # reportlab and WeasyPrint (Typst is a dependency)
    .venv/bin/python -m bench.pdf_engines [--individual 100] [--zip 1000]

Last line: zip_seconds=<n> for the chosen engine (goal: < 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import io
import multiprocessing
import os
import resource
import subprocess
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pypdf

from gradeflow.reports.service.report_records import (
    AssessmentLine,
    CategoryLine,
    GroupResults,
    ItemLine,
    LearnerRecord,
    Ranked,
)
from gradeflow.reports.writers import pdf

# Per script, a plain name and one with the marks or ligatures that test shaping and text extraction.
NAMES = {
    "Latin": ["Zoë Øster-Müller", "Łukasz Żółć"],
    "Chinese": ["王小明", "欧阳娜娜"],
    "Japanese": ["山田さくら", "佐藤ヴィクトリア"],
    "Korean": ["김민준", "이서연"],
    "Devanagari": ["प्रिया शर्मा", "अनिल कुमार"],
    "Arabic": ["فاطمة علي", "محمد الأحمد"],
    "Thai": ["ก่อน สุดใจ", "สมศักดิ์ รักษ์ไทย"],
}
FAMILIES = "'Noto Sans', 'Noto Sans Arabic', 'Noto Sans Devanagari', 'Noto Sans Thai', 'Noto Sans CJK SC'"


# --- the records ----------------------------------------------------------------------------------


def learner(n: int, name: str) -> LearnerRecord:
    """A learner of a 4-category course with 14 assessments, one dropped, an exam with 12 questions."""
    categories = []
    for c, (category, count) in enumerate([("Homework", 6), ("Lab", 4), ("Quiz", 3), ("Final Exam", 1)]):
        lines = []
        for k in range(1, count + 1):
            earned = float((n * 7 + k * 3 + c) % 11)
            items = (
                [ItemLine(str(q), f"Question {q}", float(q % 5), 5.0, "Check the sign") for q in range(1, 13)]
                if category == "Final Exam"
                else []
            )
            lines.append(
                AssessmentLine(
                    label=f"{category} {k}" if count > 1 else category,
                    title=f"{category} {k}: problems on chapter {k}",
                    state="final",
                    earned=earned,
                    possible=10.0,
                    percent=earned * 10,
                    dropped=k == 1 and count > 3,
                    feedback="Good work overall." if items else None,
                    items=items,
                )
            )
        categories.append(CategoryLine(category, 66.5, lines))
    return LearnerRecord(
        learner=f"learner-{n}",
        name=name,
        course="Introduction to Algebra",
        language="en",
        grade_percent=71.25,
        grade_letter="C",
        categories=categories,
        cutoffs=[("A", 90.0), ("B", 80.0), ("C", 70.0)],
    )


def group(rows: int) -> GroupResults:
    every = [name for names in NAMES.values() for name in names]
    ranking = [
        Ranked(
            rank=k + 1,
            learner=f"learner-{k}",
            name=every[k % len(every)],
            earned=50 - k / 10,
            percent=100 - k / 5,
            letter="A",
        )
        for k in range(rows)
    ]
    return GroupResults(
        course="Introduction to Algebra",
        assessment="Midterm",
        language="en",
        group="g1",
        cohort=None,
        since=datetime(2026, 9, 1, tzinfo=UTC),
        until=datetime(2026, 12, 1, tzinfo=UTC),
        possible=50.0,
        ranking=ranking,
        team=[],
        not_graded=3,
        not_taken=4,
        excused=1,
        stats={"count": rows, "mean": 70.1, "median": 70.0, "stdev": 17.3, "min": 40.2, "max": 100.0},
        histogram=[0, 0, 0, 0, 30, 60, 60, 60, 60, 30],
        letters={"A": 90, "B": 60, "C": 150},
    )


# --- the engines: content (pdf.group_content / individual_content) to PDF bytes ------------------


def typst_engine(content: dict[str, Any]) -> bytes:
    return pdf.render(content)


_weasyprint_fonts: Any = None


def weasyprint_engine(content: dict[str, Any]) -> bytes:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    # One font configuration for all documents, as a long-lived worker would keep it.
    global _weasyprint_fonts
    _weasyprint_fonts = _weasyprint_fonts or FontConfiguration()

    e = html.escape
    parts = [f"<h1>{e(content['heading'])}</h1><dl>"]
    parts += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in content["facts"]]
    parts.append("</dl>")
    for s in content["sections"]:
        parts.append(f"<h2>{e(s['heading'])}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in s.get("paragraphs", [])]
        if chart := s.get("chart"):
            bars = "".join(
                f'<div class="bar"><div class="fill" style="height:{min(b["value"] / chart["top"], 1) * 100:.1f}%">'
                f'<span>{e(b["text"])}</span></div><div class="label">{e(b["label"])}</div></div>'
                for b in chart["bars"]
            )
            parts.append(f'<figure role="img" aria-label="{e(chart["alt"])}"><div class="chart">{bars}</div></figure>')
        if table := s.get("table"):
            head = "".join(f'<th scope="col">{e(h)}</th>' for h in table["header"])
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table["rows"])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    style = f"""
        @page {{ size: A4; margin: 18mm; }}
        body {{ font-family: {FAMILIES}; font-size: 9pt; }}
        dl {{ display: grid; grid-template-columns: auto 1fr; }} dt {{ font-weight: bold; }}
        table {{ border-collapse: collapse; width: 100%; }} th, td {{ border: 0.25pt solid #b0b8c4; padding: 2pt 4pt; }}
        thead {{ display: table-header-group; }} th {{ background: #e8ecf1; text-align: left; }}
        .chart {{ display: flex; height: 48mm; align-items: flex-end; border-bottom: 0.6pt solid black; }}
        .bar {{ flex: 1; height: 100%; display: flex; flex-direction: column; justify-content: flex-end; }}
        .fill {{ background: #3b6ea5; margin: 0 17%; }} .label {{ font-size: 6.5pt; text-align: center; }}
        .fill span {{ font-size: 6.5pt; position: relative; top: -9pt; }}
    """
    document = (
        f'<!doctype html><html lang="{content["lang"]}"><head><meta charset="utf-8"><title>{e(content["title"])}'
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    out = HTML(string=document).write_pdf(pdf_variant="pdf/ua-1", font_config=_weasyprint_fonts)
    assert isinstance(out, bytes)
    return out


def reportlab_engine(content: dict[str, Any]) -> bytes:
    """The writer as it was: reportlab's platypus and charts, DejaVu Sans from matplotlib, no shaping."""
    import importlib.resources

    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate

    if "DejaVu" not in pdfmetrics.getRegisteredFontNames():
        fonts = importlib.resources.files("matplotlib") / "mpl-data" / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont("DejaVu", str(fonts / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(fonts / "DejaVuSans-Bold.ttf")))
    title = ParagraphStyle("title", fontName="DejaVu-Bold", fontSize=16, leading=20)
    heading = ParagraphStyle("heading", fontName="DejaVu-Bold", fontSize=11, leading=14, spaceBefore=8)
    body = ParagraphStyle("body", fontName="DejaVu", fontSize=8, leading=10)
    e = html.escape
    story: list[Any] = [Paragraph(e(content["heading"]), title)]
    story += [Paragraph(f"<b>{e(k)}</b> {e(v)}", body) for k, v in content["facts"]]
    for s in content["sections"]:
        story.append(Paragraph(e(s["heading"]), heading))
        story += [Paragraph(e(p), body) for p in s.get("paragraphs", [])]
        if chart := s.get("chart"):
            drawing = Drawing(170 * mm, 60 * mm)
            bars = VerticalBarChart()
            bars.x, bars.y, bars.width, bars.height = 12 * mm, 12 * mm, 150 * mm, 42 * mm
            bars.data = [[b["value"] for b in chart["bars"]]]
            bars.categoryAxis.categoryNames = [b["label"][:14] for b in chart["bars"]]
            bars.categoryAxis.labels.fontName = bars.valueAxis.labels.fontName = "DejaVu"
            bars.categoryAxis.labels.fontSize = 6
            drawing.add(bars)
            story.append(drawing)
        if table := s.get("table"):
            rows = [[Paragraph(e(h), body) for h in table["header"]]]
            rows += [[Paragraph(e(c), body) for c in row] for row in table["rows"]]
            story.append(LongTable(rows, repeatRows=1))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=content["title"]).build(story)
    return out.getvalue()


ENGINES: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "typst": typst_engine,
    "weasyprint": weasyprint_engine,
    "reportlab": reportlab_engine,
}
PACKAGES = {"weasyprint": "weasyprint", "reportlab": "reportlab"}


# --- measures -------------------------------------------------------------------------------------


def pages(content: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(content)).pages)


def tagged(content: bytes) -> bool:
    root = pypdf.PdfReader(io.BytesIO(content)).trailer["/Root"]
    return "/StructTreeRoot" in root and bool(root.get("/MarkInfo", {}).get("/Marked"))


def read_back(content: bytes) -> str:
    text = subprocess.run(["pdftotext", "-", "-"], input=content, capture_output=True, check=True).stdout.decode()
    return text.replace("\u202b", "").replace("\u202c", "")  # poppler's embedding marks around RTL runs


def measure(name: str, engine: Callable[[dict[str, Any]], bytes], individual: int) -> dict[str, Any]:
    records = [pdf.individual_content(learner(n, f"Learner {n}")) for n in range(individual)]
    engine(records[0])  # fonts loaded, caches warm: not part of the figure
    started = time.perf_counter()
    drawn = [engine(r) for r in records]
    seconds = time.perf_counter() - started
    page_count = sum(pages(d) for d in drawn)
    started = time.perf_counter()
    big = engine(pdf.group_content(group(300)))
    group_seconds = time.perf_counter() - started
    scripts = {}
    for script, names in NAMES.items():
        back = [read_back(engine(pdf.individual_content(learner(0, n)))) for n in names]
        scripts[script] = sum(n in text for n, text in zip(names, back, strict=True))
    return {
        "engine": name,
        "reports_per_s": individual / seconds,
        "pages_per_s": page_count / seconds,
        "group_300_s": group_seconds,
        "group_pages": pages(big),
        "tagged": tagged(drawn[0]),
        "scripts": scripts,
    }


def _draw(record: LearnerRecord) -> bytes:
    return pdf.individual_report(record)


def zip_individual(count: int) -> float:
    """`individual_reports_zip`'s drawing: a spawned process per core, a few reports ahead, one ZIP."""
    records = [learner(n, NAMES[list(NAMES)[n % 7]][n % 2]) for n in range(count)]
    workers = os.cpu_count() or 1
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        for record, drawn in zip(records, pool.map(_draw, records, chunksize=4), strict=True):
            archive.writestr(f"{record.learner}.pdf", drawn)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The drawing processes' CPU time: what the run costs when nothing else wants the cores (other
    # work on the machine stretches the wall-clock time; the load average says how much).
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(
        f"{count} individual reports zipped on {workers} processes: {seconds:.1f} s wall,"
        f" {len(out.getvalue()) / 1e6:.1f} MB; drawing CPU {cpu:.1f} s ({cpu / workers:.1f} s per core);"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--individual", type=int, default=100, help="individual reports drawn per engine")
    parser.add_argument("--zip", type=int, default=1000, help="individual reports zipped with the chosen engine")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; each engine draws {args.individual} individual reports (2 pages each) on one core")
    header = f"{'engine':<11} {'reports/s':>9} {'pages/s':>8} {'group 300 rows':>15} {'tagged':>6}  scripts read back"
    print(header)
    for name, engine in ENGINES.items():
        if name in PACKAGES and importlib.util.find_spec(PACKAGES[name]) is None:
            print(f"{name:<11} not installed (pip install -e '.[bench]')")
            continue
        m = measure(name, engine, args.individual)
        scripts = " ".join(f"{s}:{k}/{len(NAMES[s])}" for s, k in m["scripts"].items())
        print(
            f"{name:<11} {m['reports_per_s']:>9.1f} {m['pages_per_s']:>8.1f}"
            f" {m['group_300_s']:>7.2f} s {m['group_pages']:>2} p {'yes' if m['tagged'] else 'no':>6}  {scripts}"
        )
    print(f"zip_seconds={zip_individual(args.zip):.1f}")


if __name__ == "__main__":
    main()
