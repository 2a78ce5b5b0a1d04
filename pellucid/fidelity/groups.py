"""Outcomes and fidelity per group: for each value of a grouping column (marital status, an age
band), the network's favourable-outcome rate, its accuracy against the target and a
surrogate's agreement with the network, each with its Wilson interval, and whether the
surrogate is significantly less faithful in that group than in the rest.

The per-group numbers are fairlearn's ``MetricFrame`` over the rows (the maintained tool for
disaggregated metrics); the intervals and the test are pellucid's. A group's agreement is
"lower" when a one-sided two-proportion z-test against the other rows rejects at 5% after
Holm's correction over every group of every column.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._validation import as_oracle
from ..errors import ParameterError
from .intervals import wilson

__all__ = ["group_fidelity", "BANDS"]

#: A numeric grouping column with more distinct values than this is cut into quartile bands.
BANDS = 10
ALPHA = 0.05


def group_fidelity(model: Any, rows: pd.DataFrame, groups: Sequence[str] | str, *, target: Any = None,
                   surrogate: Any = None, favourable: Any = None, group_data: pd.DataFrame | None = None,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Per group: favourable-outcome rate, accuracy and a surrogate's agreement, with intervals.

    Parameters
    ----------
    model : Oracle or anything Oracle adapts
        A classifier.
    rows : DataFrame
        Raw rows (the model's features).
    groups : str or sequence of str
        Grouping columns, in ``group_data`` if given, else in ``rows``. A numeric column with
        more than :data:`BANDS` values is cut into quartile bands ("[20, 31)").
    target : array-like, optional
        The true classes of the rows, for the network's accuracy per group.
    surrogate : fitted surrogate, optional
        Its agreement with the network per group (``predict`` on the raw rows).
    favourable : label, optional
        The favourable outcome, for its rate per group (two classes: required for the rate).
    group_data : DataFrame, optional
        Columns to group by that are not features (a protected attribute kept out of the
        model), aligned with ``rows``.
    confidence : float

    Returns
    -------
    DataFrame
        One row per (column, group): ``column``, ``group``, ``rows``, ``favourable_rate`` and
        its ``favourable_ci``, ``accuracy`` and ``accuracy_ci``, ``agreement`` and
        ``agreement_ci`` (None where not asked for), ``agreement_p`` (one-sided test that the
        group's agreement is below the rest's), ``lower_fidelity`` (significant after Holm).

    Raises
    ------
    ParameterError
        An unknown grouping column, a column with a single value, a target of another length,
        a favourable class the model does not have, a regression model.
    """
    from fairlearn.metrics import MetricFrame

    oracle = as_oracle(model)
    if isinstance(groups, str):
        groups = [groups]
    if not groups:
        raise ParameterError("groups must name at least one column")
    source = rows if group_data is None else group_data
    if group_data is not None and len(group_data) != len(rows):
        raise ParameterError(f"group_data has {len(group_data)} rows; rows has {len(rows)}")
    unknown = [g for g in groups if g not in source.columns]
    if unknown:
        raise ParameterError(f"group column(s) {unknown} are not columns of the "
                             f"{'group data' if group_data is not None else 'rows'} (columns: "
                             f"{list(map(str, source.columns))[:30]})")
    pred = oracle.predict(rows)
    if oracle.task != "classification":
        raise ParameterError("groups are compared on a classifier's decisions; this model is a regressor")
    classes = list(oracle.classes_)
    if favourable is not None and not any(c == favourable or str(c) == str(favourable) for c in classes):
        raise ParameterError(f"favourable {favourable!r} is not one of the model's classes {classes}")
    if target is not None:
        target = np.asarray(target, dtype=object)
        if len(target) != len(rows):
            raise ParameterError(f"target has {len(target)} values; rows has {len(rows)}")
    agree = None
    if surrogate is not None:
        agree = np.asarray(surrogate.predict(rows), dtype=object).astype(str) == np.asarray(pred, dtype=object).astype(str)
    pred_s = np.asarray(pred, dtype=object).astype(str)
    columns = {"favourable": pred_s == str(favourable)} if favourable is not None else {}
    if target is not None:
        columns["correct"] = pred_s == target.astype(str)
    if agree is not None:
        columns["agree"] = agree
    if not columns:
        raise ParameterError("nothing to compare: pass favourable=, target= or surrogate=")
    values = pd.DataFrame(columns, index=rows.index).astype(float)
    out = []
    for g in groups:
        labels = _labels(source[g], g)
        # one MetricFrame per measure: each is the share of the group's rows where it holds
        by_group = pd.DataFrame({k: MetricFrame(metrics=_share, y_true=values[k].to_numpy(),
                                                y_pred=values[k].to_numpy(),
                                                sensitive_features=labels.rename(g).to_numpy()).by_group
                                 for k in values.columns})
        counts = labels.value_counts(dropna=False)
        by_group = by_group.reindex(_order(labels))
        for level, row in by_group.iterrows():
            n = int(counts.get(level, 0))
            rec: dict[str, Any] = {"column": str(g), "group": str(level), "rows": n}
            for key, name in (("favourable", "favourable_rate"), ("correct", "accuracy"), ("agree", "agreement")):
                if key in row.index:
                    rate = float(row[key])
                    rec[name], rec[f"{name.replace('_rate', '')}_ci"] = rate, wilson(rate * n, n, confidence)
                else:
                    rec[name], rec[f"{name.replace('_rate', '')}_ci"] = None, None
            if agree is not None:
                inside = (labels == level).to_numpy()
                rec["agreement_p"] = _lower_p(agree[inside], agree[~inside])
            else:
                rec["agreement_p"] = None
            out.append(rec)
    table = pd.DataFrame(out)
    table["lower_fidelity"] = _holm(table["agreement_p"].to_numpy(dtype=float))
    return table


