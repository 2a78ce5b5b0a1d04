"""Distillation: asking the network about rows, so surrogates can learn what it does.

:func:`distill` queries the :class:`~pellucid.oracle.Oracle` on the observed rows and on
synthetic rows from the registered samplers, and returns a :class:`DistillationSet`: the raw
rows, the network's outputs, weights, which strategy made each row, and a held-out split of
*observed* rows on which fidelity is measured (synthetic rows never enter the holdout: fidelity
is a claim about the data the model meets).

Passive samplers (:data:`~pellucid.extraction.samplers.SAMPLERS`) are queried together with the
observed rows in one batch; active samplers
(:data:`~pellucid.extraction.samplers.ACTIVE_SAMPLERS`, e.g. ``boundary``) then run one after
another, each seeing the network's answers on every training row queried before it, never on
the holdout.

A share of the observed training rows (``validation``, 20% by default) is held back from every
sampler: they stay in the set as training rows, marked ``is_validation``, and a frontier holds
them back from its fits to choose among them. A synthetic row drawn from one of them (its
perturbation, a point between it and a neighbour) would carry its answer into the fits that
the row then judges.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError, SchemaError
from ..schema import Schema

# DistillationSet and draw_active are importable from here as before they moved.
from .dataset import OBSERVED, DistillationSet, check_validation_share, seen_rows, validation_mask, validation_rows
from .samplers import ACTIVE_SAMPLERS, SAMPLERS, draw_active
from .stream import CHUNK_ROWS, source_labels, stream


def _plan(strategy: str | Sequence[str] | Mapping[str, int], n: int | None, n_observed_train: int) -> dict[str, int]:
    """Turn the user's strategy argument into {strategy: rows}."""
    if isinstance(strategy, Mapping):
        plan = {}
        for k, v in strategy.items():
            if str(k) == OBSERVED and v is None:  # every observed training row, as always
                v = n_observed_train
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ParameterError(f"strategy {str(k)!r}: the row count must be a whole number, got {v!r}")
            plan[str(k)] = int(v)
        if n is not None:
            raise ParameterError("give the row counts either in the strategy mapping or as n, not both")
    else:
        names = [strategy] if isinstance(strategy, str) else list(strategy)
        if not names:
            raise ParameterError("strategy is empty; use e.g. 'observed' or ['observed', 'perturb']")
        synth = [s for s in names if s != OBSERVED]
        if n is None:
            # Enough synthetic rows to fill the space between observed ones, not so many that
            # fitting slows down for no gain.
            n = max(5000, 2 * n_observed_train)
        if n < 0:
            raise ParameterError(f"n must be >= 0, got {n}")
        plan = {}
        for i, s in enumerate(synth):
            plan[s] = n // len(synth) + (1 if i < n % len(synth) else 0)
        if OBSERVED in names:
            plan = {OBSERVED: n_observed_train, **plan}
    unknown = [s for s in plan if s != OBSERVED and s not in SAMPLERS and s not in ACTIVE_SAMPLERS]
    if unknown:
        raise ParameterError(
            f"unknown distillation strategy {unknown}; available: {[OBSERVED, *SAMPLERS, *ACTIVE_SAMPLERS]}"
        )
    bad = {s: c for s, c in plan.items() if c < 0}
    if bad:
        raise ParameterError(f"row counts must be >= 0, got {bad}")
    return plan




# What distill itself passes to an active sampler; not options a user can set.
_ACTIVE_ARGS = ("oracle", "queried_rows", "queried_outputs", "queried_weights")


