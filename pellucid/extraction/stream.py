"""Distillation in chunks, with memory bounded whatever the number of rows.

:func:`~pellucid.extraction.distill` comes here when it is given ``out`` (a Parquet file for
every row) or ``keep`` (how many synthetic rows to hold in memory). The observed rows are held
as :func:`distill` holds them; the passive strategies' synthetic rows are then made, queried
and written ``chunk_rows`` at a time, each chunk from its own random stream, and a uniform
sample of exactly ``keep`` of them stays in memory for the surrogates to learn from. Memory
is that of the observed rows, one chunk and the kept sample, not of the rows made.

The kept synthetic rows are weighted by (synthetic rows made) / (synthetic rows kept), so that
observed and synthetic rows weigh in the sample what they weigh in the whole set. Active
samplers run after the stream and see the observed training rows and the kept sample.

:func:`read_distillation` reads such a file back, whole or as a uniform sample of its training
rows, batch by batch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._files import PendingFile
from ..errors import DataFileError, ParameterError
from ..schema import Schema
from .dataset import OBSERVED, DistillationSet, seen_rows, validation_mask
from .samplers import ACTIVE_SAMPLERS, SAMPLERS, draw_active

#: Default rows per chunk of the stream: about 60 MB of 30 float64 features.
CHUNK_ROWS = 262_144
_META_KEY = b"pellucid.distillation"
_SOURCE, _WEIGHT, _HOLDOUT, _ORIGIN, _OUT = "__source", "__weight", "__holdout", "__origin", "__out"


def source_labels(spans: Any) -> np.ndarray:
    """The ``source`` column from ``(strategy, rows)`` spans, in order.

    An object array filled slice by slice: ``np.full`` and ``np.concatenate`` on object arrays
    touch every element one by one, which costs more than a small network's forward pass.
    """
    spans = [(str(name), int(count)) for name, count in spans]
    out = np.empty(sum(c for _, c in spans), dtype=object)
    start = 0
    for name, count in spans:
        out[start:start + count] = name
        start += count
    return out


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is in the parquet and test extras
        raise ParameterError("writing or reading a distillation file needs pyarrow: pip install 'pellucid[parquet]'") from e
    return pa, pq


class _Writer:
    """Appends chunks of a distillation set to one Parquet file (one row group a chunk)."""

    def __init__(self, path: Path, schema: Schema, task: str, classes: Any) -> None:
        self.pa, pq = _pyarrow()
        self.schema, self.task = schema, task
        self.width = 0 if task == "regression" else len(classes)
        fields = []
        for f in schema:
            fields.append(self.pa.field(f.name, self.pa.float64() if f.is_numeric else self.pa.string()))
        out = [self.pa.field(_OUT, self.pa.float64())] if task == "regression" else [
            self.pa.field(f"{_OUT}{i}", self.pa.float64()) for i in range(self.width)
        ]
        fields += out + [
            self.pa.field(_SOURCE, self.pa.string()),
            self.pa.field(_WEIGHT, self.pa.float64()),
            self.pa.field(_HOLDOUT, self.pa.bool_()),
            self.pa.field(_ORIGIN, self.pa.int64()),
        ]
        meta = {
            "schema": schema.to_dict(),
            "task": task,
            "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes],
        }
        self.arrow_schema = self.pa.schema(fields, metadata={_META_KEY: json.dumps(meta, default=str).encode()})
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its target under a temporary name and renamed only when every row is
        # in: an interrupted or failed run never leaves a file that looks whole.
        try:
            self.file = PendingFile(path)
            self.writer = pq.ParquetWriter(self.file.tmp, self.arrow_schema)
        except OSError as e:
            if hasattr(self, "file"):
                self.file.discard()
            raise DataFileError(f"cannot write the distillation file {str(path)!r}: {e}") from e
        self.rows = 0

    def write(self, rows: pd.DataFrame, outputs: np.ndarray, source: Any, weights: np.ndarray,
              holdout: bool, origin: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        cols = []
        for f in self.schema:
            v = rows[f.name]
            if f.is_numeric:
                cols.append(self.pa.array(v.to_numpy(dtype=float), type=self.pa.float64(), from_pandas=True))
            else:  # categories as text; read_distillation maps them back through the schema
                cols.append(self.pa.array(v.astype("string"), type=self.pa.string(), from_pandas=True))
        out = np.asarray(outputs, dtype=float)
        cols += [self.pa.array(out)] if self.task == "regression" else [self.pa.array(out[:, i]) for i in range(self.width)]
        src = source_labels([(source, n)]) if isinstance(source, str) else np.asarray(source, dtype=object)
        cols += [
            self.pa.array(src, type=self.pa.string()),
            self.pa.array(np.asarray(weights, dtype=float)),
            self.pa.array(np.full(n, holdout)),
            self.pa.array(np.asarray(origin, dtype=np.int64)),
        ]
        self.writer.write_table(self.pa.Table.from_arrays(cols, schema=self.arrow_schema))
        self.rows += n

    def close(self, complete: bool = True) -> None:
        """Finish the file: renamed into place when ``complete``, removed otherwise."""
        self.writer.close()
        if complete:
            self.file.commit()
        else:
            self.file.discard()


def stream(oracle: Any, schema: Schema, observed_train: pd.DataFrame, observed_hold: pd.DataFrame,
           train_idx: np.ndarray, hold_idx: np.ndarray, plan: dict[str, int], sampler_params: dict,
           rng: np.random.Generator, *, out: str | Path | None, keep: int | None, chunk_rows: int,
           random_state: Any, holdout: float, reference_index: pd.Index | None = None,
           held: np.ndarray | None = None) -> DistillationSet:
    """The streaming path of :func:`~pellucid.extraction.distill` (its arguments, already checked;
    ``held`` marks the observed training rows held back from the samplers)."""
    drawn_from = observed_train if held is None else observed_train[~held].reset_index(drop=True)
    t0 = time.perf_counter()
    before = oracle.n_queries
    passive = {k: c for k, c in plan.items() if k != OBSERVED and k not in ACTIVE_SAMPLERS and c > 0}
    active = [(k, c) for k, c in plan.items() if k in ACTIVE_SAMPLERS and c > 0]
    n_synth = sum(passive.values())
    keep = n_synth if keep is None else min(int(keep), n_synth)

    observed = [observed_train] if OBSERVED in plan else []
    obs_out = oracle.query(pd.concat([*observed, observed_hold], ignore_index=True))
    train_out = obs_out[: len(observed_train)] if observed else obs_out[:0]
    hold_out = obs_out[len(obs_out) - len(observed_hold):]
    task = oracle.task
    classes = np.asarray(oracle.classes_, dtype=object) if task == "classification" else None
    writer = _Writer(Path(out), schema, task, classes) if out is not None else None
    try:
        if writer is not None and observed:
            writer.write(observed_train, train_out, OBSERVED, np.ones(len(observed_train)), False, train_idx)

        # The rows made depend on the seed and chunk_rows only; which of them stay in memory
        # (exactly `keep`, uniformly, fixed up front) comes from a stream of its own.
        n_chunks = max(1, -(-n_synth // chunk_rows))
        seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(n_chunks + 1)
        kept_at = (np.sort(np.random.default_rng(seeds[-1]).choice(n_synth, size=keep, replace=False))
                   if keep < n_synth else None)
        weight = n_synth / keep if keep else 1.0
        names = list(passive)
        counts = np.array([passive[k] for k in names])
        kept_rows, kept_out, kept_src = [], [], []
        done = np.zeros(len(names), dtype=np.int64)
        start = 0
        for c in range(n_chunks if n_synth else 0):
            # Each strategy's rows are spread evenly over the chunks.
            upto = (counts * min(n_synth, (c + 1) * chunk_rows)) // n_synth if c < n_chunks - 1 else counts
            take = upto - done
            done = upto
            crng = np.random.default_rng(seeds[c])
            spans = [(name, int(k)) for name, k in zip(names, take) if k]
            parts = [SAMPLERS[name](schema, drawn_from, k, crng, **sampler_params.get(name, {}))[schema.names]
                     for name, k in spans]
            rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            src = source_labels(spans)
            outputs = oracle.query(rows)
            if writer is not None:
                writer.write(rows, outputs, src, np.full(len(rows), weight), False, np.full(len(rows), -1))
            if kept_at is None:
                sel = slice(None)
            else:
                lo, hi = np.searchsorted(kept_at, [start, start + len(rows)])
                sel = kept_at[lo:hi] - start
            kept_rows.append(rows.iloc[sel])
            kept_out.append(outputs[sel])
            kept_src.append(src[sel])
            start += len(rows)

        train_rows = pd.concat([*observed, *kept_rows], ignore_index=True) if (observed or kept_rows) else observed_train.iloc[:0]
        train_outputs = np.concatenate([train_out, *kept_out]) if kept_out else train_out
        train_weights = np.concatenate([np.ones(len(train_out)), np.full(sum(len(o) for o in kept_out), weight)])
        sources = [source_labels([(OBSERVED, len(train_out))]), *kept_src]
        origins = [train_idx if observed else np.zeros(0, dtype=np.int64), np.full(len(train_rows) - len(train_out), -1)]

        active_info = {}
        for name, count in active:
            draw, rows_new, w_new = draw_active(name, count, schema, drawn_from, rng, oracle,
                                                *seen_rows(held, train_rows, train_outputs, train_weights),
                                                sampler_params)
            if writer is not None:
                writer.write(rows_new, draw.outputs, name, w_new, False, np.full(count, -1))
            train_rows = pd.concat([train_rows, rows_new], ignore_index=True)
            train_outputs = np.concatenate([train_outputs, draw.outputs])
            train_weights = np.concatenate([train_weights, w_new])
            sources.append(source_labels([(name, count)]))
            origins.append(np.full(count, -1))
            active_info[name] = draw.info
        if writer is not None:
            writer.write(observed_hold, hold_out, OBSERVED, np.ones(len(observed_hold)), True, hold_idx)
    except BaseException:  # an interrupt too: the partial file goes
        if writer is not None:
            writer.close(complete=False)
        raise
    if writer is not None:
        writer.close()

    all_rows = pd.concat([train_rows, observed_hold], ignore_index=True)
    is_holdout = np.zeros(len(all_rows), dtype=bool)
    is_holdout[len(train_rows):] = True
    n_queries = oracle.n_queries - before
    params = {
        "plan": plan, "holdout_share": holdout, "random_state": random_state, "sampler_params": sampler_params,
        "stream": {
            "rows": int(n_queries),
            "synthetic_rows": int(n_synth),
            "synthetic_kept": int(keep),
            "synthetic_weight": float(weight),
            "chunk_rows": int(chunk_rows),
            "path": None if out is None else str(out),
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    if active_info:
        params["active"] = active_info
    return DistillationSet(
        rows=all_rows,
        outputs=np.concatenate([train_outputs, hold_out]),
        weights=np.concatenate([train_weights, np.ones(len(observed_hold))]),
        source=np.concatenate([*sources, source_labels([(OBSERVED, len(observed_hold))])]),
        is_holdout=is_holdout,
        schema=schema,
        task=task,
        classes=classes,
        n_queries=n_queries,
        params=params,
        origin=np.concatenate([*origins, hold_idx]),
        reference_index=reference_index,
        is_validation=validation_mask(held if observed else None, len(all_rows)),
    )


def _open(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A distillation file and its pellucid metadata, or a DataFileError that says why not."""
    _, pq = _pyarrow()
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"distillation file {str(path)!r} does not exist")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise DataFileError(f"cannot read {str(path)!r} as Parquet: {e}") from e
    metadata = pf.schema_arrow.metadata or {}
    if _META_KEY not in metadata:
        raise DataFileError(f"{str(path)!r} is not a distillation file written by pellucid (no pellucid metadata)")
    return pf, json.loads(metadata[_META_KEY])


