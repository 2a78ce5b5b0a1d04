"""The one door to the user's model.

An :class:`Oracle` wraps whatever the user trained -- a torch module (eager, TorchScript or
``torch.export``), an ONNX graph in an ``onnxruntime.InferenceSession``, a scikit-learn
estimator or pipeline, or a plain callable -- together with the preprocessing that turns raw
rows into the model's input. Everything else in pellucid asks
the oracle and never calls the model itself, so that batching, eval mode, output checks,
query counting and error messages live in one place.

:func:`load_model` resolves the model specifications the command line accepts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import pickle
import re
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import sklearn
import torch
from sklearn.base import is_classifier
from tqdm.auto import tqdm
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted

from . import _device
from . import _validation as fmt
from .errors import (
    ModelError,
    ModelLoadError,
    ModelOutputError,
    ParameterError,
    PellucidError,
    PellucidWarning,
    SchemaError,
)

__all__ = ["Oracle", "EncodingMap", "InputColumns", "Determinism", "load_model"]

_TASKS = ("classification", "regression")
_OUTPUTS = ("auto", "proba", "logits")
_BATCH_BYTES = 64 * 2**20
_BATCH_MIN, _BATCH_MAX = 1024, 262144
_PROBE_ROWS = 256
# Transformers whose output column i depends on input column i only.
_ONE_TO_ONE = (
    StandardScaler,
    MinMaxScaler,
    RobustScaler,
    MaxAbsScaler,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
)


@dataclass(frozen=True)
class EncodingMap:
    """Which encoded (model-input) columns come from which raw feature.

    Attributes
    ----------
    raw_features : tuple of str
        The reference frame's columns, in order.
    groups : dict of str to tuple of int
        Raw feature -> encoded column indices. Groups are disjoint: a column that depends on
        several raw features is in none of them but in ``shared``. A feature the preprocessing
        drops has an empty tuple.
    shared : tuple of int
        Encoded columns that depend on two or more raw features.
    n_encoded : int
        Number of encoded columns.
    method : {"identity", "structure", "probe"}
        How the map was found: no preprocessing, read off a ColumnTransformer, or by
        perturbing one raw feature at a time.
    """

    raw_features: tuple[str, ...]
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shared: tuple[int, ...] = ()
    n_encoded: int = 0
    method: str = "identity"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "raw_features": list(self.raw_features),
            "groups": {k: [int(i) for i in v] for k, v in self.groups.items()},
            "shared": [int(i) for i in self.shared],
            "n_encoded": int(self.n_encoded),
            "method": self.method,
        }


#: Rows the determinism check asks the model about, twice.
DETERMINISM_ROWS = 256
#: Two answers to the same row are the same within these tolerances (relative, and absolute on
#: probabilities or on a regression's largest value): float rounding, such as a GPU's reductions
#: summing in another order, never noise.
DETERMINISM_RTOL, DETERMINISM_ATOL = 1e-5, 1e-6
#: Names that say a column holds the outcome rather than an input.
_LABEL_NAME = re.compile(r"(?i)(^|[_\W])(target|label|labels|y|outcome|class|response|truth)($|[_\W])")
#: Names that say a column identifies rows.
_ID_NAME = re.compile(r"(?i)(^|[_\W])(id|ids|key|uuid|number|no)$|^id[_\W]")
#: Few distinct values: a column like a label.
_LABEL_VALUES = 10


@dataclass(frozen=True)
class InputColumns:
    """How a table's columns became the model's inputs.

    By name where the model records the names of its inputs (a scikit-learn estimator's or
    preprocess's ``feature_names_in_``, an ONNX graph with one input per column) or a saved
    :class:`~pellucid.schema.Schema` pins them; by position otherwise (a bare torch network,
    a callable), which the report states.

    Attributes
    ----------
    columns : tuple of str
        The columns given to the model, in the order given.
    matched : {"by name", "by position"}
    names_from : str or None
        What records the names (None when matched by position).
    reordered : bool
        Whether the table's columns came in another order and were put in the recorded one.
    """

    columns: tuple[str, ...]
    matched: str
    names_from: str | None = None
    reordered: bool = False

    @property
    def note(self) -> str:
        """One sentence for the report."""
        n = len(self.columns)
        listed = ", ".join(self.columns[:12]) + (", …" if n > 12 else "")
        if self.matched == "by position":
            return (f"Taken by position: nothing records the names of the model's inputs, so the table's {n} columns "
                    f"were all given to it, in the table's order ({listed}). A model that reads its inputs by "
                    "position (a torch network) takes them in this order: check that it is the order it was trained "
                    "on, or pin the columns with a saved schema (--schema, explain(schema=...)).")
        if self.reordered:
            return (f"Taken by name: the table's columns came in another order and were put in the model's order "
                    f"({listed}; from {self.names_from}).")
        return f"Taken by name: the table's {n} columns are the model's inputs, in its order (from {self.names_from})."

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (report.json's ``model.inputs``)."""
        return {"matched": self.matched, "names_from": self.names_from, "reordered": bool(self.reordered),
                "columns": list(self.columns), "note": self.note}


@dataclass(frozen=True)
class Determinism:
    """Whether the model gives the same answer twice (see :meth:`Oracle.check_determinism`).

    Attributes
    ----------
    rows : int
        Rows asked about, twice.
    changed : int
        Rows whose answer changed between the two queries (beyond float tolerance).
    max_difference : float
        The largest change of an output (a probability, or a regression's value).
    largest_at : str or None
        The row with the largest change, as errors name rows; None when nothing changed.
    allowed : bool
        Whether a model that changes was explained anyway (``allow_nondeterministic``).
    """

    rows: int
    changed: int
    max_difference: float
    largest_at: str | None = None
    allowed: bool = False

    @property
    def deterministic(self) -> bool:
        return self.changed == 0

    @property
    def note(self) -> str:
        """One sentence for the report."""
        if self.deterministic:
            return (f"Asked twice about the same {self.rows} rows, the model gave the same answers "
                    f"(largest difference {fmt.sig(self.max_difference, 3)}).")
        return (f"The model is not deterministic: asked twice about the same {self.rows} rows, it changed its answer "
                f"for {self.changed} ({fmt.pct(self.changed / self.rows)}), by up to {fmt.sig(self.max_difference, 3)} (row "
                f"{self.largest_at}). It was explained anyway, as asked: every figure of this report is measured "
                "against answers that would differ if asked again, and part of any disagreement between the rules "
                "and the model is the model's own variation.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (report.json's ``model.determinism``)."""
        return {"deterministic": self.deterministic, "rows": int(self.rows), "queries": 2 * int(self.rows),
                "changed_rows": int(self.changed), "share_changed": self.changed / self.rows if self.rows else 0.0,
                "max_difference": float(self.max_difference), "largest_at_row": self.largest_at,
                "tolerance": {"rtol": DETERMINISM_RTOL, "atol": DETERMINISM_ATOL}, "allowed": bool(self.allowed),
                "note": self.note}


class Oracle:
    """Answers queries about a trained model on raw rows.

    Parameters
    ----------
    model : torch.nn.Module, onnxruntime.InferenceSession, scikit-learn estimator or callable
        A torch module (also TorchScript or the module of ``torch.export``), an ONNX session
        (or an ``onnx.ModelProto``, run on the CPU), an estimator or pipeline with
        ``predict_proba`` or ``predict``, or a callable taking a DataFrame of raw rows (or the
        preprocess output) and returning an array.
    preprocess : fitted transformer or callable, optional
        Maps raw rows to the model's input: a fitted scikit-learn transformer (``.transform``)
        or a callable frame -> 2-D array. For torch the result becomes a dense float tensor;
        for ONNX a dense array of the dtype the graph's input declares (float32, float64 or
        float16).
    task : {"classification", "regression"}, optional
        Inferred when omitted: from the estimator for scikit-learn, from the first answer
        otherwise (two or more columns or 1-D labels -> classification).
    classes : list, optional
        Class labels for torch/ONNX/callable classifiers. Defaults to ``estimator.classes_``, to
        ``range(k)`` for ``k`` output columns, or ``[0, 1]`` for a one-output binary network.
    output : {"auto", "proba", "logits"}
        What a torch/ONNX/callable classifier returns. ``"auto"`` decides once, on the first
        query: values in [0, 1] that sum to one per row (or one column) are probabilities,
        anything else logits (softmax, or sigmoid for one column).
    batch_size : int, optional
        Rows per model call. By default chosen at the first batch: for a torch module on a
        CPU, 4096 rows (fewer where they would take more than 32 MB of input), because a
        network's activations then stay in the cache; on a GPU, as many rows as half of the
        device's free memory holds, measured on the first batch; for other models, about 64 MB
        of encoded input (between 1024 and 262144 rows).
    device : str or torch.device, optional
        Where torch inputs are placed; the module itself is never moved. Defaults to the
        module's own device. Falls back to the CPU when the device is not available.
        Ignored for other models.
    verbose : int
        0 for silence; otherwise queries of many batches show a progress bar on a terminal.

    Notes
    -----
    An ONNX graph must have exactly one input, of shape (rows, columns) with a dynamic row
    axis, or one input of shape (rows, 1) per raw column, named as the column (as skl2onnx
    exports a pipeline fitted on a DataFrame; fed by name, of the type each declares: floats,
    integers, booleans or text, with the graph's own preprocessing). Its answer is its only output; of several outputs, the first 2-D float tensor whose
    name contains "prob" (as ``output_probability`` of skl2onnx) is used, else the
    first float tensor. Outputs that are sequences of maps (skl2onnx's ZipMap) are refused:
    export with ``options={"zipmap": False}``. The output then goes through the same checks
    and ``output`` resolution as a torch module's.

    Attributes
    ----------
    kind : {"torch", "onnx", "sklearn", "callable"}
    n_queries : int
        Rows sent to the model so far (also by :meth:`forward`).
    n_calls : int
        Model calls (batches) so far.
    batch_size_ : int or None
        Rows per model call, once known.
    chunk_rows_ : int or None
        Rows encoded (preprocessed and converted) at a time, once known: a whole number of
        model batches for a torch module, one batch for other models.
    output_ : {"proba", "logits", "labels"} or None
        How classifier outputs are read, once decided.
    source, sha256 : str or None
        Set by :meth:`from_spec`: the specification and the hash of the file it names.
    """

    def __init__(
        self,
        model: Any,
        preprocess: Any = None,
        task: str | None = None,
        *,
        classes: list | None = None,
        output: str = "auto",
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        verbose: int = 1,
    ) -> None:
        self.verbose = verbose
        if isinstance(model, torch.export.ExportedProgram):
            model = model.module()
        if _is_onnx_proto(model):
            model = _onnx_session(model.SerializeToString(), f"the onnx {type(model).__name__}", ModelError)
        self.kind = _model_kind(model)
        self.model = model
        self.preprocess = _check_preprocess(preprocess)
        if task is not None and task not in _TASKS:
            raise ParameterError(f"task must be 'classification', 'regression' or None; got {task!r}")
        if output not in _OUTPUTS:
            raise ParameterError(f"output must be 'auto', 'proba' or 'logits'; got {output!r}")
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
        ):
            raise ParameterError(f"batch_size must be a positive integer or None; got {batch_size!r}")
        self.output = output
        self.batch_size = batch_size
        self.batch_size_: int | None = None if batch_size is None else int(batch_size)
        self.chunk_rows_: int | None = None
        self.source: str | None = None
        self.sha256: str | None = None
        self.n_queries = 0
        self.n_calls = 0
        self._raw_width: int | None = None  # trailing width of the raw output (0 for 1-D)
        self._classes = None if classes is None else np.asarray(classes, dtype=object)
        if self._classes is not None and len(pd.unique(self._classes)) != len(self._classes):
            raise ParameterError(f"classes must be distinct labels; got {list(self._classes)}")
        if task is None and classes is not None:
            task = "classification"  # naming classes says what the outputs are
        self.output_: str | None = None
        self.proba_reason_: str | None = None
        self.device: torch.device | None = None
        self._dtype = torch.float32
        self._onnx: _OnnxSignature | None = None

        if self.kind == "sklearn":
            try:
                check_is_fitted(model)
            except SklearnNotFittedError as e:
                raise ModelError(f"the {type(model).__name__} given as model is not fitted") from e
            except TypeError:
                pass  # not a scikit-learn estimator proper; nothing to check
            has_proba = hasattr(model, "predict_proba")
            if task is None:
                task = "classification" if has_proba or is_classifier(model) else "regression"
            if task == "classification":
                self.output_ = "proba" if has_proba else "labels"
                if has_proba:
                    self.proba_reason_ = "the estimator's predict_proba gives them"
                if self._classes is None and getattr(model, "classes_", None) is not None:
                    self._classes = np.asarray(model.classes_, dtype=object)
        elif self.kind == "torch":
            self.device = _resolve_device(model, device)
            home = next(_params_and_buffers(model), None)
            if home is not None and home.device != self.device:
                raise ParameterError(
                    f"the module's parameters are on {home.device} but device={str(self.device)!r}; move the "
                    f"module there first (module.to({str(self.device)!r})) or leave device=None"
                )
            # Match a double-precision module rather than failing on a dtype mismatch.
            first = next((p for p in _params_and_buffers(model) if p.is_floating_point()), None)
            if first is not None:
                self._dtype = first.dtype
        elif self.kind == "onnx":
            self._onnx = _onnx_signature(model)
            if self._onnx.columns is not None and self.preprocess is not None:
                raise ParameterError(f"the ONNX graph takes the raw columns {list(self._onnx.columns)[:20]} as inputs "
                                     "of their own, so it holds its own preprocessing: pass no preprocess")
        self._task = task
        if self.batch_size_ is not None and self.kind != "torch":
            self.chunk_rows_ = self.batch_size_  # one model call per encoded block

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, spec: str, preprocess: Any = None, task: str | None = None, **kw: Any) -> "Oracle":
        """Build an oracle from a model specification (see :func:`load_model`).

        Parameters
        ----------
        spec : str
            ``file.py:attr``, ``package.module:attr``, or a ``.pt/.pth/.ts``, ``.pt2``,
            ``.onnx`` or ``.joblib/.pkl/.pickle`` file.
        preprocess : object or str, optional
            The preprocessing, or a specification to load it from.
        task : str, optional
            As for :class:`Oracle`.
        **kw
            Further keyword arguments of :class:`Oracle`.

        Returns
        -------
        Oracle
            With ``source`` and ``sha256`` set. A spec that yields an ``Oracle`` gives it as is.
        """
        obj = load_model(spec)
        if isinstance(preprocess, str):
            preprocess = load_model(preprocess)
        if isinstance(obj, Oracle):
            oracle = obj
        else:
            if isinstance(obj, tuple):
                if len(obj) != 2:
                    raise ModelLoadError(f"{spec!r} gave a tuple of {len(obj)} items; expected (model, preprocess)")
                if preprocess is not None and obj[1] is not None:
                    raise ParameterError(f"{spec!r} gives its own preprocess; do not pass preprocess= as well")
                obj, preprocess = obj[0], obj[1] if preprocess is None else preprocess
            oracle = cls(obj, preprocess, task, **kw)
        if oracle.source is None:
            oracle.source = spec
            path = _spec_file(spec)
            oracle.sha256 = _sha256(path) if path is not None else None
        return oracle

    # ------------------------------------------------------------------ properties
    @property
    def task(self) -> str:
        """The resolved task, "classification" or "regression"."""
        if self._task is None:
            raise PellucidError("the task is not known yet: pass task= to Oracle or query it first")
        return self._task

    @property
    def classes_(self) -> np.ndarray:
        """Class labels, in the order of the probability columns (classification only)."""
        if self._task == "regression":
            raise ParameterError("classes_ is only defined for classification; this model is a regressor")
        if self._classes is None:
            raise PellucidError("the classes are not known yet: pass classes= to Oracle or query it first")
        return self._classes

    @property
    def n_outputs(self) -> int | None:
        """Columns of the answer: the number of classes, or 1 for regression (None if unknown)."""
        if self._task == "regression":
            return 1
        return None if self._classes is None else len(self._classes)

    def reset_counter(self) -> None:
        """Set ``n_queries`` and ``n_calls`` back to zero."""
        self.n_queries = 0
        self.n_calls = 0

    def __repr__(self) -> str:
        return f"Oracle(kind={self.kind!r}, model={_model_name(self.model)}, task={self._task!r})"

    # ------------------------------------------------------------------ queries
    def query(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The model's answer for raw rows.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n, n_features)
            Raw rows; an array is passed to the preprocess (or model) as is.

        Returns
        -------
        ndarray of float64
            Class probabilities of shape (n, n_classes) for classification, values of shape
            (n,) for regression. No rows give an empty array without calling the model (of
            shape (0, 0) while the classes are still unknown).
        """
        X = _check_rows(X)
        n = X.shape[0]
        if n == 0:
            return self._empty()
        parts = []
        start = 0
        # A bar only where someone watches (a terminal) and the query is long (several batches).
        quiet = self.verbose <= 0 or not sys.stderr.isatty() or n <= 4 * (self.chunk_rows_ or _BATCH_MIN)
        with self._eval_mode(), torch.no_grad(), tqdm(
            total=n, desc="querying the model", unit="rows", disable=quiet, leave=False
        ) as bar:
            while start < n:  # one iteration per batch, never per row
                stop = start + (self.chunk_rows_ or _BATCH_MIN)  # known after the first block
                chunk = X.iloc[start:stop] if isinstance(X, pd.DataFrame) else X[start:stop]
                parts.append(self._call(chunk))
                start += chunk.shape[0]
                bar.update(chunk.shape[0])
        raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
        # Errors name a row by its label when the frame has its own (the rows' identities in the
        # user's data); a plain 0..n-1 index is a position in what was queried.
        labels = X.index if isinstance(X, pd.DataFrame) and not isinstance(X.index, pd.RangeIndex) else None
        self._resolve(raw, labels)
        return self._finish(raw, labels)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Class labels (the most probable class) or regression values for raw rows."""
        answer = self.query(X)
        if self._task == "regression":
            return answer
        if answer.shape[0] == 0:
            return np.empty(0, dtype=object)
        return self.classes_[answer.argmax(axis=1)]

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Class probabilities for raw rows, shape (n, n_classes); classification only."""
        if self._task == "regression":
            raise ParameterError("predict_proba is only defined for classification; this model is a regressor")
        answer = self.query(X)
        if self._task == "regression":
            raise ParameterError("predict_proba is only defined for classification; this model is a regressor")
        return answer

    def encode(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The model's input for raw rows: the preprocess output (or ``X``) as a 2-D float array,
        float32 unless the model computes in double precision (a float64 torch module, an ONNX
        graph declaring a double input)."""
        X = _check_rows(X)
        return _to_float(self._transform(X) if self.preprocess is not None else X, X.shape[0], self._input_dtype())

    def _input_dtype(self) -> type:
        if self.kind == "onnx":
            return self._onnx.dtype
        return np.float64 if self._dtype == torch.float64 else np.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable map from the encoded input to the answer (torch models only).

        Parameters
        ----------
        x : Tensor of shape (n, n_encoded)
            Encoded input, e.g. ``torch.from_numpy(oracle.encode(X))``.

        Returns
        -------
        Tensor
            Probabilities (n, n_classes) for classification, values (n,) for regression,
            computed with gradients enabled and the module in eval mode.
        """
        if self.kind == "onnx":
            raise ModelError("ONNX models have no gradients in pellucid: forward needs a torch model; "
                             "use query-based attributions (occlusion) instead")
        if self.kind != "torch":
            raise ModelError(f"forward needs a torch model; this oracle wraps a {self.kind} model")
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ParameterError(f"forward expects a 2-D tensor of encoded rows; got {_shape_of(x)}")
        with torch.enable_grad():  # gradients even inside a caller's no_grad
            return self._forward(x.to(device=self.device, dtype=self._dtype))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        with self._eval_mode():
            out = self._run_model(x, n)
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(f"the torch model returned {type(out).__name__}; expected a tensor")
        if self._raw_width is None or self._task is None or (self._task == "classification" and self.output_ is None):
            # The first answer fixes task and output mode; it is checked in full on the host.
            raw = _tensor_to_numpy(out.detach())
            self._check_raw(raw, n)
            self._resolve(raw)
        else:
            # Attribution calls this in a loop: check on the device, without a copy to the host.
            width = out.shape[1] if out.dim() == 2 else 0
            if out.dim() not in (1, 2) or out.shape[0] != n or width != self._raw_width:
                raise ModelOutputError(f"the model returned an output of shape {tuple(out.shape)} for {n} rows; "
                                       f"earlier answers had {self._raw_width or 1} column(s)")
            if not bool(torch.isfinite(out.detach()).all()):
                raise ModelOutputError(f"the model returned NaN or infinite values for {n} rows")
        if self._task == "regression":
            _check_one_value_per_row(tuple(out.shape))
            return out.reshape(n)
        if self.output_ == "labels":
            raise ModelError("the torch model returns labels, which cannot be differentiated")
        if out.dim() == 1:
            out = out.unsqueeze(1)
        if self.output_ == "logits":
            out = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)
        return torch.cat([1 - out, out], dim=1) if out.shape[1] == 1 else out

    # ------------------------------------------------------------------ internals
    def _transform(self, X: Any) -> Any:
        try:
            return self.preprocess.transform(X) if hasattr(self.preprocess, "transform") else self.preprocess(X)
        except Exception as e:
            raise ModelError(
                f"the preprocess raised {type(e).__name__}: {e} while encoding {X.shape[0]} rows"
            ) from e

    def _run_model(self, inputs: Any, n: int) -> Any:
        self.n_calls += 1
        self.n_queries += n
        try:
            if self.kind == "sklearn":
                if self.output_ == "proba":
                    return self.model.predict_proba(inputs)
                return self.model.predict(inputs)
            if self.kind == "onnx":
                feeds = inputs if isinstance(inputs, dict) else {self._onnx.input: inputs}
                return self.model.run([self._onnx.output], feeds)[0]
            return self.model(inputs)
        except Exception as e:
            hint = ""
            if "Guard failed" in str(e):
                hint = " (an exported program needs a dynamic batch dimension: torch.export with dynamic_shapes)"
            raise ModelError(
                f"the model raised {type(e).__name__}: {e} while answering {n} rows{hint}"
            ) from e

    def _call(self, chunk: Any) -> np.ndarray:
        """One batch: encode, call, convert to numpy, check."""
        n = chunk.shape[0]
        inputs = self._transform(chunk) if self.preprocess is not None else chunk
        dense = None
        if self.kind == "torch":
            dense = _to_float(inputs, n, self._input_dtype())
            inputs = torch.from_numpy(dense).to(device=self.device, dtype=self._dtype)
        elif self.kind == "onnx" and self._onnx.columns is not None:
            inputs = self._onnx.feeds(inputs)  # one input per raw column, by name
        elif self.kind == "onnx":
            dense = _to_float(inputs, n, self._input_dtype())
            inputs = self._onnx.check(dense)
        out = None
        if self.batch_size_ is None or self.chunk_rows_ is None:
            shape = getattr(inputs, "shape", chunk.shape)
            width = max(1, int(np.prod(shape[1:])) if len(shape) > 1 else 1)
            # Rows encoded at a time: about 64 MB of model input, so the preprocess and the
            # conversion run on large blocks.
            self.chunk_rows_ = int(np.clip(_BATCH_BYTES // (4 * width), _BATCH_MIN, _BATCH_MAX))
            if self.batch_size_ is not None:
                pass
            elif self.kind == "torch" and _device.is_gpu(self.device):
                # As many rows as half the free memory holds, at what this first batch took a row.
                out, peak = _device.measure_peak(self.device, lambda: self._run_model(inputs, n))
                self.batch_size_ = _device.gpu_rows(_device.free_bytes(self.device), peak / n, low=_BATCH_MIN)
            elif self.kind == "torch":
                self.batch_size_ = _device.cpu_query_rows(width * dense.itemsize)
            else:
                self.batch_size_ = self.chunk_rows_
            if self.kind == "torch":  # whole model batches in every encoded block
                self.chunk_rows_ = max(1, self.chunk_rows_ // self.batch_size_) * self.batch_size_
            else:
                self.chunk_rows_ = self.batch_size_
        if out is None and self.kind == "torch":
            # Model calls of batch_size_ rows over the encoded block (views, no copies).
            bs = self.batch_size_
            parts = [self._run_model(inputs[i:i + bs], min(bs, n - i)) for i in range(0, n, bs)]
            bad = next((o for o in parts if not isinstance(o, torch.Tensor)), None)
            out = bad if bad is not None else parts[0] if len(parts) == 1 else torch.cat(parts)
        elif out is None:
            out = self._run_model(inputs, n)
        if isinstance(out, torch.Tensor):
            raw = _tensor_to_numpy(out.detach())
        elif self.kind == "torch":
            raise ModelOutputError(f"the torch model returned {type(out).__name__}; expected a tensor")
        elif self.kind == "onnx" and not isinstance(out, np.ndarray):
            raise ModelOutputError(f"the ONNX output {self._onnx.output!r} is a {type(out).__name__}, not a "
                                   "tensor; export classifiers with options={'zipmap': False}")
        elif isinstance(out, (pd.DataFrame, pd.Series)):
            raw = out.to_numpy()
        else:
            raw = np.asarray(out)
        if self.kind == "sklearn" and self.output_ == "labels" and raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw.ravel()
        try:
            self._check_raw(raw, n)
        except ModelOutputError as e:
            # Non-finite answers often come from non-finite inputs: name those instead.
            if dense is not None and not np.isfinite(dense).all():
                cols = np.flatnonzero(~np.isfinite(dense).all(axis=0))[:10].tolist()
                raise ModelOutputError(
                    f"the model's input holds NaN or infinite values in encoded columns {cols}; the "
                    "preprocess must impute missing values before a network can use them"
                ) from e
            raise
        return raw

    def _check_raw(self, raw: np.ndarray, n: int) -> None:
        if raw.ndim == 0 or raw.ndim > 2:
            raise ModelOutputError(f"the model returned an output of shape {raw.shape} for {n} rows; "
                                   "expected (n,) or (n, k)")
        if raw.shape[0] != n:
            raise ModelOutputError(f"the model returned {raw.shape[0]} rows (shape {raw.shape}) "
                                   f"for {n} input rows")
        if raw.dtype.kind in "fc":
            bad = ~np.isfinite(raw)
            if bad.any():
                where = np.argwhere(bad)[0]
                raise ModelOutputError(f"the model returned {int(bad.sum())} NaN or infinite values "
                                       f"(first at index {tuple(int(i) for i in where)}: {raw[tuple(where)]}) "
                                       f"in an output of shape {raw.shape}")
        width = raw.shape[1] if raw.ndim == 2 else 0
        if self._raw_width is None:
            self._raw_width = width
        elif width != self._raw_width:
            shape = lambda w: "(n,)" if w == 0 else f"(n, {w})"  # noqa: E731
            raise ModelOutputError(f"the model's output changed shape from {shape(self._raw_width)} "
                                   f"to {raw.shape} between calls")

    def _resolve(self, raw: np.ndarray, labels: pd.Index | None = None) -> None:
        """Fix the task, the output mode and the classes from the first answer.

        A classifier's outputs are probabilities when the model says so: ``output="proba"``,
        a scikit-learn ``predict_proba``, an ONNX output named like probabilities (``prob`` in
        its name), a torch network whose last layer is ``Softmax`` or ``Sigmoid``; every answer
        is then checked to be one (:meth:`_finish`). Otherwise (``output="auto"``) the first
        answer decides, row by row: probabilities when every row lies in [0, 1] and sums to one
        (within 1e-4), logits when none does; a mix of the two is an error naming a row of
        each, never read one way silently. One output column in [0, 1] is read as
        probabilities from a callable and is an error for other models (logits can fall
        there too); outside [0, 1] it holds logits.
        """
        labels_like = raw.ndim == 1 and raw.dtype.kind not in "fc"
        if self._task is None:
            self._task = "classification" if labels_like or (raw.ndim == 2 and raw.shape[1] >= 2) else "regression"
        if self._task == "regression":
            return
        if self.output_ is None:
            declared = None if self.output != "auto" else self._declared_proba()
            if labels_like:
                self.output_ = "labels"
            elif self.output != "auto":
                self.output_ = self.output
                if self.output == "proba":
                    self.proba_reason_ = "output='proba' was given"
            elif declared is not None:
                self.output_, self.proba_reason_ = "proba", declared
            else:
                cols = raw.reshape(raw.shape[0], -1)
                row_in_unit = np.all((cols >= 0) & (cols <= 1), axis=1)
                if cols.shape[1] > 1:
                    proba_rows = row_in_unit & (np.abs(cols.sum(axis=1) - 1) <= 1e-4)
                    if proba_rows.all():
                        self.output_ = "proba"
                        self.proba_reason_ = "its first answers were probabilities: every row in [0, 1], summing to 1"
                    elif not proba_rows.any():
                        self.output_ = "logits"
                    else:
                        i, j = int(np.argmax(proba_rows)), int(np.argmax(~proba_rows))
                        raise ModelOutputError(
                            f"cannot tell whether the model answers with probabilities or logits: its answer for "
                            f"{_row_name(labels, i)} {_values(cols[i])} is a probability distribution (in [0, 1], summing "
                            f"to 1) but its answer for {_row_name(labels, j)} {_values(cols[j])} is not "
                            f"({int((~proba_rows).sum())} of {len(cols)} rows are not); pass output='proba' or "
                            "output='logits' to say which it gives")
                elif not row_in_unit.all():
                    self.output_ = "logits"
                elif self.kind == "callable":
                    self.output_ = "proba"  # a function's [0, 1] answer
                    self.proba_reason_ = "its one output column lies in [0, 1]"
                else:
                    # Logits of a first batch can all fall in [0, 1]: a guess could be wrong for good.
                    raise ParameterError(
                        f"cannot tell whether the {self.kind} model's single output column holds "
                        "probabilities or logits (its first answers all lie in [0, 1]); pass "
                        "output='proba' or output='logits'"
                    )
        if self.output_ == "labels":
            if self._classes is None:
                values = pd.unique(raw)
                if raw.dtype.kind != "b":
                    warnings.warn(f"classes were not given; using the {len(values)} labels seen in the first "
                                  "query. Pass classes= to fix them", PellucidWarning, stacklevel=3)
                with contextlib.suppress(TypeError):  # labels of mixed types keep their order
                    values = sorted(values)
                self._classes = np.asarray(values, dtype=object)
            return
        k = 1 if raw.ndim == 1 else raw.shape[1]
        if self._classes is None:
            self._classes = np.asarray([0, 1] if k == 1 else list(range(k)), dtype=object)
        elif len(self._classes) != max(k, 2):
            raise ModelOutputError(f"classes has {len(self._classes)} labels but the model outputs {k} "
                                   f"column{'s' if k > 1 else ''} (shape {raw.shape})")

    def _declared_proba(self) -> str | None:
        """Why the model's outputs are probabilities by what the model says of itself (an ONNX
        output's name, a torch network's last layer), or None."""
        if self.kind == "onnx" and "prob" in self._onnx.output.lower():
            return f"the ONNX output {self._onnx.output!r} is named as probabilities"
        if self.kind == "torch":
            last = _last_layer(self.model)
            if last in ("Softmax", "Sigmoid"):
                return f"the network ends in {last}"
        return None

    def _finish(self, raw: np.ndarray, labels: pd.Index | None = None) -> np.ndarray:
        """Turn a checked raw answer into probabilities or values (float64)."""
        if self._task == "regression":
            _check_one_value_per_row(raw.shape)
            try:
                return raw.astype(np.float64).reshape(raw.shape[0])
            except (TypeError, ValueError) as e:
                raise ModelOutputError(f"the model returned non-numeric values of dtype {raw.dtype} "
                                       "for a regression task") from e
        if self.output_ == "labels":
            if raw.ndim != 1:
                raise ModelOutputError(f"expected one label per row; got shape {raw.shape}")
            index = pd.Index(self._classes).get_indexer(raw)
            if (index < 0).any():
                unknown = pd.unique(raw[index < 0])[:5]
                raise ModelOutputError(f"the model returned labels {list(unknown)} that are not in classes "
                                       f"{list(self._classes)}")
            proba = np.zeros((raw.shape[0], len(self._classes)))
            proba[np.arange(raw.shape[0]), index] = 1.0
            return proba
        z = raw.astype(np.float64).reshape(raw.shape[0], -1)
        if self.output_ == "logits":
            if z.shape[1] == 1:
                p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
            else:
                p = _softmax(z)
        else:
            self._check_proba(z, labels)
            p = z
        return np.hstack([1.0 - p, p]) if p.shape[1] == 1 else p

    def _check_proba(self, z: np.ndarray, labels: pd.Index | None) -> None:
        """Every row of an answer read as probabilities is one: no value below 0 or above 1,
        and (several columns) a sum of 1 within 1e-3. The first row that is not is named,
        with its values."""
        outside = ((z < 0) | (z > 1)).any(axis=1)
        off = np.abs(z.sum(axis=1) - 1) > 1e-3 if z.shape[1] > 1 else np.zeros(len(z), dtype=bool)
        bad = outside | off
        if not bad.any():
            return
        i = int(np.argmax(bad))
        row = z[i]
        if (row < 0).any():
            problem = "holds a negative value"
        elif (row > 1).any():
            problem = "holds a value above 1"
        else:
            problem = f"sums to {row.sum():.6g}, not 1"
        more = f"; {int(bad.sum())} of {len(z)} rows are not probabilities" if bad.sum() > 1 else ""
        hint = ("a predict_proba must give probabilities" if self.kind == "sklearn"
                else "pass output='logits' if the model gives logits (scores of any sign)")
        raise ModelOutputError(
            f"the model's answers are read as probabilities ({self.proba_reason_ or 'output=' + repr(self.output)}), "
            f"but its answer for {_row_name(labels, i)} is {_values(row)}, which {problem}{more}; {hint}")

    def _empty(self) -> np.ndarray:
        if self._task == "regression":
            return np.empty(0)
        return np.empty((0, 0 if self._classes is None else len(self._classes)))

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode for a torch module, restoring every submodule's own flag afterwards."""
        if self.kind != "torch":
            yield
            return
        flags = [(m, m.training) for m in self.model.modules()]
        try:
            self.model.eval()
        except NotImplementedError:
            pass  # torch.export modules refuse eval(); their mode was fixed when exported
        try:
            yield
        finally:
            for module, flag in flags:
                module.training = flag

    # ------------------------------------------------------------------ encoding map
    def encoding_map(self, reference: pd.DataFrame) -> EncodingMap:
        """Which encoded columns come from which raw feature.

        Parameters
        ----------
        reference : DataFrame
            Raw rows like those the model is queried on. Probing uses up to 256 of them plus
            one row for each distinct value of every column with at most 256 distinct values.

        Returns
        -------
        EncodingMap
            ``identity`` without preprocess, ``structure`` when read off a fitted
            ColumnTransformer (or a Pipeline ending in one), ``probe`` otherwise: each raw
            feature in turn is replaced by a cyclic shift of its distinct values and the
            encoded columns that change are its group.
        """
        if not isinstance(reference, pd.DataFrame):
            raise ParameterError(f"encoding_map needs a pandas DataFrame of raw rows; got {type(reference).__name__}")
        if len(reference) == 0:
            raise ParameterError("encoding_map needs at least one reference row; got an empty DataFrame")
        names = tuple(str(c) for c in reference.columns)
        if self.preprocess is None:
            expected = getattr(self.model, "n_features_in_", None) if self.kind == "sklearn" else None
            if self.kind == "onnx":
                expected = self._onnx.width
            if expected is not None and expected != len(names):
                raise ParameterError(f"the model expects {expected} input columns but the reference has "
                                     f"{len(names)}; pass the preprocess that maps one to the other")
            return EncodingMap(names, {c: (i,) for i, c in enumerate(names)}, (), len(names), "identity")
        found = self._structure_map(reference)
        if found is not None:
            groups, shared, n_encoded, method = *found, "structure"
        else:
            changes = self._probe(reference, list(reference.columns))
            n_encoded = len(next(iter(changes.values()))) if changes else 0
            groups, shared = _split_changes({str(c): np.flatnonzero(m) for c, m in changes.items()}, n_encoded)
            method = "probe"
        if shared:
            warnings.warn(
                "encoded columns " + ", ".join(f"{i} (from {', '.join(f)})" for i, f in shared.items())
                + " depend on several raw features; they are kept apart from every feature's group",
                PellucidWarning, stacklevel=2)
        placed = {int(i) for g in groups.values() for i in g} | {int(i) for i in shared}
        orphans = [i for i in range(int(n_encoded)) if i not in placed]
        if orphans:
            warnings.warn(
                f"encoded columns {orphans[:20]} did not change with any raw feature of the reference rows "
                "(constant there, e.g. a category the rows never take); they belong to no feature's group",
                PellucidWarning, stacklevel=2)
        ordered = {c: tuple(int(i) for i in groups.get(c, ())) for c in names}
        return EncodingMap(names, ordered, tuple(sorted(int(i) for i in shared)), int(n_encoded), method)

    def _probe(self, reference: pd.DataFrame, features: list) -> dict[Any, np.ndarray]:
        """For each feature, which encoded columns change when it alone is perturbed."""
        sample = reference
        if len(sample) > _PROBE_ROWS:
            rows = set(np.random.default_rng(0).choice(len(sample), _PROBE_ROWS, replace=False).tolist())
            # Each distinct value of a column with few of them, at least once: a rare category
            # must still move its own one-hot column.
            for col in reference.columns:
                codes, uniques = pd.factorize(reference[col], use_na_sentinel=False)
                if len(uniques) <= _PROBE_ROWS:
                    rows.update(np.unique(codes, return_index=True)[1].tolist())
            sample = sample.iloc[sorted(rows)]
        base = self.encode(sample)
        changes = {}
        for col in features:  # a loop over features; rows are handled as one batch each
            shifted = _cyclic_shift(sample[col])
            if shifted is None:
                changes[col] = np.zeros(base.shape[1], dtype=bool)
                continue
            frame = sample.copy()
            frame[col] = shifted
            try:
                enc = self.encode(frame)
            except ModelError as e:
                warnings.warn(f"could not probe feature {col!r} ({e}); it is given no encoded columns",
                              PellucidWarning, stacklevel=3)
                changes[col] = np.zeros(base.shape[1], dtype=bool)
                continue
            if enc.shape != base.shape:
                raise ModelError(f"the preprocess gave {enc.shape[1]} columns when feature {col!r} was changed "
                                 f"but {base.shape[1]} before; it must give a fixed number of columns")
            changes[col] = ((enc != base) & ~(np.isnan(enc) & np.isnan(base))).any(axis=0)
        return changes

    def _structure_map(self, reference: pd.DataFrame) -> tuple[dict, dict, int] | None:
        """Read the map off a fitted ColumnTransformer; None when the preprocess is not one."""
        ct = _column_transformer(self.preprocess)
        if ct is None:
            return None
        columns = list(reference.columns)
        by_name = {str(c): c for c in columns}
        names = getattr(ct, "feature_names_in_", None)
        if names is None:
            names = getattr(self.preprocess, "feature_names_in_", None)
        if names is not None and all(str(n) in by_name for n in names):
            inputs = [str(n) for n in names]
        elif getattr(ct, "n_features_in_", None) == len(columns):
            inputs = [str(c) for c in columns]
        else:
            return None
        # Each block's input positions (kept by scikit-learn >= 1.2); without them, probe.
        positions = getattr(ct, "_transformer_to_input_indices", None)
        if positions is None:
            return None
        n_encoded = max((s.stop for s in ct.output_indices_.values()), default=0)
        if self.encode(reference.iloc[:2]).shape[1] != n_encoded:
            return None
        groups: dict[str, set] = {str(c): set() for c in columns}
        to_probe = []
        for name, trans, _ in ct.transformers_:
            block = ct.output_indices_.get(name, slice(0, 0))
            width = block.stop - block.start
            if width == 0 or (isinstance(trans, str) and trans == "drop"):
                continue
            feats = [inputs[int(i)] for i in positions.get(name, ())]
            counts = _block_counts(trans, len(feats), width)
            if counts is None:
                to_probe.append((block, feats))
                continue
            pos = block.start
            for f, k in zip(feats, counts):
                groups[f].update(range(pos, pos + k))
                pos += k
        shared: dict[int, list[str]] = {}
        if to_probe:
            wanted = sorted({f for _, feats in to_probe for f in feats})
            changes = self._probe(reference, [by_name[f] for f in wanted])
            for block, feats in to_probe:
                inside = np.zeros(n_encoded, dtype=bool)
                inside[block] = True
                hits = {f: np.flatnonzero(changes[by_name[f]] & inside) for f in feats}
                sub_groups, sub_shared = _split_changes(hits, n_encoded)
                for f, cols in sub_groups.items():
                    groups[f].update(cols)
                shared.update(sub_shared)
        return {f: tuple(sorted(g - set(shared))) for f, g in groups.items()}, shared, n_encoded

    # ------------------------------------------------------------------ inputs and determinism
    def input_names(self) -> tuple[tuple[str, ...], str] | None:
        """The names of the raw columns the model takes, in its order, and what records them.

        Returns
        -------
        (names, source) or None
            From the preprocess's ``feature_names_in_`` (a scikit-learn transformer, such as a
            ColumnTransformer, fitted on a DataFrame) when there is a preprocess; else the
            model's ``feature_names_in_`` (a scikit-learn estimator or pipeline); else the
            input names of an ONNX graph with one input per column. None where nothing
            records them (a torch network, a callable, an array-fitted estimator).
        """
        if self.preprocess is not None:
            names = getattr(self.preprocess, "feature_names_in_", None)
            what = f"the preprocess's feature_names_in_ ({_model_name(self.preprocess)})"
        elif self.kind == "sklearn":
            names = getattr(self.model, "feature_names_in_", None)
            what = f"the model's feature_names_in_ ({_model_name(self.model)})"
        elif self.kind == "onnx" and self._onnx.columns is not None:
            names, what = self._onnx.columns, "the ONNX graph's input names"
        else:
            return None
        return None if names is None else (tuple(str(n) for n in names), what)

    def match_columns(self, frame: pd.DataFrame, *, schema: Any = None,
                      what: str = "data") -> tuple[pd.DataFrame, InputColumns]:
        """The table's columns as the model's inputs: checked by name where names are known.

        Where the model records its input names (:meth:`input_names`) or ``schema`` (a saved
        :class:`~pellucid.schema.Schema`) pins them, the table must hold exactly those columns:
        in another order they are taken by name and put in the recorded order (and the result
        says so); a missing column, or one the model does not take, is refused, with a hint
        when such a column looks like the target or an id. Where nothing records names the
        columns go to the model by position, as they are, and the result says that.

        Parameters
        ----------
        frame : DataFrame
            The features (the target and id columns already taken out).
        schema : Schema, optional
            A saved schema the table must match; where the model records names too, the two
            must name the same columns.
        what : str
            How errors call the table.

        Returns
        -------
        (DataFrame, InputColumns)
            The table in the model's column order (itself when nothing changes), and how it
            was matched.

        Raises
        ------
        SchemaError
            Missing columns, columns the model does not take, or a schema that names other
            columns than the model.
        """
        recorded = self.input_names()
        pinned = None if schema is None else (tuple(schema.names), f"the saved schema ({fmt.arg('schema')})")
        if recorded is not None and pinned is not None and set(recorded[0]) != set(pinned[0]):
            only_schema = [n for n in pinned[0] if n not in recorded[0]]
            only_model = [n for n in recorded[0] if n not in pinned[0]]
            raise SchemaError(
                f"{pinned[1]} and {recorded[1]} name different inputs: only the schema has {only_schema[:20]}, "
                f"only the model {only_model[:20]}; save the schema of the table the model was trained on")
        if recorded is None and pinned is None:
            return frame, InputColumns(tuple(str(c) for c in frame.columns), "by position")
        names, source = recorded if recorded is not None else pinned
        by_name = {str(c): c for c in frame.columns}
        missing = [n for n in names if n not in by_name]
        extra = [c for c in by_name if c not in names]
        if missing:
            also = f", and has {extra[:10]}, which it does not take" if extra else ""
            listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
            raise SchemaError(
                f"the {what} lacks column{'s' if len(missing) > 1 else ''} {missing[:20]}, which the model takes (its "
                f"{len(names)} inputs, from {source}: {listed}){also}; the {what} has {list(by_name)[:20]}")
        if extra:
            raise SchemaError(self._extra_columns(frame, by_name, extra, names, source, what))
        order = [by_name[n] for n in names]
        if list(frame.columns) == order:
            return frame, InputColumns(tuple(names), "by name", source)
        return frame[order], InputColumns(tuple(names), "by name", source, reordered=True)

    @staticmethod
    def _extra_columns(frame: pd.DataFrame, by_name: dict, extra: list[str], names: tuple[str, ...], source: str,
                       what: str) -> str:
        """The message for columns the model does not take, with a hint for any that looks like
        the target (its name, or few distinct values) or an id (its name, every value distinct)."""
        hints = []
        for c in extra[:10]:
            s = frame[by_name[c]]
            distinct = s.nunique(dropna=True)
            if _LABEL_NAME.search(c) or distinct <= _LABEL_VALUES:
                hints.append(f"{c!r} looks like the target: name it with {fmt.arg('target')}")
            elif _ID_NAME.search(c) or (distinct == len(s) and not pd.api.types.is_float_dtype(s.dtype)):
                hints.append(f"{c!r} looks like an id: name it with {fmt.arg('id_column')}")
        listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        return (f"the {what} has column{'s' if len(extra) > 1 else ''} {extra[:20]} that the model does not take "
                f"(its {len(names)} inputs, from {source}: {listed}); "
                + ("; ".join(hints) + f"; otherwise drop {'them' if len(extra) > 1 else 'it'}" if hints
                   else f"drop {'them' if len(extra) > 1 else 'it'} before explaining"))

    def check_determinism(self, rows: pd.DataFrame, *, allow: bool = False) -> Determinism:
        """Ask the model twice about the same rows and compare the answers.

        A model whose answers change between two calls on the same rows (noise in its
        forward pass, dropout left on in a function that ignores eval mode) is not a function
        of its input: rules fitted to it measure its randomness, and its disagreement with
        them would read as their limitation. Both queries are counted like any other.

        Parameters
        ----------
        rows : DataFrame
            A small sample of valid raw rows (``explain`` takes up to
            :data:`DETERMINISM_ROWS`, drawn with its seed), indexed by their identities.
        allow : bool
            Return the measured disagreement instead of raising.

        Returns
        -------
        Determinism

        Raises
        ------
        ModelOutputError
            When some answer changed beyond float tolerance (:data:`DETERMINISM_RTOL` of the
            value plus :data:`DETERMINISM_ATOL` of the output's scale) and ``allow`` is False,
            naming the share of rows that changed and the largest difference.
        """
        first = self.query(rows)
        second = self.query(rows)
        a = first.reshape(len(first), -1)
        b = second.reshape(len(second), -1)
        scale = max(1.0, float(np.abs(a).max(initial=0.0))) if self._task == "regression" else 1.0
        diff = np.abs(a - b)
        changed = (diff > DETERMINISM_ATOL * scale + DETERMINISM_RTOL * np.abs(a)).any(axis=1)
        per_row = diff.max(axis=1, initial=0.0)
        worst = int(np.argmax(per_row)) if len(per_row) else 0
        labels = rows.index if isinstance(rows, pd.DataFrame) and not isinstance(rows.index, pd.RangeIndex) else None
        at = _row_id(labels, worst) if changed.any() else None
        found = Determinism(len(a), int(changed.sum()), float(per_row.max(initial=0.0)), at, allowed=bool(allow))
        if not found.deterministic and not allow:
            flag = fmt.arg("allow_nondeterministic") + ("" if fmt.at_cli() else "True")
            raise ModelOutputError(
                f"the model answers differently when asked twice about the same rows: {found.changed} of {found.rows} "
                f"rows ({fmt.pct(found.changed / found.rows)}) changed, the largest difference {found.max_difference:.3g} "
                f"(row {at}); rules and fidelity would measure its randomness (noise, dropout left on). Make it "
                f"deterministic, or pass {flag} to explain it anyway, with the report saying so")
        return found

    # ------------------------------------------------------------------ description
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary of the model and its use, for the report."""
        classes = None if self._classes is None or self._task == "regression" else [str(c) for c in self._classes]
        n_parameters = None
        if self.kind == "torch":
            n_parameters = int(sum(p.numel() for p in self.model.parameters()))
        versions = {"torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__}
        extra = {}
        if self.kind == "onnx":
            versions["onnxruntime"] = sys.modules["onnxruntime"].__version__
            extra["onnx"] = self._onnx.to_dict()
        if self.kind == "torch":
            # A model passed in memory has no file to hash; its weights identify it instead.
            extra["weights_sha256"] = _state_sha256(self.model)
            # How it was saved: a TorchScript module takes no hooks (no LRP, Grad-CAM or concepts).
            extra["format"] = ("torchscript" if isinstance(self.model, torch.jit.ScriptModule) else
                               "torch.export" if isinstance(self.model, torch.fx.GraphModule) else "eager")
        return {
            "kind": self.kind,
            "model_class": _model_name(self.model),
            "task": self._task,
            "n_outputs": self.n_outputs,
            "classes": classes,
            "n_parameters": n_parameters,
            "device": None if self.device is None else str(self.device),
            "preprocess": None if self.preprocess is None else _model_name(self.preprocess),
            # How outputs are read (probabilities, logits, labels); a regressor's are values.
            "output": "values" if self._task == "regression" else (self.output_ if self.output_ is not None else self.output),
            "batch_size": self.batch_size_,
            "n_queries": int(self.n_queries),
            "n_calls": int(self.n_calls),
            "versions": versions,
            "source": self.source,
            "sha256": self.sha256,
            **extra,
        }


# ---------------------------------------------------------------------- helpers
def _state_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, by name, dtype and shape: the same
    weights give the same digest wherever the module was loaded from."""
    digest = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _model_kind(model: Any) -> str:
    if isinstance(model, torch.nn.Module):
        return "torch"
    if _is_onnx_session(model):
        return "onnx"
    if isinstance(model, type):
        raise ModelError(f"got the class {model.__name__}, not an instance: pass a trained model object")
    if hasattr(model, "predict_proba") or hasattr(model, "predict"):
        return "sklearn"
    if callable(model):
        return "callable"
    raise ModelError("expected a torch.nn.Module, an onnxruntime.InferenceSession, a scikit-learn estimator "
                     f"with predict/predict_proba, or a callable; got {type(model).__name__}")


