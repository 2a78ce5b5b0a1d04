"""Does an attribution say something true about the model? Three checks per method.

* :func:`completeness` — for methods with a completeness property (Integrated Gradients,
  expected gradients, LRP), how far the attributions' sum misses the output difference it
  should equal.
* :func:`deletion_insertion` — faithfulness curves: remove the features (pixels, patches) the
  attribution ranks highest first and watch the attributed output fall (deletion), or add them
  to a baseline first and watch it rise (insertion); the same for random orders, the reference
  to beat. Every row and step goes to the model in one batched query (chunked for memory).
* :func:`randomisation_check` — the model-parameter randomisation test of Adebayo et al.
  (2018, "Sanity checks for saliency maps"): attributions of a network whose layers were
  re-initialised must no longer look like those of the trained one.

:func:`evaluate_attributions` runs all three for a dict of methods and returns a table.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from .._targets import target_indices
from .._validation import plain
from ..errors import ParameterError
from ..oracle import Oracle
from ._base import Attribution, eval_mode, summary_row

__all__ = [
    "completeness",
    "deletion_insertion",
    "Faithfulness",
    "randomisation_check",
    "RandomisationCheck",
    "evaluate_attributions",
    "AttributionEvaluation",
]

# Memory bounds of one model call in deletion_insertion: rows of a table, numbers of a tensor.
_MAX_TABLE_ROWS = 65_536
_MAX_TENSOR_NUMBERS = 1 << 24
_IMAGE_STEPS = 20
_SUMMARIES = ("median", "mean", "mode")

Method = Callable[..., Attribution]


# ============================================================================ completeness
def completeness(attr: Attribution) -> dict[str, Any] | None:
    """How well the attributions add up, for methods that claim they do.

    The reference is the output difference the attributions should sum to,
    ``f(x) - f(baseline)`` (``f(x)`` for LRP), recovered per row as
    ``sum(attributions) - delta``.

    Returns
    -------
    dict or None
        None when the method has no completeness property (``attr.delta`` is None). Otherwise
        ``max_abs_delta``, ``mean_abs_delta``, ``mean_abs_gap`` (mean ``|f(x) - f(baseline)|``),
        ``max_relative`` and ``mean_relative`` (``|delta| / |f(x) - f(baseline)|`` over the rows
        where that difference is not ~0), ``n_rows`` and ``n_rows_no_gap`` (rows left out of
        the relative figures).
    """
    if not isinstance(attr, Attribution):
        raise ParameterError(f"completeness expects an Attribution, got {type(attr).__name__}")
    if attr.delta is None:
        return None
    n = len(attr)
    delta = np.asarray(attr.delta, dtype=float).reshape(-1)
    if delta.shape[0] != n:
        raise ParameterError(f"the {attr.method} attribution has {delta.shape[0]} deltas for {n} rows")
    total = np.asarray(attr.encoded, dtype=float).reshape(n, -1).sum(axis=1)
    gap = np.abs(total - delta)
    absd = np.abs(delta)
    ok = gap > 1e-9 * max(1.0, float(gap.max(initial=0.0)))
    rel = absd[ok] / gap[ok]
    return {
        "max_abs_delta": float(absd.max()),
        "mean_abs_delta": float(absd.mean()),
        "mean_abs_gap": float(gap.mean()),
        "max_relative": float(rel.max()) if rel.size else math.nan,
        "mean_relative": float(rel.mean()) if rel.size else math.nan,
        "n_rows": int(n),
        "n_rows_no_gap": int((~ok).sum()),
    }


# ============================================================================ deletion / insertion
@dataclass
class Faithfulness:
    """Deletion and insertion curves of one attribution, with random orders for reference.

    Curves are ``(rows, steps + 1)`` arrays of the attributed output; ``fractions`` is the
    share of features (pixels, patches) deleted or inserted at each step, from 0 to 1.
    Areas under the curves use the trapezoid rule over ``fractions``: lower deletion AUC and
    higher insertion AUC mean a more faithful ranking; a ranking should beat the random ones.
    """

    method: str
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def row_auc(self, curve: str) -> np.ndarray:
        """Per-row area under ``curve`` (``"deletion"``, ``"insertion"``, ``"random_deletion"``,
        ``"random_insertion"``)."""
        if curve not in ("deletion", "insertion", "random_deletion", "random_insertion"):
            raise ParameterError(f"unknown curve {curve!r}")
        return np.trapezoid(getattr(self, curve), self.fractions, axis=1)

    @property
    def deletion_auc(self) -> float:
        return float(self.row_auc("deletion").mean())

    @property
    def insertion_auc(self) -> float:
        return float(self.row_auc("insertion").mean())

    @property
    def random_deletion_auc(self) -> float:
        return float(self.row_auc("random_deletion").mean())

    @property
    def random_insertion_auc(self) -> float:
        return float(self.row_auc("random_insertion").mean())

    def summary(self) -> dict[str, float]:
        return {
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "random_deletion_auc": self.random_deletion_auc,
            "random_insertion_auc": self.random_insertion_auc,
        }

    def to_dict(self) -> dict[str, Any]:
        """The AUCs and the mean curves (JSON-ready)."""
        return {
            "method": self.method,
            **self.summary(),
            "fractions": self.fractions.tolist(),
            "mean_curves": {k: getattr(self, k).mean(axis=0).tolist()
                            for k in ("deletion", "insertion", "random_deletion", "random_insertion")},
            "params": plain(self.params, other=repr),
        }


def deletion_insertion(model: Any, inputs: Any, attr: Attribution, baseline: Any = None, steps: int | None = None,
                       target: Any = None, *, by: str = "signed", patch: int = 1, n_random: int = 1,
                       random_state: int | None = 0) -> Faithfulness:
    """Deletion and insertion curves of ``attr`` on ``model``.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        An Oracle of any kind (torch, scikit-learn, ONNX, callable) is asked through
        :meth:`Oracle.query` on raw rows when ``inputs`` is a DataFrame, so features are
        replaced by valid raw values; a bare module is called on its own input, replaced there.
    inputs : DataFrame, ndarray or Tensor
        The rows ``attr`` explains, in the same form as given to the method.
    attr : Attribution
        One row per input row: ``(rows, features)`` for tables, the input's shape (or its
        spatial shape, ``(rows, H, W)``) for images.
    baseline : optional
        What a deleted feature becomes. Tables with an Oracle and a DataFrame: "median"
        (default), "mean" or "mode" — the inputs' summary raw row, as the gradient methods
        build it (numeric median or mean, integer-valued columns rounded, categories' most
        frequent value) — or a raw row (Series, mapping or one-row DataFrame), or one row per
        input row. Tensors: "median" (default for tables), "mean", "zeros" (default for
        images), a number, one input row, or one per row.
    steps : int, optional
        Points of each curve after the start. Default: one per feature for tables, 20 for
        images (at most one per pixel or patch).
    target : optional
        The output followed. Default the one each row's attribution explains
        (``attr.targets``), else the predicted class; an Oracle's class labels are accepted.
    by : {"signed", "abs"}
        Rank by attribution (evidence for the output first) or by its magnitude.
    patch : int
        Images: square patches of this side are deleted together.
    n_random : int
        Random orders per row for the reference curves (their mean).
    random_state : int, optional
        Seed of the random orders.

    Returns
    -------
    Faithfulness
    """
    if not isinstance(attr, Attribution):
        raise ParameterError(f"deletion_insertion expects an Attribution as attr, got {type(attr).__name__}")
    if by not in ("signed", "abs"):
        raise ParameterError(f"by must be 'signed' or 'abs', got {by!r}")
    _positive_int(n_random, "n_random")
    _positive_int(patch, "patch")
    space = _make_space(model, inputs, attr, baseline, patch)
    scores = space.scores if by == "signed" else np.abs(space.scores)
    n, p = scores.shape
    if steps is None:
        steps = p if space.tabular else min(p, _IMAGE_STEPS)
    _positive_int(steps, "steps")
    steps = min(int(steps), p)
    counts = np.round(np.linspace(0, p, steps + 1)).astype(np.int64)
    s = steps + 1

    # Rank of each position per row: 0 = deleted first. Ties keep the positions' order.
    ranks = _ranks(-scores)
    rng = np.random.default_rng(random_state)
    random_ranks = [_ranks(rng.random((n, p))) for _ in range(int(n_random))]
    orders = [ranks, *random_ranks]

    # Per row: for each order, the deletion steps then the insertion steps (2 * s rows).
    per_row = 2 * s * len(orders)
    chunk = max(1, space.max_rows // per_row)
    out_chunks = []
    for start in range(0, n, chunk):  # chunks of rows for memory; each chunk is one batch
        rows = np.arange(start, min(n, start + chunk))
        removed = np.stack([o[rows][:, None, :] < counts[None, :, None] for o in orders], axis=1)  # (r, o, s, p)
        keep = np.stack([~removed, removed], axis=2)  # (r, o, 2, s, p): deletion keeps the unremoved
        m = keep.shape[1] * keep.shape[2] * keep.shape[3]
        batch_rows = np.repeat(rows, m)
        out_chunks.append(space.outputs(batch_rows, keep.reshape(-1, p)).reshape(len(rows), len(orders), 2, s, -1))
    raw = np.concatenate(out_chunks, axis=0)  # (n, o, 2, s, k)

    targets = _targets_for(space, attr, target, raw[:, 0, 0, 0, :])
    if targets is None:
        if raw.shape[-1] != 1:
            raise ParameterError(f"the model gives {raw.shape[-1]} outputs per row; pass target= to pick one")
        curves = raw[..., 0]
    else:
        curves = np.take_along_axis(raw, targets[:, None, None, None, None], axis=4)[..., 0]
    return Faithfulness(
        method=attr.method,
        fractions=counts / p,
        deletion=curves[:, 0, 0],
        insertion=curves[:, 0, 1],
        random_deletion=curves[:, 1:, 0].mean(axis=1),
        random_insertion=curves[:, 1:, 1].mean(axis=1),
        params={"steps": int(steps), "positions": int(p), "by": by, "patch": int(patch), "n_random": int(n_random),
                "random_state": random_state, "baseline": space.baseline_note, "space": space.kind,
                "output": space.output_note},
    )


def _ranks(keys: np.ndarray) -> np.ndarray:
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(keys.shape[1])[None, :].repeat(keys.shape[0], 0), axis=1)
    return ranks


class _Space:
    """Where features are replaced and how the model is asked (one implementation per form)."""

    kind: str
    tabular: bool
    scores: np.ndarray  # (n, positions)
    max_rows: int
    baseline_note: str
    output_note: str
    n_outputs_hint: int | None = None
    classes: list | None = None

    def outputs(self, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Model outputs ``(m, k)`` for the input rows ``rows`` with the positions where ``keep``
        is False replaced by the baseline."""
        raise NotImplementedError


