"""How faithfully a surrogate reproduces the network.

Fidelity is measured against the network's own answers, never against ground truth: the
question is whether the rules say what the network does. By default the rows are the held-out
*observed* rows of a distillation set, whose network outputs are already known, so evaluating
costs no query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import DataFileError, ParameterError
from ..extraction.dataset import DistillationSet
from .intervals import (
    N_BOOT,
    WILSON,
    PoissonBootstrap,
    bootstrap_method,
    check_n_boot,
    percentile_interval,
    r2_replicates,
    wilson,
    wilson_interval,
)


@dataclass
class Fidelity:
    """Fidelity of one surrogate on one set of rows, every estimate with its interval.

    ``agreement`` (share of rows where the surrogate's label equals the network's), its Wilson
    interval, ``macro_f1`` against the network's labels and ``r2`` of the surrogate's
    probabilities on the network's (classification); ``r2``, ``mae`` and ``rmse`` on the
    network's outputs (regression). ``per_class`` and ``rules`` break it down, ``complexity``
    says how much a reader must take in. A rule's entry states it on the rows *matching* its
    conditions (``n_covered``, ``coverage``, ``precision`` or ``mae``) and, for a rule list
    (first match decides), on the rows it *decides* (``n_decided``, ``decides``,
    ``decided_precision`` or ``decided_mae``; None for rule sets and additive models, whose
    ``decides`` is as before: the share of rows first matched, None when additive).

    Every estimate ``x`` has its interval at level ``confidence`` in ``x_ci`` (``[low,
    high]``, None where the estimate is undefined), here and in the ``per_class``, ``rules``
    and ``default`` entries; ``intervals`` names the level and, per estimate, the method
    (``{"level": 0.95, "methods": {"r2": "percentile bootstrap, ...", "rules.coverage":
    "Wilson score", ...}}``, a ``rules.`` key covering the ``default`` entry too).
    Proportions have Wilson score intervals; R², MAE, RMSE and macro-F1 percentile intervals
    from ``n_boot`` Poisson bootstrap replicates seeded by ``random_state``.
    """

    task: str
    n: int
    agreement: float | None
    agreement_ci: tuple[float, float] | None
    macro_f1: float | None
    r2: float | None
    mae: float | None = None
    rmse: float | None = None
    r2_ci: list[float] | None = None
    macro_f1_ci: list[float] | None = None
    mae_ci: list[float] | None = None
    rmse_ci: list[float] | None = None
    confidence: float = 0.95
    per_class: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] | None = None
    complexity: dict[str, Any] = field(default_factory=dict)
    rows: str = "holdout"
    n_boot: int | None = None
    random_state: int | None = None
    intervals: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("agreement_ci", "r2_ci", "macro_f1_ci", "mae_ci", "rmse_ci"):
            if d[key] is not None:
                d[key] = [float(v) for v in d[key]]
        return d


def check_same_set(surrogate, dset: DistillationSet) -> None:
    """Raise :class:`ParameterError` unless ``surrogate`` was fitted for the features and
    task of ``dset`` (measuring it on another set's rows would be meaningless)."""
    if list(surrogate.schema_.names) != list(dset.schema.names) or surrogate.task_ != dset.task:
        raise ParameterError(
            f"the {surrogate.name} surrogate was fitted for {surrogate.task_} on features "
            f"{list(surrogate.schema_.names)}, but the distillation set is for {dset.task} on "
            f"{list(dset.schema.names)}; pass the set it was fitted on"
        )


#: Rows per chunk when :func:`evaluate` queries the network itself: the memory of one chunk
#: (rows, answers, rule coverage) is what the evaluation holds at a time.
CHUNK_ROWS = 100_000


def _chunks(surrogate, oracle, rows, chunk_rows: int) -> tuple[Iterator[tuple[pd.DataFrame, np.ndarray]], str]:
    """The evaluation rows as (canonical rows, network outputs) chunks, and what they are."""
    if isinstance(rows, DistillationSet):
        part = rows.holdout if rows.is_holdout.any() else rows
        return iter([(part.rows, part.outputs)]), ("holdout" if rows.is_holdout.any() else "all")
    if not isinstance(rows, (pd.DataFrame, str, Path, Iterable)) or isinstance(rows, (np.ndarray, bytes)):
        raise ParameterError(
            "rows must be a DistillationSet, a pandas DataFrame, a Parquet file or an iterable of DataFrames; "
            f"got {type(rows).__name__}"
        )
    if oracle is None:
        raise ParameterError("fidelity.evaluate needs the oracle to query the network on rows it is given")
    schema = surrogate.schema_
    if isinstance(rows, pd.DataFrame):
        return query_chunks(schema, oracle, [rows], chunk_rows), "given"
    if isinstance(rows, (str, Path)):
        return query_chunks(schema, oracle, read_parquet_chunks(rows, schema.names, chunk_rows), chunk_rows), "given"
    return query_chunks(schema, oracle, rows, chunk_rows), "given"


def query_chunks(schema, oracle, frames: Iterable[pd.DataFrame], chunk_rows: int
                 ) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Raw frames as (canonical rows, network outputs), ``chunk_rows`` rows at a time."""
    for i, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"chunk {i} of the evaluation rows is a {type(frame).__name__}, not a DataFrame")
        for start in range(0, len(frame), chunk_rows):
            # A chunk may hold no value of a feature that other chunks have.
            canon = schema.validate(frame.iloc[start:start + chunk_rows], what="evaluation rows",
                                    allow_empty_columns=True)
            yield canon, oracle.query(canon)


def read_parquet_chunks(path: str | Path, columns: Sequence[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A Parquet file's rows as DataFrames of at most ``chunk_rows`` rows, read batch by batch
    so that the file never needs to fit in memory."""
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is in the parquet and test extras
        raise ParameterError("reading Parquet needs pyarrow: pip install 'pellucid[parquet]'") from e
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"Parquet file {str(path)!r} does not exist")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise DataFileError(f"cannot read {str(path)!r} as Parquet: {e}") from e
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise DataFileError(f"Parquet file {str(path)!r} lacks the column(s) {missing}")
    import pyarrow as pa

    pool = pa.default_memory_pool()
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(columns), use_threads=False):
        frame = batch.to_pandas()
        del batch
        pool.release_unused()  # Arrow's pool otherwise keeps every freed batch resident
        yield frame


