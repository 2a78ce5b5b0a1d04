"""Local explanations for the report: a few rows chosen for a reason, each with its LIME
contributions and reasons, the local model's fidelity, and its anchor rule."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._plain import cell as _cell
from .._validation import number as _num
from .._validation import plain as _plain
from ..errors import ParameterError
from ..oracle import Oracle
from .anchors import anchors
from .lime_local import lime


def pick_rows(
    rows: pd.DataFrame,
    outputs: np.ndarray,
    task: str,
    *,
    classes: Sequence[Any] | None = None,
    surrogate: Any = None,
    n_disagree: int = 2,
) -> list[tuple[Any, str]]:
    """Rows worth explaining one by one, as ``(index label, why)``.

    Classification: the most confident row of each predicted class, the least confident row,
    and up to ``n_disagree`` rows where ``surrogate`` predicts another class than the network
    (the ones the network is surest of). Regression: the highest, median and lowest output,
    and the rows where the surrogate is furthest from the network.
    """
    out = np.asarray(outputs, dtype=float)
    picks: list[tuple[Any, str]] = []
    idx = rows.index
    if task == "classification":
        label = out.argmax(axis=1)
        conf = out.max(axis=1)
        for c in np.unique(label):
            at = np.flatnonzero(label == c)
            name = classes[int(c)] if classes is not None else int(c)
            picks.append((idx[at[np.argmax(conf[at])]], f"most confident {name}"))
        picks.append((idx[int(np.argmin(conf))], "least confident"))
        if surrogate is not None and n_disagree:
            names = np.asarray(classes if classes is not None else np.arange(out.shape[1]), dtype=object)
            differ = np.flatnonzero(np.asarray(surrogate.predict(rows), dtype=object) != names[label])
            for i in differ[np.argsort(-conf[differ], kind="stable")][:n_disagree]:
                picks.append((idx[int(i)], f"{getattr(surrogate, 'name', 'the surrogate')} disagrees"))
    else:
        order = np.argsort(out, kind="stable")
        picks += [(idx[int(order[-1])], "highest output"), (idx[int(order[len(order) // 2])], "median output"),
                  (idx[int(order[0])], "lowest output")]
        if surrogate is not None and n_disagree:
            gap = np.abs(np.asarray(surrogate.predict(rows), dtype=float) - out)
            for i in np.argsort(-gap, kind="stable")[:n_disagree]:
                picks.append((idx[int(i)], f"{getattr(surrogate, 'name', 'the surrogate')} furthest"))
    seen: dict[Any, str] = {}
    for label_, why in picks:
        seen[label_] = f"{seen[label_]}; {why}" if label_ in seen else why
    return list(seen.items())


def summarise_local(
    oracle: Oracle,
    rows: pd.DataFrame,
    why: Sequence[str],
    reference: pd.DataFrame,
    *,
    num_samples: int = 5000,
    precision: float = 0.95,
    k: int = 3,
    anchor: bool = True,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """LIME and anchors for the rows given, as plain JSON for the report.

    Parameters
    ----------
    oracle : Oracle
    rows : DataFrame
        Raw rows to explain (index labels are kept as the rows' names).
    why : sequence of str
        Why each row is shown, in the order of ``rows``.
    reference : DataFrame
        The data the neighbourhoods and the anchors' coverage are drawn from.
    num_samples, precision, k, anchor, random_state
        LIME samples per row, the anchors' precision target, reasons shown, whether to search
        anchors, and the seed.
    """
    if len(why) != len(rows):
        raise ParameterError(f"why has {len(why)} entries for {len(rows)} rows")
    if rows.empty:
        return {"rows": [], "params": {}}
    ex = lime(oracle, rows, reference, num_samples=num_samples, random_state=random_state)
    found = (anchors(oracle, rows, reference, **anchor_options(precision, random_state)) if anchor else None)
    return local_report(ex, found, why, num_samples=num_samples, precision=precision, k=k, random_state=random_state)


def anchor_options(precision: float, random_state: int | None) -> dict[str, Any]:
    """The :func:`anchors` settings of the report's local explanations."""
    # Rules longer than four conditions explain nothing a reader can hold; stop the search there.
    return {"precision": precision, "max_length": 4, "random_state": random_state}


def local_report(ex: Any, found: Sequence[Any] | None, why: Sequence[str], *, num_samples: int, precision: float,
                 k: int, random_state: int | None) -> dict[str, Any]:
    """The report's plain JSON of LIME explanations ``ex`` (one per row, in order) and their
    anchors ``found`` (or None), however they were computed (here or on a cluster)."""
    rows = ex.rows
    reasons = ex.reasons(k)
    out = []
    for i, (label, reason_why) in enumerate(zip(rows.index, why)):
        contrib = ex.contributions.iloc[i]
        out.append({
            "row": _plain(label),
            "why": reason_why,
            "values": {str(c): _cell(v) for c, v in ex.rows.iloc[i].items()},
            "target": _plain(ex.target.iloc[i]),
            "target_label": str(ex.output_name.iloc[i]),
            "output": _num(ex.prediction_network.iloc[i]),
            "lime": {
                "contributions": {str(f): _num(v) for f, v in contrib.items()},
                # Fewer than k reasons leave empty slots, which pandas may hold as NaN, not None.
                "reasons": [r for r in reasons.iloc[i].tolist() if isinstance(r, str)],
                "local_r2": _num(ex.local_r2.iloc[i]),
                "prediction_local": _num(ex.prediction_local.iloc[i]),
                "intercept": _num(ex.intercept.iloc[i]),
            },
            "anchor": None if found is None else found[i].to_dict(),
        })
    return {"rows": out, "params": {"num_samples": num_samples, "precision": precision, "k": k,
                                    "random_state": random_state, "lime": ex.params}}

