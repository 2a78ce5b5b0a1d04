"""The fidelity–complexity frontier: how faithful can a surrogate of a given size be?

:func:`frontier` fits every candidate surrogate at several size budgets on one distillation
set, measures each on the set's held-out rows, and marks the Pareto set: the fits that no
other fit beats with as few rules and as much fidelity. :meth:`Frontier.select` then answers
the two questions a reader asks: "the most faithful within N rules" and "the smallest that
reaches fidelity F".
"""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._validation import plain as _plain
from ..errors import ParameterError
from ..executor import Executor, as_executor
from ..extraction.dataset import DistillationSet, check_validation_share, validation_count
from ..surrogates.base import predict_each
from .intervals import check_seed
from .metrics import Fidelity, evaluate

#: The fidelity measure of each task: label agreement, or R² of the outputs.
MEASURES = {"classification": "agreement", "regression": "r2"}


def entry_name(candidate: str, size: int | None, training: str | None = "distilled") -> str:
    """How the report names a frontier fit: ``decision_tree_8``, ``figs_4_observed``."""
    return f"{candidate}{'' if size is None else f'_{size}'}{'' if training in (None, 'distilled') else f'_{training}'}"


@dataclass
class FrontierEntry:
    """One candidate fitted at one size budget (or the error it raised).

    Attributes
    ----------
    candidate : str
        The candidate's name.
    size : int or None
        The value given to the candidate's ``size_param`` (None for a candidate without one,
        fitted once with its own parameters).
    params : dict
        Every parameter the candidate was built with.
    score : float or None
        The task's fidelity measure on the held-out rows: label agreement (classification)
        or R² (regression).
    n_rules, n_conditions : int or None
        The fitted surrogate's size.
    fit_seconds : float or None
        Wall time of ``fit``. A fit read off the candidate's fit at a larger size
        (``size_path``) has 0: the larger fit's time covers it.
    surrogate : Surrogate or None
        The fitted surrogate (None when fitting failed).
    fidelity : Fidelity or None
        Its full fidelity on the held-out rows.
    training : {"distilled", "observed"}
        The rows it was fitted on: the distillation set's training rows (observed and
        synthetic), or its observed training rows alone.
    data : DistillationSet or None
        That training view, with the same held-out rows (for refits such as stability).
    error : str or None
        ``ExceptionType: message`` when the candidate raised while being built, fitted or
        measured; such entries are never in the Pareto set.
    validation_score : float or None
        The same measure on the validation rows: observed training rows held back from every
        fit. :meth:`Frontier.select` chooses by it, so that the held-out ``score`` a report
        states was not also used to choose (None when the frontier had no validation rows).
    pareto : bool
        Whether no other entry has fewer-or-equal rules and higher-or-equal fidelity, one of
        them strictly.
    """

    candidate: str
    size: int | None
    params: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    n_rules: int | None = None
    n_conditions: int | None = None
    fit_seconds: float | None = None
    surrogate: Any = field(default=None, repr=False)
    fidelity: Fidelity | None = field(default=None, repr=False)
    training: str = "distilled"
    data: DistillationSet | None = field(default=None, repr=False)
    error: str | None = None
    validation_score: float | None = None
    pareto: bool = False

    @property
    def name(self) -> str:
        """How the report names the fit: ``decision_tree_8``, ``figs_4_observed``."""
        return entry_name(self.candidate, self.size, self.training)

    @property
    def selection_score(self) -> float | None:
        """What selection compares: the validation score where there is one, else the
        held-out score."""
        return self.score if self.validation_score is None else self.validation_score

    @property
    def ok(self) -> bool:
        """Fitted and measured: it has a size and a fidelity to compare."""
        return self.error is None and self.score is not None and self.n_rules is not None

    def label(self) -> str:
        """``decision_tree (4 rules) at 0.93``: how messages name the entry."""
        rows = "" if self.training == "distilled" else f", {self.training} rows"
        return f"{self.candidate} ({self.n_rules} rules{rows}) at {_fmt(self.score)}"

    def to_dict(self) -> dict[str, Any]:
        fid = None
        if self.fidelity is not None:
            f = self.fidelity
            fid = {
                "n": f.n,
                "rows": f.rows,
                "agreement": f.agreement,
                "agreement_ci": None if f.agreement_ci is None else list(f.agreement_ci),
                "macro_f1": f.macro_f1,
                "macro_f1_ci": f.macro_f1_ci,
                "r2": f.r2,
                "r2_ci": f.r2_ci,
                "mae": f.mae,
                "mae_ci": f.mae_ci,
                "rmse": f.rmse,
                "rmse_ci": f.rmse_ci,
                "confidence": f.confidence,
                "intervals": {"level": f.intervals.get("level", f.confidence),
                              "methods": {k: v for k, v in f.intervals.get("methods", {}).items() if "." not in k}},
                "complexity": f.complexity,
            }
        return _plain(
            {
                "candidate": self.candidate,
                "size": self.size,
                "params": {
                    k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                    for k, v in self.params.items()
                },
                "training": self.training,
                "score": self.score,
                "validation_score": self.validation_score,
                "n_rules": self.n_rules,
                "n_conditions": self.n_conditions,
                "fit_seconds": self.fit_seconds,
                "pareto": self.pareto,
                "error": self.error,
                "fidelity": fid,
            }
        )