def _check_preprocess(preprocess: Any) -> Any:
    if preprocess is None:
        return None
    if isinstance(preprocess, type):
        raise ParameterError(f"preprocess is the class {preprocess.__name__}; pass a fitted instance")
    if hasattr(preprocess, "transform"):
        try:
            check_is_fitted(preprocess)
        except SklearnNotFittedError as e:
            raise ParameterError(f"the {type(preprocess).__name__} given as preprocess is not fitted; "
                                 "fit it on the training rows first") from e
        except TypeError:
            pass  # has transform but is not a scikit-learn estimator
        return preprocess
    if callable(preprocess):
        return preprocess
    raise ParameterError("preprocess must be None, a fitted transformer with .transform, or a callable; "
                         f"got {type(preprocess).__name__}")


def _check_one_value_per_row(shape: tuple) -> None:
    """A regression answer is (n,) or (n, 1), whether a numpy array or a tensor."""
    if len(shape) == 2 and shape[1] != 1:
        raise ModelOutputError(f"a regression model must return one value per row; got shape {tuple(shape)}")


def _last_layer(model: Any) -> str | None:
    """The class name of a torch module's last registered layer (None for no layers): a network
    ending in ``Softmax`` or ``Sigmoid`` gives probabilities. TorchScript keeps the eager class
    name in ``original_name``."""
    if not isinstance(model, torch.nn.Module):
        return None
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    return getattr(leaves[-1], "original_name", type(leaves[-1]).__name__) if leaves else None


