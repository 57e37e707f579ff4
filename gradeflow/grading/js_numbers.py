"""JavaScript's view of numbers, where Canvas's arithmetic depends on it.

Canvas's gradebook runs in a browser: its numbers are IEEE-754 doubles (Python floats are the same
numbers), its default `Array.prototype.sort()` compares the numbers' *strings*, and its `sumBy`
adds through Big.js, reading each double as its shortest decimal string.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal

# Big.js keeps every digit of a sum or product: enough digits for any doubles' (exponents -1074..1023).
EXACT = Context(prec=800)


def big(x: float) -> Decimal:
    """A double as Big.js reads it (`new Big(n)` takes `String(n)`): its shortest decimal, exactly."""
    return Decimal(repr(float(x)))


def js_string(x: float) -> str:
    """ECMAScript Number::toString (radix 10): shortest round-trip digits, like Python's repr, but
    in plain notation from 1e-6 up to (not including) 1e21 and `1e-7` / `1.5e+21` outside it."""
    if x != x:
        return "NaN"
    if x == 0:
        return "0"  # -0 too
    if x < 0:
        return "-" + js_string(-x)
    if x == float("inf"):
        return "Infinity"
    sign, digit_tuple, exponent = big(x).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int) and not sign
    exponent += len(digit_tuple) - len(digits)  # the stripped zeros
    k = len(digits)
    n = exponent + k  # x = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_sorted(values: Iterable[float]) -> list[float]:
    """`values.sort()` with no comparator: by the numbers' strings, in UTF-16 code unit order (ASCII
    here, so Python's string order), stable."""
    return sorted(values, key=js_string)


def big_sum(values: Iterable[float]) -> float:
    """Canvas's `sum`/`sumBy`: each double as its shortest decimal, added exactly, back to the nearest
    double. `NaN || 0` makes a NaN count as 0."""
    total = Decimal(0)
    for v in values:
        if v == v:
            total = EXACT.add(total, big(v))
    return float(total)