def sample_mask(is_holdout: np.ndarray, m: int, random_state: int | None) -> np.ndarray:
    """Every held-out row and a uniform sample of ``m`` training rows (all of them when there
    are no more than ``m``), as a mask: the same rows from a set in memory and from its file."""
    train = np.flatnonzero(~is_holdout)
    if m >= len(train):
        return np.ones(len(is_holdout), dtype=bool)
    keep = is_holdout.copy()
    keep[np.random.default_rng(random_state).choice(train, size=m, replace=False)] = True
    return keep


def read_distillation(path: str | Path, *, sample: int | None = None, random_state: int | None = 0) -> Any:
    """Read a distillation file written by ``distill(..., out=path)``.

    Parameters
    ----------
    path : str or Path
    sample : int, optional
        Read a uniform sample of this many *training* rows (every held-out row is always
        read), one row group at a time, so that the file never has to fit in memory. Sampled rows keep
        their weights relative to each other; every row is read when omitted.
    random_state : int, optional
        Seed of the sample.

    Returns
    -------
    DistillationSet
    """
    pf, meta = _open(path)
    schema = Schema.from_dict(meta["schema"])
    task, classes = meta["task"], meta["classes"]
    n = pf.metadata.num_rows
    holdout = pf.read(columns=[_HOLDOUT]).column(0).to_numpy(zero_copy_only=False)
    n_train = int((~holdout).sum())
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise ParameterError(f"sample must be a positive number of rows, got {sample!r}")
    take = np.ones(n, dtype=bool) if sample is None else sample_mask(holdout, sample, random_state)
    pa, _ = _pyarrow()
    # Row group by row group (the chunks distill wrote), filtered in Arrow before anything
    # becomes pandas: memory holds one row group and the rows kept. iter_batches reads ahead,
    # and Arrow's pool keeps what it freed unless told to give it back; either way the
    # resident size grew with the file.
    pieces, start = [], 0
    pool = pa.default_memory_pool()
    for i in range(pf.metadata.num_row_groups):
        group = pf.read_row_group(i, use_threads=False)
        m = take[start:start + group.num_rows]
        start += group.num_rows
        if m.all():
            pieces.append(group)
        elif m.any():
            pieces.append(group.filter(pa.array(m)))
        del group
        pool.release_unused()
    df = (pa.concat_tables(pieces) if pieces else pf.schema_arrow.empty_table()).to_pandas()
    del pieces
    for f in schema:  # categories back to the schema's own values
        if not f.is_numeric:
            df[f.name] = df[f.name].map({str(c): c for c in f.categories or ()}).astype(object)
    outputs = df[_OUT].to_numpy() if task == "regression" else df[[f"{_OUT}{i}" for i in range(len(classes))]].to_numpy()
    return DistillationSet(
        rows=df[schema.names].reset_index(drop=True),
        outputs=outputs,
        weights=df[_WEIGHT].to_numpy(),
        source=df[_SOURCE].to_numpy(dtype=object),
        is_holdout=df[_HOLDOUT].to_numpy(dtype=bool),
        schema=schema,
        task=task,
        classes=None if classes is None else np.asarray(classes, dtype=object),
        n_queries=0,
        params={"read_from": str(path), "rows_in_file": int(n), "sampled_train_rows": None if sample is None else int(min(sample, n_train))},
        origin=df[_ORIGIN].to_numpy(),
    )



def distillation_file_rows(path: str | Path) -> tuple[int, int]:
    """Rows in a distillation file and how many of them are held out, from its metadata and
    one column."""
    pf, _ = _open(path)
    held = pf.read(columns=[_HOLDOUT]).column(0).to_numpy(zero_copy_only=False)
    return int(pf.metadata.num_rows), int(held.sum())