def _share(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The share of rows where the measure holds (``y_true`` is 1 or 0 per row)."""
    return float(np.mean(np.asarray(y_true, dtype=float)))


def _labels(column: pd.Series, name: str) -> pd.Series:
    """Group labels: the values (missing as "missing"), or quartile bands of a numeric column
    with many values."""
    values = column.dropna()
    if values.nunique() + int(column.isna().any()) < 2:
        only = "missing" if not len(values) else repr(values.iloc[0])
        raise ParameterError(f"group column {name!r} holds a single value ({only}); groups need at least two")
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column) and values.nunique() > BANDS:
        # Quartiles written to 4 significant digits, and the rows banded by the edges as written.
        x = values.to_numpy(dtype=float)
        inner = np.unique([_short(q) for q in np.quantile(x, [0.25, 0.5, 0.75])])
        edges = np.unique(np.r_[x.min(), inner[(inner > x.min()) & (inner < x.max())], x.max()])
        cut = np.searchsorted(edges[1:-1], column.to_numpy(dtype=float), side="right")
        text = [f"[{_num(edges[i])}, {_num(edges[i + 1])}{']' if i == len(edges) - 2 else ')'}" for i in
                range(len(edges) - 1)]
        labels = pd.Series([text[c] if v == v else "missing" for c, v in zip(cut, column.to_numpy(dtype=float))],
                           index=column.index, dtype=object)
        return labels
    return pd.Series(["missing" if pd.isna(v) else str(v) for v in column], index=column.index, dtype=object)


def _order(labels: pd.Series) -> list[str]:
    """Groups in reading order: bands by their lower edge, values as text, "missing" last."""
    def key(g: str) -> tuple:
        if g == "missing":
            return (2, 0.0, g)
        if g.startswith("[") and ", " in g:
            try:
                return (0, float(g[1:].split(",")[0]), g)
            except ValueError:
                pass
        return (1, 0.0, g)
    return sorted(pd.unique(labels.astype(str)), key=key)


def _short(v: float) -> float:
    return float(np.format_float_positional(float(v), precision=4, unique=True, fractional=False, trim="-"))


def _num(v: float) -> str:
    return np.format_float_positional(float(v), unique=True, trim="-")


def _lower_p(inside: np.ndarray, rest: np.ndarray) -> float | None:
    """One-sided p-value that the agreement inside a group is below the rest's (two-proportion
    z-test, pooled); None when either side is empty."""
    n1, n2 = len(inside), len(rest)
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = inside.mean(), rest.mean()
    pooled = (inside.sum() + rest.sum()) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(norm.cdf((p1 - p2) / se))


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down at :data:`ALPHA`: which tests reject."""
    ok = ~np.isnan(p)
    out = np.zeros(len(p), dtype=bool)
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    for rank, i in enumerate(order):
        if p[i] <= ALPHA / (m - rank):
            out[i] = True
        else:
            break
    return out