class FidelityTally:
    """What :func:`evaluate` measures, gathered chunk by chunk.

    Every figure of a :class:`Fidelity` is a function of counts and sums over rows (agreement,
    the confusion matrix, rule coverage and hits, sums of squares), so rows can be added in
    chunks, tallies of disjoint chunks merged (e.g. from the partitions of a cluster), and the
    result equals one evaluation over all rows: counts exactly, R², MAE and RMSE up to the
    rounding of floating sums.

    The bootstrap intervals (R², MAE, RMSE, macro-F1) are the same bit for bit: each row's
    Poisson weights depend only on ``random_state`` and the row's position among all the rows
    evaluated (see :mod:`pellucid.fidelity.intervals`). Rows are numbered from ``offset`` in
    the order they are added; a tally of one partition of a larger table is given the
    position of the partition's first row, and tallies that would number the same positions
    twice refuse to merge.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate.
    confidence : float
        Level of every interval.
    rows : str
        Which rows these are, for the report (``holdout``, ``all`` or ``given``).
    random_state : int or None
        Seed of the bootstrap weights (None: a fresh seed, reported in the result).
    n_boot : int
        Bootstrap replicates.
    offset : int
        Position of the first row this tally is given among all the rows evaluated.
    """

    def __init__(self, surrogate, *, confidence: float = 0.95, rows: str = "given", random_state: int | None = 0,
                 n_boot: int = N_BOOT, offset: int = 0) -> None:
        surrogate._check_fitted()
        if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
            raise ParameterError(f"offset must be a non-negative integer (a row position), got {offset!r}")
        self.surrogate = surrogate
        self.confidence = confidence
        self.rows = rows
        self.task = surrogate.task_
        rules = surrogate.rules_
        self._additive = bool(getattr(rules, "additive", False))
        self._ordered = bool(getattr(rules, "ordered", False))
        r = len(rules.rules)
        self.n = 0
        self._next = int(offset)  # position of the next row added
        self._spans: list[tuple[int, int]] = []  # positions of the rows tallied, as [start, end) ranges
        self.covered = np.zeros(r + 1, dtype=np.int64)  # the last entry: rows the default decides
        self.decides = np.zeros(r + 1, dtype=np.int64)
        if self.task == "classification":
            self.classes = np.asarray(surrogate.classes_, dtype=object)
            k = len(self.classes)
            self.confusion = np.zeros((k, k), dtype=np.int64)  # network class × surrogate class
            self.hits = np.zeros(r + 1, dtype=np.int64)  # covered rows where the network gives the outcome
            self.decided_hits = np.zeros(r + 1, dtype=np.int64)  # the same among the rows each decides
            index = {c: i for i, c in enumerate(self.classes)}
            self._outcome = np.array([index[rule.outcome] for rule in list(rules.rules) + [rules.default]])
            self._shift: np.ndarray | None = None  # per output column, for stable sums of squares
            self.sum_y = np.zeros(k)
            self.sum_y2 = np.zeros(k)
            self.sse = np.zeros(k)
            # Per row: the network's probabilities tracked (R²); squared error, and per class
            # "both say c" and "network says c" + "surrogate says c" summed (R², macro-F1).
            self._boot = PoissonBootstrap(k, 1 + 2 * k, n_boot=n_boot, random_state=random_state)
        else:
            self._shift = None
            self.sum_y = 0.0
            self.sum_y2 = 0.0
            self.sse = 0.0
            self.sae = 0.0
            self.rule_abs = np.zeros(r + 1)  # sum of |network - outcome| over the rows a rule covers
            self.rule_sum = np.zeros(r + 1)  # sum of the network's output over them
            self.decided_abs = np.zeros(r + 1)  # sum of |network - outcome| over the rows a rule decides
            self._values = np.array([float(rule.outcome) for rule in list(rules.rules) + [rules.default]])
            # Per row: the network's output tracked (R²); squared and absolute error summed.
            self._boot = PoissonBootstrap(1, 2, n_boot=n_boot, random_state=random_state)

    @property
    def random_state(self) -> int:
        """The seed of the bootstrap weights."""
        return self._boot.seed

    @property
    def n_boot(self) -> int:
        """Bootstrap replicates."""
        return self._boot.n_boot

    def add(self, X: pd.DataFrame, net_out: np.ndarray) -> "FidelityTally":
        """Add canonical rows and the network's outputs on them (the next rows in position)."""
        n = len(X)
        if n == 0:
            return self
        start = self._next
        if _overlaps(self._spans, start, start + n):
            raise ParameterError(
                f"rows {start} to {start + n - 1} were already tallied (from a merged tally); give each "
                "partition's tally the position of its first row (offset=)"
            )
        rules = self.surrogate.rules_
        cov = rules.coverage_matrix(X)
        fires = rules.firing_rule(X, cov)
        r = cov.shape[1]
        self.n += n
        self._next += n
        self._spans = _join_spans(self._spans + [(start, start + n)])
        self.decides += np.bincount(fires, minlength=r + 1)[: r + 1]
        cover = np.concatenate([cov, (fires == r)[:, None]], axis=1)  # what each entry is about
        self.covered += cover.sum(axis=0)
        if self.task == "classification":
            k = len(self.classes)
            net_idx = net_out.argmax(axis=1)
            sur_p = rules.predict_proba(X, cov)
            # Labels as the surrogate predicts them (a logistic score just above 0 is class 1
            # even where its probability rounds to 0.5).
            sur_idx = pd.Index(list(self.classes), dtype=object).get_indexer(np.asarray(rules.predict(X, cov), dtype=object))
            self.confusion += np.bincount(net_idx * k + sur_idx, minlength=k * k).reshape(k, k)
            right = net_idx[:, None] == self._outcome[None, :]
            self.hits += (cover & right).sum(axis=0)
            self.decided_hits += np.bincount(fires[right[np.arange(n), fires]], minlength=r + 1)[: r + 1]
            if self._shift is None:
                self._shift = net_out.mean(axis=0)
            y = net_out - self._shift
            self.sum_y += y.sum(axis=0)
            self.sum_y2 += (y**2).sum(axis=0)
            sq = (net_out - sur_p) ** 2
            self.sse += sq.sum(axis=0)
            eye = np.eye(k)
            net_1, sur_1 = eye[net_idx], eye[sur_idx]
            self._boot.add(start, net_out, np.column_stack([sq.sum(axis=1), net_1 * sur_1, net_1 + sur_1]))
            return self
        y_net = np.asarray(net_out, dtype=float)
        err = rules.predict(X, cov).astype(float) - y_net
        if self._shift is None:
            self._shift = float(y_net.mean())
        y = y_net - self._shift
        self.sum_y += float(y.sum())
        self.sum_y2 += float((y**2).sum())
        self.sse += float((err**2).sum())
        self.sae += float(np.abs(err).sum())
        self.rule_abs += (cover * np.abs(y_net[:, None] - self._values[None, :])).sum(axis=0)
        self.rule_sum += (cover * y_net[:, None]).sum(axis=0)
        self.decided_abs += np.bincount(fires, weights=np.abs(y_net - self._values[fires]), minlength=r + 1)[: r + 1]
        self._boot.add(start, y_net, np.column_stack([err**2, np.abs(err)]))
        return self

    def merge(self, other: "FidelityTally") -> "FidelityTally":
        """Add another tally of the same surrogate over other rows (in place).

        Raises
        ------
        ParameterError
            When the tallies are of different surrogates, have different bootstrap seeds or
            replicates, or number some of the same row positions (give each partition's
            tally its ``offset``).
        """
        if other.surrogate is not self.surrogate and other.surrogate.rules_.to_dict() != self.surrogate.rules_.to_dict():
            raise ParameterError("can only merge tallies of the same surrogate")
        if (other.random_state, other.n_boot) != (self.random_state, self.n_boot):
            raise ParameterError(
                f"can only merge tallies with the same bootstrap: seed {self.random_state} and {self.n_boot} "
                f"replicates against seed {other.random_state} and {other.n_boot}"
            )
        for a, b in other._spans:
            if _overlaps(self._spans, a, b):
                raise ParameterError(
                    f"both tallies hold rows at positions {a} to {b - 1}; tallies of the partitions of a table are "
                    "made with the position of each partition's first row (FidelityTally(..., offset=))"
                )
        if other.n == 0:
            return self
        self._boot.merge(other._boot)
        self._spans = _join_spans(self._spans + other._spans)
        if self.n == 0:
            own = ("surrogate", "confidence", "rows", "_boot", "_spans", "_next")
            self.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in other.__dict__.items()
                                  if k not in own})
            return self
        # Sums of squares about different shifts: move the other's to this one's.
        d = other._shift - self._shift
        self.sum_y2 = self.sum_y2 + other.sum_y2 + 2 * d * other.sum_y + other.n * d**2
        self.sum_y = self.sum_y + other.sum_y + other.n * d
        self.n += other.n
        self.covered += other.covered
        self.decides += other.decides
        self.sse = self.sse + other.sse
        if self.task == "classification":
            self.confusion += other.confusion
            self.hits += other.hits
            self.decided_hits += other.decided_hits
        else:
            self.sae += other.sae
            self.rule_abs += other.rule_abs
            self.rule_sum += other.rule_sum
            self.decided_abs += other.decided_abs
        return self

    def _r2(self, sse, sum_y, sum_y2) -> float | None:
        if self.n < 2:
            return None
        sst = np.sum(np.asarray(sum_y2) - np.asarray(sum_y) ** 2 / self.n)
        sse = float(np.sum(sse))
        if sst <= 0:  # as scikit-learn's r2_score: a constant network is matched or not
            return 1.0 if sse == 0 else 0.0
        return float(1 - sse / sst)

    def result(self) -> Fidelity:
        """The :class:`Fidelity` of every row added, with the interval of every estimate."""
        if self.n == 0:
            raise ParameterError("fidelity.evaluate got no rows to evaluate on")
        n, rules, conf = self.n, self.surrogate.rules_, self.confidence
        comp = self.surrogate.complexity()
        boot = self._boot.totals()
        sw = boot.sw
        by_boot = bootstrap_method(self.n_boot, self.random_state)
        methods: dict[str, str] = {}
        if self.task == "classification":
            cm = self.confusion
            k = int(np.trace(cm))
            per_class, f1 = [], []
            for c in range(len(self.classes)):
                n_net, n_sur, tp = int(cm[c].sum()), int(cm[:, c].sum()), int(cm[c, c])
                per_class.append({
                    "class": str(self.classes[c]),
                    "n_network": n_net,
                    "n_surrogate": n_sur,
                    "agreement": tp / n_net if n_net else None,
                    "agreement_ci": wilson(tp, n_net, conf),
                    "precision": tp / n_sur if n_sur else None,
                    "precision_ci": wilson(tp, n_sur, conf),
                })
                f1.append(2 * tp / (n_net + n_sur) if n_net + n_sur else 0.0)
            nc = len(self.classes)
            sse_b, tp_b, both_b = boot.sums[:, 0], boot.sums[:, 1:1 + nc], boot.sums[:, 1 + nc:]
            f1_b = np.divide(2 * tp_b, both_b, out=np.zeros_like(tp_b), where=both_b > 0).mean(axis=1)
            f1_b[sw <= 0] = np.nan
            r2 = self._r2(self.sse, self.sum_y, self.sum_y2)
            out = Fidelity(
                task=self.task, n=n, agreement=k / n, agreement_ci=wilson_interval(k, n, conf),
                macro_f1=float(np.mean(f1)), r2=r2,
                macro_f1_ci=percentile_interval(f1_b, float(np.mean(f1)), conf),
                r2_ci=percentile_interval(r2_replicates(boot, sse_b), r2, conf),
                confidence=conf, per_class=per_class, complexity=comp, rows=self.rows,
            )
            methods.update({"agreement": WILSON, "macro_f1": by_boot, "r2": by_boot,
                            "per_class.agreement": WILSON, "per_class.precision": WILSON})

            def rule_score(j, rule):
                # Precision: share of covered rows where the network gives the rule's outcome;
                # for a rule list also among the rows the rule decides (it is the first to apply).
                m, dec = self.covered[j], self.decides[j]
                decided = self._ordered and not self._additive
                return {"outcome": str(rule.outcome), "precision": self.hits[j] / m if m else None,
                        "precision_ci": wilson(self.hits[j], m, conf),
                        "decided_precision": self.decided_hits[j] / dec if decided and dec else None,
                        "decided_precision_ci": wilson(self.decided_hits[j], dec, conf) if decided else None}

            methods["rules.precision"] = WILSON
            if self._ordered and not self._additive:
                methods["rules.decided_precision"] = WILSON
        else:
            r2 = self._r2(self.sse, self.sum_y, self.sum_y2)
            sse_b, sae_b = boot.sums[:, 0], boot.sums[:, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mae_b = np.where(sw > 0, sae_b / sw, np.nan)
                rmse_b = np.sqrt(np.where(sw > 0, sse_b / sw, np.nan))
            mae, rmse = self.sae / n, float(np.sqrt(self.sse / n))
            out = Fidelity(
                task=self.task, n=n, agreement=None, agreement_ci=None, macro_f1=None,
                r2=r2, mae=mae, rmse=rmse, r2_ci=percentile_interval(r2_replicates(boot, sse_b), r2, conf),
                mae_ci=percentile_interval(mae_b, mae, conf), rmse_ci=percentile_interval(rmse_b, rmse, conf),
                confidence=conf, complexity=comp, rows=self.rows,
            )
            methods.update({"r2": by_boot, "mae": by_boot, "rmse": by_boot})
            total = self.sum_y + n * self._shift

            def rule_score(j, rule):
                m, dec = self.covered[j], self.decides[j]
                if self._additive:
                    # A term adds its weight rather than giving the value: what it covers is told
                    # by the network's mean output there against elsewhere.
                    return {"outcome": float(rule.outcome),
                            "network_mean": self.rule_sum[j] / m if m else None,
                            "network_mean_elsewhere": (total - self.rule_sum[j]) / (n - m) if n - m else None}
                return {"outcome": float(rule.outcome), "mae": self.rule_abs[j] / m if m else None,
                        "decided_mae": self.decided_abs[j] / dec if self._ordered and dec else None}

        methods["rules.coverage"] = WILSON
        if not self._additive:
            methods["rules.decides"] = WILSON
        out.n_boot, out.random_state = self.n_boot, self.random_state
        out.intervals = {"level": conf, "methods": methods}
        _add_rule_entries(out, rules, self.covered, self.decides, n, rule_score, conf)
        return out


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether the positions ``[start, end)`` meet any of the ``[a, b)`` spans."""
    return any(start < b and a < end for a, b in spans)


def _join_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans, those that touch joined into one."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def evaluate(surrogate, oracle=None, rows=None, *, confidence: float = 0.95,
             chunk_rows: int = CHUNK_ROWS, random_state: int | None = 0, n_boot: int = N_BOOT) -> Fidelity:
    """Measure a fitted surrogate against the network.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate.
    oracle : Oracle, optional
        Queried only when ``rows`` are not a distillation set.
    rows : DistillationSet, pandas.DataFrame, Parquet path or iterable of DataFrames
        A distillation set (its held-out observed rows are used, outputs already known), or
        raw rows to query the network on: a DataFrame, a Parquet file (read in batches) or
        any iterable of DataFrames (e.g. a generator reading a large table piece by piece).
    confidence : float
        Level of every interval.
    chunk_rows : int
        Rows validated, queried and tallied at a time when the network is queried; the
        memory the evaluation needs beyond its input is that of one chunk. The result,
        intervals included, does not depend on it.
    random_state : int or None
        Seed of the bootstrap weights of the R², MAE, RMSE and macro-F1 intervals; the same
        seed gives the same intervals. None draws a fresh seed (reported in the result).
    n_boot : int
        Bootstrap replicates.

    Returns
    -------
    Fidelity
        Every estimate with its interval (``x_ci``) and ``intervals``, the level and the
        method of each.
    """
    if rows is None:
        raise ParameterError("fidelity.evaluate needs rows: a DistillationSet, a DataFrame or a Parquet file")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    check_n_boot(n_boot)
    surrogate._check_fitted()
    chunks, which = _chunks(surrogate, oracle, rows, int(chunk_rows))
    tally = FidelityTally(surrogate, confidence=confidence, rows=which, random_state=random_state, n_boot=n_boot)
    for X, net_out in chunks:
        tally.add(X, net_out)
    return tally.result()


def _add_rule_entries(out: Fidelity, rules, covered: np.ndarray, decides: np.ndarray, n: int, score,
                      confidence: float) -> None:
    """Per rule (and the default): the rows it covers and decides, and the task's score of
    its outcome on them, each share with its Wilson interval. In an additive model no rule
    decides alone (``decides`` is None) and the default entry is about the rows no rule
    covers."""
    additive = getattr(rules, "additive", False)
    for j, rule in enumerate(list(rules.rules) + [rules.default]):
        entry = {
            "index": j,
            "text": rule.text(),
            **{k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in score(j, rule).items()},
            "n_covered": int(covered[j]),
            "coverage": float(covered[j] / n),
            "coverage_ci": wilson(int(covered[j]), n, confidence),
            "n_decided": None if additive else int(decides[j]),
            "decides": None if additive else float(decides[j] / n),
            "decides_ci": None if additive else wilson(int(decides[j]), n, confidence),
        }
        if j == len(rules.rules):
            out.default = entry
        else:
            out.rules.append(entry)
