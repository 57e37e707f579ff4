"""Charts for LMS screens, drawn with matplotlib (its object API, one Figure per call, so charts can be
drawn in threads). Pure: data in, SVG or PNG bytes out."""

from __future__ import annotations

import io
import itertools
from typing import TYPE_CHECKING, Literal

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch

if TYPE_CHECKING:
    from gradeflow.readside.service.progress import Progress

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in SVG: searchable, readable by screen readers
# Titles, names and labels come from clients: never read as TeX or mathtext (a title like `$\sqrt{$`
# would be a parse error, i.e. a 500), always drawn as the characters they are.
matplotlib.rcParams["text.usetex"] = False
matplotlib.rcParams["text.parse_math"] = False

Format = Literal["svg", "png"]
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}

_GRADED, _DROPPED, _AVERAGE, _TOTAL = "#4C72B0", "#C0C0C0", "#DD8452", "#55A868"


def _bytes(fig: Figure, fmt: Format) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format=fmt, dpi=100, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()


def progress_chart(progress: Progress, fmt: Format) -> bytes:
    """Bars per assessment grouped by category (dropped ones grey and hatched), an average bar per
    category, a total bar, and a line at each cutoff labelled with its letter."""
    labels: list[str] = []
    heights: list[float] = []
    colours: list[str] = []
    hatches: list[str] = []
    for category in progress.categories:
        for a in progress.assessments:
            if a.category != category.name:
                continue
            labels.append(a.title)
            heights.append(a.percent or 0.0)
            colours.append(_DROPPED if a.dropped else _GRADED)
            hatches.append("//" if a.dropped else "")
        labels.append(f"{category.name} avg")
        heights.append(category.final_percent or 0.0)
        colours.append(_AVERAGE)
        hatches.append("")
    labels.append("Total")
    heights.append(progress.final.percent or 0.0)
    colours.append(_TOTAL)
    hatches.append("")

    fig = Figure(figsize=(max(6.0, 0.55 * len(labels) + 2), 4.2))
    ax = fig.add_subplot()
    bars = ax.bar(range(len(labels)), heights, color=colours, edgecolor="#333333", linewidth=0.5)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    top = max([100.0, *heights]) * 1.08
    for cutoff in progress.cutoffs:
        y = cutoff.min * 100
        if 0 < y <= top:
            ax.axhline(y, color="#C44E52", linestyle="--", linewidth=0.8)
            ax.text(len(labels) - 0.4, y, f" {cutoff.grade}", va="center", color="#C44E52", fontsize=9)
    ax.set_ylim(0, top)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("percent")
    ax.set_title(f"Progress of {progress.learner}", fontsize=11)
    ax.legend(
        handles=[
            Patch(color=_GRADED, label="assessment"),
            Patch(facecolor=_DROPPED, hatch="//", label="dropped"),
            Patch(color=_AVERAGE, label="category average"),
            Patch(color=_TOTAL, label="total"),
        ],
        fontsize=7,
        loc="upper left",
        ncols=4,
    )
    return _bytes(fig, fmt)


def histogram_chart(title: str, edges: list[float], counts: list[int], fmt: Format) -> bytes:
    """A score histogram: counts per bin of percent."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    widths = [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(edges[:-1], counts, width=widths, align="edge", color=_GRADED, edgecolor="#333333", linewidth=0.5)
    ax.set_xlabel("percent")
    ax.set_ylabel("learners")
    ax.set_title(title, fontsize=11)
    return _bytes(fig, fmt)
