"""The whole path in one call: validate, distil, fit surrogates, measure, report.

:func:`explain` checks every option (:class:`~pellucid.pipeline.config.RunConfig`) and every
output path before any work, then runs the stages of :mod:`pellucid.pipeline.stages` in order
on one :class:`~pellucid.executor.Executor`. ``pellucid explain`` and ``pellucid demo`` are
thin shells around it.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from .. import _validation as fmt
from .._files import check_folder, check_new_file
from ..errors import ParameterError, SchemaError
from ..executor import make_executor
from ..extraction import DistillationSet
from ..fidelity import Fidelity, Frontier
from ..oracle import Oracle
from ..schema import Schema
from ..surrogates import Surrogate
from . import stages
from .config import RunConfig

#: The stages a run reports progress on, in order.
STAGES = ("schema", "distill", "frontier", "stability", "attribution", "local", "report")


@dataclass
class ExplainResult:
    """What :func:`explain` made: the objects, the report payload and the files."""

    oracle: Oracle
    schema: Schema
    distillation: DistillationSet
    surrogates: list[Surrogate]
    fidelities: list[Fidelity]
    payload: dict
    html_path: Path | None = None
    json_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    frontier: Frontier | None = None

    @property
    def recommended(self) -> Surrogate:
        return self.surrogates[self.payload["recommended"]]


def explain(
    model: Any,
    data: pd.DataFrame,
    *,
    target: str | None = None,
    id_column: str | None = None,
    preprocess: Any = None,
    task: str | None = None,
    classes: Sequence | None = None,
    out_dir: str | Path | None = "pellucid-report",
    strategy: str | Sequence[str] | Mapping[str, int] = ("observed", "perturb", "marginal"),
    n: int | None = None,
    sizes: Sequence[int] = (4, 8, 16, 32),
    surrogates: Sequence[str] | None = None,
    max_rules: int = 12,
    min_agreement: float | None = None,
    n_boot: int = 10,
    n_jobs: int | None = None,
    attributions: Sequence[str] | bool | None = None,
    attribution_rows: int = 300,
    local: bool = True,
    local_rows: Sequence[Any] | None = None,
    linear_view: bool = True,
    card: str | Path | Mapping[str, Any] | None = None,
    holdout: float = 0.25,
    schema: Schema | None = None,
    random_state: int | None = 0,
    verbose: int = 1,
    meta: Mapping[str, Any] | None = None,
    client: Any = None,
    stream_to: str | Path | None = None,
    keep: int | None = None,
    overwrite: bool = False,
    sample: int | str | None = None,
    sensitivity: bool | int = False,
    concepts: Mapping[str, Any] | None = None,
    concept_layer: Any = None,
    concept_target: Any = None,
    visualise: bool = False,
    allow_nondeterministic: bool = False,
    adverse_class: Any = None,
    groups: Sequence[str] | None = None,
    immutable: Sequence[str] = (),
    statements: Any = None,
    protected: Sequence[str] = (),
    monotone: Mapping[str, str] | None = None,
) -> ExplainResult:
    """Explain a network on a table and write the report.

    Parameters
    ----------
    model : Oracle or model
        An :class:`Oracle`, or anything ``Oracle(model, preprocess, task)`` accepts.
    data : pandas.DataFrame
        Observed rows in raw units; may hold the target column (named by ``target``).
    target : str, optional
        Ground-truth column: dropped from the features and used to report the network's own
        accuracy (or R²) next to the surrogates' fidelity.
    id_column : str, optional
        A column that names the rows (an application number): dropped from the features and
        used as every row's identity in the report. By default a row is named by its index
        label in ``data`` (for a table read from a file, its position: 0 is the first row).
        Either must be unique.
    preprocess, task, classes :
        Passed to :class:`Oracle` when ``model`` is not one already.
    out_dir : path, optional
        Where ``report.html`` and ``report.json`` go; ``None`` writes nothing.
    strategy, n, holdout :
        Passed to :func:`pellucid.distill`.
    sizes : sequence of int
        Rule budgets: every surrogate is fitted at each size, and the fidelity–complexity
        frontier of all of them is in the report.
    surrogates : sequence of str, optional
        Names from :data:`pellucid.surrogates.SURROGATES`; by default those marked
        ``default=True`` that fit the task (the fast ones; see docs/surrogates.md).
    max_rules, min_agreement :
        How the recommended surrogate is chosen: ``Frontier.select(max_rules=...,
        min_agreement=...)`` (min_agreement is R² for a regression). When no surrogate
        reaches ``min_agreement`` within ``max_rules``, the run stops with the frontier's
        message saying what is available.
    n_boot : int
        Bootstrap refits for the stability of the listed surrogates within ``max_rules``
        (and of entries that tie for the recommendation, which stability decides); 0: none.
    n_jobs : int, optional
        Local processes for the frontier's fits and the stability refits; see
        :mod:`pellucid.executor`. By default, on two cores or more, the frontier's fits go to
        one process per core where the training rows hold
        :data:`~pellucid.pipeline.stages.FRONTIER_WORTH_WORKERS` cells (rows × raw features)
        or more, and the refits and half the report's figures then to the same processes;
        on a smaller table the fits run in this process, and the refits too unless one after
        another they would take longer than
        :data:`~pellucid.pipeline.stages.REFITS_WORTH_WORKERS` seconds (estimated from the
        frontier's fits): then in one process per core. Refits in other processes (or on a
        cluster) run in the background while the run explains the network, and are collected
        before the report is written; 1 runs everything in this process. The report is the
        same either way.
    attributions : sequence of str or bool, optional
        Attribution methods (names in :data:`pellucid.attribution.METHODS`) run on the
        held-out observed rows, evaluated, and paired with the listed surrogates. By default
        (None or True) gradient methods and occlusion for a torch network, occlusion alone for
        other models; False or an empty list: no attributions.
    attribution_rows : int
        Most held-out rows the attributions explain.
    local : bool
        Explain a few rows one by one (LIME and anchors): the network's most confident row of
        each class, its least confident row, the rows where the recommended surrogate
        disagrees with it most confidently, and ``local_rows``.
    local_rows : sequence, optional
        Rows of ``data`` to explain one by one as well, by their identity (index label or
        ``id_column`` value; compared as text).
    linear_view : bool
        Also list an additive view of the network: an integer-points scorecard (two classes)
        or a sparse linear model (otherwise) with at most ``max_rules`` terms, in raw units.
        The best such entry of the frontier when it has one within ``max_rules``; otherwise
        one fitted on the observed training rows and added to the frontier, where it is as
        eligible for the recommendation as any other entry.
    card : path or mapping, optional
        The model card (purpose, intended use, data lineage, ...): a TOML, YAML or JSON file
        (:func:`pellucid.reports.load_card`) or its fields as a mapping.
    schema : Schema, optional
        A saved schema that pins the table (:meth:`Schema.from_json`, ``--schema``): the data's
        columns (less ``target`` and ``id_column``) must be its features, and are taken by
        name when they come in another order; their values are checked against its kinds and
        categories. Read from the data when not given.
    random_state : int, optional
        One seed for the whole run: same seed, same report.
    verbose : int
        0 for silence; 1 shows a progress bar on a terminal.
    meta : mapping, optional
        Extra facts for the report (title...); ``command_line`` goes to the report's ``run``
        block with the other facts that differ between two runs of the same inputs.
    client : distributed.Client or str, optional
        Run the work on a Dask cluster instead (:class:`pellucid.executor.DaskExecutor`): the
        frontier's fits and the stability refits, the attributions (one task per method) and
        the local explanations (LIME and anchors in pieces). A Client, or a spec for
        :func:`pellucid.cluster.connect` ("local:2", "tcp://host:8786"; a cluster started
        from a spec is closed at the end). The report is the one a single process writes; its
        ``meta.backend`` says where the work ran. See docs/dask.md.
    stream_to, keep :
        Passed to :func:`pellucid.distill` as ``out`` and ``keep``: distil in chunks, write
        every row to this Parquet file, and hold only ``keep`` synthetic rows in memory
        (docs/scale.md). An existing file is refused unless ``overwrite``; the data file named
        in ``meta["data_file"]`` always is.
    overwrite : bool
        Replace an existing ``stream_to`` file.
    sample : int or "auto", optional
        Fit the frontier on this many of the distilled training rows (a uniform sample; every
        held-out row stays). ``"auto"`` lets :func:`pellucid.fidelity.choose_sample` pick the
        smallest sample past which doubling no longer lifts a 16-leaf tree's held-out
        agreement, reading from ``stream_to`` when given; the report says what was chosen
        and why. Default: every row.
    sensitivity : bool or int
        Add Sobol' indices (n = 1024 base rows, or the number given) and Morris effects of the
        network over the schema's ranges, compared with the attributions' importances.
    concepts, concept_layer, concept_target :
        Concept name -> rule (``"debt_ratio > 0.6"``) or example rows, tested with TCAV at the
        torch layer named ``concept_layer`` for class ``concept_target`` (default: the last
        class; also the class the sensitivity analysis follows).
    visualise : bool
        For each class, the in-schema raw row the network gives it most surely and the
        observed rows that have most of it.
    adverse_class : label, optional
        The outcome a decision is adverse in (a classifier's class, e.g. "bad"): the report
        then gives every single-decision row its principal reasons (log-odds of this class,
        against the rows decided otherwise) and, when decided so, its counterfactual, and
        sums up the first reasons across the held-out rows decided so (docs/reasons.md).
    groups : sequence of str, optional
        Columns to compare groups by (numeric ones in quartile bands): the network's
        favourable rate, its accuracy and the recommended surrogate's agreement per group,
        groups with significantly lower agreement listed in Limitations. A column of ``X``
        the model does not take (where it or ``schema`` names its inputs), such as an
        attribute the model is kept from, is set aside for this comparison.
    immutable : sequence of str
        Features a counterfactual must not change (age, a protected attribute).
    statements : mapping or path, optional
        The sentence a notice prints per feature and direction, shown beside each principal
        reason (:func:`pellucid.attribution.decision_reasons.read_statements`).
    protected : sequence of str
        Protected attributes: never changed by a counterfactual, and every rule of the
        recommended surrogate and every principal reason that uses one is listed in
        Limitations. A card's ``[decision] adverse_class``, ``[features] immutable`` and
        ``protected`` and ``[groups] columns`` set these options where the call does not.
    monotone : mapping of str to {"increase", "decrease"}, optional
        Numeric features a counterfactual may move in one direction only (a card's
        ``[features] monotone`` table adds to it).
    allow_nondeterministic : bool
        Explain a model whose answers change when it is asked twice about the same rows. The
        run starts by asking about up to :data:`pellucid.oracle.DETERMINISM_ROWS` rows twice
        and otherwise stops with an error naming the share of rows that changed and the
        largest difference; allowed, the report states the measured disagreement in its
        summary (``model.determinism``).

    Notes
    -----
    Before any long work the run checks what it was given (docs/errors.md): requests the model
    cannot serve (gradient attributions of a model without gradients, the layer-hooking methods
    (LRP, Grad-CAM, guided backpropagation, DeconvNet, Guided Grad-CAM) and concepts on a
    TorchScript module), the table's columns against the names the model or
    ``schema`` records (``model.inputs`` in the report says how they were matched: by name,
    or by position where nothing records names), and the model's determinism. The target is
    checked against the classes right after distillation.
    """
    if not isinstance(data, pd.DataFrame):
        raise SchemaError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise SchemaError("the data is empty (0 rows)")
    if isinstance(attributions, str):
        attributions = [attributions]
    # Every option that can be checked without the data, and every output path, before any work.
    config = RunConfig.check(
        strategy=strategy, sizes=sizes, n=n, surrogates=surrogates, max_rules=max_rules, min_agreement=min_agreement,
        n_boot=n_boot, n_jobs=n_jobs, attributions=attributions, attribution_rows=attribution_rows, holdout=holdout,
        random_state=random_state, out_dir=out_dir, stream_to=stream_to, keep=keep, sample=sample, overwrite=overwrite,
        target=target, id_column=id_column, linear_view=linear_view, local=local, sensitivity=sensitivity,
        concepts=concepts, concept_layer=concept_layer, concept_target=concept_target, visualise=visualise,
        allow_nondeterministic=allow_nondeterministic, verbose=verbose, adverse_class=adverse_class,
        groups=None if groups is None else ([groups] if isinstance(groups, str) else list(groups)),
        immutable=[immutable] if isinstance(immutable, str) else list(immutable or ()), statements=statements,
        protected=[protected] if isinstance(protected, str) else list(protected or ()),
        monotone=dict(monotone or {}),
    )
    X, y = stages.features(data, target, id_column)
    if schema is not None and not isinstance(schema, Schema):
        raise ParameterError(f"{fmt.arg('schema')} must be a pellucid Schema (Schema.from_json reads a saved one); "
                             f"got {type(schema).__name__}")
    if card is not None:
        from ..reports.card import load_card, validate_card

        card = validate_card(card) if isinstance(card, Mapping) else load_card(card)
        _settings_from_card(config, card.get("settings") or {})
    if config.attributions is not None and not isinstance(config.attributions, bool):
        from ..attribution.summary import check_known

        check_known(config.attributions)  # the names now; what this model can give once it is read
    local_rows = _check_local_rows(local_rows, X, id_column)
    _check_features_named(config, X)
    undo_out = check_outputs(config, (meta or {}).get("data_file"))
    with contextlib.ExitStack() as closing:
        # The caller's warning filters as they were when the run ends: threads of the run
        # (attributions beside the frontier) and the learners' own quieting both set them.
        closing.enter_context(warnings.catch_warnings())
        bar = closing.enter_context(Progress(STAGES, verbose))
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        # A run that stops (an error, an interrupt) leaves no output folder it made.
        closing.push(lambda kind, *_: undo_out() if kind is not None else None)
        executor = make_executor(config.n_jobs, client)
        closing.callback(executor.close)  # a cluster started here is closed however the run ends

        def timed(name: str, detail: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            bar.start(name)
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            timings.setdefault(name, time.perf_counter() - t)
            bar.done(detail(out))
            return out

        prep = timed("schema", lambda p: f"{len(p.X):,} rows, {len(p.schema.features)} features", stages.prepare,
                     model, X, config, schema=schema, preprocess=preprocess, task=task, classes=classes)
        _check_adverse_class(config, prep.oracle)
        dset, truth = timed("distill", lambda r: f"{len(r[0]):,} rows, {r[0].n_queries:,} queried", stages.distil,
                            prep, y, config)
        background = stages.shapley_background(prep.oracle, dset, config)  # one for both stages
        # The attribution methods are measured on a thread while the frontier is fitted; the
        # thread is waited for however the run ends.
        t = time.perf_counter()
        early = stages.attribute_early(prep.oracle, dset, config, executor, background)
        if early is not None:
            closing.callback(early.close, cancel=True)  # a no-op once collected below
        # The frontier's fits, the refits and half the report's figures share one set of worker
        # processes where the table is large enough to repay starting them.
        fit_on = stages.frontier_executor(dset, config, executor)
        front, lin = timed("frontier", lambda r: f"{len(r[0].entries)} fits", stages.fit_frontier,
                           dset, config, fit_on, timings)
        choice = timed("stability", _stability_detail(config), stages.choose, front, lin, config, fit_on)
        # A run that stops before collecting its background refits stops them too.
        closing.push(lambda kind, *_: stages.abandon_refits(choice) if kind is not None else None)
        if early is not None:
            early.close()  # torch's thread count is restored before the refits' sharing sets its own
            timings["attribution_early"] = time.perf_counter() - t
        # While refits run in worker processes, this process leaves them the cores they use.
        sharing = closing.enter_context(stages.sharing_cores(choice))
        att = timed("attribution", lambda a: "none asked for" if a is None else f"{a.get('n', 0):,} rows",
                    stages.attribute, prep.oracle, dset, choice, config, executor, background, early)
        loc, local_frame = timed("local", lambda lo: "none asked for" if lo[0] is None
                                 else f"{len(lo[0].get('rows') or []):,} rows",
                                 stages.explain_locally, prep, dset, choice, local_rows, config, executor, background)
        t = time.perf_counter()
        decisions = stages.decide(prep, dset, choice, loc, local_frame, y, config)
        if decisions is not None:
            timings["decisions"] = time.perf_counter() - t
        t = time.perf_counter()
        analysis = stages.analyse(prep, dset, att, config)
        if analysis is not None:
            timings["analysis"] = time.perf_counter() - t
        extra, dis = stages.diagnose(dset, choice, config, timings)
        sharing.close()
        if choice.pending is not None:
            bar.start("stability")
        refits = choice.finish()  # the refits that ran in the background meanwhile
        if refits is not None:
            # The stage's own time (as if it had run alone) and what the run waited for it here.
            timings["stability"] += refits[0]
            timings["stability_wait"] = refits[1]
            bar.say(f"refits collected after {fmt.seconds(refits[0])} in the background")

        bar.start("report")
        t_report = time.perf_counter()
        payload, html_path, json_path = stages.report(
            prep, dset, truth, front, choice, att, loc, analysis, extra, dis, config, meta=meta, card=card,
            backend=executor.backend(), timings=timings, decisions=decisions, executor=fit_on)
        # Kept out of the payload (which is written above): the time to gather and write it.
        timings["report"] = time.perf_counter() - t_report
        timings["total"] = time.perf_counter() - t_all
        bar.done("not written" if html_path is None else f"written to {html_path.parent}")
        return ExplainResult(prep.oracle, prep.schema, dset, [e.surrogate for e in choice.listed],
                             [e.fidelity for e in choice.listed], payload, html_path, json_path, timings, front)


def _stability_detail(config: RunConfig) -> Any:
    """What the progress line of the stability stage says once :func:`stages.choose` returns."""
    def detail(choice: stages.Choice) -> str:
        if not config.n_boot:
            return "not asked for"
        if choice.pending is None:
            return f"{len(choice.stability)} surrogates refitted {config.n_boot} times"
        return (f"{len(choice.stability) + len(choice.pending[0])} surrogates to refit {config.n_boot} times, "
                f"{len(choice.pending[0])} of them in worker processes while the run goes on")
    return detail


def _settings_from_card(config: RunConfig, settings: Mapping[str, Any]) -> None:
    """A card's run settings where the call gave none; lists of features are joined."""
    o = config.extra
    if o.get("adverse_class") is None and settings.get("adverse_class") is not None:
        o["adverse_class"] = settings["adverse_class"]
    if o.get("groups") is None and settings.get("groups"):
        o["groups"] = list(settings["groups"])
    for key in ("immutable", "protected"):
        o[key] = list(dict.fromkeys([*(o.get(key) or []), *(settings.get(key) or [])]))
    o["monotone"] = {**(settings.get("monotone") or {}), **(o.get("monotone") or {})}


def _check_features_named(config: RunConfig, X: pd.DataFrame) -> None:
    """``groups`` and ``immutable`` name features of the table (a group column with two values
    at least), and ``statements`` read and name features."""
    features = [str(c) for c in X.columns]
    monotone = config.extra.get("monotone") or {}
    bad = {f: d for f, d in monotone.items() if d not in ("increase", "decrease")}
    if bad:
        raise ParameterError(f"{fmt.arg('monotone').removesuffix('=')} must map a feature to 'increase' or "
                             f"'decrease'; got {bad}")
    numbers = [str(c) for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    not_numbers = [str(f) for f in monotone if str(f) in features and str(f) not in numbers]
    if not_numbers:
        raise ParameterError(f"{fmt.arg('monotone').removesuffix('=')}: {not_numbers} are not numeric features; only "
                             "numbers move in a direction")
    for param in ("groups", "immutable", "protected", "monotone"):
        unknown = [str(f) for f in (config.extra.get(param) or []) if str(f) not in features]
        if unknown:
            raise ParameterError(f"{fmt.arg(param).removesuffix('=')} names {unknown[:10]}, which are not features of "
                                 f"the data (features: {features[:30]})")
    for g in config.extra.get("groups") or []:
        column = X[[c for c in X.columns if str(c) == str(g)][0]]
        if column.nunique(dropna=False) < 2:
            raise ParameterError(f"{fmt.arg('groups').removesuffix('=')} {g!r} holds a single value in the data; "
                                 "groups need at least two")
    if config.extra.get("statements") is not None:
        from ..attribution.decision_reasons import read_statements

        numeric = {str(c): bool(pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]))
                   for c in X.columns}
        config.extra["statements"] = read_statements(config.extra["statements"], features, numeric)


