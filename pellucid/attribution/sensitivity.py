"""Global sensitivity analysis of a model over the ranges of its raw features.

Where attributions explain the model at given rows, sensitivity analysis asks how much of the
output's variation over a whole input domain each feature accounts for, with the features drawn
independently over their ranges (the domain a :class:`~pellucid.schema.Schema` describes, or
bounds the user gives):

- :func:`sobol` -- variance-based first-order and total Sobol' indices from a Saltelli design on
  a scrambled Sobol' sequence, with bootstrap confidence intervals;
- :func:`morris` -- Morris elementary effects (``mu*``, ``mu``, ``sigma``), a cheaper screening;
- :func:`compare_importance` -- Spearman rank agreement of either with other global importance
  rankings (attributions, surrogates), for the report.

Every design is built in full first and sent to the model as one batched query through the
:class:`~pellucid.oracle.Oracle` (which may split it into its batches); nothing here loops over
rows.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.stats import qmc

from .._targets import target_indices
from .._validation import Interval, as_oracle, plain, validate_params
from ..errors import ParameterError, PellucidWarning
from ..oracle import Oracle
from ..schema import Kind, Schema
from ._base import Attribution
from .importance import rank_agreement

__all__ = ["sobol", "morris", "compare_importance", "SobolResult", "MorrisResult"]


# ---------------------------------------------------------------------------- the domain
@dataclass(frozen=True)
class _Dim:
    """One input dimension: how a coordinate u in [0, 1) becomes a raw value."""

    name: str
    kind: str  # "uniform", "integer" or "categories"
    low: float = 0.0
    high: float = 1.0
    categories: tuple = ()
    cum: np.ndarray | None = None  # cumulative category shares, last = 1

    def values(self, u: np.ndarray) -> np.ndarray:
        """Raw values for unit coordinates ``u`` (any shape)."""
        if self.kind == "uniform":
            return self.low + u * (self.high - self.low)
        if self.kind == "integer":
            # Every integer of [low, high] equally likely (rounding would halve the end points).
            return np.minimum(np.floor(self.low + u * (self.high - self.low + 1)), self.high)
        return np.asarray(self.categories, dtype=object)[self.index(u)]

    def index(self, u: np.ndarray) -> np.ndarray:
        """Category index for unit coordinates (inverse of the cumulative shares)."""
        return np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.categories) - 1)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "distribution": self.kind}
        if self.kind == "categories":
            d["categories"] = [plain(c, nonfinite="keep", other=None) for c in self.categories]
            d["shares"] = np.diff(np.r_[0.0, self.cum]).round(12).tolist()
        else:
            d["low"], d["high"] = float(self.low), float(self.high)
        return d


def _domain(bounds: Any) -> list[_Dim]:
    """Validate ``bounds`` (a mapping name -> (low, high), or a Schema) into dimensions."""
    if isinstance(bounds, Schema):
        return [_schema_dim(f) for f in bounds.features]
    if not isinstance(bounds, Mapping):
        raise ParameterError(
            f"bounds must be a mapping feature -> (low, high) or a Schema; got {type(bounds).__name__}")
    if not bounds:
        raise ParameterError("bounds is empty: give at least one feature -> (low, high)")
    dims = []
    for name, lh in bounds.items():
        if not isinstance(name, str) or not name:
            raise ParameterError(f"bounds: feature names must be non-empty strings; got {name!r}")
        try:
            low, high = (float(v) for v in lh)
        except (TypeError, ValueError):
            raise ParameterError(f"bounds[{name!r}] must be a pair (low, high) of numbers; got {lh!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ParameterError(f"bounds[{name!r}] = ({low}, {high}) is not finite")
        if not low < high:
            raise ParameterError(f"bounds[{name!r}] = ({low}, {high}): low must be below high")
        dims.append(_Dim(name, "uniform", low, high))
    return dims


def _schema_dim(f: Any) -> _Dim:
    if f.kind in (Kind.NUMERIC, Kind.INTEGER):
        low, high = f.low, f.high
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            raise ParameterError(f"schema feature {f.name!r} has no finite range (low={low}, high={high})")
        if low > high:
            raise ParameterError(f"schema feature {f.name!r} has low={low} above high={high}")
        if f.kind is Kind.INTEGER:
            return _Dim(f.name, "integer", float(math.ceil(low)), float(math.floor(high)))
        return _Dim(f.name, "uniform", float(low), float(high))  # low == high: a constant feature
    cats = tuple(f.categories or ())
    if f.kind is Kind.BINARY and not cats:
        cats = (0, 1)
    if not cats:
        raise ParameterError(f"schema feature {f.name!r} ({f.kind.value}) has no categories to draw from")
    shares = np.ones(len(cats))
    if f.frequencies is not None and len(f.frequencies) == len(cats):
        w = np.asarray(f.frequencies, dtype=float)
        if np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0:
            shares = w
    cum = np.cumsum(shares / shares.sum())
    cum[-1] = 1.0
    return _Dim(f.name, "categories", categories=cats, cum=cum)


def _frame(dims: list[_Dim], unit: np.ndarray) -> pd.DataFrame:
    """Raw rows for a (rows, d) array of unit coordinates."""
    return pd.DataFrame({d.name: d.values(unit[:, j]) for j, d in enumerate(dims)})


# ---------------------------------------------------------------------------- the model
def _as_oracle(model: Any) -> tuple[Oracle, bool]:
    """The model as an Oracle; True when pellucid made it (then one call takes the whole design)."""
    if isinstance(model, Oracle):
        return model, False
    if hasattr(model, "predict") and not callable(getattr(model, "forward", None)):
        return as_oracle(model), True  # scikit-learn: the estimator says which task
    return as_oracle(model, task="regression"), True


def _output_index(oracle: Oracle, output: Any) -> tuple[int | None, Any]:
    """Which answer column to analyse: (index, label), or (None, None) for a regressor."""
    if oracle.resolved_task == "regression":
        if output is not None:
            raise ParameterError(f"output={output!r} names a class, but the model is a regressor; leave output=None")
        return None, None
    classes = list(oracle.classes_)
    k = len(classes)
    if output is None:
        if k == 2:
            return 1, classes[1]
        raise ParameterError(f"the model has {k} classes {classes}; say which class's probability to analyse "
                             "with output= (a class label or an output index)")
    try:
        i = int(target_indices(output, 1, k, classes)[0])
    except ParameterError:
        raise ParameterError(f"output {output!r} is not one of the classes {classes} nor an output index "
                             f"in 0..{k - 1}") from None
    return i, classes[i]


def _evaluate(model: Any, design: pd.DataFrame, output: Any) -> tuple[np.ndarray, Any, int]:
    """The analysed output for every design row, from one batched query.

    Returns the values, the class label analysed (None for regression) and the model calls made.
    """
    oracle, own = _as_oracle(model)
    known = oracle.resolved_task == "regression" or (
        oracle.resolved_task is not None and oracle.resolved_classes is not None)
    if known:  # check output before spending the queries
        _output_index(oracle, output)
    if own and oracle.kind == "callable":
        oracle.batch_size_ = oracle.chunk_rows_ = len(design)  # a plain function takes the whole design at once
    calls = oracle.n_calls
    answer = oracle.query(design)
    calls = oracle.n_calls - calls
    index, label = _output_index(oracle, output)
    y = answer if index is None else answer[:, index]
    y = np.asarray(y, dtype=float).reshape(len(design))
    return y, label, calls


# ---------------------------------------------------------------------------- Sobol'
@dataclass
class SobolResult:
    """Sobol' sensitivity indices of one model output.

    Attributes
    ----------
    first, total : Series
        First-order and total indices by feature. ``first`` is the share of the output's variance
        explained by the feature alone, ``total`` the share it takes part in (alone or through
        interactions). For independent inputs ``0 <= first <= total``; sampling error can push
        small estimates slightly below zero.
    first_ci, total_ci : DataFrame
        Bootstrap percentile intervals, columns ``low`` and ``high``, index the features.
    second : DataFrame or None
        Second-order indices ``S_ij`` (upper triangle; NaN elsewhere) when ``second_order``.
    second_ci : dict or None
        ``{"low": DataFrame, "high": DataFrame}`` for ``second``.
    n : int
        Base sample size (rows of each of the matrices A and B).
    n_evaluations : int
        Model evaluations: ``n * (d + 2)``, or ``n * (2d + 2)`` with second-order indices.
    n_calls : int
        Model calls (batches) the evaluations took.
    variance, mean : float
        Variance and mean of the output over A and B.
    seconds : float
        Wall time, sampling, model and bootstrap included.
    output : label or None
        The class whose probability was analysed (None for a regression output).
    confidence, n_boot, random_state
        The settings used.
    domain : list of dict
        How each feature was drawn.
    """

    first: pd.Series
    total: pd.Series
    first_ci: pd.DataFrame
    total_ci: pd.DataFrame
    n: int
    n_evaluations: int
    variance: float
    seconds: float
    mean: float = math.nan
    n_calls: int = 0
    output: Any = None
    confidence: float = 0.95
    n_boot: int = 0
    random_state: Any = None
    second: pd.DataFrame | None = None
    second_ci: dict | None = None
    domain: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: ``first, first_low, first_high, total, total_low, total_high``."""
        return pd.DataFrame({
            "first": self.first, "first_low": self.first_ci["low"], "first_high": self.first_ci["high"],
            "total": self.total, "total_low": self.total_ci["low"], "total_high": self.total_ci["high"],
        })

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: every number as a float (NaN as None)."""
        d: dict[str, Any] = {
            "method": "sobol",
            "estimator": "Saltelli 2010 (first order), Jansen 1999 (total)",
            "features": [str(f) for f in self.first.index],
            "first": _json_series(self.first),
            "total": _json_series(self.total),
            "first_ci": _json_ci(self.first_ci),
            "total_ci": _json_ci(self.total_ci),
            "n": int(self.n),
            "n_evaluations": int(self.n_evaluations),
            "n_calls": int(self.n_calls),
            "variance": plain(float(self.variance)),
            "mean": plain(float(self.mean)),
            "seconds": float(self.seconds),
            "output": plain(self.output, nonfinite="keep", other=None),
            "confidence": float(self.confidence),
            "n_boot": int(self.n_boot),
            "random_state": self.random_state if isinstance(self.random_state, (int, type(None))) else None,
            "domain": self.domain,
        }
        if self.second is not None:
            d["second"] = {str(i): _json_series(self.second.loc[i]) for i in self.second.index}
            d["second_ci"] = {k: {str(i): _json_series(v.loc[i]) for i in v.index}
                              for k, v in (self.second_ci or {}).items()}
        return d


def _json_series(s: pd.Series) -> dict[str, float | None]:
    return {str(k): plain(float(v)) for k, v in s.items()}


def _json_ci(ci: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {str(k): {"low": plain(float(r["low"])), "high": plain(float(r["high"]))} for k, r in ci.iterrows()}


def sobol(model: Any, bounds: Mapping[str, tuple[float, float]] | Schema, n: int = 1024, *,
          output: Any = None, second_order: bool = False, confidence: float = 0.95, n_boot: int = 100,
          random_state: int | None = 0) -> SobolResult:
    """First-order and total Sobol' indices over independent uniform (or categorical) inputs.

    Parameters
    ----------
    model : Oracle or model
        An :class:`~pellucid.oracle.Oracle`, or anything it wraps: a scikit-learn estimator
        becomes ``Oracle(model)``, anything else (a torch module, a plain callable taking a
        DataFrame and returning one value per row) ``Oracle(model, task="regression")``. Wrap a
        classifier that is not a scikit-learn estimator in an Oracle yourself.
    bounds : mapping or Schema
        ``{feature: (low, high)}``, every feature uniform on its interval (finite, low < high);
        or a :class:`~pellucid.schema.Schema`: numeric features uniform on their observed
        ``[low, high]``, integer features uniform on the integers in it, binary, categorical and
        ordinal features drawn from their categories with the schema's observed ``frequencies``
        (equal shares when it has none). Missing values are never drawn. The model receives a
        DataFrame with these columns, in this order.
    n : int
        Base sample size, a power of two (the balance of a Sobol' sequence holds for powers of
        two only; anything else is refused). The model is evaluated ``n * (d + 2)`` times for
        ``d`` features, ``n * (2d + 2)`` with ``second_order``.
    output : class label or int, optional
        For a classifier, the class whose probability is analysed (a label or an output index).
        Default: the second class for two classes (the "positive" one, e.g. ``bad`` in
        ``("good", "bad")``); required for more than two. Must be None for a regressor.
    second_order : bool
        Also estimate the second-order indices ``S_ij`` (needs the extra matrices ``B_A^(i)``).
    confidence : float
        Level of the bootstrap percentile intervals, in (0, 1).
    n_boot : int
        Bootstrap resamples of the ``n`` base rows (0 for no intervals: they are then NaN).
    random_state : int or None
        Seed of the scrambling and of the bootstrap.

    Returns
    -------
    SobolResult

    Raises
    ------
    ParameterError
        Bounds that are not finite, low >= high, an unknown output class, n not a power of two,
        confidence outside (0, 1).

    Notes
    -----
    The design is Saltelli's: two independent matrices A and B (the two halves of the columns of
    a scrambled Sobol' sequence of dimension 2d) and, for each feature i, A_B^(i): A with
    column i taken from B. With ``f_A``, ``f_B``, ``f_ABi`` the model's answers and V the
    variance of ``f_A`` and ``f_B`` together,

    - first order (Saltelli et al. 2010): ``S_i = mean(f_B * (f_ABi - f_A)) / V``;
    - total (Jansen 1999): ``ST_i = mean((f_A - f_ABi) ** 2) / (2 V)``;
    - second order (Saltelli 2002): ``S_ij = mean(f_BAi * f_ABj - f_A * f_B) / V - S_i - S_j``.

    Categorical features are swapped between A and B like any column. The indices assume
    independent inputs; they describe the model over the whole box, not over the data.
    """
    start = time.perf_counter()
    dims = _domain(bounds)
    d = len(dims)
    validate_params("sobol", dict(n=n, n_boot=n_boot, confidence=confidence), {
        "n": [Interval(Integral, 2, None)], "n_boot": [Interval(Integral, 0, None)],
        "confidence": [Interval(Real, 0, 1, closed="neither")]})
    n, n_boot = int(n), int(n_boot)
    if n & (n - 1):
        below = 1 << (n.bit_length() - 1)
        raise ParameterError(f"n must be a power of two (Sobol' sequences are balanced only then); got {n}: "
                             f"use {below} or {below * 2}")
    if 2 * d > qmc.Sobol.MAXDIM:
        raise ParameterError(f"sobol handles at most {qmc.Sobol.MAXDIM // 2} features; got {d}")

    u = qmc.Sobol(2 * d, scramble=True, seed=random_state).random_base2(int(n).bit_length() - 1)
    a, b = u[:, :d], u[:, d:]
    diag = np.arange(d)
    ab = np.repeat(a[None], d, axis=0)  # (d, n, d): A with column i from B
    ab[diag, :, diag] = b.T
    blocks = [a[None], b[None], ab]
    if second_order:
        ba = np.repeat(b[None], d, axis=0)  # B with column i from A
        ba[diag, :, diag] = a.T
        blocks.append(ba)
    unit = np.concatenate(blocks).reshape(-1, d)
    y, label, calls = _evaluate(model, _frame(dims, unit), output)
    y = y.reshape(-1, n)
    f_a, f_b, f_ab = y[0], y[1], y[2:2 + d]
    f_ba = y[2 + d:] if second_order else None

    names = [dm.name for dm in dims]
    index = pd.Index(names, name="feature")
    variance = float(np.var(np.r_[f_a, f_b]))
    if variance <= 0:
        warnings.warn("the model's output does not vary over the bounds: the Sobol' indices are undefined (NaN)",
                      PellucidWarning, stacklevel=2)
    first, total, second = _sobol_estimates(f_a[None], f_b[None], f_ab[:, None],
                                            None if f_ba is None else f_ba[:, None])
    nan_ci = np.full((d, 2), np.nan)
    first_ci, total_ci = nan_ci, nan_ci.copy()
    second_lo = second_hi = None
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        idx = rng.integers(0, n, size=(n_boot, n))
        bf, bt, bs = _sobol_estimates(f_a[idx], f_b[idx], f_ab[:, idx], None if f_ba is None else f_ba[:, idx])
        q = [(1 - confidence) / 2, (1 + confidence) / 2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN when the variance is zero
            first_ci = np.nanquantile(bf, q, axis=1).T
            total_ci = np.nanquantile(bt, q, axis=1).T
            if bs is not None:
                second_lo, second_hi = np.nanquantile(bs, q, axis=2)

    def ci(v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(v, index=index, columns=["low", "high"])

    res = SobolResult(
        first=pd.Series(first[:, 0], index=index, name="first"),
        total=pd.Series(total[:, 0], index=index, name="total"),
        first_ci=ci(first_ci), total_ci=ci(total_ci), n=n, n_evaluations=int(y.size),
        variance=variance, seconds=0.0, mean=float(np.mean(np.r_[f_a, f_b])), n_calls=calls, output=label,
        confidence=float(confidence), n_boot=n_boot, random_state=random_state,
        domain=[dm.describe() for dm in dims],
    )
    if second is not None:
        frame = lambda v: pd.DataFrame(v, index=index, columns=index.rename(None))  # noqa: E731
        res.second = frame(second[:, :, 0])
        if second_lo is not None:
            res.second_ci = {"low": frame(second_lo), "high": frame(second_hi)}
        else:
            res.second_ci = {"low": frame(np.full((d, d), np.nan)), "high": frame(np.full((d, d), np.nan))}
    res.seconds = time.perf_counter() - start
    return res


def _sobol_estimates(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray,
                     f_ba: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Indices for B resamples at once.

    ``f_a``, ``f_b``: (B, n); ``f_ab``, ``f_ba``: (d, B, n). Returns first and total of shape
    (d, B) and second order of shape (d, d, B) (upper triangle, NaN elsewhere) or None.
    """
    var = np.var(np.concatenate([f_a, f_b], axis=1), axis=1)  # (B,)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(var > 0, var, np.nan)
        first = np.mean(f_b * (f_ab - f_a), axis=2) / v
        total = 0.5 * np.mean((f_a - f_ab) ** 2, axis=2) / v
        second = None
        if f_ba is not None:
            d = f_ab.shape[0]
            second = np.full((d, d, f_a.shape[0]), np.nan)
            base = np.mean(f_a * f_b, axis=1)  # (B,)
            for i in range(d - 1):  # one feature against all later ones, vectorised over rows
                vij = np.mean(f_ba[i][None] * f_ab[i + 1:], axis=2) - base  # (d-i-1, B)
                second[i, i + 1:] = vij / v - first[i][None] - first[i + 1:]
    return first, total, second