def _ties(entries: Sequence[FrontierEntry], floor: float | None) -> list[FrontierEntry]:
    """Without a floor, the most faithful entries; with one, the smallest (rules, then
    conditions) entries reaching it, and of those the most faithful. In frontier order."""
    if floor is not None:
        entries = [e for e in entries if e.selection_score >= floor]
        if not entries:
            return []
        smallest = min((e.n_rules, e.n_conditions) for e in entries)
        entries = [e for e in entries if (e.n_rules, e.n_conditions) == smallest]
    if not entries:
        return []
    top = max(e.selection_score for e in entries)
    return [e for e in entries if e.selection_score == top]


def _first_of(entries: list[FrontierEntry], tie_break: Any) -> FrontierEntry:
    """The preferred of equally faithful entries: higher ``tie_break`` (when given, and only
    asked where entries tie), then fewer rules, then fewer conditions, then the earliest."""
    if len(entries) > 1 and tie_break is not None:
        values = [tie_break(e) for e in entries]
        top = max((v for v in values if v is not None), default=None)
        if top is not None:
            entries = [e for e, v in zip(entries, values) if v == top]
    return min(entries, key=lambda e: (e.n_rules, e.n_conditions))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def pareto_flags(entries: Sequence[FrontierEntry]) -> list[bool]:
    """Which entries are on the Pareto front of (fewer rules, higher fidelity).

    An entry is dominated when another has fewer-or-equal rules and higher-or-equal fidelity,
    with at least one of the two strict. Entries that failed or have no score are never on
    the front. Two entries equal in both stay on it together.
    """
    flags = []
    for e in entries:
        if not e.ok:
            flags.append(False)
            continue
        dominated = any(
            o.ok
            and o.n_rules <= e.n_rules
            and o.score >= e.score
            and (o.n_rules < e.n_rules or o.score > e.score)
            for o in entries
        )
        flags.append(not dominated)
    return flags