def _check_adverse_class(config: RunConfig, oracle: Any) -> None:
    """``adverse_class`` is one of the classifier's classes (checked once the model answered)."""
    adverse = config.extra.get("adverse_class")
    if adverse is None:
        return
    name = fmt.arg("adverse_class").removesuffix("=")
    if oracle.task != "classification":
        raise ParameterError(f"{name} is for a classifier's decisions; this model is a regressor")
    classes = list(oracle.classes_)
    if not any(c == adverse or str(c) == str(adverse) for c in classes):
        raise ParameterError(f"{name} {adverse!r} is not one of the model's classes {[str(c) for c in classes]}")


def _check_local_rows(local_rows: Sequence[Any] | None, X: pd.DataFrame, id_column: str | None) -> list[Any] | None:
    """``local_rows`` as labels of ``X``'s rows (given as text or as labels)."""
    if local_rows is None:
        return None
    known = {str(label): label for label in X.index}
    missing = [r for r in local_rows if str(r) not in known]
    if missing:
        what = (f"values of {fmt.arg('id_column').removesuffix('=')} {id_column!r}" if id_column is not None
                else f"row numbers of the data (0 to {len(X) - 1})" if fmt.at_cli() else "row labels of the data")
        raise ParameterError(f"{fmt.arg('local_rows').removesuffix('=')} {', '.join(map(str, missing[:10]))}: "
                             f"not {what}")
    return [known[str(r)] for r in local_rows]