# ---------------------------------------------------------------------------- Morris
@dataclass
class MorrisResult:
    """Morris elementary-effect screening of one model output.

    Attributes
    ----------
    mu_star : Series
        Mean absolute elementary effect by feature: the overall influence.
    mu : Series
        Mean signed elementary effect (effects of opposite sign cancel here, not in ``mu_star``).
    sigma : Series
        Standard deviation of the elementary effects (ddof=1): nonlinearity or interactions.
    r, levels : int
        Trajectories and grid levels.
    delta : float
        Step on the unit scale, ``levels / (2 (levels - 1))``.
    n_evaluations, n_calls : int
        ``r * (d + 1)`` model evaluations, in ``n_calls`` model calls.
    seconds : float
    output : label or None
        The class whose probability was analysed (None for a regression output).
    effects : DataFrame
        The elementary effects, one row per trajectory, one column per feature.
    domain : list of dict
        How each feature was drawn.
    """

    mu_star: pd.Series
    mu: pd.Series
    sigma: pd.Series
    r: int
    levels: int
    delta: float
    n_evaluations: int
    seconds: float
    n_calls: int = 0
    output: Any = None
    random_state: Any = None
    effects: pd.DataFrame | None = None
    domain: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: ``mu_star, mu, sigma``."""
        return pd.DataFrame({"mu_star": self.mu_star, "mu": self.mu, "sigma": self.sigma})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (NaN as None); the per-trajectory effects are left out."""
        return {
            "method": "morris",
            "features": [str(f) for f in self.mu_star.index],
            "mu_star": _json_series(self.mu_star),
            "mu": _json_series(self.mu),
            "sigma": _json_series(self.sigma),
            "r": int(self.r), "levels": int(self.levels), "delta": float(self.delta),
            "n_evaluations": int(self.n_evaluations), "n_calls": int(self.n_calls),
            "seconds": float(self.seconds), "output": plain(self.output, nonfinite="keep", other=None),
            "random_state": self.random_state if isinstance(self.random_state, (int, type(None))) else None,
            "domain": self.domain,
        }


