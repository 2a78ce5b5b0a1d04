"""The distillation set: rows in raw units with the network's answers.

:class:`DistillationSet` is what :func:`pellucid.extraction.distill` and
:func:`pellucid.extraction.read_distillation` return and what every surrogate is fitted on and
every fidelity measured on. It lives here, apart from the code that makes it, so that those
modules (distill, stream) and the ones that read it (surrogates, fidelity, attribution) import
it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..schema import Schema

#: The source of the rows taken from the user's data (every other source is a sampler's name).
OBSERVED = "observed"

#: Log-odds are clipped here: beyond it the network is sure, and a row it is sure about should
#: not pull a tree's squared error more than a few unsure rows together.
SCORE_CLIP = 6.0


def network_scores(outputs: np.ndarray, task: str) -> np.ndarray:
    """The network's answers as scores a regression tree can grow on: the log-odds of the
    second class (two classes) or the centred log-probabilities (more), clipped at
    ±:data:`SCORE_CLIP`; a regression's outputs as they are."""
    if task != "classification":
        return np.asarray(outputs, dtype=np.float64)
    logp = np.log(np.clip(np.asarray(outputs, dtype=np.float64), 1e-9, 1.0))
    if logp.shape[1] == 2:
        return np.clip(logp[:, 1] - logp[:, 0], -SCORE_CLIP, SCORE_CLIP)
    return np.clip(logp - logp.mean(axis=1, keepdims=True), -SCORE_CLIP, SCORE_CLIP)


@dataclass
class DistillationSet:
    """Rows in raw units with the network's answers.

    Attributes
    ----------
    rows : pandas.DataFrame
        Canonical raw rows (see :meth:`Schema.validate`), index 0..n-1.
    outputs : numpy.ndarray
        Class probabilities, shape (n, n_classes), or regression outputs, shape (n,).
    weights : numpy.ndarray
        Sample weight of each row: 1, except for rows of an active sampler that weighs them
        (``boundary`` gives importance weights that keep the data's distribution).
    source : numpy.ndarray
        The strategy that made each row (``observed``, ``perturb``, ``marginal``,
        ``boundary``, ...).
    is_holdout : numpy.ndarray
        True for the held-out observed rows.
    origin : numpy.ndarray
        For observed rows, their position in the reference table; -1 for synthetic rows.
    is_validation : numpy.ndarray, optional
        True for the observed training rows :func:`~pellucid.extraction.distill` held back
        from its samplers, which a frontier holds back from its fits to choose among them
        (:func:`pellucid.fidelity.frontier.validation_split`): no synthetic row was drawn from
        them. None when the set marks none (a set read from a file, or made without them).
    reference_index : pandas.Index, optional
        The reference table's row labels (its index), kept by reference, not copied: a row's
        identity in every section of a report is its label there (:meth:`row_ids`).
    schema : Schema
    task : str
        ``classification`` or ``regression``.
    classes : numpy.ndarray or None
        Class labels, in the order of the output columns.
    n_queries : int
        Rows sent to the network to build the set.
    params : dict
        How the set was made (strategy counts, holdout share, seed), for the report; under
        ``"active"``, what each active sampler recorded (e.g. the internal tree's
        disagreement with the network in each round of ``boundary``).
    """

    rows: pd.DataFrame
    outputs: np.ndarray
    weights: np.ndarray
    source: np.ndarray
    is_holdout: np.ndarray
    schema: Schema
    task: str
    classes: np.ndarray | None = None
    n_queries: int = 0
    params: dict = field(default_factory=dict)
    origin: np.ndarray | None = None
    reference_index: pd.Index | None = field(default=None, repr=False)
    is_validation: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = np.full(len(self.rows), -1)

    def row_ids(self, positions: Any = None) -> list[str | None]:
        """The identity of rows of this set in the user's data, as text: the reference
        table's label of each observed row (its position in the file when the table was read
        from one, or the id column's value), None for a synthetic row.

        Parameters
        ----------
        positions : array of int, optional
            Positions in this set (default: every row).
        """
        origin = self.origin if positions is None else self.origin[np.asarray(positions, dtype=int)]
        labels = self.reference_index
        return [None if o < 0 else str(o if labels is None else labels[int(o)]) for o in origin]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        """The network's class labels (classification) or outputs (regression)."""
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[self.outputs.argmax(axis=1)]
        return self.outputs

    def subset(self, mask: np.ndarray) -> DistillationSet:
        mask = np.asarray(mask)
        return DistillationSet(
            rows=self.rows[mask].reset_index(drop=True),
            outputs=self.outputs[mask],
            weights=self.weights[mask],
            source=self.source[mask],
            is_holdout=self.is_holdout[mask],
            schema=self.schema,
            task=self.task,
            classes=self.classes,
            n_queries=self.n_queries,
            params=self.params,
            origin=self.origin[mask],
            reference_index=self.reference_index,
            is_validation=None if self.is_validation is None else self.is_validation[mask],
        )

    @property
    def train(self) -> DistillationSet:
        """The rows surrogates learn from (observed training rows and synthetic rows)."""
        return self.subset(~self.is_holdout)

    @property
    def holdout(self) -> DistillationSet:
        """Held-out observed rows, never used to fit: fidelity is measured here."""
        return self.subset(self.is_holdout)

    def summary(self) -> dict[str, Any]:
        """Row counts per strategy and split, for the report."""
        counts: dict[str, dict[str, int]] = {}
        for src in pd.unique(self.source):
            m = self.source == src
            counts[str(src)] = {"train": int((m & ~self.is_holdout).sum()), "holdout": int((m & self.is_holdout).sum())}
        out = {
            "n_rows": len(self),
            "n_train": int((~self.is_holdout).sum()),
            "n_holdout": int(self.is_holdout.sum()),
            "n_queries": int(self.n_queries),
            "by_strategy": counts,
            "task": self.task,
            "classes": None if self.classes is None else [str(c) for c in self.classes],
            **{k: v for k, v in self.params.items() if k not in ("by_strategy",)},
        }
        if self.task == "classification":
            lab = self.labels
            out["label_share"] = {
                str(c): {
                    split: float(np.mean(lab[m] == c)) if m.any() else 0.0
                    for split, m in (("train", ~self.is_holdout), ("holdout", self.is_holdout))
                }
                for c in self.classes
            }
        return out


