"""Values in the plain forms the reports' JSON holds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def plain(v: Any) -> Any:
    """Numpy scalars, tuples and sets to JSON's types; non-finite floats to None."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def number(v: Any) -> float | None:
    """A finite float, or None (missing, non-numeric, NaN or infinite)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


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
