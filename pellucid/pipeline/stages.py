"""The stages of an explain run, each a function of plain values.

:func:`pellucid.pipeline.explain` calls them in order: :func:`prepare` (the model, the
table's columns and schema, the checks that stop a run before any work), :func:`distil`,
:func:`fit_frontier`, :func:`choose` (the recommendation, the listed entries and their
stability), :func:`attribute`, :func:`explain_locally`, :func:`analyse`, :func:`diagnose`
(extrapolation and disagreement regions) and :func:`report`. A stage takes what earlier
stages returned and the run's :class:`~pellucid.pipeline.config.RunConfig`, returns new
values, and changes no object another layer made. Work that can run in parallel goes through
the run's :class:`~pellucid.executor.Executor`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import _validation as fmt
from .._validation import as_oracle
from ..errors import DataFileError, PellucidWarning, SchemaError
from ..executor import Executor
from ..extraction import DistillationSet
from ..fidelity import Frontier, FrontierEntry
from ..oracle import Oracle
from ..schema import Schema, check_unique_columns
from ..surrogates import SURROGATES
from .config import RunConfig


def _asked(attributions: Any) -> bool:
    """Whether attributions were asked for (None and True: the defaults; False or []: none)."""
    return attributions is not False and not (isinstance(attributions, Sequence) and len(attributions) == 0)


def _methods(attributions: Any) -> list[str] | None:
    return None if attributions in (None, True) else list(attributions)


# ---------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` found: the model, its table and the checks' results."""

    oracle: Oracle
    X: pd.DataFrame
    schema: Schema
    inputs: Any
    determinism: Any
    analysis_label: Any = None
    #: Columns of the table named as groups that the model does not take (a protected
    #: attribute kept out of the model), one row per row of ``X``; None when there are none.
    group_data: pd.DataFrame | None = None


def prepare(model: Any, X: pd.DataFrame, config: RunConfig, *, schema: Schema | None = None, preprocess: Any = None,
            task: str | None = None, classes: Sequence | None = None) -> Prepared:
    """The model as an :class:`Oracle`, the table's columns matched to its inputs (by the names
    it or ``schema`` records), the schema, and every check that needs the model but no long
    work: methods and analyses it cannot serve, the whole table's values, determinism."""
    o = config.extra
    oracle = as_oracle(model, preprocess=preprocess, task=task, classes=classes, verbose=o.get("verbose", 1))
    if _asked(config.attributions):
        from ..attribution.summary import check_methods

        # A method this model cannot give stops the run now, not after the distillation.
        check_methods(oracle, _methods(config.attributions))
    X, aside = _groups_aside(oracle, X, o.get("groups"), schema)
    X, inputs = oracle.match_columns(X, schema=schema)
    X = text_as_categories(oracle, X) if schema is None else X
    schema = Schema.from_frame(X) if schema is None else _schema_in_order(schema, inputs)
    # The whole table is checked here, before the model is asked anything, so that an error
    # names the first row at fault in "the data".
    valid = schema.validate(X, what="data")
    determinism = _check_determinism(oracle, valid, o.get("allow_nondeterministic", False), config.random_state)
    label = None
    if analysed(config):  # the task and classes are known now: a request that cannot run stops here
        from ..attribution.analysis import check_request

        label = check_request(oracle, concepts=o.get("concepts"), concept_layer=o.get("concept_layer"),
                              concept_target=o.get("concept_target"))
    return Prepared(oracle, X, schema, inputs, determinism, label, aside)


def text_as_categories(oracle: Oracle, X: pd.DataFrame) -> pd.DataFrame:
    """The table, with the text columns the model's encoders fitted as text categories held as
    (unordered) pandas categoricals where their values read as numbers (codes such as "01234"):
    the schema would read such a column as numbers, which would reach the model as numbers its
    encoder has never seen. A categorical reads as categories wherever a stage reads the table.
    Other text columns are left as they are (they read as categories already)."""
    from ..schema import NUMBERS_WITH_TYPOS

    text = oracle.text_inputs()
    cols = []
    for c in X.columns:
        if str(c) in text and (pd.api.types.is_object_dtype(X[c]) or pd.api.types.is_string_dtype(X[c])):
            present = X[c].dropna()
            if len(present) and pd.to_numeric(present, errors="coerce").notna().mean() >= NUMBERS_WITH_TYPOS:
                cols.append(c)
    if not cols:
        return X
    X = X.copy()
    for c in cols:
        X[c] = pd.Categorical(X[c])
    return X


