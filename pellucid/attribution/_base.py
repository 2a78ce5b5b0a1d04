"""Plumbing every attribution method shares: the model as a differentiable function of one
input tensor, the user's rows as that tensor, the output attributed per row, and the map from
the model's input columns back to the user's raw features.

A method is written once, on tensors (``Prepared.x``, ``Prepared.fn``, ``Prepared.select``),
and gets raw-feature attributions from :meth:`Prepared.result`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .._targets import target_indices
from ..errors import ModelError, ParameterError
from ..oracle import EncodingMap, Oracle


@dataclass
class Attribution:
    """Attributions of one method for a batch of rows.

    Attributes
    ----------
    values : ndarray
        ``(rows, features)`` for tabular inputs: each raw feature's share of the attributed
        output (a one-hot group summed into its feature). For inputs with more than one
        axis per row (images), the attributions in the input's own shape.
    method : str
        Name of the method, e.g. ``"integrated_gradients"``.
    features : tuple of str
        Names of the columns of ``values`` (empty for image inputs).
    targets : ndarray of int or None
        Output index attributed for each row (None for a regression output).
    outputs : ndarray
        The attributed output at each row, ``f(x)[target]``.
    encoded : ndarray
        Attributions on the model's own input columns, ``(rows, *input shape)``.
    delta : ndarray or None
        Per row, ``sum(attributions) - (f(x) - f(baseline))`` for methods with a completeness
        property (Integrated Gradients, expected gradients, LRP: ``sum - f(x)``); None otherwise.
    unassigned : ndarray or None
        Per row, the attribution on encoded columns that depend on several raw features (kept
        out of every feature's column); None when there are none.
    params : dict
        The method's settings (steps, baseline description, ...).
    base_value : ndarray or None
        Per row, the output the attributions start from (Shapley values: the output with every
        feature taken from the background); None for methods without one.
    standard_error : ndarray or None
        Per value, the standard error of a sampled estimate (Shapley permutation or kernel
        sampling; zeros for exact values); None for methods that do not sample.
    """

    values: np.ndarray
    method: str
    features: tuple[str, ...]
    targets: np.ndarray | None
    outputs: np.ndarray
    encoded: np.ndarray
    delta: np.ndarray | None = None
    unassigned: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    base_value: np.ndarray | None = None
    standard_error: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tabular attributions as a DataFrame with the raw feature names as columns."""
        if self.values.ndim != 2 or not self.features:
            raise ParameterError(f"{self.method} attributions of shape {self.values.shape} are not tabular")
        return pd.DataFrame(self.values, columns=list(self.features))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def _per_row(self) -> list[str]:
        """The fields holding one entry per row (arrays as long as ``values``)."""
        n = len(self)
        return [f.name for f in fields(self) if f.name != "features" and isinstance(getattr(self, f.name), np.ndarray)
                and getattr(self, f.name).ndim >= 1 and len(getattr(self, f.name)) == n]

    def head(self, n: int) -> "Attribution":
        """The first ``n`` rows' attributions (every per-row field cut; ``params`` as they are)."""
        return replace(self, **{name: getattr(self, name)[:n] for name in self._per_row()})

    @staticmethod
    def concat(parts: "Sequence[Attribution]") -> "Attribution":
        """Attributions of consecutive pieces of one table as one (the first piece's ``params``)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        return replace(first, **{name: np.concatenate([getattr(p, name) for p in parts]) for name in first._per_row()})


@dataclass
class Prepared:
    """A model and a batch of rows, ready for a method to differentiate.

    Attributes
    ----------
    fn : callable
        Tensor ``(m, *shape)`` -> outputs ``(m, k)`` or ``(m,)``; differentiable. For an
        :class:`Oracle` it is ``oracle.forward`` (class probabilities); for a bare module its
        own output (logits, as captum sees it).
    x : Tensor
        The rows as the model's input ``(n, *shape)``, detached, on the model's device.
    targets : Tensor of int64 or None
        Output column attributed per row; None when the output is one value per row.
    features : tuple of str
        Raw feature names (tabular), or empty (images).
    groups : list of ndarray or None
        Per raw feature, the input columns it is encoded into; None when every input column is
        its own feature (no encoding).
    shared : ndarray of int
        Input columns that depend on several raw features, or on none that the map found;
        their attributions go to ``Attribution.unassigned``.
    oracle : Oracle or None
    module : torch.nn.Module or None
        The torch module underneath (for methods that walk its layers: LRP, Grad-CAM, guided
        backpropagation).
    raw : DataFrame or None
        The raw rows, when given as a DataFrame with an Oracle.
    reference : DataFrame, ndarray or None
        Rows standing for the population (``reference=`` of :func:`prepare`), used for the
        encoding map and for summary baselines ("mean", "median", "mode").
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    x: torch.Tensor
    targets: torch.Tensor | None
    features: tuple[str, ...]
    groups: list[np.ndarray] | None
    shared: np.ndarray
    oracle: Oracle | None
    module: torch.nn.Module | None
    raw: pd.DataFrame | None = None
    reference: Any = None

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def tabular(self) -> bool:
        return self.x.dim() == 2

    def select(self, out: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """The attributed output per row of ``out`` ``(m, k)`` or ``(m,)``.

        ``targets`` defaults to :attr:`targets`; a batch of ``m = r * n`` rows (steps or
        samples stacked row-block by row-block) repeats the targets ``r`` times.
        """
        targets = self.targets if targets is None else targets
        if out.dim() == 1 or targets is None:
            if out.dim() == 2 and out.shape[1] != 1:
                raise ParameterError(f"the model gives {out.shape[1]} outputs per row; pass target= to pick one")
            return out.reshape(out.shape[0])
        reps = out.shape[0] // targets.shape[0]
        idx = targets.repeat(reps) if reps > 1 else targets
        return out.gather(1, idx.view(-1, 1)).squeeze(1)

    def to_raw(self, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Sum input-column attributions ``(n, n_encoded)`` into raw features.

        Returns ``(values, unassigned)``; images and identity encodings pass through.
        """
        if not self.tabular or self.groups is None:
            return encoded, None
        values = np.zeros((encoded.shape[0], len(self.groups)), dtype=encoded.dtype)
        for j, cols in enumerate(self.groups):
            if len(cols):
                values[:, j] = encoded[:, cols].sum(axis=1)
        unassigned = encoded[:, self.shared].sum(axis=1) if len(self.shared) else None
        return values, unassigned

    def result(self, encoded: torch.Tensor | np.ndarray, method: str, *, outputs: torch.Tensor | np.ndarray,
               delta: Any = None, **params: Any) -> Attribution:
        """Wrap input-space attributions of ``x`` into an :class:`Attribution`."""
        enc = _numpy(encoded)
        values, unassigned = self.to_raw(enc)
        return Attribution(
            values=values,
            method=method,
            features=self.features,
            targets=None if self.targets is None else self.targets.cpu().numpy(),
            outputs=_numpy(outputs),
            encoded=enc,
            delta=None if delta is None else _numpy(delta),
            unassigned=unassigned,
            params=params,
        )

    def encode_rows(self, rows: Any, what: str = "baseline") -> torch.Tensor:
        """Rows in the same form as the inputs (raw frame, array, tensor) as model input."""
        return _as_input(rows, self.oracle, self.x, what)

    def baseline(self, baseline: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """Baseline rows ``(b, *shape)`` as model input, and a description for ``params``.

        ``None``/"zeros": encoded zeros. "mean", "median", "mode": a summary row of
        :attr:`reference` (else of the inputs); for raw frames with an Oracle it is a valid raw
        row (numeric mean or median, integers rounded; categories' mode) encoded through the
        preprocess. A number: every input column set to it. Otherwise rows in the inputs' form
        (one row, one per input row, or any number of rows as a distribution).
        """
        if baseline is None or (isinstance(baseline, str) and baseline == "zeros"):
            return torch.zeros((1, *self.x.shape[1:]), dtype=self.x.dtype, device=self.x.device), {"baseline": "zeros"}
        if isinstance(baseline, str):
            if baseline not in SUMMARIES:
                raise ParameterError(f"unknown baseline {baseline!r}; use 'zeros', 'mean', 'median', 'mode', a number "
                                     "or rows in the inputs' form")
            source = self.reference if self.reference is not None else (self.raw if self.raw is not None else self.x)
            if isinstance(source, pd.DataFrame) and (self.oracle is None or self.raw is not None):
                row = summary_row(source, baseline)
                return self.encode_rows(row), {"baseline": baseline, "baseline_row": row.iloc[0].to_dict()}
            t = _as_input(source, None if isinstance(source, torch.Tensor) else self.oracle, self.x, "reference")
            return _summary_tensor(t, baseline), {"baseline": baseline}
        if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, (bool, np.bool_)):
            if not np.isfinite(baseline):
                raise ParameterError(f"baseline must be finite; got {baseline!r}")
            return torch.full((1, *self.x.shape[1:]), float(baseline), dtype=self.x.dtype, device=self.x.device), \
                {"baseline": float(baseline)}
        rows = self.encode_rows(baseline)
        info: dict[str, Any] = {"baseline": "rows", "baseline_rows": int(rows.shape[0])}
        if isinstance(baseline, (pd.Series, pd.DataFrame)) and rows.shape[0] == 1:
            info["baseline_row"] = (baseline if isinstance(baseline, pd.Series) else baseline.iloc[0]).to_dict()
        return rows, info


SUMMARIES = ("mean", "median", "mode")


def no_baseline(method: str, baseline: Any, *implicit: str) -> None:
    """Refuse a baseline given to a method that has none.

    Every method in :data:`~pellucid.attribution.METHODS` takes ``baseline=`` so that all are
    called alike; a method without one accepts only None (or the names in ``implicit`` of the
    baseline it uses anyway, e.g. "zeros" for gradient x input), never ignores one silently.
    """
    if baseline is None or (isinstance(baseline, str) and baseline in implicit):
        return
    raise ParameterError(f"{method} takes no baseline" + (f" other than {', '.join(map(repr, implicit))}"
                                                           if implicit else "")
                         + f"; got {type(baseline).__name__} (use integrated_gradients, expected_gradients or "
                         "occlusion to attribute relative to a baseline)")


def prepare(model: Any, inputs: Any, target: Any = None, *, reference: Any = None) -> Prepared:
    """Validate ``model`` and ``inputs`` once and put them in the form the methods use.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
    inputs : DataFrame, ndarray or Tensor
        Raw rows (a DataFrame with an Oracle is encoded by its preprocess), or the model's input.
    target : None, int, class label, or sequence of them (one per row)
        The output attributed. None: the predicted class of each row (classification), or the
        single output (regression).
    reference : DataFrame or array, optional
        Rows standing for the population the inputs come from (e.g. the training table). With
        an Oracle and raw frames it is used to find which encoded columns belong to which raw
        feature (the inputs alone, when few, may never show some categories), and it is what
        summary baselines ("mean", "median", "mode") summarise. Defaults to the inputs.

    Model-agnostic methods (occlusion) handle Oracles of other kinds on raw rows themselves.
    """
    oracle = model if isinstance(model, Oracle) else None
    if oracle is not None:
        if oracle.kind != "torch":
            raise ModelError(f"gradient attributions need a torch model; this oracle wraps a {oracle.kind} model "
                             "(use occlusion, which only queries the model)")
        module = oracle.model
        fn = oracle.forward
    elif isinstance(model, torch.nn.Module):
        module = model
        fn = _module_fn(model)
    else:
        raise ModelError(f"attribution needs a pellucid Oracle or a torch.nn.Module; got {type(model).__name__}")

    device, dtype = placement(model)
    raw = inputs if isinstance(inputs, pd.DataFrame) else None
    x = _as_input(inputs, oracle, None, "inputs", device=device, dtype=dtype)
    if x.shape[0] == 0:
        raise ParameterError("inputs has no rows")
    if reference is not None:
        if isinstance(reference, pd.Series) or (raw is not None and not isinstance(reference, pd.DataFrame)):
            raise ParameterError(f"reference must be a DataFrame of raw rows like the inputs; got "
                                 f"{type(reference).__name__}")
        if len(reference) == 0:
            raise ParameterError("reference has no rows")
        if raw is not None and [str(c) for c in reference.columns] != [str(c) for c in raw.columns]:
            raise ParameterError(f"reference has columns {list(map(str, reference.columns))[:12]}; the inputs have "
                                 f"{list(map(str, raw.columns))[:12]}")

    features: tuple[str, ...] = ()
    groups: list[np.ndarray] | None = None
    shared = np.zeros(0, dtype=np.int64)
    if x.dim() == 2:
        if raw is not None and oracle is not None and oracle.preprocess is not None:
            emap = _encoding_map(oracle, raw, reference)
            features = emap.raw_features
            groups = [np.asarray(emap.groups[f], dtype=np.int64) for f in features]
            placed = set(np.concatenate(groups).tolist()) if groups else set()
            # Columns in no group (shared, or never seen to move) stay visible as "unassigned".
            shared = np.asarray([i for i in range(x.shape[1]) if i not in placed], dtype=np.int64)
        elif raw is not None:
            features = tuple(str(c) for c in raw.columns)
        else:
            features = tuple(f"x{i}" for i in range(x.shape[1]))

    with torch.no_grad():
        if target is None:  # the predicted class of every row
            probe = torch.cat([fn(x[i:i + 4096]).detach() for i in range(0, x.shape[0], 4096)])
        else:
            probe = fn(x[:1]).detach()
    targets = resolve_targets(target, probe, x.shape[0], oracle)
    targets = None if targets is None else targets.to(x.device)
    return Prepared(fn, x, targets, features, groups, shared, oracle, module, raw, reference)


def placement(model: Oracle | torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where and in what precision a torch model takes its input: an Oracle's device and
    tensor dtype; a bare module's first parameter's (the CPU and float32 without one)."""
    if isinstance(model, Oracle):
        return model.device or torch.device("cpu"), model.tensor_dtype
    first = next((p for p in model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    return device, first.dtype if first is not None and first.is_floating_point() else torch.float32


# ---------------------------------------------------------------------------- internals
def _numpy(t: Any) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


class eval_mode:
    """Put every submodule in eval mode and restore each one's own flag afterwards (a module
    may mix submodules in train and eval mode; ``module.train(was)`` would flatten them)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.flags = [(m, m.training) for m in module.modules()]

    def __enter__(self) -> None:
        for m, _ in self.flags:
            m.training = False

    def __exit__(self, *exc: Any) -> None:
        for m, was in self.flags:
            m.training = was


def _module_fn(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with eval_mode(module), torch.enable_grad():
            return module(x)
    return fn


def _encoding_map(oracle: Oracle, raw: pd.DataFrame, reference: pd.DataFrame | None = None) -> EncodingMap:
    """The encoded columns of each raw feature, found on ``reference`` or on the inputs.

    Probing costs queries of the preprocess: one map per oracle and column set is kept. Without
    a reference, the rows probed are the inputs plus a few made-up rows (each column missing in
    turn, each category an encoder knows), so that a handful of input rows still moves every
    encoded column (a missing-value indicator, a category those rows never take).
    """
    cache = oracle.__dict__.setdefault("_attribution_maps", {})
    key = tuple(map(str, raw.columns))
    if reference is not None:
        emap = oracle.encoding_map(reference)
        cache[key] = emap  # the user's population beats any made-up rows
        return emap
    if key not in cache:
        cache[key] = oracle.encoding_map(_probe_rows(oracle, raw))
    return cache[key]


_MAX_CATEGORIES = 256


def _probe_rows(oracle: Oracle, raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` plus rows that show the preprocess every category it knows and missing values."""
    base = raw.iloc[[0]]
    extra: list[pd.DataFrame] = []
    for col, cats in _known_categories(oracle.preprocess, raw).items():
        seen = set(map(str, pd.unique(raw[col].dropna())))
        new = [c for c in cats[:_MAX_CATEGORIES] if str(c) not in seen and not (isinstance(c, float) and np.isnan(c))]
        if new:
            rows = pd.concat([base] * len(new), ignore_index=True)
            rows[col] = pd.Series(new, dtype=object).astype(raw[col].dtype, errors="ignore") \
                if not isinstance(raw[col].dtype, pd.CategoricalDtype) else pd.Categorical(new, dtype=raw[col].dtype)
            extra.append(rows)
    for col in raw.columns:
        if raw[col].isna().any():
            continue  # the inputs already show it missing
        row = base.copy()
        try:
            row[col] = pd.Series([None], index=row.index, dtype=object if raw[col].dtype == object else None)
        except (TypeError, ValueError):
            continue
        extra.append(row)
    if not extra:
        return raw
    good = []
    for rows in extra:  # keep only made-up rows the preprocess accepts and encodes to numbers
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z = oracle.encode(rows)
        except Exception:  # noqa: BLE001 - a preprocess that refuses a made-up row is not an error here
            continue
        if np.isfinite(z).all():
            good.append(rows)
    if not good:
        return raw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # concat of frames with all-NA columns
        return pd.concat([raw.reset_index(drop=True), *good], ignore_index=True)


def _known_categories(preprocess: Any, raw: pd.DataFrame) -> dict[Any, list]:
    """Raw column -> categories a fitted encoder inside a ColumnTransformer knows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    ct = preprocess
    if isinstance(ct, Pipeline):
        ct = ct.steps[-1][1]
    if not isinstance(ct, ColumnTransformer) or not hasattr(ct, "transformers_"):
        return {}
    out: dict[Any, list] = {}
    for _, trans, cols in ct.transformers_:
        last = trans.steps[-1][1] if isinstance(trans, Pipeline) else trans
        cats = getattr(last, "categories_", None)
        if cats is None:
            continue
        names = list(cols) if not isinstance(cols, (str, int)) else [cols]
        try:
            names = [raw.columns[c] if isinstance(c, (int, np.integer)) else c for c in names]
        except IndexError:
            continue
        if len(names) != len(cats) or any(n not in raw.columns for n in names):
            continue
        for name, values in zip(names, cats):
            out[name] = list(values)
    return out


def summary_row(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    """One valid raw row summarising ``frame``: numeric mean or median (integer-valued columns
    rounded), the most frequent value of categorical and boolean columns ("mode": of all)."""
    values: dict[Any, Any] = {}
    for col in frame.columns:
        s = frame[col]
        observed = s.dropna()
        if len(observed) == 0:
            raise ParameterError(f"cannot take the {how} of column {col!r}: it has no values")
        numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
        if how == "mode" or not numeric:
            values[col] = observed.mode(dropna=True).iloc[0]
            continue
        v = float(observed.mean() if how == "mean" else observed.median())
        arr = observed.to_numpy(dtype=np.float64)
        if pd.api.types.is_integer_dtype(s.dtype) or np.all(arr == np.round(arr)):
            v = float(np.round(v))
        values[col] = v
    row = pd.DataFrame({c: [values[c]] for c in frame.columns})
    for col in frame.columns:  # keep dtypes (integers, categoricals) so the preprocess sees the same kinds
        try:
            row[col] = row[col].astype(frame[col].dtype)
        except (TypeError, ValueError):
            pass
    return row


def _summary_tensor(t: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return t.mean(dim=0, keepdim=True)
    if how == "median":
        return t.median(dim=0, keepdim=True).values
    return t.mode(dim=0).values.unsqueeze(0)


def _as_input(rows: Any, oracle: Oracle | None, like: torch.Tensor | None, what: str, *,
              device: Any = None, dtype: Any = None) -> torch.Tensor:
    device = like.device if like is not None else device
    dtype = like.dtype if like is not None else dtype
    if isinstance(rows, pd.Series):
        rows = rows.to_frame().T
    if isinstance(rows, pd.DataFrame):
        if oracle is not None:
            arr = oracle.encode(rows)
        else:
            try:
                arr = rows.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ParameterError(f"{what} has non-numeric columns; pass an Oracle with the preprocess that "
                                     f"encodes them, not the bare module ({e})") from None
        t = torch.as_tensor(np.require(arr, requirements="W"))  # a read-only view (copy-on-write pandas) would warn
    elif isinstance(rows, torch.Tensor):
        t = rows.detach()
    else:
        try:
            t = torch.as_tensor(np.require(np.asarray(rows, dtype=np.float64), requirements="W"))
        except (TypeError, ValueError) as e:
            raise ParameterError(f"{what} must be a DataFrame, an array or a tensor of numbers ({e})") from None
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if like is not None:
        if t.dim() == like.dim() - 1 and tuple(t.shape) == tuple(like.shape[1:]):
            t = t.unsqueeze(0)
        if t.dim() != like.dim() or tuple(t.shape[1:]) != tuple(like.shape[1:]):
            raise ParameterError(f"{what} has shape {tuple(t.shape)}; the inputs have shape {tuple(like.shape)} "
                                 "(give one row or one per input row, in the inputs' form)")
    elif t.dim() < 2:
        raise ParameterError(f"{what} must have a row axis; got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t.reshape(t.shape[0], -1))).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ParameterError(f"{what} has NaN or infinite values (rows {bad}); impute them or encode with the "
                             "preprocess that handles them")
    return t.to(device=device, dtype=dtype)


def resolve_targets(target: Any, outputs: Any, n: int, oracle: Oracle | None) -> torch.Tensor | None:
    """Output column attributed per row, as int64 (None for one output per row).

    ``outputs`` is the model's answer for all ``n`` rows when ``target`` is None (the
    predicted class of each row is attributed), else for at least one row.
    """
    probe = torch.as_tensor(outputs)
    single = probe.dim() == 1 or (probe.dim() == 2 and probe.shape[1] == 1)
    if single:
        if target not in (None, 0):
            raise ParameterError(f"the model gives one output per row; target must be None or 0, got {target!r}")
        return None
    k = probe.shape[1]
    if target is None:
        return probe.reshape(probe.shape[0], -1).argmax(dim=1).to(torch.int64)
    labels = list(oracle.classes_) if oracle is not None and oracle.task == "classification" else None
    return torch.as_tensor(target_indices(target, n, k, labels, broadcast_one=True), dtype=torch.int64)


#: Attribution methods that hook the network's layers (a TorchScript module allows no hooks).
NEEDS_HOOKS = {"lrp": "LRP", "grad_cam": "Grad-CAM", "guided_backprop": "Guided backpropagation",
               "deconvolution": "DeconvNet", "guided_grad_cam": "Guided Grad-CAM"}


def is_scripted(module: Any) -> bool:
    """Whether ``module`` (or an Oracle's model) is TorchScript (``torch.jit.script``/``trace``):
    its gradients work, but its layers take no hooks and have no ``get_submodule``."""
    if isinstance(module, Oracle):
        module = module.model
    return isinstance(module, torch.jit.ScriptModule)


def check_images(prep: Prepared, what: str, instead: str) -> None:
    """Refuse rows that are not image-like (rows, channels, height, width) for ``what``,
    naming the methods to use on tabular rows (``instead``)."""
    if prep.x.dim() < 3:
        raise ParameterError(f"{what} needs image-like inputs (rows, channels, height, width); got rows of shape "
                             f"{tuple(prep.x.shape)} (for tabular models use {instead})")


def check_hookable(module: torch.nn.Module | None, what: str) -> torch.nn.Module:
    """``module`` itself, once it is an eager torch module whose layers take hooks.

    Raises
    ------
    ParameterError
        For no module, or a TorchScript one, naming ``what`` needs the hooks.
    """
    if module is None:
        raise ParameterError(f"{what} needs a torch network's layers")
    if is_scripted(module):
        raise ParameterError(f"{what} hooks the network's layers, which a TorchScript module does not allow; "
                             "pass the eager module (file.py:ATTR) to use it")
    return module


def find_layer(module: torch.nn.Module, layer: Any) -> tuple[str, torch.nn.Module]:
    """``(name, submodule)`` of a layer given by its name in ``module.named_modules()`` or as
    the submodule itself; a ``ParameterError`` listing the layers (with their types) otherwise."""
    named = [(name, m) for name, m in module.named_modules() if name]
    if isinstance(layer, str):
        for name, m in named:
            if name == layer:
                return name, m
        listing = [f"{name} ({type(m).__name__})" for name, m in named]
        raise ParameterError(f"the model has no layer named {layer!r}; its layers are {listing[:60]}"
                             + (f" and {len(listing) - 60} more" if len(listing) > 60 else ""))
    if isinstance(layer, torch.nn.Module):
        for name, m in named:
            if m is layer:
                return name, m
        raise ParameterError(f"layer {type(layer).__name__} is not part of the model")
    raise ParameterError(f"layer must be a layer name or a module of the model; got {type(layer).__name__}")
