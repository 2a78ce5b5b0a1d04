"""Global importance: local attributions averaged into one number per raw feature, the same
number read off any surrogate, and how far the two rankings agree.

The pairing with surrogates uses one definition for every surrogate, so that a tree, a rule
list and a sparse linear model are ranked on the same scale: **permutation importance of the
surrogate against its own predictions** on the distillation set's held-out observed rows. A
feature's importance is how much the surrogate's answers change when that feature's column is
shuffled among the rows: the drop in agreement with its unshuffled labels (classification) or
``1 - R²`` against its unshuffled values (regression). Nothing here asks the network; the
surrogate's rules are the whole story, as they are in the report.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ParameterError
from ..extraction.dataset import DistillationSet
from ..fidelity.intervals import N_BOOT, check_n_boot, check_seed, percentile_interval
from ..oracle import Oracle
from ..surrogates.base import predict_each
from ._base import Attribution

__all__ = ["global_importance", "surrogate_importance", "surrogate_importances", "rank_agreement", "RankAgreement", "pair"]

# Rows per surrogate.predict call when shuffled copies are stacked (memory bound, not speed).
_PREDICT_ROWS = 200_000


# ---------------------------------------------------------------------------- attributions
def global_importance(attr: Attribution, by: str = "abs", per_class: bool = False,
                      classes: Any = None) -> pd.Series | pd.DataFrame:
    """One importance per raw feature from a batch of local attributions.

    Parameters
    ----------
    attr : Attribution
        Tabular attributions ``(rows, raw features)``.
    by : {"abs", "signed"}
        ``"abs"``: mean absolute attribution (how much a feature moves the output, either way);
        ``"signed"``: mean attribution (which way it pushes on average).
    per_class : bool
        Group the rows by the output each row's attribution explains (``attr.targets``) and
        give one row of importances per class.
    classes : Oracle, sequence of labels, or None
        Names of the output columns, for the index of the per-class table. An Oracle gives its
        ``classes_``; None uses ``attr.params["classes"]`` when the method recorded them, else
        the output indices.

    Returns
    -------
    Series (index: raw features) or, with ``per_class``, DataFrame (index: class labels of the
    classes present, columns: raw features; ``attrs["rows"]`` holds the row count per class).
    """
    values = _tabular(attr, "global_importance")
    if by not in ("abs", "signed"):
        raise ParameterError(f"by must be 'abs' or 'signed', got {by!r}")
    v = np.abs(values) if by == "abs" else values
    name = "mean |attribution|" if by == "abs" else "mean attribution"
    features = list(attr.features)
    if not per_class:
        return pd.Series(v.mean(axis=0), index=pd.Index(features, name="feature"), name=name)
    if attr.targets is None:
        raise ParameterError(f"per_class needs class targets; the {attr.method} attributions explain a single "
                             "(regression) output")
    targets = np.asarray(attr.targets, dtype=np.int64)
    labels = _class_labels(classes if classes is not None else attr.params.get("classes"), int(targets.max()) + 1)
    present = np.unique(targets)
    # One pass over the rows: sums per class by a one-hot matrix product, no loop over rows.
    onehot = (targets[:, None] == present[None, :]).astype(v.dtype)
    counts = onehot.sum(axis=0)
    means = (onehot.T @ v) / counts[:, None]
    index = pd.Index([labels[i] for i in present], name="class")
    out = pd.DataFrame(means, index=index, columns=pd.Index(features, name="feature"))
    out.attrs["rows"] = {str(labels[i]): int(c) for i, c in zip(present, counts)}
    out.attrs["by"] = by
    return out


def _tabular(attr: Any, where: str) -> np.ndarray:
    if not isinstance(attr, Attribution):
        raise ParameterError(f"{where} expects an Attribution, got {type(attr).__name__}")
    values = np.asarray(attr.values, dtype=float)
    if values.ndim != 2 or not attr.features or values.shape[1] != len(attr.features):
        raise ParameterError(f"{where}: the {attr.method} attributions of shape {values.shape} are not tabular "
                             "(one column per raw feature); image attributions have no per-feature importance")
    if values.shape[0] == 0:
        raise ParameterError(f"{where}: the {attr.method} attributions have no rows")
    if not np.isfinite(values).all():
        raise ParameterError(f"{where}: the {attr.method} attributions hold NaN or infinite values")
    return values


def _class_labels(classes: Any, k: int) -> list:
    if classes is None:
        return list(range(k))
    if isinstance(classes, Oracle):
        classes = classes.classes_
    labels = list(np.asarray(classes, dtype=object).ravel())
    if len(labels) < k:
        raise ParameterError(f"classes names {len(labels)} labels {labels}, but the attributions explain output "
                             f"index {k - 1}")
    return labels


# ---------------------------------------------------------------------------- surrogates
def surrogate_importance(surrogate: Any, data: DistillationSet | pd.DataFrame, *, n_repeats: int = 5,
                         max_rows: int | None = 2000, random_state: int | None = 0) -> pd.Series:
    """Permutation importance of a fitted surrogate against its own predictions.

    One definition for every pellucid surrogate (trees, rule lists, rule ensembles, sparse
    linear models), so rankings are comparable across them and with attributions.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate (anything with ``predict`` on raw rows and ``schema_``).
    data : DistillationSet or DataFrame
        A distillation set (its held-out observed rows are used, or all its rows when it has
        no holdout), or raw rows.
    n_repeats : int
        Shuffles per feature; the importance is their mean (``attrs["std"]`` their spread).
    max_rows : int or None
        Rows used at most (a seeded sample beyond that); None for all.
    random_state : int or None
        Seed of the shuffles and the sample.

    Returns
    -------
    Series
        Index: the surrogate's raw features in schema order. Classification: the share of rows
        whose predicted label changes when the feature is shuffled (1 - agreement).
        Regression: ``1 - R²`` of the shuffled predictions against the unshuffled ones (the
        mean squared change when the surrogate is constant on the rows). ``attrs`` holds
        ``std``, ``metric``, ``n_rows`` and ``n_repeats``.
    """
    return surrogate_importances([surrogate], data, n_repeats=n_repeats, max_rows=max_rows,
                                 random_state=random_state)[0]


def surrogate_importances(surrogates: Sequence[Any], data: DistillationSet | pd.DataFrame, *, n_repeats: int = 5,
                          max_rows: int | None = 2000, random_state: int | None = 0) -> list[pd.Series]:
    """:func:`surrogate_importance` of each of ``surrogates`` on the same ``data``, in order.

    Surrogates fitted on the same schema for the same task share their shuffles (the seed
    draws the same ones for each): the table of every shuffled copy is built and checked
    against the schema once, and each surrogate only predicts it.
    """
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ParameterError(f"n_repeats must be a positive integer, got {n_repeats!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer))
                                 or max_rows < 2):
        raise ParameterError(f"max_rows must be an integer >= 2 or None, got {max_rows!r}")
    shared: list[tuple[Any, str, _Shuffles]] = []  # (schema, task, its shuffles)
    out = []
    for surrogate in surrogates:
        if not hasattr(surrogate, "predict") or not hasattr(surrogate, "schema_"):
            if hasattr(surrogate, "_check_fitted"):
                surrogate._check_fitted()  # a pellucid surrogate before fit: its own NotFittedError
            raise ParameterError(f"surrogate_importance needs a fitted pellucid surrogate; got "
                                 f"{type(surrogate).__name__}")
        names = list(surrogate.schema_.names)
        task = getattr(surrogate, "task_", "classification")
        if isinstance(data, DistillationSet):
            if list(data.schema.names) != names or data.task != task:
                raise ParameterError(
                    f"the {type(surrogate).__name__} was fitted for {task} on features {names}, but the distillation "
                    f"set is for {data.task} on {list(data.schema.names)}; pass the set it was fitted on")
        elif not isinstance(data, pd.DataFrame):
            raise ParameterError(f"data must be a DistillationSet or a DataFrame of raw rows, got "
                                 f"{type(data).__name__}")
        found = next((sh for schema, t, sh in shared if t == task and schema == surrogate.schema_), None)
        if found is None:
            found = _Shuffles(surrogate, data, names, n_repeats, max_rows, random_state)
            shared.append((surrogate.schema_, task, found))
        out.append(_permutation_importance(surrogate, found, names, task, n_repeats))
    return out


class _Shuffles:
    """The rows a surrogate's permutation importance is measured on and every (feature, repeat)
    shuffle of them, stacked into tables of at most :data:`_PREDICT_ROWS` rows; the
    permutations are drawn up front so the seed fixes them whatever the chunking. The rows are
    checked against the schema once; a shuffle only moves values within a checked column, so
    every table is as the schema checks it, for every surrogate of that schema."""

    def __init__(self, surrogate: Any, data: DistillationSet | pd.DataFrame, names: list[str], n_repeats: int,
                 max_rows: int | None, random_state: int | None) -> None:
        what = "rows given to surrogate_importance"
        if isinstance(data, DistillationSet):
            rows, what = (data.holdout if data.is_holdout.any() else data).rows, "rows of the distillation set"
        else:
            rows = data
        rows = surrogate.schema_.validate(rows, what=what).reset_index(drop=True)
        n = len(rows)
        if n < 2:
            raise ParameterError(f"surrogate_importance needs at least 2 rows to shuffle; got {n}")
        rng = np.random.default_rng(random_state)
        if max_rows is not None and n > max_rows:
            rows = rows.iloc[np.sort(rng.choice(n, max_rows, replace=False))].reset_index(drop=True)
            n = max_rows
        self.rows, self.n = rows, n
        p = len(names)
        perms = np.argsort(rng.random((p, n_repeats, n)), axis=2)
        per_call = max(1, _PREDICT_ROWS // n)
        jobs = [(j, r) for j in range(p) for r in range(n_repeats)]
        at = {name: j for j, name in enumerate(names)}
        same = np.arange(n)
        self.tables: list[tuple[int, pd.DataFrame]] = []  # (shuffles in the table, the table)
        for start in range(0, len(jobs), per_call):
            block = jobs[start:start + per_call]
            # Each column of the table: its rows in order, except in the blocks that shuffle it.
            columns = {}
            for name in rows.columns:
                j = at.get(name)
                take = np.concatenate([perms[j, r] if j == jb else same for jb, r in block])
                columns[name] = rows[name].take(take).reset_index(drop=True)
            self.tables.append((len(block), pd.DataFrame(columns)))

    def predictions(self, surrogate: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        """The surrogate's predictions of the rows and of each table, all as the surrogate's
        schema checked the rows (the tables only move values within those columns)."""
        schema = surrogate.schema_
        base = predict_each([surrogate], self.rows, schema=schema)[0]
        return base, [predict_each([surrogate], t, schema=schema)[0] for _, t in self.tables]


def _permutation_importance(surrogate: Any, shuffles: _Shuffles, names: list[str], task: str,
                            n_repeats: int) -> pd.Series:
    n, p = shuffles.n, len(names)
    base, tables = shuffles.predictions(surrogate)
    preds = [pred.reshape(k, n) for (k, _), pred in zip(shuffles.tables, tables)]
    shuffled = np.concatenate(preds).reshape(p, n_repeats, n)

    if task == "classification":
        scores = (shuffled != base[None, None, :]).mean(axis=2)
        metric = "1 - agreement with the unshuffled labels"
    else:
        base_f = base.astype(float)
        sse = ((shuffled.astype(float) - base_f) ** 2).sum(axis=2)
        sst = float(((base_f - base_f.mean()) ** 2).sum())
        if sst > 0:
            scores = sse / sst
            metric = "1 - R² against the unshuffled predictions"
        else:
            scores = sse / n
            metric = "mean squared change (the surrogate is constant on these rows)"
    out = pd.Series(scores.mean(axis=1), index=pd.Index(names, name="feature"), name="permutation importance")
    out.attrs.update({"std": dict(zip(names, scores.std(axis=1).tolist())), "metric": metric, "n_rows": n,
                      "n_repeats": int(n_repeats), "surrogate": getattr(surrogate, "name", type(surrogate).__name__)})
    return out


# ---------------------------------------------------------------------------- agreement
@dataclass
class RankAgreement:
    """How far two importance rankings of the same raw features agree.

    Attributes
    ----------
    spearman : float
        Spearman rank correlation (ties get their average rank); NaN when undefined.
    top_k_overlap : float
        ``|top_k(a) ∩ top_k(b)| / k``; the top k by descending importance, ties broken by
        the features' order.
    k : int
        The k used (at most the number of common features).
    n_features : int
    features : list of str
        The features compared.
    top_a, top_b : list of str
        The top k of each ranking.
    reason : str or None
        Why ``spearman`` is NaN (a constant ranking, fewer than two features).
    ties_at_k : bool
        Whether a tie crosses the top-k boundary in either ranking (the overlap then depends
        on how the tie is broken).
    dropped : list of str
        Features left out because only one side had them (only with ``strict=False``).
    spearman_ci : list of two floats or None
        Percentile bootstrap interval of ``spearman`` at level ``confidence``: the rows an
        Attribution side was computed on are resampled with replacement and its global
        importance recomputed; a side given as a plain ranking (no per-row values) is held
        fixed. None when neither side has rows or ``spearman`` is undefined.
    confidence : float
        Level of ``spearman_ci``.
    interval_method : str or None
        How ``spearman_ci`` was made, in words (resamples, rows, what was held fixed, seed).
    """

    spearman: float
    top_k_overlap: float
    k: int
    n_features: int
    features: list
    top_a: list
    top_b: list
    reason: str | None = None
    ties_at_k: bool = False
    dropped: list | None = None
    spearman_ci: list | None = None
    confidence: float = 0.95
    interval_method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spearman"] = None if math.isnan(self.spearman) else float(self.spearman)
        return d


def rank_agreement(a: Any, b: Any, k: int = 5, *, strict: bool = True, n_boot: int = N_BOOT,
                   confidence: float = 0.95, random_state: int | None = 0) -> RankAgreement:
    """Spearman rank correlation and top-k overlap of two importance vectors, the correlation
    with its bootstrap interval.

    Parameters
    ----------
    a, b : Series, mapping feature -> importance, or Attribution
        Importances by raw feature name; larger is more important (pass magnitudes). An
        Attribution is turned into its mean absolute attribution.
    k : int
        Size of the top sets; reduced to the number of common features when larger.
    strict : bool
        Raise :class:`ParameterError` naming the features present in only one of ``a`` and
        ``b`` (default); with False, compare on the common features and list the rest in
        ``dropped``.
    n_boot : int
        Bootstrap replicates of the interval of ``spearman``.
    confidence : float
        Level of that interval.
    random_state : int or None
        Seed of the resampling: the rows of replicate ``r`` are
        ``numpy.random.default_rng(random_state).integers(0, n, size=(n_boot, n))[r]`` for an
        Attribution of ``n`` rows (drawn for ``a``, then for ``b`` when both are
        Attributions of different row counts; the same rows for both when their counts are
        equal, as for two methods on the same rows).

    Returns
    -------
    RankAgreement
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    n_boot = check_n_boot(n_boot)
    seed = check_seed(random_state)
    sa, sb = _importance_series(a, "a"), _importance_series(b, "b")
    only_a = [f for f in sa.index if f not in sb.index]
    only_b = [f for f in sb.index if f not in sa.index]
    if (only_a or only_b) and strict:
        raise ParameterError(f"the rankings cover different features: only in a {only_a}, only in b {only_b}; "
                             "compare importances of the same raw features (or pass strict=False)")
    common = [f for f in sa.index if f in sb.index]
    if not common:
        raise ParameterError(f"the rankings share no feature (a: {list(sa.index)[:10]}, b: {list(sb.index)[:10]})")
    va = sa.loc[common].to_numpy(dtype=float)
    vb = sb.loc[common].to_numpy(dtype=float)
    n = len(common)
    k = int(min(k, n))
    reason = None
    if n < 2:
        rho, reason = math.nan, "fewer than two common features"
    elif np.ptp(va) == 0 or np.ptp(vb) == 0:
        which = " and ".join(s for s, v in (("a", va), ("b", vb)) if np.ptp(v) == 0)
        rho, reason = math.nan, f"the importances of {which} are all equal: a constant ranking has no rank correlation"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rho = float(stats.spearmanr(va, vb).statistic)
    top_a, ties_a = _top(va, k)
    top_b, ties_b = _top(vb, k)
    overlap = len(set(top_a) & set(top_b)) / k
    ci, method = None, None
    if not math.isnan(rho):
        ci, method = _spearman_interval(a, b, common, va, vb, rho, n_boot, confidence, seed)
    return RankAgreement(
        spearman=rho, top_k_overlap=float(overlap), k=k, n_features=n, features=list(common),
        top_a=[common[i] for i in top_a], top_b=[common[i] for i in top_b], reason=reason,
        ties_at_k=bool(ties_a or ties_b), dropped=(only_a + only_b) or None,
        spearman_ci=ci, confidence=confidence, interval_method=method,
    )


