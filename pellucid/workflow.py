"""The whole path in one call: validate, distill, fit surrogates, measure, report.

``pellucid explain`` and ``pellucid demo`` are thin shells around :func:`explain`; Python users
call it directly when they want the report without assembling the steps.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import DataFileError, ParameterError, SchemaError
from .extraction import DistillationSet, distill
from .fidelity import Fidelity, evaluate
from .oracle import Oracle
from .reports import build, build_payload
from .schema import Schema
from .surrogates import DecisionTree, Surrogate


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
    leaves: Sequence[int] = (4, 8, 16),
    holdout: float = 0.25,
    schema: Schema | None = None,
    random_state: int | None = 0,
    verbose: int = 1,
    meta: Mapping[str, Any] | None = None,
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
    leaves : sequence of int
        A decision tree is fitted at each of these leaf counts; the report compares them.
    schema : Schema, optional
        Read from the data when not given.
    random_state : int, optional
        One seed for the whole run: same seed, same report.
    verbose : int
        0 for silence; 1 shows a progress bar on a terminal.
    meta : mapping, optional
        Extra facts for the report (title, command line...).
    """
    if not isinstance(data, pd.DataFrame):
        raise SchemaError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise SchemaError("the data is empty (0 rows)")
    if target is not None and target not in data.columns:
        raise SchemaError(f"target column {target!r} is not in the data (columns: {list(map(str, data.columns))[:20]})")
    leaves = [int(k) for k in leaves]
    if not leaves or min(leaves) < 2:
        raise ParameterError(f"leaves must be leaf counts >= 2, got {leaves}")
    X = data.drop(columns=[target]) if target is not None else data
    y = data[target] if target is not None else None

    steps = ["schema", "distill", *[f"tree-{k}" for k in leaves], "report"]
    quiet = verbose <= 0 or not sys.stderr.isatty()
    with tqdm(total=len(steps), desc="pellucid", disable=quiet, leave=False) as bar:
        timings: dict[str, float] = {}
        t_all = time.perf_counter()

        def step(name: str) -> None:
            bar.set_postfix_str(name)

        step("schema")
        t = time.perf_counter()
        schema = schema if schema is not None else Schema.from_frame(X)
        oracle = model if isinstance(model, Oracle) else Oracle(model, preprocess=preprocess, task=task, classes=classes, verbose=verbose)
        timings["schema"] = time.perf_counter() - t
        bar.update()

        step("distill")
        t = time.perf_counter()
        # distill validates the table against the schema (its boundary): once is enough.
        dset = distill(oracle, X, strategy=strategy, n=n, schema=schema, holdout=holdout, random_state=random_state)
        timings["distill"] = time.perf_counter() - t
        # Scored now: a target that does not fit the task stops the run before any fitting.
        ground_truth = _ground_truth(oracle, dset, y, target)
        bar.update()

        surrogates: list[Surrogate] = []
        fidelities: list[Fidelity] = []
        for k in leaves:
            step(f"tree, {k} leaves")
            t = time.perf_counter()
            s = DecisionTree(max_leaf_nodes=k, random_state=random_state).fit(dset)
            s.name = f"decision_tree_{k}"
            fit_time = time.perf_counter() - t
            fid = evaluate(s, rows=dset)
            fid.complexity["fit_seconds"] = fit_time
            surrogates.append(s)
            fidelities.append(fid)
            timings[s.name] = fit_time
            bar.update()

        step("report")
        info = dict(meta or {})
        info.setdefault("random_state", random_state)
        info.setdefault("leaves", leaves)
        info["timings"] = timings
        payload = build_payload(
            model=oracle.describe(),
            schema=schema,
            dset=dset,
            surrogates=surrogates,
            fidelities=fidelities,
            meta={**info, "data_sha256": frame_sha256(X)},
            ground_truth=ground_truth,
        )
        html_path = json_path = None
        if out_dir is not None:
            try:
                html_path, json_path = build(payload, out_dir)
            except OSError as e:
                raise DataFileError(f"cannot write the report to {str(out_dir)!r}: {e.strerror or e}") from e
        timings["total"] = time.perf_counter() - t_all
        bar.update()
        return ExplainResult(oracle, schema, dset, surrogates, fidelities, payload, html_path, json_path, timings)


def _ground_truth(oracle: Oracle, dset: DistillationSet, y: pd.Series | None, target: str | None) -> dict | None:
    """The network against the user's own target on the held-out observed rows, where the
    target is known: how good the thing being explained is."""
    if y is None:
        return None
    hold = np.flatnonzero(dset.is_holdout)
    truth = y.to_numpy()[dset.origin[hold]]
    known = ~pd.isna(truth)
    if not known.any():
        return {"target": target, "n": 0}
    t = truth[known]
    if dset.task == "classification":
        # Compare as text: a CSV may give 1 where the network's classes say "1".
        t = np.array([str(v) for v in t], dtype=object)
        classes = [str(c) for c in dset.classes]
        if not set(t) & set(classes):
            raise SchemaError(
                f"target column {target!r} holds {sorted(set(t))[:10]} but the network's classes are "
                f"{classes[:10]}; name the classes in the order of the network's outputs (classes=, --classes)"
            )
        pred = np.array([str(v) for v in dset.labels[hold][known]], dtype=object)
        return {"target": target, "n": int(known.sum()), "accuracy": float(np.mean(pred == t))}
    num = pd.to_numeric(pd.Series(t), errors="coerce")
    if num.isna().any():
        raise SchemaError(
            f"target column {target!r} holds non-numeric values (e.g. {t[num.isna().to_numpy()][0]!r}), "
            "but the network is a regression"
        )
    from sklearn.metrics import r2_score

    return {"target": target, "n": int(known.sum()), "r2": float(r2_score(num.to_numpy(), dset.outputs[hold][known]))}
