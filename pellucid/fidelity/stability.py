"""Bootstrap stability: would the same rules come back from slightly different data?

A surrogate's rules are only worth reading if they are not an accident of the rows it was
fitted on. :func:`stability` refits copies of a surrogate (same parameters) on bootstrap
resamples of the training rows of its distillation set and measures three things:

- for each rule of the original surrogate, the share of refits that contain a matching rule
  (see :func:`rule_matches` for what "matching" means);
- for each condition "feature direction" (``income <=``, ``home in``), the share of refits
  that use it somewhere;
- how far the refits' predictions on the held-out rows agree with one another and with the
  original's.

The held-out rows never enter a refit, as they never enter the original fit.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import sys
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._validation import plain as _plain
from ..errors import ParameterError
from ..executor import Executor, OnThread, as_executor
from ..extraction.dataset import DistillationSet
from ..extraction.rules import NUMERIC_OPS, Condition, Rule, merge_conditions
from ..schema import Schema
from ..surrogates.base import predict_each
from .intervals import N_BOOT, check_seed, percentile_interval, wilson
from .metrics import check_same_set

#: Default threshold tolerance, as a share of each feature's observed range.
DEFAULT_TOLERANCE = 0.05

# Condition directions, as printed in the per-condition table.
_DIRECTION_LABEL = {"upper": "<=", "lower": ">", "set": "in", "missing": "missing"}


# ---------------------------------------------------------------------------- rule matching
def _condition_keys(conditions: tuple[Condition, ...], schema: Schema) -> dict[tuple[str, str], Any]:
    """A rule's conjunction in a normal form: (feature, direction) -> value.

    Directions are ``upper`` (``<``, ``<=``), ``lower`` (``>``, ``>=``), ``set`` (``in`` or
    ``not in``, stored as the set of admitted categories) and ``missing`` (a condition that
    only speaks of missingness, stored as which known values pass and whether missing ones
    do). Conditions on one feature are merged first, so ``x <= 3 and x <= 5`` is ``x <= 3``.
    """
    cats = {f.name: f.categories for f in schema if f.is_categorical and f.categories is not None}
    merged = merge_conditions(conditions, order=schema.names, domains=cats)
    out: dict[tuple[str, str], Any] = {}
    for c in merged:
        known = c.known_values
        if known != "some":
            if known == "all" and c.missing:
                continue  # admits every row: says nothing
            out[(c.feature, "missing")] = (known, bool(c.missing))
        elif c.op in NUMERIC_OPS:
            out[(c.feature, "upper" if c.op in ("<", "<=") else "lower")] = float(c.value)
        else:
            admitted = set(c.value)
            if c.op == "not in":
                domain = cats.get(c.feature)
                if domain is None:
                    # No known domain: compare the written form.
                    out[(c.feature, "set")] = ("not in", frozenset(c.value))
                    continue
                admitted = set(domain) - admitted
            out[(c.feature, "set")] = ("in", frozenset(admitted))
    return out


def _feature_spans(schema: Schema) -> dict[str, float]:
    spans = {}
    for f in schema:
        if f.is_numeric and f.low is not None and f.high is not None:
            spans[f.name] = float(f.high) - float(f.low)
    return spans


def _outcomes_match(a: Any, b: Any, classes: Any, outcome_tol: float | None) -> bool:
    if classes is not None:
        labels = list(classes)
        if a in labels and b in labels:
            return bool(a == b)
    if isinstance(a, Real) and isinstance(b, Real) and not isinstance(a, bool) and not isinstance(b, bool):
        if outcome_tol is None:
            return bool(a == b)
        return abs(float(a) - float(b)) <= outcome_tol
    return bool(a == b)


def rule_matches(
    a: Rule,
    b: Rule,
    schema: Schema,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    classes: Any = None,
    outcome_tolerance: float | None = None,
) -> bool:
    """Whether two rules say the same thing, up to small moves of their thresholds.

    Two rules match when

    - their outcomes are equal (class labels), or differ by at most ``outcome_tolerance``
      (numbers: regression values, additive weights);
    - after merging each rule's conditions per feature, they test the same features in the
      same directions: an upper bound (``<``, ``<=``), a lower bound (``>``, ``>=``), a set
      of categories (``in`` and ``not in`` compared as the set of categories admitted), or
      missingness alone (``x is missing``);
    - every numeric threshold differs by at most ``tolerance`` × the feature's observed range
      (``Feature.high - Feature.low`` in the schema); sets of categories are equal.

    Whether missing values pass a threshold or set condition is not compared: trees route
    missing values to whichever side a sample favours, and that choice is not what a reader
    takes a rule to say. Strictness (``<`` versus ``<=``) is not compared either.

    Parameters
    ----------
    a, b : Rule
        The rules to compare.
    schema : Schema
        Gives each feature's range and categories.
    tolerance : float
        Largest threshold move, as a share of the feature's range.
    classes : sequence, optional
        The class labels; outcomes that are labels are compared for equality.
    outcome_tolerance : float, optional
        Largest difference of numeric outcomes; ``None`` asks for equality.

    Returns
    -------
    bool
    """
    if tolerance < 0:
        raise ParameterError(f"tolerance must be >= 0, got {tolerance}")
    spans = _feature_spans(schema)
    return _match_keys(
        _condition_keys(a.conditions, schema),
        _condition_keys(b.conditions, schema),
        spans,
        tolerance,
    ) and _outcomes_match(a.outcome, b.outcome, classes, outcome_tolerance)


def _match_keys(ka: dict, kb: dict, spans: dict[str, float], tolerance: float) -> bool:
    if ka.keys() != kb.keys():
        return False
    for key, va in ka.items():
        vb = kb[key]
        feature, direction = key
        if direction in ("upper", "lower"):
            tol = tolerance * spans.get(feature, 0.0)
            # A hair of slack so that a tolerance of 0 still matches equal thresholds.
            if abs(va - vb) > tol + 1e-12 * max(1.0, abs(va)):
                return False
        elif va != vb:
            return False
    return True


# ---------------------------------------------------------------------------- result
@dataclass
class Stability:
    """How much of a surrogate survives refitting on bootstrap resamples.

    Attributes
    ----------
    surrogate : str
        Name of the surrogate.
    task : str
        ``classification`` or ``regression``.
    n_boot : int
        Refits.
    tolerance : float
        Threshold tolerance used to match rules (share of each feature's range).
    random_state : int or None
        Seed of the resampling.
    rule_stability : float or None
        Mean over the original's rules of the share of refits containing a matching rule
        (None when the original has no rules).
    prediction_agreement : float
        Mean over pairs of refits of how far their predictions on ``rows`` agree: the share of
        rows with the same label (classification), or ``1 - mean squared difference /
        variance of the network's outputs`` (regression, on the scale of R²: 1 for equal
        predictions, 0 for differences as large as the network's own spread).
    agreement_with_original : float
        The same measure between each refit and the original surrogate, averaged over refits.
    measure : str
        ``label agreement`` or ``1 - MSD/var`` (regression), naming the two measures above.
    rows : str
        ``holdout`` (the held-out observed rows) or ``all`` (a set without a holdout).
    n_rows : int
        Rows the predictions were compared on.
    rules : list of dict
        Per original rule: ``index``, ``text``, ``outcome``, ``share`` (refits with a matching
        rule) and ``shape_share`` (refits with a rule of the same outcome, features and
        directions, whatever its thresholds and sets).
    conditions : list of dict
        Per ``feature direction`` (``income <=``, ``income >``, ``home in``, ``income
        missing``) used by the original or any refit: ``share`` of refits using it in some
        rule, ``n_original`` (the original's rules using it) and ``mean_refit`` (rules per
        refit using it). Sorted by share, highest first.
    per_refit : list of dict
        Per refit: ``n_rules``, ``n_conditions``, ``agreement_with_original`` and
        ``fidelity`` (label agreement with the network, or R², on ``rows``).
    rule_stability_ci, prediction_agreement_ci, agreement_with_original_ci : list or None
        Intervals of the three figures at level ``confidence``; the ``rules`` entries carry
        ``share_ci`` and ``shape_share_ci``, the ``conditions`` entries ``share_ci``.
        Shares of refits have Wilson score intervals over the ``n_boot`` refits; the mean
        shares (``rule_stability``, and for classification ``agreement_with_original``, a
        mean over refits of values in [0, 1]) a Wilson interval over the refits too, which is
        conservative for a mean of values in [0, 1]; ``prediction_agreement``, a mean over
        *pairs* of refits, one over half as many refits (Hoeffding: the variance of a mean
        over pairs is at most twice that of a mean over as many independent draws). For
        regression the two agreement figures are not shares: percentile bootstrap intervals
        over resampled refits.
    confidence : float
        Level of the intervals.
    intervals : dict
        ``level`` and, per estimate, the ``methods`` of its interval.
    refits : list of Surrogate
        The fitted refits (not part of :meth:`to_dict`).
    """

    surrogate: str
    task: str
    n_boot: int
    tolerance: float
    random_state: int | None
    rule_stability: float | None
    prediction_agreement: float
    agreement_with_original: float
    measure: str
    rows: str
    n_rows: int
    rules: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    per_refit: list[dict[str, Any]] = field(default_factory=list)
    rule_stability_ci: list[float] | None = None
    prediction_agreement_ci: list[float] | None = None
    agreement_with_original_ci: list[float] | None = None
    confidence: float = 0.95
    intervals: dict[str, Any] = field(default_factory=dict)
    refits: list[Any] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every number as plain JSON values; the fitted refits are left out."""
        return _plain(
            {
                "surrogate": self.surrogate,
                "task": self.task,
                "n_boot": self.n_boot,
                "tolerance": self.tolerance,
                "random_state": self.random_state,
                "rule_stability": self.rule_stability,
                "rule_stability_ci": self.rule_stability_ci,
                "prediction_agreement": self.prediction_agreement,
                "prediction_agreement_ci": self.prediction_agreement_ci,
                "agreement_with_original": self.agreement_with_original,
                "agreement_with_original_ci": self.agreement_with_original_ci,
                "confidence": self.confidence,
                "intervals": self.intervals,
                "measure": self.measure,
                "rows": self.rows,
                "n_rows": self.n_rows,
                "rules": self.rules,
                "conditions": self.conditions,
                "per_refit": self.per_refit,
            }
        )


# ---------------------------------------------------------------------------- refitting
def clone_surrogate(surrogate: Any, **overrides: Any) -> Any:
    """An unfitted copy with the same parameters (and name), some of them overridden."""
    params = {**surrogate.get_params(), **overrides}
    new = type(surrogate)(**params)
    if getattr(surrogate, "name", None) != getattr(type(surrogate), "name", None):
        new.name = surrogate.name
    return new


def _takes(cls: type, param: str) -> bool:
    try:
        return param in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _bootstrap_indices(train: DistillationSet, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row positions of each resample, drawn with replacement within each strategy, so every
    resample keeps the set's mix of observed and synthetic rows."""
    groups = [np.flatnonzero(train.source == s) for s in pd.unique(train.source)]
    out = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        out.append(np.sort(idx))
    return out


def _resample(train: DistillationSet, idx: np.ndarray, b: int) -> DistillationSet:
    return DistillationSet(
        rows=train.rows.iloc[idx].reset_index(drop=True),
        outputs=train.outputs[idx],
        weights=train.weights[idx],
        source=train.source[idx],
        is_holdout=np.zeros(len(idx), dtype=bool),
        schema=train.schema,
        task=train.task,
        classes=train.classes,
        n_queries=0,
        params={**train.params, "bootstrap": b},
        origin=train.origin[idx],
    )


class _Pickled(bytes):
    """A set's training rows pickled once, in the caller's thread; each worker process reads
    them back once (:func:`_unpickled`)."""


@functools.lru_cache(maxsize=4)
def _unpickled(blob: _Pickled) -> DistillationSet:
    return pickle.loads(blob)


def _refit(clone: Any, train: DistillationSet | _Pickled, idx: np.ndarray, b: int,
           sizes: tuple[int, ...] | None = None) -> Any:
    """``clone`` fitted on resample ``b``; with ``sizes``, the list of its fits at each size
    (smallest first), read off one fit at the largest (:meth:`Surrogate.fit_sizes`)."""
    rows = _resample(_unpickled(train) if isinstance(train, _Pickled) else train, idx, b)
    return clone.fit(rows) if sizes is None else clone.fit_sizes(rows, sizes)


# ---------------------------------------------------------------------------- agreement
def _label_codes(pred: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return pd.Index(list(classes), dtype=object).get_indexer(np.asarray(pred, dtype=object))


def _pairwise_label_agreement(codes: np.ndarray) -> float:
    """Mean over pairs of rows (refits) of the share of columns where they are equal;
    counted per column from how many refits give each label."""
    b = codes.shape[0]
    pairs = b * (b - 1) / 2
    same = np.zeros(codes.shape[1])
    for c in np.unique(codes):
        k = (codes == c).sum(axis=0)
        same += k * (k - 1) / 2
    return float(same.mean() / pairs)


def _r2_scale(msd: float, var: float) -> float:
    # Like scikit-learn's r2_score on constant targets: 1 for a perfect match, else 0.
    if var <= 0:
        return 1.0 if msd <= 0 else 0.0
    return float(1.0 - msd / var)


def _pairwise_value_agreement(values: np.ndarray, var: float) -> float:
    """1 - (mean over pairs of refits of the mean squared difference) / var."""
    b = values.shape[0]
    centred = values - values.mean(axis=0, keepdims=True)
    # Sum over pairs i < j of (v_i - v_j)^2 equals b × sum of squared deviations.
    pair_sq = b * (centred**2).sum(axis=0)
    msd = float(pair_sq.mean() / (b * (b - 1) / 2))
    return _r2_scale(msd, var)


def _refit_bootstrap(values: np.ndarray, with_orig: np.ndarray, var: float, pairwise: float, confidence: float,
                     seed: int) -> tuple[list | None, list | None]:
    """Percentile bootstrap intervals of the regression agreement figures, resampling the
    refits: the mean of the per-refit agreement with the original, and 1 - (mean over pairs
    of resampled refits, pairs of one refit with itself left out, of their mean squared
    difference) / var."""
    b = values.shape[0]
    sq = (values**2).sum(axis=1)
    msd = np.maximum(sq[:, None] + sq[None, :] - 2 * values @ values.T, 0.0) / values.shape[1]
    idx = np.random.default_rng(seed).integers(0, b, size=(N_BOOT, b))
    orig_reps = with_orig[idx].mean(axis=1)
    pair_reps = np.full(N_BOOT, np.nan)
    iu = np.triu_indices(b, 1)
    for r, draw in enumerate(idx):
        a, c = draw[iu[0]], draw[iu[1]]
        keep = a != c
        if keep.any():
            pair_reps[r] = _r2_scale(float(msd[a[keep], c[keep]].mean()), var)
    return (percentile_interval(orig_reps, float(with_orig.mean()), confidence),
            percentile_interval(pair_reps, pairwise, confidence))


# ---------------------------------------------------------------------------- stability
def stability(
    surrogate: Any,
    dset: DistillationSet,
    n_boot: int = 20,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    verbose: int = 1,
    confidence: float = 0.95,
    executor: Executor | None = None,
) -> Stability:
    """Refit a surrogate on bootstrap resamples and measure what comes back.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted surrogate; its rules are the ones looked for in the refits.
    dset : DistillationSet
        The set it was fitted on. Resamples are drawn, with replacement, from its training
        rows, separately within each strategy (observed, perturb, ...) so every resample
        keeps the same mix; its held-out rows are where predictions are compared and never
        enter a refit. A set without a holdout is compared on all its rows.
    n_boot : int
        Refits (at least 2).
    random_state : int, optional
        Seeds the resampling. Refits keep the surrogate's own parameters, ``random_state``
        included; a surrogate whose ``random_state`` is None gets one seed per refit drawn
        from this one, so the same call gives the same result.
    n_jobs : int, optional
        Refits run in this many local processes; None runs them one after another. The
        result does not depend on it.
    tolerance : float
        Largest move of a numeric threshold for a rule to count as the same, as a share of
        the feature's observed range (see :func:`rule_matches`). Regression outcomes (and
        other numeric outcomes) may move by the same share of the range of the network's
        outputs on the training rows.
    verbose : int
        0 for silence; otherwise a progress bar on a terminal.
    confidence : float
        Level of the intervals (see :class:`Stability`).
    executor : Executor, optional
        Where the refits run (:mod:`pellucid.executor`); overrides ``n_jobs``. The result
        does not depend on it.

    Returns
    -------
    Stability

    Raises
    ------
    ParameterError
        When ``n_boot`` or ``tolerance`` is out of range, or the surrogate was fitted on
        another schema or task than ``dset`` holds.
    NotFittedError
        When the surrogate is not fitted.
    """
    return stabilities([(surrogate, dset)], n_boot, random_state, n_jobs, tolerance=tolerance, verbose=verbose,
                       confidence=confidence, executor=executor)[0]


def stabilities(
    fits: Sequence[tuple[Any, DistillationSet]],
    n_boot: int = 20,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    verbose: int = 1,
    confidence: float = 0.95,
    executor: Executor | None = None,
) -> list[Stability]:
    """:func:`stability` of several fitted surrogates, each on its own set, with every refit of
    all of them in one map over the executor (so that they spread over its workers together).
    Each result is what :func:`stability` gives for that surrogate alone."""
    n_boot, tolerance = _checked(n_boot, tolerance)
    run = as_executor(executor, n_jobs)
    calls, slots = _refit_calls(fits, n_boot, random_state, run)
    quiet = verbose <= 0 or not sys.stderr.isatty()
    names = ", ".join(s.name for s, _ in fits)
    refits = run.map(_refit, tqdm(calls, desc=f"stability of {names}", disable=quiet, leave=False))
    return _measured_each(fits, _per_fit(refits, slots, n_boot), n_boot, random_state, tolerance, confidence)


class PendingStabilities:
    """Refits under way in a background thread of this process, on an executor whose work runs
    elsewhere (worker processes, a cluster): :meth:`result` waits for them and measures, as
    :func:`stabilities` would have. Made by :func:`start_stabilities`."""

    def __init__(self, run: Executor, calls: list[tuple], finish: Any) -> None:
        #: Where the refits run.
        self.executor = run
        self._finish = finish
        self._refits = OnThread(lambda: run.map(_refit, calls), "pellucid-stability")

    @property
    def started(self) -> float:
        return self._refits.started

    @property
    def seconds(self) -> float | None:
        """Wall seconds from the start of the refits until the last came back (None before)."""
        return self._refits.seconds

    def result(self) -> list[Stability]:
        """Wait for the refits; the stabilities, in the order of the fits (or the refits' error)."""
        return self._finish(self._refits.result())

    def join(self) -> None:
        """Wait for the thread to end, whatever its refits gave (for a run that is stopping)."""
        self._refits.join()


def start_stabilities(
    fits: Sequence[tuple[Any, DistillationSet]],
    n_boot: int = 20,
    random_state: int | None = 0,
    *,
    executor: Executor,
    tolerance: float = DEFAULT_TOLERANCE,
    confidence: float = 0.95,
) -> PendingStabilities:
    """:func:`stabilities` with the refits sent to ``executor`` from a background thread, so
    that this process goes on with other work meanwhile; ``executor`` must run its work
    outside this process (:meth:`Executor.runs_elsewhere`). The calls are checked and made
    here: an invalid argument raises now, and nothing the caller goes on using is read by the
    thread (each local call carries its own pickled copy of the training rows)."""
    if not executor.runs_elsewhere():
        raise ParameterError(f"start_stabilities needs an executor that runs work outside this process; {executor!r} "
                             "runs it here: call stabilities()")
    n_boot, tolerance = _checked(n_boot, tolerance)
    calls, slots = _refit_calls(fits, n_boot, random_state, executor, pickled=executor.client is None)
    fits = list(fits)
    return PendingStabilities(executor, calls, lambda refits: _measured_each(
        fits, _per_fit(refits, slots, n_boot), n_boot, random_state, tolerance, confidence))


def _checked(n_boot: Any, tolerance: Any) -> tuple[int, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ParameterError(f"n_boot must be an integer >= 2 (pairs of refits are compared), got {n_boot!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not tolerance >= 0:
        raise ParameterError(f"tolerance must be a number >= 0, got {tolerance!r}")
    return int(n_boot), float(tolerance)


def _refit_calls(fits: Sequence[tuple[Any, DistillationSet]], n_boot: int, random_state: int | None, run: Executor,
                 pickled: bool = False) -> tuple[list[tuple], list[tuple[int, int | None]]]:
    """The ``_refit`` calls of every fit, ``n_boot`` per refit group, and each fit's slot in
    their results: ``(group, position)``, position None for a group of one fit (whose calls
    return the fit) or the fit's place among the sizes its group's calls return.

    Fits of one class that grows one rule at a time (``size_path``) on the same set, alike but
    for their size, form one group: each resample is fitted once at the group's largest size
    and the smaller fits are read off it, as a fresh fit at each size would give (the seeds
    and resamples of every fit on a set are the same). Each set's training rows are shared
    over the executor once (``pickled``: as pickled bytes, read back once per worker process)."""
    groups: dict[Any, list[int]] = {}
    for i, (surrogate, dset) in enumerate(fits):
        if not isinstance(dset, DistillationSet):
            raise ParameterError(f"stability expects a DistillationSet from pellucid.distill, got {type(dset).__name__}")
        surrogate._check_fitted()
        check_same_set(surrogate, dset)
        groups.setdefault(_group_key(surrogate, dset, i), []).append(i)
    calls, shared, slots = [], {}, [(0, None)] * len(fits)
    for g, members in enumerate(groups.values()):
        surrogate, dset = fits[members[0]]
        train = dset.train if dset.is_holdout.any() else dset
        if len(train) == 0:
            raise ParameterError("stability: the distillation set has no training rows to resample")
        rng = np.random.default_rng(random_state)
        boot_idx = _bootstrap_indices(train, n_boot, rng)
        seeds = rng.integers(0, 2**31 - 1, size=n_boot)
        seeded = _takes(type(surrogate), "random_state") and surrogate.get_params().get("random_state") is None
        if id(dset) not in shared:  # a set is sent once, not once per refit
            shared[id(dset)] = (_Pickled(pickle.dumps(train, protocol=pickle.HIGHEST_PROTOCOL)) if pickled
                                else run.share(train))
        sizes = None
        if len(members) > 1:
            param = type(surrogate).size_param
            sizes = tuple(sorted({int(fits[i][0].get_params()[param]) for i in members}))
            surrogate = max((fits[i][0] for i in members), key=lambda s: s.get_params()[param])
        for i in members:
            slots[i] = (g, None if sizes is None else sizes.index(int(fits[i][0].get_params()[param])))
        calls += [(clone_surrogate(surrogate, **({"random_state": int(seeds[b])} if seeded else {})),
                   shared[id(dset)], boot_idx[b], b, *(() if sizes is None else (sizes,))) for b in range(n_boot)]
    return calls, slots


def refit_group(surrogate: Any, dset: DistillationSet) -> Any:
    """What the refits of ``surrogate`` on ``dset`` share with other fits measured in the same
    call of :func:`stabilities`: fits with the same key are refitted once, at the largest size
    among them, and the others read off it (:func:`_refit_calls`). None for a fit that shares
    its refits with no other."""
    return _group_key(surrogate, dset, None)


def _group_key(surrogate: Any, dset: DistillationSet, i: int | None) -> Any:
    """What a fit's refits share with the fits of the same group (:func:`_refit_calls`)."""
    cls = type(surrogate)
    if not getattr(cls, "size_path", False) or cls.size_param is None:
        return None if i is None else ("alone", i)
    params = surrogate.get_params()
    rest = tuple(sorted((k, repr(v)) for k, v in params.items() if k != cls.size_param))
    return (cls, getattr(surrogate, "name", None), id(dset), rest)


def _per_fit(results: list[Any], slots: list[tuple[int, int | None]], n_boot: int) -> list[Any]:
    """The calls' results laid out as :func:`_measured_each` reads them: ``n_boot`` refits per
    fit, in the order of the fits."""
    out = []
    for g, pos in slots:
        block = results[g * n_boot:(g + 1) * n_boot]
        out += block if pos is None else [r[pos] for r in block]
    return out


def _measured_each(fits: Sequence[tuple[Any, DistillationSet]], refits: list[Any], n_boot: int,
                   random_state: int | None, tolerance: float, confidence: float) -> list[Stability]:
    return [_measured(surrogate, dset, refits[i * n_boot:(i + 1) * n_boot], n_boot, random_state, tolerance,
                      confidence) for i, (surrogate, dset) in enumerate(fits)]


def _measured(surrogate: Any, dset: DistillationSet, refits: list[Any], n_boot: int, random_state: int | None,
              tolerance: float, confidence: float) -> Stability:
    """What came back in ``refits`` of ``surrogate``: rules, conditions and predictions."""
    train = dset.train if dset.is_holdout.any() else dset
    eval_part, which = (dset.holdout, "holdout") if dset.is_holdout.any() else (dset, "all")

    # ---------------------------------------------------------------- rules
    schema = dset.schema
    spans = _feature_spans(schema)
    classes = None if surrogate.classes_ is None else list(surrogate.classes_)
    outcome_tol = None
    if dset.task != "classification" or any(
        classes is None or r.outcome not in classes for r in surrogate.rules_.rules
    ):
        out_span = float(np.ptp(train.outputs)) if train.outputs.size else 0.0
        outcome_tol = tolerance * out_span
    original = [(r, _condition_keys(r.conditions, schema)) for r in surrogate.rules_.rules]
    refit_rules = [[(r, _condition_keys(r.conditions, schema)) for r in s.rules_.rules] for s in refits]

    rule_rows = []
    for i, (r, keys) in enumerate(original):
        full = shape = 0
        for rules in refit_rules:
            same_outcome = [kb for rb, kb in rules if _outcomes_match(r.outcome, rb.outcome, classes, outcome_tol)]
            if any(kb.keys() == keys.keys() for kb in same_outcome):
                shape += 1
            if any(_match_keys(keys, kb, spans, tolerance) for kb in same_outcome):
                full += 1
        rule_rows.append(
            {
                "index": i,
                "text": r.text(confidence=False),
                "outcome": r.outcome,
                "share": full / n_boot,
                "share_ci": wilson(full, n_boot, confidence),
                "shape_share": shape / n_boot,
                "shape_share_ci": wilson(shape, n_boot, confidence),
            }
        )
    rule_stability = float(np.mean([row["share"] for row in rule_rows])) if rule_rows else None

    # ---------------------------------------------------------------- conditions
    def used(keyed: list[tuple[Rule, dict]]) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for _, keys in keyed:
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
        return counts

    orig_used = used(original)
    refit_used = [used(rules) for rules in refit_rules]
    all_keys = set(orig_used).union(*refit_used)
    order = {n: i for i, n in enumerate(schema.names)}
    cond_rows = []
    for feature, direction in all_keys:
        key = (feature, direction)
        k = sum(key in u for u in refit_used)
        cond_rows.append(
            {
                "condition": f"{feature} {_DIRECTION_LABEL[direction]}",
                "feature": feature,
                "direction": direction,
                "share": k / n_boot,
                "share_ci": wilson(k, n_boot, confidence),
                "n_original": orig_used.get(key, 0),
                "mean_refit": float(np.mean([u.get(key, 0) for u in refit_used])),
            }
        )
    dir_order = list(_DIRECTION_LABEL)
    cond_rows.sort(
        key=lambda d: (
            -d["share"],
            -d["n_original"],
            order.get(d["feature"], len(order)),
            dir_order.index(d["direction"]),
        )
    )

    # ---------------------------------------------------------------- predictions
    X = eval_part.rows
    orig_pred, *preds = predict_each([surrogate, *refits], X, schema=schema)
    per_refit = []
    over = f"Wilson score over the {n_boot} refits"
    methods = {"rules.share": over, "rules.shape_share": over, "conditions.share": over}
    if rule_stability is not None:
        methods["rule_stability"] = (f"{over} (a mean over the refits of the share of the rules each reproduces; "
                                     "conservative for a mean of values in [0, 1])")
    if dset.task == "classification":
        cls = np.asarray(dset.classes, dtype=object)
        codes = np.vstack([_label_codes(p, cls) for p in preds])
        orig_codes = _label_codes(orig_pred, cls)
        net_codes = eval_part.outputs.argmax(axis=1)
        pairwise = _pairwise_label_agreement(codes)
        with_orig = (codes == orig_codes[None, :]).mean(axis=1)
        fidelity = (codes == net_codes[None, :]).mean(axis=1)
        measure = "label agreement"
        # Means of values in [0, 1]: over the refits, and over pairs of refits, whose mean
        # varies at most as one over half as many refits (Hoeffding, U-statistics of order 2).
        with_orig_ci = wilson(float(with_orig.mean()) * n_boot, n_boot, confidence)
        pairwise_ci = wilson(float(pairwise) * n_boot / 2, n_boot / 2, confidence)
        methods["agreement_with_original"] = f"{over} (a mean of per-refit shares; conservative)"
        methods["prediction_agreement"] = (f"Wilson score over {n_boot / 2:g} refits, half the {n_boot} (a mean over "
                                           "pairs of refits: Hoeffding's bound on its variance)")
    else:
        values = np.vstack([np.asarray(p, dtype=float) for p in preds])
        var = float(np.var(eval_part.outputs))
        pairwise = _pairwise_value_agreement(values, var)
        diffs = ((values - np.asarray(orig_pred, dtype=float)[None, :]) ** 2).mean(axis=1)
        with_orig = np.array([_r2_scale(float(d), var) for d in diffs])
        net_msd = ((values - eval_part.outputs[None, :]) ** 2).mean(axis=1)
        fidelity = np.array([_r2_scale(float(d), var) for d in net_msd])
        measure = "1 - MSD/var"
        seed = check_seed(random_state)
        with_orig_ci, pairwise_ci = _refit_bootstrap(values, with_orig, var, float(pairwise), confidence, seed)
        by_refits = f"percentile bootstrap, {N_BOOT} resamples of the {n_boot} refits, seed {seed}"
        methods["agreement_with_original"] = by_refits
        methods["prediction_agreement"] = by_refits + " (pairs of the same refit left out)"
    for b, s in enumerate(refits):
        comp = s.complexity()
        per_refit.append(
            {
                "n_rules": int(comp["n_rules"]),
                "n_conditions": int(comp["n_conditions"]),
                "agreement_with_original": float(with_orig[b]),
                "fidelity": float(fidelity[b]),
            }
        )
    return Stability(
        rule_stability_ci=None if rule_stability is None else wilson(rule_stability * n_boot, n_boot, confidence),
        prediction_agreement_ci=pairwise_ci,
        agreement_with_original_ci=with_orig_ci,
        confidence=confidence,
        intervals={"level": confidence, "methods": methods},
        surrogate=surrogate.name,
        task=dset.task,
        n_boot=n_boot,
        tolerance=tolerance,
        random_state=random_state,
        rule_stability=rule_stability,
        prediction_agreement=float(pairwise),
        agreement_with_original=float(np.mean(with_orig)),
        measure=measure,
        rows=which,
        n_rows=len(X),
        rules=rule_rows,
        conditions=cond_rows,
        per_refit=per_refit,
        refits=refits,
    )
