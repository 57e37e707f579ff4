"""PDF reports: a group's results on one assessment, and a learner's individual report.

Typst draws them (the compiler ships in the `typst` wheel): HarfBuzz shaping and bidi, so Arabic,
Devanagari and Thai print joined and in order, CJK from Noto Sans CJK; tagged PDF/UA-1 output with
the document's title and language. bench/pdf_engines.py measured it against reportlab and WeasyPrint
(README, "PDF engine").

This module turns a record into what the page says, every label from the catalogue in the report's
language (gradeflow/reports/labels), every number and date in that language's format (Babel's CLDR
data); pdf_reports.typ lays it out. The text travels as JSON data, never as Typst markup, so no name
or title a client wrote is ever read as code.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import typst
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

from gradeflow.core import clock
from gradeflow.reports.labels import labels
from gradeflow.reports.service.progression_report import (
    BY_ITEM,
    BY_NOTHING,
    GroupProgression,
    LearnerChange,
    LearnerProgression,
    PartChange,
)
from gradeflow.reports.service.report_records import STATE_FINAL, AssessmentLine, GroupResults, LearnerRecord, Ranked
from gradeflow.reports.writers.pdf_fonts import noto_fonts

TEMPLATE = Path(__file__).with_name("pdf_reports.typ")
DASH = "\N{EN DASH}"  # ranges (0-10 %) and values that are not there
_local = threading.local()
log = logging.getLogger(__name__)

Json = dict[str, Any]


def group_report(g: GroupResults) -> bytes:
    """Who was compared over which period, the overall statistics, the score and grade distributions,
    the ranking (ties share a rank) and the course team's results apart, unranked."""
    return render(group_content(g))


def individual_report(r: LearnerRecord) -> bytes:
    """The learner's progress chart (dropped work marked, category averages, total, cutoffs), their
    results per category, and the published detail of each assessment: questions and feedback."""
    return render(individual_content(r))


def group_content(g: GroupResults) -> Json:
    """What the group report says, in its language: the document pdf_reports.typ lays out."""
    t = _Text(g.language)
    facts = [
        (t["course"], g.course),
        (t["learners"], _who(t, g)),
        *([(t["group.period"], _period(t, g.since, g.until))] if g.since or g.until else []),
        (t["out_of_points"], t.format("points", points=t.number(g.possible))),
    ]
    s = g.stats
    stats = _table(
        t,
        [
            *("group.graded", "group.not_graded", "group.not_taken", "group.excused"),
            *("group.mean", "group.median", "group.stdev", "group.min", "group.max"),
        ],
        [
            [t.number(n) for n in (s["count"] or 0, g.not_graded, g.not_taken, g.excused)]
            + [t.percent(s[k]) for k in ("mean", "median", "stdev", "min", "max")]
        ],
        numeric=range(9),
    )
    bands = [f"{t.number(10 * i)}{DASH}{t.percent(10 * i + 10)}" for i in range(10)]
    sections: list[Json] = [
        {"heading": t["group.statistics"], "table": stats},
        {
            "heading": t["group.score_distribution"],
            "chart": _counts_chart(t, "group.score_distribution_alt", bands, g.histogram),
        },
    ]
    if g.letters:
        sections.append(
            {
                "heading": t["group.grade_distribution"],
                "chart": _counts_chart(t, "group.grade_distribution_alt", list(g.letters), list(g.letters.values())),
            }
        )
    letters = bool(g.letters)
    ranking: Json = {"heading": t["group.ranking"]}
    if g.ranking:
        ranking["table"] = _results_table(t, g.ranking, ranked=True, letters=letters)
    else:
        ranking["paragraphs"] = [t["group.nobody_graded"]]
    sections.append(ranking)
    if g.team:
        sections.append({"heading": t["group.team"], "table": _results_table(t, g.team, ranked=False, letters=letters)})
    return _document(
        t,
        title=t.format("group.document_title", assessment=g.assessment, course=g.course),
        heading=t.format("group.title", assessment=g.assessment),
        facts=facts,
        sections=sections,
    )


