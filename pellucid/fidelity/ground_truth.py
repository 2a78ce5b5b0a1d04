"""The network against the user's own target: how good the thing being explained is.

Fidelity compares surrogates with the network; this compares the network with the target
column the user gave, on the distillation set's held-out observed rows where the target is
known. A surrogate can be faithful to a network that is itself wrong, and the report says so
next to the fidelity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import _validation as fmt
from ..errors import SchemaError
from ..extraction.dataset import DistillationSet
from .intervals import N_BOOT, WILSON, PoissonBootstrap, bootstrap_method, percentile_interval, r2_replicates, wilson


def ground_truth(dset: DistillationSet, y: pd.Series | None, target: str | None = None, *,
                 confidence: float = 0.95, n_boot: int = N_BOOT, random_state: int | None = 0) -> dict[str, Any] | None:
    """The network's accuracy (classification) or R² (regression) against the user's target.

    Parameters
    ----------
    dset : DistillationSet
        Its held-out observed rows are compared (``dset.origin`` names each one's row in the
        user's table; ``dset.labels`` and ``dset.outputs`` are the network's answers).
    y : pandas.Series or None
        The target column, one value per row of the user's table (missing values are left
        out). None gives None.
    target : str, optional
        The column's name, for the report.
    confidence : float
        Level of the intervals.
    n_boot, random_state
        Replicates and seed of the R² bootstrap (Poisson weights keyed on each compared row's
        position, as in :func:`pellucid.fidelity.evaluate`).

    Returns
    -------
    dict or None
        ``target``, ``n`` (rows with a known target), ``rows`` (``"holdout"``), and
        ``accuracy`` with its Wilson interval ``accuracy_ci`` (classification) or ``r2`` with
        its percentile bootstrap interval ``r2_ci`` (regression), ``intervals`` (the
        ``level`` and, per estimate, the ``methods``). Only ``target``, ``n`` and ``rows``
        when no held-out row has a known target.

    Raises
    ------
    SchemaError
        When a value of a classification target (in any row, not only the held-out ones) is
        not one of the network's classes (see :func:`check_target_classes`), or a
        regression target holds text.
    """
    if y is None:
        return None
    hold = np.flatnonzero(dset.is_holdout)
    truth = y.to_numpy()[dset.origin[hold]]
    known = ~pd.isna(truth)
    out: dict[str, Any] = {"target": target, "n": int(known.sum()), "rows": "holdout"}
    if not known.any():
        return out
    t = truth[known]
    if dset.task == "classification":
        classes = [_text(c) for c in dset.classes]
        check_target_classes(y, classes, target)
        t = np.array([_text(v) for v in t], dtype=object)
        pred = np.array([_text(v) for v in dset.labels[hold][known]], dtype=object)
        right = int(np.sum(pred == t))
        out.update(accuracy=right / len(t), accuracy_ci=wilson(right, len(t), confidence),
                   intervals={"level": confidence, "methods": {"accuracy": WILSON}})
        return out
    num = pd.to_numeric(pd.Series(t), errors="coerce")
    if num.isna().any():
        raise SchemaError(
            f"target column {target!r} holds non-numeric values (e.g. {t[num.isna().to_numpy()][0]!r}), "
            "but the network is a regression"
        )
    from sklearn.metrics import r2_score

    truth_f = num.to_numpy(dtype=float)
    pred = np.asarray(dset.outputs[hold][known], dtype=float)
    r2 = float(r2_score(truth_f, pred))
    boot = PoissonBootstrap(1, 1, n_boot=n_boot, random_state=random_state)
    boot.add(0, truth_f, (truth_f - pred) ** 2)
    totals = boot.totals()
    out.update(r2=r2, r2_ci=percentile_interval(r2_replicates(totals, totals.sums[:, 0]), r2, confidence),
               intervals={"level": confidence, "methods": {"r2": bootstrap_method(boot.n_boot, boot.seed)}})
    return out


def _text(v: Any) -> str:
    """A label as text, for matching a target with the classes: a CSV gives ``1`` (or ``1.0``,
    when the column has a missing value) where the network's classes say ``"1"``."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def check_target_classes(y: pd.Series, classes: list[str], target: str | None = None) -> None:
    """Every known value of a classification target must be one of the network's classes.

    A target that matches the classes only in part (``Bad`` in the data, ``bad`` in the
    network) would be scored as if every unmatched row were a mistake of the network: an
    accuracy silently too low. Values are compared as text (``1``, ``1.0`` and ``"1"`` are the
    same label).

    Parameters
    ----------
    y : pandas.Series
        The target, indexed by each row's identity (missing values are left out).
    classes : list of str
        The network's classes, as text.
    target : str, optional
        The column's name, for the message.

    Raises
    ------
    SchemaError
        Naming the unmatched values, how many rows hold them and the first such row, and the
        classes.
    """
    values = y.to_numpy(dtype=object)
    present = ~pd.isna(values)
    codes, uniques = pd.factorize(pd.Series(values[present], dtype=object))
    text = np.array([_text(u) for u in uniques], dtype=object)
    unmatched = ~np.isin(text, np.asarray(classes, dtype=object))
    if not unmatched.any():
        return
    bad_rows = np.flatnonzero(present)[unmatched[codes]]
    shown = [str(v) for v in text[unmatched][:10]]
    more = f" and {int(unmatched.sum()) - 10} more" if unmatched.sum() > 10 else ""
    raise SchemaError(
        f"target column {target!r} ({fmt.arg('target')}) holds value{'s' if len(shown) > 1 else ''} {shown}{more} "
        f"that {'are' if len(shown) > 1 else 'is'} not a class of the network ({len(bad_rows)} of "
        f"{int(present.sum())} rows, first at row {fmt.row(y.index[bad_rows[0]])}); the network's classes are {classes[:20]}. "
        f"Map the target's values to the classes, or name the classes in the order of the network's outputs "
        f"({fmt.arg('classes')})"
    )
