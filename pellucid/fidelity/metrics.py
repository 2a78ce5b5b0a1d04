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
from scipy.stats import norm

from ..errors import DataFileError, ParameterError
from ..extraction.distill import DistillationSet


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: unlike the normal approximation it stays in
    [0, 1] and keeps its coverage near 0 and 1, where good surrogates live."""
    if n <= 0:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval holds p exactly; at p = 0 or 1 rounding would leave an end a hair inside it.
    return (float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half))))


@dataclass
class Fidelity:
    """Fidelity of one surrogate on one set of rows.

    ``agreement`` (share of rows where the surrogate's label equals the network's), its Wilson
    interval, ``macro_f1`` against the network's labels and ``r2`` of the surrogate's
    probabilities on the network's (classification); ``r2``, ``mae`` and ``rmse`` on the
    network's outputs (regression). ``per_class`` and ``rules`` break it down, ``complexity``
    says how much a reader must take in.
    """

    task: str
    n: int
    agreement: float | None
    agreement_ci: tuple[float, float] | None
    macro_f1: float | None
    r2: float | None
    mae: float | None = None
    rmse: float | None = None
    confidence: float = 0.95
    per_class: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] | None = None
    complexity: dict[str, Any] = field(default_factory=dict)
    rows: str = "holdout"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.agreement_ci is not None:
            d["agreement_ci"] = list(self.agreement_ci)
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

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate.
    confidence : float
        Level of the agreement interval.
    rows : str
        Which rows these are, for the report (``holdout``, ``all`` or ``given``).
    """

    def __init__(self, surrogate, *, confidence: float = 0.95, rows: str = "given") -> None:
        surrogate._check_fitted()
        self.surrogate = surrogate
        self.confidence = confidence
        self.rows = rows
        self.task = surrogate.task_
        rules = surrogate.rules_
        self._additive = bool(getattr(rules, "additive", False))
        r = len(rules.rules)
        self.n = 0
        self.covered = np.zeros(r + 1, dtype=np.int64)  # the last entry: rows the default decides
        self.decides = np.zeros(r + 1, dtype=np.int64)
        if self.task == "classification":
            self.classes = np.asarray(surrogate.classes_, dtype=object)
            k = len(self.classes)
            self.confusion = np.zeros((k, k), dtype=np.int64)  # network class × surrogate class
            self.hits = np.zeros(r + 1, dtype=np.int64)
            index = {c: i for i, c in enumerate(self.classes)}
            self._outcome = np.array([index[rule.outcome] for rule in list(rules.rules) + [rules.default]])
            self._shift: np.ndarray | None = None  # per output column, for stable sums of squares
            self.sum_y = np.zeros(k)
            self.sum_y2 = np.zeros(k)
            self.sse = np.zeros(k)
        else:
            self._shift = None
            self.sum_y = 0.0
            self.sum_y2 = 0.0
            self.sse = 0.0
            self.sae = 0.0
            self.rule_abs = np.zeros(r + 1)  # sum of |network - outcome| over the rows a rule covers
            self.rule_sum = np.zeros(r + 1)  # sum of the network's output over them
            self._values = np.array([float(rule.outcome) for rule in list(rules.rules) + [rules.default]])

    def add(self, X: pd.DataFrame, net_out: np.ndarray) -> "FidelityTally":
        """Add canonical rows and the network's outputs on them."""
        n = len(X)
        if n == 0:
            return self
        rules = self.surrogate.rules_
        cov = rules.coverage_matrix(X)
        fires = rules.firing_rule(X)
        r = cov.shape[1]
        self.n += n
        self.decides += np.bincount(fires, minlength=r + 1)[: r + 1]
        cover = np.concatenate([cov, (fires == r)[:, None]], axis=1)  # what each entry is about
        self.covered += cover.sum(axis=0)
        if self.task == "classification":
            k = len(self.classes)
            net_idx = net_out.argmax(axis=1)
            sur_p = rules.predict_proba(X)
            # Labels as the surrogate predicts them (a logistic score just above 0 is class 1
            # even where its probability rounds to 0.5).
            sur_idx = pd.Index(list(self.classes), dtype=object).get_indexer(np.asarray(rules.predict(X), dtype=object))
            self.confusion += np.bincount(net_idx * k + sur_idx, minlength=k * k).reshape(k, k)
            self.hits += (cover & (net_idx[:, None] == self._outcome[None, :])).sum(axis=0)
            if self._shift is None:
                self._shift = net_out.mean(axis=0)
            y = net_out - self._shift
            self.sum_y += y.sum(axis=0)
            self.sum_y2 += (y**2).sum(axis=0)
            self.sse += ((net_out - sur_p) ** 2).sum(axis=0)
            return self
        y_net = np.asarray(net_out, dtype=float)
        err = rules.predict(X).astype(float) - y_net
        if self._shift is None:
            self._shift = float(y_net.mean())
        y = y_net - self._shift
        self.sum_y += float(y.sum())
        self.sum_y2 += float((y**2).sum())
        self.sse += float((err**2).sum())
        self.sae += float(np.abs(err).sum())
        self.rule_abs += (cover * np.abs(y_net[:, None] - self._values[None, :])).sum(axis=0)
        self.rule_sum += (cover * y_net[:, None]).sum(axis=0)
        return self

    def merge(self, other: "FidelityTally") -> "FidelityTally":
        """Add another tally of the same surrogate over other rows (in place)."""
        if other.surrogate is not self.surrogate and other.surrogate.rules_.to_dict() != self.surrogate.rules_.to_dict():
            raise ParameterError("can only merge tallies of the same surrogate")
        if other.n == 0:
            return self
        if self.n == 0:
            self.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in other.__dict__.items()
                                  if k not in ("surrogate", "confidence", "rows")})
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
        else:
            self.sae += other.sae
            self.rule_abs += other.rule_abs
            self.rule_sum += other.rule_sum
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
        """The :class:`Fidelity` of every row added."""
        if self.n == 0:
            raise ParameterError("fidelity.evaluate got no rows to evaluate on")
        n, rules = self.n, self.surrogate.rules_
        comp = self.surrogate.complexity()
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
                    "precision": tp / n_sur if n_sur else None,
                })
                f1.append(2 * tp / (n_net + n_sur) if n_net + n_sur else 0.0)
            out = Fidelity(
                task=self.task, n=n, agreement=k / n, agreement_ci=wilson_interval(k, n, self.confidence),
                macro_f1=float(np.mean(f1)), r2=self._r2(self.sse, self.sum_y, self.sum_y2),
                confidence=self.confidence, per_class=per_class, complexity=comp, rows=self.rows,
            )

            def rule_score(j, rule):
                # Precision: share of covered rows where the network gives the rule's outcome.
                m = self.covered[j]
                return {"outcome": str(rule.outcome), "precision": self.hits[j] / m if m else None}
        else:
            out = Fidelity(
                task=self.task, n=n, agreement=None, agreement_ci=None, macro_f1=None,
                r2=self._r2(self.sse, self.sum_y, self.sum_y2), mae=self.sae / n, rmse=float(np.sqrt(self.sse / n)),
                confidence=self.confidence, complexity=comp, rows=self.rows,
            )
            total = self.sum_y + n * self._shift

            def rule_score(j, rule):
                m = self.covered[j]
                if self._additive:
                    # A term adds its weight rather than giving the value: what it covers is told
                    # by the network's mean output there against elsewhere.
                    return {"outcome": float(rule.outcome),
                            "network_mean": self.rule_sum[j] / m if m else None,
                            "network_mean_elsewhere": (total - self.rule_sum[j]) / (n - m) if n - m else None}
                return {"outcome": float(rule.outcome), "mae": self.rule_abs[j] / m if m else None}

        _add_rule_entries(out, rules, self.covered, self.decides, n, rule_score)
        return out


