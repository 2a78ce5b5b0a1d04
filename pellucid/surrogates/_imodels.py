"""The imodels plumbing behind pellucid's imodels-backed surrogates: building, seeding and
bounding the learners, and reading their fitted rules back into pellucid's rule data model.

imodels' learners draw from numpy's and Python's global random states (the greedy rule
list's and FIGS's scikit-learn stumps, which have no ``random_state``; BRL's chains) and
talk through warnings. :func:`learner_context` seeds those states for the fit and leaves them
as they were, so the same seed gives the same rules in every process.
:func:`call_with_deadline` stops a learner that runs past its time.

:class:`ImodelsRules` is what the imodels-backed rule lists and rule sets
(:mod:`pellucid.surrogates.rule_lists`) share: task checks, encoding, read-back of encoded
tests into :class:`~pellucid.extraction.rules.Condition` and
:class:`~pellucid.extraction.rules.Rule`, rule supports. The functions after it read the
learners' own rule objects (SkopeRules' and RuleFit's ``Rule``, BRL's itemsets, C4.5's
XML tree, SLIPPER's conditions) as encoded tests ``(column, op, threshold)``; SLIPPER's rule
learner with imodels' faults corrected lives here too
(:mod:`pellucid.surrogates.rule_ensembles` uses it).
"""

from __future__ import annotations

import contextlib
import ctypes
import random
import sys
import threading
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import ParameterError, PellucidWarning, SurrogateError
from ..extraction.distill import DistillationSet
from ..extraction.encoding import RawEncoder
from ..extraction.rules import Condition, Rule, RuleList, RuleSet, merge_conditions
from .base import Surrogate

#: An encoded test ``(column, op, threshold)``, read back with ``RawEncoder.condition``.
Test = tuple[int, str, float]


# ---------------------------------------------------------------------- seeding