def individual_content(r: LearnerRecord) -> Json:
    """What the individual report says, in its language: the document pdf_reports.typ lays out."""
    t = _Text(r.language)
    if r.grade_percent is None:
        grade = t["individual.not_graded"]
    elif r.grade_letter:
        grade = t.format("individual.grade", percent=t.percent(r.grade_percent), letter=r.grade_letter)
    else:
        grade = t.percent(r.grade_percent)
    facts = [(t["course"], r.course), (t["individual.learner"], r.learner), (t["individual.course_grade"], grade)]
    everything = [a for c in r.categories for a in c.assessments]
    progress: Json = {"heading": t["individual.progress"], "chart": _progress_chart(t, r)}
    if any(a.dropped for a in everything):
        progress["paragraphs"] = [t["individual.dropped_note"]]
    sections = [progress]
    for c in r.categories:
        section: Json = {"heading": c.name, "table": _assessments_table(t, c.assessments)}
        if c.percent is not None:
            section["paragraphs"] = [t.format("individual.average", percent=t.percent(c.percent))]
        sections.append(section)
    sections += [_detail(t, a) for a in everything if a.items or a.feedback]
    return _document(
        t,
        title=t.format("individual.document_title", name=r.name, course=r.course),
        heading=t.format("individual.title", name=r.name),
        facts=facts,
        sections=sections,
    )


# --- what the pages say ---------------------------------------------------------------------------