def _groups_aside(oracle: Oracle, X: pd.DataFrame, groups: Sequence[Any] | None,
                  schema: Schema | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The table without the group columns the model does not take, and those columns.

    Groups are often compared by an attribute the model is kept from (sex, age band). Where the
    model or ``schema`` records the names of its inputs, a column named in ``groups`` that is
    not one of them is set aside for the comparison instead of being refused as a column the
    model does not take. Where nothing records the names, every column goes to the model."""
    named = {str(g) for g in groups or []}
    recorded = oracle.input_names()
    takes = set(recorded[0]) if recorded is not None else (set(schema.names) if schema is not None else None)
    if not named or takes is None:
        return X, None
    outside = [c for c in X.columns if str(c) in named and str(c) not in takes]
    if not outside:
        return X, None
    return X.drop(columns=outside), X[outside].reset_index(drop=True)


def analysed(config: RunConfig) -> bool:
    """Whether the run adds the analyses (sensitivity, concepts, class responses)."""
    o = config.extra
    return bool(o.get("sensitivity") or o.get("concepts") or o.get("visualise"))


# ---------------------------------------------------------------------------- distil
def distil(prep: Prepared, y: pd.Series | None, config: RunConfig) -> tuple[DistillationSet, Any]:
    """The distillation set the surrogates learn from (a sample of it where ``sample`` asks),
    and the network scored against the target (None without one): scored now, so that a
    target that does not fit the task stops the run before any fitting."""
    from ..extraction import distill
    from ..fidelity import ground_truth as network_against_target

    # distill validates the table against the schema (its boundary): once is enough.
    dset = distill(prep.oracle, prep.X, strategy=config.strategy, n=config.n, schema=prep.schema,
                   holdout=config.holdout, random_state=config.random_state, out=config.stream_to, keep=config.keep)
    if config.sample is not None:
        dset = _fitting_sample(dset, config.sample, config.stream_to, config.random_state)
    truth = network_against_target(dset, y, config.extra.get("target"), random_state=config.random_state)
    return dset, truth


# ---------------------------------------------------------------------------- frontier
#: Cells of the training rows (rows × raw features) from which the frontier's fits go to
#: worker processes when the run was given no ``n_jobs``: starting a worker costs about 1.5
#: CPU-seconds (imports), which the default candidates' fits on fewer cells (about a second
#: of them on 50,000) do not repay.
FRONTIER_WORTH_WORKERS = 50_000


def frontier_executor(dset: DistillationSet, config: RunConfig, executor: Executor) -> Executor:
    """Where the frontier's fits run: the run's ``executor`` when it was given ``n_jobs`` or a
    cluster, or on one core; else worker processes, one per core, where the training rows
    hold :data:`FRONTIER_WORTH_WORKERS` cells or more. The same workers then run the
    stability refits (:func:`refit_executor`) and draw half the report's figures. The fits
    do not depend on where they run."""
    from ..executor import LocalExecutor, cores

    if config.n_jobs is not None or executor.client is not None or cores() < 2:
        return executor
    cells = int(np.count_nonzero(~np.asarray(dset.is_holdout))) * len(dset.schema.features)
    return LocalExecutor(cores()) if cells >= FRONTIER_WORTH_WORKERS else executor


def fit_frontier(dset: DistillationSet, config: RunConfig, executor: Executor,
                 timings: dict[str, float]) -> tuple[Frontier, FrontierEntry | None]:
    """Every candidate at every size budget, and the linear view (an entry of the frontier,
    or None when not asked for or not fitted)."""
    from ..fidelity import frontier

    t = time.perf_counter()
    names = (list(config.surrogates) if config.surrogates is not None
             else default_surrogates(dset.task, 0 if dset.classes is None else len(dset.classes)))
    front = frontier(dset, candidates=names, sizes=config.sizes, random_state=config.random_state, verbose=0,
                     executor=executor)
    timings["frontier"] = time.perf_counter() - t
    lin = None
    if config.extra.get("linear_view", True):
        t = time.perf_counter()
        lin = _linear_view(front, dset, config.max_rules, config.random_state)
        timings["linear_view"] = time.perf_counter() - t
    return front, lin


# ---------------------------------------------------------------------------- stability
@dataclass
class Choice:
    """What :func:`choose` decided: the recommended entry, the entries the report lists (each
    set of rules once, with the entries whose rules are the same), their stability."""

    chosen: FrontierEntry
    listed: list[FrontierEntry]
    same_rules: dict[int, list[FrontierEntry]]
    stability: dict[int, Any] = field(default_factory=dict)  # by id() of the entry
    selection: dict[str, Any] = field(default_factory=dict)
    linear_at: int | None = None
    #: The listed entries whose refits run in the background, and their pending result.
    pending: tuple[list[FrontierEntry], Any] | None = None
    #: The executor whose worker processes ran refits (None when all ran in this process).
    refits_ran: Executor | None = None

    @property
    def recommended(self) -> int:
        return self.listed.index(self.chosen)

    def finish(self) -> tuple[float, float] | None:
        """Wait for the refits running in the background, if any, and add their stability.
        Returns None when none ran in the background, else the seconds of their own (from
        their start to the last measured) and those this call waited for them."""
        if self.pending is None:
            return None
        entries, pending = self.pending
        t = time.perf_counter()
        self.stability.update((id(e), r) for e, r in zip(entries, pending.result()))
        self.pending = None
        done = pending.started + pending.seconds
        return pending.seconds + time.perf_counter() - max(t, done), max(0.0, done - t)


def choose(front: Frontier, lin: FrontierEntry | None, config: RunConfig, executor: Executor) -> Choice:
    """Select the recommended entry (exact ties broken by rule stability), list the Pareto set,
    the chosen entry and the linear view, and measure the stability of the listed entries
    within the rule budget. Tied entries are measured before the choice; the listed ones run
    in the background when their refits go to worker processes (or a cluster), and
    :meth:`Choice.finish` collects them."""
    from ..fidelity.stability import stabilities, start_stabilities

    stab: dict[int, Any] = {}  # by id() of the entry: measured once, whoever asks
    ran: list[Executor] = []  # the executors whose workers ran refits

    def todo(entries: list[Any]) -> tuple[list[Any], Executor]:
        out = list({id(e): e for e in entries if id(e) not in stab}.values())
        where = executor if config.n_jobs is not None else refit_executor(front, out, config.n_boot, executor)
        if out and where.runs_elsewhere():
            ran.append(where)
        return out, where

    def measure(entries: list[Any]) -> None:
        # Every refit of every entry in one map, so that they spread over the executor together.
        entries, where = todo(entries)
        found = stabilities([(e.surrogate, e.data) for e in entries], n_boot=config.n_boot,
                            random_state=config.random_state, verbose=0, executor=where) if entries else []
        stab.update((id(e), r) for e, r in zip(entries, found))

    max_rules, floor, n_boot = config.max_rules, config.min_agreement, config.n_boot
    tied = front.ties(max_rules=max_rules, min_agreement=floor)
    if n_boot and len(tied) > 1:
        measure(tied + _sharing_refits(front, tied, lin, max_rules))
    # Exactly as faithful entries are told apart by how often their rules come back.
    tie_break = (lambda e: stab[id(e)].rule_stability) if n_boot else None
    chosen = front.select(max_rules=max_rules, min_agreement=floor, tie_break=tie_break)
    # The report lists the Pareto set, the chosen entry and the linear view, smallest first,
    # and each set of rules once: entries whose rules are the same as an earlier one's are
    # named beside it.
    candidates = [e for e in front.entries if e.pareto or e is chosen or e is lin]
    candidates.sort(key=lambda e: (e.n_rules, e.n_conditions, -e.score, e is not chosen))
    listed, same_rules = distinct(candidates, keep=chosen)
    pending = None
    if n_boot:
        # What a reader chooses among: the entries within the rule budget. Refits that run
        # elsewhere go on while this process explains the network (attributions, single rows).
        entries, where = todo([e for e in listed if e is chosen or e.n_rules <= max_rules])
        if entries and where.runs_elsewhere():
            pending = (entries, start_stabilities([(e.surrogate, e.data) for e in entries], n_boot=n_boot,
                                                  random_state=config.random_state, executor=where))
        else:
            measure(entries)
    linear_at = None if lin is None else listed.index(
        next(e for e in listed if e is lin or lin in same_rules.get(id(e), [])))
    selection = _selection(front, chosen, tied, listed, max_rules, floor, n_boot, stab)
    return Choice(chosen, listed, same_rules, stab, selection, linear_at, pending, ran[-1] if ran else None)


def _sharing_refits(front: Frontier, tied: Sequence[Any], lin: FrontierEntry | None, max_rules: int | None) -> list[Any]:
    """Entries the report lists whatever the tie decides (the Pareto set and the linear view,
    within the rule budget) whose refits are a tied entry's at another size
    (:func:`pellucid.fidelity.stability.refit_group`). Measured with the ties, they are read
    off the same refits instead of being refitted after the choice."""
    from ..fidelity.stability import refit_group

    keys = {k for k in (refit_group(e.surrogate, e.data) for e in tied) if k is not None}
    if not keys:
        return []
    within = [e for e in front.entries
              if (e.pareto or e is lin) and e.error is None and (max_rules is None or e.n_rules <= max_rules)]
    return [e for e in within if all(e is not t for t in tied) and refit_group(e.surrogate, e.data) in keys]


#: Estimated seconds of refits, one after another, from which worker processes run them
#: instead when the run was given no ``n_jobs``, in the background while this process goes on
#: (:func:`choose`): starting a worker imports scikit-learn and pellucid (not torch), about 1.5 CPU-seconds on
#: a small machine, which shorter refits do not repay.
REFITS_WORTH_WORKERS = 5.0


def refit_executor(front: Frontier, entries: Sequence[Any], n_boot: int, executor: Executor) -> Executor:
    """Where the stability refits of ``entries`` run when the run was given no ``n_jobs``: in
    the worker processes ``executor`` has (the frontier's, :func:`frontier_executor`); else in
    worker processes, one per core, when one after another they would take longer than
    :data:`REFITS_WORTH_WORKERS` seconds (each refit estimated by its entry's fit on the
    frontier; an entry read off a larger fit by that fit; the entries of one candidate on one
    view that share their refits once), else on ``executor``. The results do
    not depend on where they run."""
    from ..executor import LocalExecutor, cores

    if executor.client is not None or not n_boot or executor.local_processes():
        return executor  # a cluster, nothing to refit, or workers already started (the frontier's)
    n_cores = cores()
    if n_cores < 2:
        return executor
    largest: dict[tuple[str, str], float] = {}
    for e in front.entries:
        key = (e.candidate, e.training)
        largest[key] = max(largest.get(key, 0.0), e.fit_seconds or 0.0)
    # Entries of one candidate on one view that grows one rule at a time share their refits.
    each: dict[Any, float] = {}
    for i, e in enumerate(entries):
        key = (e.candidate, e.training) if getattr(e.surrogate, "size_path", False) else i
        each[key] = max(each.get(key, 0.0), e.fit_seconds or largest.get((e.candidate, e.training), 0.0))
    estimate = n_boot * sum(each.values())
    return LocalExecutor(min(n_cores, n_boot * len(entries))) if estimate > REFITS_WORTH_WORKERS else executor


def abandon_refits(choice: Choice) -> None:
    """For a run that stops before collecting its background refits: local worker processes
    are stopped (their work killed) and the thread that waited for them is waited for, so
    that neither outlives the run. Refits on a cluster are left to it."""
    if choice.pending is None:
        return
    pending = choice.pending[1]
    if pending.executor.local_processes():
        from ..executor import stop_local_workers

        stop_local_workers()
        pending.join()


def sharing_cores(choice: Choice) -> contextlib.ExitStack:
    """While ``choice``'s refits run in local worker processes: torch's threads in this process
    cut to the cores the workers leave (at least one), so that the network's matrix products do
    not contend with them for the same cores. Closing the stack restores them. torch's thread
    count changes no number of the report (tested: report.json is the same at 1 and 2)."""
    from .._device import torch_threads
    from ..executor import cores

    stack = contextlib.ExitStack()
    workers = None if choice.pending is None else choice.pending[1].executor.local_processes()
    if workers is not None:
        stack.enter_context(torch_threads(max(1, cores() - workers)))
    return stack


# ---------------------------------------------------------------------------- attributions
@dataclass(frozen=True)
class Background:
    """The background rows of the run's Shapley values (global summary and single decisions
    alike) and how the report names where they come from."""

    rows: pd.DataFrame
    source: str


def shapley_background(oracle: Oracle, dset: DistillationSet, config: RunConfig) -> Background | None:
    """:data:`~pellucid.attribution.summary.SHAPLEY_BACKGROUND` rows drawn with the run's seed
    from the observed training rows (the held-out rows the report explains are not among
    them); None when Shapley values are not among the attributions asked for."""
    if not _asked(config.attributions):
        return None
    from ..attribution.summary import SHAPLEY_BACKGROUND, check_methods
    from ..fidelity.intervals import check_seed

    if "shapley" not in check_methods(oracle, _methods(config.attributions)):
        return None
    observed = dset.rows[(dset.source == "observed") & ~dset.is_holdout].reset_index(drop=True)
    if len(observed) < 2:  # too few training rows: the held-out rows stand in
        observed = dset.holdout.rows.reset_index(drop=True)
        where = "held-out observed rows"
    else:
        where = "observed training rows (the held-out rows explained are not among them)"
    rng = np.random.default_rng([check_seed(config.random_state), 0x5A])
    n = min(SHAPLEY_BACKGROUND, len(observed))
    pick = np.sort(rng.choice(len(observed), n, replace=False))
    return Background(observed.iloc[pick].reset_index(drop=True),
                      f"{n} of the {len(observed):,} {where}, drawn with seed {config.random_state}")


def _measure_options(config: RunConfig, background: Background | None) -> dict[str, Any]:
    kw: dict[str, Any] = dict(methods=_methods(config.attributions), max_rows=config.attribution_rows,
                              random_state=config.random_state)
    if background is not None:
        kw.update(background=background.rows, background_from=background.source)
    return kw


def _attributed_rows(dset: DistillationSet) -> pd.DataFrame:
    hold = dset.holdout
    return hold.rows.set_axis(hold.row_ids())  # the rows keep their identity in the user's data


class EarlyAttributions:
    """The attribution methods measured on a thread of this process while the frontier is fitted
    (:func:`pellucid.attribution.summary.measure`: everything but the pairing with surrogates,
    which needs the listed entries). The frontier fits rules in numpy and scikit-learn and
    never asks the network, so the two share nothing but the cores: the network's products
    release the interpreter and run on the core the frontier leaves. torch runs each operation
    on one thread from :func:`attribute_early` until :meth:`close` (as Shapley values need
    anyway), so that no setting changes under the thread. :meth:`close` waits for the work
    however the run ends, so no thread outlives the run; :meth:`result` closes and returns the
    work, or raises its error."""

    def __init__(self, oracle: Oracle, rows: pd.DataFrame, kw: dict[str, Any]) -> None:
        from .._device import torch_threads
        from ..attribution.summary import measure
        from ..executor import OnThread

        self._threads = torch_threads(1)
        self._threads.__enter__()
        self._cancel = threading.Event()
        self._closed = False

        def work() -> Any:
            import torch

            from ..attribution.shapley import BLOCK_THREADS, CANCEL
            from ..executor import cores

            torch.set_num_threads(1)  # this thread's own setting too, where torch keeps one per thread
            BLOCK_THREADS.set(max(1, cores() - 1))  # the frontier keeps a core
            CANCEL.set(self._cancel)
            return measure(oracle, rows, **kw)

        self._work = OnThread(work, "pellucid-attributions")

    def close(self, cancel: bool = False) -> None:
        """Wait for the thread and restore torch's thread count; with ``cancel`` (the run
        stopped), the Shapley values stop at their next block of rows first."""
        if not self._closed:
            self._closed = True
            if cancel:
                self._cancel.set()
            self._work.join()
            self._threads.__exit__(None, None, None)

    def result(self) -> Any:
        self.close()
        return self._work.result()


def attribute_early(oracle: Oracle, dset: DistillationSet, config: RunConfig, executor: Executor,
                    background: Background | None) -> EarlyAttributions | None:
    """Start measuring the attribution methods now, beside the frontier (see
    :class:`EarlyAttributions`); None where they are measured later, in :func:`attribute`:
    none asked for, a Dask cluster (one task per method there), or a network that is not a
    torch module (its answers go through the oracle's own encoding and batching, which are
    not shared with a second thread)."""
    if not _asked(config.attributions) or executor.client is not None or oracle.kind != "torch":
        return None
    return EarlyAttributions(oracle, _attributed_rows(dset), _measure_options(config, background))


def attribute(oracle: Oracle, dset: DistillationSet, choice: Choice, config: RunConfig,
              executor: Executor, background: Background | None = None,
              early: "EarlyAttributions | None" = None) -> dict[str, Any] | None:
    """The attribution methods on the held-out observed rows, evaluated and paired with the
    listed surrogates; None when none were asked for. On a Dask executor, one task per method.
    ``background``: Shapley values' (:func:`shapley_background`); ``early``: the methods
    already measured while the frontier was fitted (:func:`attribute_early`)."""
    if not _asked(config.attributions):
        return None
    from ..attribution.summary import summarise

    kw = dict(surrogates=[e.surrogate for e in choice.listed], surrogate_labels=[e.name for e in choice.listed],
              distillation=dset, **_measure_options(config, background))
    rows = _attributed_rows(dset)
    if executor.client is None:
        return summarise(oracle, rows, measured=None if early is None else early.result(), **kw)
    from .. import cluster

    return cluster.summarise_attributions(oracle, rows, client=executor.client, **kw)


# ---------------------------------------------------------------------------- local
def explain_locally(prep: Prepared, dset: DistillationSet, choice: Choice, local_rows: Sequence[Any] | None,
                    config: RunConfig, executor: Executor, background: Background | None = None
                    ) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """A few rows explained one by one (LIME, and anchors for a classifier): the network's most
    confident row of each class, its least confident row, the rows where the recommended
    surrogate disagrees with it most confidently, and ``local_rows``; and those rows (raw).
    None, None when not asked for.
    With a Shapley ``background`` (:func:`shapley_background`), each row's Shapley values too
    (``rows[i]["shapley"]``, the basis in ``shapley``), computed here: a few rows are cheap."""
    found = _explain_locally(prep, dset, choice, local_rows, config, executor)
    if found is None:
        return None, None
    loc, rows = found
    if background is None or not loc.get("rows"):
        return loc, rows
    from ..attribution.summary import shapley_decisions

    basis, per_row = shapley_decisions(prep.oracle, rows, background.rows,
                                       background_from=background.source, random_state=config.random_state)
    for r, sv in zip(loc["rows"], per_row):
        r["shapley"] = sv
    return {**loc, "shapley": basis}, rows


def _explain_locally(prep: Prepared, dset: DistillationSet, choice: Choice, local_rows: Sequence[Any] | None,
                     config: RunConfig, executor: Executor) -> tuple[dict[str, Any], pd.DataFrame] | None:
    if not config.extra.get("local", True):
        return None
    from ..surrogates.local_summary import pick_rows, summarise_local

    hold = dset.holdout
    classes = list(dset.classes) if dset.classes is not None else None
    picked = pick_rows(hold.rows, hold.outputs, dset.task, classes=classes, surrogate=choice.chosen.surrogate)
    at = [int(i) for i, _ in picked]  # positions in the holdout, named by the rows' identity
    rows = hold.rows.iloc[at].set_axis(hold.row_ids(at))
    why = [w for _, w in picked]
    if local_rows:
        named = prep.schema.validate(prep.X.loc[list(local_rows)], what="local_rows", allow_empty_columns=True)
        rows = pd.concat([rows, named.set_axis([str(r) for r in local_rows])])
        why += ["asked for"] * len(named)
    anchor = dset.task == "classification"  # anchors keep a class; a regressor gets LIME alone
    if executor.client is None:
        return summarise_local(prep.oracle, rows, why, prep.X, anchor=anchor, random_state=config.random_state), rows
    from .. import cluster

    return cluster.summarise_local(prep.oracle, rows, why, prep.X, executor.client, anchor=anchor,
                                   random_state=config.random_state), rows


# ---------------------------------------------------------------------------- decisions
def decide(prep: Prepared, dset: DistillationSet, choice: Choice, loc: dict[str, Any] | None,
           local_frame: pd.DataFrame | None, y: pd.Series | None, config: RunConfig) -> dict[str, Any] | None:
    """Principal reasons of the held-out observed rows the network decides adversely (and of
    each single-decision row, with its counterfactual, added to ``loc``), and outcomes and
    fidelity per group. None unless ``adverse_class`` or ``groups`` is asked for (and for a
    regression)."""
    o = config.extra
    adverse, groups = o.get("adverse_class"), list(o.get("groups") or [])
    if dset.task != "classification" or (adverse is None and not groups):
        return None
    from .._device import torch_threads

    # One torch thread: the network's float32 sums split by thread, and report.json must be the
    # same whatever the machine's thread count (a counterfactual's boundary, a row's log-odds).
    with torch_threads(1):
        return _decide(prep, dset, choice, loc, local_frame, y, config)


def _decide(prep: Prepared, dset: DistillationSet, choice: Choice, loc: dict[str, Any] | None,
            local_frame: pd.DataFrame | None, y: pd.Series | None, config: RunConfig) -> dict[str, Any]:
    o = config.extra
    adverse, groups = o.get("adverse_class"), list(o.get("groups") or [])
    from ..attribution.decision_reasons import reason_plan

    hold = dset.holdout
    observed = np.flatnonzero(hold.origin >= 0)
    rows = hold.rows.iloc[observed].set_axis(hold.row_ids(observed))
    protected = [str(f) for f in o.get("protected") or []]
    out: dict[str, Any] = {"rows": "held-out observed rows", "n": len(rows), "reasons": None, "groups": None,
                           "protected": protected}
    classes = list(dset.classes)
    favourable = None
    if adverse is not None:
        plan = reason_plan(prep.oracle, prep.X, adverse_class=adverse, statements=o.get("statements"),
                           random_state=config.random_state)
        adverse = plan.adverse_class
        if len(classes) == 2:
            favourable = next(c for c in classes if str(c) != str(adverse))
        table = plan.explain(rows)
        out["reasons"] = _reasons_summary(plan, table, protected)
        out["reasons"]["stability"] = _stability(plan, rows, table, config.random_state)
        if loc is not None and loc.get("rows") and local_frame is not None:
            _add_single_decisions(prep, plan, loc, local_frame, config)
    if groups:
        from ..fidelity.groups import group_fidelity

        truth = None if y is None else y.iloc[hold.origin[observed]].to_numpy()
        outside = [] if prep.group_data is None else [str(c) for c in prep.group_data.columns]
        data = None
        if outside:  # the rows' own group columns beside those the model does not take, row by row
            named = {str(g) for g in groups}
            data = pd.concat([rows[[c for c in rows.columns if str(c) in named]].reset_index(drop=True),
                              prep.group_data.iloc[hold.origin[observed]].reset_index(drop=True)], axis=1)
        g = group_fidelity(prep.oracle, rows, groups, target=truth, surrogate=choice.chosen.surrogate,
                           favourable=favourable, group_data=data)
        out["groups"] = {"columns": [str(c) for c in groups], "not_inputs": outside, "favourable": favourable,
                         "surrogate": choice.chosen.name, "test": "one-sided two-proportion z-test of each group's "
                         "agreement against the other rows, Holm's correction over every group, 5%",
                         "table": g.to_dict(orient="records")}
    return out


def _reasons_summary(plan: Any, table: pd.DataFrame, protected: Sequence[str] = ()) -> dict[str, Any]:
    """How often each feature is the first reason, and a reason at all, over the adverse rows."""
    adv = table[table["adverse"].to_numpy(dtype=bool)]
    k = plan.k
    first = adv["reason_1"].dropna().value_counts()
    anywhere = pd.Series([f for i in range(k) for f in adv[f"reason_{i + 1}"].dropna()], dtype=object).value_counts()
    n = len(adv)
    notes = [str(v) for i in range(k) for v in adv[f"note_{i + 1}"].dropna()]

    def listed(counts: pd.Series) -> list[dict[str, Any]]:
        ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
        return [{"feature": str(f), "rows": int(c), "share": int(c) / n if n else None,
                 "protected": str(f) in protected} for f, c in ordered]

    return {"settings": plan.describe(), "n_adverse": n, "first_reason": listed(first), "any_reason": listed(anywhere),
            "negligible": sum("negligible" in v for v in notes),
            "rows_with_a_tie": int(sum(adv[f"note_{i + 1}"].fillna("").str.contains("tied").to_numpy()
                                       for i in range(k)).astype(bool).sum()) if n else 0}


#: Adverse rows the report's stability check explains again (another seed, and LIME).
STABILITY_ROWS = 100


def _stability(plan: Any, rows: pd.DataFrame, table: pd.DataFrame, seed: int | None) -> dict[str, Any] | None:
    """The reasons of up to :data:`STABILITY_ROWS` adverse rows again, with another seed and
    background sample and by LIME on the same log-odds (docs/reasons.md)."""
    from ..attribution.decision_reasons import reason_stability

    adverse = np.flatnonzero(table["adverse"].to_numpy(dtype=bool))
    if not len(adverse):
        return None
    pick = np.sort(np.random.default_rng(seed).choice(adverse, size=min(STABILITY_ROWS, len(adverse)),
                                                      replace=False))
    return reason_stability(plan, rows.iloc[pick], table=table.iloc[pick])


def _add_single_decisions(prep: Prepared, plan: Any, loc: dict[str, Any], frame: pd.DataFrame,
                          config: RunConfig) -> None:
    """Each single-decision row's principal reasons and, when decided adversely, its
    counterfactual."""
    from ..surrogates.counterfactuals import counterfactuals

    table = plan.explain(frame)
    # a protected attribute is never the change a counterfactual proposes
    immutable = list(dict.fromkeys([*(config.extra.get("immutable") or []), *(config.extra.get("protected") or [])]))
    adverse_rows = frame[table["adverse"].to_numpy(dtype=bool)]
    classes = list(prep.oracle.classes_)
    # two classes: the other one; more: any class but the adverse one
    wanted = next(c for c in classes if str(c) != str(plan.adverse_class)) if len(classes) == 2 else None
    monotone = dict(config.extra.get("monotone") or {})
    cf = counterfactuals(prep.oracle, adverse_rows, reference=prep.X, immutable=immutable, monotone=monotone,
                         target_class=wanted) if len(adverse_rows) else None
    adverse_seen = 0  # counterfactuals come in the order of the adverse rows
    for i, r in enumerate(loc["rows"]):
        t = table.iloc[i]
        items = []
        for q in range(int(t["n_reasons"])):
            j = q + 1
            items.append({"feature": t[f"reason_{j}"], "contribution": t[f"contribution_{j}"],
                          "se": t.get(f"se_{j}"), "value": t[f"value_{j}"],
                          "reference_value": t[f"reference_value_{j}"],
                          "statement": t.get(f"statement_{j}"), "note": t[f"note_{j}"],
                          "protected": t[f"reason_{j}"] in (config.extra.get("protected") or [])})
        r["reasons"] = {"decision": t["decision"], "adverse": bool(t["adverse"]), "log_odds": t["log_odds"],
                        "reference_log_odds": t["reference_log_odds"], "items": items}
        r["counterfactual"] = None
        if cf is not None and bool(t["adverse"]):
            c = cf.iloc[adverse_seen]
            adverse_seen += 1
            r["counterfactual"] = {"found": bool(c["found"]), "valid": bool(c["valid"]), "changes": c["changes"],
                                   "n_changes": int(c["n_changes"]), "distance": c["distance"],
                                   "plausibility": c["plausibility"], "plausibility_typical": c["plausibility_typical"],
                                   "target": c["target"], "note": c["note"],
                                   "immutable": immutable, "monotone": monotone}


# ---------------------------------------------------------------------------- analysis
def analyse(prep: Prepared, dset: DistillationSet, att: dict[str, Any] | None, config: RunConfig) -> dict[str, Any] | None:
    """Sensitivity, concepts and class responses, where asked for (None otherwise)."""
    if not analysed(config):
        return None
    from ..attribution.analysis import analyse as run_analysis

    o = config.extra
    observed_train = dset.rows[(dset.source == "observed") & ~dset.is_holdout].reset_index(drop=True)
    return run_analysis(prep.oracle, prep.schema, prep.X, observed_train, prep.analysis_label,
                        sensitivity=o.get("sensitivity") or False, concepts=o.get("concepts"),
                        concept_layer=o.get("concept_layer"), visualise=o.get("visualise", False), attributions=att,
                        random_state=config.random_state)


def diagnose(dset: DistillationSet, choice: Choice, config: RunConfig, timings: dict[str, float]) -> tuple[Any, Any]:
    """Where the synthetic rows lie outside the data (extrapolation), and the regions where the
    recommended surrogate disagrees with the network."""
    from ..fidelity import disagreement
    from ..fidelity.extrapolation import extrapolation

    t = time.perf_counter()
    extra = extrapolation(dset, random_state=config.random_state)
    timings["extrapolation"] = time.perf_counter() - t
    t = time.perf_counter()
    dis = disagreement(choice.chosen.surrogate, choice.chosen.data, random_state=config.random_state)
    timings["disagreement"] = time.perf_counter() - t
    return extra, dis


# ---------------------------------------------------------------------------- report
def report(prep: Prepared, dset: DistillationSet, truth: Any, front: Frontier, choice: Choice, att: Any, loc: Any,
           analysis: Any, extra: Any, dis: Any, config: RunConfig, *, meta: Mapping[str, Any] | None, card: Any,
           backend: dict[str, Any], timings: dict[str, float], decisions: Any = None, executor: Executor | None = None
           ) -> tuple[dict[str, Any], Path | None, Path | None]:
    """The report's payload, and ``report.html`` and ``report.json`` written to ``out_dir``
    (None, None where it is None)."""
    from ..reports import build, build_payload

    info = dict(meta or {})
    command_line = info.pop("command_line", None)
    info.setdefault("random_state", config.random_state)
    info.setdefault("sizes", list(config.sizes))
    info["selection"] = choice.selection
    id_column = config.extra.get("id_column")
    if id_column is not None:
        info["id_column"] = id_column
    listed, same, stab = choice.listed, choice.same_rules, choice.stability
    payload = build_payload(
        model={**prep.oracle.describe(), "inputs": prep.inputs.to_dict(), "determinism": prep.determinism.to_dict()},
        schema=prep.schema,
        dset=dset,
        surrogates=[e.surrogate for e in listed],
        fidelities=[e.fidelity for e in listed],
        names=[e.name for e in listed],
        same_rules={i: [o.name for o in same[id(e)]] for i, e in enumerate(listed) if id(e) in same},
        meta={**info, "data_sha256": frame_sha256(prep.X)},
        ground_truth=truth,
        frontier=front,
        stability={i: stab[id(e)] for i, e in enumerate(listed) if id(e) in stab},
        disagreement=dis,
        recommended=choice.recommended,
        attributions=att,
        local=loc,
        extrapolation=extra,
        linear_view=choice.linear_at,
        card=card,
        analysis=analysis,
        decisions=decisions,
        run={"command_line": command_line, "backend": backend, "timings": timings},
    )
    if config.out_dir is None:
        return payload, None, None
    try:
        html_path, json_path = build(payload, config.out_dir, figure_executor(choice, executor))
    except OSError as e:
        raise DataFileError(f"cannot write the report to {str(config.out_dir)!r}: {e.strerror or e}") from e
    return payload, html_path, json_path


def figure_executor(choice: Choice, executor: Executor | None) -> Executor | None:
    """Where the report's figures are drawn: the local worker processes the run has started
    (``executor``: its own ``n_jobs`` or the frontier's workers; or those its refits ran in),
    which are idle by the time the report is written; None (this process) when it started
    none."""
    for where in (executor, choice.refits_ran):
        if where is not None and where.local_processes():
            return where
    return None


def frame_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table (values and column names), for the report's data lineage."""
    import hashlib

    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- helpers
def _schema_in_order(schema: Schema, inputs: Any) -> Schema:
    """A saved schema with its features in the order the model takes them (it may have been
    saved in another order than the one the model records)."""
    if list(inputs.columns) == schema.names:
        return schema
    return Schema(tuple(schema[name] for name in inputs.columns), n_rows=schema.n_rows)


def _check_determinism(oracle: Oracle, valid: pd.DataFrame, allow: bool, random_state: int | None) -> Any:
    """Ask the model twice about a seeded sample of the validated observed rows (its first
    queries: they also fix how its outputs are read) and compare; see
    :meth:`Oracle.check_determinism`."""
    from ..oracle import DETERMINISM_ROWS

    k = min(len(valid), DETERMINISM_ROWS)
    rows = np.sort(np.random.default_rng(random_state).choice(len(valid), k, replace=False))
    return oracle.check_determinism(valid.iloc[rows], allow=allow)


def _fitting_sample(dset: DistillationSet, sample: int | str, stream_to: str | Path | None,
                    random_state: int | None) -> DistillationSet:
    """The distillation set the surrogates learn from: ``sample`` training rows of ``dset``
    (chosen by :func:`choose_sample` for ``"auto"``), every held-out row kept."""
    from ..extraction.stream import sample_mask
    from ..fidelity import choose_sample

    available = int((~dset.is_holdout).sum())
    from_file = sample == "auto" and stream_to is not None  # the file holds every row, the set a sample
    if sample == "auto":
        choice = choose_sample(stream_to if from_file else dset, random_state=random_state)
        rows, available = choice.rows, choice.available
        info = {"how": "auto", "message": choice.message, "steps": choice.steps}
        if from_file:
            info["read_from"] = str(stream_to)
    else:
        rows = min(int(sample), available)
        info = {"how": "given", "message": f"surrogates fitted on {rows:,} of {available:,} distilled training rows "
                                           "(a uniform sample, as asked)"}
    info.update(rows=int(rows), available=int(available))
    if from_file:
        from ..extraction.stream import read_distillation

        part = read_distillation(stream_to, sample=rows, random_state=random_state)
        part.params, part.n_queries = {**dset.params, **part.params}, dset.n_queries
    else:
        part = dset.subset(sample_mask(dset.is_holdout, rows, random_state))
    part.params = {**part.params, "fitting_sample": info}
    return part


def _linear_view(front: Frontier, dset: DistillationSet, max_rules: int, random_state: int | None) -> Any:
    """The frontier entry to show as a scorecard or sparse linear model: the best such entry
    within ``max_rules`` terms, or one fitted now at that size on the observed training rows."""
    binary = dset.task == "classification" and dset.classes is not None and len(dset.classes) == 2
    name = "scorecard" if binary else "sparse_linear"
    have = [e for e in front.entries if e.candidate in ("scorecard", "sparse_linear") and e.error is None
            and e.n_rules is not None and e.n_rules <= max_rules]
    if have:
        return max(have, key=lambda e: (e.selection_score, -e.n_rules))
    from ..fidelity.frontier import fit_entry, training_views

    cls = SURROGATES[name]
    size = max(2, int(max_rules))
    # On the observed rows: the applicants' own distribution is what a scorecard is read
    # against, and the L1 path costs a fraction of what it costs on every distilled row.
    # The frontier's own rows, less its validation rows, so that it is chosen as the others are.
    data = training_views(dset if front.fit_set is None else front.fit_set, "observed")["observed"]
    entry = fit_entry(name, cls, {cls.size_param: size, "random_state": random_state}, size, data, training="observed",
                      validation=front.validation_set)
    entry.data = data  # the rows it learned from, as the frontier records for its own entries
    if entry.error:
        warnings.warn(f"the {name} view was not fitted, so the report has none: {entry.error}", PellucidWarning, stacklevel=4)
        return None
    return front.add(entry)  # on the frontier, eligible like every other entry


def features(data: pd.DataFrame, target: str | None, id_column: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
    """The model's features of ``data``, indexed by each row's identity, and the target.

    The identity is the ``id_column`` value (dropped from the features), else the row's index
    label; either must be unique, since every section of the report names rows by it."""
    check_unique_columns(data, "data")
    columns = list(map(str, data.columns))
    for what, name in (("target", target), ("id", id_column)):
        if name is not None and name not in data.columns:
            raise SchemaError(f"{what} column {name!r} is not in the data (columns: {columns[:20]})")
    if target is not None and target == id_column:
        raise SchemaError(f"column {target!r} cannot be both the target and the id column")
    X = data.drop(columns=[c for c in (target, id_column) if c is not None])
    if id_column is not None:
        ids = data[id_column]
        if ids.isna().any():
            first = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise SchemaError(f"id column {id_column!r} is missing a value (first at row {first}); every row needs an identity")
        X = X.set_axis(pd.Index(ids.astype(str).to_numpy(), name=str(id_column)))
    if not X.index.is_unique:
        dup = X.index[X.index.duplicated()][0]
        where = f"id column {id_column!r}" if id_column is not None else "data's row labels (its index)"
        raise SchemaError(
            f"the {where} must name each row once, but {str(dup)!r} names {int((X.index == dup).sum())} rows"
            + ("" if id_column is not None else "; pass id_column= (--id-column) or reset the index")
        )
    # The target is named by the same identities as the features' rows (its errors name them).
    y = data[target].set_axis(X.index) if target is not None else None
    return X, y


def distinct(entries: Sequence[Any], keep: Any) -> tuple[list[Any], dict[int, list[Any]]]:
    """``entries`` with each set of rules once: an entry whose rules equal an earlier one's is
    left out and named beside the kept one (skope_rules at sizes 4, 8 and 16 finding the same
    three rules is one entry).
    ``keep`` (the chosen entry) is always kept, in the place of its first twin."""
    out: list[Any] = []
    same: dict[int, list[Any]] = {}
    key_of = {id(e): json.dumps(e.surrogate.rules_.to_dict(), sort_keys=True, default=str) for e in entries}
    for e in entries:
        twin = next((o for o in out if key_of[id(o)] == key_of[id(e)]), None)
        if twin is None:
            out.append(e)
        elif e is keep:
            # The chosen entry stands in its twin's place; the twin is named beside it.
            out[out.index(twin)] = e
            same[id(e)] = [twin, *same.pop(id(twin), [])]
        else:
            same.setdefault(id(twin), []).append(e)
    return out, same


def _selection(front: Frontier, chosen: Any, tied: Sequence[Any], listed: Sequence[Any], max_rules: int,
               min_agreement: float | None, n_boot: int, stab: Mapping[int, Any]) -> dict[str, Any]:
    """How the recommended surrogate was chosen, in words and in figures, for the report."""
    measure = "agreement" if front.task == "classification" else "R²"
    val = front.validation_set
    n_val = None if val is None else len(val)
    undrawn = val is not None and val.is_validation is not None and bool(val.is_validation.all())
    on = (f"validation {measure} (on {n_val:,} observed training rows held back from every fit"
          f"{' and from the synthetic rows drawn' if undrawn else ''}, so the held-out "
          f"{measure} stated was not used to choose)" if n_val else f"held-out {measure}")
    if min_agreement is None:
        rule = (f"the highest {on} among every fitted entry (rule models and additive views) "
                f"with at most {max_rules} rules or terms")
    else:
        rule = (f"the smallest entry (fewest rules, then conditions) with at most {max_rules} rules or terms "
                f"whose {on} reaches {fmt.sig(min_agreement)}, and of those the most faithful")
    rule += ("; exact ties are broken by rule stability (the share of bootstrap refits in which its rules come back), "
             "then by fewer rules, then fewer conditions" if n_boot else
             "; exact ties are broken by fewer rules, then fewer conditions (stability was not measured)")
    eligible = [e for e in front.entries if e.ok and e.n_rules <= max_rules]
    decided_by = "fidelity"
    if len(tied) > 1:
        stabilities = {e.name: (stab[id(e)].rule_stability if id(e) in stab else None) for e in tied}
        top = max((v for v in stabilities.values() if v is not None), default=None)
        decided_by = "stability" if n_boot and sum(v == top for v in stabilities.values()) == 1 else "simplicity"
    return {
        "max_rules": max_rules,
        "min_agreement": min_agreement,
        "rule": rule,
        "n_eligible": len(eligible),
        "tied": [e.name for e in tied] if len(tied) > 1 else [],
        "decided_by": decided_by,
        "chosen": chosen.name,
    }


def default_surrogates(task: str, n_classes: int = 0) -> list[str]:
    """The registered surrogates ``explain`` puts on the frontier by default: those marked
    ``default`` (fast enough to fit at every size in seconds) that handle the task."""
    out = []
    for name, cls in SURROGATES.items():
        if not getattr(cls, "default", False) or cls.size_param is None:
            continue
        if not cls.supports(task, n_classes):
            continue
        out.append(name)
    return out
