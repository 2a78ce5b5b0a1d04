"""Occlusion: how much the attributed output drops when a feature (or an image patch) is
replaced by a baseline value. Needs only queries, so it works for any model.

* An :class:`~pellucid.Oracle` of any kind (torch, scikit-learn, ONNX, callable) with raw rows
  (a DataFrame; for non-torch oracles also an array of raw rows): each raw feature in turn takes
  the baseline's raw value, and every substitution of a batch of rows goes to the model in one
  query. A categorical feature is replaced as a whole, so there is nothing to sum back.
* A torch module (or a torch Oracle with model-input tensors/arrays): input columns, groups of
  them (``feature_mask``, as captum ``FeatureAblation``) or sliding windows over an image
  (``sliding_window_shapes``/``strides``, as captum ``Occlusion``) are set to the baseline.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch

from .. import _device
from ..errors import ModelError, ParameterError
from ..oracle import Oracle
from ._base import SUMMARIES, Attribution, prepare, resolve_targets, summary_row

__all__ = ["occlusion"]

_MAX_QUERY_ROWS = 2**18  # rows per query (raw path)


def occlusion(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
              feature_mask: Any = None, sliding_window_shapes: tuple[int, ...] | None = None,
              strides: int | tuple[int, ...] | None = None, reference: Any = None,
              batch_size: int | None = None, random_state: Any = None) -> Attribution:
    """Occlusion (feature ablation): ``f(x) - f(x with a feature replaced by the baseline)``.

    Parameters
    ----------
    model : Oracle (any kind) or torch.nn.Module
    inputs : DataFrame, ndarray or Tensor
        Raw rows for an Oracle (a DataFrame; an array is taken as raw rows for a non-torch
        oracle and as the model input for a torch one), the model's input for a module.
    target : None, int, class label or one per row
        The output attributed; None: each row's predicted class (or the single output).
    baseline : None, "mean", "median", "mode", number, or rows
        Raw path: None means "mean", a valid raw row summarising ``reference`` (else the
        inputs): numeric mean (integer columns rounded), most frequent category; or raw rows
        (a Series or frame with one row, one per input row, or several rows whose results are
        averaged). Tensor path: None means 0 (captum's default); a number, a summary, or rows
        in the inputs' form (one, or one per input row).
    feature_mask : array or Tensor of int, optional
        Tensor path: the shape of one input row (or with a leading 1); inputs with the same id
        are replaced together and share one attribution (captum ``FeatureAblation``).
    sliding_window_shapes : tuple of int, optional
        Tensor path: the patch shape (without the row axis), e.g. ``(1, 3, 3)`` for 1-channel
        images; every element's attribution is the mean over the patches covering it (captum
        ``Occlusion``).
    strides : int or tuple of int, optional
        Steps between patches (default 1 per axis).
    reference : DataFrame or array, optional
        Population rows for summary baselines (and the raw-feature map of a torch Oracle).
    batch_size : int, optional
        Rows per model call (stacked substitutions); by default about 8 million input values
        per pass for tensors and 262,144 rows per query for raw rows.
    random_state : optional
        Unused: occlusion draws nothing (accepted so every method is called alike).

    Returns
    -------
    Attribution
        Raw path: ``values`` ``(rows, raw features)``; ``encoded`` is the same array (the model's
        input is never touched); ``params["space"] == "raw"``.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ParameterError(f"batch_size must be a positive integer; got {batch_size!r}")
    oracle = model if isinstance(model, Oracle) else None
    raw_rows = isinstance(inputs, pd.DataFrame) or (oracle is not None and oracle.kind != "torch"
                                                    and not isinstance(inputs, torch.Tensor))
    if oracle is not None and raw_rows:
        if feature_mask is not None or sliding_window_shapes is not None:
            raise ParameterError("feature_mask and sliding_window_shapes apply to model-input tensors; with raw "
                                 "rows every raw feature is replaced as a whole")
        return _raw_occlusion(oracle, inputs, target, baseline, reference, batch_size)
    if oracle is not None and oracle.kind != "torch":
        raise ModelError(f"this oracle wraps a {oracle.kind} model: give occlusion raw rows (a DataFrame), "
                         "not tensors")
    return _tensor_occlusion(model, inputs, target, baseline, feature_mask, sliding_window_shapes, strides,
                             reference, batch_size)