class _Text:
    """A report's labels and number/date formats, in its language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.labels: Mapping[str, str] = labels(language)
        self.locale = _locale(language)

    def __getitem__(self, key: str) -> str:
        return self.labels[key]

    def format(self, key: str, **values: str) -> str:
        return self.labels[key].format(**values)

    def number(self, x: float) -> str:
        # Values come rounded (6 places for points, 2 for percents): printed as they are, 12.5 or 12,5.
        return format_decimal(Decimal(repr(x)), locale=self.locale, decimal_quantization=False)

    def percent(self, x: float | None) -> str:
        if x is None:
            return DASH
        return format_percent(Decimal(repr(x)) / 100, locale=self.locale, decimal_quantization=False)

    def moment(self, at: datetime, *, end: bool = False) -> str:
        """A period's bound: a date when it falls at midnight (an exclusive end: the day before, so
        the period reads inclusively), else the date and time with its time zone."""
        if at.timetz().replace(tzinfo=None) == time(0):
            return format_date((at - timedelta(days=1)) if end else at, "long", locale=self.locale)
        return format_datetime(at, "long", tzinfo=at.tzinfo, locale=self.locale)


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    # A language a school added that CLDR does not know still gets readable numbers (English's).
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale("en")


def _who(t: _Text, g: GroupResults | GroupProgression) -> str:
    parts = []
    if g.group is not None:
        parts.append(t.format("group.group", name=g.group))
    if g.cohort is not None:
        parts.append(t.format("group.cohort", name=g.cohort))
    return ", ".join(parts) or t["group.everyone"]


def _period(t: _Text, since: datetime | None, until: datetime | None) -> str:
    if since and until:
        return t.format("group.between", since=t.moment(since), until=t.moment(until, end=True))
    if since:
        return t.format("group.since", date=t.moment(since))
    assert until is not None
    return t.format("group.until", date=t.moment(until, end=True))


def _results_table(t: _Text, rows: Sequence[Ranked], *, ranked: bool, letters: bool) -> Json:
    keys = ["group.rank"] if ranked else []
    keys += ["group.learner", "group.name", "group.score", "group.percent"] + (["group.grade"] if letters else [])
    cells = [
        ([t.number(x.rank) if x.rank is not None else ""] if ranked else [])
        + [x.learner, x.name, t.number(x.earned), t.percent(x.percent)]
        + ([x.letter or ""] if letters else [])
        for x in rows
    ]
    widths = ["fr" if k == "group.name" else "auto" for k in keys]
    numeric = [i for i, k in enumerate(keys) if k in ("group.rank", "group.score", "group.percent")]
    return _table(t, keys, cells, numeric=numeric, widths=widths)


def _assessments_table(t: _Text, assessments: Sequence[AssessmentLine]) -> Json:
    dropped = any(a.dropped for a in assessments)
    keys = ["individual.assessment", "individual.assessment_title", "individual.score", "individual.out_of"]
    keys += ["individual.percent"] + (["individual.note"] if dropped else [])
    rows = []
    for a in assessments:
        final = a.state == STATE_FINAL and a.earned is not None
        score = t.number(a.earned) if final and a.earned is not None else t[f"state.{a.state}"]
        row = [a.label, a.title, score, t.number(a.possible), t.percent(a.percent) if final else ""]
        rows.append(row + ([t["individual.dropped"] if a.dropped else ""] if dropped else []))
    widths = ["auto", "fr", "auto", "auto", "auto"] + (["auto"] if dropped else [])
    return _table(t, keys, rows, numeric=[2, 3, 4], widths=widths)


def _detail(t: _Text, a: AssessmentLine) -> Json:
    named = a.label if a.title.casefold() == a.label.casefold() else f"{a.label} {DASH} {a.title}"
    section: Json = {"heading": t.format("individual.detail", assessment=named)}
    if a.feedback:
        section["paragraphs"] = [t.format("individual.feedback_line", feedback=a.feedback)]
    if a.items:
        feedback = any(i.feedback for i in a.items)
        keys = ["individual.question", "individual.score", "individual.out_of"]
        keys += ["individual.feedback"] if feedback else []
        rows = []
        for i in a.items:
            question = ". ".join(x for x in (i.number, i.title) if x)
            score = DASH if i.earned is None else t.number(i.earned)
            rows.append([question, score, t.number(i.possible)] + ([i.feedback or ""] if feedback else []))
        widths = ["fr", "auto", "auto"] + (["fr"] if feedback else [])
        section["table"] = _table(t, keys, rows, numeric=[1, 2], widths=widths)
    return section


def _table(
    t: _Text,
    keys: Sequence[str],
    rows: list[list[str]],
    *,
    numeric: Sequence[int] | range,
    widths: Sequence[str] | None = None,
) -> Json:
    return {
        "header": [t[k] for k in keys],
        "rows": rows,
        "widths": list(widths) if widths is not None else ["auto"] * len(keys),
        "align": ["end" if i in numeric else "start" for i in range(len(keys))],
    }


# --- charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bar:
    label: str
    value: float  # the bar's height, on the chart's scale
    text: str  # what is printed above it
    style: str = "assessment"  # a colour of pdf_reports.typ
    dropped: bool = False
    said: str | None = None  # what the alternative text says of it, when not `text`


def _chart(t: _Text, alt_key: str, axis: str, bars: list[_Bar], top: float, lines: list[tuple[str, float]]) -> Json:
    said = ", ".join(
        t.format("chart.bar_dropped" if b.dropped else "chart.bar", label=b.label, value=b.said or b.text) for b in bars
    )
    alt = t.format(alt_key, bars=said)
    if lines:
        alt += " " + t.format("chart.cutoffs", cutoffs=", ".join(f"{name} {t.percent(v)}" for name, v in lines))
    return {
        "alt": alt,
        "axis": axis,
        "top": top,
        "bars": [{k: v for k, v in dataclasses.asdict(b).items() if k != "said"} for b in bars],
        "lines": [{"label": name, "value": v} for name, v in lines],
    }


def _counts_chart(t: _Text, alt_key: str, labels_: list[str], counts: list[int]) -> Json:
    bars = [_Bar(label, float(n), t.number(n), style="count") for label, n in zip(labels_, counts, strict=True)]
    return _chart(t, alt_key, t["chart.learners"], bars, float(max([1, *counts])), [])


def _progress_chart(t: _Text, r: LearnerRecord) -> Json:
    """Open edX's progress chart: a bar per assessment grouped by category (dropped ones marked), a bar
    per category's average, the total; dashed lines at the cutoffs."""
    bars: list[_Bar] = []
    for c in r.categories:
        for a in c.assessments:
            final = a.state == STATE_FINAL and a.percent is not None
            value = a.percent if final and a.percent is not None else 0.0
            # A result not there prints a dash over its empty bar (a state's words would not fit a narrow
            # bar); the alternative text and the table say which state it is.
            if final:
                text, said = t.percent(value), None
            elif a.state == STATE_FINAL:  # nothing possible (0 points): no percent, its points say it
                text, said = DASH, t.format("points", points=t.number(a.earned or 0.0))
            else:
                text, said = DASH, t[f"state.{a.state}"]
            bars.append(_Bar(a.label, value, text, dropped=a.dropped, said=said))
        # As in Open edX, a category's average has its own bar only when it averages several assessments.
        if c.percent is not None and len(c.assessments) > 1:
            label = t.format("individual.category_average", category=c.name)
            bars.append(_Bar(label, c.percent, t.percent(c.percent), style="average"))
    total = r.grade_percent
    bars.append(_Bar(t["individual.total"], total or 0.0, t.percent(total), style="total"))
    lines = [(letter, minimum) for letter, minimum in r.cutoffs if minimum > 0]
    top = max([100.0, *(b.value for b in bars)])
    return _chart(t, "individual.progress_alt", t["chart.percent"], bars, top, lines)


