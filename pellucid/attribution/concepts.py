"""Testing with concept activation vectors (TCAV; Kim et al., 2018): does a human concept, given
as example rows or as a rule on the raw features, push a network towards a class?

For a layer with activations ``h(x)``:

1. a linear classifier separates the layer's activations on the concept's rows from those on
   random rows; the normal of its decision boundary, pointing towards the concept, is the
   concept activation vector (CAV) ``v``;
2. for each row ``x`` of ``target_rows`` the directional derivative of the target's output
   along it, ``grad_h f_k(h(x)) . v``, says whether moving the activations towards the concept
   raises the output;
3. the TCAV score is the share of rows where that derivative is positive.

Fitted once per repeat with a fresh random set, the concept's CAVs are compared (two-sided
t-test over the repeats) with "random CAVs" (a random set against another random set): a concept
that does not differ from random directions is not significant.

What is compared is, by default, each CAV's *mean directional derivative* over the target rows
(``statistic="derivative"``), not its sign share (``statistic="sign"``, Kim et al.'s test). Sign
shares saturate: at a ReLU layer the gradient of a class often keeps one direction over the
class's rows, so nearly every direction, random ones included, scores close to 0 or 1. A concept
the network barely uses, but whose direction is stable from repeat to repeat, then scores 0 or 1
every time and beats the random CAVs' scattered 0s and 1s: on pellucid's generated benchmark an
input the label ignores came out significant at p = 5e-5 that way. The mean derivative keeps the
size: a random CAV's is centred on 0 (a random split has no preferred side), and a concept is
significant when moving the activations towards it changes the output consistently more than
moving them in random directions does. The TCAV score reported is the sign share either way.

On the benchmark (``benchmarks/tcav_concepts.py``, ten networks) the relevant concept is
significant and the irrelevant one is not on every network; the sign test on the same CAVs
calls the irrelevant one significant on some.

The directional derivatives agree with captum's ``TCAV`` sign counts for the same CAV (both read
``grad_h f_k . v > 0``).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._validation import Interval, Options, plain, validate_params
from ..errors import ParameterError, PellucidWarning
from ..extraction.rules import NUMERIC_OPS, Condition, Rule
from ._base import Prepared, find_layer, prepare
from .lrp import row_chunks

__all__ = ["TCAVResult", "tcav", "tcav_many", "parse_rule", "rule_mask"]

#: Fewest rows a concept (and each random set) may have: a linear classifier on fewer says nothing.
MIN_EXAMPLES = 5


@dataclass
class TCAVResult:
    """TCAV of one concept for one class at one layer.

    Attributes
    ----------
    concept : str
        The concept's name.
    description : str
        The rule that selected its rows, or "<n> example rows".
    score : float
        Mean TCAV score over the repeats: the share of ``target_rows`` whose target output rises
        when the layer's activations move towards the concept. 0.5 is what a direction unrelated to
        the output tends to give.
    scores : ndarray
        The score of each repeat's CAV, ``(repeats,)``.
    random_scores : ndarray
        The scores of the random CAVs (a random set against another random set), ``(repeats,)``.
    derivatives : ndarray
        Each repeat's CAV's mean directional derivative over ``target_rows``, ``(repeats,)``.
    random_derivatives : ndarray
        The same for the random CAVs (centred on 0).
    statistic : str
        What the t-test compared: ``"derivative"`` (``derivatives`` against
        ``random_derivatives``) or ``"sign"`` (``scores`` against ``random_scores``).
    p_value : float
        Two-sided t-test of the concept's statistic against the random CAVs';
        Bonferroni-corrected (``min(1, p * n_tests)``) when several concepts were tested together.
    p_value_raw : float
        The uncorrected p-value.
    n_tests : int
        Number of concepts tested together (the Bonferroni factor).
    alpha : float
        Significance level.
    significant : bool
        ``p_value < alpha``.
    cav_accuracy : float
        Mean accuracy of the concept's CAV classifiers on held-out activations. About 0.5
        means the layer does not separate the concept from random rows: its CAV is noise.
    random_accuracy : float
        The same for the random CAVs (about 0.5 is expected).
    separable : bool
        ``cav_accuracy >= accuracy_floor``; a concept that is not separable gets a warning and
        its score should not be read.
    layer : str
        Name of the layer in ``module.named_modules()``.
    target : object
        The class (label for an Oracle, output index for a bare module) whose output is tested.
    target_index : int or None
        Its output column (None for a single-output model).
    output : str
        What was differentiated: ``"probability"`` (an Oracle's class probability) or
        ``"output"`` (a bare module's own output, e.g. logits, as captum does).
    repeats : int
    n_concept, n_pool, n_target, n_examples : int
        Rows of the concept, rows of the random pool it is compared with, target rows, and rows
        drawn per set in each repeat.
    cavs, random_cavs : ndarray
        The unit CAVs on the flattened activations, ``(repeats, units)``; not in :meth:`to_dict`.
    """

    concept: str
    description: str
    score: float
    scores: np.ndarray
    random_scores: np.ndarray
    p_value: float
    p_value_raw: float
    n_tests: int
    alpha: float
    significant: bool
    cav_accuracy: float
    random_accuracy: float
    separable: bool
    layer: str
    target: Any
    target_index: int | None
    output: str
    repeats: int
    n_concept: int
    n_pool: int
    n_target: int
    n_examples: int
    cavs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    random_cavs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    derivatives: np.ndarray = field(default_factory=lambda: np.zeros(0))
    random_derivatives: np.ndarray = field(default_factory=lambda: np.zeros(0))
    statistic: str = "derivative"

    def to_dict(self) -> dict[str, Any]:
        """Every number of the result in JSON's plain types (the CAVs left out)."""
        keys = ("concept", "description", "score", "scores", "random_scores", "derivatives", "random_derivatives",
                "statistic", "p_value", "p_value_raw", "n_tests",
                "alpha", "significant", "cav_accuracy", "random_accuracy", "separable", "layer", "target",
                "target_index", "output", "repeats", "n_concept", "n_pool", "n_target", "n_examples")
        return {k: plain(getattr(self, k)) for k in keys}


# ---------------------------------------------------------------------------- public API
def tcav(model: Any, layer: Any, concept_rows: Any, random_rows: Any, target_rows: Any, target: Any,
         repeats: int = 10, *, random_state: int | None = 0, alpha: float = 0.05, reference: pd.DataFrame | None = None,
         name: str | None = None, max_examples: int = 500, holdout: float = 1 / 3, C: float = 1.0,
         accuracy_floor: float = 0.6, statistic: str = "derivative",
         batch_size: int | None = None) -> TCAVResult:
    """TCAV score and significance of one concept for one class at one layer.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        A torch network. With an :class:`~pellucid.Oracle`, DataFrames of raw rows are encoded
        by its preprocess and the class *probability* is differentiated (for two classes its
        directional derivative has the sign of the logit difference's). With a bare module,
        rows are its input (tensor, array, or a numeric DataFrame) and its own output (e.g.
        logits) is differentiated, as captum's ``TCAV`` does.
    layer : str or torch.nn.Module
        The layer, by its name in ``module.named_modules()`` (e.g. ``"2"`` in an
        ``nn.Sequential``, ``"encoder.fc1"``), or the module itself. Its output (flattened per
        row) is the activation space.
    concept_rows : DataFrame, ndarray, Tensor, str, Rule, Condition or sequence of Condition
        Examples of the concept in the form of ``target_rows``, or a rule on raw features that
        selects them from ``reference`` (default: ``random_rows``, which must then be a
        DataFrame): a string ``"debt_ratio > 0.6 and home == 'rent'"`` (see :func:`parse_rule`),
        or pellucid's :class:`~pellucid.extraction.rules.Rule` / ``Condition``. With a rule the
        rows of ``random_rows`` that satisfy it are left out of the random pool. At least
        :data:`MIN_EXAMPLES` rows.
    random_rows : DataFrame, ndarray or Tensor
        The pool of counterexamples (e.g. a sample of the population). Each repeat draws a
        random set from it as the concept's negatives, and two disjoint sets for a random CAV,
        so it needs at least twice as many rows as the sets (``min(n_concept, max_examples)``;
        the sets shrink to half the pool when it is smaller).
    target_rows : DataFrame, ndarray or Tensor
        The rows whose directional derivatives are counted, typically rows of class ``target``.
    target : class label or int
        The class tested: a label of the Oracle's classes, or an output index. One class for
        all rows; None or 0 only for a single-output model.
    repeats : int
        Number of concept CAVs and of random CAVs (each from a fresh random draw); at least 2
        for the t-test (Kim et al. use tens to hundreds).
    random_state : int or None
        Seed of the draws; the same seed gives the same result. Each concept uses its own
        generator seeded with it, so :func:`tcav` and :func:`tcav_many` agree per concept.
    alpha : float
        Significance level of the t-test.
    reference : DataFrame, optional
        The table a rule selects the concept's rows from (default ``random_rows``).
    name : str, optional
        The concept's name in the result (default: the rule's text, or "concept").
    max_examples : int
        Most rows drawn per set and repeat (the concept set is subsampled to it).
    holdout : float
        Share of each set kept out of the classifier's fit to measure its accuracy.
    C : float
        Inverse regularisation strength of the logistic regression on the scaled activations.
    accuracy_floor : float
        Held-out CAV accuracy below which the concept is flagged as not separable (warning).
    statistic : {"derivative", "sign"}
        What the t-test compares between the concept's CAVs and the random ones: their mean
        directional derivatives over ``target_rows`` (default), or their sign shares (the TCAV
        scores, as Kim et al. test them). Sign shares saturate on networks whose gradient keeps
        one direction over a class's rows; see the module's notes.
    batch_size : int, optional
        Rows per forward/backward pass.

    Returns
    -------
    TCAVResult

    Raises
    ------
    ParameterError
        For an unknown layer (the message lists the layer names), a layer the forward pass does
        not use or uses twice, a concept with fewer than :data:`MIN_EXAMPLES` rows, a rule that
        cannot be read or names an unknown feature, a target that is not a class, rows whose
        columns differ from ``target_rows``', or a random pool too small.
    ModelError
        For a model that is neither a torch Oracle nor a ``torch.nn.Module``.

    Notes
    -----
    The CAV of each repeat is the coefficient vector of a logistic regression (concept = 1,
    random = 0) fitted on the activations centred and divided by one common scale (the units'
    root-mean-square spread, so the penalty treats all units alike), mapped back to the
    activation space (``w / scale``, the normal of the decision boundary there) and scaled to
    unit length.
    Directional derivatives of exactly zero (a unit outside the ReLU's active range) count as
    not positive, as in captum.
    """
    key = name if name is not None else _default_name(concept_rows)
    out = tcav_many(model, layer, {key: concept_rows}, random_rows, target_rows, target, repeats,
                    random_state=random_state, alpha=alpha, reference=reference, max_examples=max_examples,
                    holdout=holdout, C=C, accuracy_floor=accuracy_floor, statistic=statistic,
                    batch_size=batch_size)
    return out[key]


def tcav_many(model: Any, layer: Any, concepts: Mapping[str, Any], random_rows: Any, target_rows: Any, target: Any,
              repeats: int = 10, *, random_state: int | None = 0, alpha: float = 0.05,
              reference: pd.DataFrame | None = None, max_examples: int = 500, holdout: float = 1 / 3, C: float = 1.0,
              accuracy_floor: float = 0.6, statistic: str = "derivative",
              batch_size: int | None = None) -> dict[str, TCAVResult]:
    """TCAV of several concepts at once, with Bonferroni-corrected p-values.

    Parameters are those of :func:`tcav`, except ``concepts``: a mapping of concept name ->
    concept (rows or a rule, as ``concept_rows``). The gradients of the target rows are computed
    once, in one forward/backward pass per chunk of rows, and projected on every CAV.

    Returns
    -------
    dict of str to TCAVResult
        In the order of ``concepts``. Each ``p_value`` is ``min(1, p * len(concepts))``, and
        ``significant`` means it is below ``alpha``.
    """
    validate_params("tcav", dict(repeats=repeats, alpha=alpha, max_examples=max_examples, holdout=holdout, C=C,
                                 accuracy_floor=accuracy_floor, statistic=statistic), _CONSTRAINTS)
    if not isinstance(concepts, Mapping) or not concepts:
        raise ParameterError("concepts must be a non-empty mapping of concept name -> rows or rule")
    if target is not None and (isinstance(target, (list, tuple, np.ndarray, pd.Series, torch.Tensor)) and
                               np.ndim(np.asarray(target, dtype=object)) > 0):
        raise ParameterError(f"TCAV tests one class for all target rows; got target={target!r}")
    if isinstance(target_rows, pd.DataFrame):
        for what, rows in (("random_rows", random_rows), ("reference", reference)):
            _check_columns(rows, target_rows, what)

    prep = prepare(model, target_rows, target)
    module = prep.module
    assert module is not None
    layer_name, layer_module = find_layer(module, layer)
    target_index = None if prep.targets is None else int(prep.targets[0])
    target_label = target
    if target_index is not None and prep.oracle is not None and prep.oracle.task == "classification":
        target_label = prep.oracle.classes_[target_index]
    output = "probability" if prep.oracle is not None and prep.oracle.task == "classification" else "output"

    random_x = prep.encode_rows(random_rows, "random_rows")
    acts_random = _activations(prep, layer_module, layer_name, random_x, batch_size)

    seed = np.random.SeedSequence(random_state).entropy if random_state is None else random_state
    fitted = []
    for cname, concept in concepts.items():
        x_c, pool, description = _concept_rows(str(cname), concept, random_rows, reference, target_rows, prep)
        acts_c = _activations(prep, layer_module, layer_name, x_c, batch_size)
        pool_idx = np.flatnonzero(pool)
        n_ex = min(len(x_c), len(pool_idx) // 2, max_examples)
        if n_ex < MIN_EXAMPLES:
            raise ParameterError(f"the random pool for concept {cname!r} has {len(pool_idx)} rows (random_rows "
                                 f"outside the concept); TCAV draws two disjoint random sets of at least "
                                 f"{MIN_EXAMPLES} rows from it: give more random_rows")
        rng = np.random.default_rng(seed)
        cavs, accs, rcavs, raccs = _fit_cavs(acts_c, acts_random[pool_idx], repeats, n_ex, rng, holdout, C)
        fitted.append((str(cname), description, len(x_c), len(pool_idx), n_ex, cavs, accs, rcavs, raccs))

    grads = _layer_gradients(prep, layer_module, layer_name, batch_size)
    every = np.concatenate([np.concatenate([f[5], f[7]]) for f in fitted])
    # One product for every CAV of every concept: (rows, units) @ (units, 2 * repeats * concepts).
    derivs = grads @ torch.as_tensor(every.T, dtype=grads.dtype, device=grads.device)
    shares = (derivs > 0).to(torch.float64).mean(dim=0).cpu().numpy()
    means = derivs.to(torch.float64).mean(dim=0).cpu().numpy()

    from scipy import stats

    n_tests = len(fitted)
    results: dict[str, TCAVResult] = {}
    for i, (cname, description, n_c, n_pool, n_ex, cavs, accs, rcavs, raccs) in enumerate(fitted):
        span = slice(i * 2 * repeats, (i + 1) * 2 * repeats)
        scores, rscores = shares[span][:repeats], shares[span][repeats:]
        mean_d, rmean_d = means[span][:repeats], means[span][repeats:]
        p_raw = _ttest_p(mean_d, rmean_d, stats) if statistic == "derivative" else _ttest_p(scores, rscores, stats)
        p = min(1.0, p_raw * n_tests)
        acc = float(np.mean(accs))
        separable = acc >= accuracy_floor
        if not separable:
            warnings.warn(f"concept {cname!r}: the CAV classifiers separate it from random rows at layer "
                          f"{layer_name!r} with held-out accuracy {acc:.2f} (below {accuracy_floor}); the layer "
                          "does not represent it and its TCAV score is not meaningful", PellucidWarning, stacklevel=2)
        results[cname] = TCAVResult(
            concept=cname, description=description, score=float(scores.mean()), scores=scores, random_scores=rscores,
            p_value=p, p_value_raw=p_raw, n_tests=n_tests, alpha=alpha, significant=bool(p < alpha),
            cav_accuracy=acc, random_accuracy=float(np.mean(raccs)), separable=separable, layer=layer_name,
            target=target_label, target_index=target_index, output=output, repeats=repeats, n_concept=n_c,
            n_pool=n_pool, n_target=prep.n, n_examples=n_ex, cavs=cavs, random_cavs=rcavs,
            derivatives=mean_d, random_derivatives=rmean_d, statistic=statistic)
    return results


def directional_derivatives(model: Any, layer: Any, target_rows: Any, target: Any, cavs: Any, *,
                            batch_size: int | None = None) -> np.ndarray:
    """``grad_h f_target(x) . v`` for every row of ``target_rows`` and every vector ``v``.

    Parameters
    ----------
    model, layer, target_rows, target
        As for :func:`tcav`.
    cavs : array-like
        One vector ``(units,)`` or several ``(k, units)`` on the layer's flattened activations.

    Returns
    -------
    ndarray
        ``(rows, k)``; the TCAV score of vector ``j`` is ``(out[:, j] > 0).mean()``.
    """
    prep = prepare(model, target_rows, target)
    assert prep.module is not None
    layer_name, layer_module = find_layer(prep.module, layer)
    grads = _layer_gradients(prep, layer_module, layer_name, batch_size)
    v = torch.as_tensor(np.atleast_2d(np.asarray(cavs, dtype=np.float64)), dtype=grads.dtype, device=grads.device)
    if v.shape[1] != grads.shape[1]:
        raise ParameterError(f"cavs have {v.shape[1]} entries; layer {layer_name!r} has {grads.shape[1]} units "
                             "per row (flattened)")
    return (grads @ v.T).cpu().numpy()


# ---------------------------------------------------------------------------- rules
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]+`)
  | (?P<op><=|>=|==|!=|<|>)
  | (?P<punct>[\[\]{}(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
""", re.X)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
_OPEN = {"[": "]", "(": ")", "{": "}"}


def parse_rule(text: str, columns: Sequence[Any] | None = None) -> tuple[Condition, ...]:
    """Read a conjunction of conditions on raw features; nothing in it is ever executed.

    Grammar: ``condition [and condition ...]``, each condition ``feature op value`` with
    ``op`` one of ``<=``, ``<``, ``>``, ``>=`` (numbers), ``==``, ``!=`` (a number, a quoted
    string, ``True`` or ``False``), or ``feature in [v1, v2, ...]`` / ``feature not in (...)``
    (brackets, parentheses or braces). A feature is a name (letters, digits, ``_`` and ``.``) or
    any text in backquotes (``\\`monthly income\\` > 1000``). ``==`` reads as ``in [v]`` and ``!=``
    as ``not in [v]``.

    A row with a missing value in a feature never satisfies a condition on it (pandas differs
    for ``!=``: there ``NaN != v`` is true). Otherwise :func:`rule_mask` selects exactly the rows
    pandas' boolean indexing with the same comparisons selects.

    Parameters
    ----------
    text : str
    columns : sequence, optional
        The table's columns: a feature not among them is an error naming it.

    Returns
    -------
    tuple of Condition

    Raises
    ------
    ParameterError
        Naming the token (and its position) that cannot be read, an ``or`` (not supported), a
        numeric comparison with a text value, or an unknown feature.
    """
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"a rule must be a non-empty string like \"income > 1000 and home == 'rent'\"; got "
                             f"{text!r}")
    tokens = _tokenize(text)
    conds: list[Condition] = []
    i = 0

    def fail(msg: str, at: int) -> ParameterError:
        pos = tokens[at][2] if at < len(tokens) else len(text)
        return ParameterError(f"cannot read rule {text!r}: {msg} (at position {pos})")

    def kw(at: int) -> str | None:
        return tokens[at][1].lower() if at < len(tokens) and tokens[at][0] == "word" else None

    def value(at: int) -> tuple[Any, int]:
        if at >= len(tokens):
            raise fail("expected a value, found the end of the rule", at)
        kind, tok, _ = tokens[at]
        if kind == "num":
            return (float(tok) if any(c in tok for c in ".eE") else int(tok)), at + 1
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", tok[1:-1]), at + 1
        if kind == "word" and tok.lower() in ("true", "false"):
            return tok.lower() == "true", at + 1
        raise fail(f"expected a number, a quoted string, True or False, found {tok!r} (quote text values)", at)

    while True:
        if i >= len(tokens):
            raise fail("expected a feature, found the end of the rule", i)
        kind, tok, _ = tokens[i]
        if kind == "quoted":
            feature = tok[1:-1]
        elif kind == "word" and tok.lower() not in _KEYWORDS:
            feature = tok
        else:
            raise fail(f"expected a feature name, found {tok!r}", i)
        if columns is not None and feature not in {str(c) for c in columns}:
            raise ParameterError(f"rule {text!r} names feature {feature!r}, which is not a column of the table; the "
                                 f"columns are {[str(c) for c in columns][:30]}")
        i += 1
        if i >= len(tokens):
            raise fail(f"expected an operator after {feature!r}, found the end of the rule", i)
        kind, tok, _ = tokens[i]
        negate = False
        if kw(i) == "not" and kw(i + 1) == "in":
            negate, i = True, i + 1
            kind, tok = "word", "in"
        if kind == "op":
            v, i = value(i + 1)
            if tok in NUMERIC_OPS:
                if isinstance(v, (str, bool)):
                    raise ParameterError(f"rule {text!r}: {feature} {tok} {v!r} compares with a non-number; "
                                         f"{tok} needs a number (use == or in for categories)")
                conds.append(Condition(feature, tok, v))
            else:
                conds.append(Condition(feature, "in" if tok == "==" else "not in", (v,), kind="categorical"))
        elif kind == "word" and tok.lower() == "in":
            i += 1
            if i >= len(tokens) or tokens[i][1] not in _OPEN:
                raise fail(f"expected a list like ['a', 'b'] after 'in' for {feature!r}", i)
            close = _OPEN[tokens[i][1]]
            values: list[Any] = []
            i += 1
            while True:
                if i < len(tokens) and tokens[i][1] == close and tokens[i][0] == "punct":
                    i += 1
                    break
                v, i = value(i)
                values.append(v)
                if i < len(tokens) and tokens[i][1] == "," and tokens[i][0] == "punct":
                    i += 1
                elif not (i < len(tokens) and tokens[i][1] == close and tokens[i][0] == "punct"):
                    raise fail(f"expected ',' or {close!r} in the list of {feature!r}", i)
            if not values:
                raise fail(f"the list of {feature!r} is empty", i - 1)
            conds.append(Condition(feature, "not in" if negate else "in", tuple(values), kind="categorical"))
        else:
            raise fail(f"expected an operator (<=, <, >, >=, ==, !=, in, not in) after {feature!r}, found {tok!r}", i)
        if i >= len(tokens):
            return tuple(conds)
        if kw(i) == "and":
            i += 1
            continue
        if kw(i) == "or":
            raise fail("'or' is not supported; a concept rule is a conjunction (test each alternative as its own "
                       "concept)", i)
        raise fail(f"expected 'and' or the end of the rule, found {tokens[i][1]!r}", i)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            bad = text[pos]
            hint = " (use == for equality)" if bad == "=" else ""
            raise ParameterError(f"cannot read rule {text!r}: unexpected character {bad!r} at position {pos}{hint}")
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            out.append((kind, m.group(), pos))
        pos = m.end()
    # "x1 >-0.5" and "x1 > -0.5" read alike; "x1-0.5" is a name followed by a number, refused later.
    return out


def rule_mask(rule: Any, frame: pd.DataFrame, what: str = "the table") -> np.ndarray:
    """Boolean mask of the rows of ``frame`` that satisfy ``rule`` (a string, a Rule, a
    Condition or a sequence of Conditions); see :func:`parse_rule`."""
    conds = _conditions(rule, frame.columns)
    mask = np.ones(len(frame), dtype=bool)
    for c in conds:
        if c.feature not in frame.columns:
            raise ParameterError(f"the rule names feature {c.feature!r}, which is not a column of {what}; the "
                                 f"columns are {[str(x) for x in frame.columns][:30]}")
        col = frame[c.feature]
        numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
        if c.op in NUMERIC_OPS and not numeric:
            raise ParameterError(f"the rule compares feature {c.feature!r} with {c.op} {c.value:g}, but the column "
                                 f"in {what} is not numeric ({col.dtype}); use == or in for categories")
        if c.op not in NUMERIC_OPS and numeric and any(isinstance(v, str) for v in c.value):
            raise ParameterError(f"the rule compares numeric feature {c.feature!r} with text {list(c.value)}; "
                                 "write the value without quotes")
        mask &= c.apply(frame)
    return mask


def _conditions(rule: Any, columns: Sequence[Any] | None = None) -> tuple[Condition, ...]:
    if isinstance(rule, str):
        return parse_rule(rule, columns)
    if isinstance(rule, Condition):
        return (rule,)
    if isinstance(rule, Rule):
        return tuple(rule.conditions)
    if isinstance(rule, (list, tuple)) and rule and all(isinstance(c, Condition) for c in rule):
        return tuple(rule)
    raise ParameterError(f"a concept rule must be a string, a Rule, a Condition or a list of Conditions; got "
                         f"{type(rule).__name__}")


def _is_rule(concept: Any) -> bool:
    return isinstance(concept, (str, Condition, Rule)) or (
        isinstance(concept, (list, tuple)) and bool(concept) and all(isinstance(c, Condition) for c in concept))


def _rule_text(concept: Any) -> str:
    if isinstance(concept, str):
        return concept.strip()
    conds = _conditions(concept)
    return " and ".join(c.text() for c in conds) if conds else "always"


def _default_name(concept: Any) -> str:
    return _rule_text(concept) if _is_rule(concept) else "concept"


# ---------------------------------------------------------------------------- internals
#: What each of :func:`tcav_many`'s settings must be (checked by ``validate_params``).
_CONSTRAINTS = {
    "repeats": [Interval(Integral, 2, None)],  # the t-test needs several CAVs
    "alpha": [Interval(Real, 0, 1, closed="neither")],
    "max_examples": [Interval(Integral, MIN_EXAMPLES, None)],
    "holdout": [Interval(Real, 0, 1, closed="neither")],
    "C": [Interval(Real, 0, None, closed="neither")],
    "accuracy_floor": [Interval(Real, 0, 1)],
    "statistic": [Options(("derivative", "sign"))],
}


def _check_columns(rows: Any, like: pd.DataFrame, what: str) -> None:
    if isinstance(rows, pd.DataFrame) and [str(c) for c in rows.columns] != [str(c) for c in like.columns]:
        missing = [str(c) for c in like.columns if c not in rows.columns]
        extra = [str(c) for c in rows.columns if c not in like.columns]
        detail = f"missing {missing}" if missing else ""
        detail += ("; " if detail else "") + f"unexpected {extra}" if extra else ""
        raise ParameterError(f"{what} has columns {[str(c) for c in rows.columns][:20]}; target_rows has "
                             f"{[str(c) for c in like.columns][:20]} ({detail or 'in another order'})")


def _concept_rows(name: str, concept: Any, random_rows: Any, reference: Any, target_rows: Any,
                  prep: Prepared) -> tuple[torch.Tensor, np.ndarray, str]:
    """The concept's rows as model input, the mask of random rows it may be compared with, and
    its description."""
    n_random = len(random_rows)
    if _is_rule(concept):
        table = reference if reference is not None else random_rows
        where = "reference" if reference is not None else "random_rows"
        if not isinstance(table, pd.DataFrame):
            raise ParameterError(f"concept {name!r} is a rule on raw features; {where} must then be a DataFrame with "
                                 f"the features as columns, got {type(table).__name__}")
        mask = rule_mask(concept, table, where)
        description = _rule_text(concept)
        n = int(mask.sum())
        if n < MIN_EXAMPLES:
            raise ParameterError(f"concept {name!r}: rule {description!r} selects {n} of the {len(table)} rows of "
                                 f"{where}; TCAV needs at least {MIN_EXAMPLES}")
        rows = table.loc[mask]
        # Negatives must not be examples of the concept.
        pool = ~rule_mask(concept, random_rows, "random_rows") if isinstance(random_rows, pd.DataFrame) \
            else np.ones(n_random, dtype=bool)
    else:
        if isinstance(concept, pd.DataFrame) and isinstance(target_rows, pd.DataFrame):
            _check_columns(concept, target_rows, f"concept {name!r}")
        try:
            n = len(concept)
        except TypeError:
            raise ParameterError(f"concept {name!r} must be rows (DataFrame, array, tensor) or a rule; got "
                                 f"{type(concept).__name__}") from None
        if n < MIN_EXAMPLES:
            raise ParameterError(f"concept {name!r} has {n} example rows; TCAV needs at least {MIN_EXAMPLES}")
        rows = concept
        pool = np.ones(n_random, dtype=bool)
        description = f"{n} example rows"
    return prep.encode_rows(rows, f"concept {name!r}"), pool, description


class _Capture:
    """A forward hook on one layer: keeps its output, optionally as the leaf of a new graph."""

    def __init__(self, layer: nn.Module, name: str, grad: bool) -> None:
        self.name, self.grad = name, grad
        self.out: torch.Tensor | None = None
        self.calls = 0
        try:
            self.handle = layer.register_forward_hook(self)
        except RuntimeError as e:  # TorchScript modules take no hooks
            raise ParameterError(f"cannot hook layer {name!r}: {e}; TCAV needs an eager torch module") from None

    def __call__(self, _: nn.Module, __: Any, out: Any) -> Any:
        if not isinstance(out, torch.Tensor):
            raise ParameterError(f"layer {self.name!r} returns {type(out).__name__}, not a tensor; choose a layer "
                                 "with one tensor output")
        self.calls += 1
        if self.calls > 1:
            raise ParameterError(f"layer {self.name!r} is called more than once in a forward pass; its activations "
                                 "are not one vector per row: choose another layer")
        if not self.grad:
            self.out = out.detach()
            return None
        # Layers before this one ran without a graph; the backward pass starts here.
        torch.set_grad_enabled(True)
        self.out = out.detach().requires_grad_(True)
        return self.out

    def reset(self) -> None:
        self.out, self.calls = None, 0

    def result(self) -> torch.Tensor:
        if self.out is None:
            raise ParameterError(f"layer {self.name!r} was not used by the model's forward pass")
        return self.out


def _activations(prep: Prepared, layer: nn.Module, name: str, x: torch.Tensor,
                 batch_size: int | None) -> np.ndarray:
    """The layer's outputs for ``x``, flattened per row, as float64."""
    cap = _Capture(layer, name, grad=False)
    parts = []
    try:
        for rows in row_chunks(x, batch_size):
            cap.reset()
            with torch.no_grad():
                prep.fn(x[rows])
            a = cap.result()
            parts.append(a.reshape(a.shape[0], -1).to(torch.float64).cpu().numpy())
    finally:
        cap.handle.remove()
    return np.concatenate(parts)


def _layer_gradients(prep: Prepared, layer: nn.Module, name: str, batch_size: int | None) -> torch.Tensor:
    """Gradient of each target row's output with respect to the layer's output, flattened:
    ``(rows, units)``; one forward/backward pass per chunk of rows."""
    cap = _Capture(layer, name, grad=True)
    parts = []
    try:
        for rows in row_chunks(prep.x, batch_size):
            cap.reset()
            with torch.no_grad():
                out = prep.fn(prep.x[rows])
            a = cap.result()
            targets = None if prep.targets is None else prep.targets[rows]
            with torch.enable_grad():  # the model's forward may leave grad mode as it found it
                score = prep.select(out, targets)
                (g,) = torch.autograd.grad(score.sum(), a)
            parts.append(g.reshape(g.shape[0], -1).detach())
    finally:
        cap.handle.remove()
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _fit_cavs(concept: np.ndarray, pool: np.ndarray, repeats: int, n: int, rng: np.random.Generator,
              holdout: float, C: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per repeat, the CAV of ``n`` concept rows against ``n`` random rows of ``pool``, and a
    random CAV of another ``n`` random rows against those; unit vectors and held-out accuracies.

    The draws are made first; the ``2 * repeats`` classifiers are then fitted together."""
    n_test = max(1, min(n - 2, int(round(holdout * n))))
    pos_sets, neg_sets = [], []
    for _ in range(repeats):  # concept CAVs
        pos = concept if n == len(concept) else concept[rng.choice(len(concept), n, replace=False)]
        perm = rng.permutation(len(pool))
        pos_sets.append(pos)
        neg_sets.append(pool[perm[:n]])
        pos_sets.append(pool[perm[n:2 * n]])  # the random CAV of this repeat: other random rows vs the same
        neg_sets.append(pool[perm[:n]])
    # Held-out rows: the first n_test of a permutation of each set.
    order = [(rng.permutation(n), rng.permutation(n)) for _ in range(2 * repeats)]
    x_tr = np.stack([np.concatenate([p[tp[n_test:]], q[tn[n_test:]]]) for p, q, (tp, tn) in
                     zip(pos_sets, neg_sets, order)])
    x_te = np.stack([np.concatenate([p[tp[:n_test]], q[tn[:n_test]]]) for p, q, (tp, tn) in
                     zip(pos_sets, neg_sets, order)])
    y_tr = np.r_[np.ones(n - n_test), np.zeros(n - n_test)]
    y_te = np.r_[np.ones(n_test), np.zeros(n_test)]
    # Centred, and divided by one scale for all units (their root-mean-square spread): the
    # penalty then treats every unit alike, as a classifier on the raw activations does. Each
    # unit standardised on its own let units of tiny spread take large weights in activation
    # space, and random CAVs pointed along them, with directional derivatives far larger than
    # any concept's.
    mu = x_tr.mean(axis=1, keepdims=True)
    scale = np.sqrt((x_tr.var(axis=1, keepdims=True)).mean(axis=2, keepdims=True))
    sd = np.broadcast_to(np.where(scale > 1e-12, scale, 1.0), mu.shape)
    w, b = fit_logistic((x_tr - mu) / sd, y_tr, C)
    acc = ((np.einsum("bmf,bf->bm", (x_te - mu) / sd, w) + b[:, None] > 0) == (y_te > 0)).mean(axis=1)
    # w . (a - mu) / sd = (w / sd) . a + const: the normal of the boundary in activation space.
    v = w / sd[:, 0]
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(norm > 0, v / np.where(norm > 0, norm, 1.0), 0.0)
    return v[0::2], acc[0::2], v[1::2], acc[1::2]


#: Largest width (units + 1) fitted by the batched Newton solver; wider layers use scikit-learn.
_NEWTON_MAX_WIDTH = 1025


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float = 1.0, *, tol: float = 1e-10, max_iter: int = 100
                 ) -> tuple[np.ndarray, np.ndarray]:
    """L2-penalised logistic regressions, one per leading index, fitted together.

    Minimises ``0.5 * |w|^2 + C * sum_i log(1 + exp(-s_i (w . x_i + b)))`` with ``s_i = 2 y_i - 1``
    and the intercept unpenalised: scikit-learn's ``LogisticRegression(C=C)`` objective.

    Parameters
    ----------
    x : ndarray ``(fits, rows, units)``
    y : ndarray ``(rows,)`` of 0/1, shared by every fit
    C : float

    Returns
    -------
    w : ndarray ``(fits, units)``
    b : ndarray ``(fits,)``
    """
    fits, m, f = x.shape
    if f + 1 > _NEWTON_MAX_WIDTH:
        return _fit_logistic_sklearn(x, y, C)
    X = torch.as_tensor(np.concatenate([x, np.ones((fits, m, 1))], axis=2), dtype=torch.float64)
    s = torch.as_tensor(2 * y - 1, dtype=torch.float64)
    reg = torch.ones(f + 1, dtype=torch.float64) / C
    reg[-1] = 1e-10  # the intercept is not penalised (a whisker keeps the Hessian regular)
    theta = torch.zeros(fits, f + 1, dtype=torch.float64)

    def objective(t: torch.Tensor) -> torch.Tensor:
        margin = s * torch.einsum("bmf,bf->bm", X, t)
        return 0.5 * (reg[:-1] * t[:, :-1] ** 2).sum(dim=1) + torch.nn.functional.softplus(-margin).sum(dim=1)

    current = objective(theta)
    for _ in range(max_iter):
        z = torch.einsum("bmf,bf->bm", X, theta)
        p = torch.sigmoid(z)
        # Objective / C: sum of losses + 0.5 * |w|^2 / C.
        grad = torch.einsum("bmf,bm->bf", X, p - (s > 0).to(X.dtype)) + theta * reg
        hess = torch.einsum("bmf,bm,bmg->bfg", X, p * (1 - p), X) + torch.diag_embed(reg.expand(fits, -1))
        step = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        # Damped Newton: halve the step of each fit until its objective does not rise.
        t = torch.ones(fits, 1, dtype=torch.float64)
        new = theta - t * step
        value = objective(new)
        for _ in range(30):
            worse = value > current + 1e-12 * current.abs()
            if not bool(worse.any()):
                break
            t = torch.where(worse.unsqueeze(1), t / 2, t)
            new = theta - t * step
            value = objective(new)
        gain = (current - value).abs().max()
        theta, current = new, value
        if float(gain) <= tol * max(1.0, float(current.abs().max())):
            break
    out = theta.numpy()
    return out[:, :-1], out[:, -1]


def _fit_logistic_sklearn(x: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    ws, bs = [], []
    with threadpool_limits(1):  # many small fits: threads only contend
        for xb in x:
            clf = LogisticRegression(C=C, max_iter=2000).fit(xb, y)
            ws.append(clf.coef_[0])
            bs.append(clf.intercept_[0])
    return np.asarray(ws), np.asarray(bs)


def _ttest_p(a: np.ndarray, b: np.ndarray, stats: Any) -> float:
    """Two-sided Welch-free (pooled) t-test p-value; equal constant samples give 1, different ones 0."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b).pvalue)
    return 1.0 if math.isnan(p) else p