# ---------------------------------------------------------------------------- raw rows
def _raw_occlusion(oracle: Oracle, inputs: Any, target: Any, baseline: Any, reference: Any,
                   batch_size: int | None) -> Attribution:
    as_array = not isinstance(inputs, pd.DataFrame)
    X = _frame(inputs, "inputs")
    if len(X) == 0:
        raise ParameterError("inputs has no rows")
    names = tuple(str(c) for c in X.columns)
    if baseline is None:
        baseline = "mean"
    info: dict[str, Any]
    if isinstance(baseline, str):
        if baseline not in SUMMARIES:
            raise ParameterError(f"unknown baseline {baseline!r}; with raw rows use 'mean', 'median', 'mode' or raw "
                                 "rows (a Series or DataFrame)")
        source = X if reference is None else _frame(reference, "reference")
        if list(map(str, source.columns)) != list(names):
            raise ParameterError(f"reference has columns {list(map(str, source.columns))[:12]}; the inputs have "
                                 f"{list(names)[:12]}")
        base = summary_row(source, baseline)
        info = {"baseline": baseline, "baseline_row": base.iloc[0].to_dict()}
    elif isinstance(baseline, (pd.Series, pd.DataFrame, np.ndarray, list)):
        base = baseline.to_frame().T if isinstance(baseline, pd.Series) else _frame(baseline, "baseline")
        if base.ndim != 2 or base.shape[1] != X.shape[1]:
            raise ParameterError(f"baseline has shape {base.shape}; it needs the inputs' {X.shape[1]} columns")
        if list(map(str, base.columns)) != list(names):
            if isinstance(baseline, (pd.Series, pd.DataFrame)):
                raise ParameterError(f"baseline has columns {list(map(str, base.columns))[:12]}; the inputs have "
                                     f"{list(names)[:12]}")
            base.columns = X.columns
        base = base.reset_index(drop=True)
        info = {"baseline": "rows", "baseline_rows": len(base)}
        if len(base) == 1:
            info["baseline_row"] = base.iloc[0].to_dict()
    else:
        raise ParameterError(f"with raw rows the baseline must be 'mean', 'median', 'mode' or raw rows; got "
                             f"{type(baseline).__name__} (a number cannot stand for a categorical feature)")
    paired = len(base) == len(X) and len(base) > 1
    B = 1 if paired else len(base)
    p = X.shape[1]
    n = len(X)
    copies = 1 + p * B
    per = max(1, (batch_size or _MAX_QUERY_ROWS) // copies)
    f_x_all, drops = [], []
    targets_all = None
    for start in range(0, n, per):
        stop = min(start + per, n)
        rows = X.iloc[start:stop].reset_index(drop=True)
        frames = [rows]
        for j, col in enumerate(X.columns):
            for b in range(B):
                f = rows.copy()
                value = base[col].iloc[start:stop].to_numpy() if paired else base[col].iloc[b]
                f[col] = _fill(f[col], value)
                frames.append(f)
        big = pd.concat(frames, ignore_index=True)
        out = oracle.query(big.to_numpy() if as_array else big)
        m = stop - start
        first = out[:m]
        t = _targets_for(target, first, start, stop, n, oracle)
        rest = out[m:].reshape(p, B, m, *out.shape[1:])
        if t is None:
            fx = first.reshape(m)
            fj = rest.reshape(p, B, m).mean(axis=1)
        else:
            fx = first[np.arange(m), t]
            fj = rest[:, :, np.arange(m), t].mean(axis=1)
            targets_all = t if targets_all is None else np.concatenate([targets_all, t])
        f_x_all.append(fx)
        drops.append((fx[None, :] - fj).T)
    values = np.concatenate(drops)
    outputs = np.concatenate(f_x_all)
    return Attribution(values=values, method="occlusion", features=names, targets=targets_all, outputs=outputs,
                       encoded=values, params={"space": "raw", "pairing": "paired" if paired else
                                               ("single" if B == 1 else "distribution"), **info})


def _targets_for(target: Any, first: np.ndarray, start: int, stop: int, n: int, oracle: Oracle) -> np.ndarray | None:
    if target is None or isinstance(target, str) or np.ndim(target) == 0:
        t = resolve_targets(target, first, stop - start, oracle)
    else:
        seq = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target, dtype=object).ravel()
        if len(seq) not in (1, n):
            raise ParameterError(f"target has {len(seq)} entries for {n} rows; give one per row or a single one")
        t = resolve_targets(seq if len(seq) == 1 else seq[start:stop], first, stop - start, oracle)
    return None if t is None else t.numpy()


def _fill(column: pd.Series, value: Any) -> pd.Series:
    """``column`` with every entry replaced by ``value`` (a scalar or one per row), keeping the dtype."""
    new = pd.Series(np.broadcast_to(np.asarray(value, dtype=object), len(column)), index=column.index)
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(new, dtype=column.dtype), index=column.index)
    try:
        return new.astype(column.dtype)
    except (TypeError, ValueError):
        return new.infer_objects()