def _row_name(labels: pd.Index | None, i: int) -> str:
    """Row ``i`` of a query as an error names it: by its label in the queried frame (the row's
    identity in the user's data) when there is one, else by its position."""
    return f"row {_row_id(labels, i)}"


def _row_id(labels: pd.Index | None, i: int) -> str:
    return f"{i} of the rows queried" if labels is None else fmt.row(labels[i])


def _values(row: np.ndarray) -> str:
    """A row of outputs as an error shows it: six significant digits each."""
    return "[" + ", ".join(f"{float(v):.6g}" for v in np.ravel(row)[:10]) + (", ...]" if np.size(row) > 10 else "]")


def _params_and_buffers(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _resolve_device(module: torch.nn.Module, device: Any) -> torch.device:
    if device is None:
        first = next(_params_and_buffers(module), None)
        return torch.device("cpu") if first is None else first.device
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ParameterError(f"device must be 'cpu', 'cuda', a torch.device or None; got {device!r}") from e
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:
        warnings.warn(f"device {str(dev)!r} is not available ({e}); using the CPU", PellucidWarning, stacklevel=3)
        return torch.device("cpu")
    return dev


def _model_name(obj: Any) -> str:
    name = getattr(obj, "original_name", None)  # TorchScript keeps the eager class name here
    if isinstance(name, str):
        return name
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return obj.__qualname__
    return type(obj).__name__


def _shape_of(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} of shape {tuple(shape)}" if shape is not None else type(x).__name__


def _softmax(z: np.ndarray, block: int = 65536) -> np.ndarray:
    """Row-wise softmax in float64, block by block in torch: a block stays in cache, and
    numpy's reductions along a short axis are several times slower."""
    out = np.empty_like(z)
    zt, ot = torch.from_numpy(z), torch.from_numpy(out)
    for i in range(0, len(z), block):
        torch.softmax(zt[i:i + block], dim=1, out=ot[i:i + block])
    return out


def _check_rows(X: Any) -> pd.DataFrame | np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        raise ParameterError("expected a DataFrame of rows; got a Series (use frame.iloc[[i]] for one row)")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(f"expected a 2-D table of rows; got an array of shape {X.shape}")
    return X


def _to_float(Z: Any, n: int, dtype: type = np.float32) -> np.ndarray:
    """Dense float 2-D array (float32 by default) from a preprocess output or a numeric frame."""
    if sp.issparse(Z):
        Z = Z.toarray()
    if isinstance(Z, torch.Tensor):
        Z = Z.detach().cpu().numpy()
    if isinstance(Z, pd.DataFrame):
        wrong = [str(c) for c, t in Z.dtypes.items() if not (pd.api.types.is_numeric_dtype(t)
                                                            or pd.api.types.is_bool_dtype(t))]
        if wrong:
            raise ParameterError(f"columns {wrong[:5]} are not numeric; pass a preprocess that encodes them")
        Z = Z.to_numpy(dtype=dtype, na_value=np.nan)
    try:
        Z = np.asarray(Z, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"the model input is not numeric ({e}); pass a preprocess that encodes it") from e
    if Z.ndim != 2 or Z.shape[0] != n:
        raise ModelError(f"the preprocess returned shape {Z.shape} for {n} rows; expected ({n}, n_columns)")
    Z = np.ascontiguousarray(Z)
    # pandas may hand out read-only views; torch.from_numpy warns on those and callers may write.
    return Z if Z.flags.writeable else Z.copy()


def _tensor_to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.cpu()
    if t.is_floating_point():
        t = t.to(torch.float64)  # numpy has no bfloat16
    return t.numpy()


def _cyclic_shift(values: pd.Series) -> pd.Series | None:
    """Each value replaced by the next distinct value, so every row changes."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) >= 2:
        return pd.Series(uniques.take((codes + 1) % len(uniques)), index=values.index)
    if len(uniques) == 1 and not pd.isna(uniques[0]):
        return values.where(pd.Series(False, index=values.index))  # the single value plus NaN
    return None  # all missing: nothing to shift to


def _split_changes(hits: dict[str, np.ndarray], n_encoded: int) -> tuple[dict[str, tuple], dict[int, list[str]]]:
    """Disjoint groups, plus each column hit by two or more features with those features."""
    counts = np.zeros(n_encoded, dtype=int)
    for cols in hits.values():
        counts[cols] += 1
    groups = {f: tuple(int(i) for i in cols if counts[i] == 1) for f, cols in hits.items()}
    shared = {int(i): [f for f, cols in hits.items() if i in cols] for i in np.flatnonzero(counts >= 2)}
    return groups, shared


def _column_transformer(preprocess: Any) -> ColumnTransformer | None:
    if isinstance(preprocess, ColumnTransformer):
        return preprocess
    if isinstance(preprocess, Pipeline) and isinstance(preprocess.steps[-1][1], ColumnTransformer):
        if all(_is_one_to_one(step) for _, step in preprocess.steps[:-1]):
            return preprocess.steps[-1][1]
    return None


def _is_one_to_one(trans: Any) -> bool:
    if trans is None or (isinstance(trans, str) and trans == "passthrough"):
        return True
    if isinstance(trans, Pipeline):
        return all(_is_one_to_one(step) for _, step in trans.steps)
    if isinstance(trans, FunctionTransformer):
        return trans.func is None  # identity, as ColumnTransformer uses for 'passthrough'
    if isinstance(trans, SimpleImputer):
        return not trans.add_indicator
    return isinstance(trans, _ONE_TO_ONE)


def _block_counts(trans: Any, n_in: int, width: int) -> list[int] | None:
    """Output columns per input column of one ColumnTransformer block; None to probe it."""
    if n_in == 1:
        return [width]
    if _is_one_to_one(trans):
        return [1] * n_in if width == n_in else None
    last = trans.steps[-1][1] if isinstance(trans, Pipeline) else trans
    if isinstance(last, OneHotEncoder) and (last is trans or all(_is_one_to_one(s) for _, s in trans.steps[:-1])):
        counts = getattr(last, "_n_features_outs", None)
        if counts is not None and len(counts) == n_in and sum(counts) == width:
            return [int(k) for k in counts]
    return None


# ---------------------------------------------------------------------- onnx
# onnxruntime is imported only when an ONNX model is loaded or built; a session given directly
# proves it is installed, so recognising one needs no import.
_ONNX_FLOATS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
_ONNX_INSTALL = "pip install onnxruntime (or pip install 'pellucid[onnx]')"


def _is_onnx_session(model: Any) -> bool:
    ort = sys.modules.get("onnxruntime")
    return ort is not None and isinstance(model, ort.InferenceSession)


def _is_onnx_proto(model: Any) -> bool:
    cls = type(model)
    return cls.__name__ == "ModelProto" and cls.__module__.split(".")[0] == "onnx"


def _onnx_session(source: str | bytes, what: str, error: type[PellucidError]) -> Any:
    """A CPU ``InferenceSession`` from a file name or serialised model; failures raise ``error``."""
    try:
        import onnxruntime
    except ImportError as e:
        raise error(f"loading {what} needs onnxruntime, which is not installed: {_ONNX_INSTALL}") from e
    try:
        return onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise error(f"cannot load {what} with onnxruntime: {type(e).__name__}: {e}") from e


def _node_args(args: Any) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"name": a.name, "type": a.type,
         "shape": None if a.shape is None else [d if isinstance(d, (int, str)) else None for d in a.shape]}
        for a in args
    )


#: Element types an ONNX input of one raw column may declare (numpy type fed, object for text).
_ONNX_COLUMN_TYPES = {**_ONNX_FLOATS, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                      "tensor(bool)": np.bool_, "tensor(string)": object}


@dataclass(frozen=True)
class _OnnxSignature:
    """The input(s) and the chosen output of an ONNX graph (see :func:`_onnx_signature`): one
    (rows, columns) float matrix, or one (rows, 1) input per raw column, named as the column
    (as skl2onnx exports a pipeline fitted on a DataFrame)."""

    input: str
    output: str
    dtype: type
    batch: int | None  # a fixed row count the graph declares
    width: int | None  # a fixed column count the graph declares
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    columns: tuple[str, ...] | None = None  # one input per raw column, named as the column
    column_types: tuple[Any, ...] = ()

    def feeds(self, rows: Any) -> dict[str, np.ndarray]:
        """One (n, 1) array per column input, taken by name from a frame (by position from an
        array), of the type the input declares; missing values only where it takes floats."""
        frame = isinstance(rows, pd.DataFrame)
        have = {str(c): c for c in rows.columns} if frame else {}
        out = {}
        for i, (name, kind) in enumerate(zip(self.columns, self.column_types)):
            if frame and name not in have:
                raise ModelError(f"the ONNX graph takes input {name!r} but the rows have no column of that name "
                                 f"(they have {list(have)[:20]})")
            values = rows[have[name]].to_numpy() if frame else np.asarray(rows)[:, i]
            missing = pd.isna(values)
            if missing.any() and kind not in _ONNX_FLOATS.values():
                raise ModelError(f"column {name!r} has {int(missing.sum())} missing values, which the ONNX input "
                                 f"{name!r} ({kind.__name__ if kind is not object else 'text'}) cannot take; "
                                 "impute them before explaining")
            try:
                arr = values.astype(str).astype(object) if kind is object else values.astype(kind)
            except (TypeError, ValueError) as e:
                raise ModelError(f"column {name!r} cannot be fed to the ONNX input {name!r}, which takes "
                                 f"{kind.__name__}: {e}") from e
            out[name] = arr.reshape(-1, 1)
        return out

    def check(self, x: np.ndarray) -> np.ndarray:
        """``x`` itself, once its shape fits the declared input."""
        if self.width is not None and x.shape[1] != self.width:
            raise ModelError(f"the ONNX input {self.input!r} takes {self.width} columns but the encoded rows have "
                             f"{x.shape[1]} (shape {x.shape}); check the preprocess")
        if self.batch is not None and x.shape[0] != self.batch:
            raise ModelError(f"the ONNX input {self.input!r} has a fixed batch dimension of {self.batch} rows but "
                             f"pellucid sends batches of any size (here {x.shape[0]}); export the graph with a "
                             "dynamic first axis")
        return x

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output,
                "inputs": list(self.inputs), "outputs": list(self.outputs)}


def _onnx_signature(session: Any) -> _OnnxSignature:
    """Check the graph's single float input of shape (rows, columns) and choose its output:
    the only one; else the first 2-D float tensor whose name contains "prob"; else the first
    float tensor. Sequence outputs (skl2onnx's ZipMap) are refused."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    columns = None
    if len(inputs) > 1:
        # Each a (rows, 1) column (a symbolic width may be 1 too).
        one_column = [a.type in _ONNX_COLUMN_TYPES and a.shape is not None and len(a.shape) == 2
                      and (a.shape[1] == 1 or not isinstance(a.shape[1], int)) for a in inputs]
        if not all(one_column):
            raise ModelError(f"the ONNX graph has {len(inputs)} inputs {[a.name for a in inputs]}; pellucid feeds "
                             "exactly one (rows, columns) float matrix, or one (rows, 1) input per raw column")
        columns = tuple(a.name for a in inputs)
    inp = inputs[0]
    dtype = _ONNX_FLOATS.get(inp.type, np.float32 if columns else None)
    if dtype is None:
        raise ModelError(f"the ONNX input {inp.name!r} is {inp.type}; pellucid feeds a float matrix "
                         f"({', '.join(_ONNX_FLOATS)})")
    shape = None if inp.shape is None else list(inp.shape)
    if shape is not None and len(shape) != 2:
        raise ModelError(f"the ONNX input {inp.name!r} has shape {shape}; pellucid feeds a 2-D (rows, columns) matrix")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape or (None, None)]
    if not outputs:
        raise ModelError("the ONNX graph has no outputs")
    floats = [o for o in outputs if o.type in _ONNX_FLOATS]
    proba = [o for o in floats if "prob" in o.name.lower() and o.shape is not None and len(o.shape) == 2]
    chosen = outputs[0] if len(outputs) == 1 else (proba or floats or outputs)[0]
    others = [o for o in outputs if not o.type.startswith("tensor(")]
    if others and chosen.type not in _ONNX_FLOATS:
        raise ModelOutputError(
            f"the ONNX output {others[0].name!r} is {others[0].type}, a sequence of maps (skl2onnx's ZipMap), "
            "which pellucid cannot read; export the classifier with options={'zipmap': False}")
    if columns is not None:
        return _OnnxSignature(inp.name, chosen.name, dtype, fixed[0], None, _node_args(inputs), _node_args(outputs),
                              columns, tuple(_ONNX_COLUMN_TYPES[a.type] for a in inputs))
    return _OnnxSignature(inp.name, chosen.name, dtype, fixed[0], fixed[1], _node_args(inputs), _node_args(outputs))


# ---------------------------------------------------------------------- loading
_MODULE_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ATTR = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def load_model(spec: str) -> object:
    """Load a model (or preprocessing) from a command-line specification.

    Parameters
    ----------
    spec : str
        One of

        - ``path/to/file.py:attr`` -- import the file and take ``attr``;
        - ``package.module:attr`` -- import the module and take ``attr``;
        - ``*.pt``, ``*.pth``, ``*.ts`` -- TorchScript (``torch.jit.load``); a weights-only
          file holding a state dict is refused, since it has no architecture;
        - ``*.pt2`` -- a ``torch.export`` program, whose module is returned;
        - ``*.onnx`` -- an ``onnxruntime.InferenceSession`` on the CPU execution provider only
          (needs ``pip install pellucid[onnx]``);
        - ``*.joblib``, ``*.pkl``, ``*.pickle`` -- joblib or pickle.

        When ``attr`` is a function that takes no required argument it is called as a factory
        and its result returned: a model, an :class:`Oracle`, or a ``(model, preprocess)``
        tuple. Pickles run code when loaded; the CLI loads them only because the user passes
        the file.

    Returns
    -------
    object

    Raises
    ------
    ModelLoadError
        A missing file or attribute, a failing import or factory, an unknown extension, or
        a file that cannot be read.
    """
    if not isinstance(spec, (str, Path)):
        raise ModelLoadError(f"a model specification must be a string; got {type(spec).__name__}")
    spec = str(spec)
    if ":" in spec:
        left, attr = spec.rsplit(":", 1)
        if left.endswith(".py") and _ATTR.match(attr):
            return _maybe_factory(_getattr(_import_file(Path(left).expanduser()), attr, left), spec)
        if _MODULE_SPEC.match(left) and _ATTR.match(attr):
            try:
                module = importlib.import_module(left)
            except Exception as e:
                raise ModelLoadError(f"cannot import module {left!r} for {spec!r}: {type(e).__name__}: {e}") from e
            return _maybe_factory(_getattr(module, attr, left), spec)
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    loaders: dict[str, Callable[[Path], object]] = {
        ".pt": _load_torch, ".pth": _load_torch, ".ts": _load_torch, ".pt2": _load_exported,
        ".onnx": _load_onnx, ".joblib": _load_joblib, ".pkl": _load_pickle, ".pickle": _load_pickle,
    }
    if suffix not in loaders:
        raise ModelLoadError(f"cannot tell how to load {spec!r}: expected file.py:attr, package.module:attr, "
                             "or a .pt/.pth/.ts, .pt2, .onnx, .joblib, .pkl or .pickle file")
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    return loaders[suffix](path)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    # A unique name, so two files called model.py do not overwrite each other in sys.modules.
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_pellucid_spec_{stem}_{uuid.uuid4().hex[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # lets the file import its neighbours, during the import only
    sys.modules[name] = module  # classes defined there must be findable (pickling, dataclasses)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing {str(path)!r} failed: {type(e).__name__}: {e}") from e
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


def _getattr(module: Any, attr: str, where: str) -> Any:
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            public = sorted(n for n in dir(module) if not n.startswith("_"))[:20]
            raise ModelLoadError(f"{where!r} has no attribute {attr!r} (it defines {public})") from e
    return obj


def _maybe_factory(obj: Any, spec: str) -> Any:
    """Call a zero-argument function (a factory) and return what it makes."""
    if isinstance(obj, torch.nn.Module) or isinstance(obj, type) or hasattr(obj, "predict") \
            or hasattr(obj, "transform"):
        return obj
    if not (inspect.isfunction(obj) or inspect.ismethod(obj) or isinstance(obj, functools.partial)):
        return obj
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return obj
    required = [p for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        return obj  # a callable model, not a factory
    try:
        return obj()
    except Exception as e:
        raise ModelLoadError(f"the factory {spec!r} raised {type(e).__name__}: {e}") from e


def _load_torch(path: Path) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript files remain loadable
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as script_error:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelLoadError(
                f"{str(path)!r} is neither TorchScript ({type(script_error).__name__}: {script_error}) nor a "
                f"weights-only torch file ({type(e).__name__}); save the model with torch.jit.save or "
                "torch.export, or pass file.py:attr") from e
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        raise ModelLoadError(f"{str(path)!r} holds weights (a state dict) but no architecture; pass "
                             "`file.py:attr` that builds the model and loads them instead")
    raise ModelLoadError(f"{str(path)!r} holds a {type(obj).__name__}, not a model")


def _load_exported(path: Path) -> object:
    try:
        return torch.export.load(str(path)).module()
    except Exception as e:
        raise ModelLoadError(f"cannot load {str(path)!r} with torch.export.load: {type(e).__name__}: {e}") from e


def _load_onnx(path: Path) -> object:
    return _onnx_session(str(path), repr(str(path)), ModelLoadError)


def _load_joblib(path: Path) -> object:
    import joblib

    try:
        return joblib.load(path)
    except Exception as e:
        raise ModelLoadError(f"cannot load {str(path)!r} with joblib: {type(e).__name__}: {e}") from e


def _load_pickle(path: Path) -> object:
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as e:
        raise ModelLoadError(f"cannot unpickle {str(path)!r}: {type(e).__name__}: {e}") from e


def _spec_file(spec: str) -> Path | None:
    """The file a specification names, if any."""
    left = spec.rsplit(":", 1)[0] if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py") else spec
    path = Path(left).expanduser()
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
