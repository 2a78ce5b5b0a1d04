"""pellucid on a Dask cluster: the embarrassingly parallel parts of the work, spread over workers.

What runs on the workers: the network's answers on a large table (:func:`query`), local
explanations of many rows (:func:`explain_rows`: LIME, anchors, the report's local summary),
attributions of many rows (:func:`attribute`), the report's attribution summary one method per
task (:func:`summarise_attributions`) and fidelity over a large holdout (:func:`evaluate`). What
stays on the client: the oracle's first batch (which fixes its task, output mode and batch
sizes before it is sent), the splitting, and the reassembly. Every function returns what the
single-process function returns on the same oracle state; see docs/dask.md.

Dask is an optional dependency (``pip install 'pellucid[dask]'``): this module imports it only
when a function is called.
"""

from __future__ import annotations

import copy
import os
import re
from numbers import Integral
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validation import Interval, validate_params
from .errors import ModelError, ParameterError
from .oracle import FIRST_BLOCK_ROWS, Oracle

__all__ = ["connect", "query", "explain_rows", "attribute", "summarise_attributions", "summarise_local", "reasons_chunks",
           "evaluate", "backend"]

_INSTALL = "pip install 'pellucid[dask]'"
_LOCAL = re.compile(r"^local(?::(\d+))?$")
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|inproc|ucx|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d+$")
#: Methods whose attribution of a row depends on that row (and the reference) alone.
ROW_WISE = ("saliency", "gradient_x_input", "integrated_gradients", "occlusion", "lrp", "shapley")
#: Methods that draw one random stream through all rows (captum's order): run whole, on one worker.
WHOLE = ("smoothgrad", "expected_gradients")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ParameterError(f"the Dask backend needs dask and distributed, which are not installed: {_INSTALL}") from e
    return distributed