class _FrameSpace(_Space):
    """Raw DataFrame rows asked through Oracle.query (any model kind)."""

    kind = "raw"
    tabular = True

    def __init__(self, oracle: Oracle, frame: pd.DataFrame, attr: Attribution, baseline: Any) -> None:
        self.oracle = oracle
        # Columns keep their own labels (the preprocess selects by them); features match by name.
        self.frame = frame.reset_index(drop=True)
        by_name = {str(c): c for c in self.frame.columns}
        unknown = [str(f) for f in attr.features if str(f) not in by_name]
        if unknown:
            raise ParameterError(f"the {attr.method} attributions name features {unknown} that are not columns of "
                                 f"inputs (columns: {list(by_name)[:20]})")
        self.scores = _tabular_values(attr, len(self.frame))
        named = _frame_baseline(self.frame.set_axis(list(by_name), axis=1), [str(f) for f in attr.features], baseline)
        self.base = {by_name[f]: v for f, v in named.items()}
        self.position = {by_name[str(f)]: j for j, f in enumerate(attr.features)}
        self.baseline_note = (baseline or "median") if baseline is None or isinstance(baseline, str) else "given"
        self.output_note = "oracle.query (probabilities or values)"
        self.max_rows = _MAX_TABLE_ROWS
        self._x = {c: self.frame[c].to_numpy() for c in self.frame.columns}
        self.classes = _oracle_classes(oracle)

    def outputs(self, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        data = {}
        for c, xv in self._x.items():  # a loop over columns; rows are one array each
            if c in self.base:
                data[c] = np.where(keep[:, self.position[c]], xv[rows], self.base[c][rows])
            else:
                data[c] = xv[rows]
        batch = pd.DataFrame(data)
        for c in batch.columns:
            if batch[c].dtype != self.frame[c].dtype:
                try:
                    batch[c] = batch[c].astype(self.frame[c].dtype)
                except (TypeError, ValueError):
                    pass  # keep what np.where gave (e.g. an integer column given a missing baseline)
        out = np.asarray(self.oracle.query(batch), dtype=float)
        return out.reshape(out.shape[0], -1)


class _TensorSpace(_Space):
    """The model's own input: a bare module, or an Oracle given arrays (no raw table)."""

    def __init__(self, model: Any, inputs: Any, attr: Attribution, baseline: Any, patch: int) -> None:
        oracle = model if isinstance(model, Oracle) else None
        self.oracle = oracle
        if oracle is None:
            module = model
            first = next(iter(module.parameters()), None)
            device = first.device if first is not None else torch.device("cpu")
            dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
            self.output_note = "the module's output (logits)"
        elif oracle.kind == "torch" and oracle.preprocess is not None:
            device, dtype = oracle.device or torch.device("cpu"), oracle.tensor_dtype
            self.output_note = "oracle.forward (probabilities or values)"
        elif oracle.preprocess is None:
            device, dtype = torch.device("cpu"), torch.float64
            self.output_note = "oracle.query (probabilities or values)"
        else:
            raise ParameterError(f"inputs given as an array to an Oracle with a preprocess and a {oracle.kind} "
                                 "model are ambiguous; pass the raw rows as a DataFrame")
        self.model = model
        self.x = _to_tensor(inputs, "inputs").to(device=device, dtype=dtype)
        n = self.x.shape[0]
        self.tabular = self.x.dim() == 2
        self.kind = "input" if self.tabular else "image"
        self.classes = _oracle_classes(oracle) if oracle is not None else None
        self.base = _tensor_baseline(baseline, self.x)
        self.baseline_note = (baseline or ("median" if self.tabular else "zeros")) \
            if baseline is None or isinstance(baseline, str) else "given"
        if self.tabular:
            self.scores = _tabular_values(attr, n, width=self.x.shape[1])
            self.patch = 1
            per_row = self.x.shape[1]
        else:
            self.scores, self.grid = _image_scores(attr, self.x, patch)
            self.patch = patch
            per_row = int(np.prod(self.x.shape[1:]))
        self.max_rows = max(1, min(_MAX_TABLE_ROWS, _MAX_TENSOR_NUMBERS // max(1, per_row)))

    def _mask(self, keep: np.ndarray) -> torch.Tensor:
        k = torch.as_tensor(keep, device=self.x.device)
        if self.tabular:
            return k
        hp, wp = self.grid
        h, w = self.x.shape[-2:]
        k = k.view(-1, hp, wp)
        if self.patch > 1:
            k = k.repeat_interleave(self.patch, 1).repeat_interleave(self.patch, 2)[:, :h, :w]
        # Broadcast over the channel axes between the row axis and the spatial ones.
        return k.view(k.shape[0], *([1] * (self.x.dim() - 3)), h, w)

    def outputs(self, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        idx = torch.as_tensor(rows, device=self.x.device)
        batch = torch.where(self._mask(keep), self.x[idx], self.base[idx])
        with torch.no_grad():
            if self.oracle is None:
                out = _run_module(self.model, batch)
            elif self.oracle.kind == "torch" and self.oracle.preprocess is not None:
                out = self.oracle.forward(batch)
            else:
                return _as_2d(np.asarray(self.oracle.query(batch.cpu().numpy()), dtype=float))
        return _as_2d(out.detach().cpu().double().numpy())


def _make_space(model: Any, inputs: Any, attr: Attribution, baseline: Any, patch: int) -> _Space:
    if isinstance(model, Oracle):
        if isinstance(inputs, pd.DataFrame):
            return _FrameSpace(model, inputs, attr, baseline)
        return _TensorSpace(model, inputs, attr, baseline, patch)
    if isinstance(model, torch.nn.Module):
        return _TensorSpace(model, inputs, attr, baseline, patch)
    raise ParameterError(f"model must be a pellucid Oracle or a torch.nn.Module; got {type(model).__name__}")


def _tabular_values(attr: Attribution, n: int, width: int | None = None) -> np.ndarray:
    values = np.asarray(attr.values, dtype=float)
    if values.ndim != 2:
        raise ParameterError(f"the {attr.method} attributions have shape {values.shape}; tabular inputs need "
                             "(rows, features)")
    if values.shape[0] != n:
        raise ParameterError(f"the {attr.method} attributions have {values.shape[0]} rows but inputs has {n}; "
                             "pass the rows they were computed for")
    if width is not None and values.shape[1] != width:
        raise ParameterError(f"the {attr.method} attributions have {values.shape[1]} features but the inputs have "
                             f"{width} columns (attributions on raw features need the Oracle and the raw DataFrame)")
    if not np.isfinite(values).all():
        raise ParameterError(f"the {attr.method} attributions hold NaN or infinite values")
    return values


def _image_scores(attr: Attribution, x: torch.Tensor, patch: int) -> tuple[np.ndarray, tuple[int, int]]:
    values = np.asarray(attr.values, dtype=float)
    n = x.shape[0]
    h, w = x.shape[-2:]
    if values.shape[0] != n:
        raise ParameterError(f"the {attr.method} attributions have {values.shape[0]} rows but inputs has {n}; "
                             "pass the rows they were computed for")
    if values.ndim < 3 or tuple(values.shape[-2:]) != (h, w):
        raise ParameterError(f"the {attr.method} attributions have shape {values.shape}; inputs of shape "
                             f"{tuple(x.shape)} need attributions of that shape or (rows, {h}, {w})")
    if not np.isfinite(values).all():
        raise ParameterError(f"the {attr.method} attributions hold NaN or infinite values")
    maps = values.reshape(n, -1, h, w).sum(axis=1)  # channels summed: a pixel is deleted in every channel
    hp, wp = -(-h // patch), -(-w // patch)
    if patch > 1:
        padded = np.zeros((n, hp * patch, wp * patch))
        padded[:, :h, :w] = maps
        maps = padded.reshape(n, hp, patch, wp, patch).sum(axis=(2, 4))
    return maps.reshape(n, hp * wp), (hp, wp)


def _frame_baseline(frame: pd.DataFrame, features: list[str], baseline: Any) -> dict[str, np.ndarray]:
    n = len(frame)
    if baseline is None or isinstance(baseline, str):
        how = "median" if baseline is None else baseline
        if how not in _SUMMARIES:
            raise ParameterError(f"unknown baseline {baseline!r}; with raw rows use 'median', 'mean', 'mode', a raw "
                                 "row or one row per input row")
        # The same summary row the gradient methods use for baseline="median" etc.
        row = summary_row(frame[features], how)
        return {c: _filled(frame[c], row[c].iloc[0], n) for c in features}
    if isinstance(baseline, pd.DataFrame):
        b = baseline.copy()
        b.columns = [str(c) for c in b.columns]
        missing = [c for c in features if c not in b.columns]
        if missing:
            raise ParameterError(f"baseline has no column for features {missing}")
        if len(b) == 1:
            return {c: _filled(frame[c], b[c].iloc[0], n) for c in features}
        if len(b) != n:
            raise ParameterError(f"baseline has {len(b)} rows; give one row or one per input row ({n})")
        return {c: b[c].to_numpy() for c in features}
    if isinstance(baseline, (pd.Series, Mapping)):
        b = {str(k): v for k, v in dict(baseline).items()}
        missing = [c for c in features if c not in b]
        if missing:
            raise ParameterError(f"baseline has no value for features {missing}")
        return {c: _filled(frame[c], b[c], n) for c in features}
    raise ParameterError("with raw DataFrame inputs, baseline must be a raw row (Series, mapping or one-row "
                         f"DataFrame) or a DataFrame with one row per input row; got {type(baseline).__name__}")


def _filled(col: pd.Series, value: Any, n: int) -> np.ndarray:
    arr = col.to_numpy()
    try:
        out = np.full(n, value, dtype=arr.dtype)
        if out.dtype.kind in "iub" and not pd.isna(value) and out[0] != value:
            raise ValueError
        return out
    except (TypeError, ValueError):
        return np.full(n, value, dtype=object)


def _to_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, pd.DataFrame):
        try:
            t = torch.as_tensor(x.to_numpy(dtype=np.float64))
        except (TypeError, ValueError):
            raise ParameterError(f"{what} has non-numeric columns; pass an Oracle with the preprocess that encodes "
                                 "them") from None
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise ParameterError(f"{what} must be a DataFrame, an array or a tensor of numbers ({e})") from None
    if t.dim() < 2 or t.shape[0] == 0:
        raise ParameterError(f"{what} must have a row axis and at least one row; got shape {tuple(t.shape)}")
    return t


def _tensor_baseline(baseline: Any, x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    if baseline is None:
        baseline = "median" if x.dim() == 2 else "zeros"
    if isinstance(baseline, str):
        if baseline == "zeros":
            return torch.zeros_like(x)
        if baseline not in ("median", "mean"):
            raise ParameterError(f"unknown baseline {baseline!r}; use 'zeros', 'median', 'mean', a number, one input "
                                 "row or one per row")
        arr = x.detach().cpu().double().numpy()
        row = np.median(arr, axis=0) if baseline == "median" else arr.mean(axis=0)  # median: midpoint, as pandas
        return torch.as_tensor(row, device=x.device, dtype=x.dtype).expand_as(x)
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        b = baseline.detach()
    else:
        try:
            b = torch.as_tensor(np.asarray(baseline, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise ParameterError(f"baseline must be a number, an array or a tensor of numbers ({e})") from None
    if b.dim() == x.dim() - 1:
        b = b.unsqueeze(0)  # one input row
    b = b.to(device=x.device, dtype=x.dtype)
    if tuple(b.shape[1:]) != tuple(x.shape[1:]) or b.shape[0] not in (1, n):
        raise ParameterError(f"baseline has shape {tuple(b.shape)}; give a number, one input row of shape "
                             f"{tuple(x.shape[1:])} or one per row {tuple(x.shape)}")
    if not bool(torch.isfinite(b).all()):
        raise ParameterError("baseline has NaN or infinite values")
    return b.expand_as(x)


def _run_module(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with eval_mode(module):
        out = module(x)
    if not isinstance(out, torch.Tensor):
        raise ParameterError(f"the module returned {type(out).__name__}; expected a tensor")
    return out


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1)


def _oracle_classes(oracle: Oracle | None) -> list | None:
    if oracle is None:
        return None
    try:
        return list(oracle.classes_) if oracle.task == "classification" else None
    except Exception:  # task or classes not known before the first query
        return None


def _targets_for(space: _Space, attr: Attribution, target: Any, first: np.ndarray) -> np.ndarray | None:
    """Output index followed per row: ``target``, else ``attr.targets``, else the predicted class."""
    n, k = first.shape
    if target is None:
        if attr.targets is not None:
            t = np.asarray(attr.targets, dtype=np.int64).reshape(-1)
            if t.shape[0] != n:
                raise ParameterError(f"the {attr.method} attribution has {t.shape[0]} targets for {n} rows")
            if (t < 0).any() or (t >= k).any():
                raise ParameterError(f"the {attr.method} attribution explains output {int(t.max())} but the model "
                                     f"gives {k} outputs per row")
            return t
        return None if k == 1 else first.argmax(axis=1)
    labels = space.classes if space.classes is None else list(space.classes)
    if k == 1:
        if target not in (0, None):
            raise ParameterError(f"the model gives one output per row; target must be None or 0, got {target!r}")
        return None

    return target_indices(target, n, k, labels)


# ============================================================================ randomisation
@dataclass
class RandomisationCheck:
    """The model-parameter randomisation test of one method.

    Attributes
    ----------
    method : str
    steps : DataFrame
        One row per step: ``step`` (0 = the trained model), ``layer`` (the layer re-initialised
        at that step), ``n_randomised`` (layers random so far), and per-row means of
        ``spearman_abs`` (Spearman rank correlation of |attributions| with the original ones),
        ``spearman`` (of the signed attributions), ``cosine`` (cosine similarity of the signed
        attributions), ``n_undefined`` (rows where a correlation is undefined: constant maps).
    passed : bool or None
        Cascading: whether ``spearman_abs`` with every layer random is below ``threshold``.
        None for independent randomisation (read the table) or when undefined.
    threshold : float
    cascade : bool
    """

    method: str
    steps: pd.DataFrame
    passed: bool | None
    threshold: float
    cascade: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> float:
        """Mean Spearman correlation of |attributions| at the last step."""
        return float(self.steps["spearman_abs"].iloc[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "passed": self.passed, "threshold": self.threshold, "cascade": self.cascade,
                "final_spearman_abs": _num(self.final),
                "steps": [{k: _num(v) for k, v in r.items()} for r in self.steps.to_dict(orient="records")],
                "params": plain(self.params, other=repr)}


def randomisation_check(method: Method, model: Any, inputs: Any, target: Any = None, *, cascade: bool = True,
                        random_state: int | None = 0, threshold: float = 0.5, verbose: int = 1,
                        original: Attribution | None = None) -> RandomisationCheck:
    """Re-initialise the network's layers and see whether the attributions notice.

    Layers (modules holding parameters of their own) are re-initialised from the output
    down, on a deep copy: the user's module is never touched. With ``cascade`` each step adds
    one more random layer; otherwise each layer is randomised alone on a fresh copy. The
    attributed output stays the one of the trained model (the same class per row).

    Parameters
    ----------
    method : callable
        ``method(model, inputs, target=...) -> Attribution``, e.g. ``gradient_x_input``.
    model : Oracle (torch) or torch.nn.Module
        For an Oracle, each randomised copy is wrapped in a new Oracle with the same
        preprocess, classes and output mode.
    inputs, target
        As for ``method``.
    cascade : bool
    random_state : int, optional
        Seed of the re-initialisation (the global torch RNG is left as it was).
    threshold : float
        The check passes when the mean Spearman correlation of |attributions| with every
        layer random is below this.
    verbose : int
        0 for no progress bar.
    original : Attribution, optional
        ``method``'s attributions of these ``inputs`` and ``target`` on the trained model, where
        they are already computed: they are compared as given instead of being computed again.
        (They must be what ``method`` gives on these rows; only their shape is checked.)

    Notes
    -----
    Rank correlation of magnitudes is the paper's measure, and it is strict with methods
    that multiply by the input: where an input is 0 (the background of an image, a
    standardised feature at its mean) gradient × input, Integrated Gradients with a zero
    baseline and LRP's z-rule give 0 whatever the weights, so those positions rank last
    before and after randomisation and keep ``spearman_abs`` high (Adebayo et al. found
    these maps dominated by the input). ``spearman`` (signed) and ``cosine`` show whether the
    values themselves still follow the trained model.
    """
    oracle = model if isinstance(model, Oracle) else None
    if oracle is not None:
        if oracle.kind != "torch":
            raise ParameterError(f"the randomisation check re-initialises a torch network's layers; this oracle wraps "
                                 f"a {oracle.kind} model")
        module = oracle.model
    elif isinstance(model, torch.nn.Module):
        module = model
    else:
        raise ParameterError(f"the randomisation check needs a torch model (a torch Oracle or a torch.nn.Module); "
                             f"got {type(model).__name__}")
    if not isinstance(module, torch.nn.Module):
        raise ParameterError(f"the randomisation check needs a torch.nn.Module underneath; got {type(module).__name__}")
    if not callable(method):
        raise ParameterError("method must be a callable method(model, inputs, target=...); "
                             f"got {type(method).__name__}")
    layers = [name for name, m in module.named_modules() if next(m.parameters(recurse=False), None) is not None]
    if not layers:
        raise ParameterError(f"the {type(module).__name__} has no layers with parameters to randomise")
    layers = layers[::-1]  # top-down: the output layer first

    if original is None:
        original = _call_method(method, model, inputs, target, "the trained model")
    elif not isinstance(original, Attribution):
        raise ParameterError(f"original must be the Attribution of the trained model on these rows; "
                             f"got {type(original).__name__}")
    elif len(original) != len(inputs):
        raise ParameterError(f"original holds attributions of {len(original)} rows; the inputs have {len(inputs)}")
    name = original.method
    fixed = _fixed_target(original, oracle, target)
    seed = 0 if random_state is None else int(random_state)

    records = [{"step": 0, "layer": None, "n_randomised": 0, **_similarity(original.values, original.values)}]
    quiet = verbose <= 0 or not sys.stderr.isatty()
    work = copy.deepcopy(module) if cascade else None
    for i, layer in enumerate(tqdm(layers, desc=f"randomising layers ({name})", disable=quiet, leave=False), 1):
        if not cascade:
            work = copy.deepcopy(module)
        # By name from named_modules: TorchScript modules have no get_submodule.
        _reinit(dict(work.named_modules())[layer], seed + i)
        randomised = _rebuild(oracle, work) if oracle is not None else work
        attr = _call_method(method, randomised, inputs, fixed, f"the model with layer {layer!r} randomised")
        if attr.values.shape != original.values.shape:
            raise ParameterError(f"{name} gave attributions of shape {attr.values.shape} for the randomised model "
                                 f"but {original.values.shape} for the trained one")
        records.append({"step": i, "layer": layer, "n_randomised": i if cascade else 1,
                        **_similarity(original.values, attr.values)})
    steps = pd.DataFrame.from_records(records)
    final = float(steps["spearman_abs"].iloc[-1])
    passed = bool(final < threshold) if cascade and not math.isnan(final) else None
    return RandomisationCheck(method=name, steps=steps, passed=passed, threshold=float(threshold), cascade=cascade,
                              params={"layers": layers, "random_state": random_state, "rows": len(original)})


def _call_method(method: Method, model: Any, inputs: Any, target: Any, what: str) -> Attribution:
    attr = method(model, inputs, target=target)
    if not isinstance(attr, Attribution):
        raise ParameterError(f"the method {getattr(method, '__name__', method)!r} returned {type(attr).__name__} on "
                             f"{what}; it must return an Attribution")
    return attr


def _fixed_target(original: Attribution, oracle: Oracle | None, target: Any) -> Any:
    """The trained model's attributed outputs, as a target the method accepts for any model."""
    if original.targets is None:
        return target
    idx = np.asarray(original.targets, dtype=np.int64)
    classes = _oracle_classes(oracle)
    if classes is not None:
        return [classes[i] for i in idx]
    return idx.tolist()


def _reinit(module: torch.nn.Module, seed: int) -> None:
    """Re-initialise one layer's own parameters (its ``reset_parameters``, else a normal draw
    of the same scale), seeded, leaving the global RNG as it was."""
    devices = sorted({p.device.index or 0 for p in module.parameters(recurse=False) if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    scale = float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 0.1
                    p.normal_(0.0, scale)


def _rebuild(oracle: Oracle, module: torch.nn.Module) -> Oracle:
    kw: dict[str, Any] = {"preprocess": oracle.preprocess, "batch_size": oracle.batch_size,
                          "device": oracle.device, "verbose": 0}
    try:
        task = oracle.task
    except Exception:
        task = None
    kw["task"] = task
    if task == "classification":
        kw["classes"] = _oracle_classes(oracle)
        kw["output"] = oracle.output_ if oracle.output_ in ("proba", "logits") else oracle.output
    rebuilt = Oracle(module, **kw)
    # The same preprocess, and a copy of the module in the same dtype: the encoded columns of
    # each raw feature are those the trained model's oracle found (finding them again costs
    # dozens of calls of the preprocess per randomised layer).
    maps = oracle.__dict__.get("_attribution_maps")
    if maps and rebuilt.tensor_dtype == oracle.tensor_dtype:
        rebuilt.__dict__["_attribution_maps"] = dict(maps)
    return rebuilt


def _similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    n = a.shape[0]
    a = np.asarray(a, dtype=float).reshape(n, -1)
    b = np.asarray(b, dtype=float).reshape(n, -1)
    rho_abs = _row_pearson(stats.rankdata(np.abs(a), axis=1), stats.rankdata(np.abs(b), axis=1))
    rho = _row_pearson(stats.rankdata(a, axis=1), stats.rankdata(b, axis=1))
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    cos = np.full(n, np.nan)
    cos[ok] = (a[ok] * b[ok]).sum(axis=1) / (na[ok] * nb[ok])
    undefined = np.isnan(rho_abs) | np.isnan(rho) | np.isnan(cos)
    return {"spearman_abs": _nanmean(rho_abs), "spearman": _nanmean(rho), "cosine": _nanmean(cos),
            "n_undefined": int(undefined.sum())}


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    out = np.full(x.shape[0], np.nan)
    ok = den > 0
    out[ok] = (x[ok] * y[ok]).sum(axis=1) / den[ok]
    return out


def _nanmean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


# ============================================================================ everything at once
@dataclass
class AttributionEvaluation:
    """Per-method summary of :func:`evaluate_attributions`.

    Attributes
    ----------
    table : DataFrame
        One row per method: ``method``, ``time_s`` (computing the attributions; NaN when given
        precomputed), ``completeness_max_relative``, ``completeness_mean_relative`` (NaN
        without a completeness property), ``deletion_auc``, ``insertion_auc``,
        ``random_deletion_auc``, ``random_insertion_auc``, ``sanity_spearman_abs`` (after every
        layer was randomised), ``sanity_passed``.
    details : dict
        Per method: ``completeness`` (dict or None), ``faithfulness``
        (:class:`Faithfulness`), ``sanity`` (:class:`RandomisationCheck` or None) and
        ``sanity_skipped`` (why, when it was not run).
    """

    table: pd.DataFrame
    details: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (NaN as None)."""
        methods = {}
        for name, d in self.details.items():
            comp = d["completeness"]
            methods[name] = {
                "completeness": None if comp is None else {k: _num(v) for k, v in comp.items()},
                "faithfulness": d["faithfulness"].to_dict(),
                "sanity": None if d["sanity"] is None else d["sanity"].to_dict(),
                "sanity_skipped": d.get("sanity_skipped"),
            }
        return {"table": [{k: _num(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")],
                "methods": methods}


def evaluate_attributions(model: Any, inputs: Any, methods: Mapping[str, Method | Attribution], *,
                          target: Any = None, baseline: Any = None, steps: int | None = None,
                          patch: int = 1, sanity: bool = True, sanity_rows: int | None = 64, n_random: int = 1,
                          random_state: int | None = 0, threshold: float = 0.5, verbose: int = 1
                          ) -> AttributionEvaluation:
    """Completeness, deletion/insertion AUCs and the randomisation check for several methods.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
    inputs : DataFrame, ndarray or Tensor
    methods : dict name -> callable or Attribution
        A callable ``method(model, inputs, target=...)`` is run (and timed); an Attribution
        computed beforehand is evaluated as is (no randomisation check: it needs the method).
    target, baseline, steps, patch, n_random, random_state
        As in :func:`deletion_insertion` (``target`` is also passed to the methods).
    sanity : bool
        Run :func:`randomisation_check` for callables on torch models.
    sanity_rows : int or None
        Rows used by the randomisation check (the first ones; None for all): it recomputes the
        attributions once per layer.
    threshold, verbose
        As in :func:`randomisation_check`.
    """
    if not isinstance(methods, Mapping) or not methods:
        raise ParameterError("methods must be a non-empty dict of name -> method or Attribution")
    if sanity_rows is not None:
        _positive_int(sanity_rows, "sanity_rows")
    torch_model = (isinstance(model, Oracle) and model.kind == "torch") or isinstance(model, torch.nn.Module)
    records, details = [], {}
    for name, m in methods.items():
        name = str(name)
        if isinstance(m, Attribution):
            attr, seconds = m, math.nan
        elif callable(m):
            t0 = time.perf_counter()
            attr = _call_method(m, model, inputs, target, "the model")
            seconds = time.perf_counter() - t0
        else:
            raise ParameterError(f"methods[{name!r}] must be a callable or an Attribution; got {type(m).__name__}")
        comp = completeness(attr)
        faith = deletion_insertion(model, inputs, attr, baseline=baseline, steps=steps, target=target, patch=patch,
                                   n_random=n_random, random_state=random_state)
        check, skipped = None, None
        if not sanity:
            skipped = "not asked"
        elif isinstance(m, Attribution):
            skipped = "given a precomputed Attribution: the check needs the method"
        elif not torch_model:
            skipped = "the model is not a torch network"
        else:
            sub, sub_target = _head(inputs, sanity_rows), _head_target(target, inputs, sanity_rows)
            check = randomisation_check(m, model, sub, target=sub_target, random_state=random_state,
                                        threshold=threshold, verbose=verbose)
        details[name] = {"completeness": comp, "faithfulness": faith, "sanity": check, "sanity_skipped": skipped,
                         "attribution": attr}
        records.append({
            "method": name,
            "time_s": seconds,
            "completeness_max_relative": math.nan if comp is None else comp["max_relative"],
            "completeness_mean_relative": math.nan if comp is None else comp["mean_relative"],
            **faith.summary(),
            "sanity_spearman_abs": math.nan if check is None else check.final,
            "sanity_passed": None if check is None else check.passed,
        })
    return AttributionEvaluation(pd.DataFrame.from_records(records), details)


def _head(inputs: Any, m: int | None) -> Any:
    if m is None:
        return inputs
    if isinstance(inputs, pd.DataFrame):
        return inputs.iloc[:m]
    return inputs[:m]


def _head_target(target: Any, inputs: Any, m: int | None) -> Any:
    if m is None or target is None or isinstance(target, str) or np.ndim(target) == 0:
        return target
    return target[:m]


# ============================================================================ small helpers
def _positive_int(v: Any, what: str) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{what} must be a positive integer, got {v!r}")


def _num(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v