#: Replicates resampled at a time (bounds the memory of the resampled row counts).
_BOOT_BATCH = 25


def _spearman_interval(a: Any, b: Any, common: list, va: np.ndarray, vb: np.ndarray, rho: float, n_boot: int,
                       confidence: float, seed: int) -> tuple[list | None, str | None]:
    """Percentile bootstrap interval of the Spearman correlation of two rankings: the rows of
    each Attribution side resampled, its mean |attribution| recomputed; a plain ranking is
    held fixed."""
    rows = {side: np.abs(_tabular(x, "rank_agreement")[:, [list(x.features).index(f) for f in common]])
            for side, x in (("a", a), ("b", b)) if isinstance(x, Attribution)}
    if not rows:
        return None, None
    rng = np.random.default_rng(seed)
    paired = len(rows) == 2 and len(rows["a"]) == len(rows["b"])
    draws = {}
    for side, v in rows.items():
        draws[side] = draws["a"] if paired and side == "b" else rng.integers(0, len(v), size=(n_boot, len(v)))
    reps = np.empty(n_boot)
    ranked = {"a": stats.rankdata(va), "b": stats.rankdata(vb)}
    for start in range(0, n_boot, _BOOT_BATCH):
        stop = min(n_boot, start + _BOOT_BATCH)
        rank = {}
        for side, fixed in ranked.items():
            if side not in rows:
                rank[side] = np.broadcast_to(fixed, (stop - start, len(common)))
                continue
            v, idx = rows[side], draws[side][start:stop]
            m = len(v)
            # Each replicate's importance: its row counts times |attributions|, over m rows.
            counts = np.bincount((np.arange(stop - start)[:, None] * m + idx).ravel(),
                                 minlength=(stop - start) * m).reshape(stop - start, m)
            rank[side] = stats.rankdata((counts @ v) / m, axis=1)
        ra = rank["a"] - rank["a"].mean(axis=1, keepdims=True)
        rb = rank["b"] - rank["b"].mean(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            # A replicate whose ranking is constant has no correlation (NaN, left out).
            reps[start:stop] = (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    if paired:
        what = f"the {len(rows['a'])} rows both rankings were computed on"
    elif len(rows) == 2:
        what = f"the {len(rows['a'])} and {len(rows['b'])} rows of each ranking, apart"
    else:
        side = next(iter(rows))
        what = (f"the {len(rows[side])} rows of the attributions; the other ranking, which has no per-row values, "
                "held fixed")
    return percentile_interval(reps, rho, confidence), f"percentile bootstrap, {n_boot} resamples of {what}, seed {seed}"


def _importance_series(x: Any, what: str) -> pd.Series:
    if isinstance(x, Attribution):
        x = global_importance(x, by="abs")
    elif isinstance(x, Mapping):
        x = pd.Series(dict(x), dtype=float)
    elif not isinstance(x, pd.Series):
        raise ParameterError(f"{what} must be a Series or mapping of importances by feature, or an Attribution; "
                             f"got {type(x).__name__}")
    x = x.copy()
    x.index = [str(i) for i in x.index]
    if x.index.has_duplicates:
        raise ParameterError(f"{what} names features more than once: {sorted(set(x.index[x.index.duplicated()]))}")
    try:
        vals = x.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} holds non-numeric importances") from None
    if not np.isfinite(vals).all():
        raise ParameterError(f"{what} has NaN or infinite importances for {list(x.index[~np.isfinite(vals)])}")
    return x


def _top(v: np.ndarray, k: int) -> tuple[np.ndarray, bool]:
    order = np.argsort(-v, kind="stable")
    ties = k < len(v) and v[order[k - 1]] == v[order[k]]
    return order[:k], bool(ties)


# ---------------------------------------------------------------------------- the table
def pair(attributions: Mapping[str, Attribution], surrogates: Mapping[str, Any],
         distillation: DistillationSet | pd.DataFrame, *, k: int = 5, n_repeats: int = 5,
         random_state: int | None = 0) -> pd.DataFrame:
    """Rank agreement of every attribution method with every surrogate, for the report.

    Parameters
    ----------
    attributions : dict name -> Attribution
        Tabular attributions on raw features (their mean |attribution| is the ranking).
    surrogates : dict name -> fitted surrogate
        Ranked by :func:`surrogate_importance` on ``distillation``.
    distillation : DistillationSet or DataFrame
        What the surrogates' permutation importance is measured on.
    k, n_repeats, random_state
        As in :func:`rank_agreement` and :func:`surrogate_importance`.

    Returns
    -------
    DataFrame
        One row per (method, surrogate): ``method, surrogate, spearman, spearman_ci,
        top_k_overlap, k, n_features, reason``; ``spearman_ci`` resamples the attributions'
        rows, the surrogate's permutation importance held fixed (see :func:`rank_agreement`).
    """
    if not attributions or not surrogates:
        raise ParameterError("pair needs at least one attribution and one surrogate")
    sur = dict(zip(map(str, surrogates), surrogate_importances(list(surrogates.values()), distillation,
                                                               n_repeats=n_repeats, random_state=random_state)))
    records = []
    for m, a in attributions.items():
        for s, ib in sur.items():
            # The attributions themselves, so that the interval resamples their rows.
            r = rank_agreement(a, ib, k=k, random_state=random_state)
            records.append({"method": str(m), "surrogate": s, "spearman": r.spearman, "spearman_ci": r.spearman_ci,
                            "top_k_overlap": r.top_k_overlap, "k": r.k, "n_features": r.n_features,
                            "reason": r.reason})
    return pd.DataFrame.from_records(
        records, columns=["method", "surrogate", "spearman", "spearman_ci", "top_k_overlap", "k", "n_features",
                          "reason"])