def check_validation_share(share: Any) -> None:
    """A validation share is None, 0 or a number in (0, 1); anything else is a ParameterError
    that names it."""
    if share is None or (not isinstance(share, bool) and isinstance(share, Real) and 0 <= share < 1):
        return
    raise ParameterError(f"validation must be a share between 0 and 1 (or None), got {share!r}")


def validation_count(m: int, share: float | None) -> int | None:
    """How many of ``m`` observed training rows a validation ``share`` holds back; None for no
    share, or fewer than 10 rows to hold back or to keep."""
    if not share:
        return None
    k = int(round(share * m))
    return None if k < 10 or m - k < 10 else k


def validation_rows(m: int, share: float | None, random_state: int | None) -> np.ndarray | None:
    """Which of ``m`` observed training rows are held back for validation (a boolean mask),
    seeded apart from the set's other draws; None where :func:`validation_count` holds none."""
    k = validation_count(m, share)
    if k is None:
        return None
    rng = np.random.default_rng(None if random_state is None else [int(random_state), 7919])
    mask = np.zeros(m, dtype=bool)
    mask[rng.choice(m, size=k, replace=False)] = True
    return mask


def seen_rows(held: np.ndarray | None, rows: pd.DataFrame, outputs: np.ndarray, weights: np.ndarray
              ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The training rows queried so far (the observed ones first), their outputs and weights,
    less the rows held back: what an active sampler sees."""
    if held is None:
        return rows, outputs, weights
    seen = np.concatenate([~held, np.ones(len(rows) - len(held), dtype=bool)])
    return rows[seen].reset_index(drop=True), outputs[seen], weights[seen]


def validation_mask(held: np.ndarray | None, n_rows: int) -> np.ndarray | None:
    """``is_validation`` of a set of ``n_rows`` whose first rows are the observed training rows."""
    if held is None:
        return None
    out = np.zeros(n_rows, dtype=bool)
    out[:len(held)] = held
    return out


__all__ = ["OBSERVED", "DistillationSet", "check_validation_share", "seen_rows", "validation_count", "validation_mask",
           "validation_rows"]