# --- drawing --------------------------------------------------------------------------------------


def _document(t: _Text, *, title: str, heading: str, facts: list[tuple[str, str]], sections: list[Json]) -> Json:
    language, _, rest = t.language.partition("-")
    region = next((part for part in rest.split("-") if len(part) == 2 and part.isalpha()), None)
    return {
        "title": title,
        "lang": language.lower(),
        "region": region and region.upper(),
        "heading": heading,
        "facts": facts,
        "sections": sections,
        "page": t["page"],
    }


def render(document: Json, compile_: Callable[[str, list[typst.PDFStandard]], bytes] | None = None) -> bytes:
    """The PDF of a report's content (group_content, individual_content); `compile_(data, standards)`
    draws it with another template (diplomas)."""
    compile_ = compile_ or _compile
    data = orjson.dumps(_printable(document)).decode()
    try:
        pdf = compile_(data, ["ua-1"])
    except typst.TypstError as e:
        # PDF/UA-1 wants a glyph for every character: a name with one no installed font has (an emoji,
        # a private-use character) still gets its report, tagged as ever but not claiming PDF/UA-1.
        if not e.message.startswith("PDF/UA-1 error"):
            raise
        log.info("report drawn without the PDF/UA-1 claim: %s", e.message)
        pdf = compile_(data, [])
    return pdf


def _compile(data: str, standards: list[typst.PDFStandard]) -> bytes:
    pdf = _compiler().compile(
        format="pdf", sys_inputs={"report": data}, pdf_standards=standards, timestamp=clock.now().replace(microsecond=0)
    )
    assert isinstance(pdf, bytes)
    return pdf


# Control characters never belong to a name or title and PDF/UA forbids them; a lone surrogate (a
# JSON escape like "\\ud800") is no character at all.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", _UNPRINTABLE.sub("", value))
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def _compiler() -> typst.Compiler:
    """This thread's compiler (a compiler compiles one document at a time; the font book is shared)."""
    compiler: typst.Compiler | None = getattr(_local, "compiler", None)
    if compiler is None:
        compiler = _local.compiler = typst.Compiler(TEMPLATE, root=TEMPLATE.parent, font_paths=noto_fonts())
    return compiler


