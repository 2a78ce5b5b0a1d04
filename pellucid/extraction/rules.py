"""The rule data model shared by every rule surrogate.

A :class:`Condition` tests one raw feature ("Income <= 120.5", "Home in {rent, other}"), a
:class:`Rule` is a conjunction of conditions with an outcome, and a :class:`RuleList` (ordered,
first match wins) or :class:`RuleSet` (unordered) holds rules and a default. Every text, JSON
and later export is derived from these objects; a surrogate whose predictions come from its
rules says exactly what it does.

Tables given to ``apply``/``predict`` are in the canonical form of
:meth:`pellucid.schema.Schema.validate`: numeric kinds as float64 (NaN for missing),
categorical kinds as objects holding the schema's categories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

NUMERIC_OPS = ("<=", "<", ">", ">=")
SET_OPS = ("in", "not in")


def format_number(x: float, integer: bool = False) -> str:
    """A threshold as a person reads it: short, no scientific notation for everyday sizes."""
    if integer and float(x).is_integer():
        return str(int(x))
    ax = abs(x)
    if ax != 0 and (ax >= 1e7 or ax < 1e-4):
        return f"{x:.4g}"
    if ax >= 1e4:
        return f"{x:.0f}"
    s = f"{x:.4g}"
    return s


def _fmt_cat(c: Any) -> str:
    if isinstance(c, (bool, np.bool_)):
        return str(bool(c))
    if isinstance(c, (float, np.floating)) and float(c).is_integer():
        return str(int(c))
    return str(c)


@dataclass(frozen=True)
class Condition:
    """A test on one raw feature.

    Parameters
    ----------
    feature : str
        Raw feature name.
    op : str
        ``<=``, ``<``, ``>``, ``>=`` (numeric kinds) or ``in`` / ``not in`` (categories).
    value : float or tuple
        The threshold, or the categories of the set.
    missing : bool
        Whether a missing value satisfies the condition (trees send missing values down one
        side of each split; the rule says which).
    kind : str
        The feature's kind (``numeric``, ``integer``, ``binary``, ``categorical``,
        ``ordinal``); decides only how the condition is printed.
    """

    feature: str
    op: str
    value: Any
    missing: bool = False
    kind: str = "numeric"

    def __post_init__(self) -> None:
        if self.op in NUMERIC_OPS:
            object.__setattr__(self, "value", float(self.value))
        elif self.op in SET_OPS:
            object.__setattr__(self, "value", tuple(self.value))
        else:
            raise ValueError(f"unknown condition operator {self.op!r}; use one of {NUMERIC_OPS + SET_OPS}")

    # ------------------------------------------------------------------ evaluation
    def apply(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows that satisfy the condition."""
        col = frame[self.feature]
        if self.op in NUMERIC_OPS:
            v = col.to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                if self.op == "<=":
                    m = v <= self.value
                elif self.op == "<":
                    m = v < self.value
                elif self.op == ">":
                    m = v > self.value
                else:
                    m = v >= self.value
            isna = np.isnan(v)
        else:
            isna = col.isna().to_numpy()
            m = col.isin(list(self.value)).to_numpy()
            if self.op == "not in":
                m = ~m & ~isna
        return (m & ~isna) | (isna & self.missing)

    # ------------------------------------------------------------------ text
    @property
    def known_values(self) -> str:
        """Which known (non-missing) values pass: ``all``, ``none`` or ``some``. Trees split
        missing from known values with an infinite threshold; an empty set does the same."""
        if self.op in NUMERIC_OPS:
            if not math.isinf(self.value):
                return "some"
            return "none" if (self.op in (">", ">=")) == (self.value > 0) else "all"
        if self.value:
            return "some"
        return "none" if self.op == "in" else "all"

    def text(self) -> str:
        """Readable form in raw units: ``Income <= 120.5``, ``Home in {rent, other}``."""
        name = self.feature
        known = self.known_values
        if known != "some":
            # The condition only says something about missingness.
            if known == "all":
                return f"{name} is any value" if self.missing else f"{name} is not missing"
            return f"{name} is missing" if self.missing else f"{name} is nothing (never true)"
        if self.op in NUMERIC_OPS:
            body = self._numeric_text(name)
        else:
            cats = [_fmt_cat(c) for c in self.value]
            if len(cats) == 1:
                body = f"{name} {'=' if self.op == 'in' else '≠'} {cats[0]}"
            else:
                body = f"{name} {self.op} {{{', '.join(cats)}}}"
        if self.missing:
            return f"({body} or {name} is missing)"
        return body

    def _numeric_text(self, name: str) -> str:
        t, op = self.value, self.op
        if self.kind == "binary" and 0 < t < 1:
            # A split between 0 and 1 is an equality test.
            return f"{name} = {0 if op in ('<=', '<') else 1}"
        if self.kind in ("integer", "binary"):
            # x <= 2.5 on integers reads better as x <= 2; x > 2.5 as x >= 3.
            if op == "<=":
                return f"{name} <= {math.floor(t)}"
            if op == "<":
                return f"{name} <= {math.ceil(t) - 1}"
            if op == ">":
                return f"{name} >= {math.floor(t) + 1}"
            return f"{name} >= {math.ceil(t)}"
        return f"{name} {op} {format_number(t)}"

    def to_dict(self) -> dict[str, Any]:
        value = list(_plain(v) for v in self.value) if self.op in SET_OPS else float(self.value)
        return {
            "feature": self.feature,
            "op": self.op,
            "value": value,
            "missing": bool(self.missing),
            "kind": self.kind,
            "text": self.text(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Condition":
        return cls(d["feature"], d["op"], d["value"], bool(d.get("missing", False)), d.get("kind", "numeric"))


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def merge_conditions(
    conditions: Iterable[Condition],
    order: Sequence[str] | None = None,
    domains: Mapping[str, Sequence] | None = None,
) -> tuple[Condition, ...]:
    """Simplify a conjunction: one lower and one upper bound per numeric feature, one set per
    categorical feature, conditions sorted by feature order (``order``, else first
    appearance). With ``domains`` (feature -> all its categories), a set larger than half its
    domain is written as its complement and a set that admits everything is dropped. The
    result accepts exactly the rows the input accepts (rows whose categories are in the
    domain)."""
    conditions = list(conditions)
    feats: list[str] = []
    for c in conditions:
        if c.feature not in feats:
            feats.append(c.feature)
    if order is not None:
        pos = {n: i for i, n in enumerate(order)}
        feats.sort(key=lambda n: pos.get(n, len(pos)))
    out: list[Condition] = []
    for name in feats:
        cs = [c for c in conditions if c.feature == name]
        num = [c for c in cs if c.op in NUMERIC_OPS]
        sets = [c for c in cs if c.op in SET_OPS]
        if num:
            out.extend(_merge_numeric(num))
        if sets:
            merged = _merge_sets(sets)
            if domains is not None and name in domains:
                merged = _readable_set(merged, list(domains[name]))
            out.extend(merged)
    return tuple(out)


def _readable_set(cs: list[Condition], domain: list) -> list[Condition]:
    (c,) = cs
    inside = list(c.value) if c.op == "in" else [v for v in domain if v not in c.value]
    inside = [v for v in domain if v in inside]  # domain order
    if len(inside) == len(domain) and c.missing:
        return []  # admits every row
    if 2 * len(inside) > len(domain):
        return [Condition(c.feature, "not in", [v for v in domain if v not in inside], c.missing, c.kind)]
    return [Condition(c.feature, "in", inside, c.missing, c.kind)]


def _merge_numeric(cs: list[Condition]) -> list[Condition]:
    name, kind = cs[0].feature, cs[0].kind
    missing = all(c.missing for c in cs)
    if any(c.known_values == "none" for c in cs):
        # Nothing but (perhaps) a missing value passes; the other bounds say nothing more.
        return [Condition(name, ">", math.inf, missing, kind)]
    # The remaining infinite bounds (x <= inf, x > -inf) admit every known value: they only
    # say whether missing values pass, which the merged flag says.
    finite = [c for c in cs if c.known_values == "some"]
    if not finite:
        return [Condition(name, "<=", math.inf, missing, kind)]
    lower = [c for c in finite if c.op in (">", ">=")]
    upper = [c for c in finite if c.op in ("<", "<=")]
    out = []
    if lower:
        # The tightest lower bound: largest value; at a tie '>' is tighter than '>='.
        best = max(lower, key=lambda c: (c.value, c.op == ">"))
        out.append(Condition(name, best.op, best.value, missing, kind))
    if upper:
        best = min(upper, key=lambda c: (c.value, c.op != "<"))
        out.append(Condition(name, best.op, best.value, missing, kind))
    return out


def _merge_sets(cs: list[Condition]) -> list[Condition]:
    missing = all(c.missing for c in cs)
    allowed: list | None = None
    excluded: list = []
    for c in cs:
        if c.op == "in":
            allowed = list(c.value) if allowed is None else [v for v in allowed if v in c.value]
        else:
            excluded.extend(v for v in c.value if v not in excluded)
    f, kind = cs[0].feature, cs[0].kind
    if allowed is not None:
        return [Condition(f, "in", [v for v in allowed if v not in excluded], missing, kind)]
    return [Condition(f, "not in", excluded, missing, kind)]


@dataclass(frozen=True)
class Rule:
    """If all conditions hold, the outcome.

    Parameters
    ----------
    conditions : tuple of Condition
        An empty tuple is a rule that always fires (a default).
    outcome : object
        The class label (classification) or value (regression) the rule gives.
    proba : tuple of float, optional
        Class distribution of the training rows the rule covers (classification).
    support : float, optional
        Share of the (weighted) training rows the rule covers.
    """

    conditions: tuple[Condition, ...]
    outcome: Any
    proba: tuple[float, ...] | None = None
    support: float | None = None

    def apply(self, frame: pd.DataFrame, _cache: dict | None = None) -> np.ndarray:
        """Boolean mask of the rows where every condition holds."""
        m = np.ones(len(frame), dtype=bool)
        for c in self.conditions:
            if _cache is not None:
                if c not in _cache:
                    _cache[c] = c.apply(frame)
                m &= _cache[c]
            else:
                m &= c.apply(frame)
        return m

    @property
    def n_conditions(self) -> int:
        return len(self.conditions)

    def condition_text(self) -> str:
        """The conjunction as text; a lower and an upper bound on one feature read as one
        interval (``39.7 < income <= 41.4``)."""
        if not self.conditions:
            return "always"
        parts, cs, i = [], self.conditions, 0
        while i < len(cs):
            a = cs[i]
            b = cs[i + 1] if i + 1 < len(cs) else None
            if (
                b is not None
                and a.feature == b.feature
                and a.op in (">", ">=")
                and b.op in ("<", "<=")
                and a.missing == b.missing
                and a.known_values == b.known_values == "some"
            ):
                parts.append(_interval_text(a, b))
                i += 2
            else:
                parts.append(a.text())
                i += 1
        return " and ".join(parts)

    def text(self, confidence: bool = True) -> str:
        """``Income <= 120.5 and Home in {rent, other} → bad (p=0.91, covers 12.3%)``."""
        s = f"{self.condition_text()} → {_fmt_outcome(self.outcome)}"
        extras = []
        if confidence and self.proba is not None:
            extras.append(f"p={max(self.proba):.2f}")
        if confidence and self.support is not None:
            extras.append(f"covers {100 * self.support:.1f}%")
        return f"{s} ({', '.join(extras)})" if extras else s

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text(),
            "conditions": [c.to_dict() for c in self.conditions],
            "outcome": _plain(self.outcome),
            "proba": None if self.proba is None else [float(p) for p in self.proba],
            "support": None if self.support is None else float(self.support),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Rule":
        """The rule of :meth:`to_dict` (its ``text`` is derived, and ignored)."""
        proba = d.get("proba")
        support = d.get("support")
        return cls(
            tuple(Condition.from_dict(c) for c in d.get("conditions", ())),
            d["outcome"],
            None if proba is None else tuple(float(p) for p in proba),
            None if support is None else float(support),
        )


def _interval_text(lo: Condition, hi: Condition) -> str:
    name = lo.feature
    if lo.kind in ("integer", "binary"):
        a = math.floor(lo.value) + 1 if lo.op == ">" else math.ceil(lo.value)
        b = math.floor(hi.value) if hi.op == "<=" else math.ceil(hi.value) - 1
        body = f"{name} = {a}" if a == b else f"{a} <= {name} <= {b}"
    else:
        lo_op = "<" if lo.op == ">" else "<="
        body = f"{format_number(lo.value)} {lo_op} {name} {hi.op} {format_number(hi.value)}"
    return f"({body} or {name} is missing)" if lo.missing else body


def _fmt_outcome(o: Any) -> str:
    if isinstance(o, (float, np.floating)) and not float(o).is_integer():
        return format_number(float(o))
    return _fmt_cat(o)


@dataclass(frozen=True)
class _Rules:
    rules: tuple[Rule, ...]
    default: Rule
    task: str = "classification"
    classes: tuple | None = None
    feature_order: tuple[str, ...] | None = field(default=None, compare=False)

    ordered: bool = field(default=False, init=False)

    @property
    def n_rules(self) -> int:
        return len(self.rules)

    @property
    def n_conditions(self) -> int:
        return sum(r.n_conditions for r in self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def coverage_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """(n_rows, n_rules) boolean: which rules fire on which rows. A condition shared by
        several rules is evaluated once."""
        cache: dict = {}
        if not self.rules:
            return np.zeros((len(frame), 0), dtype=bool)
        return np.column_stack([r.apply(frame, cache) for r in self.rules])

    def _rule_values(self) -> np.ndarray:
        """Per rule (and the default as the last row): class probabilities or values."""
        rs = list(self.rules) + [self.default]
        if self.task == "classification":
            return np.array([_proba_of(r, self.classes) for r in rs], dtype=float)
        return np.array([float(r.outcome) for r in rs], dtype=float)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.task == "classification":
            p = self.predict_proba(frame)
            return np.asarray(self.classes, dtype=object)[p.argmax(axis=1)] if len(p) else np.array([], dtype=object)
        return self._combine(frame)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.task != "classification":
            raise ValueError("predict_proba is for classification rules")
        return self._combine(frame)

    def firing_rule(self, frame: pd.DataFrame) -> np.ndarray:
        """Index of the rule that decides each row (``n_rules`` for the default). For an
        unordered set the first covering rule is named."""
        cov = self.coverage_matrix(frame)
        any_ = cov.any(axis=1) if cov.shape[1] else np.zeros(len(frame), dtype=bool)
        idx = cov.argmax(axis=1) if cov.shape[1] else np.zeros(len(frame), dtype=int)
        return np.where(any_, idx, self.n_rules)

    def _combine(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "rule_list" if self.ordered else "rule_set",
            "task": self.task,
            "classes": None if self.classes is None else [_plain(c) for c in self.classes],
            "rules": [r.to_dict() for r in self.rules],
            "default": self.default.to_dict(),
            "n_rules": self.n_rules,
            "n_conditions": self.n_conditions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "_Rules":
        """The rule list or rule set of :meth:`to_dict`; called on the base class, its
        ``type`` decides which. An optional ``feature_order`` entry is kept."""
        types = {"rule_list": RuleList, "rule_set": RuleSet}
        kind = d.get("type")
        if cls is _Rules:
            if kind not in types:
                raise ValueError(f"unknown rule model type {kind!r}; expected one of {sorted(types)}")
            cls = types[kind]
        elif kind is not None and types.get(kind) is not cls:
            raise ValueError(f"a {kind!r} cannot be read as a {cls.__name__}")
        task = d.get("task", "classification")
        rules = [Rule.from_dict(r) for r in d["rules"]]
        default = Rule.from_dict(d["default"])
        if task != "classification":
            # A regression outcome is a number (JSON may carry infinities as text).
            rules = [Rule(r.conditions, float(r.outcome), r.proba, r.support) for r in rules]
            default = Rule(default.conditions, float(default.outcome), default.proba, default.support)
        classes = d.get("classes")
        order = d.get("feature_order")
        return cls(
            tuple(rules),
            default,
            task=task,
            classes=None if classes is None else tuple(classes),
            feature_order=None if order is None else tuple(order),
        )


def _proba_of(rule: Rule, classes: Sequence | None) -> np.ndarray:
    if rule.proba is not None:
        return np.asarray(rule.proba, dtype=float)
    # A rule without a distribution predicts its outcome with certainty.
    p = np.zeros(len(classes or ()))
    p[list(classes).index(rule.outcome)] = 1.0
    return p


@dataclass(frozen=True)
class RuleList(_Rules):
    """Ordered rules: the first rule that fires decides; the default decides the rest."""

    ordered: bool = field(default=True, init=False)

    def _combine(self, frame: pd.DataFrame) -> np.ndarray:
        vals = self._rule_values()
        return vals[self.firing_rule(frame)]

    def text(self) -> str:
        lines = []
        for i, r in enumerate(self.rules):
            lines.append(f"{'IF' if i == 0 else 'ELSE IF'} {r.text()}")
        lines.append(f"ELSE → {_fmt_outcome(self.default.outcome)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class RuleSet(_Rules):
    """Unordered rules. A row covered by one rule takes its outcome; by several, the mean of
    their distributions (classification) or values (regression); by none, the default.
    The leaves of a tree form a rule set where every row is covered exactly once."""

    ordered: bool = field(default=False, init=False)

    def _combine(self, frame: pd.DataFrame) -> np.ndarray:
        vals = self._rule_values()
        cov = self.coverage_matrix(frame).astype(float)
        k = cov.sum(axis=1)
        rule_vals = vals[:-1]
        summed = cov @ rule_vals
        default = vals[-1]
        if summed.ndim == 1:
            return np.where(k > 0, summed / np.maximum(k, 1), default)
        return np.where((k > 0)[:, None], summed / np.maximum(k, 1)[:, None], default[None, :])

    def text(self) -> str:
        lines = [r.text() for r in self.rules]
        lines.append(f"otherwise → {_fmt_outcome(self.default.outcome)}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- additive models
LINKS = ("identity", "logistic", "softmax")


@dataclass(frozen=True)
class LinearTerm:
    """``weight × feature`` on a numeric raw feature, in its own units.

    A missing value counts as ``fill`` (the training median); a separate rule such as
    ``income is missing`` may add its own weight.
    """

    feature: str
    weights: tuple[float, ...]
    fill: float
    kind: str = "numeric"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in np.atleast_1d(self.weights)))
        object.__setattr__(self, "fill", float(self.fill))

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        v = frame[self.feature].to_numpy(dtype="float64", na_value=np.nan)
        return np.where(np.isnan(v), self.fill, v)

    def text(self, column: int = 0, scale: float = 1.0) -> str:
        return f"{format_number(scale * self.weights[column])} × {self.feature}"

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "weights": list(self.weights), "fill": self.fill, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LinearTerm":
        return cls(d["feature"], tuple(d["weights"]), d["fill"], d.get("kind", "numeric"))


@dataclass(frozen=True)
class AdditiveRules:
    """A score made of rules: ``intercept + Σ weight·[rule fires] + Σ weight·feature``.

    The form of rule ensembles (RuleFit, boosted rules, FIGS's sum of trees), sparse linear
    models (a category's indicator is a one-condition rule) and points scorecards. The score
    has one column per output: one for a regression (the prediction, ``link="identity"``) or
    two classes (the log-odds of the second class, ``link="logistic"``), one per class for
    more (``link="softmax"``).

    Parameters
    ----------
    rules : tuple of Rule
        Indicator terms. ``outcome`` is the class a rule pushes towards (classification) or
        its weight (regression), for reading; the weights below decide.
    weights : tuple of tuple of float
        Per rule, its weight on each score column.
    intercept : tuple of float
        The score when no rule fires and every linear feature is 0.
    linear : tuple of LinearTerm
        Terms in raw units.
    link : str
        ``identity``, ``logistic`` or ``softmax``.
    scale : float
        Scorecards show points: ``round(scale × weight)``; 1 elsewhere.
    offset : float
        Scorecards: a row's total points are ``offset + scale × score``, so the score 0 (the
        decision boundary of two classes) is at ``offset`` points; 0 elsewhere.
    """

    rules: tuple[Rule, ...]
    weights: tuple[tuple[float, ...], ...]
    intercept: tuple[float, ...]
    linear: tuple[LinearTerm, ...] = ()
    link: str = "identity"
    task: str = "regression"
    classes: tuple | None = None
    scale: float = 1.0
    feature_order: tuple[str, ...] | None = field(default=None, compare=False)
    offset: float = 0.0

    ordered: bool = field(default=False, init=False)
    additive: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.link not in LINKS:
            raise ValueError(f"unknown link {self.link!r}; use one of {LINKS}")
        w = tuple(tuple(float(x) for x in np.atleast_1d(row)) for row in self.weights)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "intercept", tuple(float(x) for x in np.atleast_1d(self.intercept)))
        if len(w) != len(self.rules):
            raise ValueError(f"{len(self.rules)} rules but {len(w)} weight rows")
        m = len(self.intercept)
        if any(len(row) != m for row in w) or any(len(t.weights) != m for t in self.linear):
            raise ValueError(f"every weight row must have {m} columns, as the intercept has")

    # ------------------------------------------------------------------ size
    @property
    def n_rules(self) -> int:
        return len(self.rules)

    @property
    def n_terms(self) -> int:
        """Rules and linear terms: what a reader adds up."""
        return len(self.rules) + len(self.linear)

    @property
    def n_conditions(self) -> int:
        return sum(r.n_conditions for r in self.rules) + len(self.linear)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    @property
    def default(self) -> Rule:
        """What the score gives when no term contributes: the intercept's outcome."""
        return Rule((), self._outcome_of(np.asarray(self.intercept)))

    def _outcome_of(self, w: np.ndarray) -> Any:
        if self.task != "classification":
            return float(w[0])
        if self.link == "logistic":
            return self.classes[1] if w[0] > 0 else self.classes[0]
        return self.classes[int(np.argmax(w))]

    # ------------------------------------------------------------------ evaluation
    coverage_matrix = _Rules.coverage_matrix
    firing_rule = _Rules.firing_rule

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """The score, shape (n_rows, n_columns)."""
        cov = self.coverage_matrix(frame).astype(float)
        score = np.tile(np.asarray(self.intercept), (len(frame), 1))
        if self.rules:
            score += cov @ np.asarray(self.weights)
        for t in self.linear:
            score += np.outer(t.values(frame), t.weights)
        return score

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.task != "classification":
            raise ValueError("predict_proba is for classification rules")
        s = self.decision_function(frame)
        if self.link == "logistic":
            p1 = 1.0 / (1.0 + np.exp(-np.clip(s[:, 0], -700, 700)))
            return np.column_stack([1.0 - p1, p1])
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        s = self.decision_function(frame)
        if self.task != "classification":
            return s[:, 0]
        classes = np.asarray(self.classes, dtype=object)
        if self.link == "logistic":
            # Ties (score exactly 0) go to the first class, as argmax of (0.5, 0.5) does.
            return classes[(s[:, 0] > 0).astype(int)]
        return classes[s.argmax(axis=1)]

    # ------------------------------------------------------------------ text
    def _w_text(self, w: float) -> str:
        if self.scale != 1.0:
            return f"{int(round(self.scale * w)):+d}"
        return f"{'+' if w >= 0 else '−'} {format_number(abs(w))}"

    def text(self) -> str:
        cols = range(len(self.intercept))
        names = (
            [f"score of {_fmt_cat(c)}" for c in self.classes]
            if self.link == "softmax"
            else (["log-odds of " + _fmt_cat(self.classes[1])] if self.link == "logistic" else ["prediction"])
        )
        unit = "points" if self.scale != 1.0 else ""
        if unit and self.link == "logistic":
            names = ["points"]  # offset + scale × log-odds: the total a scorecard adds up
            unit = ""
        lines = []
        for k in cols:
            head = f"{names[k]}{' (' + unit + ')' if unit else ''} = {format_number(self.scale * self.intercept[k]) if self.scale == 1.0 else int(round(self.offset + self.scale * self.intercept[k]))}"
            lines.append(head)
            for r, w in zip(self.rules, self.weights):
                if w[k] != 0:
                    lines.append(f"  {self._w_text(w[k])} if {r.condition_text()}")
            for t in self.linear:
                if t.weights[k] != 0:
                    lines.append(f"  {self._w_text(t.weights[k])} × {t.feature} (missing counts as {format_number(t.fill)})")
        if self.link == "logistic" and self.scale != 1.0:
            side = "below" if self.scale < 0 else "above"
            lines.append(
                f"→ {_fmt_cat(self.classes[1])} if the points total is {side} {format_number(self.offset)}, "
                f"else {_fmt_cat(self.classes[0])}"
            )
        elif self.link == "logistic":
            lines.append(f"→ {_fmt_cat(self.classes[1])} if the score is above 0, else {_fmt_cat(self.classes[0])}")
        elif self.link == "softmax":
            lines.append("→ the class with the highest score")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "additive",
            "task": self.task,
            "classes": None if self.classes is None else [_plain(c) for c in self.classes],
            "link": self.link,
            "scale": self.scale,
            "offset": self.offset,
            "intercept": list(self.intercept),
            "rules": [{**r.to_dict(), "weights": list(w)} for r, w in zip(self.rules, self.weights)],
            "linear": [t.to_dict() for t in self.linear],
            "default": self.default.to_dict(),
            "n_rules": self.n_rules,
            "n_terms": self.n_terms,
            "n_conditions": self.n_conditions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AdditiveRules":
        """The model of :meth:`to_dict` (its texts and ``default`` are derived, and ignored).
        An optional ``feature_order`` entry is kept."""
        if d.get("type", "additive") != "additive":
            raise ValueError(f"a {d.get('type')!r} cannot be read as an AdditiveRules")
        task = d.get("task", "regression")
        rules = [Rule.from_dict(r) for r in d["rules"]]
        if task != "classification":
            rules = [Rule(r.conditions, float(r.outcome), r.proba, r.support) for r in rules]
        classes = d.get("classes")
        order = d.get("feature_order")
        return cls(
            tuple(rules),
            tuple(tuple(r["weights"]) for r in d["rules"]),
            tuple(d["intercept"]),
            tuple(LinearTerm.from_dict(t) for t in d.get("linear", ())),
            link=d.get("link", "identity"),
            task=task,
            classes=None if classes is None else tuple(classes),
            scale=float(d.get("scale", 1.0)),
            feature_order=None if order is None else tuple(order),
            **({"offset": float(d["offset"])} if "offset" in d else {}),
        )
