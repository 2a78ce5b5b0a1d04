"""The one number formatter: estimates rounded half up from their shortest decimal, exact
values in full, and the shortest decimal between two observed values."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pellucid import _validation as fmt


def test_percentages_round_half_up_from_the_written_value():
    # 0.9825 is written so in report.json; a reader rounds it to 98.3, not to 98.2.
    assert fmt.pct(0.9825) == "98.3%"
    assert fmt.pct(0.9824999) == "98.2%"
    assert fmt.pct(None) == fmt.DASH
    assert fmt.interval((0.9756, 0.98749)) == "97.6%–98.7%"


def test_estimates_to_significant_digits_and_exact_values_in_full():
    assert fmt.sig(1878.04) == "1878"
    assert fmt.sig(1.1e-13) == "1.1e-13"
    assert fmt.sig(-0.000333333) == "−0.0003333"
    assert fmt.fixed(0.98765) == "0.988"
    assert fmt.fixed(-0.0001) == "0.000"
    assert fmt.exact(0.5985) == "0.5985"
    assert fmt.exact(1e-7) == "0.0000001"
    assert fmt.exact(61.0) == "61"
    assert fmt.value(61.0, "integer") == "61"


@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-9, 1e3))
@settings(max_examples=300, deadline=None)
def test_shortest_between_lies_in_the_gap_and_is_no_longer_than_either_end(lo, width):
    hi = lo + width
    if not lo < hi:
        return
    for closed in ("right", "left"):
        t = fmt.shortest_between(lo, hi, closed=closed)
        assert (lo < t <= hi) if closed == "right" else (lo <= t < hi)
        # Never more significant digits than the ends themselves need.
        digits = len(repr(t).replace("-", "").replace(".", "").lstrip("0").split("e")[0].rstrip("0"))
        ends = max(len(repr(v).replace("-", "").replace(".", "").lstrip("0").split("e")[0].rstrip("0")) for v in (lo, hi))
        assert digits <= max(ends, 1)


def test_against_keeps_the_side_of_the_threshold():
    assert fmt.against(0.9549, 0.95) != "0.95"
    assert float(fmt.against(0.9549, 0.95)) > 0.95
    assert float(fmt.against(0.94951, 0.95)) < 0.95
    assert fmt.against(0.96, 0.95) == "0.96"
    for x in np.linspace(0.9, 1.0, 101):
        s = float(fmt.against(x, 0.95))
        assert (s > 0.95) == (x > 0.95) and (s < 0.95) == (x < 0.95)
    assert math.isclose(float(fmt.against(0.5, 0.95)), 0.5)
