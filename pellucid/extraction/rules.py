"""The rule data model shared by every rule surrogate.

A :class:`Condition` tests one raw feature ("Income <= 120.5", "Home in {rent, other}"), a
:class:`Rule` is a conjunction of conditions with an outcome, and a :class:`RuleList` (ordered,
first match wins) or :class:`RuleSet` (unordered) holds rules and a default. Every text, JSON
and later export is derived from these objects; a surrogate whose predictions come from its
rules says exactly what it does.

A fitted surrogate's model is finalised by :class:`ConditionFitter` (through
:func:`map_conditions`): every threshold becomes the shortest decimal that splits the training
rows the same way (:func:`snap_threshold`), printed in full, and conditions on features that
never had a missing value (:func:`features_with_missing`) let none pass; :func:`rule_shares`
counts each rule's training rows on both bases (matched, decided).

Tables given to ``apply``/``predict`` are in the canonical form of
:meth:`pellucid.schema.Schema.validate`: numeric kinds as float64 (NaN for missing),
categorical kinds as objects holding the schema's categories.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from .._validation import exact, fixed, pct, plain, shortest_between, sig
from ..errors import ParameterError

NUMERIC_OPS = ("<=", "<", ">", ">=")
SET_OPS = ("in", "not in")
#: Kinds whose values are whole numbers: their whole thresholds print as integers.
INTEGER_KINDS = ("integer", "binary")
#: The kinds a condition may name (those of :class:`pellucid.schema.Kind`).
KINDS = ("numeric", "integer", "binary", "categorical", "ordinal")


def _compare(x: float, op: str, t: float) -> bool:
    if op == "<=":
        return x <= t
    if op == "<":
        return x < t
    if op == ">":
        return x > t
    return x >= t


def format_number(x: float, integer: bool = False) -> str:
    """A threshold or weight as printed: :func:`pellucid._validation.exact` (kept as an alias
    because ``pellucid.extraction`` exports it). Exact values are written in full, never
    rounded: what is printed is what is tested."""
    return exact(x, integer)


def _fmt_cat(c: Any) -> str:
    if isinstance(c, (bool, np.bool_)):
        return str(bool(c))
    if isinstance(c, (float, np.floating)) and float(c).is_integer():
        return str(int(c))
    return str(c)


#: Characters that would make a category in a set read as more than one, or not as itself.
_SET_SYNTAX = frozenset(',{}"\\')


def _category_in_text(c: Any) -> str:
    """A category as a condition's text writes it: as itself, or in double quotes (JSON's
    escapes) where it would otherwise read as something else: ``"a, b"`` (not two categories),
    ``" rent"`` (its space kept), ``""`` (the empty category)."""
    s = _fmt_cat(c)
    if not s or s != s.strip() or not _SET_SYNTAX.isdisjoint(s):
        return json.dumps(s, ensure_ascii=False)
    return s


def _numeric_column(frame: pd.DataFrame, name: str, store: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (missing as NaN) and its missing mask, kept in ``store``."""
    key = ("numeric column", name)
    if store is not None and key in store:
        return store[key]
    v = frame[name].to_numpy(dtype="float64", na_value=np.nan)
    out = (v, np.isnan(v))
    if store is not None:
        store[key] = out
    return out