def evaluate(surrogate, oracle=None, rows=None, *, confidence: float = 0.95,
             chunk_rows: int = CHUNK_ROWS) -> Fidelity:
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
        Level of the agreement interval.
    chunk_rows : int
        Rows validated, queried and tallied at a time when the network is queried; the
        memory the evaluation needs beyond its input is that of one chunk.

    Returns
    -------
    Fidelity
    """
    if rows is None:
        raise ParameterError("fidelity.evaluate needs rows: a DistillationSet, a DataFrame or a Parquet file")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    surrogate._check_fitted()
    chunks, which = _chunks(surrogate, oracle, rows, int(chunk_rows))
    tally = FidelityTally(surrogate, confidence=confidence, rows=which)
    for X, net_out in chunks:
        tally.add(X, net_out)
    return tally.result()


def _add_rule_entries(out: Fidelity, rules, covered: np.ndarray, decides: np.ndarray, n: int, score) -> None:
    """Per rule (and the default): the rows it covers and decides, and the task's score of
    its outcome on them. In an additive model no rule decides alone (``decides`` is None) and
    the default entry is about the rows no rule covers."""
    additive = getattr(rules, "additive", False)
    for j, rule in enumerate(list(rules.rules) + [rules.default]):
        entry = {
            "index": j,
            "text": rule.text(),
            **{k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in score(j, rule).items()},
            "n_covered": int(covered[j]),
            "coverage": float(covered[j] / n),
            "decides": None if additive else float(decides[j] / n),
        }
        if j == len(rules.rules):
            out.default = entry
        else:
            out.rules.append(entry)
