"""Anchors: local rules that hold the network's decision in place (Ribeiro et al., 2018).

An anchor of a row is a short conjunction of conditions on its raw features ("income <= 31.5
and home = rent") such that rows which satisfy it get the row's predicted class with a high
*precision* (at least ``precision``, e.g. 0.95), whatever the other features are. Its
*coverage* is the share of the reference rows that satisfy it.

How pellucid finds it, after the paper (and alibi's ``AnchorTabular``):

* **Predicates** are read off the reference once and shared by every row explained. Numeric,
  integer and ordinal features are cut at their quantiles (quartiles by default, ``n_bins``);
  for a row, each cut gives the one-sided predicate the row satisfies (``x <= q`` or ``x > q``,
  on ordinals ``x in {categories up to q}``); two of them on one feature make an interval. A
  numeric cut is moved to the shortest decimal between the reference values on either side
  (a quantile 50.495 between 50.49 and 50.51 becomes 50.5; between integers, an integer),
  which splits the reference the same way and is what is printed and tested.
  Binary features are cut between 0 and 1 (``flag = 1``). A categorical feature gives ``x = the row's
  category``; a missing value gives ``x is missing``. Every predicate is a
  :class:`~pellucid.extraction.rules.Condition`, and the anchor is a
  :class:`~pellucid.extraction.rules.Rule`: what is printed is what is tested.
* **Samples given an anchor** are reference rows whose anchored features are overwritten,
  feature by feature, with values that satisfy the anchor: reference values drawn at random
  within the anchored interval (a category: the row's category; missing: missing). The free
  features keep a real row's values, so the samples stay realistic. (alibi draws the anchored
  features of one sample jointly from one reference row; pellucid draws them independently,
  which needs no rows that satisfy every condition at once.)
* **Precision** of an anchor is the share of its samples on which the network predicts the
  row's class. Only classifiers are explained: a regression raises ``ParameterError``.
* **Search**: a beam search over conjunctions by size. Each round proposes every extension of
  the beam by one predicate, keeps the candidates whose coverage can still beat the best anchor,
  and picks the ``beam_size`` most precise with KL-LUCB confidence bounds (Kaufmann and
  Kalyanakrishnan, 2013; tolerance ``tau``, confidence ``1 - delta``); the chosen ones are then
  sampled until their precision is known to be above or below the target. A candidate is an
  anchor when its mean precision reaches the target *and its lower confidence bound does too*
  (less ``epsilon_stop``, 0 by default; a bound never reaches 1, so for targets above 0.99 the
  bound must pass 0.99). alibi accepts a bound 0.05 below the target; pellucid's default costs
  more samples near the target and gives anchors whose precision on fresh samples holds (see
  benchmarks/anchors_bench.py). A candidate that stays too close to the target to settle in
  32 batches is not an anchor and is extended instead. By default the search stops at the first
  size that has an anchor (the shortest; of several, the largest coverage); ``shortest=False``
  goes on, as alibi does, to longer anchors of larger coverage. When no candidate qualifies,
  the most precise one tried is returned with ``success=False``.
* **Batched**: the bandit's pulls are not made one batch at a time. In each step the critical
  arms (the chosen whose lower bound is too low, the rivals whose upper bound is too high)
  double their samples; the new candidates of a round are sampled together; and the samples of
  all of them -- and, in :func:`anchors`, of all rows, whose searches run in lockstep -- go to
  the network in one query. A search takes a few model calls per beam round, not one per arm
  and pull.

``anchors(model, rows, reference)`` explains many rows with one discretisation, one coverage
set and shared queries; ``anchor(model, row, reference)`` explains one.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Generator, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._validation import (
    Interval,
    against,
    as_oracle,
    exact,
    pct,
    plain,
    validate_params,
)
from ..errors import ParameterError, SchemaError
from ..extraction.rules import (
    Condition,
    Rule,
    _fmt_cat,
    merge_conditions,
    snap_threshold,
)
from ..schema import Kind, Schema
from .local import check_local_rows

if TYPE_CHECKING:  # torch is imported where a network is read, not where rules are refitted
    from ..oracle import Oracle

__all__ = ["Anchor", "anchor", "anchors"]

#: No arm is sampled beyond this many rows (bounds are then as good as they get).
_MAX_ARM_SAMPLES = 1 << 15
#: Most samples (in batches) spent confirming that one candidate's precision beats the target.
_CONFIRM_BATCHES = 32
#: A lower bound never reaches 1: for targets above this, the bound must pass this.
_MAX_BAR = 0.99
#: A step's samples are sent to the network in queries of at most this many rows (memory).
_MAX_ROWS_PER_QUERY = 1 << 19


# ---------------------------------------------------------------------- result
@dataclass(frozen=True)
class Anchor:
    """An anchor: a rule on raw features that keeps the network's prediction of one row.

    Attributes
    ----------
    rule : Rule
        The conjunction, as raw-feature :class:`~pellucid.extraction.rules.Condition` objects;
        ``outcome`` is the predicted class of the row and ``support`` the coverage. An empty
        rule (``always``) means the network predicts this class almost everywhere.
    precision : float
        Share of the anchor's samples on which the network predicts ``prediction``.
    precision_lb : float
        KL lower confidence bound of the precision (confidence ``1 - delta``).
    coverage : float
        Share of the coverage rows (the reference, or ``coverage_samples`` drawn from it) that
        satisfy the rule.
    threshold : float
        The precision asked for.
    success : bool
        Whether the anchor meets the target (mean ``>= threshold`` and lower bound above
        ``threshold - epsilon_stop``, at most 0.99). When no candidate did, the most precise one tried is
        given with ``success=False``.
    n_samples : int
        Samples behind ``precision``.
    n_queries : int
        Model rows this row's search asked for (its samples and the row itself).
    prediction : object
        The network's class for the row.
    instance : dict
        The row, in canonical form (feature -> value).
    bar : float, optional
        What ``precision_lb`` had to exceed: ``threshold - epsilon_stop``, at most 0.99.
    confidence : float, optional
        The confidence of ``precision_lb`` (``1 - delta``).
    """

    rule: Rule
    precision: float
    precision_lb: float
    coverage: float
    threshold: float
    success: bool
    n_samples: int
    n_queries: int
    prediction: Any
    instance: dict = field(default_factory=dict)
    bar: float | None = None
    confidence: float | None = None

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self.rule.conditions

    @property
    def length(self) -> int:
        """Number of conditions (an interval on one feature counts two)."""
        return self.rule.n_conditions

    @property
    def features(self) -> tuple[str, ...]:
        """The features the anchor tests, in schema order."""
        return tuple(dict.fromkeys(c.feature for c in self.rule.conditions))

    def apply(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows (canonical form, as :meth:`~pellucid.schema.Schema.validate` gives) that satisfy
        the anchor."""
        return self.rule.apply(frame)

    def text(self) -> str:
        """``IF income <= 31.5 AND home = rent THEN bad (precision 0.97 ≥ 0.95 with 95%
        confidence: lower bound 0.9512 > 0.95; coverage 8.1%)``.

        The target is judged on the lower confidence bound of the precision, not on the
        estimate: an anchor whose estimate passes the target but whose bound does not is
        not an anchor, and the text says so. Every number compared with a threshold is
        written with enough digits to be on its side of it
        (:func:`pellucid._validation.against`), so the printed comparison is true.
        """
        cond = self.rule.condition_text().replace(" and ", " AND ")
        head = f"IF {cond} THEN {_fmt_cat(self.prediction)}"
        target = exact(self.threshold)
        bar = self.threshold if self.bar is None else self.bar
        level = "" if self.confidence is None else f" with {pct(self.confidence, 0)} confidence"
        lb = against(self.precision_lb, bar)
        bound = f"lower bound {lb} {'>' if self.precision_lb > bar else '≤'} {exact(bar)}"
        if bar != self.threshold:
            bound += f" (the target less epsilon_stop, at most {exact(_MAX_BAR)})"
        precision = against(self.precision, self.threshold)
        if self.precision < self.threshold:
            tail = f"precision {precision} < {target}: target not reached"
        elif self.success:
            tail = f"precision {precision} ≥ {target}{level}: {bound}"
        else:
            tail = (
                f"precision {precision} ≥ {target}, but target not reached: the target is judged on the "
                f"precision's lower confidence bound{level}, and its {bound}"
            )
        return f"{head} ({tail}; coverage {pct(self.coverage)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "text": self.text(),
            "rule": self.rule.to_dict(),
            "prediction": plain(self.prediction, nonfinite="keep", other=None),
            "precision": float(self.precision),
            "precision_lb": float(self.precision_lb),
            "coverage": float(self.coverage),
            "threshold": float(self.threshold),
            "bar": None if self.bar is None else float(self.bar),
            "confidence": None if self.confidence is None else float(self.confidence),
            "success": bool(self.success),
            "length": int(self.length),
            "n_samples": int(self.n_samples),
            "n_queries": int(self.n_queries),
            "instance": {k: _json_value(v) for k, v in self.instance.items()},
        }

    def __repr__(self) -> str:
        return f"Anchor({self.text()!r})"