# ----------------------------------------------------------------------------- the client
def connect(spec: Any) -> Any:
    """A ``distributed.Client`` for ``spec``.

    Parameters
    ----------
    spec : str or distributed.Client
        A scheduler address (``"tcp://host:8786"``, ``"host:8786"``); ``"local"`` or
        ``"local:N"``, which starts a ``LocalCluster`` of ``N`` worker processes (default: the
        machine's cores) with one thread each, closed with the client; or a Client, returned
        as is.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ParameterError
        A spec that is none of these, a scheduler that cannot be reached, or Dask not installed.
    """
    distributed = _distributed()
    if isinstance(spec, distributed.Client):
        return spec
    if not isinstance(spec, str):
        raise ParameterError(f"a Dask cluster is named by a scheduler address, 'local' or 'local:N', or given as a "
                             f"distributed.Client; got {type(spec).__name__}")
    text = spec.strip()
    m = _LOCAL.match(text)
    if m:
        n = int(m.group(1)) if m.group(1) else (os.cpu_count() or 1)
        if n < 1:
            raise ParameterError(f"'local:N' needs N >= 1 worker processes; got {spec!r}")
        return distributed.Client(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    if not _ADDRESS.match(text):
        raise ParameterError(f"cannot read {spec!r} as a Dask cluster: expected a scheduler address "
                             "('tcp://host:8786' or 'host:8786'), 'local' or 'local:N'")
    try:
        return distributed.Client(text, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise ParameterError(f"cannot reach the Dask scheduler at {text!r}: {e}") from e


def backend(client: Any) -> dict[str, Any]:
    """What the report records about the cluster: scheduler address and workers (threads)."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {"name": "dask", "scheduler": str(client.scheduler.address), "workers": len(workers),
            "threads": int(sum(w.get("nthreads", 1) for w in workers.values()))}


def _n_threads(client: Any) -> int:
    return max(1, int(sum(client.nthreads().values())))


# ----------------------------------------------------------------------------- the oracle on workers
def _step(oracle: Oracle) -> int | None:
    """Rows the oracle's query answers per step once its sizes are known (a block of whole
    batches), or None while they are not."""
    if hasattr(oracle, "chunk_rows_"):
        return oracle.chunk_rows_
    return oracle.batch_size_


def _resolved(oracle: Oracle) -> bool:
    # The first answer fixes the task, the output mode, the classes and the batch sizes.
    return _step(oracle) is not None and oracle.is_resolved


def _first_block() -> int:
    return FIRST_BLOCK_ROWS


def _prime(oracle: Oracle, rows: Any) -> np.ndarray | None:
    """Answer the oracle's first block on the client when it has never answered: the workers
    then get an oracle whose task, output mode and batch sizes are fixed, as one process would
    have them after that block. Returns the answer of ``rows[:block]`` or None."""
    if _resolved(oracle):
        return None
    head = rows.iloc[:_first_block()] if isinstance(rows, pd.DataFrame) else rows[:_first_block()]
    return oracle.query(head)


def _scatter_oracle(client: Any, oracle: Oracle) -> Any:
    """The oracle, sent once to every worker."""
    try:
        return client.scatter(oracle, broadcast=True, hash=False)
    except Exception as e:  # pickling errors come in many types (TypeError, PicklingError, ...)
        raise ModelError(
            f"the {oracle.kind} model cannot be sent to the Dask workers ({type(e).__name__}: {e}); "
            "workers need a model that pickles: a torch module, a scikit-learn estimator or a module-level "
            "function (an ONNX InferenceSession does not pickle: load it on the workers or run in one process)"
        ) from e


def _on_worker(oracle: Oracle) -> Oracle:
    """A private copy of the worker's oracle with its counters at zero (tasks sharing a worker
    must not count into each other's tallies)."""
    own = copy.copy(oracle)
    own.n_queries = 0
    own.n_calls = 0
    return own


def _count(oracle: Oracle, counts: Sequence[tuple[int, int]]) -> None:
    """Advance the caller's oracle by the workers' queries and calls."""
    oracle.n_queries += int(sum(q for q, _ in counts))
    oracle.n_calls += int(sum(c for _, c in counts))


def _task_query(oracle: Oracle, rows: Any) -> tuple[np.ndarray, int, int]:
    own = _on_worker(oracle)
    out = own.query(rows)
    return out, own.n_queries, own.n_calls


def _task_query_pieces(oracle: Oracle, pieces: list[tuple[Any, int, int]]) -> tuple[np.ndarray, int, int]:
    """Query the rows ``lo:hi`` of each piece (partitions of a dask DataFrame), concatenated."""
    frame = pd.concat([p.iloc[lo:hi] for p, lo, hi in pieces]) if len(pieces) > 1 else \
        pieces[0][0].iloc[pieces[0][1]:pieces[0][2]]
    return _task_query(oracle, frame)


def _bounds(n: int, start: int, unit: int, parts: int) -> list[tuple[int, int]]:
    """``[start, n)`` cut into about ``parts`` ranges whose sizes are multiples of ``unit``."""
    if n <= start:
        return []
    size = -(-(n - start) // max(1, parts))
    size = -(-size // unit) * unit
    return [(a, min(n, a + size)) for a in range(start, n, size)]


def query(oracle: Oracle, rows: Any, client: Any, *, partitions: int | None = None) -> np.ndarray:
    """The network's answers on a large table, computed partition by partition on the workers.

    Parameters
    ----------
    oracle : Oracle
        Sent once to every worker; it must pickle (torch, scikit-learn, module-level functions).
    rows : pandas.DataFrame, numpy array or dask.dataframe.DataFrame
        Raw rows.
    client : distributed.Client or str
        A client or a spec for :func:`connect`.
    partitions : int, optional
        Tasks to cut the rows into (default: two per worker thread). Each holds whole query
        blocks of the oracle, so every row is answered in the very batch one process puts it in.

    Returns
    -------
    ndarray
        Equal to ``oracle.query(rows)`` (bit for bit), in row order. ``oracle.n_queries`` and
        ``oracle.n_calls`` are advanced by what the workers did.
    """
    client = connect(client)
    if partitions is not None:
        _check_positive("partitions", partitions)
    parts = int(partitions) if partitions is not None else 2 * _n_threads(client)
    if _is_dask_frame(rows):
        return _query_dask(oracle, rows, client, parts)
    if not isinstance(rows, (pd.DataFrame, np.ndarray)):
        raise ParameterError(f"rows must be a pandas DataFrame, a numpy array or a dask DataFrame; got "
                             f"{type(rows).__name__}")
    n = len(rows)
    head = _prime(oracle, rows)
    start = 0 if head is None else len(head)
    cuts = _bounds(n, start, _step(oracle), parts)
    if not cuts:
        return head if head is not None else oracle.query(rows)
    remote = _scatter_oracle(client, oracle)
    chunks = [rows.iloc[a:b] if isinstance(rows, pd.DataFrame) else rows[a:b] for a, b in cuts]
    data = client.scatter(chunks)
    results = client.gather(client.map(_task_query, [remote] * len(data), data, pure=False))
    _count(oracle, [(q, c) for _, q, c in results])
    outs = ([] if head is None else [head]) + [o for o, _, _ in results]
    return np.concatenate(outs)


def _check_positive(name: str, value: Any) -> None:
    validate_params("pellucid.cluster", {name: value}, {name: [Interval(Integral, 1, None), None]})


def _is_dask_frame(rows: Any) -> bool:
    mod = type(rows).__module__
    return mod.startswith("dask.") or mod.startswith("dask_expr")


def _query_dask(oracle: Oracle, rows: Any, client: Any, parts: int) -> np.ndarray:
    """:func:`query` of a dask DataFrame: its partitions stay on the workers; each task gathers
    the slices of them that make up whole query blocks of the oracle."""
    sources = client.compute(rows.to_delayed())
    lengths = np.asarray(client.gather(client.map(len, sources)), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n = int(offsets[-1])
    if n == 0:
        return oracle.query(client.gather(sources[0]) if sources else pd.DataFrame())

    def pieces(a: int, b: int) -> list[tuple[Any, int, int]]:
        out = []
        for i in np.flatnonzero((offsets[:-1] < b) & (offsets[1:] > a)):
            lo, hi = max(a, offsets[i]) - offsets[i], min(b, offsets[i + 1]) - offsets[i]
            out.append((sources[i], int(lo), int(hi)))
        return out

    head = None
    if not _resolved(oracle):
        first = client.submit(lambda ps: pd.concat([p.iloc[lo:hi] for p, lo, hi in ps]),
                              pieces(0, min(n, _first_block())), pure=False).result()
        head = oracle.query(first)
    start = 0 if head is None else len(head)
    cuts = _bounds(n, start, _step(oracle), parts)
    outs = [] if head is None else [head]
    if cuts:
        remote = _scatter_oracle(client, oracle)
        futures = [client.submit(_task_query_pieces, remote, pieces(a, b), pure=False) for a, b in cuts]
        results = client.gather(futures)
        _count(oracle, [(q, c) for _, q, c in results])
        outs += [o for o, _, _ in results]
    return np.concatenate(outs)


# ----------------------------------------------------------------------------- local explanations
def _seed(random_state: Any) -> Any:
    """An int seed every piece shares: None draws one (as one process would draw its own
    entropy), a Generator gives one draw (as :func:`~pellucid.surrogates.lime_local.lime` takes)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    return random_state


def _task_local(oracle: Oracle, rows: pd.DataFrame, reference: pd.DataFrame, part: tuple[int, int], method: str,
                kw: dict) -> tuple[Any, int, int]:
    from .surrogates import LOCAL_EXPLAINERS

    own = _on_worker(oracle)
    return LOCAL_EXPLAINERS[method](own, rows, reference, part=part, **kw), own.n_queries, own.n_calls


def _concat_lime(parts: Sequence[Any]) -> Any:
    """One :class:`~pellucid.surrogates.lime_local.LocalExplanations` of pieces of a table."""
    from dataclasses import replace

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    frames = {k: pd.concat([getattr(p, k) for p in parts]) for k in
              ("rows", "coef", "coef_raw", "contributions", "representation", "intercept", "local_r2", "score",
               "prediction_local", "prediction_network", "target", "output_name")}
    tidx = None if first.target_index is None else np.concatenate([p.target_index for p in parts])
    return replace(first, target_index=tidx, **frames)


def explain_rows(oracle: Oracle, rows: pd.DataFrame, client: Any, *, reference: pd.DataFrame,
                 method: str = "lime", rows_per_task: int | None = None, **kw: Any) -> Any:
    """LIME or anchors for many rows, in pieces on the workers.

    Parameters
    ----------
    oracle : Oracle
    rows : DataFrame
        Raw rows to explain.
    client : distributed.Client or str
    reference : DataFrame
        As for :func:`~pellucid.surrogates.lime_local.lime` and
        :func:`~pellucid.surrogates.anchors.anchors`; sent to every worker once.
    method : str
        A name in :data:`pellucid.surrogates.LOCAL_EXPLAINERS` ("lime", "anchors").
    rows_per_task : int, optional
        Rows per task. LIME's default is its own chunk of rows (or a whole number of them), so
        that each row is sampled, queried and fitted in the batch one process uses (bit-equal
        results); a size that cuts LIME's chunks gives the same draws, equal up to the
        rounding of batched float sums. Anchors: about two tasks per worker thread.
    **kw
        Further arguments of the method (``num_samples``, ``precision``, ``random_state``, ...).

    Returns
    -------
    LocalExplanations (lime) or list of Anchor (anchors)
        Equal to the single-process call on the same oracle state: every row's random draws
        come from its position in ``rows``, whichever piece it is in.
    """
    from .surrogates import LOCAL_EXPLAINERS

    if method not in LOCAL_EXPLAINERS:
        raise ParameterError(f"unknown local explanation method {method!r}; use one of {sorted(LOCAL_EXPLAINERS)}")
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        raise ParameterError("explain_rows needs a non-empty DataFrame of raw rows")
    if "part" in kw:
        raise ParameterError("explain_rows cuts the rows itself; do not pass part=")
    client = connect(client)
    n = len(rows)
    kw = dict(kw)
    kw["random_state"] = _seed(kw.get("random_state", 0))
    _prime(oracle, rows)
    if rows_per_task is None:
        if method == "lime":
            from .surrogates.lime_local import default_chunk_rows

            unit = kw.get("chunk_rows") or default_chunk_rows(oracle, reference, kw.get("num_samples", 5000))
            rows_per_task = _bounds(n, 0, unit, 2 * _n_threads(client))[0][1]
        else:
            rows_per_task = -(-n // (2 * _n_threads(client)))
    else:
        _check_positive("rows_per_task", rows_per_task)
    step = int(rows_per_task)
    cuts = [(a, min(n, a + step)) for a in range(0, n, step)]
    remote = _scatter_oracle(client, oracle)
    [rows_f, ref_f] = client.scatter([rows, reference], broadcast=True, hash=False)
    futures = [client.submit(_task_local, remote, rows_f, ref_f, cut, method, kw, pure=False) for cut in cuts]
    results = client.gather(futures)
    _count(oracle, [(q, c) for _, q, c in results])
    if method == "lime":
        return _concat_lime([r for r, _, _ in results])
    return [a for r, _, _ in results for a in r]


def summarise_local(oracle: Oracle, rows: pd.DataFrame, why: Sequence[str], reference: pd.DataFrame, client: Any, *,
                    num_samples: int = 5000, precision: float = 0.95, k: int = 3, anchor: bool = True,
                    random_state: int | None = 0) -> dict[str, Any]:
    """:func:`pellucid.surrogates.local_summary.summarise_local` with LIME and anchors on the
    workers; the report's JSON is assembled on the client and equals the single-process one."""
    from .surrogates.local_summary import anchor_options, local_report

    if len(why) != len(rows):
        raise ParameterError(f"why has {len(why)} entries for {len(rows)} rows")
    if rows.empty:
        return {"rows": [], "params": {}}
    ex = explain_rows(oracle, rows, client, reference=reference, method="lime", num_samples=num_samples,
                      random_state=random_state)
    found = None
    if anchor:
        # One row per task: anchors cost far more per row than LIME, and rows are independent.
        found = explain_rows(oracle, rows, client, reference=reference, method="anchors", rows_per_task=1,
                             **anchor_options(precision, random_state))
    return local_report(ex, found, why, num_samples=num_samples, precision=precision, k=k, random_state=random_state)


# ----------------------------------------------------------------------------- attributions
def _task_attribute(oracle: Oracle, rows: pd.DataFrame, method: str, kw: dict) -> tuple[Any, int, int]:
    from .attribution import METHODS

    own = _on_worker(oracle)
    return METHODS[method](own, rows, **kw), own.n_queries, own.n_calls


def attribute(oracle: Oracle, rows: pd.DataFrame, client: Any, *, method: str = "integrated_gradients",
              rows_per_task: int | None = None, **kw: Any) -> Any:
    """An attribution method on many rows, in pieces on the workers.

    Parameters
    ----------
    oracle : Oracle
    rows : DataFrame
        Raw rows.
    client : distributed.Client or str
    method : str
        A name in :data:`pellucid.attribution.METHODS`. Row-wise methods (:data:`ROW_WISE`) are
        cut into pieces; smoothgrad and expected gradients draw one random stream through all
        rows in captum's order and run whole, as one task.
    rows_per_task : int, optional
        Rows per task (default: about two tasks per worker thread).
    **kw
        Further arguments of the method. ``reference`` defaults to all of ``rows``, so that
        summary baselines ("median", ...) and the raw-feature map are those of the whole table.

    Returns
    -------
    Attribution
        Equal to ``METHODS[method](oracle, rows, reference=rows, **kw)`` (values and deltas,
        bit for bit where each piece's batches are the whole call's; see docs/dask.md).
    """
    from .attribution import METHODS, Attribution

    if method not in METHODS:
        raise ParameterError(f"unknown attribution method {method!r}; known: {sorted(METHODS)}")
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        raise ParameterError("attribute needs a non-empty DataFrame of raw rows")
    client = connect(client)
    n = len(rows)
    kw = dict(kw)
    if kw.get("reference") is None and method != "occlusion":
        kw["reference"] = rows
    _prime(oracle, rows)
    if method not in ROW_WISE:
        rows_per_task = n
    elif rows_per_task is None:
        rows_per_task = -(-n // (2 * _n_threads(client)))
    else:
        _check_positive("rows_per_task", rows_per_task)
    step = int(rows_per_task)
    remote = _scatter_oracle(client, oracle)
    futures = []
    for a in range(0, n, step):
        piece = client.scatter(rows.iloc[a:a + step])
        futures.append(client.submit(_task_attribute, remote, piece, method, kw, pure=False))
    results = client.gather(futures)
    _count(oracle, [(q, c) for _, q, c in results])
    return Attribution.concat([r for r, _, _ in results])


def _task_summarise(oracle: Oracle, rows: pd.DataFrame, method: str, kw: dict) -> tuple[dict, Any, int, int]:
    from .attribution.summary import summarise

    own = _on_worker(oracle)
    summary, attrs = summarise(own, rows, methods=[method], return_attributions=True, **kw)
    return summary, attrs[method], own.n_queries, own.n_calls


def summarise_attributions(oracle: Oracle, rows: pd.DataFrame, client: Any, *, methods: Sequence[str] | None = None,
                           surrogates: Sequence[Any] = (), surrogate_labels: Sequence[str] | None = None,
                           distillation: Any = None, k: int = 5, **kw: Any) -> dict[str, Any]:
    """:func:`pellucid.attribution.summary.summarise` with one task per method on the workers.

    Each method's attributions, evaluation and randomisation check depend on that method
    alone, so the methods run apart; the pairing with the surrogates (their permutation
    importance, and the rank correlations' bootstrap over the explained rows, whose
    attributions come back from the workers) is computed on the client. The result equals
    the single-process summary but for the ``seconds`` each method took.
    """
    from .attribution.summary import default_methods, pair_with_surrogates, pairing_intervals
    from .fidelity.intervals import check_seed

    client = connect(client)
    _prime(oracle, rows)
    names = list(default_methods(oracle) if methods is None else methods)
    if not names:
        raise ParameterError("summarise_attributions needs at least one method")
    kw = {**kw, "k": k}
    remote = _scatter_oracle(client, oracle)
    rows_f = client.scatter(rows, broadcast=True, hash=False)
    results = client.gather([client.submit(_task_summarise, remote, rows_f, m, kw, pure=False) for m in names])
    _count(oracle, [(q, c) for _, _, q, c in results])
    each = [r for r, _, _, _ in results]
    attrs = {m: a for m, (_, a, _, _) in zip(names, results)}
    out = dict(each[0])
    out["methods"] = [r["methods"][0] for r in each]
    show = "integrated_gradients" if "integrated_gradients" in names else names[0]
    shown = each[names.index(show)]
    out["instances_method"], out["instances_method_label"] = shown["instances_method"], shown["instances_method_label"]
    out["instances"] = shown["instances"]
    out["shapley"] = next((r["shapley"] for r in each if r.get("shapley")), None)
    labels = list(surrogate_labels) if surrogate_labels is not None else [getattr(s, "name", str(i)) for i, s in
                                                                        enumerate(surrogates)]
    seed = check_seed(kw.get("random_state", 0))
    pairing = []
    if surrogates and distillation is not None:
        pairing = pair_with_surrogates(attrs, surrogates, labels, distillation, k=k, random_state=seed)
    out["pairing"] = pairing
    out["intervals"] = pairing_intervals(pairing, out["n"], seed, {m["name"]: m["n_rows"] for m in out["methods"]})
    return out


def _num(v: Any) -> Any:
    from ._validation import number

    return number(v)


# ----------------------------------------------------------------------------- fidelity
def _task_tally(surrogate: Any, oracle: Oracle, rows: pd.DataFrame, chunk_rows: int, confidence: float,
                offset: int = 0, random_state: int | None = 0, n_boot: int | None = None) -> tuple[Any, int, int]:
    from .fidelity.intervals import N_BOOT
    from .fidelity.metrics import FidelityTally, query_chunks

    own = _on_worker(oracle)
    # The partition's first row is row `offset` of the table: its bootstrap weights are
    # those a single process gives that row.
    tally = FidelityTally(surrogate, confidence=confidence, rows="given", random_state=random_state,
                          n_boot=n_boot or N_BOOT, offset=offset)
    for canon, net_out in query_chunks(surrogate.schema_, own, [rows], chunk_rows):
        tally.add(canon, net_out)
    return tally, own.n_queries, own.n_calls


def evaluate(surrogate: Any, oracle: Oracle, rows: pd.DataFrame, client: Any, *, confidence: float = 0.95,
             chunk_rows: int | None = None, partitions: int | None = None, random_state: int | None = 0,
             n_boot: int | None = None) -> Any:
    """:func:`pellucid.fidelity.evaluate` of a surrogate on a large table of raw rows, one
    :class:`~pellucid.fidelity.metrics.FidelityTally` per partition on the workers, merged on
    the client.

    Partitions hold whole evaluation chunks (``chunk_rows``, default that of
    :func:`pellucid.fidelity.evaluate`), so the network answers every row in the batch one
    process uses: counts, agreement and per-rule figures equal the single-process result
    exactly; R², MAE and RMSE up to the rounding of float sums merged in another order. The
    bootstrap intervals (``random_state``, ``n_boot``: as in :func:`pellucid.fidelity.evaluate`)
    equal the single-process ones bit for bit: each partition's tally knows where its rows
    start in the table.
    """
    from .fidelity.intervals import N_BOOT, check_n_boot, check_seed
    from .fidelity.metrics import CHUNK_ROWS

    if not isinstance(rows, pd.DataFrame):
        raise ParameterError(f"cluster.evaluate takes a pandas DataFrame of raw rows; got {type(rows).__name__}")
    surrogate._check_fitted()
    client = connect(client)
    chunk = int(chunk_rows or CHUNK_ROWS)
    parts = int(partitions) if partitions else 2 * _n_threads(client)
    n = len(rows)
    if n == 0:
        raise ParameterError("fidelity.evaluate got no rows to evaluate on")
    if not _resolved(oracle):
        _prime(oracle, surrogate.schema_.validate(rows.iloc[:_first_block()], what="evaluation rows",
                                                  allow_empty_columns=True))
    n_boot = check_n_boot(N_BOOT if n_boot is None else n_boot)
    seed = check_seed(random_state)  # one seed for every partition, even when None was given
    cuts = _bounds(n, 0, chunk, parts)
    remote = _scatter_oracle(client, oracle)
    [sur_f] = client.scatter([surrogate], broadcast=True, hash=False)
    data = client.scatter([rows.iloc[a:b] for a, b in cuts])
    results = client.gather([client.submit(_task_tally, sur_f, remote, d, chunk, confidence, a, seed, n_boot,
                                           pure=False)
                             for d, (a, _) in zip(data, cuts)])
    _count(oracle, [(q, c) for _, q, c in results])
    tally = results[0][0]
    for t, _, _ in results[1:]:
        tally.merge(t)
    tally.surrogate = surrogate
    return tally.result()


# ----------------------------------------------------------------------------- principal reasons
def _task_reasons(plan: Any, rows: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    from dataclasses import replace

    own = _on_worker(plan.oracle)
    return replace(plan, oracle=own).explain(rows), own.n_queries, own.n_calls


def reasons_chunks(plan: Any, rows: pd.DataFrame, client: Any, *, chunk_rows: int = 20_000) -> Any:
    """:func:`pellucid.attribution.decision_reasons.explain_chunks` on the workers: the same
    chunks, each one task, yielded in order as they finish (the same tables as one process
    gives; see docs/dask.md).

    Parameters
    ----------
    plan : ReasonPlan
        From :func:`~pellucid.attribution.decision_reasons.reason_plan` (its oracle has
        answered, so its task and batch sizes are fixed before it is sent).
    rows : DataFrame
    client : distributed.Client or str
    chunk_rows : int
    """
    from dataclasses import replace

    _check_positive("chunk_rows", chunk_rows)
    client = connect(client)
    oracle = plan.oracle
    # The reference population stays here: the workers need its background sample only.
    remote = client.scatter(replace(plan, population=None), broadcast=True, hash=False)
    rows = rows.rename(columns=str)
    futures = [client.submit(_task_reasons, remote, client.scatter(rows.iloc[a:a + chunk_rows]), pure=False)
               for a in range(0, len(rows), chunk_rows)]
    for f in futures:
        table, q, c = f.result()
        _count(oracle, [(q, c)])
        yield table
