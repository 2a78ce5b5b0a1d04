"""Reasons for a decision: per row, the features that pushed it towards its outcome.

Adverse-action style: for each row, the features whose contribution to the explained outcome
(by default the predicted class; its probability) is positive, largest first, from LIME
(:func:`~pellucid.surrogates.lime_local.lime`) and, for a torch network, from Integrated
Gradients against a valid typical row (the reference's median row). Where both run, the table
says how far they agree: the overlap of their top-``k`` reasons and the Spearman correlation
of all their contributions, per row.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .._files import written_at
from ..errors import DataFileError, ParameterError, PellucidWarning
from ..surrogates.lime_local import MIN_SHARE, _check_k, _order, as_oracle, lime

__all__ = ["reasons", "export_reasons", "REASON_METHODS"]

REASON_METHODS = ("lime", "integrated_gradients")


def reasons(
    model: Any,
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    k: int = 3,
    methods: Sequence[str] | None = None,
    *,
    target: Any = None,
    num_samples: int = 5000,
    random_state: Any = 0,
    baseline: Any = "median",
    n_steps: int = 50,
    min_share: float = MIN_SHARE,
    lime_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The top-``k`` reasons of each row's outcome, by LIME and by Integrated Gradients.

    Parameters
    ----------
    model : Oracle or anything Oracle adapts
    rows, reference : DataFrame
        Raw rows to explain, and the population the neighbourhoods and the baseline come from.
    k : int
        Reasons per row and method.
    methods : sequence of {"lime", "integrated_gradients"}, optional
        Default: both for a torch network, LIME alone for any other model.
    target : class label, sequence of labels or None
        The outcome explained; by default each row's predicted class (both methods explain
        the same class).
    num_samples, random_state, lime_kwargs
        Passed to :func:`~pellucid.surrogates.lime_local.lime`.
    baseline, n_steps
        Integrated Gradients' baseline (default the reference's median row: numeric medians,
        most frequent categories) and integration points.
    min_share : float
        A reason must carry at least this share of the row's total |contribution| (by the
        same method).

    Returns
    -------
    DataFrame
        One row per input row (same index): ``target``, ``prediction``; per method ``m``:
        ``m_reason_1..k`` (feature names, None where fewer features push towards the outcome),
        ``m_text_1..k`` (readable, e.g. "debt_ratio = 0.82 (raises P(bad) by 0.21)"); with
        two methods: ``top{k}_overlap`` (reasons given by both, over the larger number of
        reasons either gives; 1 when neither gives any),
        ``top1_agree`` and ``spearman`` (of all features' contributions). Export it with
        :func:`export_reasons` (or ``to_csv`` / ``to_parquet``).
    """
    oracle = as_oracle(model)
    if methods is None:
        methods = REASON_METHODS if oracle.kind == "torch" else ("lime",)
    methods = tuple(methods)
    unknown = [m for m in methods if m not in REASON_METHODS]
    if unknown or not methods:
        raise ParameterError(f"methods must be a non-empty subset of {REASON_METHODS}; got {list(methods)}")
    expl = lime(oracle, rows, reference, num_samples=num_samples, random_state=random_state, target=target,
                **(lime_kwargs or {}))
    k = _check_k(k, len(expl.features))
    names = np.asarray(expl.features, dtype=object)
    out = pd.DataFrame(index=expl.rows.index)
    out["target"] = expl.target.to_numpy(dtype=object)
    out["prediction"] = expl.prediction_network.to_numpy()
    contribs: dict[str, np.ndarray] = {}
    if "lime" in methods:
        contribs["lime"] = expl.contributions.to_numpy()
    if "integrated_gradients" in methods:
        from .gradients import integrated_gradients

        tgt = None if expl.target_index is None else expl.target_index
        attr = integrated_gradients(oracle, expl.rows, baseline=baseline, target=tgt, n_steps=n_steps,
                                    reference=reference[expl.rows.columns] if isinstance(reference, pd.DataFrame)
                                    else reference)
        values = np.asarray(attr.values, dtype=float)
        order = [list(attr.features).index(f) for f in expl.features]
        contribs["integrated_gradients"] = values[:, order]
        if attr.delta is not None and np.nanmax(np.abs(attr.delta)) > 0.05:
            warnings.warn(f"Integrated Gradients' completeness gap reaches {np.nanmax(np.abs(attr.delta)):.3g}; "
                          "raise n_steps for reasons that add up", PellucidWarning, stacklevel=2)
    tops: dict[str, np.ndarray] = {}
    for m in methods:
        c = contribs[m]
        order = _order(c, k, "positive", min_share)
        tops[m] = order
        for i in range(k):
            idx = order[:, i]
            ok = idx >= 0
            feat = np.full(len(out), None, dtype=object)
            feat[ok] = names[idx[ok]]
            out[f"{m}_reason_{i + 1}"] = feat
            text = np.full(len(out), None, dtype=object)
            for j in np.unique(idx[ok]):  # a loop over features, not rows
                r = np.flatnonzero(idx == j)
                values = expl.describe_value(str(names[j]), r)
                outcome = expl.output_name.to_numpy(dtype=object)[r]
                text[r] = [f"{v} (raises {o} by {_fmt2(c[ri, j])})" for v, o, ri in zip(values, outcome, r)]
            out[f"{m}_text_{i + 1}"] = text
    if len(methods) == 2:
        a, b = tops[methods[0]], tops[methods[1]]
        overlap = np.zeros(len(out))
        for i in range(k):
            hit = (a[:, [i]] == b) & (a[:, [i]] >= 0)
            overlap += hit.any(axis=1)
        most = np.maximum((a >= 0).sum(axis=1), (b >= 0).sum(axis=1))
        out[f"top{k}_overlap"] = np.where(most > 0, overlap / np.maximum(most, 1), 1.0)
        out["top1_agree"] = (a[:, 0] == b[:, 0]) & (a[:, 0] >= 0)
        out["spearman"] = _spearman_rows(contribs[methods[0]], contribs[methods[1]])
    return out


def _fmt2(v: float) -> str:
    return f"{abs(float(v)):.2g}"


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation per row (NaN where a row is constant)."""
    ra = rankdata(np.nan_to_num(a), axis=1)
    rb = rankdata(np.nan_to_num(b), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(axis=1) / den, np.nan)


def export_reasons(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a reasons table to ``.csv`` or ``.parquet`` (chosen by the suffix).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DataFileError
        Any other suffix, or a folder that does not exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataFileError(f"cannot export reasons to {str(path)!r}: use a .csv or .parquet file name "
                            f"(got suffix {path.suffix or 'none'!r})")
    if not path.parent.exists():
        raise DataFileError(f"cannot export reasons to {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    with written_at(path) as tmp:  # a reader never finds half a file under this name
        _write_table(table, tmp, suffix)
    return path


def _write_table(table: pd.DataFrame, path: Path, suffix: str) -> None:
    if suffix == ".csv":
        table.to_csv(path, index=True)
    else:
        frame = table.copy()
        frame.index = frame.index.map(str) if frame.index.dtype == object else frame.index
        for col in frame.columns:  # parquet needs one type per column: labels as text
            if frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                            else (v if isinstance(v, (str, bool)) else str(v)))
        frame.to_parquet(path, index=True)
