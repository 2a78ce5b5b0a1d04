"""Which output column each row's explanation is about: one reading of a ``target`` argument
(a class label, an output index, or one of them per row) for every explainer."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ParameterError


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def target_indices(target: Any, n: int, k: int, labels: Sequence[Any] | None, *,
                   broadcast_one: bool = False) -> np.ndarray:
    """Output index per row, int64 of shape ``(n,)``.

    ``target`` is a class label (matched to ``labels`` by value or by its text; a boolean
    matches only a boolean label), an output index in ``0..k-1``, or a sequence of them with one
    per row (a one-element sequence stands for every row when ``broadcast_one``).
    """
    labels = None if labels is None else list(labels)

    def index(t: Any) -> int:
        if labels is not None:
            for i, c in enumerate(labels):
                if (_is_bool(c) == _is_bool(t) and c == t) or str(c) == str(t):
                    return i
        if isinstance(t, (int, np.integer)) and not _is_bool(t) and 0 <= int(t) < k:
            return int(t)
        known = f"one of the classes {labels}" if labels is not None else f"an output index in 0..{k - 1}"
        raise ParameterError(f"target {t!r} is not {known}")

    if hasattr(target, "detach"):  # a torch tensor
        target = target.detach().cpu().numpy()
    if isinstance(target, (list, tuple, np.ndarray, pd.Series)):
        seq = list(np.asarray(target, dtype=object).ravel())
        if broadcast_one and len(seq) == 1:
            seq = seq * n
        if len(seq) != n:
            raise ParameterError(f"target has {len(seq)} entries for {n} rows; give one per row or a single one")
        # Each distinct target is resolved once: rows share a handful of classes.
        codes, uniques = pd.factorize(pd.Series(seq, dtype=object), use_na_sentinel=False)
        return np.array([index(u) for u in uniques], dtype=np.int64)[codes]
    return np.full(n, index(target), dtype=np.int64)
