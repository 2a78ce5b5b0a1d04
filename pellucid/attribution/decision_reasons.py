"""Principal reasons for a decision: per row, the features that moved the network towards an
adverse outcome, as an adverse-action notice gives them.

Contributions are Shapley values of the adverse class's log-odds (the margin: each hybrid
row's own log-odds, averaged over the reference), on the raw features, relative to a stated
reference: by default the rows the network decides favourably; or a reference population; or
one reference row. They add up, for every row, to its log-odds minus the reference's mean
log-odds, so a confident decision gets reasons of meaningful size where probabilities would
give it almost nothing. A reason is a feature whose contribution raises the adverse log-odds,
largest first; at most ``k``, never padded; reasons too small to matter and reasons the
estimate cannot tell apart are marked. A statements file maps a feature (and the direction of
the applicant's value from the reference's) to the sentence a notice prints.

:class:`ReasonPlan` holds what every row shares (the reference, its background sample, the
statements); :func:`reasons` is a plan applied to rows, and the command line and the Dask path
apply one plan to a table chunk by chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .._device import torch_threads
from .._files import written_at
from .._plain import is_missing as _missing
from .._validation import as_oracle
from ..errors import DataFileError, ParameterError
from .shapley import _HYBRIDS, EXACT_AUTO_MAX, _game, _seed, shapley

__all__ = ["reasons", "ReasonPlan", "reason_plan", "export_reasons", "write_reasons", "read_statements",
           "reason_stability", "compare_reasons", "REASON_METHODS", "NEGLIGIBLE"]

REASON_METHODS = ("shapley", "lime")
#: Contributions below this (log-odds) are marked negligible: a reason that small moves the
#: odds by a tenth of a percent.
NEGLIGIBLE = 1e-3
DEFAULT_BACKGROUND = 100
DIRECTIONS = ("low", "high", "missing", "any")
_BACKGROUND_STREAM = 0x5EA5  # the background sample's random stream (the orders use others)


@dataclass
class ReasonPlan:
    """What the reasons of every row share; apply it with :meth:`explain`.

    Attributes
    ----------
    oracle : Oracle
    features : list of str
        The raw features (the players), in the rows' order.
    adverse_class : label
    adverse_index : int
        The adverse class's output column.
    background : DataFrame
        The reference rows every contribution is measured against (a sample of the
        reference population, or the reference row).
    reference_values : dict
        Per feature, the reference's value a reason quotes: the reference row's own, or the
        population's median (numbers, to 6 significant digits) or most frequent value
        (categories).
    method, k, negligible, n_samples, random_state, statements
        As :func:`reasons` takes them; ``statements`` read into ``{feature: {direction: text}}``.
    reference_kind : str
        "favourable rows", "population" or "row": what the reference is.
    reference_rows : int
        Rows of the reference population (before the background sample).
    """

    oracle: Any
    features: list[str]
    adverse_class: Any
    adverse_index: int
    background: pd.DataFrame
    reference_values: dict[str, Any]
    method: str
    k: int
    negligible: float
    n_samples: int | None
    random_state: int
    statements: dict[str, dict[str, str]] | None
    reference_kind: str
    reference_rows: int
    numeric: dict[str, bool] = field(default_factory=dict)
    lime_kwargs: dict[str, Any] = field(default_factory=dict)
    #: The reference population the background was drawn from (None once sent to workers).
    population: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def shapley_method(self) -> str:
        """Exact against one reference row (and few enough features), paired samples
        against a population."""
        single = self.reference_kind == "row"
        return "exact" if single and len(self.features) <= EXACT_AUTO_MAX else "paired"

    def describe(self) -> dict[str, Any]:
        """The settings, JSON-ready (for a report or a file's sidecar)."""
        return {"method": self.method, "shapley_method": self.shapley_method if self.method == "shapley" else None,
                "scale": "log-odds of the adverse class", "adverse_class": _plain(self.adverse_class),
                "k": self.k, "negligible": self.negligible, "reference": self.reference_kind,
                "reference_rows": self.reference_rows, "background_rows": len(self.background),
                "n_samples": self.samples if self.method == "shapley" else None, "random_state": self.random_state,
                "statements": None if self.statements is None else sorted(self.statements)}

    def explain(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The reasons table of ``rows`` (see :func:`reasons`).

        The network runs on one torch thread here: its float32 sums split by thread, and the
        table (like the report it goes into) must be the same on any machine, in one process
        or on a cluster's workers."""
        rows = _check_rows(rows, self.features, "rows")
        with torch_threads(1):
            contrib, se, score, base, decision = self._contributions(rows)
        return self._table(rows, contrib, se, score, base, decision)

    # ------------------------------------------------------------------ the contributions
    def _contributions(self, rows: pd.DataFrame):
        """Contributions (and standard errors) of the rows decided adversely, zeros elsewhere;
        every row's log-odds and the reference's mean log-odds; every row's decision."""
        classes = np.asarray(self.oracle.classes_, dtype=object)
        decision = classes[np.argmax(self.oracle.query(rows), axis=1)]
        adverse = np.array([_same_label(d, self.adverse_class) for d in decision], dtype=bool)
        # one reference row: the same row twice (a mean over identical rows is that row's game)
        bg = self.background if len(self.background) > 1 else pd.concat([self.background] * 2)
        game, _, _ = _game(self.oracle, rows, bg, self.adverse_index, "margin", None, _HYBRIDS)
        score, base = game.fx.copy(), game.fz.mean(axis=1)
        contrib = np.zeros((len(rows), len(self.features)))
        se = np.zeros_like(contrib)
        if not adverse.any():
            return contrib, se, score, base, decision
        which = rows[adverse]
        if self.method == "shapley":
            a = shapley(self.oracle, which, bg, target=self.adverse_index, output="margin",
                        method=self.shapley_method, n_samples=self.samples, random_state=self.random_state)
            contrib[adverse], se[adverse] = a.values, a.standard_error
        else:
            from ..surrogates.lime_local import lime

            expl = lime(self.oracle, which, self.background, random_state=self.random_state,
                        target=[self.adverse_class] * len(which), output="log_odds", **self.lime_kwargs)
            contrib[adverse] = expl.contributions[self.features].to_numpy(dtype=float)
        return contrib, se, score, base, decision

    @property
    def samples(self) -> int | None:
        """Paired samples per row against a population: ``n_samples``, else four per
        background row (standard errors of about a twentieth of a log-odds on the demo)."""
        if self.n_samples is not None or self.shapley_method != "paired":
            return self.n_samples
        return 4 * len(self.background)

    # ------------------------------------------------------------------ the table
    def _table(self, rows, contrib, se, score, base, decision) -> pd.DataFrame:
        n, m = contrib.shape
        k = self.k
        adverse = np.array([_same_label(d, self.adverse_class) for d in decision], dtype=bool)
        out = pd.DataFrame(index=rows.index)
        out["decision"] = _texts(decision, out.index)
        out["adverse"] = adverse
        out["log_odds"] = score
        out["reference_log_odds"] = base
        names = np.asarray(self.features, dtype=object)
        # Rank the features that raise the adverse log-odds; ties keep the schema's order.
        key = np.where(contrib > 0, contrib, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
        ranked = np.take_along_axis(key, order, axis=1)
        ranked_se = np.take_along_axis(se, order, axis=1)
        positive = np.isfinite(ranked) & adverse[:, None]
        n_reasons = np.minimum(positive.sum(axis=1), k)
        sampled = bool(np.any(se > 0))
        tie = _ties(ranked, ranked_se, sampled)  # tie[:, j]: position j and j + 1 cannot be told apart
        missing_statement: list[set[str]] = [set() for _ in range(n)]
        for i in range(k):
            has = i < n_reasons
            j = order[:, i]
            feat = np.where(has, names[j], None)
            out[f"reason_{i + 1}"] = _texts(feat, out.index)
            out[f"contribution_{i + 1}"] = np.where(has, ranked[:, i], np.nan)
            if sampled:
                out[f"se_{i + 1}"] = np.where(has, ranked_se[:, i], np.nan)
            values = np.full(n, None, dtype=object)
            refs = np.full(n, None, dtype=object)
            statements = np.full(n, None, dtype=object)
            notes = np.full(n, None, dtype=object)
            for r in np.flatnonzero(has):
                f = str(names[j[r]])
                v = rows[f].iloc[r]
                values[r] = _text(v)
                refs[r] = _text(self.reference_values[f])
                if self.statements is not None:
                    direction = _direction(v, self.reference_values[f], self.numeric[f])
                    said = _statement(self.statements.get(f), direction)
                    statements[r] = said
                    if said is None:  # a feature with statements for other directions: name the one missing
                        missing_statement[r].add(f"{f} ({direction})" if f in self.statements else f)
                note = []
                if ranked[r, i] < self.negligible:
                    note.append("negligible")
                if i > 0 and tie[r, i - 1]:
                    note.append(f"tied with reason {i}")
                if tie[r, i]:
                    nxt = i + 1
                    if nxt < n_reasons[r]:
                        note.append(f"tied with reason {nxt + 1}")
                    elif nxt < m and positive[r, nxt]:
                        note.append(f"tied with {names[order[r, nxt]]} (not listed)")
                notes[r] = "; ".join(note) or None
            out[f"value_{i + 1}"] = _texts(values, out.index)
            out[f"reference_value_{i + 1}"] = _texts(refs, out.index)
            if self.statements is not None:
                out[f"statement_{i + 1}"] = _texts(statements, out.index)
            out[f"note_{i + 1}"] = _texts(notes, out.index)
        out["n_reasons"] = n_reasons.astype(np.int64)
        if self.statements is not None:
            out["without_statement"] = _texts(["; ".join(sorted(s)) or None for s in missing_statement], out.index)
        return out


def _texts(values: Any, index: pd.Index) -> pd.Series:
    """A text column as Python objects (None where empty), the same type in every chunk."""
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


def _ties(ranked: np.ndarray, se: np.ndarray, sampled: bool) -> np.ndarray:
    """``(rows, m)``: whether ranked positions ``j`` and ``j + 1`` cannot be told apart: within
    two standard errors of their difference (sampled values), within 1e-9 of the larger
    otherwise (exact values, float rounding)."""
    nxt = np.concatenate([ranked[:, 1:], np.full((len(ranked), 1), -np.inf)], axis=1)
    nse = np.concatenate([se[:, 1:], np.zeros((len(se), 1))], axis=1)
    with np.errstate(invalid="ignore"):  # -inf - -inf past the positive contributions: never a tie
        gap = ranked - nxt
        if sampled:
            tol = 2.0 * np.sqrt(se ** 2 + nse ** 2)
        else:
            tol = 1e-9 * np.maximum(np.abs(ranked), 1.0)
        return np.isfinite(nxt) & np.isfinite(ranked) & (gap <= tol)


# ---------------------------------------------------------------------------- the plan
def reason_plan(model: Any, data: pd.DataFrame, *, reference: Any = None, k: int = 4, method: str = "shapley",
                adverse_class: Any = None, statements: Any = None, background_rows: int = DEFAULT_BACKGROUND,
                n_samples: int | None = None, negligible: float = NEGLIGIBLE, random_state: Any = 0,
                lime_kwargs: Mapping[str, Any] | None = None) -> ReasonPlan:
    """A :class:`ReasonPlan` for rows like ``data`` (see :func:`reasons` for the parameters;
    ``data`` is the population the default reference is drawn from)."""
    oracle = as_oracle(model)
    if method not in REASON_METHODS:
        raise ParameterError(f"method must be one of {list(REASON_METHODS)}; got {method!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a whole number of reasons, at least 1; got {k!r}")
    if isinstance(background_rows, bool) or not isinstance(background_rows, (int, np.integer)) or background_rows < 2:
        raise ParameterError(f"background_rows must be a whole number, at least 2; got {background_rows!r}")
    if not isinstance(negligible, (int, float)) or isinstance(negligible, bool) or not 0 <= negligible < np.inf:
        raise ParameterError(f"negligible must be a non-negative number of log-odds; got {negligible!r}")
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(f"rows must be a DataFrame of raw rows; got {type(data).__name__}")
    if len(data) == 0:
        raise ParameterError("rows has no rows")
    features = [str(c) for c in data.columns]
    if [c for c in data.columns if not isinstance(c, str)]:
        data = data.rename(columns=str)
    oracle.query(data.iloc[:1])  # the first answer fixes the task and the classes
    if oracle.task != "classification":
        raise ParameterError("reasons explain a classifier's decision; this model is a regressor")
    classes = list(oracle.classes_)
    adverse_index = _adverse_index(adverse_class, classes)
    seed = _seed(random_state)
    rng = np.random.default_rng([seed, _BACKGROUND_STREAM])
    if reference is None or (isinstance(reference, str) and reference == "favourable"):
        proba = oracle.query(data)
        pool = data[np.argmax(proba, axis=1) != adverse_index]
        if len(pool) < 2:
            raise ParameterError(f"{len(pool)} of the {len(data)} rows get a favourable decision (any class but "
                                 f"{classes[adverse_index]!r}); reasons need at least 2 as the reference: pass "
                                 "reference= (a population or one row)")
        kind = "favourable rows"
    else:
        if isinstance(reference, pd.Series):  # one row: each value in its column's type
            reference = pd.DataFrame({str(c): pd.Series([v], dtype=data[c].dtype if c in data.columns else None)
                                      for c, v in reference.items()})
        if not isinstance(reference, pd.DataFrame):
            raise ParameterError(f"reference must be a DataFrame of raw rows (a population), one row (a Series or a "
                                 f"one-row DataFrame) or None; got {type(reference).__name__}")
        pool = _check_rows(reference.rename(columns=str), features, "reference")
        if len(pool) == 0:
            raise ParameterError("reference has no rows")
        kind = "row" if len(pool) == 1 else "population"
    if kind == "row":
        background = pool.reset_index(drop=True)
    else:
        pick = np.sort(rng.choice(len(pool), size=min(int(background_rows), len(pool)), replace=False))
        background = pool.iloc[pick].reset_index(drop=True)
    numeric = {f: bool(pd.api.types.is_numeric_dtype(data[f]) and not pd.api.types.is_bool_dtype(data[f]))
               for f in features}
    ref_values = {f: _typical(pool[f], numeric[f]) for f in features}
    said = None if statements is None else read_statements(statements, features, numeric)
    return ReasonPlan(oracle=oracle, features=features, adverse_class=classes[adverse_index],
                      adverse_index=adverse_index, background=background, reference_values=ref_values,
                      method=method, k=int(min(k, len(features))), negligible=float(negligible),
                      n_samples=n_samples, random_state=seed, statements=said, reference_kind=kind,
                      reference_rows=len(pool), numeric=numeric, lime_kwargs=dict(lime_kwargs or {}),
                      population=pool)


def reasons(model: Any, rows: pd.DataFrame, *, reference: Any = None, k: int = 4, method: str = "shapley",
            adverse_class: Any = None, statements: Any = None, background_rows: int = DEFAULT_BACKGROUND,
            n_samples: int | None = None, negligible: float = NEGLIGIBLE, random_state: Any = 0,
            chunk_rows: int = 20_000, lime_kwargs: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The principal reasons of each row's decision, on the adverse class's log-odds.

    Parameters
    ----------
    model : Oracle or anything Oracle adapts
        A classifier (with its preprocess, for an Oracle).
    rows : DataFrame
        Raw rows to explain (every row; reasons are given for those decided adversely).
    reference : None, DataFrame or Series
        What the reasons are measured against. None: the rows among ``rows`` that the network
        decides favourably (any class but the adverse one). A DataFrame of several rows: that
        population as given. One row (a Series or a one-row DataFrame): that row. A population
        is represented by ``background_rows`` rows drawn from it with ``random_state``.
    k : int
        Most reasons per row (4, as an adverse-action notice gives).
    method : {"shapley", "lime"}
        "shapley": interventional Shapley values of the log-odds (exact against one reference
        row; against a population, paired samples of a background row and an order, with
        standard errors). "lime": LIME's local linear model of the log-odds, the population
        as its neighbourhood's reference.
    adverse_class : label
        The outcome reasons are given for (e.g. "bad", "declined"); required.
    statements : mapping, file name or None
        Sentences a notice prints per feature and direction; see :func:`read_statements`.
    background_rows, n_samples
        Background sample of a reference population, and paired samples per adverse row
        (default four per background row: each costs ``2 * (features - 1)`` model rows).
    negligible : float
        Reasons whose contribution is below this (log-odds) are marked "negligible".
    random_state : int, Generator or None
        Seeds the background sample and the orders; a row's reasons do not depend on the rows
        explained with it.
    chunk_rows : int
        Rows explained at once (bounds the memory; the table is the same for any value up to
        float rounding in the network's sums).

    Returns
    -------
    DataFrame
        One row per input row (same index): ``decision`` (the network's class), ``adverse``,
        ``log_odds`` (of the adverse class) and ``reference_log_odds`` (the reference's mean;
        Shapley contributions of all features add up to the difference; LIME's are its local
        model's, against the reference's medians, and need not); for ``i`` in 1..k:
        ``reason_i`` (a feature, None where fewer features raise the adverse log-odds or the
        decision is favourable), ``contribution_i`` (log-odds), ``se_i`` (its standard error,
        sampled values only), ``value_i`` and ``reference_value_i`` (the applicant's raw value
        and the reference's, as text), ``statement_i`` (with statements), ``note_i``
        ("negligible", "tied with reason j", "tied with FEATURE (not listed)"); ``n_reasons``;
        ``without_statement`` (with statements: the row's reasons that have none). The plan's
        settings are in ``attrs["reasons"]``.

    Raises
    ------
    ParameterError
        A regression model, a missing or unknown ``adverse_class``, ``k < 1``, a reference with
        other columns, statements naming an unknown feature or direction, an unknown method.
    """
    plan = reason_plan(model, rows, reference=reference, k=k, method=method, adverse_class=adverse_class,
                       statements=statements, background_rows=background_rows, n_samples=n_samples,
                       negligible=negligible, random_state=random_state, lime_kwargs=lime_kwargs)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be a positive whole number; got {chunk_rows!r}")
    table = pd.concat(list(explain_chunks(plan, rows, int(chunk_rows))))
    table.attrs["reasons"] = plan.describe()
    return table


def explain_chunks(plan: ReasonPlan, rows: pd.DataFrame, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The plan's tables for ``rows`` in chunks of ``chunk_rows`` (the same chunks wherever they
    run, so the output is the same to the bit)."""
    rows = rows.rename(columns=str)
    for start in range(0, len(rows), chunk_rows):
        yield plan.explain(rows.iloc[start:start + chunk_rows])


def write_reasons(chunks: Iterator[pd.DataFrame], path: str | Path, *, progress: Any = None) -> dict[str, Any]:
    """Write reasons tables chunk by chunk to ``.csv`` or ``.parquet`` (chosen by the suffix),
    under a temporary name renamed when the last chunk is written: a reader never finds half a
    file. Text columns are written as text (a label that is a number too), so every chunk has
    the same columns and types. ``progress(rows_done)`` is called after each chunk.

    Returns
    -------
    dict
        ``rows``, ``adverse`` (rows decided adversely), ``first_reason`` (how often each
        feature is the first reason), ``without_statement`` (features that were a reason with
        no statement).
    """
    path = Path(path)
    suffix = _export_suffix(path)
    summary: dict[str, Any] = {"rows": 0, "adverse": 0, "first_reason": {}, "without_statement": set()}
    with written_at(path) as tmp:
        writer = None
        try:
            for table in chunks:
                frame = _as_text_columns(table)
                if suffix == ".csv":
                    frame.to_csv(tmp, mode="w" if writer is None else "a", header=writer is None, index=True)
                    writer = True
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    arrow = pa.Table.from_pandas(frame, preserve_index=True,
                                                 schema=None if writer is None else writer.schema)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, arrow.schema)
                    writer.write_table(arrow)
                _tally(summary, table)
                if progress is not None:
                    progress(summary["rows"])
            if writer is None:
                raise ParameterError("no rows to write")
        finally:
            if writer is not None and writer is not True:
                writer.close()
    summary["without_statement"] = sorted(summary["without_statement"])
    summary["first_reason"] = dict(sorted(summary["first_reason"].items(), key=lambda kv: (-kv[1], kv[0])))
    return summary


def _tally(summary: dict[str, Any], table: pd.DataFrame) -> None:
    summary["rows"] += len(table)
    adverse = table[table["adverse"].to_numpy(dtype=bool)]
    summary["adverse"] += len(adverse)
    for f, c in adverse["reason_1"].dropna().value_counts().items():
        summary["first_reason"][str(f)] = summary["first_reason"].get(str(f), 0) + int(c)
    if "without_statement" in table.columns:
        for v in table["without_statement"].dropna():
            summary["without_statement"].update(x.strip() for x in str(v).split("; "))


def _as_text_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns as text (None stays missing), and a text index unless it is whole
    numbers: one schema for every chunk."""
    frame = table.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = pd.array([None if _missing(v) else str(v) for v in frame[col]], dtype="string")
    if not pd.api.types.is_integer_dtype(frame.index.dtype):
        frame.index = pd.Index([str(v) for v in frame.index], name=frame.index.name)
    return frame


def _export_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataFileError(f"cannot write reasons to {str(path)!r}: use a .csv or .parquet file name "
                            f"(got suffix {path.suffix or 'none'!r})")
    return suffix


def reason_stability(plan: ReasonPlan, rows: pd.DataFrame, *, lime: bool = True,
                     table: pd.DataFrame | None = None) -> dict[str, Any]:
    """How far the reasons of ``rows`` hold: with another seed and another background sample
    of the reference, and (``lime``) by LIME on the same log-odds. Per comparison, over the
    rows decided adversely: the mean overlap of the two top-``k`` sets (shared reasons over
    the larger number given) and the share of rows whose first reason is the same.

    ``table``: ``plan.explain(rows)`` where it was computed already (the rows of a larger
    table: a row's reasons do not depend on the rows explained with it, its draws being
    seeded by its label); computed here when None."""
    from dataclasses import replace

    if table is not None and not table.index.equals(rows.index):
        raise ParameterError("table must be the reasons table of rows, row for row (plan.explain(rows))")
    base = plan.explain(rows) if table is None else table
    out: dict[str, Any] = {"rows": int(base["adverse"].sum()), "k": plan.k}
    if plan.reference_kind != "row" and plan.population is not None:
        other = plan.random_state + 1
        pick = np.sort(np.random.default_rng([other, _BACKGROUND_STREAM]).choice(
            len(plan.population), size=len(plan.background), replace=False))
        again = replace(plan, random_state=other, background=plan.population.iloc[pick].reset_index(drop=True))
        out["another_seed"] = compare_reasons(base, again.explain(rows), plan.k)
    if lime and plan.method == "shapley":
        out["lime"] = compare_reasons(base, replace(plan, method="lime").explain(rows), plan.k)
    return out


def compare_reasons(a: pd.DataFrame, b: pd.DataFrame, k: int) -> dict[str, Any]:
    """Top-``k`` overlap and first-reason agreement of two reasons tables of the same rows,
    over the rows both decide adversely."""
    both = a["adverse"].to_numpy(dtype=bool) & b.loc[a.index, "adverse"].to_numpy(dtype=bool)
    A, B = a[both], b.loc[a.index][both]
    cols = [f"reason_{i + 1}" for i in range(k)]
    overlap, first = [], []
    for ra, rb in zip(A[cols].itertuples(index=False), B[cols].itertuples(index=False)):
        sa, sb = {x for x in ra if x is not None and not _missing(x)}, {x for x in rb if x is not None and not _missing(x)}
        most = max(len(sa), len(sb))
        overlap.append(len(sa & sb) / most if most else 1.0)
        first.append(ra[0] == rb[0])
    n = len(overlap)
    return {"rows": n, "top_k_overlap": float(np.mean(overlap)) if n else None,
            "first_reason_same": float(np.mean(first)) if n else None}


# ---------------------------------------------------------------------------- statements
def read_statements(statements: Any, features: Sequence[str], numeric: Mapping[str, bool] | None = None
                    ) -> dict[str, dict[str, str]]:
    """Statements as ``{feature: {direction: text}}``, checked against the features.

    ``statements`` is a mapping ``{feature: text}`` (any direction) or ``{feature: {direction:
    text}}``, or a file: ``.csv`` with columns ``feature``, ``statement`` and optionally
    ``direction``; ``.json``, ``.yaml``/``.yml`` or ``.toml`` holding the mapping. A direction
    is where the applicant's value lies from the reference's: "low" or "high" (numbers),
    "missing", a category's value (categories), or "any" (whatever the value).
    """
    numeric = numeric or {}
    source = "statements"
    if isinstance(statements, (str, Path)):
        source = str(statements)
        statements = _load_statements(Path(statements))
    if not isinstance(statements, Mapping):
        raise ParameterError(f"statements must map a feature to its sentence (or to sentences per direction), or "
                             f"name a .csv/.json/.yaml/.toml file; got {type(statements).__name__}")
    out: dict[str, dict[str, str]] = {}
    for f, said in statements.items():
        f = str(f)
        if f not in features:
            raise ParameterError(f"{source}: {f!r} is not a feature; the features are {list(features)[:40]}")
        by_dir = {"any": said} if isinstance(said, str) else said
        if not isinstance(by_dir, Mapping) or not by_dir:
            raise ParameterError(f"{source}: the statement of {f!r} must be a sentence or a mapping from direction to "
                                 f"sentence; got {said!r}")
        for d, text in by_dir.items():
            d = str(d)
            if numeric.get(f, False) and d not in DIRECTIONS:
                raise ParameterError(f"{source}: direction {d!r} of the numeric feature {f!r} is not one of "
                                     f"{list(DIRECTIONS)}")
            if not isinstance(text, str) or not text.strip():
                raise ParameterError(f"{source}: the statement of {f!r} ({d}) must be a non-empty sentence; got "
                                     f"{text!r}")
            out.setdefault(f, {})[d] = text.strip()
    return out


def _load_statements(path: Path) -> Any:
    if not path.is_file():
        raise DataFileError(f"statements file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            need = {"feature", "statement"}
            if not need <= set(table.columns):
                raise DataFileError(f"statements file {str(path)!r} needs the columns 'feature' and 'statement' "
                                    f"(and optionally 'direction'); it has {list(table.columns)}")
            out: dict[str, dict[str, str]] = {}
            for _, row in table.iterrows():
                d = row.get("direction", "") or "any"
                if d in out.get(row["feature"], {}):
                    raise DataFileError(f"statements file {str(path)!r}: {row['feature']!r} ({d}) is given twice")
                out.setdefault(row["feature"], {})[d] = row["statement"]
            return out
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
    except DataFileError:
        raise
    except Exception as e:  # each parser raises its own errors: name the file, keep the cause
        raise DataFileError(f"cannot read statements file {str(path)!r}: {type(e).__name__}: {e}") from e
    raise DataFileError(f"statements file {str(path)!r}: unknown format {suffix or '(no extension)'!r}; use .csv, "
                        ".json, .yaml or .toml")


def _direction(value: Any, reference: Any, numeric: bool) -> str:
    if _missing(value):
        return "missing"
    if not numeric:
        return str(value)
    if _missing(reference):
        return "any"
    return "high" if float(value) > float(reference) else "low" if float(value) < float(reference) else "any"


def _statement(said: Mapping[str, str] | None, direction: str) -> str | None:
    if not said:
        return None
    return said.get(direction, said.get("any"))


# ---------------------------------------------------------------------------- helpers
def _adverse_index(adverse_class: Any, classes: list) -> int:
    if adverse_class is None:
        raise ParameterError(f"name the adverse outcome with adverse_class= (--adverse-class): one of "
                             f"{[_plain(c) for c in classes]}")
    for i, c in enumerate(classes):
        if _same_label(c, adverse_class):
            return i
    raise ParameterError(f"adverse_class {adverse_class!r} is not one of the model's classes "
                         f"{[_plain(c) for c in classes]}")


def _same_label(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def _check_rows(frame: pd.DataFrame, features: Sequence[str], what: str) -> pd.DataFrame:
    cols = [str(c) for c in frame.columns]
    if cols != list(features):
        missing = [f for f in features if f not in cols]
        extra = [c for c in cols if c not in features]
        if missing or extra:
            detail = "; ".join(p for p in (f"missing {missing[:12]}" if missing else "",
                                           f"not features {extra[:12]}" if extra else "") if p)
            raise ParameterError(f"{what} has columns other than the features ({detail})")
        frame = frame.rename(columns=str)[list(features)]
    return frame


def _typical(column: pd.Series, numeric: bool) -> Any:
    values = column.dropna()
    if len(values) == 0:
        return np.nan
    if numeric:  # a summary of the population: to 6 significant digits (0.023525, not 0.023524999999999997)
        return float(f"{float(np.median(values.to_numpy(dtype=float))):.6g}")
    counts = values.astype(object).value_counts(sort=False)
    return counts.index[int(np.argmax(counts.to_numpy()))]  # ties: the first seen


def _text(v: Any) -> str:
    """A raw value as a notice prints it: numbers without trailing zeros, "missing" for none."""
    if _missing(v):
        return "missing"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return np.format_float_positional(float(v), trim="-")
    return str(v)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def export_reasons(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a reasons table to ``.csv`` or ``.parquet`` (chosen by the suffix).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    DataFileError
        Any other suffix, or a folder that does not exist.
    """
    path = Path(path)
    suffix = _export_suffix(path)
    if not path.parent.exists():
        raise DataFileError(f"cannot export reasons to {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    with written_at(path) as tmp:  # a reader never finds half a file under this name
        _write_table(table, tmp, suffix)
    return path


def _write_table(table: pd.DataFrame, path: Path, suffix: str) -> None:
    if suffix == ".csv":
        table.to_csv(path, index=True)
    else:
        frame = table.copy()
        frame.index = frame.index.map(str) if frame.index.dtype == object else frame.index
        for col in frame.columns:  # parquet needs one type per column: labels as text
            if frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                            else (v if isinstance(v, (str, bool)) else str(v)))
        frame.to_parquet(path, index=True)