class Frontier:
    """Surrogates fitted at several sizes, their fidelity, and the Pareto set among them.

    Parameters
    ----------
    entries : sequence of FrontierEntry
        One per candidate and size budget; the ``pareto`` flags are (re)computed here.
    task : str
        ``classification`` (fidelity is label agreement) or ``regression`` (R²).
    sizes : sequence of int, optional
        The size budgets tried, for the record.
    random_state : int, optional
        The seed the candidates were given, for the record.
    fit_set, validation_set : DistillationSet, optional
        The rows the candidates were fitted on (the set less its validation rows, with the
        held-out rows) and the validation rows, for entries added later
        (:meth:`add`) to be fitted and chosen the same way.
    """

    def __init__(
        self,
        entries: Sequence[FrontierEntry],
        task: str,
        sizes: Sequence[int] = (),
        random_state: int | None = None,
        *,
        fit_set: DistillationSet | None = None,
        validation_set: DistillationSet | None = None,
    ) -> None:
        if task not in MEASURES:
            raise ParameterError(f"task must be 'classification' or 'regression', got {task!r}")
        self.entries = list(entries)
        self.task = task
        self.sizes = tuple(sizes)
        self.random_state = random_state
        self.fit_set = fit_set
        self.validation_set = validation_set
        for e, flag in zip(self.entries, pareto_flags(self.entries)):
            e.pareto = flag

    def add(self, entry: FrontierEntry) -> FrontierEntry:
        """Put one more fitted entry on the frontier (e.g. a scorecard fitted apart from the
        candidates) and mark the Pareto set again; the entry is returned."""
        if not isinstance(entry, FrontierEntry):
            raise ParameterError(f"Frontier.add takes a FrontierEntry, got {type(entry).__name__}")
        self.entries.append(entry)
        for e, flag in zip(self.entries, pareto_flags(self.entries)):
            e.pareto = flag
        return entry

    @property
    def measure(self) -> str:
        """``agreement`` (classification) or ``r2`` (regression)."""
        return MEASURES[self.task]

    @property
    def pareto(self) -> list[FrontierEntry]:
        """The entries on the Pareto front, fewest rules first."""
        return sorted((e for e in self.entries if e.pareto), key=lambda e: (e.n_rules, -e.score, e.n_conditions))

    @property
    def failed(self) -> list[FrontierEntry]:
        """Entries whose candidate raised an error."""
        return [e for e in self.entries if e.error is not None]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __repr__(self) -> str:
        return (
            f"Frontier({self.task}, {len(self.entries)} entries, {len(self.pareto)} on the Pareto front, "
            f"{len(self.failed)} failed)"
        )

    # ------------------------------------------------------------------ selection
    def select(
        self,
        max_rules: int | None = None,
        min_agreement: float | None = None,
        *,
        min_r2: float | None = None,
        tie_break: Any = None,
    ) -> FrontierEntry:
        """Pick one entry, by its validation score where the frontier has validation rows
        (observed training rows no candidate was fitted on), so that the held-out score a
        report states is not the one that chose it; by the held-out score otherwise.

        With a fidelity floor, the smallest entry within ``max_rules`` that reaches it
        (fewest rules, then fewest conditions, then highest fidelity). Without one, the most
        faithful entry within ``max_rules``; entries exactly as faithful are told apart by
        ``tie_break`` (when given), then fewer rules, then fewer conditions. Ties beyond these
        go to the earlier entry.

        Parameters
        ----------
        max_rules : int, optional
            Most rules the entry may have.
        min_agreement : float, optional
            Fidelity floor in the task's measure: label agreement for classification, R²
            for regression.
        min_r2 : float, optional
            The same floor under its regression name; only for a regression frontier, and
            not together with ``min_agreement``.
        tie_break : callable, optional
            ``entry -> number``, higher preferred, asked only of entries that tie on what
            decides before it (e.g. rule stability, measured only where it decides).

        Returns
        -------
        FrontierEntry

        Raises
        ------
        ParameterError
            When no entry qualifies; the message names the best entry available.
        """
        if min_r2 is not None:
            if self.task != "regression":
                raise ParameterError(
                    f"min_r2 is for a regression frontier; this one is for {self.task}, whose fidelity "
                    f"measure is {self.measure}: use min_agreement"
                )
            if min_agreement is not None:
                raise ParameterError("give the fidelity floor as min_agreement or as min_r2, not both")
            min_agreement = min_r2
        if max_rules is not None and (
            isinstance(max_rules, bool) or not isinstance(max_rules, (int, np.integer)) or max_rules < 0
        ):
            raise ParameterError(f"max_rules must be a non-negative integer or None, got {max_rules!r}")
        if min_agreement is not None and (
            isinstance(min_agreement, bool) or not isinstance(min_agreement, Real) or not np.isfinite(min_agreement)
        ):
            raise ParameterError(f"the fidelity floor must be a finite number, got {min_agreement!r}")
        measure = "agreement" if self.task == "classification" else "R²"
        valid = [e for e in self.entries if e.ok]
        if not valid:
            errors = "; ".join(f"{e.candidate} (size {e.size}): {e.error}" for e in self.failed) or "no entries"
            raise ParameterError(f"no surrogate on this frontier was fitted and measured: {errors}")
        within = valid if max_rules is None else [e for e in valid if e.n_rules <= max_rules]
        if not within:
            smallest = min(valid, key=lambda e: (e.n_rules, e.n_conditions, -e.score))
            raise ParameterError(
                f"no surrogate has at most {max_rules} rules; the smallest is {smallest.label()}"
            )
        tied = _ties(within, min_agreement)
        if not tied:
            best = _first_of(_ties(within, None), None)
            where = "" if max_rules is None else f" with at most {max_rules} rules"
            scope = "" if max_rules is None else f" within {max_rules} rules"
            raise ParameterError(
                f"no surrogate{where} reaches {measure} {_fmt(min_agreement)}; "
                f"the best{scope} is {best.label()}"
            )
        return _first_of(tied, tie_break)

    def ties(self, max_rules: int | None = None, min_agreement: float | None = None) -> list[FrontierEntry]:
        """The entries :meth:`select` tells apart by its ``tie_break``: those as good as the
        best on what decides before it (one entry when nothing ties; none when nothing
        qualifies)."""
        return _ties([e for e in self.entries if e.ok and (max_rules is None or e.n_rules <= max_rules)],
                     min_agreement)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: every entry's numbers and errors, no fitted objects."""
        return _plain(
            {
                "task": self.task,
                "measure": self.measure,
                "sizes": list(self.sizes),
                "random_state": self.random_state,
                "validation_rows": None if self.validation_set is None else len(self.validation_set),
                "entries": [e.to_dict() for e in self.entries],
                "pareto": [i for i, e in enumerate(self.entries) if e.pareto],
                "n_failed": len(self.failed),
            }
        )

    def table(self) -> pd.DataFrame:
        """One row per entry: candidate, size, rules, conditions, fidelity, fit time, Pareto
        flag and error. The fidelity column is named after the task's measure."""
        rows = [
            {
                "candidate": e.candidate,
                "size": e.size,
                "training": e.training,
                "n_rules": e.n_rules,
                "n_conditions": e.n_conditions,
                self.measure: e.score,
                "fit_seconds": e.fit_seconds,
                "pareto": e.pareto,
                "error": e.error,
            }
            for e in self.entries
        ]
        cols = ["candidate", "size", "training", "n_rules", "n_conditions", self.measure, "fit_seconds", "pareto", "error"]
        out = pd.DataFrame(rows, columns=cols)
        # Sizes and counts stay integers where present, missing where an entry failed.
        for c in ("size", "n_rules", "n_conditions"):
            out[c] = out[c].astype("Int64")
        return out


