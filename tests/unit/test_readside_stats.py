"""The one statistics module: each figure means the same in /statistics, the group PDF and the
progression reports; only the standard deviation differs on purpose (sample vs population)."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from gradeflow.grading import stats


def _percents(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-5, 110), 2) for _ in range(rng.randint(1, 40))]


def test_the_group_reports_figures_are_the_exact_ones() -> None:
    """Mean of the exact sum, middle value, population deviation: a figure printed rounded to hundredths
    does not depend on the order the values were added in."""
    rng = random.Random(7)
    for _ in range(2000):
        xs = _percents(rng)
        s = stats.summary(xs, sample=False)
        assert (s.mean, s.median, s.stdev) == (statistics.fmean(xs), statistics.median(xs), statistics.pstdev(xs))
        assert (s.min, s.max, s.count) == (min(xs), max(xs), len(xs))


def test_the_statistics_endpoints_deviation_is_the_samples() -> None:
    xs = np.array([86.0, 50.0, 40.0])
    s = stats.summary(xs, sample=True)
    assert s.stdev == pytest.approx(xs.std(ddof=1))
    q1, q3 = np.percentile(xs, [25, 75])
    assert (s.q1, s.q3) == (q1, q3)
    assert stats.summary([75.0], sample=True).stdev is None  # one value: no sample deviation
    assert stats.summary([75.0], sample=False).stdev == 0.0
    assert stats.summary([], sample=True) == stats.Summary(0, None, None, None, None, None, None, None)


def test_the_histogram_bands_hold_their_lower_bound_and_the_last_holds_100() -> None:
    rng = random.Random(3)
    for _ in range(500):
        xs = _percents(rng)
        bands = [0] * 10
        for x in xs:
            bands[min(9, max(0, int(x // 10)))] += 1
        assert stats.histogram(xs, 10) == bands
    assert stats.histogram([0, 10, 99.99, 100, 120], 5) == [2, 0, 0, 0, 3]
