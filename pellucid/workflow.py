"""The whole path in one call: validate, distill, fit surrogates, measure, report.

``pellucid explain`` and ``pellucid demo`` are thin shells around :func:`explain`; Python users
call it directly when they want the report without assembling the steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import _validation as fmt
from ._files import check_folder, check_new_file
from .errors import DataFileError, ParameterError, PellucidWarning, SchemaError
from .extraction import DistillationSet, distill
from .fidelity import Fidelity, Frontier, disagreement, frontier, stability
from .oracle import Oracle
from .pipeline.config import RunConfig
from .reports import build, build_payload
from .schema import Schema, check_unique_columns
from .surrogates import SURROGATES, Surrogate


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


def frame_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table (values and column names), for the report's data lineage."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


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
        Processes for the frontier's and the bootstrap's fits (joblib; default one).
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
        Run the attributions (one task per method) and the local explanations (LIME and
        anchors in pieces) on a Dask cluster: a Client, or a spec for
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
    allow_nondeterministic : bool
        Explain a model whose answers change when it is asked twice about the same rows. The
        run starts by asking about up to :data:`pellucid.oracle.DETERMINISM_ROWS` rows twice
        and otherwise stops with an error naming the share of rows that changed and the
        largest difference; allowed, the report states the measured disagreement in its
        summary (``model.determinism``).

    Notes
    -----
    Before any long work the run checks what it was given (docs/errors.md): requests the model
    cannot serve (gradient attributions of a model without gradients, LRP, Grad-CAM and
    concepts on a TorchScript module), the table's columns against the names the model or
    ``schema`` records (``model.inputs`` in the report says how they were matched: by name,
    or by position where nothing records names), and the model's determinism. The target is
    checked against the classes right after distillation.
    """
    if not isinstance(data, pd.DataFrame):
        raise SchemaError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise SchemaError("the data is empty (0 rows)")
    # Every option that can be checked without the data, and every output path, before any work.
    config = RunConfig.check(
        sizes=sizes, n=n, max_rules=max_rules, min_agreement=min_agreement, n_boot=n_boot, n_jobs=n_jobs,
        attribution_rows=attribution_rows, holdout=holdout, random_state=random_state, out_dir=out_dir,
        stream_to=stream_to, keep=keep, sample=sample, overwrite=overwrite,
    )
    sizes = list(config.sizes)
    X, y = _features(data, target, id_column)
    if schema is not None and not isinstance(schema, Schema):
        raise ParameterError(f"{fmt.arg('schema')} must be a pellucid Schema (Schema.from_json reads a saved one); "
                             f"got {type(schema).__name__}")
    if card is not None:
        from .reports.card import load_card, validate_card

        card = validate_card(card) if isinstance(card, Mapping) else load_card(card)

    if attributions is not None and not isinstance(attributions, bool):
        if isinstance(attributions, str):
            attributions = [attributions]
        from .attribution import METHODS

        unknown = [m for m in attributions if m not in METHODS]
        if unknown:
            raise ParameterError(f"unknown attribution method(s) {unknown}; known: {sorted(METHODS)}")
    if local_rows is not None:
        known = {str(label): label for label in X.index}
        missing = [r for r in local_rows if str(r) not in known]
        if missing:
            what = (f"values of {fmt.arg('id_column').removesuffix('=')} {id_column!r}" if id_column is not None
                    else f"row numbers of the data (0 to {len(X) - 1})" if fmt.at_cli() else "row labels of the data")
            raise ParameterError(f"{fmt.arg('local_rows').removesuffix('=')} {', '.join(map(str, missing[:10]))}: "
                                 f"not {what}")
        local_rows = [known[str(r)] for r in local_rows]
    undo_out = _check_outputs(config, meta)
    steps = ["schema", "distill", "frontier", "stability", "attribution", "local", "report"]
    with contextlib.ExitStack() as closing:
        bar = closing.enter_context(Progress(steps, verbose))
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        step = bar.start

        # A run that stops (an error, an interrupt) leaves no output folder it made.
        closing.push(lambda kind, *_: undo_out() if kind is not None else None)
        own_client = client is not None and not hasattr(client, "submit")
        if client is not None:
            from . import cluster

            client = cluster.connect(client)
            if own_client:  # a cluster started here is closed however the run ends
                closing.callback(client.close)
        step("schema")
        t = time.perf_counter()
        oracle = model if isinstance(model, Oracle) else Oracle(model, preprocess=preprocess, task=task, classes=classes, verbose=verbose)
        if attributions is not False and not (isinstance(attributions, Sequence) and len(attributions) == 0):
            from .attribution.summary import check_methods

            # A method this model cannot give stops the run now, not after the distillation.
            check_methods(oracle, None if attributions in (None, True) else list(attributions))
        # The columns the model takes, by the names it (or a saved schema) records.
        X, inputs = oracle.match_columns(X, schema=schema)
        schema = Schema.from_frame(X) if schema is None else _schema_in_order(schema, inputs)
        # The whole table is checked here, before the model is asked anything, so that an error
        # names the first row at fault in "the data".
        valid = schema.validate(X, what="data")
        determinism = _check_determinism(oracle, valid, allow_nondeterministic, random_state)
        analysed = bool(sensitivity or concepts or visualise)
        if analysed:  # the task and classes are known now: a request that cannot run stops here
            from .attribution.analysis import analyse, check_request

            analysis_label = check_request(oracle, concepts=concepts, concept_layer=concept_layer,
                                           concept_target=concept_target)
        timings["schema"] = time.perf_counter() - t
        bar.done(f"{len(X):,} rows, {len(schema.features)} features")

        step("distill")
        t = time.perf_counter()
        # distill validates the table against the schema (its boundary): once is enough.
        dset = distill(oracle, X, strategy=strategy, n=n, schema=schema, holdout=holdout, random_state=random_state,
                       out=stream_to, keep=keep)
        timings["distill"] = time.perf_counter() - t
        if sample is not None:
            dset = _fitting_sample(dset, sample, stream_to, random_state)
        # Scored now: a target that does not fit the task stops the run before any fitting.
        from .fidelity import ground_truth as network_against_target

        ground_truth = network_against_target(dset, y, target, random_state=random_state)
        bar.done(f"{len(dset):,} rows, {dset.n_queries:,} queried")

        step("frontier")
        t = time.perf_counter()
        names = list(surrogates) if surrogates is not None else default_surrogates(dset.task, 0 if dset.classes is None else len(dset.classes))
        front = frontier(dset, candidates=names, sizes=sizes, random_state=random_state, n_jobs=n_jobs, verbose=0)
        timings["frontier"] = time.perf_counter() - t
        lin = None
        if linear_view:
            t = time.perf_counter()
            lin = _linear_view(front, dset, max_rules, random_state)
            timings["linear_view"] = time.perf_counter() - t
        bar.done(f"{len(front.entries)} fits")

        step("stability")
        t = time.perf_counter()
        stab: dict[int, Any] = {}  # by id() of the entry: measured once, whoever asks

        def stability_of(e: Any) -> Any:
            if id(e) not in stab:
                stab[id(e)] = stability(e.surrogate, e.data, n_boot=n_boot, random_state=random_state,
                                        n_jobs=n_jobs, verbose=0)
            return stab[id(e)]

        # Exactly as faithful entries are told apart by how often their rules come back.
        tie_break = (lambda e: stability_of(e).rule_stability) if n_boot else None
        chosen = front.select(max_rules=max_rules, min_agreement=min_agreement, tie_break=tie_break)
        tied = front.ties(max_rules=max_rules, min_agreement=min_agreement)
        # The report lists the Pareto set, the chosen entry and the linear view, smallest
        # first, and each set of rules once: entries whose rules are the same as an earlier
        # one's are named beside it.
        candidates_listed = [e for e in front.entries if e.pareto or e is chosen or e is lin]
        candidates_listed.sort(key=lambda e: (e.n_rules, e.n_conditions, -e.score, e is not chosen))
        listed, same_rules = _distinct(candidates_listed, keep=chosen)
        if n_boot:
            for e in listed:
                # What a reader chooses among: the entries within the rule budget.
                if e is chosen or e.n_rules <= max_rules:
                    stability_of(e)
        timings["stability"] = time.perf_counter() - t
        fitted = [e.surrogate for e in listed]
        fidelities = [e.fidelity for e in listed]
        rec = listed.index(chosen)
        linear_at = None if lin is None else listed.index(next(e for e in listed if e is lin or lin in same_rules.get(id(e), [])))
        selection = _selection(front, chosen, tied, listed, max_rules, min_agreement, n_boot, stab)
        bar.done(f"{len(stab)} surrogates refitted {n_boot} times" if n_boot else "not asked for")

        step("attribution")
        t = time.perf_counter()
        att = None
        if attributions is not False and not (isinstance(attributions, Sequence) and len(attributions) == 0):
            from .attribution.summary import summarise

            run = summarise if client is None else partial(cluster.summarise_attributions, client=client)
            hold = dset.holdout
            att = run(  # the rows keep their identity in the user's data as their index
                oracle, hold.rows.set_axis(hold.row_ids()), methods=None if attributions in (None, True) else list(attributions),
                surrogates=fitted, surrogate_labels=[e.name for e in listed], distillation=dset,
                max_rows=attribution_rows, random_state=random_state,
            )
        timings["attribution"] = time.perf_counter() - t
        bar.done("none asked for" if att is None else f"{att.get('n', 0):,} rows")

        step("local")
        t = time.perf_counter()
        loc = None
        if local:
            from .surrogates.local_summary import pick_rows, summarise_local

            hold = dset.holdout
            classes = list(dset.classes) if dset.classes is not None else None
            picked = pick_rows(hold.rows, hold.outputs, dset.task, classes=classes, surrogate=chosen.surrogate)
            at = [int(i) for i, _ in picked]  # positions in the holdout, named by the rows' identity
            rows = hold.rows.iloc[at].set_axis(hold.row_ids(at))
            why = [w for _, w in picked]
            if local_rows:
                named = schema.validate(X.loc[list(local_rows)], what="local_rows", allow_empty_columns=True)
                rows = pd.concat([rows, named.set_axis([str(r) for r in local_rows])])
                why += ["asked for"] * len(named)
            # Anchors keep a class; a regressor gets LIME alone.
            if client is None:
                loc = summarise_local(oracle, rows, why, X, anchor=dset.task == "classification", random_state=random_state)
            else:
                loc = cluster.summarise_local(oracle, rows, why, X, client, anchor=dset.task == "classification",
                                              random_state=random_state)
        timings["local"] = time.perf_counter() - t
        bar.done("none asked for" if loc is None else f"{len(loc.get('rows') or []):,} rows")

        analysis = None
        if analysed:
            t = time.perf_counter()
            observed_train = dset.rows[(dset.source == "observed") & ~dset.is_holdout].reset_index(drop=True)
            analysis = analyse(oracle, schema, X, observed_train, analysis_label, sensitivity=sensitivity,
                               concepts=concepts, concept_layer=concept_layer, visualise=visualise,
                               attributions=att, random_state=random_state)
            timings["analysis"] = time.perf_counter() - t

        t = time.perf_counter()
        from .fidelity.extrapolation import extrapolation

        extra = extrapolation(dset, random_state=random_state)
        timings["extrapolation"] = time.perf_counter() - t

        t = time.perf_counter()
        dis = disagreement(chosen.surrogate, chosen.data, random_state=random_state)
        timings["disagreement"] = time.perf_counter() - t

        step("report")
        t_report = time.perf_counter()
        info = dict(meta or {})
        command_line = info.pop("command_line", None)
        info.setdefault("random_state", random_state)
        info.setdefault("sizes", sizes)
        info["selection"] = selection
        if id_column is not None:
            info["id_column"] = id_column
        run_block = {
            "command_line": command_line,
            "backend": {"name": "local"} if client is None else cluster.backend(client),
            "timings": timings,
        }
        payload = build_payload(
            model={**oracle.describe(), "inputs": inputs.to_dict(), "determinism": determinism.to_dict()},
            schema=schema,
            dset=dset,
            surrogates=fitted,
            fidelities=fidelities,
            names=[e.name for e in listed],
            same_rules={i: [o.name for o in same_rules[id(e)]] for i, e in enumerate(listed) if id(e) in same_rules},
            meta={**info, "data_sha256": frame_sha256(X)},
            ground_truth=ground_truth,
            frontier=front,
            stability={i: stab[id(e)] for i, e in enumerate(listed) if id(e) in stab},
            disagreement=dis,
            recommended=rec,
            attributions=att,
            local=loc,
            extrapolation=extra,
            linear_view=linear_at,
            card=card,
            analysis=analysis,
            run=run_block,
        )
        html_path = json_path = None
        if out_dir is not None:
            try:
                html_path, json_path = build(payload, out_dir)
            except OSError as e:
                raise DataFileError(f"cannot write the report to {str(out_dir)!r}: {e.strerror or e}") from e
        # Kept out of the payload (which is written above): the time to gather and write it.
        timings["report"] = time.perf_counter() - t_report
        timings["total"] = time.perf_counter() - t_all
        bar.done("not written" if html_path is None else f"written to {html_path.parent}")
        return ExplainResult(oracle, schema, dset, fitted, fidelities, payload, html_path, json_path, timings, front)


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
        if self.on and not self.tty:
            now = time.perf_counter()
            print(f"pellucid: {self.name}: {detail} ({fmt.seconds(now - self.t0)}; {fmt.seconds(now - self.t_all)} in all)",
                  file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def _check_outputs(config: RunConfig, meta: Mapping[str, Any] | None) -> Any:
    """Check every path the run will write before it starts; return what removes an output
    folder this check made, for a run that stops before writing it."""
    undo = check_folder(config.out_dir, "out_dir") if config.out_dir is not None else (lambda: None)
    if config.stream_to is not None:
        try:
            check_new_file(config.stream_to, "stream_to", overwrite=config.overwrite,
                           inputs=[(meta or {}).get("data_file")], flag="overwrite=True")
        except BaseException:
            undo()
            raise
    return undo


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
    from .oracle import DETERMINISM_ROWS

    k = min(len(valid), DETERMINISM_ROWS)
    rows = np.sort(np.random.default_rng(random_state).choice(len(valid), k, replace=False))
    return oracle.check_determinism(valid.iloc[rows], allow=allow)


def _fitting_sample(dset: DistillationSet, sample: int | str, stream_to: str | Path | None,
                    random_state: int | None) -> DistillationSet:
    """The distillation set the surrogates learn from: ``sample`` training rows of ``dset``
    (chosen by :func:`choose_sample` for ``"auto"``), every held-out row kept."""
    from .extraction.stream import sample_mask
    from .fidelity import choose_sample

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
        from .extraction.stream import read_distillation

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
        return max(have, key=lambda e: (e.score, -e.n_rules))
    from .fidelity.frontier import fit_entry, training_views

    cls = SURROGATES[name]
    size = max(2, int(max_rules))
    # On the observed rows: the applicants' own distribution is what a scorecard is read
    # against, and the L1 path costs a fraction of what it costs on every distilled row.
    data = training_views(dset, "observed")["observed"]
    entry = fit_entry(name, cls, {cls.size_param: size, "random_state": random_state}, size, data, training="observed")
    entry.data = data  # the rows it learned from, as the frontier records for its own entries
    if entry.error:
        warnings.warn(f"the {name} view was not fitted, so the report has none: {entry.error}", PellucidWarning, stacklevel=3)
        return None
    return front.add(entry)  # on the frontier, eligible like every other entry


def _features(data: pd.DataFrame, target: str | None, id_column: str | None) -> tuple[pd.DataFrame, pd.Series | None]:
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


def _distinct(entries: Sequence[Any], keep: Any) -> tuple[list[Any], dict[int, list[Any]]]:
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
    if min_agreement is None:
        rule = (f"the highest held-out {measure} among every fitted entry (rule models and additive views) "
                f"with at most {max_rules} rules or terms")
    else:
        rule = (f"the smallest entry (fewest rules, then conditions) with at most {max_rules} rules or terms "
                f"whose held-out {measure} reaches {fmt.sig(min_agreement)}, and of those the most faithful")
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