# ---------------------------------------------------------------------------- building
def _resolve_candidates(
    candidates: Sequence[Any] | None, params: Mapping[str, Mapping[str, Any]] | None
) -> list[tuple[str, type, dict[str, Any]]]:
    # Read at call time: the registry is the one that exists when the frontier is drawn.
    from ..surrogates import SURROGATES, Surrogate

    def lookup(name: str) -> type:
        if name not in SURROGATES:
            raise ParameterError(f"unknown surrogate {name!r}; registered: {sorted(SURROGATES)}")
        return SURROGATES[name]

    if candidates is None:
        resolved = [(name, cls, {}) for name, cls in SURROGATES.items() if getattr(cls, "size_param", None)]
        if not resolved:
            raise ParameterError("no registered surrogate has a size_param; pass candidates explicitly")
    else:
        if isinstance(candidates, (str, type)):
            candidates = [candidates]
        resolved = []
        for c in candidates:
            if isinstance(c, str):
                resolved.append((c, lookup(c), {}))
            elif isinstance(c, type):
                if not issubclass(c, Surrogate):
                    raise ParameterError(f"candidate {c.__name__} is not a pellucid Surrogate subclass")
                resolved.append((c.name, c, {}))
            elif isinstance(c, tuple) and len(c) in (2, 3) and isinstance(c[0], str):
                name, cls = c[0], c[1]
                fixed = dict(c[2]) if len(c) == 3 and c[2] is not None else {}
                if isinstance(cls, str):
                    cls = lookup(cls)
                if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
                    raise ParameterError(f"candidate {name!r}: {cls!r} is not a pellucid Surrogate subclass")
                resolved.append((name, cls, fixed))
            else:
                raise ParameterError(
                    "each candidate must be a Surrogate subclass, a registered name, or a tuple "
                    f"(name, class, fixed params); got {c!r}"
                )
        if not resolved:
            raise ParameterError("candidates is empty; pass None for every registered surrogate")
    names = [n for n, _, _ in resolved]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError(f"candidate names must be distinct; repeated: {dup}")
    if params:
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ParameterError(f"params names candidates that are not among them: {unknown}; candidates: {names}")
        resolved = [(n, cls, {**fixed, **dict(params.get(n, {}))}) for n, cls, fixed in resolved]
    for name, cls, fixed in resolved:
        sig = inspect.signature(cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
            bad = sorted(set(fixed) - set(sig) - {"self"})
            if bad:
                raise ParameterError(f"candidate {name!r} ({cls.__name__}) takes no parameter(s) {bad}")
        size_param = getattr(cls, "size_param", None)
        if size_param is not None and size_param not in sig:
            raise ParameterError(
                f"candidate {name!r} ({cls.__name__}) names size_param {size_param!r}, "
                "which its __init__ does not take"
            )
        if size_param is not None and size_param in fixed:
            raise ParameterError(
                f"candidate {name!r} fixes {size_param}={fixed[size_param]!r}, the parameter the frontier "
                "varies; give the budgets as sizes instead"
            )
    return resolved


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        vals = list(sizes)
    except TypeError:
        raise ParameterError(f"sizes must be a sequence of positive integers, got {sizes!r}") from None
    bad = [s for s in vals if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1]
    if not vals or bad:
        raise ParameterError(f"sizes must be a non-empty sequence of positive integers, got {sizes!r}")
    return tuple(sorted({int(s) for s in vals}))


#: The training views a frontier can fit on.
TRAINING = ("distilled", "observed")


def training_views(dset: DistillationSet, training: str | Sequence[str]) -> dict[str, DistillationSet]:
    """The training views asked for, each with the set's held-out rows. ``observed`` is left
    out where it would repeat ``distilled`` (a set without synthetic rows)."""
    names = [training] if isinstance(training, str) else list(training)
    bad = [t for t in names if t not in TRAINING]
    if not names or bad:
        raise ParameterError(f"training must name one or more of {list(TRAINING)}, got {training!r}")
    observed = np.asarray(dset.source == "observed")
    views = {}
    for t in dict.fromkeys(names):
        if t == "distilled":
            views[t] = dset
        elif not observed.all() or "distilled" not in names:
            part = dset.subset(observed)
            if not (~part.is_holdout).any():
                raise ParameterError("training='observed' needs observed training rows; this set has none")
            views[t] = part
    return views


def validation_split(dset: DistillationSet, share: float | None, random_state: int | None = 0
                     ) -> tuple[DistillationSet, DistillationSet | None]:
    """Hold back observed training rows for choosing among fits: ``(the set without them, the
    validation rows)``. The rows the set's distillation held back from its samplers
    (``dset.is_validation``), where it marks any, whatever ``share``: no synthetic row carries
    their answers into the fits they judge. Otherwise a seeded ``share`` of the observed
    training rows. ``(dset, None)`` for ``share`` None or 0, or fewer than 10 observed training
    rows to spare."""
    if share is None or share == 0:
        return dset, None
    check_validation_share(share)
    if dset.is_validation is not None:
        marked = dset.is_validation & (dset.source == "observed") & ~dset.is_holdout
        if marked.any():
            return dset.subset(~marked), dset.subset(marked)
    pool = np.flatnonzero((dset.source == "observed") & ~dset.is_holdout)
    n = validation_count(pool.size, share)
    if n is None:
        return dset, None
    rng = np.random.default_rng(check_seed(random_state) + 7919)  # apart from the fits' own seed
    mask = np.zeros(len(dset), dtype=bool)
    mask[rng.choice(pool, size=n, replace=False)] = True
    return dset.subset(~mask), dset.subset(mask)


def _validation_score(s: Any, val: DistillationSet) -> float:
    """The task's measure of a fitted surrogate on validation rows (weighted as the set is)."""
    pred = predict_each([s], val.rows, schema=val.schema)[0]
    w = np.asarray(val.weights, dtype=float)
    if val.task == "classification":
        labels = np.asarray(val.classes, dtype=object)[val.outputs.argmax(axis=1)]
        return float(np.average(pred.astype(object) == labels, weights=w))
    from sklearn.metrics import r2_score  # a constant network is matched (1) or not (0), as evaluate() says

    return float(r2_score(np.asarray(val.outputs, dtype=float), pred.astype(float), sample_weight=w))


def fit_entry(name: str, cls: type, kw: dict[str, Any], size: int | None, dset: DistillationSet,
              training: str = "distilled", seed: int = 0, validation: DistillationSet | None = None) -> FrontierEntry:
    """Build ``cls(**kw)`` under the candidate's ``name``, fit it on ``dset`` (the training
    view named by ``training``), measure it on the set's held-out rows (intervals seeded by
    ``seed``), and return its entry (with the error message instead, when any of that
    raised). Its ``data`` is left for the caller to set: a worker process would send a copy
    of the rows back with it."""
    entry = FrontierEntry(candidate=name, size=size, params=dict(kw), training=training)
    try:
        s = _built(name, cls, kw)
        t0 = time.perf_counter()
        s.fit(dset)
        entry.fit_seconds = time.perf_counter() - t0
    except Exception as e:  # a candidate's failure is a result, recorded with its message
        entry.error = f"{type(e).__name__}: {e}"
        return entry
    return _measured(entry, s, dset, seed, validation)


def fit_entries(name: str, cls: type, kw: dict[str, Any], sizes: Sequence[int] | None, dset: DistillationSet,
                training: str = "distilled", seed: int = 0,
                validation: DistillationSet | None = None) -> list[FrontierEntry]:
    """:func:`fit_entry` at every size of ``sizes`` (None: the candidate has no size
    parameter and is fitted once with ``kw``), smallest first.

    A class whose fits at smaller sizes are read off its fit at the largest (``size_path``,
    :meth:`~pellucid.surrogates.Surrogate.fit_sizes`) is fitted once: the largest entry's
    ``fit_seconds`` is the time of all of them and the others' 0. Should that
    fail, each size is fitted on its own, so that an error belongs to the size that raised it.
    """
    param = getattr(cls, "size_param", None)
    if sizes is None or param is None:
        return [fit_entry(name, cls, kw, None, dset, training, seed, validation)]
    sizes = sorted(sizes)
    if not getattr(cls, "size_path", False) or len(sizes) == 1:
        return [fit_entry(name, cls, {**kw, param: s}, s, dset, training, seed, validation) for s in sizes]
    try:
        t0 = time.perf_counter()
        fits = _built(name, cls, {**kw, param: sizes[-1]}).fit_sizes(dset, sizes)
        seconds = time.perf_counter() - t0
    except Exception:  # fitted one size at a time below, where each error finds its own entry
        return [fit_entry(name, cls, {**kw, param: s}, s, dset, training, seed, validation) for s in sizes]
    return [_measured(FrontierEntry(candidate=name, size=s, params={**kw, param: s}, training=training,
                                    fit_seconds=seconds if s == sizes[-1] else 0.0), fitted, dset, seed, validation)
            for s, fitted in zip(sizes, fits)]


def _built(name: str, cls: type, kw: dict[str, Any]) -> Any:
    s = cls(**kw)
    if getattr(s, "name", None) != name:
        s.name = name  # the candidate's own name, wherever it is shown
    return s


def _measured(entry: FrontierEntry, s: Any, dset: DistillationSet, seed: int,
              validation: DistillationSet | None) -> FrontierEntry:
    """The entry with the fitted surrogate's fidelity on the held-out rows, size and
    validation score (or the error that raised)."""
    try:
        fid = evaluate(s, rows=dset, random_state=seed)
        comp = s.complexity()
        if validation is not None:
            entry.validation_score = _validation_score(s, validation)
    except Exception as e:  # a candidate's failure is a result, recorded with its message
        entry.error = f"{type(e).__name__}: {e}"
        return entry
    entry.surrogate = s
    entry.fidelity = fid
    entry.score = fid.agreement if dset.task == "classification" else fid.r2
    entry.n_rules = int(comp["n_rules"])
    entry.n_conditions = int(comp["n_conditions"])
    return entry


def frontier(
    dset: DistillationSet,
    candidates: Sequence[Any] | None = None,
    sizes: Sequence[int] = (4, 8, 16, 32),
    random_state: int | None = 0,
    n_jobs: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    training: str | Sequence[str] = TRAINING,
    validation: float | None = 0.2,
    verbose: int = 1,
    executor: Executor | None = None,
) -> Frontier:
    """Fit surrogates at several size budgets and measure each on the held-out rows.

    Parameters
    ----------
    dset : DistillationSet
        Candidates fit on its training rows; fidelity is measured on its held-out rows.
    candidates : sequence, optional
        Surrogate classes, names registered in ``pellucid.surrogates.SURROGATES``, or tuples
        ``(name, class, fixed params)``. By default every registered surrogate with a
        ``size_param``. A candidate without a ``size_param`` is fitted once, with its own
        parameters (its entry has size None).
    sizes : sequence of int
        The values given to each candidate's ``size_param`` (for a decision tree,
        ``max_leaf_nodes``).
    random_state : int, optional
        Given to every candidate that takes a ``random_state`` (unless its fixed parameters
        set one), and the seed of every entry's bootstrap intervals.
    n_jobs : int, optional
        Fits run in this many local processes; None fits one after another. Only the timings
        depend on it.
    params : mapping, optional
        Extra fixed parameters per candidate name, e.g. ``{"decision_tree": {"max_depth": 4}}``;
        they override those of the candidate tuple.
    training : str or sequence of {"distilled", "observed"}
        The rows each candidate is fitted on: the distillation set's training rows, its
        observed training rows alone, or both (the default; each fit is its own entry).
        Synthetic rows label regions the observed rows leave empty, which larger surrogates
        use; a very small surrogate can do better on the observed rows' own distribution by
        spending its few splits there. Both are measured on the same held-out rows.
    verbose : int
        0 for silence; otherwise a progress bar on a terminal.
    executor : Executor, optional
        Where the fits run (:mod:`pellucid.executor`: local processes or a Dask cluster);
        overrides ``n_jobs``. Only the timings depend on it.

    Returns
    -------
    Frontier
        A candidate that raises while being built, fitted or measured is recorded with its
        error message and left out of the Pareto set.

    Raises
    ------
    ParameterError
        For an unknown candidate name, a malformed candidate, a fixed parameter the class
        does not take or that sets the size parameter, or invalid sizes.
    """
    if not isinstance(dset, DistillationSet):
        raise ParameterError(f"frontier expects a DistillationSet from pellucid.distill, got {type(dset).__name__}")
    sizes = _check_sizes(sizes)
    resolved = _resolve_candidates(candidates, params)
    fit_set, val = validation_split(dset, validation, random_state)
    views = training_views(fit_set, training)
    tasks = []
    for name, cls, fixed in resolved:
        base = dict(fixed)
        sig = inspect.signature(cls.__init__).parameters
        if "random_state" in sig and "random_state" not in base:
            base["random_state"] = random_state
        tasks.append((name, cls, base, None if getattr(cls, "size_param", None) is None else sizes))
    quiet = verbose <= 0 or not sys.stderr.isatty()
    seed = check_seed(random_state)  # one bootstrap seed for every entry: their intervals compare
    run = as_executor(executor, n_jobs)
    shared = {t: run.share(view) for t, view in views.items()}  # sent once, not once per fit
    val_shared = None if val is None else run.share(val)
    calls = [(name, cls, kw, task_sizes, shared[t], t, seed, val_shared)
             for t in views for (name, cls, kw, task_sizes) in tasks]
    entries = [e for group in run.map(fit_entries, tqdm(calls, desc="frontier", disable=quiet, leave=False))
               for e in group]
    for e in entries:  # set here, not in the workers, so that no copy of the rows comes back
        e.data = views[e.training]
    return Frontier(entries, dset.task, sizes=sizes, random_state=random_state, fit_set=fit_set, validation_set=val)


@dataclass
class SampleChoice:
    """How many distilled rows a surrogate needs: the smallest sample after which doubling
    it gave no gain on the held-out rows.

    Attributes
    ----------
    rows : int
        Training rows chosen.
    available : int
        Training rows there were (in the set or the distillation file).
    steps : list of dict
        Per sample size tried: ``rows``, ``score`` (agreement, or R² for a regression),
        ``fit_seconds``.
    message : str
        What was chosen and why, for the report and the log.
    """

    rows: int
    available: int
    steps: list[dict[str, Any]]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "available": self.available, "steps": self.steps, "message": self.message}