def morris(model: Any, bounds: Mapping[str, tuple[float, float]] | Schema, r: int = 20, levels: int = 4, *,
           output: Any = None, random_state: int | None = 0) -> MorrisResult:
    """Morris elementary effects on ``r`` random one-at-a-time trajectories.

    Parameters
    ----------
    model, bounds, output
        As in :func:`sobol`.
    r : int
        Trajectories (>= 2). The model is evaluated ``r * (d + 1)`` times, in one batched query.
    levels : int
        Grid levels per feature on the unit scale (even, >= 2); the step is
        ``delta = levels / (2 (levels - 1))`` of the feature's range, so every step lands on the
        grid.
    random_state : int or None
        Seed of the trajectories.

    Returns
    -------
    MorrisResult

    Notes
    -----
    Each trajectory starts at a random grid point and changes the features one at a time in a
    random order, each by ``+delta`` or ``-delta`` (whichever stays inside the range). A numeric
    feature's elementary effect is ``(f(x + delta e_i) - f(x)) / delta`` with delta on the unit
    scale: the change of the output per whole range of the feature, so for ``y = sum c_i x_i``
    it is exactly ``c_i (high_i - low_i)``. Integer features take the integer their unit
    coordinate maps to (as in :func:`sobol`), so their effects are approximately per range.

    A categorical, ordinal or binary feature (from a Schema) has no distance to divide by: its
    elementary effect is ``f(x with category c') - f(x with category c)``, the first category
    ``c`` drawn with the schema's frequencies and ``c'`` drawn among the other categories with
    theirs, renormalised (a full switch, the analogue of a change over the whole range). For a
    binary feature that is ``f(1) - f(0)`` or its negative, the same as a numeric 0/1 feature.

    The trajectories are random, not Campolongo's optimised spread.
    """
    start = time.perf_counter()
    dims = _domain(bounds)
    d = len(dims)
    validate_params("morris", dict(r=r, levels=levels), {"r": [Interval(Integral, 2, None)],
                                                         "levels": [Interval(Integral, 2, None)]})
    r, levels = int(r), int(levels)
    if levels % 2:
        raise ParameterError(f"levels must be even (the step levels / (2 (levels - 1)) falls on the grid only "
                             f"then); got {levels}")
    delta = levels / (2 * (levels - 1))
    rng = np.random.default_rng(random_state)
    half = levels // 2
    sign = rng.choice([-1.0, 1.0], size=(r, d))
    # Up: start on the lower half of the grid; down: on the upper half. Both end on the grid.
    level = rng.integers(0, half, size=(r, d)) + np.where(sign > 0, 0, half)
    base = level / (levels - 1)
    rank = np.argsort(rng.random((r, d)), axis=1).argsort(axis=1)  # step at which each feature moves
    moved = rank[:, None, :] < np.arange(d + 1)[None, :, None]  # (r, d+1, d)
    unit = np.clip(base[:, None, :] + moved * (sign * delta)[:, None, :], 0.0, 1.0)

    raw = {}
    for j, dm in enumerate(dims):
        if dm.kind != "categories":
            raw[dm.name] = dm.values(unit[:, :, j].ravel())
            continue
        before, after = _category_switch(dm, rng, r)
        cats = np.asarray(dm.categories, dtype=object)
        col = np.where(moved[:, :, j], cats[after][:, None], cats[before][:, None])
        raw[dm.name] = col.ravel()
    y, label, calls = _evaluate(model, pd.DataFrame(raw), output)
    y = y.reshape(r, d + 1)

    step_of = rank  # feature j moves between points rank and rank + 1
    rows = np.arange(r)[:, None]
    diff = y[rows, step_of + 1] - y[rows, step_of]  # (r, d)
    categorical = np.array([dm.kind == "categories" for dm in dims])
    effects = np.where(categorical[None], diff, diff / (sign * delta))
    index = pd.Index([dm.name for dm in dims], name="feature")
    return MorrisResult(
        mu_star=pd.Series(np.abs(effects).mean(axis=0), index=index, name="mu_star"),
        mu=pd.Series(effects.mean(axis=0), index=index, name="mu"),
        sigma=pd.Series(effects.std(axis=0, ddof=1), index=index, name="sigma"),
        r=r, levels=levels, delta=float(delta), n_evaluations=int(y.size), seconds=time.perf_counter() - start,
        n_calls=calls, output=label, random_state=random_state,
        effects=pd.DataFrame(effects, columns=index), domain=[dm.describe() for dm in dims],
    )