class Progress:
    """What a run says while it works: a progress bar on a terminal; on any other stderr (CI,
    a log file) one line per finished stage with its time and rows; nothing when ``verbose``
    is 0."""

    def __init__(self, steps: Sequence[str], verbose: int, stream: Any = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.on = verbose > 0
        self.tty = self.on and self.stream.isatty()
        self.bar = tqdm(total=len(steps), desc="pellucid", disable=not self.tty, leave=False, file=self.stream)
        self.name, self.t0, self.t_all = None, time.perf_counter(), time.perf_counter()

    def start(self, name: str) -> None:
        self.name, self.t0 = name, time.perf_counter()
        self.bar.set_postfix_str(name)

    def done(self, detail: str = "") -> None:
        self.bar.update()
        self.say(detail)

    def say(self, detail: str) -> None:
        """The line of the step under way, without counting it as a step of the bar (a stage
        that ends later than its step, as refits in the background)."""
        if self.on and not self.tty:
            now = time.perf_counter()
            print(f"pellucid: {self.name}: {detail} ({fmt.seconds(now - self.t0)}; {fmt.seconds(now - self.t_all)} in all)",
                  file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def check_outputs(config: RunConfig, data_file: str | Path | None) -> Any:
    """Check every path the run will write before it starts (``out_dir`` a folder that can be
    written; ``stream_to`` new unless ``overwrite``, and never ``data_file``), named as typed
    (``--out`` at the command line, ``out_dir`` in Python); return what removes an output
    folder this check made, for a run that stops before writing it."""
    def name(param: str) -> str:
        return fmt.arg(param).removesuffix("=")

    undo = check_folder(config.out_dir, name("out_dir")) if config.out_dir is not None else (lambda: None)
    if config.stream_to is not None:
        try:
            check_new_file(config.stream_to, name("stream_to"), overwrite=config.overwrite, inputs=[data_file],
                           flag="--overwrite" if fmt.at_cli() else "overwrite=True")
        except BaseException:
            undo()
            raise
    return undo