def _frame(rows: Any, what: str) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, pd.Series):
        return rows.to_frame().T
    arr = np.asarray(rows)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ParameterError(f"{what} must be a table of rows; got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


# ---------------------------------------------------------------------------- tensors
def _tensor_occlusion(model: Any, inputs: Any, target: Any, baseline: Any, feature_mask: Any,
                      windows: tuple[int, ...] | None, strides: Any, reference: Any, batch_size: int | None
                      ) -> Attribution:
    if feature_mask is not None and windows is not None:
        raise ParameterError("give feature_mask or sliding_window_shapes, not both")
    p = prepare(model, inputs, target, reference=reference)
    shape = tuple(p.x.shape[1:])
    if baseline is None:
        baseline = 0.0
    base, info = p.baseline(baseline)
    if base.shape[0] not in (1, p.n):
        raise ParameterError(f"baseline has {base.shape[0]} rows; occlusion on tensors takes one row or one per input "
                             f"row ({p.n})")
    if windows is not None:
        masks, F, how = _window_masks(shape, windows, strides), _window_count(shape, windows, strides), "windows"
    else:
        masks, F, how = _group_masks(shape, feature_mask, p.x.device)
    n = p.n
    with torch.no_grad():
        f_x = _outputs(p, p.x, p.targets)
        per = max(1, (batch_size // n) if batch_size else _device.max_elements(p.x.device) // max(1, n * int(np.prod(shape))))
        total = torch.zeros_like(p.x)
        counts = torch.zeros(shape, dtype=p.x.dtype, device=p.x.device)
        b = base.unsqueeze(0)  # (1, 1 or n, *shape)
        x = p.x.unsqueeze(0)
        while True:
            chunk = [m for _, m in zip(range(per), masks)]
            if not chunk:
                break
            M = torch.stack(chunk).to(device=p.x.device, dtype=p.x.dtype).unsqueeze(1)  # (k, 1, *shape)
            ablated = x * (1 - M) + b * M
            k = M.shape[0]
            t = None if p.targets is None else p.targets.repeat(k)
            out = _outputs(p, ablated.reshape(k * n, *shape), t).view(k, n)
            diff = f_x.unsqueeze(0) - out  # (k, n)
            total += (diff.view(k, n, *([1] * len(shape))) * M).sum(dim=0)
            counts += M.sum(dim=(0, 1))
    attr = total / counts.clamp(min=1)
    return p.result(attr, "occlusion", outputs=f_x, space="input", features_occluded=int(F), mode=how,
                    **({"sliding_window_shapes": tuple(windows), "strides": _strides(shape, windows, strides)}
                       if windows is not None else {}), **info)


def _outputs(p: Any, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    out = p.fn(x)
    return p.select(out, targets).detach().to(x.dtype)


def _group_masks(shape: tuple[int, ...], feature_mask: Any, device: Any) -> tuple[Iterator[torch.Tensor], int, str]:
    if feature_mask is None:
        size = int(np.prod(shape))
        ids = torch.arange(size, device=device).view(shape)
        return ((ids == i) for i in range(size)), size, "elements"
    fm = torch.as_tensor(np.asarray(feature_mask.cpu() if isinstance(feature_mask, torch.Tensor) else feature_mask),
                         device=device)
    if fm.is_floating_point() and not bool((fm == fm.round()).all()):
        raise ParameterError("feature_mask must hold integer group ids")
    if tuple(fm.shape) == (1, *shape):
        fm = fm[0]
    if tuple(fm.shape) != shape:
        raise ParameterError(f"feature_mask has shape {tuple(fm.shape)}; it needs the shape of one input row {shape}")
    fm = fm.to(torch.int64)
    ids = torch.unique(fm).tolist()
    return ((fm == i) for i in ids), len(ids), "groups"


def _strides(shape: tuple[int, ...], windows: tuple[int, ...], strides: Any) -> tuple[int, ...]:
    if strides is None:
        strides = 1
    if isinstance(strides, (int, np.integer)):
        strides = (int(strides),) * len(shape)
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(shape) or any(s < 1 for s in strides):
        raise ParameterError(f"strides must be a positive int or one per input axis {shape}; got {strides}")
    return strides


def _window_count(shape: tuple[int, ...], windows: Any, strides: Any) -> int:
    return int(np.prod(_shift_counts(shape, windows, strides)))


def _shift_counts(shape: tuple[int, ...], windows: Any, strides: Any) -> list[int]:
    windows = tuple(int(w) for w in windows)
    if len(windows) != len(shape) or any(w < 1 for w in windows):
        raise ParameterError(f"sliding_window_shapes must have one positive size per input axis {shape} (no row "
                             f"axis); got {windows}")
    if any(w > s for w, s in zip(windows, shape)):
        raise ParameterError(f"sliding_window_shapes {windows} exceed the input shape {shape}")
    st = _strides(shape, windows, strides)
    if any(s > w and d != w for s, w, d in zip(st, windows, shape)):
        raise ParameterError(f"strides {st} must not exceed the window {windows} (patches would skip inputs)")
    return [int(np.ceil((d - w) / s)) + 1 for d, w, s in zip(shape, windows, st)]


def _window_masks(shape: tuple[int, ...], windows: Any, strides: Any) -> Iterator[torch.Tensor]:
    """Patches in captum's order (the first axis moves fastest), cropped at the far edges."""
    counts = _shift_counts(shape, windows, strides)
    st = _strides(shape, windows, strides)
    for k in range(int(np.prod(counts))):
        mask = torch.zeros(shape, dtype=torch.bool)
        index = []
        rest = k
        for c, s, w in zip(counts, st, windows):
            start = (rest % c) * s
            index.append(slice(start, start + int(w)))
            rest //= c
        mask[tuple(index)] = True
        yield mask