# --- progression reports --------------------------------------------------------------------------


def group_progression(g: GroupProgression) -> bytes:
    """Who was compared between which tests, the statistics before and after, both distributions in the
    same bins, each learner's change, and the change per question or per skill (the PDF says which)."""
    return render(group_progression_content(g))


def individual_progression(r: LearnerProgression) -> bytes:
    """The learner's two published results and the change, per question or skill where both tests were
    published with their questions."""
    return render(individual_progression_content(r))


def group_progression_content(g: GroupProgression) -> Json:
    """What the group progression report says, in its language: the document pdf_reports.typ lays out."""
    t = _Text(g.language)
    facts = [
        (t["course"], g.course),
        (t["progression.initial"], g.initial),
        (t["progression.final"], g.final),
        (t["learners"], _who(t, g)),
        *([(t["group.period"], _period(t, g.since, g.until))] if g.since or g.until else []),
    ]
    s = g.stats()
    counts = ["progression.compared", "progression.not_compared"]
    counts += ["progression.improved", "progression.unchanged", "progression.declined"]
    figures = [s["count"], g.not_compared, s["improved"], s["unchanged"], s["declined"]]
    statistics = _table(t, counts, [[t.number(n or 0) for n in figures]], numeric=range(5))
    means = _table(
        t,
        ["progression.before", "progression.after", "progression.change"],
        [
            [
                t["progression.mean"],
                t.percent(s["mean_before"]),
                t.percent(s["mean_after"]),
                _signed(t, s["mean_change"]),
            ],
            [
                t["progression.median"],
                t.percent(s["median_before"]),
                t.percent(s["median_after"]),
                _signed(t, _difference(s["median_before"], s["median_after"])),
            ],
        ],
        numeric=[1, 2, 3],
    )
    # The first column names the rows (mean, median): its header cell stays empty.
    means |= {
        "header": ["", *means["header"]],
        "widths": ["fr", "auto", "auto", "auto"],
        "align": ["start", "end", "end", "end"],
    }
    sections: list[Json] = [
        {"heading": t["learners"], "table": statistics},
        {"heading": t["progression.statistics"], "table": means},
        {"heading": t["progression.distribution"], "paired": _paired_chart(t, g)},
    ]
    learners: Json = {"heading": t["progression.learners"]}
    if g.learners:
        learners["table"] = _changes_table(t, g.learners)
    else:
        learners["paragraphs"] = [t["progression.nobody"]]
    sections += [learners, _parts_section(t, g.by, g.parts, len(g.parts))]
    return _document(
        t,
        title=t.format("progression.group_document_title", final=g.final, course=g.course),
        heading=t.format("progression.group_title", final=g.final),
        facts=facts,
        sections=sections,
    )


def individual_progression_content(r: LearnerProgression) -> Json:
    """What a learner's progression report says, in its language: the document pdf_reports.typ lays out."""
    t = _Text(r.language)
    facts = [(t["course"], r.course), (t["individual.learner"], r.learner)]
    rows = [
        [
            t["progression.initial"],
            r.initial,
            t.number(r.before.earned),
            t.number(r.before.possible),
            t.percent(r.before.percent),
        ],
        [
            t["progression.final"],
            r.final,
            t.number(r.after.earned),
            t.number(r.after.possible),
            t.percent(r.after.percent),
        ],
    ]
    keys = ["individual.assessment", "individual.assessment_title", "individual.score", "individual.out_of"]
    results = _table(
        t, [*keys, "individual.percent"], rows, numeric=[2, 3, 4], widths=["auto", "fr", "auto", "auto", "auto"]
    )
    bars = [
        _Bar(t["progression.initial"], r.before.percent, t.percent(r.before.percent)),
        _Bar(t["progression.final"], r.after.percent, t.percent(r.after.percent), style="average"),
    ]
    chart = _chart(
        t, "progression.results_alt", t["chart.percent"], bars, max(100.0, r.before.percent, r.after.percent), []
    )
    sections: list[Json] = [
        {
            "heading": t["progression.results"],
            "paragraphs": [t.format("progression.change_line", change=_signed(t, r.change))],
            "table": results,
        },
        {"heading": t["progression.change"], "chart": chart},
    ]
    if r.by != BY_NOTHING and not r.detail_published:
        part = "progression.by_item" if r.by == BY_ITEM else "progression.by_skill"
        sections.append({"heading": t[part], "paragraphs": [t["progression.detail_not_published"]]})
    else:
        sections.append(_parts_section(t, r.by, r.parts, len(r.parts), learners=False))
    return _document(
        t,
        title=t.format("progression.individual_document_title", name=r.name, course=r.course),
        heading=t.format("progression.individual_title", name=r.name),
        facts=facts,
        sections=sections,
    )


