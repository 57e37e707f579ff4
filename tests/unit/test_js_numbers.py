"""JavaScript's view of numbers, against tables a real JavaScript engine produced.

Canvas's drop search starts from the per-item ratios sorted as *strings* (JavaScript's default
`.sort()`), so a wrong `Number::toString` moves its starting bracket and changes which assignments a
learner keeps. Its sums go through Big.js, so a wrong `big_sum` moves group totals by an ulp.

How the tables were made (once, by hand; node is not needed to run this file):
- `JS_STRINGS`: `node -e 'console.log(String(x))'` for each expression, Node 20.
- `JS_SORTS`: `node -e 'console.log(JSON.stringify([...].sort()))'`, Node 20.
- `BIG_SUMS`: Node 20 with big.js 5.2.2 (Canvas's version), summing the way Canvas's `sum` does:
  reduce with `new Big(total || 0).plus(value || 0)` from 0, then `Number.parseFloat` of the result.
"""

from __future__ import annotations

import pytest

from gradeflow.grading.js_numbers import big_sum, js_string

# (Python expression for the same double, what JavaScript's String(x) prints)
JS_STRINGS: list[tuple[float, str]] = [
    (0.0, "0"),
    (-0.0, "0"),
    (1e-7, "1e-7"),
    (-1e-7, "-1e-7"),
    (1.5e-7, "1.5e-7"),
    (123e-9, "1.23e-7"),
    (9.99e-7, "9.99e-7"),
    (1 / 7e6, "1.4285714285714285e-7"),
    (1e-6, "0.000001"),
    (0.000001, "0.000001"),
    (0.0000012, "0.0000012"),
    (1e-5, "0.00001"),
    (1e-100, "1e-100"),
    (5e-324, "5e-324"),
    (2.0**-1074, "5e-324"),
    (-5e-324, "-5e-324"),
    (2.2250738585072014e-308, "2.2250738585072014e-308"),
    (-0.05, "-0.05"),
    (-0.5, "-0.5"),
    (-12.345, "-12.345"),
    (0.1, "0.1"),
    (0.5, "0.5"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1 / 3, "0.3333333333333333"),
    (2 / 3, "0.6666666666666666"),
    (17 / 24, "0.7083333333333334"),
    (31 / 40, "0.775"),
    (3.33 / 10, "0.333"),
    (1.33 / 4, "0.3325"),
    (0.333, "0.333"),
    (1.005, "1.005"),
    (4.35, "4.35"),
    (10.0, "10"),
    (11.5, "11.5"),
    (12.5, "12.5"),
    (100.0, "100"),
    (123.456, "123.456"),
    (110.1 + 170.7, "280.79999999999995"),
    (1e15 + 0.3, "1000000000000000.2"),
    (1e16, "10000000000000000"),
    (2.0**53, "9007199254740992"),
    (2.0**53 + 2, "9007199254740994"),
    (1e20, "100000000000000000000"),
    (123456789012345680000.0, "123456789012345680000"),
    (999999999999999900000.0, "999999999999999900000"),
    (1e21, "1e+21"),
    (-1e21, "-1e+21"),
    (1.5e21, "1.5e+21"),
    (1.2345e22, "1.2345e+22"),
    (1e100, "1e+100"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
]

# (array, the same array after JavaScript's `.sort()` with no comparator)
JS_SORTS: list[tuple[list[float], list[float]]] = [
    ([10, 9, 1, 0.5, 100, 2], [0.5, 1, 10, 100, 2, 9]),
    ([-0.05, -0.5, -0.1, 0, 0.05, -1], [-0.05, -0.1, -0.5, -1, 0, 0.05]),
    ([1e-7, 0.000001, 1e21, 1e20, 5, 0.1, 1.5e-7], [0.000001, 0.1, 1.5e-7, 1e20, 1e21, 1e-7, 5]),
    ([0.7, 0.775, 17 / 24, 12, 10.5, 1e-6], [1e-6, 0.7, 17 / 24, 0.775, 10.5, 12]),
    ([5e-324, 1.7976931348623157e308, 2.0**53, 1e16, 3, 0], [0, 1.7976931348623157e308, 1e16, 3, 5e-324, 2.0**53]),
    ([0.333, 0.3325, 0.33327586206896553, 1 / 3, 1 / 3, 40], [0.3325, 0.333, 0.33327586206896553, 1 / 3, 1 / 3, 40]),
]

# (values, Canvas's sum of them); comments give plain float addition's answer where it differs
BIG_SUMS: list[tuple[list[float], float]] = [
    ([], 0.0),
    ([0.1, 0.2], 0.3),  # floats: 0.30000000000000004
    ([110.1, 170.7], 280.8),  # floats: 280.79999999999995
    ([0.1, 0.7], 0.8),
    ([0.1] * 10, 1.0),  # floats: 0.9999999999999999
    ([4.35, 4.35, 4.35], 13.05),
    ([124.46, 23.54], 148.0),
    ([1 / 3, 1 / 3, 1 / 3], 0.9999999999999999),  # floats: 1.0 (Big.js adds the 16-digit decimals)
    # Sums whose exact value needs more than 17 digits, rounded once at the end.
    ([1e16, 1, 1], 10000000000000002.0),  # floats: 1e16
    ([2.0**53, 1, 1], 9007199254740994.0),  # floats: 2**53
    ([2.0**53, 0.5, 0.5], 9007199254740992.0),  # exactly ...993: ties to even
    ([1e16, 0.3], 1e16),
    ([1e-7, 1e21], 1e21),
    ([1e21, -1e21, 1e-7], 1e-7),
    ([1e-7, 1e-7, 1e-7], 3e-7),
    ([5e-324, 5e-324], 1e-323),
    ([1.7976931348623157e308, -1.7976931348623157e308, 1], 1.0),
    # Negatives.
    ([-0.1, -0.2], -0.3),
    ([0.3, -0.1], 0.2),  # floats: 0.19999999999999998
    ([-0.05, -0.5, 0.55], 0.0),
    ([0.1 + 0.2, -0.3], 4e-17),  # floats: 5.551115123125783e-17
    ([-0.0], 0.0),
]


@pytest.mark.parametrize(("x", "expected"), JS_STRINGS, ids=[s for _, s in JS_STRINGS])
def test_js_string_matches_javascript(x: float, expected: str) -> None:
    assert js_string(x) == expected


def test_js_string_table_is_wide() -> None:
    """The table covers both exponent boundaries (1e-6 and 1e21) from both sides, and signs."""
    strings = {s for _, s in JS_STRINGS}
    assert {"1e-7", "0.000001", "100000000000000000000", "1e+21", "-0.05", "5e-324"} <= strings
    assert len(JS_STRINGS) >= 30


@pytest.mark.parametrize(("values", "expected"), JS_SORTS)
def test_sorting_by_js_string_is_javascripts_default_sort(values: list[float], expected: list[float]) -> None:
    # Python's sort is stable like JavaScript's, so equal strings keep their order either way.
    assert sorted(values, key=js_string) == expected


def test_the_sorts_that_move_canvass_bracket() -> None:
    """The §2.5 quirks, as a user of the drop search would meet them: the 'lowest' ratio first in
    JavaScript's order is not the numerically lowest."""
    assert sorted([-0.5, -0.05], key=js_string)[0] == -0.05
    assert sorted([9.5, 10.5], key=js_string)[-1] == 9.5
    assert sorted([1e-7, 0.5], key=js_string)[-1] == 1e-7


@pytest.mark.parametrize(("values", "expected"), BIG_SUMS, ids=[repr(v)[:40] for v, _ in BIG_SUMS])
def test_big_sum_matches_canvas(values: list[float], expected: float) -> None:
    got = big_sum(values)
    assert isinstance(got, float)
    assert got == expected
    assert str(got) != "-0.0"  # Big.js has no negative zero to hand back here


def test_big_sum_takes_any_iterable() -> None:
    assert big_sum(x / 10 for x in (1, 2)) == 0.3
