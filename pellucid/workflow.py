"""The whole path in one call: validate, distill, fit surrogates, measure, report.

``pellucid explain`` and ``pellucid demo`` are thin shells around :func:`explain`; Python users
call it directly when they want the report without assembling the steps.
"""

from __future__ import annotations

import contextlib
import hashlib
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

from .errors import DataFileError, ParameterError, PellucidWarning, SchemaError
from .extraction import DistillationSet, distill
from .fidelity import Fidelity, Frontier, disagreement, frontier, stability
from .oracle import Oracle
from .reports import build, build_payload
from .schema import Schema
from .surrogates import SURROGATES, Surrogate


#: Seconds of bootstrap refits a listed surrogate may cost before its stability is left out
#: of the report (the recommended surrogate's is always measured).
STABILITY_BUDGET_S = 3.0


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
    sample: int | str | None = None,
    sensitivity: bool | int = False,
    concepts: Mapping[str, Any] | None = None,
    concept_layer: Any = None,
    concept_target: Any = None,
    visualise: bool = False,
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
        Bootstrap refits for the stability of each surrogate the report lists (0: none).
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
        Index labels of rows of ``data`` to explain one by one as well.
    linear_view : bool
        Also list the form credit teams file: an integer-points scorecard (two classes) or a
        sparse linear model (otherwise) with at most ``max_rules`` terms, in raw units. The best
        such entry of the frontier when it has one within ``max_rules``; otherwise one fitted on
        the observed training rows.
    card : path or mapping, optional
        The model card (purpose, intended use, data lineage, ...): a TOML, YAML or JSON file
        (:func:`pellucid.reports.load_card`) or its fields as a mapping.
    schema : Schema, optional
        Read from the data when not given.
    random_state : int, optional
        One seed for the whole run: same seed, same report.
    verbose : int
        0 for silence; 1 shows a progress bar on a terminal.
    meta : mapping, optional
        Extra facts for the report (title, command line...).
    client : distributed.Client or str, optional
        Run the attributions (one task per method) and the local explanations (LIME and
        anchors in pieces) on a Dask cluster: a Client, or a spec for
        :func:`pellucid.cluster.connect` ("local:2", "tcp://host:8786"; a cluster started
        from a spec is closed at the end). The report is the one a single process writes; its
        ``meta.backend`` says where the work ran. See docs/dask.md.
    stream_to, keep :
        Passed to :func:`pellucid.distill` as ``out`` and ``keep``: distil in chunks, write
        every row to this Parquet file, and hold only ``keep`` synthetic rows in memory
        (docs/scale.md).
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
    """
    if not isinstance(data, pd.DataFrame):
        raise SchemaError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise SchemaError("the data is empty (0 rows)")
    if target is not None and target not in data.columns:
        raise SchemaError(f"target column {target!r} is not in the data (columns: {list(map(str, data.columns))[:20]})")
    sizes = sorted({int(k) for k in sizes})
    if not sizes or min(sizes) < 2:
        raise ParameterError(f"sizes must be rule budgets >= 2, got {list(sizes)}")
    if n_boot < 0 or n_boot == 1:
        raise ParameterError(f"n_boot must be 0 (no stability) or at least 2 refits, got {n_boot}")
    if card is not None:
        from .reports.card import load_card, validate_card

        card = validate_card(card) if isinstance(card, Mapping) else load_card(card)
    X = data.drop(columns=[target]) if target is not None else data
    y = data[target] if target is not None else None

    if attributions is not None and not isinstance(attributions, bool):
        if isinstance(attributions, str):
            attributions = [attributions]
        from .attribution import METHODS

        unknown = [m for m in attributions if m not in METHODS]
        if unknown:
            raise ParameterError(f"unknown attribution method(s) {unknown}; known: {sorted(METHODS)}")
    if isinstance(attribution_rows, bool) or not isinstance(attribution_rows, (int, np.integer)) or attribution_rows < 1:
        raise ParameterError(f"attribution_rows must be a positive integer, got {attribution_rows!r}")
    if local_rows is not None:
        missing = [r for r in local_rows if r not in data.index]
        if missing:
            raise ParameterError(f"local_rows {missing[:10]} are not index labels of the data")
    if sample is not None and sample != "auto" and (
            isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise ParameterError(f"sample must be a positive number of rows or 'auto', got {sample!r}")
    steps = ["schema", "distill", "frontier", "stability", "attribution", "local", "report"]
    quiet = verbose <= 0 or not sys.stderr.isatty()
    with contextlib.ExitStack() as closing, tqdm(total=len(steps), desc="pellucid", disable=quiet, leave=False) as bar:
        timings: dict[str, float] = {}
        t_all = time.perf_counter()

        def step(name: str) -> None:
            bar.set_postfix_str(name)

        own_client = client is not None and not hasattr(client, "submit")
        if client is not None:
            from . import cluster

            client = cluster.connect(client)
            if own_client:  # a cluster started here is closed however the run ends
                closing.callback(client.close)
        step("schema")
        t = time.perf_counter()
        schema = schema if schema is not None else Schema.from_frame(X)
        oracle = model if isinstance(model, Oracle) else Oracle(model, preprocess=preprocess, task=task, classes=classes, verbose=verbose)
        timings["schema"] = time.perf_counter() - t
        bar.update()

        step("distill")
        t = time.perf_counter()
        # distill validates the table against the schema (its boundary): once is enough.
        dset = distill(oracle, X, strategy=strategy, n=n, schema=schema, holdout=holdout, random_state=random_state,
                       out=stream_to, keep=keep)
        timings["distill"] = time.perf_counter() - t
        if sample is not None:
            dset = _fitting_sample(dset, sample, stream_to, random_state)
        analysed = bool(sensitivity or concepts or visualise)
        if analysed:  # the task and classes are known now: a request that cannot run stops here
            from .attribution.analysis import analyse, check_request

            analysis_label = check_request(oracle, concepts=concepts, concept_layer=concept_layer,
                                           concept_target=concept_target)
        # Scored now: a target that does not fit the task stops the run before any fitting.
        from .fidelity import ground_truth as network_against_target

        ground_truth = network_against_target(dset, y, target, random_state=random_state)
        bar.update()

        step("frontier")
        t = time.perf_counter()
        names = list(surrogates) if surrogates is not None else default_surrogates(dset.task, 0 if dset.classes is None else len(dset.classes))
        front = frontier(dset, candidates=names, sizes=sizes, random_state=random_state, n_jobs=n_jobs, verbose=0)
        chosen = front.select(max_rules=max_rules, min_agreement=min_agreement)
        timings["frontier"] = time.perf_counter() - t
        bar.update()

        # The report lists the Pareto set and the chosen surrogate, smallest first; the
        # frontier table shows every fit.
        listed = [e for e in front.entries if e.pareto or e is chosen]
        listed.sort(key=lambda e: (e.n_rules, e.n_conditions, -e.score))
        fitted: list[Surrogate] = []
        fidelities: list[Fidelity] = []
        for e in listed:
            e.surrogate.name = f"{e.candidate}_{e.size}" + ("" if e.training == "distilled" else f"_{e.training}")
            e.fidelity.complexity["fit_seconds"] = e.fit_seconds
            fitted.append(e.surrogate)
            fidelities.append(e.fidelity)
            timings[e.surrogate.name] = e.fit_seconds
        rec = next(i for i, e in enumerate(listed) if e is chosen)
        linear_at = None
        if linear_view:
            t = time.perf_counter()
            lin = _linear_view(front, dset, max_rules, random_state)
            if lin is not None:
                if lin not in listed:
                    lin.surrogate.name = f"{lin.candidate}_{lin.size}" + ("" if lin.training == "distilled" else f"_{lin.training}")
                    lin.fidelity.complexity["fit_seconds"] = lin.fit_seconds
                    listed.append(lin)
                    fitted.append(lin.surrogate)
                    fidelities.append(lin.fidelity)
                linear_at = listed.index(lin)
            timings["linear_view"] = time.perf_counter() - t

        step("stability")
        t = time.perf_counter()
        stab = {}
        if n_boot:
            for i, e in enumerate(listed):
                # The recommended surrogate always; the others where refitting is cheap.
                if e is chosen or e.fit_seconds * n_boot <= STABILITY_BUDGET_S:
                    stab[i] = stability(e.surrogate, e.data, n_boot=n_boot, random_state=random_state, n_jobs=n_jobs, verbose=0)
        timings["stability"] = time.perf_counter() - t
        bar.update()

        step("attribution")
        t = time.perf_counter()
        att = None
        if attributions is not False and not (isinstance(attributions, Sequence) and len(attributions) == 0):
            from .attribution.summary import summarise

            run = summarise if client is None else partial(cluster.summarise_attributions, client=client)
            att = run(
                oracle, dset.holdout.rows, methods=None if attributions in (None, True) else list(attributions),
                surrogates=fitted, surrogate_labels=[s.name for s in fitted], distillation=dset,
                max_rows=attribution_rows, random_state=random_state,
            )
        timings["attribution"] = time.perf_counter() - t
        bar.update()

        step("local")
        t = time.perf_counter()
        loc = None
        if local:
            from .surrogates.local_summary import pick_rows, summarise_local

            hold = dset.holdout
            classes = list(dset.classes) if dset.classes is not None else None
            picked = pick_rows(hold.rows, hold.outputs, dset.task, classes=classes, surrogate=chosen.surrogate)
            at = [int(i) for i, _ in picked]  # positions in the holdout; named by the data's own labels
            rows = hold.rows.iloc[at].set_axis([str(X.index[int(hold.origin[i])]) for i in at])
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
        bar.update()

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
        info.setdefault("random_state", random_state)
        info.setdefault("sizes", sizes)
        info["selection"] = {"max_rules": max_rules, "min_agreement": min_agreement}
        info["timings"] = timings
        info["backend"] = {"name": "local"} if client is None else cluster.backend(client)
        payload = build_payload(
            model=oracle.describe(),
            schema=schema,
            dset=dset,
            surrogates=fitted,
            fidelities=fidelities,
            meta={**info, "data_sha256": frame_sha256(X)},
            ground_truth=ground_truth,
            frontier=front,
            stability=stab,
            disagreement=dis,
            recommended=rec,
            attributions=att,
            local=loc,
            extrapolation=extra,
            linear_view=linear_at,
            card=card,
            analysis=analysis,
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
        bar.update()
        return ExplainResult(oracle, schema, dset, fitted, fidelities, payload, html_path, json_path, timings, front)


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
    from .fidelity.frontier import _fit_one, _views

    cls = SURROGATES[name]
    size = max(2, int(max_rules))
    # On the observed rows: the applicants' own distribution is what a scorecard is read
    # against, and the L1 path costs a fraction of what it costs on every distilled row.
    data = _views(dset, "observed")["observed"]
    entry = _fit_one(name, cls, {cls.size_param: size, "random_state": random_state}, size, data, training="observed")
    entry.data = data  # the rows it learned from, as the frontier records for its own entries
    if entry.error:
        warnings.warn(f"the {name} view was not fitted, so the report has none: {entry.error}", PellucidWarning, stacklevel=3)
        return None
    return entry


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
