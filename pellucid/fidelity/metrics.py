"""How faithfully a surrogate reproduces the network.

Fidelity is measured against the network's own answers, never against ground truth: the
question is whether the rules say what the network does. By default the rows are the held-out
*observed* rows of a distillation set, whose network outputs are already known, so evaluating
costs no query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import f1_score, mean_absolute_error, r2_score

from ..errors import ParameterError
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
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


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


def _targets(surrogate, oracle, rows) -> tuple[pd.DataFrame, np.ndarray, str]:
    if isinstance(rows, DistillationSet):
        part = rows.holdout if rows.is_holdout.any() else rows
        return part.rows, part.outputs, ("holdout" if rows.is_holdout.any() else "all")
    if isinstance(rows, pd.DataFrame):
        if oracle is None:
            raise ParameterError("fidelity.evaluate needs the oracle to query the network on a DataFrame of rows")
        canon = surrogate.schema_.validate(rows, what="evaluation rows")
        return canon, oracle.query(canon), "given"
    raise ParameterError(f"rows must be a DistillationSet or a pandas DataFrame, got {type(rows).__name__}")


def evaluate(surrogate, oracle=None, rows=None, *, confidence: float = 0.95) -> Fidelity:
    """Measure a fitted surrogate against the network.

    Parameters
    ----------
    surrogate : Surrogate
        A fitted pellucid surrogate.
    oracle : Oracle, optional
        Queried only when ``rows`` is a DataFrame.
    rows : DistillationSet or pandas.DataFrame
        A distillation set (its held-out observed rows are used, outputs already known) or raw
        rows to query the network on.
    confidence : float
        Level of the agreement interval.

    Returns
    -------
    Fidelity
    """
    if rows is None:
        raise ParameterError("fidelity.evaluate needs rows: a DistillationSet or a DataFrame")
    surrogate._check_fitted()
    X, net_out, which = _targets(surrogate, oracle, rows)
    n = len(X)
    if n == 0:
        raise ParameterError("fidelity.evaluate got no rows to evaluate on")
    rules = surrogate.rules_
    cov = rules.coverage_matrix(X)
    fires = rules.firing_rule(X)
    task = surrogate.task_
    comp = surrogate.complexity()
    if task == "classification":
        classes = np.asarray(surrogate.classes_, dtype=object)
        net_idx = net_out.argmax(axis=1)
        sur_p = rules.predict_proba(X)
        # Labels as the surrogate predicts them (a logistic score just above 0 is class 1
        # even where its probability rounds to 0.5).
        sur_idx = pd.Index(list(classes), dtype=object).get_indexer(np.asarray(rules.predict(X), dtype=object))
        agree = sur_idx == net_idx
        k = int(agree.sum())
        per_class = []
        for c in range(len(classes)):
            is_c, said_c = net_idx == c, sur_idx == c
            per_class.append(
                {
                    "class": str(classes[c]),
                    "n_network": int(is_c.sum()),
                    "n_surrogate": int(said_c.sum()),
                    "agreement": float(agree[is_c].mean()) if is_c.any() else None,
                    "precision": float(agree[said_c].mean()) if said_c.any() else None,
                }
            )
        r2 = float(r2_score(net_out, sur_p, multioutput="variance_weighted")) if n > 1 else None
        out = Fidelity(
            task=task,
            n=n,
            agreement=k / n,
            agreement_ci=wilson_interval(k, n, confidence),
            macro_f1=float(f1_score(net_idx, sur_idx, labels=range(len(classes)), average="macro", zero_division=0)),
            r2=r2,
            confidence=confidence,
            per_class=per_class,
            complexity=comp,
            rows=which,
        )
        outcome_idx = {c: i for i, c in enumerate(classes)}

        def rule_score(rule, m):
            # Precision: share of covered rows where the network gives the rule's outcome.
            hit = net_idx[m] == outcome_idx[rule.outcome]
            return {"outcome": str(rule.outcome), "precision": float(hit.mean()) if m.any() else None}

        _add_rule_entries(out, rules, cov, fires, rule_score)
        return out
    # Regression: the surrogate should reproduce the network's output values.
    sur = rules.predict(X).astype(float)
    err = sur - net_out
    out = Fidelity(
        task=task,
        n=n,
        agreement=None,
        agreement_ci=None,
        macro_f1=None,
        r2=float(r2_score(net_out, sur)) if n > 1 else None,
        mae=float(mean_absolute_error(net_out, sur)),
        rmse=float(np.sqrt(np.mean(err**2))),
        confidence=confidence,
        complexity=comp,
        rows=which,
    )

    additive = getattr(rules, "additive", False)

    def rule_score(rule, m):
        if additive:
            # A term adds its weight rather than giving the value: what it covers is told by
            # the network's mean output there against elsewhere.
            inside = float(net_out[m].mean()) if m.any() else None
            outside = float(net_out[~m].mean()) if (~m).any() else None
            return {"outcome": float(rule.outcome), "network_mean": inside, "network_mean_elsewhere": outside}
        mae = float(np.abs(net_out[m] - float(rule.outcome)).mean()) if m.any() else None
        return {"outcome": float(rule.outcome), "mae": mae}

    _add_rule_entries(out, rules, cov, fires, rule_score)
    return out


def _add_rule_entries(out: Fidelity, rules, cov: np.ndarray, fires: np.ndarray, score) -> None:
    """Per rule (and the default): the rows it covers and decides, and the task's score of
    its outcome on them. In an additive model no rule decides alone (``decides`` is None) and
    the default entry is about the rows no rule covers."""
    additive = getattr(rules, "additive", False)
    for j, rule in enumerate(list(rules.rules) + [rules.default]):
        is_default = j == len(rules.rules)
        m = fires == j if is_default else cov[:, j]
        entry = {
            "index": j,
            "text": rule.text(),
            **score(rule, m),
            "n_covered": int(m.sum()),
            "coverage": float(m.mean()),
            "decides": None if additive else float((fires == j).mean()),
        }
        if is_default:
            out.default = entry
        else:
            out.rules.append(entry)
