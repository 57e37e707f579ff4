"""The one statistics module: the figures every view of a distribution of percents shows.

/statistics (readside/service/statistics.py), the group report PDF and the progression reports
(reports/service/report_records.py, progression_report.py) and the policy preview's distributions
(grades/service/policies.py) take their figures from here: the mean (of
the exactly rounded sum, so a figure printed rounded to hundredths does not depend on the order the
values were added in), the median (the middle value, or the mean of the two middle ones), quartiles
(linear interpolation), min, max, the standard deviation and a histogram over 0-100 %. The dashboard
computes the same mean and median in its one SQL statement (avg, percentile_cont(0.5)).

The standard deviation is the one figure whose definition differs by view, on purpose:
- /statistics describes results as a sample of what an assessment measures (beside quartiles, facility
  and discrimination): the sample standard deviation (n - 1), as its schema says;
- the group report describes exactly the learners it ranks, the whole group: the population standard
  deviation (n), as docs/reports.md says; computed exactly (a group's figure is printed rounded).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Values = Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures of a distribution (None where there are no values; `stdev` also for a single value
    of a sample)."""

    count: int
    mean: float | None
    median: float | None
    stdev: float | None
    min: float | None
    max: float | None
    q1: float | None
    q3: float | None


def summary(values: Values, *, sample: bool) -> Summary:
    """Count, mean, median, standard deviation (`sample`: n - 1, None for a single value; else n), min,
    max and quartiles."""
    x = np.asarray(values, dtype=np.float64)
    if not len(x):
        return Summary(0, None, None, None, None, None, None, None)
    q1, q3 = np.percentile(x, [25, 75])
    stdev = statistics.pstdev(x.tolist()) if not sample else float(x.std(ddof=1)) if len(x) > 1 else None
    return Summary(len(x), mean(x), median(x), stdev, float(x.min()), float(x.max()), float(q1), float(q3))


def mean(values: Values) -> float | None:
    """The mean of the exactly rounded sum."""
    x = np.asarray(values, dtype=np.float64)
    return math.fsum(x.tolist()) / len(x) if len(x) else None


def median(values: Values) -> float | None:
    """The middle value, or the mean of the two middle ones."""
    x = np.asarray(values, dtype=np.float64)
    return float(np.median(x)) if len(x) else None


def edges(bins: int) -> npt.NDArray[np.float64]:
    """`bins` equal bins over 0-100 %."""
    return np.linspace(0.0, 100.0, bins + 1)


def histogram(values: Values, bins: int = 10) -> list[int]:
    """Counts in `bins` equal bins over 0-100 % (each bin holds its lower bound; the last one holds 100
    too); below 0 counts in the first, above 100 (extra credit) in the last."""
    counts, _ = np.histogram(np.clip(np.asarray(values, dtype=np.float64), 0.0, 100.0), bins=edges(bins))
    return [int(c) for c in counts]


def rounded(x: float | None, places: int = 2) -> float | None:
    """A figure as the reports print it."""
    return None if x is None else round(x, places)