@contextlib.contextmanager
def learner_context(seed: int | None = None) -> Iterator[None]:
    """Quiet the learners' warnings and leave numpy's and Python's global random states as
    they were. imodels' rule lists draw from the global states (the greedy list's stumps,
    BRL's chains); with ``seed`` they are seeded for the fit, so the same seed gives the
    same rules."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        if seed is not None:
            np.random.seed(seed)
            random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


# ---------------------------------------------------------------------- time bound
class _Deadline(BaseException):
    """Raised inside a learner that ran past its time (a BaseException, so that a learner's
    own ``except Exception`` does not swallow it)."""


@contextlib.contextmanager
def _quiet_deadlines() -> Iterator[None]:
    """Drop reports of a :class:`_Deadline` that landed where Python cannot raise it (a
    destructor: "Exception ignored in ...") or that ended the worker thread; any other
    report goes on as before."""
    unraisable, excepthook = sys.unraisablehook, threading.excepthook

    def on_unraisable(u: Any) -> None:
        if not isinstance(u.exc_value, _Deadline):
            unraisable(u)

    def on_thread_error(args: Any) -> None:
        if not issubclass(args.exc_type, _Deadline):
            excepthook(args)

    sys.unraisablehook, threading.excepthook = on_unraisable, on_thread_error
    try:
        yield
    finally:
        sys.unraisablehook, threading.excepthook = unraisable, excepthook


def call_with_deadline(fn: Callable[[], Any], seconds: float | None) -> tuple[Any, float]:
    """Run ``fn()`` and return ``(its result, seconds taken)``; stop it after ``seconds``.

    ``fn`` runs in a worker thread while the caller waits; when the time is up an exception
    is raised inside the worker at its next Python instruction (the learners bounded this
    way spend their time in Python loops), and :class:`TimeoutError` is raised here.
    ``seconds=None`` runs ``fn`` in the caller's thread, unbounded.
    """
    t0 = time.perf_counter()
    if seconds is None:
        return fn(), time.perf_counter() - t0
    box: dict[str, Any] = {}
    # Set by the worker as it ends: an interrupted Thread.join can leave the thread marked
    # stopped while it runs on, so its end is told by this event, not by is_alive().
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except _Deadline:
            pass
        except BaseException as e:  # handed to the caller below
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, name="pellucid-learner", daemon=True)
    worker.start()
    try:
        finished = done.wait(seconds)
    except BaseException:
        # Ctrl-C (or any error) while waiting: the worker is stopped first, so that it is not
        # left running (importing a library, say) while the interpreter shuts down.
        _stop(worker, done)
        raise
    if not finished:
        _stop(worker, done)
        raise TimeoutError(f"stopped after {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"], time.perf_counter() - t0


def _stop(worker: threading.Thread, done: threading.Event) -> None:
    """Interrupt ``worker`` and wait for it to stop, so nothing keeps running (or drawing from
    numpy's global random state) after the caller gives up on it. Again every quarter second
    while it runs on: the exception waits while the worker is inside C code, and one that lands
    in a destructor is dropped there (silently: see _quiet_deadlines)."""
    with _quiet_deadlines():
        give_up = time.perf_counter() + 5.0
        while not done.is_set() and time.perf_counter() < give_up:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_Deadline))
            done.wait(0.25)


# ---------------------------------------------------------------------- shared base of the rule lists
class ImodelsRules(Surrogate):
    """What the imodels-backed rule models share: task checks, encoding, the constant model
    for a network that gives one class everywhere, read-back of encoded tests, and rule
    supports."""

    tasks = ("classification",)
    max_classes: int | None = 2
    _encoding = "ordered"
    _learner_name = "the learner"
    _uses_weights = False

    encoder_: RawEncoder

    # ------------------------------------------------------------------ fit
    def _fit(self, train: DistillationSet) -> None:
        _check_target(self)
        if train.task not in self.tasks:
            raise ParameterError(
                f"{type(self).__name__} handles {' and '.join(self.tasks)} only; "
                f"this distillation set is a {train.task}"
            )
        k = len(self.classes_)
        if self.max_classes is not None and k > self.max_classes:
            raise ParameterError(
                f"{type(self).__name__} handles two classes only ({self._learner_name} has no multiclass form); "
                f"the network has {k} classes. Use C45Tree, HSTree or DecisionTree, which handle any number."
            )
        w = np.asarray(train.weights, dtype=float)
        if not self._uses_weights and len(w) and not np.allclose(w, w[0]):
            warnings.warn(
                f"{type(self).__name__}: {self._learner_name} takes no sample weights; the distillation set's "
                "weights differ between rows and are ignored",
                PellucidWarning,
                stacklevel=3,
            )
        enc, X, y = self._learner_data(train, self._encoding)
        self.encoder_ = enc
        self.train_rows_ = len(train)
        present = np.unique(y).astype(int)
        self.present_classes_ = present
        if len(present) < 2:
            # The network gives one class on every training row: nothing to learn, and the
            # learners refuse a single class. The default rule says it all.
            self.learner_ = None
            self.rules_ = self._assemble([], self._class_rule((), present[0]), train, ordered=self._ordered)
            return
        self._fit_learner(train, X, y)

    _ordered = False

    def _fit_learner(self, train: DistillationSet, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ read-back
    def _conditions(self, tests: Sequence[Test]) -> tuple[Condition, ...]:
        raw = [self.encoder_.condition(int(c), op, float(t)) for c, op, t in tests]
        domains = {f.name: f.categories for f in self.schema_ if f.is_categorical}
        return merge_conditions(raw, self.schema_.names, domains)

    def _class_rule(self, conditions: tuple[Condition, ...], cls: int, proba: np.ndarray | None = None) -> Rule:
        """A rule giving class index ``cls``; ``proba`` over all the network's classes."""
        p = None if proba is None else tuple(float(x) for x in proba)
        return Rule(conditions, self.classes_[int(cls)], p)

    def _binary_rule(self, conditions: tuple[Condition, ...], t: int, other: int, p: float, calls_t: bool) -> Rule:
        """A rule of a two-class learner that gives class ``t`` probability ``p`` and calls
        ``t`` when ``calls_t``. At an exact tie (p = 0.5) argmax over the network's classes
        takes the first; ``p`` moves one ulp towards the learner's call so that the rule
        decides as the learner does."""
        if p == 0.5:
            p = float(np.nextafter(0.5, 1.0 if calls_t else 0.0))
        proba = np.zeros(len(self.classes_))
        proba[t], proba[other] = p, 1.0 - p
        return self._class_rule(conditions, t if calls_t else other, proba)

    def _full_proba(self, p_present: np.ndarray) -> np.ndarray:
        """A distribution over the learner's classes (those present in the training labels,
        in order) as one over all the network's classes."""
        full = np.zeros(len(self.classes_))
        full[self.present_classes_] = p_present
        return full

    def _assemble(self, rules: list[Rule], default: Rule, train: DistillationSet, ordered: bool) -> RuleList | RuleSet:
        """The rule model, each rule's support being the weighted share of training rows it
        covers (the default's: all of them)."""
        w = np.asarray(train.weights, dtype=float)
        total = float(w.sum()) or 1.0
        cache: dict = {}
        rules = [
            Rule(r.conditions, r.outcome, r.proba, float(w[r.apply(train.rows, cache)].sum()) / total) for r in rules
        ]
        default = Rule(default.conditions, default.outcome, default.proba, 1.0)
        cls = RuleList if ordered else RuleSet
        return cls(
            tuple(rules),
            default,
            task=self.task_,
            classes=tuple(self.classes_),
            feature_order=tuple(self.schema_.names),
        )

    def _labels(self, learner_idx: np.ndarray) -> np.ndarray:
        """The learner's class indices (0 .. present-1) as the network's labels."""
        return np.asarray(self.classes_, dtype=object)[self.present_classes_[np.asarray(learner_idx, dtype=int)]]

    def _predicted(self, learner_pred: np.ndarray) -> np.ndarray:
        """A learner's ``predict`` output as the network's labels: the learners were fitted
        on class indices into ``classes_``, and give them back."""
        return np.asarray(self.classes_, dtype=object)[np.asarray(learner_pred).astype(int)]

    def _sample(self, y: np.ndarray, max_samples: int | None) -> np.ndarray:
        """Indices of the training rows the learner sees: all, or ``max_samples`` drawn
        without replacement with ``random_state`` (sorted, so the order is the data's)."""
        n = len(y)
        if max_samples is None or n <= max_samples:
            return np.arange(n)
        rng = np.random.default_rng(getattr(self, "random_state", None))
        idx = np.sort(rng.choice(n, int(max_samples), replace=False))
        if len(np.unique(y[idx])) < 2:
            raise SurrogateError(
                f"{type(self).__name__}: the {len(idx)} training rows drawn for the learner (max_samples) all carry "
                "one class; raise max_samples"
            )
        return idx

    def complexity(self) -> dict[str, Any]:
        out = super().complexity()
        out["n_samples"] = int(getattr(self, "n_samples_", self.train_rows_))
        return out


def _check_target(model: Surrogate) -> None:
    target = getattr(model, "target", None)
    classes = [] if getattr(model, "classes_", None) is None else list(model.classes_)
    if target is not None and classes and target not in classes:
        raise ParameterError(f"{type(model).__name__}: target {target!r} is not one of the network's classes {classes}")



# ---------------------------------------------------------------------- reading the learners' rules
def column_index(name: Any) -> int:
    """The encoded column a learner names ``"X_j"``: j."""
    return int(str(name).rsplit("_", 1)[1])


def skope_tests(rule: Any) -> list[Test]:
    """The encoded tests of one of SkopeRules' rules (it names column j "X_j")."""
    tests = []
    for (f, op), v in rule.agg_dict.items():
        if op == "==" and v == f:
            continue  # "X_0 == X_0": a tree that never split proposes a rule that always holds
        if op not in ("<=", "<", ">", ">="):
            raise SurrogateError(f"SkopeRules: unexpected test {f} {op} {v} in the learner's rule")
        tests.append((column_index(f), op, float(v)))
    return tests


def rulefit_tests(rule: Any) -> list[Test]:
    """The encoded tests of one of RuleFit's rules; its equalities are dropped (imodels writes
    an always-true rule as "X_0 == X_0")."""
    return [(column_index(feat), sym, float(val)) for (feat, sym), val in rule.agg_dict.items() if sym != "=="]


def slipper_tests(rule: Any) -> list[Test]:
    """The encoded tests of one of SLIPPER's rules (a list of feature/operator/pivot dicts)."""
    return [(int(c["feature"]), c["operator"], float(c["pivot"])) for c in rule]


def brl_members(learner: Any, B: np.ndarray, d: Sequence[int]) -> list:
    """The rows of binary matrix ``B`` satisfying each itemset of a fitted BRL's list ``d``
    (others empty), as the sets the learner's routines take; itemset 0 is the default, which
    every row satisfies."""
    sets: list = [set() for _ in learner.itemsets]
    sets[0] = set(range(len(B)))
    for j in d:
        if j == 0:
            continue
        cols = [column_index(n) for n in learner.itemsets[j]]
        sets[j] = set(np.flatnonzero(B[:, cols].all(axis=1)).tolist())
    return sets


def brl_scores(learner: Any, B: np.ndarray) -> np.ndarray:
    """A fitted BRL's probability of its class 1 on binary rows, by its own routine."""
    from imodels.rule_list.bayesian_rule_list.brl_util import preds_d_t

    sets = brl_members(learner, B, learner.d_star)
    return np.asarray(preds_d_t(sets, np.zeros((len(B), 1), dtype=int), learner.d_star, learner.theta))


def brl_truncate(learner: Any, Bs: np.ndarray, ys: np.ndarray, max_rules: int) -> int:
    """Keep the first ``max_rules`` rules of a fitted BRL's point estimate (in place); BRL's
    own consequent routine re-estimates every probability (those of the kept rules do not
    change). Returns the number of rules dropped."""
    from imodels.rule_list.bayesian_rule_list.brl_util import get_rule_rhs
    from imodels.util.convert import itemsets_to_rules
    from imodels.util.rule import Rule as ImodelsRule
    from imodels.util.rule import replace_feature_name

    n_rules = len(learner.d_star) - 1
    extra = n_rules - int(max_rules)
    if extra <= 0:
        return 0
    d = list(learner.d_star[: int(max_rules)]) + [0]
    Y = np.vstack((1 - np.asarray(ys), ys)).T.astype(int)
    theta, ci = get_rule_rhs(brl_members(learner, Bs, d), Y, d, learner.alpha, True)
    learner.d_star, learner.theta, learner.ci_theta = d, theta, ci
    learner.final_itemsets = np.array(learner.itemsets, dtype=object)[d]
    learner.rules_without_feature_names_ = [ImodelsRule(r) for r in itemsets_to_rules(learner.final_itemsets)]
    learner.rules_ = [replace_feature_name(r, learner.feature_dict_) for r in learner.rules_without_feature_names_]
    return extra


def c45_leaves(learner: Any, X: np.ndarray) -> list[tuple[list[Test], np.ndarray, Any]]:
    """Per leaf of a fitted C4.5 tree: the tests on its path, the mask of the rows of X that
    reach it, and the text node holding its class (the learner's class index as a float)."""
    out = []
    stack = [(learner.root, [], np.ones(len(X), dtype=bool))]
    while stack:
        node, tests, mask = stack.pop()
        children = [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE]
        if not children:
            texts = [c for c in node.childNodes if c.nodeType == c.TEXT_NODE and c.data.strip()]
            if len(texts) != 1:
                raise SurrogateError("C45Tree: a leaf of imodels' C45TreeClassifier holds no class")
            out.append((tests, mask, texts[0]))
            continue
        for child in reversed(children):
            col = learner.feature_names.index(child.tagName)
            flag, thr = child.getAttribute("flag"), float(child.getAttribute("feature"))
            if flag == "l":
                test, m = (col, "<", thr), X[:, col] < thr
            elif flag == "r":
                test, m = (col, ">=", thr), X[:, col] >= thr
            else:
                raise SurrogateError(f"C45Tree: unexpected split kind {flag!r} in imodels' C45TreeClassifier")
            stack.append((child, tests + [test], mask & m))
    return out