def choose_sample(source: DistillationSet | str | Path, candidate: str = "decision_tree", size: int = 16, *,
                  start: int = 25_000, most: int = 1_000_000, gain: float = 0.002,
                  random_state: int | None = 0) -> SampleChoice:
    """Fit one candidate on doubling samples of the training rows, stop after two doublings
    in a row that gave no gain, and choose the smallest sample within ``gain`` of the best.

    Parameters
    ----------
    source : DistillationSet or path
        A distillation set, or a Parquet file written by ``distill(..., out=...)`` (samples
        are then read from it batch by batch, never the whole file).
    candidate : str
        A registered surrogate name (:data:`pellucid.surrogates.SURROGATES`).
    size : int
        Its size parameter (leaves, rules, terms).
    start, most : int
        First and largest sample of training rows.
    gain : float
        Doubling must lift held-out agreement (R² for a regression) by more than this to be
        worth it: 0.002 is 0.2 points.
    random_state : int, optional

    Returns
    -------
    SampleChoice
    """
    from ..extraction.stream import distillation_file_rows, read_distillation, sample_mask

    (name, cls, kw), = _resolve_candidates([candidate], None)
    if getattr(cls, "size_param", None):
        kw = {**kw, cls.size_param: int(size)}
    if isinstance(source, DistillationSet):
        available = int((~source.is_holdout).sum())

        def sample(m: int) -> DistillationSet:
            return source if m >= available else source.subset(sample_mask(source.is_holdout, m, random_state))
    else:
        rows, held = distillation_file_rows(source)
        available = rows - held

        def sample(m: int) -> DistillationSet:
            return read_distillation(source, sample=min(m, available), random_state=random_state)

    if start < 1 or most < start:
        raise ParameterError(f"need 1 <= start <= most; got start={start}, most={most}")
    steps: list[dict[str, Any]] = []
    m = min(start, available)
    while True:
        part = sample(m)
        measure = "agreement" if part.task == "classification" else "R²"
        entry = fit_entry(name, cls, kw, size, part)
        if entry.error:
            raise ParameterError(f"{name} failed on {m} rows: {entry.error}")
        steps.append({"rows": int(m), "score": float(entry.score), "fit_seconds": round(entry.fit_seconds, 3)})
        best = max(st["score"] for st in steps)
        # One fit is noisy (a tree on another sample can lose points): stop only after two
        # doublings in a row that did not beat the best score so far by more than `gain`.
        stalled = len(steps) >= 3 and all(st["score"] <= max(x["score"] for x in steps[:i]) + gain
                                          for i, st in [(len(steps) - 2, steps[-2]), (len(steps) - 1, steps[-1])])
        if stalled or m >= min(available, most):
            break
        m = min(2 * m, available, most)
    chosen = next((st for st in steps if st["score"] >= best - gain), steps[-1])  # gain < 0: the last
    largest = steps[-1]["rows"]
    if chosen["rows"] == largest:
        how = ("every available row was needed" if largest >= available
               else f"the largest sample allowed ({most:,} rows) still gained")
    else:
        how = (f"the best held-out {measure} over samples up to {largest:,} rows is {100 * best:.2f}"
               f"{'%' if measure == 'agreement' else ' (×100)'}, and this sample is within {100 * gain:.2f} points of it")
    message = f"{name} fitted on {chosen['rows']:,} of {available:,} distilled training rows: {how}"
    return SampleChoice(rows=int(chosen["rows"]), available=available, steps=steps, message=message)