def _category_column(frame: pd.DataFrame, name: str, store: dict | None) -> tuple[np.ndarray, Any]:
    """A column as codes into its distinct values (-1 where missing) and those values (an
    Index of the column's dtype), kept in ``store``."""
    key = ("category column", name)
    if store is not None and key in store:
        return store[key]
    out = pd.factorize(frame[name])
    if store is not None:
        store[key] = out
    return out


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
            raise ParameterError(f"unknown condition operator {self.op!r}; use one of {NUMERIC_OPS + SET_OPS}")

    # ------------------------------------------------------------------ evaluation
    def apply(self, frame: pd.DataFrame, _columns: dict | None = None) -> np.ndarray:
        """Boolean mask of the rows that satisfy the condition. ``_columns``: a dict in which
        the frame's columns, read once into arrays, are kept for the next condition on the
        same frame (a model's conditions share a few features)."""
        if self.op in NUMERIC_OPS:
            v, isna = _numeric_column(frame, self.feature, _columns)
            with np.errstate(invalid="ignore"):
                if self.op == "<=":
                    m = v <= self.value
                elif self.op == "<":
                    m = v < self.value
                elif self.op == ">":
                    m = v > self.value
                else:
                    m = v >= self.value
        else:
            codes, uniques = _category_column(frame, self.feature, _columns)
            isna = codes < 0
            # Membership of each distinct value, as the column's own isin decides it.
            inset = np.asarray(uniques.isin(list(self.value)), dtype=bool)
            m = np.zeros(len(codes), dtype=bool) if not len(inset) else inset[np.where(isna, 0, codes)]
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
            cats = [_category_in_text(c) for c in self.value]
            if len(cats) == 1:
                body = f"{name} {'=' if self.op == 'in' else '≠'} {cats[0]}"
            else:
                body = f"{name} {self.op} {{{', '.join(cats)}}}"
        if self.missing:
            return f"({body} or {name} is missing)"
        return body

    def _numeric_text(self, name: str) -> str:
        t, op = self.value, self.op
        if self.kind == "binary":
            # A binary feature holds 0 or 1 (the schema refuses anything else): a test that
            # one of them passes is an equality.
            passing = [v for v in (0, 1) if _compare(float(v), op, t)]
            if len(passing) == 1:
                return f"{name} = {passing[0]}"
        # The threshold in full, with the operator the model applies: the printed test
        # accepts exactly the rows the model's does, whatever their values.
        return f"{name} {op} {exact(t, self.kind in INTEGER_KINDS)}"

    def to_dict(self) -> dict[str, Any]:
        """The condition as plain JSON values. An infinite threshold (a test of missingness
        alone) is written as the string ``"inf"`` or ``"-inf"``, which JSON can carry and
        :meth:`from_dict` reads back: ``x > inf`` (only a missing value passes) and
        ``x > -inf`` (every known value passes) stay told apart."""
        value = plain(list(self.value), nonfinite="keep", other=None) if self.op in SET_OPS else json_number(self.value)
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
        """The condition of :meth:`to_dict` (its ``text`` is derived, and ignored).

        Raises
        ------
        ParameterError
            An entry that is not a condition: not an object, no feature, an unknown
            operator or kind, a threshold that is neither a number nor ``"inf"`` /
            ``"-inf"`` (a report written before version 2.0 stored infinite thresholds as
            ``null``, which cannot be read back), a set that is not a list, a ``missing``
            that is not true or false. The message names the condition.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a condition must be an object with feature, op and value; got {d!r}")
        name = _condition_name(d)
        feature, op = d.get("feature"), d.get("op")
        if not isinstance(feature, str):
            raise ParameterError(f"condition {name}: 'feature' must be a feature name (text), got {feature!r}")
        if op not in NUMERIC_OPS + SET_OPS:
            raise ParameterError(f"condition {name}: unknown operator {op!r}; expected one of {list(NUMERIC_OPS + SET_OPS)}")
        value = d.get("value")
        if op in NUMERIC_OPS:
            value = read_number(value, f"condition {name}: the threshold", infinite=True)
        elif not isinstance(value, (list, tuple)):
            raise ParameterError(f"condition {name}: the categories of {op!r} must be a list, got {value!r}")
        missing = d.get("missing", False)
        if not isinstance(missing, (bool, np.bool_)):
            raise ParameterError(f"condition {name}: 'missing' must be true or false, got {missing!r}")
        kind = d.get("kind", "numeric")
        if kind not in KINDS:
            raise ParameterError(f"condition {name}: unknown kind {kind!r}; expected one of {list(KINDS)}")
        return cls(feature, op, value, bool(missing), kind)


def _condition_name(d: Mapping[str, Any]) -> str:
    """How an error names a stored condition: its text, else its parts."""
    text = d.get("text")
    if isinstance(text, str) and text:
        return repr(text)
    return repr(" ".join(str(d.get(k)) for k in ("feature", "op", "value")))


def json_number(x: float) -> float | str:
    """``x`` for JSON: finite as it is, infinite as the string ``"inf"`` or ``"-inf"``."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def read_number(v: Any, what: str, infinite: bool = False) -> float:
    """A number read from JSON (and, with ``infinite``, the strings ``"inf"`` / ``"-inf"``
    that :func:`json_number` writes).

    Raises
    ------
    ParameterError
        Anything else (``null``, text, a boolean, NaN), with ``what`` naming the entry.
    """
    if infinite and isinstance(v, str) and v.strip().lower() in ("inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(v.replace("infinity", "inf"))
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        also = ", or the string 'inf' or '-inf'" if infinite else ""
        raise ParameterError(f"{what} is {v!r}; expected a number{also}")
    f = float(v)
    if math.isnan(f) or (math.isinf(f) and not infinite):
        raise ParameterError(f"{what} is {f!r}; expected a finite number")
    return f


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
        columns = {} if _cache is None else _cache  # conditions on one feature read it once
        for c in self.conditions:
            if _cache is not None:
                if c not in _cache:
                    _cache[c] = c.apply(frame, columns)
                m &= _cache[c]
            else:
                m &= c.apply(frame, columns)
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
            extras.append(f"p={fixed(max(self.proba), 2)}")
        if confidence and self.support is not None:
            extras.append(f"covers {pct(self.support)}")
        return f"{s} ({', '.join(extras)})" if extras else s

    def to_dict(self) -> dict[str, Any]:
        outcome = plain(self.outcome, nonfinite="keep", other=None)
        return {
            "text": self.text(),
            "conditions": [c.to_dict() for c in self.conditions],
            "outcome": json_number(outcome) if isinstance(outcome, float) else outcome,
            "proba": None if self.proba is None else [float(p) for p in self.proba],
            "support": None if self.support is None else float(self.support),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Rule":
        """The rule of :meth:`to_dict` (its ``text`` is derived, and ignored).

        Raises
        ------
        ParameterError
            Not an object, no ``outcome``, conditions that are not a list of conditions
            (see :meth:`Condition.from_dict`), a ``proba`` or ``support`` that is not made of
            numbers. The message names the condition or the entry at fault.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a rule must be an object with conditions and an outcome; got {d!r}")
        if "outcome" not in d:
            raise ParameterError("a rule has no 'outcome'")
        conditions = d.get("conditions") or ()
        if not isinstance(conditions, (list, tuple)):
            raise ParameterError(f"a rule's 'conditions' must be a list, got {conditions!r}")
        proba = d.get("proba")
        if proba is not None:
            if not isinstance(proba, (list, tuple)):
                raise ParameterError(f"a rule's 'proba' must be a list of numbers, got {proba!r}")
            proba = tuple(read_number(p, "a class probability of the rule") for p in proba)
        support = d.get("support")
        return cls(
            tuple(Condition.from_dict(c) for c in conditions),
            d["outcome"],
            proba,
            None if support is None else read_number(support, "the rule's support"),
        )


def _interval_text(lo: Condition, hi: Condition) -> str:
    name = lo.feature
    integer = lo.kind in INTEGER_KINDS
    body = None
    if lo.op == ">=" and hi.op == "<=" and lo.value == hi.value:
        body = f"{name} = {exact(lo.value, integer)}"
    elif lo.kind == "binary":
        passing = [v for v in (0, 1) if _compare(float(v), lo.op, lo.value) and _compare(float(v), hi.op, hi.value)]
        if len(passing) == 1:
            body = f"{name} = {passing[0]}"
    if body is None:
        lo_op = "<" if lo.op == ">" else "<="
        body = f"{exact(lo.value, integer)} {lo_op} {name} {hi.op} {exact(hi.value, integer)}"
    return f"({body} or {name} is missing)" if lo.missing else body


def _fmt_outcome(o: Any) -> str:
    if isinstance(o, (float, np.floating)) and not float(o).is_integer():
        # A regression's value, the mean of the network's outputs under the rule: an estimate,
        # to 6 significant digits (report.json holds it exactly).
        return sig(float(o), 6)
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

    # Every method that reads which rules fire takes that matrix as ``coverage`` where the
    # caller has it already (:meth:`coverage_matrix` of the same frame), so that several
    # readings of one frame evaluate its conditions once.
    def predict(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        if self.task == "classification":
            p = self.predict_proba(frame, coverage)
            return np.asarray(self.classes, dtype=object)[p.argmax(axis=1)] if len(p) else np.array([], dtype=object)
        return self._combine(frame, coverage)

    def predict_proba(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        if self.task != "classification":
            raise ParameterError("predict_proba is for classification rules; this model is a regression")
        return self._combine(frame, coverage)

    def firing_rule(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        """Index of the rule that decides each row (``n_rules`` for the default). For an
        unordered set the first covering rule is named."""
        cov = self.coverage_matrix(frame) if coverage is None else coverage
        any_ = cov.any(axis=1) if cov.shape[1] else np.zeros(len(frame), dtype=bool)
        idx = cov.argmax(axis=1) if cov.shape[1] else np.zeros(len(frame), dtype=int)
        return np.where(any_, idx, self.n_rules)

    def _combine(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "rule_list" if self.ordered else "rule_set",
            "task": self.task,
            "classes": None if self.classes is None else [plain(c, nonfinite="keep", other=None) for c in self.classes],
            "rules": [r.to_dict() for r in self.rules],
            "default": self.default.to_dict(),
            "n_rules": self.n_rules,
            "n_conditions": self.n_conditions,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "_Rules":
        """The rule list or rule set of :meth:`to_dict`; called on the base class, its
        ``type`` decides which. An optional ``feature_order`` entry is kept.

        Raises
        ------
        ParameterError
            An unknown ``type``, a malformed rule or condition (named by its index and
            text), classification outcomes that are not among ``classes``.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a rule model must be an object, got {type(d).__name__}")
        types = {"rule_list": RuleList, "rule_set": RuleSet}
        kind = d.get("type")
        if cls is _Rules:
            if kind not in types:
                raise ParameterError(f"unknown rule model type {kind!r}; expected one of {sorted(types)}")
            cls = types[kind]
        elif kind is not None and types.get(kind) is not cls:
            raise ParameterError(f"a {kind!r} cannot be read as a {cls.__name__}")
        task, classes, order = _read_header(d)
        rules = _read_rules(d, task, classes)
        default = _read_rule(d.get("default"), "the default rule", task, classes)
        return cls(tuple(rules), default, task=task, classes=classes, feature_order=order)


def _read_header(d: Mapping[str, Any]) -> tuple[str, tuple | None, tuple[str, ...] | None]:
    """``task``, ``classes`` and ``feature_order`` of a stored rule model, checked."""
    task = d.get("task", "classification")
    if task not in ("classification", "regression"):
        raise ParameterError(f"unknown task {task!r}; expected 'classification' or 'regression'")
    classes = d.get("classes")
    if classes is not None and not isinstance(classes, (list, tuple)):
        raise ParameterError(f"'classes' must be a list of class labels, got {classes!r}")
    if task == "classification" and not classes:
        raise ParameterError("a classification rule model needs its 'classes'")
    order = d.get("feature_order")
    if order is not None and (not isinstance(order, (list, tuple)) or not all(isinstance(n, str) for n in order)):
        raise ParameterError(f"'feature_order' must be a list of feature names, got {order!r}")
    return task, None if classes is None else tuple(classes), None if order is None else tuple(order)


def _read_rule(d: Any, what: str, task: str, classes: tuple | None) -> Rule:
    """One stored rule, errors prefixed with ``what`` (``rule 3``)."""
    try:
        r = Rule.from_dict(d)
    except ParameterError as e:
        raise ParameterError(f"{what}: {e}") from None
    if task != "classification":
        # A regression outcome is a number (infinities written as text).
        return Rule(r.conditions, read_number(r.outcome, f"{what}: the outcome", infinite=True), r.proba, r.support)
    if classes is not None and r.outcome is not None and r.outcome not in classes:
        raise ParameterError(f"{what}: the outcome {r.outcome!r} is not one of the classes {list(classes)}")
    if r.proba is not None and classes is not None and len(r.proba) != len(classes):
        raise ParameterError(f"{what}: 'proba' has {len(r.proba)} entries for {len(classes)} classes")
    return r


def _read_rules(d: Mapping[str, Any], task: str, classes: tuple | None) -> list[Rule]:
    rules = d.get("rules")
    if not isinstance(rules, (list, tuple)):
        raise ParameterError(f"'rules' must be a list of rules, got {rules!r}")
    return [_read_rule(r, f"rule {j}", task, classes) for j, r in enumerate(rules)]


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

    def _combine(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        vals = self._rule_values()
        return vals[self.firing_rule(frame, coverage)]

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

    def _combine(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        vals = self._rule_values()
        cov = (self.coverage_matrix(frame) if coverage is None else coverage).astype(float)
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
        return f"{exact(scale * self.weights[column])} × {self.feature}"

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "weights": list(self.weights), "fill": self.fill, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LinearTerm":
        """The term of :meth:`to_dict`.

        Raises
        ------
        ParameterError
            Not an object, no feature name, weights or fill that are not numbers.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a linear term must be an object with feature, weights and fill; got {d!r}")
        feature = d.get("feature")
        if not isinstance(feature, str):
            raise ParameterError(f"a linear term's 'feature' must be a feature name, got {feature!r}")
        weights = d.get("weights")
        if not isinstance(weights, (list, tuple)) or not weights:
            raise ParameterError(f"the weights of {feature!r} must be a list of numbers, got {weights!r}")
        kind = d.get("kind", "numeric")
        if kind not in KINDS:
            raise ParameterError(f"the linear term of {feature!r} has unknown kind {kind!r}")
        return cls(
            feature,
            tuple(read_number(w, f"a weight of {feature!r}") for w in weights),
            read_number(d.get("fill"), f"the fill of {feature!r}"),
            kind,
        )


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
    #: Significant digits of the weights in the text (None: in full). The model adds its
    #: exact weights; :func:`weight_digits` finds the fewest digits with which the printed
    #: weights decide every training row as the model does.
    digits: int | None = field(default=None, compare=False)

    ordered: bool = field(default=False, init=False)
    additive: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.link not in LINKS:
            raise ParameterError(f"unknown link {self.link!r}; use one of {LINKS}")
        w = tuple(tuple(float(x) for x in np.atleast_1d(row)) for row in self.weights)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "intercept", tuple(float(x) for x in np.atleast_1d(self.intercept)))
        if len(w) != len(self.rules):
            raise ParameterError(f"{len(self.rules)} rules but {len(w)} weight rows")
        m = len(self.intercept)
        if any(len(row) != m for row in w) or any(len(t.weights) != m for t in self.linear):
            raise ParameterError(f"every weight row must have {m} columns, as the intercept has")

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

    def decision_function(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        """The score, shape (n_rows, n_columns)."""
        cov = (self.coverage_matrix(frame) if coverage is None else coverage).astype(float)
        score = np.tile(np.asarray(self.intercept), (len(frame), 1))
        if self.rules:
            score += cov @ np.asarray(self.weights)
        for t in self.linear:
            score += np.outer(t.values(frame), t.weights)
        return score

    def predict_proba(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        if self.task != "classification":
            raise ParameterError("predict_proba is for classification rules; this model is a regression")
        s = self.decision_function(frame, coverage)
        if self.link == "logistic":
            p1 = 1.0 / (1.0 + np.exp(-np.clip(s[:, 0], -700, 700)))
            return np.column_stack([1.0 - p1, p1])
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, frame: pd.DataFrame, coverage: np.ndarray | None = None) -> np.ndarray:
        s = self.decision_function(frame, coverage)
        if self.task != "classification":
            return s[:, 0]
        classes = np.asarray(self.classes, dtype=object)
        if self.link == "logistic":
            # Ties (score exactly 0) go to the first class, as argmax of (0.5, 0.5) does.
            return classes[(s[:, 0] > 0).astype(int)]
        return classes[s.argmax(axis=1)]

    # ------------------------------------------------------------------ text
    def _number(self, w: float) -> str:
        return exact(w) if self.digits is None else exact(_round_sig(w, self.digits))

    def _w_text(self, w: float) -> str:
        if self.scale != 1.0:
            return f"{int(round(self.scale * w)):+d}"
        return f"{'+' if w >= 0 else '−'} {self._number(abs(w))}"

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
            head = f"{names[k]}{' (' + unit + ')' if unit else ''} = {self._number(self.intercept[k]) if self.scale == 1.0 else int(round(self.offset + self.scale * self.intercept[k]))}"
            lines.append(head)
            for r, w in zip(self.rules, self.weights):
                if w[k] != 0:
                    lines.append(f"  {self._w_text(w[k])} if {r.condition_text()}")
            for t in self.linear:
                if t.weights[k] != 0:
                    lines.append(f"  {self._w_text(t.weights[k])} × {t.feature} (missing counts as {exact(t.fill, t.kind in INTEGER_KINDS)})")
        if self.link == "logistic" and self.scale != 1.0:
            side = "below" if self.scale < 0 else "above"
            said = f"{side} {exact(self.offset)}"
            if self._whole_points():
                # Totals are whole numbers: the whole number on the decision's side of the
                # cutoff says the same in a reader's terms; the cutoff follows in full.
                n = math.ceil(self.offset) - 1 if self.scale < 0 else math.floor(self.offset) + 1
                said = f"{n} or {'less' if self.scale < 0 else 'more'} ({said})"
            lines.append(
                f"→ {_fmt_cat(self.classes[1])} if the points total is {said}, else {_fmt_cat(self.classes[0])}"
            )
        elif self.link == "logistic":
            lines.append(f"→ {_fmt_cat(self.classes[1])} if the score is above 0, else {_fmt_cat(self.classes[0])}")
        elif self.link == "softmax":
            lines.append("→ the class with the highest score")
        return "\n".join(lines)

    def _whole_points(self) -> bool:
        """Whether the base points and every rule's points are whole numbers (and no term adds
        points per unit), so that every total is a whole number. A scorecard's base carries a
        millionth of a point that sends a total exactly at a whole cutoff to the good side."""
        if self.linear or len(self.intercept) != 1:
            return False
        base = self.offset + self.scale * float(self.intercept[0])
        pts = [self.scale * float(w[0]) for w in self.weights]
        return abs(base - round(base)) <= 1e-5 and all(abs(p - round(p)) <= 1e-6 for p in pts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "additive",
            "task": self.task,
            "classes": None if self.classes is None else [plain(c, nonfinite="keep", other=None) for c in self.classes],
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
            "digits": self.digits,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AdditiveRules":
        """The model of :meth:`to_dict` (its texts and ``default`` are derived, and ignored).
        An optional ``feature_order`` entry is kept.

        Raises
        ------
        ParameterError
            Another ``type``, a malformed rule, condition, weight row or linear term (named).
        """
        if not isinstance(d, Mapping):
            raise ParameterError(f"a rule model must be an object, got {type(d).__name__}")
        if d.get("type", "additive") != "additive":
            raise ParameterError(f"a {d.get('type')!r} cannot be read as an AdditiveRules")
        task, classes, order = _read_header({"task": "regression", **d})
        rules = _read_rules(d, task, None)
        weights = []
        for j, r in enumerate(d["rules"]):
            w = r.get("weights")
            if not isinstance(w, (list, tuple)) or not w:
                raise ParameterError(f"rule {j}: 'weights' must be a list of numbers, got {w!r}")
            weights.append(tuple(read_number(x, f"rule {j}: a weight") for x in w))
        intercept = d.get("intercept")
        if not isinstance(intercept, (list, tuple)) or not intercept:
            raise ParameterError(f"'intercept' must be a list of numbers, got {intercept!r}")
        intercept = tuple(read_number(x, "the intercept") for x in intercept)
        linear = d.get("linear") or ()
        if not isinstance(linear, (list, tuple)):
            raise ParameterError(f"'linear' must be a list of linear terms, got {linear!r}")
        terms = []
        for j, t in enumerate(linear):
            try:
                terms.append(LinearTerm.from_dict(t))
            except ParameterError as e:
                raise ParameterError(f"linear term {j}: {e}") from None
        scale = read_number(d.get("scale", 1.0), "'scale'")
        offset = read_number(d.get("offset", 0.0), "'offset'")
        digits = d.get("digits")
        if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17):
            raise ParameterError(f"'digits' must be a whole number of significant digits (1 to 17) or null, got {digits!r}")
        return cls(
            tuple(rules),
            tuple(weights),
            intercept,
            tuple(terms),
            link=d.get("link", "identity"),
            task=task,
            classes=classes,
            scale=scale,
            feature_order=order,
            offset=offset,
            digits=digits,
        )


# ---------------------------------------------------------------------- fitted models: printed = tested
RuleModel = Union[RuleList, RuleSet, AdditiveRules]


def snap_threshold(op: str, threshold: float, values: np.ndarray) -> float:
    """The shortest decimal that splits ``values`` as ``x op threshold`` does.

    The largest value on the accepting side of ``x <= t`` (or ``x < t``) and the smallest on
    the other bound a gap; :func:`pellucid._validation.shortest_between` picks the decimal
    with the fewest significant digits in it, open or closed at each end as the operator
    needs (``<=`` and ``>`` keep the lower value, ``<`` and ``>=`` the upper one). A
    threshold beyond every value moves no further than the nearest value, towards which it
    is shortened; an infinite threshold (a test of missingness) and a feature with no known
    values keep theirs.

    Parameters
    ----------
    op : str
        ``<=``, ``<``, ``>`` or ``>=``.
    threshold : float
    values : numpy.ndarray
        The known values of the feature, sorted ascending, without NaN (repeats allowed).

    Returns
    -------
    float
        ``t`` such that ``values op t`` equals ``values op threshold`` elementwise.
    """
    t = float(threshold)
    if not math.isfinite(t) or len(values) == 0:
        return t
    if op in ("<=", ">"):
        i = int(np.searchsorted(values, t, side="right"))  # values at or below t
        closed = "left"  # lo <= t' < hi keeps lo below (or at) and hi above
    else:
        i = int(np.searchsorted(values, t, side="left"))  # values below t
        closed = "right"  # lo < t' <= hi keeps lo below and hi at (or above)
    lo = float(values[i - 1]) if i > 0 else t
    hi = float(values[i]) if i < len(values) else t
    if not lo < hi:
        return t  # t is itself the one value there is to keep
    return shortest_between(lo, hi, closed=closed)


def fitted_condition(c: Condition, values: np.ndarray | None, has_missing: bool) -> Condition:
    """``c`` as a fitted model keeps it: its threshold snapped to the shortest decimal that
    splits ``values`` (the training rows' known values) the same way
    (:func:`snap_threshold`), and, for a feature that had no missing value in the data,
    ``missing=False``: no rule then speaks of values that never occurred, and a row missing
    such a feature matches no condition on it."""
    value, missing = c.value, c.missing and has_missing
    if c.op in NUMERIC_OPS and values is not None:
        value = snap_threshold(c.op, c.value, values)
    if value == c.value and missing == c.missing:
        return c
    return Condition(c.feature, c.op, value, missing, c.kind)


def features_with_missing(schema: Any, rows: pd.DataFrame | None = None) -> tuple[str, ...]:
    """The features that had missing values in the data: in the schema's table
    (``Feature.n_missing``) or in ``rows``; in schema order."""
    out = []
    for f in schema:
        seen = f.n_missing > 0
        if not seen and rows is not None and f.name in rows:
            seen = bool(rows[f.name].isna().any())
        if seen:
            out.append(f.name)
    return tuple(out)


def missing_note(with_missing: Sequence[str], features: Sequence[str]) -> str:
    """One sentence for a model's preamble: which features had missing values, and what a
    missing value does to a condition on any other."""
    with_missing = [f for f in features if f in set(with_missing)]
    if not with_missing:
        return (
            "No feature had missing values in the data, so no condition mentions them: a row missing a value "
            "fails every condition on that feature."
        )
    names = ", ".join(with_missing)
    if len(with_missing) == len(features):
        return (
            f"Every feature had missing values in the data ({names}): a condition that a missing value passes "
            "says so (\"or … is missing\"); any other fails a row missing that feature."
        )
    return (
        f"Only {names} had missing values in the data: a condition on {'it' if len(with_missing) == 1 else 'them'} "
        "that a missing value passes says so (\"or … is missing\"). A row missing any other feature fails "
        "every condition on it."
    )


class ConditionFitter:
    """Maps a fitted model's conditions to those it keeps (:func:`fitted_condition`), with
    the training rows' sorted known values of each feature read once.

    Parameters
    ----------
    rows : pandas.DataFrame
        The training rows, in canonical form.
    with_missing : iterable of str
        The features that had missing values in the data (:func:`features_with_missing`).
    """

    def __init__(self, rows: pd.DataFrame, with_missing: Iterable[str]) -> None:
        self.rows = rows
        self.with_missing = frozenset(with_missing)
        self._values: dict[str, np.ndarray | None] = {}
        self._done: dict[Condition, Condition] = {}

    def values(self, feature: str) -> np.ndarray | None:
        """Sorted distinct known values of a feature in the rows (None for a feature the
        rows lack)."""
        if feature not in self._values:
            if feature not in self.rows:
                self._values[feature] = None
            else:
                v = self.rows[feature].to_numpy(dtype="float64", na_value=np.nan)
                self._values[feature] = np.unique(v[~np.isnan(v)])
        return self._values[feature]

    def __call__(self, c: Condition) -> Condition:
        out = self._done.get(c)
        if out is None:
            values = self.values(c.feature) if c.op in NUMERIC_OPS else None
            out = self._done[c] = fitted_condition(c, values, c.feature in self.with_missing)
        return out


def map_conditions(model: RuleModel, fn: Callable[[Condition], Condition]) -> RuleModel:
    """The same model with every condition of its rules replaced by ``fn(condition)``
    (weights, outcomes, linear terms and order kept)."""

    def rule(r: Rule) -> Rule:
        conds = tuple(fn(c) for c in r.conditions)
        return r if conds == r.conditions else replace(r, conditions=conds)

    rules = tuple(rule(r) for r in model.rules)
    if isinstance(model, AdditiveRules):
        return replace(model, rules=rules)
    return replace(model, rules=rules, default=rule(model.default))


def _round_sig(x: float, digits: int) -> float:
    return float(f"{float(x):.{digits - 1}e}")


def round_weights(model: "AdditiveRules", digits: int) -> "AdditiveRules":
    """The additive model with every weight, intercept and linear weight rounded to
    ``digits`` significant digits (thresholds, fills and points untouched): the model a
    reader adds up from a text printed with that many digits."""
    return replace(
        model,
        weights=tuple(tuple(_round_sig(w, digits) for w in row) for row in model.weights),
        intercept=tuple(_round_sig(w, digits) for w in model.intercept),
        linear=tuple(replace(t, weights=tuple(_round_sig(w, digits) for w in t.weights)) for t in model.linear),
    )


def weight_digits(model: "AdditiveRules", rows: pd.DataFrame, *, low: int = 3, rtol: float = 1e-4,
                  coverage: np.ndarray | None = None) -> int | None:
    """The fewest significant digits (at least ``low``) with which an additive model's
    printed weights decide every row of ``rows`` as the model does (classification), or
    predict within ``rtol`` of the spread of its predictions (regression); None when only
    the weights in full do, and for a scorecard (it prints integer points).

    Written in full the weights were seventeen digits each; a reader adding up the printed
    ones reaches the model's decision on every training row. Rounding changes no condition:
    the rules' ``coverage`` of ``rows`` is read once (or given)."""
    if model.scale != 1.0:
        return None
    cov = model.coverage_matrix(rows) if coverage is None else coverage
    reference = model.predict(rows, cov)
    spread = float(np.ptp(reference)) if model.task != "classification" and len(rows) else 0.0
    for digits in range(low, 17):
        got = round_weights(model, digits).predict(rows, cov)
        if model.task == "classification":
            if np.array_equal(np.asarray(got, dtype=object), np.asarray(reference, dtype=object)):
                return digits
        elif np.all(np.abs(got.astype(float) - reference.astype(float)) <= rtol * max(spread, 1e-12)):
            return digits
    return None


def rule_shares(model: RuleModel, rows: pd.DataFrame, weights: np.ndarray | None = None,
                coverage: np.ndarray | None = None) -> dict[str, Any]:
    """Each rule's weighted share of ``rows`` that *match* its conditions and that it
    *decides*.

    A rule list's rule decides the rows it is the first to match; a rule set's, the rows it
    is the first to cover (the convention of :meth:`RuleList.firing_rule`, which the
    fidelity measures on held-out rows share; a tree's leaves cover each row once). In an
    additive model no rule decides alone: ``decides`` is None. The default matches every
    row and decides those no rule covers (None in an additive model).

    Returns
    -------
    dict
        ``rules``: one ``{"matches": share, "decides": share or None}`` per rule;
        ``default``: the same for the default.
    """
    n = len(rows)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = float(w.sum())
    share = (lambda m: float(w[m].sum()) / total) if total > 0 else (lambda m: 0.0)
    cov = model.coverage_matrix(rows) if coverage is None else coverage
    additive = isinstance(model, AdditiveRules)
    fires = None if additive else model.firing_rule(rows, cov)
    out = []
    for j in range(model.n_rules):
        out.append({"matches": share(cov[:, j]), "decides": None if additive else share(fires == j)})
    default = {"matches": 1.0, "decides": None if additive else share(fires == model.n_rules)}
    return {"rules": out, "default": default}
