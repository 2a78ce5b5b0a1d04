"""Table cells as the report shows them (plain JSON values: :func:`pellucid._validation.plain`),
and whether a raw value is missing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def cell(v: Any) -> Any:
    """A table cell as the report shows it: ``"missing"``, a number to four significant
    digits, an integer, or text."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, (np.floating, float)):
        return float(f"{float(v):.4g}")
    if isinstance(v, np.integer):
        return int(v)
    return str(v)


def is_missing(v: Any) -> bool:
    """Whether a raw value is missing (None, NaN, pandas' NA or NaT); False for anything
    ``pd.isna`` cannot judge as one value (a list, a tuple)."""
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