def _signed(t: _Text, change: float | None) -> str:
    """A change in percentage points, its sign always shown (+12.5%, -5%, 0%)."""
    if change is None:
        return DASH
    return ("+" if change > 0 else "") + t.percent(change)


def _difference(before: float | int | None, after: float | int | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


def _changes_table(t: _Text, learners: Sequence[LearnerChange]) -> Json:
    keys = ["group.learner", "group.name", "progression.before", "progression.after", "progression.change"]
    rows = [[x.learner, x.name, t.percent(x.before), t.percent(x.after), _signed(t, x.change)] for x in learners]
    return _table(t, keys, rows, numeric=[2, 3, 4], widths=["auto", "fr", "auto", "auto", "auto"])


def _parts_section(t: _Text, by: str, parts: Sequence[PartChange], shared: int, *, learners: bool = True) -> Json:
    """The change per question or per skill, with a sentence saying which (or that the tests share neither)."""
    if by == BY_NOTHING:
        return {"heading": t["progression.change"], "paragraphs": [t["progression.by_nothing_note"]]}
    item = by == BY_ITEM
    note = t.format("progression.by_item_note", count=t.number(shared)) if item else t["progression.by_skill_note"]
    keys = ["progression.question" if item else "progression.skill"] + (["learners"] if learners else [])
    keys += ["progression.before", "progression.after", "progression.change"]
    rows = [
        [
            p.label,
            *([t.number(p.learners)] if learners else []),
            t.percent(p.before),
            t.percent(p.after),
            _signed(t, p.change),
        ]
        for p in parts
    ]
    numeric = list(range(1, len(keys)))
    section: Json = {"heading": t["progression.by_item" if item else "progression.by_skill"], "paragraphs": [note]}
    if rows:
        section["table"] = _table(t, keys, rows, numeric=numeric, widths=["fr"] + ["auto"] * (len(keys) - 1))
    return section


def _paired_chart(t: _Text, g: GroupProgression) -> Json:
    """Both distributions in the same 10 % bands: a pair of bars (before, after) per band."""
    bands = [f"{t.number(10 * i)}{DASH}{t.percent(10 * i + 10)}" for i in range(10)]
    pairs = list(zip(bands, g.before_histogram, g.after_histogram, strict=True))
    said = ", ".join(
        t.format("progression.band", band=band, before=t.number(b), after=t.number(a)) for band, b, a in pairs
    )
    return {
        "alt": t.format("progression.distribution_alt", bars=said),
        "axis": t["chart.learners"],
        "top": float(max([1, *g.before_histogram, *g.after_histogram])),
        "legend": [
            {"series": "before", "label": t["progression.before"]},
            {"series": "after", "label": t["progression.after"]},
        ],
        "groups": [
            {
                "label": band,
                "bars": [
                    {"series": "before", "value": float(b), "text": t.number(b)},
                    {"series": "after", "value": float(a), "text": t.number(a)},
                ],
            }
            for band, b, a in pairs
        ],
    }