def _json_value(v: Any) -> Any:
    v = plain(v, nonfinite="keep", other=None)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# ---------------------------------------------------------------------- confidence bounds
def _kl_bernoulli(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL divergence of Bernoulli(p) from Bernoulli(q), elementwise."""
    p = np.minimum(np.maximum(p, 1e-15), 1 - 1e-15)
    q = np.minimum(np.maximum(q, 1e-15), 1 - 1e-15)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _kl_bound(p: Any, level: Any, upper: Any, n_iter: int = 20) -> np.ndarray:
    # Bisection between p and Pinsker's bound p ± sqrt(level / 2), which lies beyond the answer;
    # ``upper`` (a bool, or one per element) picks the side. Every step is elementwise, so the
    # bounds of several arms (upper and lower alike) are found in one call as they would be alone.
    # KL(p || q) = h - p log q - (1 - p) log(1 - q), with h = p log p + (1 - p) log(1 - p).
    p = np.minimum(np.maximum(np.asarray(p, dtype=float), 1e-15), 1 - 1e-15)
    level = np.asarray(level, dtype=float)
    rest = 1 - p
    h = p * np.log(p) + rest * np.log1p(-p)
    near = p.copy()
    reach = np.sqrt(level / 2)
    far = np.where(upper, np.minimum(p + reach, 1.0), np.maximum(p - reach, 0.0))
    for _ in range(n_iter):
        mid = (near + far) / 2
        q = np.minimum(np.maximum(mid, 1e-15), 1 - 1e-15)
        over = h - p * np.log(q) - rest * np.log1p(-q) > level
        far = np.where(over, mid, far)
        near = np.where(over, near, mid)
    return far


def kl_upper(p: Any, level: Any) -> np.ndarray:
    """Largest q >= p with KL(p || q) <= level (within 2**-20 of the Pinsker bracket)."""
    return _kl_bound(p, level, True)


def kl_lower(p: Any, level: Any) -> np.ndarray:
    """Smallest q <= p with KL(p || q) <= level."""
    return _kl_bound(p, level, False)


def kl_bounds(p_lower: Any, level_lower: Any, p_upper: Any, level_upper: Any) -> tuple[np.ndarray, np.ndarray]:
    """``kl_lower(p_lower, level_lower)`` and ``kl_upper(p_upper, level_upper)`` in one
    bisection (the same numbers: each element's steps are its own)."""
    p_lower, p_upper = np.atleast_1d(np.asarray(p_lower, dtype=float)), np.atleast_1d(np.asarray(p_upper, dtype=float))
    k = len(p_lower)
    both = _kl_bound(np.concatenate([p_lower, p_upper]),
                     np.concatenate([np.broadcast_to(level_lower, p_lower.shape),
                                     np.broadcast_to(level_upper, p_upper.shape)]),
                     np.arange(k + len(p_upper)) >= k)
    return both[:k], both[k:]


def _lucb_beta(n_arms: int, t: int, delta: float) -> float:
    # KL-LUCB's exploration rate (Kaufmann and Kalyanakrishnan 2013, section 5) without the
    # constant 405.5 of their theorem, which alibi keeps: the beam's choice carries no guarantee
    # of its own (each anchor's precision is confirmed with its own bound), and the constant
    # doubles to quadruples the bandit's samples.
    temp = math.log(n_arms * t**1.1 / delta)
    return temp + math.log(temp)


# ---------------------------------------------------------------------- predicates
@dataclass(frozen=True)
class _Predicate:
    j: int  # feature position
    side: str  # "lo" (x > edge), "hi" (x <= edge) or "eq" (a category, or missing)
    condition: Condition
    key: float = math.nan  # the edge, on the feature's sort key


@dataclass
class _FeatureSpace:
    name: str
    kind: Kind
    ordered: bool  # thresholds make sense (numeric kinds, ordinal)
    key: np.ndarray | None = None  # sorted sort keys of the non-missing reference values
    vals: np.ndarray | None = None  # the values themselves, in the same order
    rows: np.ndarray | None = None  # the pool row each of them comes from
    edges: np.ndarray | None = None
    categories: tuple = ()


@dataclass(frozen=True)
class _Params:
    precision: float
    beam_size: int
    max_length: int | None
    delta: float
    tau: float
    epsilon_stop: float
    batch_size: int
    shortest: bool


class _Space:
    """What every row's search shares: the schema, the sampling pool, the cuts, the coverage
    rows and the masks of every condition on them."""

    def __init__(self, schema: Schema, pool: pd.DataFrame, coverage_rows: pd.DataFrame, n_bins: int) -> None:
        self.schema = schema
        self.names = schema.names
        self.pool = {n: pool[n].to_numpy() for n in self.names}
        self.n_pool = len(pool)
        self.coverage_rows = coverage_rows
        self._masks: dict[Condition, np.ndarray] = {}
        #: The model's input of the pool and of the rows searched, and each feature's encoded
        #: columns, where the samples are built from them (:meth:`encode_blocks`); else None.
        self.blocks: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = None
        qs = 100.0 * np.arange(1, n_bins) / n_bins
        self.features: list[_FeatureSpace] = []
        for f in schema:
            col = pool[f.name]
            if f.kind is Kind.CATEGORICAL:
                self.features.append(_FeatureSpace(f.name, f.kind, False, categories=tuple(f.categories or ())))
                continue
            if f.kind is Kind.ORDINAL:
                cats = tuple(f.categories or ())
                codes = pd.Index(list(cats), dtype=object).get_indexer(col.to_numpy(dtype=object))
                codes = codes.astype(float)
                codes[col.isna().to_numpy()] = np.nan
                fs = _FeatureSpace(f.name, f.kind, True, categories=cats)
                keys = codes
            else:
                keys = col.to_numpy(dtype=float)
                fs = _FeatureSpace(f.name, f.kind, True)
            present = ~np.isnan(keys)
            order = np.argsort(keys[present], kind="stable")
            fs.key = keys[present][order]
            fs.vals = col.to_numpy()[present][order]
            fs.rows = np.flatnonzero(present)[order]
            if len(fs.key) == 0:
                fs.edges = np.empty(0)
            elif f.kind is Kind.BINARY:
                fs.edges = np.array([0.5]) if fs.key[0] < 0.5 < fs.key[-1] else np.empty(0)
            else:
                e = np.unique(np.percentile(fs.key, qs))
                fs.edges = e[(e >= fs.key[0]) & (e < fs.key[-1])]  # a cut at the maximum cuts nothing
            if f.kind is not Kind.ORDINAL and len(fs.edges):
                # A quantile interpolates (50.495); the shortest decimal between the reference
                # values on either side (50.5, or 50 for integers) splits them the same way, and
                # is the cut the predicates test and print.
                values = np.unique(fs.key)
                fs.edges = np.unique([snap_threshold("<=", float(x), values) for x in fs.edges])
            self.features.append(fs)

    def encode_blocks(self, oracle: Oracle, pool: pd.DataFrame, rows: pd.DataFrame) -> None:
        """Build the samples in the model's input, feature by feature, where each feature has
        its own block of encoded columns on the pool and the rows searched
        (:func:`pellucid.oracle.encoding.feature_blocks`): a sample's block of a feature is the
        one of the pool row or searched row its value comes from, which is what the preprocess
        gives that value. The preprocess then runs once on the pool and once on the rows,
        not on every sample."""
        from ..oracle.encoding import feature_blocks

        found = feature_blocks(oracle, rows[list(self.names)], pool[list(self.names)])
        if found is not None:
            XE, PE, col_feat = found
            self.blocks = (PE, XE, [np.flatnonzero(col_feat == j) for j in range(len(self.names))])

    def mask(self, c: Condition) -> np.ndarray:
        m = self._masks.get(c)
        if m is None:
            m = self._masks[c] = c.apply(self.coverage_rows)
        return m

    def predicates(self, row: dict) -> list[_Predicate]:
        """The predicates one row satisfies, feature by feature."""
        out = []
        for j, fs in enumerate(self.features):
            v = row[fs.name]
            kind = fs.kind.value
            if pd.isna(v):
                missing = Condition(fs.name, "in", (), True, kind) if fs.kind in (Kind.CATEGORICAL, Kind.ORDINAL) \
                    else Condition(fs.name, ">", math.inf, True, kind)
                out.append(_Predicate(j, "eq", missing))
                continue
            if not fs.ordered:
                out.append(_Predicate(j, "eq", Condition(fs.name, "in", (v,), False, kind)))
                continue
            x = float(fs.categories.index(v)) if fs.kind is Kind.ORDINAL else float(v)
            for e in fs.edges:
                e = float(e)
                side = "hi" if x <= e else "lo"
                if fs.kind is Kind.ORDINAL:
                    keep = [c for i, c in enumerate(fs.categories) if (i <= e if side == "hi" else i > e)]
                    cond = Condition(fs.name, "in", keep, False, kind)
                else:
                    cond = Condition(fs.name, "<=" if side == "hi" else ">", e, False, kind)
                out.append(_Predicate(j, side, cond, e))
        return out


class _Row:
    """One row's search state: its predicates, the samples' tallies per anchor, coverages."""

    def __init__(self, space: _Space, values: dict, target: int, rng: np.random.Generator | None = None) -> None:
        self.space = space
        self.values = values
        self.target = target
        # The row's own random stream: its samples do not depend on which rows share its search.
        self.rng = rng if rng is not None else np.random.default_rng()
        self.preds = space.predicates(values)
        self.stats: dict[tuple, list[int]] = {}
        self._coverage: dict[tuple, float] = {(): 1.0}
        self._plan: dict[tuple, list[tuple[int, int, int, Any]]] = {}
        self.n_queries = 1

    def coverage(self, a: tuple) -> float:
        c = self._coverage.get(a)
        if c is None:
            m = np.ones(len(self.space.coverage_rows), dtype=bool)
            for i in a:
                m &= self.space.mask(self.preds[i].condition)
            c = self._coverage[a] = float(m.mean()) if len(m) else 0.0
        return c

    def propose(self, beam: Sequence[tuple]) -> list[tuple]:
        """Every extension of the beam by one predicate: at most one lower and one upper bound
        per ordered feature, one predicate per categorical or missing feature."""
        out = set()
        for a in beam:
            taken = {(self.preds[i].j, self.preds[i].side) for i in a}
            fixed = {j for j, s in taken if s == "eq"}
            used = {j for j, _ in taken}
            for i, p in enumerate(self.preds):
                if p.j in fixed or (p.j, p.side) in taken or (p.side == "eq" and p.j in used):
                    continue
                out.add(tuple(sorted(a + (i,))))
        return sorted(out)

    def plan(self, a: tuple) -> list[tuple[int, int, int, Any]]:
        """How samples of anchor ``a`` are made: per anchored feature ``(j, lo, hi, const)``,
        draw the feature's sorted reference values ``vals[lo:hi]``, or (``lo < 0``) set ``const``."""
        p = self._plan.get(a)
        if p is not None:
            return p
        by_feature: dict[int, list[_Predicate]] = {}
        for i in a:
            by_feature.setdefault(self.preds[i].j, []).append(self.preds[i])
        p = []
        for j, ps in by_feature.items():
            fs = self.space.features[j]
            if any(q.side == "eq" for q in ps):
                p.append((j, -1, -1, self.values[fs.name]))
                continue
            lo = max((q.key for q in ps if q.side == "lo"), default=-math.inf)
            hi = min((q.key for q in ps if q.side == "hi"), default=math.inf)
            a_, b_ = np.searchsorted(fs.key, [lo, hi], side="right")
            if b_ > a_:
                p.append((j, int(a_), int(b_), None))
            else:  # no reference value inside: the row's own value satisfies the anchor
                p.append((j, -1, -1, self.values[fs.name]))
        self._plan[a] = p
        return p

    def rule(self, a: tuple, outcome: Any, coverage: float) -> Rule:
        conds = merge_conditions([self.preds[i].condition for i in a], order=self.space.names)
        return Rule(conds, outcome, None, coverage)


# ---------------------------------------------------------------------- sampling and scoring
def _draw(space: _Space, rows: list[_Row], reqs: list[tuple[int, tuple, int]]):
    """What the samples for requests ``(row, anchor, n)`` take, concatenated in request order:
    the pool row of each sample; per feature an anchor bounds, the samples' positions and the
    reference value each gets (its index in the feature's sorted values); per feature an anchor
    fixes, the samples' positions and the request's row (whose own value they take). Each
    request draws from its row's own stream, in a fixed order (pool rows, then the features its
    anchor constrains), so a row's samples are the same whichever rows are searched with it."""
    counts = np.array([n for _, _, n in reqs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    idx = np.empty(int(counts.sum()), dtype=np.int64)
    # Group the overwrites by feature, so that each feature is written in a few array operations.
    ranges: dict[int, list[tuple[int, int, int, int, np.ndarray]]] = {}
    consts: dict[int, list[tuple[int, int, int]]] = {}
    for (r, a, n), s in zip(reqs, starts):  # a loop over requests; each draws its samples at once
        rng = rows[r].rng
        idx[s:s + n] = rng.integers(space.n_pool, size=n)
        for j, lo, hi, _ in rows[r].plan(a):
            if lo < 0:  # the row's own value
                consts.setdefault(j, []).append((int(s), n, r))
            else:
                ranges.setdefault(j, []).append((int(s), n, lo, hi, rng.random(n)))
    bounded = {}
    for j, segs in ranges.items():
        s, n, lo, hi = (np.array([x[i] for x in segs]) for i in range(4))
        u = np.concatenate([x[4] for x in segs])
        lo_r, hi_r = np.repeat(lo, n), np.repeat(hi, n)
        draw = lo_r + (u * (hi_r - lo_r)).astype(np.int64)
        bounded[j] = (_positions(s, n), np.minimum(draw, hi_r - 1))
    fixed = {}
    for j, segs in consts.items():
        s, n, r = (np.array([x[i] for x in segs]) for i in range(3))
        fixed[j] = (_positions(s, n), np.repeat(r, n))
    return idx, bounded, fixed


def _sample(space: _Space, rows: list[_Row], reqs: list[tuple[int, tuple, int]]) -> pd.DataFrame:
    """Samples for requests ``(row, anchor, n)`` as raw rows (:func:`_draw`)."""
    idx, bounded, fixed = _draw(space, rows, reqs)
    cols = {n: space.pool[n][idx] for n in space.names}
    for j, (pos, k) in bounded.items():
        fs = space.features[j]
        cols[fs.name][pos] = fs.vals[k]
    for j, (pos, r) in fixed.items():
        name = space.names[j]
        own = np.empty(len(rows), dtype=object)
        own[:] = [row.values[name] for row in rows]
        cols[name][pos] = own[r]
    return pd.DataFrame(cols, columns=space.names)


def _sample_encoded(space: _Space, rows: list[_Row], reqs: list[tuple[int, tuple, int]]) -> np.ndarray:
    """The same samples as :func:`_sample`, in the model's input, from the encoded blocks
    (:meth:`_Space.encode_blocks`): the rows the preprocess gives for them."""
    PE, XE, groups = space.blocks
    idx, bounded, fixed = _draw(space, rows, reqs)
    out = PE[idx]
    for j, (pos, k) in bounded.items():
        g = groups[j]
        out[pos[:, None], g] = PE[space.features[j].rows[k][:, None], g]
    for j, (pos, r) in fixed.items():
        g = groups[j]
        out[pos[:, None], g] = XE[r[:, None], g]
    return out


def _positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each segment, without a Python loop."""
    total = int(counts.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


def _score(oracle: Oracle, space: _Space, rows: list[_Row], reqs: list[tuple[int, tuple, int]]) -> np.ndarray:
    """Positives (samples predicted as their row's class) per request; one query per at most
    ``_MAX_ROWS_PER_QUERY`` rows."""
    out = np.zeros(len(reqs), dtype=np.int64)
    lo = 0
    while lo < len(reqs):
        hi, total = lo, 0
        while hi < len(reqs) and (hi == lo or total + reqs[hi][2] <= _MAX_ROWS_PER_QUERY):
            total += reqs[hi][2]
            hi += 1
        part = reqs[lo:hi]
        if space.blocks is not None:
            pred = oracle.query_encoded(_sample_encoded(space, rows, part)).argmax(axis=1)
        else:
            pred = oracle.query(_sample(space, rows, part)).argmax(axis=1)
        counts = np.array([n for _, _, n in part], dtype=np.int64)
        target = np.repeat(np.array([rows[r].target for r, _, _ in part]), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        out[lo:hi] = np.add.reduceat((pred == target).astype(np.int64), starts)
        for r, _, n in part:
            rows[r].n_queries += n
        lo = hi
    return out


# ---------------------------------------------------------------------- the search of one row
Pulls = Generator[list, np.ndarray, Any]


def _pull(row: _Row, reqs: list[tuple[tuple, int]]) -> Pulls:
    positives = yield reqs
    for (a, n), k in zip(reqs, positives):
        s = row.stats.setdefault(a, [0, 0])
        s[0] += n
        s[1] += int(k)


def _tallies(row: _Row, anchors: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    n = np.array([row.stats[a][0] for a in anchors], dtype=float)
    k = np.array([row.stats[a][1] for a in anchors], dtype=float)
    return n, k / n


def _lucb(row: _Row, cands: list[tuple], top: int, p: _Params) -> Pulls:
    """The ``top`` most precise candidates, within ``tau``, with confidence ``1 - delta``
    (batched KL-LUCB: in each step the critical arms double their samples)."""
    if len(cands) <= top:
        return list(cands)
    cov = np.array([row.coverage(c) for c in cands])
    size = np.array([len(c) for c in cands])
    t = 1
    while True:
        n, mean = _tallies(row, cands)
        # Ties in precision (often all 1.0) go to the larger coverage, then the shorter anchor.
        order = np.lexsort((size, -cov, -mean))
        J, notJ = order[:top], order[top:]
        beta = _lucb_beta(len(cands), t, p.delta)
        lb, ub = kl_bounds(mean[J], beta / n[J], mean[notJ], beta / n[notJ])
        if ub.max() - lb.min() <= p.tau:
            break
        # The critical arms: the chosen whose lower bound is too low, and of the others the
        # ``top`` whose upper bounds are highest (LUCB's ut and lt, a few at a time).
        rivals = np.argsort(-ub, kind="stable")[:top]
        rivals = rivals[ub[rivals] - lb.min() > p.tau]
        need = np.concatenate([notJ[rivals], J[ub.max() - lb > p.tau]])
        need = need[n[need] < _MAX_ARM_SAMPLES]
        if need.size == 0:
            break
        yield from _pull(row, [(cands[i], int(n[i])) for i in need])
        t += 1
    return [cands[i] for i in J]


def _search(row: _Row, p: _Params) -> Pulls:
    """Beam search for the row's anchor; returns ``(anchor, success, beta)``."""
    thr = p.precision
    # The empty anchor: does the network predict this class nearly everywhere?
    yield from _pull(row, [((), p.batch_size)])
    beta0 = math.log(1 / p.delta)
    while True:
        n, mean = _tallies(row, [()])
        lb = kl_lower(mean, beta0 / n)
        if mean[0] > thr and lb[0] < thr - p.tau and n[0] < _MAX_ARM_SAMPLES:
            yield from _pull(row, [((), int(n[0]))])
        else:
            break
    bar = min(thr - p.epsilon_stop, _MAX_BAR)  # what an anchor's lower bound must pass
    if mean[0] >= thr and lb[0] > bar:
        return (), True, beta0

    n_preds = len(row.preds)
    beta = math.log((1 + (p.beam_size - 1) * n_preds) / p.delta)
    max_length = n_preds if p.max_length is None else min(p.max_length, n_preds)
    best, best_cov = None, -1.0
    beam: list[tuple] = [()]
    tried: list[tuple] = []
    for _size in range(1, max_length + 1):
        cands = [c for c in row.propose(beam) if row.coverage(c) > best_cov]
        if not cands:
            break
        new = [c for c in cands if c not in row.stats]
        if new:
            yield from _pull(row, [(c, p.batch_size) for c in new])
        chosen = yield from _lucb(row, cands, min(p.beam_size, len(cands)), p)
        # Sample the chosen until each is known to be above or below the target.
        while True:
            n, mean = _tallies(row, chosen)
            lb, ub = kl_bounds(mean, beta / n, mean, beta / n)
            more = ((mean >= thr) & (lb < bar)) | ((mean < thr) & (ub >= thr + p.epsilon_stop))
            # A precision too close to the target to settle in _CONFIRM_BATCHES batches is
            # not an anchor: extending it (next round) is cheaper than pinning it down.
            more &= n < _CONFIRM_BATCHES * p.batch_size
            if not more.any():
                break
            yield from _pull(row, [(c, int(m)) for c, m, go in zip(chosen, n, more) if go])
        tried.extend(chosen)
        valid = (mean >= thr) & (lb > bar)
        covs = np.array([row.coverage(c) for c in chosen])
        better = np.flatnonzero(valid & (covs > best_cov))
        if better.size:
            i = better[np.argmax(covs[better])]
            best, best_cov = chosen[i], float(covs[i])
            if p.shortest or best_cov >= 1.0:
                break
        beam = chosen
    if best is not None:
        return best, True, beta
    if not tried:
        return (), False, beta0
    # No anchor reached the target: the most precise candidate tried, shorter first.
    n, mean = _tallies(row, tried)
    i = int(np.lexsort((-np.array([row.coverage(c) for c in tried]), [len(c) for c in tried], -mean))[0])
    return tried[i], False, beta


# ---------------------------------------------------------------------- the public functions
def _frame(X: Any, what: str, names: list[str] | None) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame().T.infer_objects()
    if isinstance(X, (np.ndarray, list, tuple)):
        a = np.asarray(X, dtype=object if not isinstance(X, np.ndarray) else None)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ParameterError(f"the {what} must be a DataFrame or a 2-D array; got an array of shape {a.shape}")
        cols = names if names is not None else [f"x{i}" for i in range(a.shape[1])]
        if len(cols) != a.shape[1]:
            raise SchemaError(f"the {what} has {a.shape[1]} columns but the reference has {len(cols)} ({cols[:20]})")
        return pd.DataFrame(a, columns=cols).infer_objects()
    raise ParameterError(f"the {what} must be a pandas DataFrame, a Series or an array; got {type(X).__name__}")


#: What each of :func:`anchors`'s settings must be (checked by ``validate_params``).
_CONSTRAINTS = {
    "precision": [Interval(Real, 0, 1, closed="right")],
    "delta": [Interval(Real, 0, 1, closed="neither")],
    "tau": [Interval(Real, 0, 1, closed="neither")],
    "epsilon_stop": [Interval(Real, 0, 1, closed="left")],
    "beam_size": [Interval(Integral, 1, None)],
    "batch_size": [Interval(Integral, 1, None)],
    "n_bins": [Interval(Integral, 2, None)],
    "coverage_samples": [Interval(Integral, 1, None)],
    "max_length": [Interval(Integral, 1, None), None],
}


def anchors(
    model: Any,
    rows: Any,
    reference: Any,
    precision: float = 0.95,
    *,
    beam_size: int = 2,
    max_length: int | None = None,
    delta: float = 0.1,
    tau: float = 0.15,
    epsilon_stop: float = 0.0,
    batch_size: int = 100,
    n_bins: int = 4,
    coverage_samples: int = 10000,
    shortest: bool = True,
    random_state: int | None = 0,
    verbose: int = 0,
    part: tuple[int, int] | None = None,
) -> list[Anchor]:
    """Anchors for many rows, searched in lockstep with shared queries.

    Parameters
    ----------
    model : Oracle or model
        An :class:`~pellucid.oracle.Oracle`, or anything ``Oracle(model)`` accepts (the raw
        rows go to it as they are). Classifiers only.
    rows : DataFrame, Series or array
        Raw rows to explain, with the reference's columns (others are ignored).
    reference : DataFrame or 2-D array
        Raw rows like those the model sees: the schema, the quantile cuts, the samples' free
        features and the coverage all come from it.
    precision : float in (0, 1]
        The precision an anchor must reach.
    beam_size : int
        Candidates kept per size.
    max_length : int, optional
        Most conditions in an anchor (default: no limit).
    delta : float
        1 - confidence of the bounds.
    tau : float
        Tolerance of the beam's choice (KL-LUCB's epsilon).
    epsilon_stop : float
        An anchor's lower bound must be above ``precision - epsilon_stop`` (at most 0.99);
        alibi's 0.05 is faster but lets anchors below the target through.
    batch_size : int
        First samples per candidate (later pulls double an arm's samples).
    n_bins : int
        Quantile bins of numeric, integer and ordinal features (4: quartiles).
    coverage_samples : int
        Reference rows coverage is measured on (all of them when the reference is no larger).
    shortest : bool
        Stop at the first size that has an anchor (else go on to longer anchors of larger
        coverage, as alibi).
    random_state : int, optional
        Seed; the same seed, rows and reference give the same anchors. Row ``i`` samples from
        its own stream, seeded by the seed and ``i``, so a row's anchor does not depend on the
        other rows searched with it.
    verbose : int
        0 for silence; otherwise a progress bar on a terminal.
    part : (start, stop), optional
        Search only the rows at positions ``start:stop`` of ``rows``, with the streams of
        those positions: pieces searched apart and concatenated equal one call on all rows
        (see :func:`pellucid.cluster.explain_rows`).

    Returns
    -------
    list of Anchor
        One per row, in order.

    Raises
    ------
    SchemaError
        From :func:`~pellucid.surrogates.local.check_local_rows`: no rows, a row lacking a
        column of the reference or having one it lacks, or holding a category the reference
        never has.
    ParameterError
        A parameter out of range, or a regression model.
    """
    validate_params("anchors", dict(precision=precision, beam_size=beam_size, max_length=max_length, delta=delta,
                                    tau=tau, epsilon_stop=epsilon_stop, batch_size=batch_size, n_bins=n_bins,
                                    coverage_samples=coverage_samples), _CONSTRAINTS)
    reference = _frame(reference, "reference", None)
    rows = _frame(rows, "rows", list(map(str, reference.columns)))
    schema, pool, canon = check_local_rows(rows, reference, what="row" if len(rows) == 1 else "rows")
    pool, canon = pool.reset_index(drop=True), canon.reset_index(drop=True)
    oracle = as_oracle(model)

    first = 0
    if part is not None:
        from .lime_local import _check_part

        first, stop = _check_part(part, len(canon))
        canon = canon.iloc[first:stop]
    # One stream for the coverage sample (the reference's), and one per row (its position).
    seed = np.random.SeedSequence(random_state)
    rng = np.random.default_rng(random_state)
    if coverage_samples >= len(pool):
        coverage_rows = pool
    else:
        picked = np.sort(rng.choice(len(pool), coverage_samples, replace=False))
        coverage_rows = pool.iloc[picked].reset_index(drop=True)
    space = _Space(schema, pool, coverage_rows, n_bins)

    proba = oracle.query(canon)
    if oracle.task != "classification":
        raise ParameterError(
            "anchors explain a classifier's decision (precision is the share of samples that keep the "
            "predicted class); this model is a regressor. Explain a thresholded version of it, e.g. "
            "Oracle(lambda X: model(X) > t, classes=[False, True])"
        )
    classes = oracle.classes_
    targets = proba.argmax(axis=1)
    space.encode_blocks(oracle, pool, canon)
    params = _Params(float(precision), int(beam_size), max_length, float(delta), float(tau), float(epsilon_stop),
                     int(batch_size), bool(shortest))
    records = canon.to_dict(orient="records")
    states = [_Row(space, records[i], int(targets[i]),
                   np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(first + i,))))
              for i in range(len(canon))]

    results: dict[int, tuple] = {}
    gens = {i: _search(states[i], params) for i in range(len(states))}
    pending: dict[int, list] = {}
    quiet = verbose <= 0 or not sys.stderr.isatty()
    with tqdm(total=len(gens), desc="anchors", unit="rows", disable=quiet, leave=False) as bar:
        def advance(i: int, sent: np.ndarray | None) -> None:
            try:
                pending[i] = gens[i].send(sent)
            except StopIteration as stop:
                results[i] = stop.value
                pending.pop(i, None)
                bar.update(1)

        for i in gens:
            advance(i, None)
        while pending:
            # One step: every row's pending pulls, sampled and scored together.
            order = sorted(pending)
            reqs = [(i, a, n) for i in order for a, n in pending[i]]
            positives = _score(oracle, space, states, reqs)
            at = 0
            for i in order:
                k = len(pending[i])
                advance(i, positives[at:at + k])
                at += k

    out = []
    for i, st in enumerate(states):
        a, success, beta = results[i]
        n, k = st.stats[a]
        mean = k / n
        lb = float(kl_lower(np.array([mean]), np.array([beta / n]))[0])
        cov = st.coverage(a)
        label = classes[st.target]
        out.append(Anchor(
            rule=st.rule(a, label, cov),
            precision=float(mean),
            precision_lb=lb,
            coverage=cov,
            threshold=float(precision),
            success=bool(success),
            n_samples=int(n),
            n_queries=int(st.n_queries),
            prediction=label,
            instance=dict(st.values),
            bar=min(params.precision - params.epsilon_stop, _MAX_BAR),
            confidence=1.0 - params.delta,
        ))
    return out


def anchor(model: Any, row: Any, reference: Any, precision: float = 0.95, **kw: Any) -> Anchor:
    """The anchor of one row: a rule on its raw features under which the network keeps its
    prediction with at least ``precision`` (see :func:`anchors` for the parameters).

    Parameters
    ----------
    model : Oracle or model
    row : one-row DataFrame, Series or 1-D array
    reference : DataFrame or 2-D array
    precision : float in (0, 1]
    **kw
        Keyword arguments of :func:`anchors`.

    Returns
    -------
    Anchor

    Examples
    --------
    >>> a = anchor(oracle, X.iloc[[0]], X)            # doctest: +SKIP
    >>> print(a.text())                               # doctest: +SKIP
    IF income <= 31.5 AND home = rent THEN bad (precision 0.98 ≥ 0.95 with 95% confidence: lower bound 0.9512 > 0.95; coverage 7.9%)
    """
    if isinstance(row, pd.DataFrame) and len(row) != 1:
        raise ParameterError(f"anchor explains one row; got {len(row)} rows (use anchors() for several)")
    if isinstance(row, np.ndarray) and row.ndim == 2 and row.shape[0] != 1:
        raise ParameterError(f"anchor explains one row; got an array of {row.shape[0]} rows (use anchors())")
    return anchors(model, row, reference, precision, **kw)[0]