def _check_sampler_params(sampler_params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The per-sampler options, checked against the samplers' keyword-only parameters."""
    out = {}
    for name, options in sampler_params.items():
        sampler: Callable[..., Any] | None = SAMPLERS.get(name) or ACTIVE_SAMPLERS.get(name)
        if sampler is None:
            raise ParameterError(
                f"sampler_params names an unknown sampler {name!r}; samplers: {[*SAMPLERS, *ACTIVE_SAMPLERS]}"
            )
        if not isinstance(options, Mapping):
            raise ParameterError(f"sampler_params[{name!r}] must be a mapping of options, got {type(options).__name__}")
        allowed = [
            p.name
            for p in inspect.signature(sampler).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in _ACTIVE_ARGS
        ]
        bad = sorted(set(map(str, options)) - set(allowed))
        if bad:
            raise ParameterError(
                f"unknown option{'s' if len(bad) > 1 else ''} {bad} for sampler {name!r}; it takes {allowed}"
            )
        out[str(name)] = dict(options)
    return out


def distill(
    oracle: Any,
    reference: pd.DataFrame,
    strategy: str | Sequence[str] | Mapping[str, int] = ("observed", "perturb", "marginal"),
    n: int | None = None,
    *,
    schema: Schema | None = None,
    holdout: float = 0.25,
    sampler_params: Mapping[str, Mapping[str, Any]] | None = None,
    random_state: int | None = 0,
    out: str | Path | None = None,
    keep: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    validation: float | None = 0.2,
) -> DistillationSet:
    """Build a distillation set by querying the network.

    Parameters
    ----------
    oracle : Oracle
        The network behind its preprocessing; the only caller of the model.
    reference : pandas.DataFrame
        The user's observed rows in raw units (features only: drop the target first, or read
        the schema with ``exclude=[target]`` and pass it).
    strategy : str, list of str, or dict
        ``"observed"`` (the observed training rows), ``"perturb"`` (observed rows with
        schema-aware noise), ``"marginal"`` (features drawn independently, TREPAN),
        ``"neighbours"`` (points between observed rows and their nearest neighbours, which
        keep the features' joint distribution; see :func:`~pellucid.extraction.samplers.neighbours`),
        ``"boundary"`` (active: rows drawn in rounds where a small internal tree disagrees
        with the network or the network is unsure; see :mod:`pellucid.extraction.boundary`),
        ``"trepan"`` (active: rows drawn inside the leaves of a tree of the network's answers
        from the observed rows' local density, most where the answers are mixed; see
        :mod:`pellucid.extraction.trepan`), or a list of them, or a mapping strategy -> row count. Active strategies run after the
        passive ones and see the network's answers on all training rows queried before them.
    n : int, optional
        Synthetic rows in all, split evenly among the synthetic strategies (default
        ``max(5000, 2 × observed training rows)``). Every synthetic row is queried once, so
        the set's ``n_queries`` equals its number of rows, whatever the strategies.
    schema : Schema, optional
        Read from ``reference`` when not given.
    holdout : float
        Share of observed rows held out for fidelity (0 < holdout < 1).
    sampler_params : dict, optional
        Keyword arguments per sampler, e.g. ``{"perturb": {"scale": 0.1}}`` or
        ``{"boundary": {"rounds": 8}}``.
    random_state : int, optional
        Seed; the same seed gives the same set.
    out : str or Path, optional
        Stream: write every row (observed, synthetic, active, held out) with the network's
        outputs, weights and provenance to this Parquet file, chunk by chunk (read it back
        with :func:`read_distillation`). Needs pyarrow.
    keep : int, optional
        Stream, keeping at most this many of the passive strategies' synthetic rows in
        memory (a uniform sample, weighted to stand for all of them); the returned set holds
        the observed rows and this sample. With ``out`` and no ``keep``, every row is kept.
        Memory is then bounded by the observed rows, one chunk and the sample, whatever ``n``
        (see :mod:`pellucid.extraction.stream`).
    chunk_rows : int
        Synthetic rows made, queried and written at a time when streaming.
    validation : float or None
        Share of the observed training rows held back from the samplers (seeded apart from
        the rest of the set) and marked in ``is_validation``; a frontier of the set holds
        them back from its fits and chooses on them. None or 0 holds none back, as do fewer
        than 10 rows to hold back or to keep. Needs ``observed`` in the strategy.

    Returns
    -------
    DistillationSet
        Rows in the order: observed training rows, passive strategies' rows, active
        strategies' rows, holdout rows. When streaming, ``params["stream"]`` says how many
        rows were made and how many kept.

    Raises
    ------
    ParameterError
        An unknown strategy, sampler or sampler option, a negative row count, or a holdout
        or validation share outside (0, 1).
    """
    schema = schema if schema is not None else Schema.from_frame(reference)
    if not 0 < holdout < 1:
        raise ParameterError(f"holdout must be a share between 0 and 1, got {holdout}")
    check_validation_share(validation)
    if not isinstance(reference, pd.DataFrame) or len(reference) == 0:
        schema.validate(reference, what="reference data")  # names what is wrong with it
    if len(reference) < 4:
        raise SchemaError(f"the reference data has {len(reference)} rows; at least 4 are needed to hold some out")
    rng = np.random.default_rng(random_state)
    n_obs = len(reference)
    n_hold = max(1, int(round(holdout * n_obs)))
    perm = rng.permutation(n_obs)
    hold_idx, train_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    # The observed rows are gathered in the set's order (training rows, then held-out rows)
    # while they are validated: one copy, which the network then reads as it is.
    observed = schema.validate(reference, what="reference data",
                               rows=np.concatenate([train_idx, hold_idx])).reset_index(drop=True)
    observed_train = observed.iloc[:len(train_idx)]
    observed_hold = observed.iloc[len(train_idx):].reset_index(drop=True)

    plan = _plan(strategy, n, len(observed_train))
    sampler_params = _check_sampler_params(sampler_params or {})
    held = validation_rows(len(observed_train), validation, random_state) if OBSERVED in plan else None
    if out is not None or keep is not None:
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 0):
            raise ParameterError(f"keep must be a number of rows >= 0, got {keep!r}")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ParameterError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        return stream(oracle, schema, observed_train, observed_hold, train_idx, hold_idx, plan, sampler_params, rng,
                      out=out, keep=keep, chunk_rows=int(chunk_rows), random_state=random_state, holdout=holdout,
                      reference_index=reference.index, held=held)

    # What the samplers draw from: the observed training rows less those held back.
    drawn_from = observed_train if held is None else observed_train[~held].reset_index(drop=True)

    parts, spans, origins = [], [], []
    if OBSERVED in plan:
        parts.append(observed_train)
        spans.append((OBSERVED, len(observed_train)))
        origins.append(train_idx)
    active = []
    for name, count in plan.items():
        if name == OBSERVED or count == 0:
            continue
        if name in ACTIVE_SAMPLERS:
            active.append((name, count))
            continue
        synth = SAMPLERS[name](schema, drawn_from, count, rng, **sampler_params.get(name, {}))
        parts.append(synth[schema.names])
        spans.append((name, count))
        origins.append(np.full(count, -1))
    n_passive = sum(len(p) for p in parts)

    # Passive rows and the holdout go to the network in one batch, laid out as the set holds
    # them; observed rows alone are already so.
    passive = observed if n_passive == len(observed_train) and OBSERVED in plan else (
        pd.concat([*parts, observed_hold], ignore_index=True))
    before = oracle.n_queries
    passive_outputs = oracle.query(passive)
    train_rows = passive.iloc[:n_passive]
    train_outputs = passive_outputs[:n_passive]
    train_weights = np.ones(n_passive)
    hold_outputs = passive_outputs[n_passive:]

    # Active samplers see what was queried before them, holdout excluded.
    active_info = {}
    for name, count in active:
        draw, rows_new, weights_new = draw_active(name, count, schema, drawn_from, rng, oracle,
                                                  *seen_rows(held, train_rows, train_outputs, train_weights),
                                                  sampler_params)
        train_rows = pd.concat([train_rows, rows_new], ignore_index=True)
        train_outputs = np.concatenate([train_outputs, draw.outputs])
        train_weights = np.concatenate([train_weights, weights_new])
        spans.append((name, count))
        origins.append(np.full(count, -1))
        active_info[name] = draw.info

    all_rows = passive if not active else pd.concat([train_rows, observed_hold], ignore_index=True)
    outputs = np.concatenate([train_outputs, hold_outputs])
    spans.append((OBSERVED, len(observed_hold)))
    origins.append(hold_idx)
    is_holdout = np.zeros(len(all_rows), dtype=bool)
    is_holdout[-len(observed_hold):] = True

    task = oracle.task
    classes = np.asarray(oracle.classes_, dtype=object) if task == "classification" else None
    params = {"plan": plan, "holdout_share": holdout, "random_state": random_state, "sampler_params": sampler_params}
    if active_info:
        params["active"] = active_info
    return DistillationSet(
        rows=all_rows,
        outputs=outputs,
        weights=np.concatenate([train_weights, np.ones(len(observed_hold))]),
        source=source_labels(spans),
        is_holdout=is_holdout,
        schema=schema,
        task=task,
        classes=classes,
        n_queries=oracle.n_queries - before,
        params=params,
        origin=np.concatenate(origins),
        reference_index=reference.index,
        is_validation=validation_mask(held, len(all_rows)),
    )