def _category_switch(dm: _Dim, rng: np.random.Generator, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Per trajectory, a category and a different one (by the shares, renormalised)."""
    m = len(dm.categories)
    before = dm.index(rng.random(r))
    if m == 1:
        return before, before
    shares = np.diff(np.r_[0.0, dm.cum])
    w = np.repeat(shares[None], r, axis=0)
    w[np.arange(r), before] = 0.0
    total = w.sum(axis=1, keepdims=True)
    # Other categories with no observed share: pick among them evenly.
    w = np.where(total > 0, w, (np.arange(m)[None] != before[:, None]).astype(float))
    cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    after = np.minimum((rng.random(r)[:, None] >= cum).sum(axis=1), m - 1)
    after = np.where(after == before, (before + 1) % m, after)  # guard against rounding at the edge
    return before, after


# ---------------------------------------------------------------------------- agreement
def compare_importance(sensitivity: SobolResult | MorrisResult | pd.Series | Mapping[str, float],
                       importances: Mapping[str, Any] | pd.Series | Attribution, *, k: int = 5,
                       strict: bool = True) -> pd.DataFrame:
    """Rank agreement of a sensitivity ranking with other global importance rankings.

    Parameters
    ----------
    sensitivity : SobolResult, MorrisResult, Series or mapping
        Ranked by the total Sobol' indices (negative estimates clipped to 0), or by Morris
        ``mu_star``, or as given.
    importances : mapping name -> ranking, or a single ranking
        Each ranking a Series or mapping feature -> importance (larger is more important), or an
        :class:`~pellucid.attribution.Attribution` (its mean absolute attribution), e.g. the
        global importances of attribution methods and the permutation importances of surrogates.
        A single ranking is named ``"importance"``.
    k : int
        Size of the top sets, as in :func:`~pellucid.attribution.importance.rank_agreement`.
    strict : bool
        Refuse rankings over different features (default), or compare on the common ones.

    Returns
    -------
    DataFrame
        One row per ranking: ``importance, spearman, top_k_overlap, k, n_features, reason``.
    """
    if isinstance(sensitivity, SobolResult):
        ref = sensitivity.total.clip(lower=0)
        if ref.isna().any():
            raise ParameterError("the Sobol' indices are NaN (the model's output does not vary): nothing to rank")
    elif isinstance(sensitivity, MorrisResult):
        ref = sensitivity.mu_star
    elif isinstance(sensitivity, (pd.Series, Mapping)):
        ref = sensitivity
    else:
        raise ParameterError(f"sensitivity must be a SobolResult, a MorrisResult or a Series of importances; "
                             f"got {type(sensitivity).__name__}")
    if isinstance(importances, (pd.Series, Attribution)) or (
            isinstance(importances, Mapping) and importances
            and all(isinstance(v, (int, float, np.number)) for v in importances.values())):
        importances = {"importance": importances}
    if not isinstance(importances, Mapping) or not importances:
        raise ParameterError("importances must be a non-empty mapping name -> ranking (Series, mapping or "
                             f"Attribution), or one ranking; got {type(importances).__name__}")
    records = []
    for name, imp in importances.items():
        try:
            agreement = rank_agreement(ref, imp, k=k, strict=strict)
        except ParameterError as e:
            raise ParameterError(f"importance {name!r}: {e}") from None
        records.append({"importance": str(name), "spearman": agreement.spearman,
                        "top_k_overlap": agreement.top_k_overlap, "k": agreement.k,
                        "n_features": agreement.n_features, "reason": agreement.reason})
    return pd.DataFrame.from_records(
        records, columns=["importance", "spearman", "top_k_overlap", "k", "n_features", "reason"])
