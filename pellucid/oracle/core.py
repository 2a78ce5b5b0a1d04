"""The one door to the user's model.

An :class:`Oracle` wraps whatever the user trained -- a torch module (eager, TorchScript or
``torch.export``), an ONNX graph in an ``onnxruntime.InferenceSession``, a scikit-learn
estimator or pipeline, or a plain callable -- together with the preprocessing that turns raw
rows into the model's input. Everything else in pellucid asks
the oracle and never calls the model itself, so that batching, eval mode, output checks,
query counting and error messages live in one place. What differs between kinds of model
lives in one adapter per kind (:mod:`pellucid.oracle.adapters`).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from .. import _validation as fmt
from ..errors import (
    ModelError,
    ModelLoadError,
    ModelOutputError,
    ParameterError,
    PellucidError,
    PellucidWarning,
    SchemaError,
)
from .adapters import (
    _BATCH_MIN,
    Adapter,
    _is_onnx_proto,
    _model_name,
    _onnx_session,
    _tensor_to_numpy,
    _to_float,
    make_adapter,
    model_kind,
)
from .encoding import EncodingMap, build_encoding_map
from .loaders import _sha256, _spec_file, load_model

__all__ = ["Oracle", "InputColumns", "Determinism", "DETERMINISM_ROWS", "DETERMINISM_RTOL", "DETERMINISM_ATOL",
           "FIRST_BLOCK_ROWS"]

_TASKS = ("classification", "regression")
_OUTPUTS = ("auto", "proba", "logits")
_BATCH_BYTES = 64 * 2**20
_BATCH_MAX = 262144
_PROB_FLOOR = 1e-12  # probabilities read as log-odds are kept inside [floor, 1 - floor]
_COUNTING = threading.Lock()  # the query counts of every Oracle (see Oracle._count)
#: Rows of a query's first block, before the batch sizes are known (they are chosen on it).
FIRST_BLOCK_ROWS = _BATCH_MIN
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
        return (f"Asked twice about the same {self.rows} rows, the model changed its answer "
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
        kind = model_kind(model)
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
        #: What differs between kinds of model: feeding it, reading what it says of itself.
        self.adapter: Adapter = make_adapter(model, kind, device, stacklevel=3)
        self.adapter.check_preprocess(self.preprocess)
        self.kind = self.adapter.kind
        task, self.output_, self.proba_reason_, self._classes = self.adapter.initial_state(task, self._classes)
        self._task = task
        if self.batch_size_ is not None and not self.adapter.whole_batches:
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
    def model(self) -> Any:
        """The wrapped model (an ONNX ``ModelProto`` or a ``torch.export`` program as the
        session or module that runs it)."""
        return self.adapter.model

    @model.setter
    def model(self, value: Any) -> None:
        self.adapter.model = value

    @property
    def device(self) -> torch.device | None:
        """Where torch inputs are placed (None for other models)."""
        return self.adapter.device

    @property
    def tensor_dtype(self) -> torch.dtype:
        """The dtype of the tensors :meth:`forward` takes and computes in.

        Returns
        -------
        torch.dtype
            The torch module's floating dtype (``torch.float64`` for a double-precision
            module), ``torch.float32`` for a module without floating parameters and for
            models other than torch.
        """
        return self.adapter.tensor_dtype

    @property
    def resolved_task(self) -> str | None:
        """The task if known yet, else None (where :attr:`task` raises).

        Returns
        -------
        {"classification", "regression"} or None
            Given, read off a scikit-learn estimator, implied by ``classes=``, or fixed by the
            first answer.
        """
        return self._task

    @property
    def resolved_classes(self) -> np.ndarray | None:
        """The class labels if known yet, else None (where :attr:`classes_` raises).

        Returns
        -------
        ndarray of object or None
            None too for a regressor.
        """
        return None if self._task == "regression" else self._classes

    @property
    def is_resolved(self) -> bool:
        """Whether the model's first answer has been read.

        Returns
        -------
        bool
            True once the task, the width of the raw answer and (for a classifier) the output
            mode are fixed: an oracle copied then (to another process) answers as this one.
            The batch sizes (``batch_size_``, ``chunk_rows_``) are set on the same answer.
        """
        return self._task is not None and self._raw_width is not None and (
            self._task == "regression" or self.output_ is not None)

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
        return self._answer(_check_rows(X), encoded=False)

    def query_encoded(self, Z: np.ndarray) -> np.ndarray:
        """The model's answer for rows already in the model's input form (the output of
        :meth:`encode`), with the checks and conversions of :meth:`query`.

        Methods that build many rows from encoded blocks (Shapley values) call the model
        without encoding each row again.
        """
        Z = np.asarray(Z)
        if Z.ndim != 2:
            raise ParameterError(f"query_encoded expects a 2-D array of encoded rows; got shape {Z.shape}")
        return self._answer(Z, encoded=True)

    def _answer(self, X: Any, *, encoded: bool) -> np.ndarray:
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
                parts.append(self._call(chunk, encoded=encoded))
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
        if self.preprocess is None:
            return _to_float(X, X.shape[0], self.adapter.input_dtype)
        key = _encoded_key(self.preprocess, X, self.adapter.input_dtype)
        found = None if key is None else _ENCODED.get(key)
        if found is not None:
            return found.copy()
        out = _to_float(self._transform(X), X.shape[0], self.adapter.input_dtype)
        if key is not None:
            _ENCODED.put(key, out.copy())
        return out

    def forward(self, x: torch.Tensor, *, grad: bool = True) -> torch.Tensor:
        """Differentiable map from the encoded input to the answer (torch models only).

        Parameters
        ----------
        x : Tensor of shape (n, n_encoded)
            Encoded input, e.g. ``torch.from_numpy(oracle.encode(X))``.
        grad : bool
            False: answer without recording a graph (many rows, no gradients wanted).

        Returns
        -------
        Tensor
            Probabilities (n, n_classes) for classification, values (n,) for regression,
            computed with gradients enabled and the module in eval mode.
        """
        self.adapter.check_differentiable()
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ParameterError(f"forward expects a 2-D tensor of encoded rows; got {_shape_of(x)}")
        with torch.set_grad_enabled(grad):  # gradients even inside a caller's no_grad
            return self._forward(x.to(device=self.device, dtype=self.tensor_dtype))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        with self._eval_mode():
            out = self._run_model(x, n)
        return self._from_output(out, n)

    def answer_output(self, out: torch.Tensor) -> torch.Tensor:
        """The answer (probabilities or values, as :meth:`forward` gives) for the module's
        output on rows the caller ran through the module itself, e.g. layer by layer; checked
        as :meth:`forward` checks and counted as that many queries in one call."""
        self.adapter.check_differentiable()
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(f"answer_output expects the module's output tensor; got {type(out).__name__}")
        n = out.shape[0] if out.dim() else 0
        self._count(n)
        return self._from_output(out, n)

    @property
    def two_logits(self) -> bool:
        """Whether the module answers a two-class task with two logits (once an answer has
        fixed its output mode): its probabilities are then the logistic function of their gap."""
        return self._task == "classification" and self.output_ == "logits" and self._raw_width == 2

    def answer_gap(self, gap: torch.Tensor, *, log_odds: bool = False) -> torch.Tensor:
        """The probability of the second class for rows whose two logits differ by ``gap``
        (second minus first; pass minus that gap for the first class), as :meth:`forward` gives
        it for a module of :attr:`two_logits`, or with ``log_odds`` its log-odds (the gap
        itself); checked and counted as :meth:`answer_output`."""
        self.adapter.check_differentiable()
        if not self.two_logits:
            raise ModelError("answer_gap needs a two-class module answering two logits")
        n = gap.shape[0] if gap.dim() else 0
        if gap.dim() != 1:
            raise ModelOutputError(f"answer_gap expects one gap per row; got shape {tuple(gap.shape)}")
        self._count(n)
        _check_finite(gap, n)
        return gap if log_odds else torch.sigmoid(gap)

    def answer_log_odds(self, out: torch.Tensor) -> torch.Tensor:
        """Each class's log-odds ``log p / (1 - p)`` ``(n, classes)`` for the module's output on
        rows the caller ran through the module itself; checked and counted as
        :meth:`answer_output`. From logits they are exact at any confidence (``z_c`` minus the
        log-sum-exp of the other logits), where probabilities in float32 round to 1 beyond a
        gap of about 17; from probabilities they are read with the probabilities kept inside
        ``[1e-12, 1 - 1e-12]``."""
        p = self.answer_output(out)
        if self._task != "classification":
            raise ModelError("log-odds need a classifier; this model is a regressor")
        if self.output_ != "logits":
            q = p.to(torch.float64).clamp(_PROB_FLOOR, 1 - _PROB_FLOOR)
            return torch.log(q) - torch.log1p(-q)
        z = out.reshape(out.shape[0], -1).to(torch.float64)
        if z.shape[1] == 1:  # one logit: class 1 is z, class 0 is -z
            return torch.cat([-z, z], dim=1)
        if z.shape[1] == 2:
            gap = z[:, 1:] - z[:, :1]
            return torch.cat([-gap, gap], dim=1)
        others = z.unsqueeze(1).expand(-1, z.shape[1], -1).clone()
        others.diagonal(dim1=1, dim2=2).fill_(-torch.inf)  # each class against the other classes
        return z - torch.logsumexp(others, dim=2)

    def _from_output(self, out: Any, n: int) -> torch.Tensor:
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
            _check_finite(out, n)
        if self._task == "regression":
            _check_one_value_per_row(tuple(out.shape))
            return out.reshape(n)
        if self.output_ == "labels":
            raise ModelError("the torch model returns labels, which cannot be differentiated")
        if out.dim() == 1:
            out = out.unsqueeze(1)
        if self.output_ == "logits":
            if out.shape[1] == 2:
                # Two logits: the softmax is the logistic function of their difference, the same
                # numbers to rounding; torch's softmax over a dimension of 2 is some 10 times
                # slower on the CPU, which Shapley values' millions of rows feel.
                gap = out[:, 1:] - out[:, :1]
                return torch.cat([torch.sigmoid(-gap), torch.sigmoid(gap)], dim=1)
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

    def _count(self, n: int) -> None:
        """One more call of ``n`` rows; threads that query at once (Shapley values' row
        blocks) lose no count."""
        with _COUNTING:
            self.n_calls += 1
            self.n_queries += n

    def _run_model(self, inputs: Any, n: int) -> Any:
        self._count(n)
        try:
            return self.adapter.run(inputs, self.output_)
        except Exception as e:
            hint = ""
            if "Guard failed" in str(e):
                hint = " (an exported program needs a dynamic batch dimension: torch.export with dynamic_shapes)"
            raise ModelError(
                f"the model raised {type(e).__name__}: {e} while answering {n} rows{hint}"
            ) from e

    def _call(self, chunk: Any, encoded: bool = False) -> np.ndarray:
        """One batch: encode (unless ``encoded``), call, convert to numpy, check."""
        n = chunk.shape[0]
        inputs = self._transform(chunk) if self.preprocess is not None and not encoded else chunk
        inputs, dense = self.adapter.prepare(inputs, n)
        out = None
        if self.batch_size_ is None or self.chunk_rows_ is None:
            shape = getattr(inputs, "shape", chunk.shape)
            width = max(1, int(np.prod(shape[1:])) if len(shape) > 1 else 1)
            # Rows encoded at a time: about 64 MB of model input, so the preprocess and the
            # conversion run on large blocks.
            self.chunk_rows_ = int(np.clip(_BATCH_BYTES // (4 * width), _BATCH_MIN, _BATCH_MAX))
            if self.batch_size_ is None:
                # The adapter's choice (a torch module's, for its activations), else one block.
                self.batch_size_, out = self.adapter.choose_batch_size(self._run_model, inputs, dense, n, width,
                                                                       self.chunk_rows_)
            if self.adapter.whole_batches:  # whole model batches in every encoded block
                self.chunk_rows_ = max(1, self.chunk_rows_ // self.batch_size_) * self.batch_size_
            else:
                self.chunk_rows_ = self.batch_size_
        if out is None and self.adapter.whole_batches:
            # Model calls of batch_size_ rows over the encoded block (views, no copies).
            bs = self.batch_size_
            parts = [self._run_model(inputs[i:i + bs], min(bs, n - i)) for i in range(0, n, bs)]
            bad = next((o for o in parts if not isinstance(o, torch.Tensor)), None)
            out = bad if bad is not None else parts[0] if len(parts) == 1 else torch.cat(parts)
        elif out is None:
            out = self._run_model(inputs, n)
        if isinstance(out, torch.Tensor):
            raw = _tensor_to_numpy(out.detach())
        else:
            self.adapter.check_output(out)  # a torch module must give a tensor, an ONNX graph an array
            raw = out.to_numpy() if isinstance(out, (pd.DataFrame, pd.Series)) else np.asarray(out)
        raw = self.adapter.adjust_raw(raw, self.output_)
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
                elif self.adapter.unit_column_is_proba:
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
        return self.adapter.declared_proba()

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
        hint = self.adapter.proba_hint
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
        with self.adapter.eval_mode():
            yield

    # ------------------------------------------------------------------ encoding map
    def encoding_map(self, reference: pd.DataFrame) -> EncodingMap:
        """Which encoded columns come from which raw feature, read off a fitted
        ColumnTransformer or found by probing ``reference`` rows:
        :func:`pellucid.oracle.encoding.build_encoding_map` with this oracle."""
        return build_encoding_map(self, reference)

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
        else:
            own = self.adapter.input_names()  # a scikit-learn estimator's, an ONNX graph's per-column inputs
            if own is None:
                return None
            names, what = own
        return None if names is None else (tuple(str(n) for n in names), what)

    def text_inputs(self) -> set[str]:
        """Raw input columns that the preprocess (else the scikit-learn model) encodes as text:
        those whose one-hot, ordinal or target encoder was fitted on string categories. A CSV
        file carries no types, so a column of codes such as ``"01234"`` reads as the number
        1234; knowing the model fitted it as text, the reader keeps it as written. Empty when
        nothing records it (a torch network, a callable)."""
        return _text_columns(self.preprocess if self.preprocess is not None else self.adapter.model)

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
        n_parameters = self.adapter.n_parameters
        versions = {"torch": torch.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
                    **self.adapter.versions()}
        extra = self.adapter.describe()
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


# ---------------------------------------------------------------------- encoded rows
#: Rows of a table whose encoding :meth:`Oracle.encode` keeps: explanations encode the same few
#: hundred rows (the rows explained, a background sample) again and again, and a fitted
#: ColumnTransformer's call costs some 25 ms however few its rows.
_ENCODED_ROWS = 16384
_ENCODED_ENTRIES = 16


class _EncodedCache:
    """The latest encodings (least recently used dropped first), keyed by the exact content of
    the table and of the fitted preprocess (see :func:`_encoded_key`): a preprocess fitted
    again, or one row changed, is another key, never a stale answer."""

    def __init__(self, entries: int) -> None:
        import collections
        import threading

        self.entries = entries
        self.items: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: bytes) -> np.ndarray | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: bytes, value: np.ndarray) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.entries:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_ENCODED = _EncodedCache(_ENCODED_ENTRIES)


def _encoded_key(preprocess: Any, X: Any, dtype: Any) -> bytes | None:
    """The key of ``X``'s encoding by ``preprocess`` as ``dtype``: a hash of the pickled
    preprocess (its fitted state, exactly) and of the pickled table (values bit for bit, dtypes,
    columns, labels). None, so nothing is kept, for anything but a DataFrame of at most
    :data:`_ENCODED_ROWS` rows encoded by a scikit-learn estimator (a function's answer may
    depend on more than what pickling it records), or what cannot be pickled."""
    import hashlib
    import pickle

    if not isinstance(X, pd.DataFrame) or len(X) > _ENCODED_ROWS or not isinstance(preprocess, BaseEstimator):
        return None
    try:
        h = hashlib.sha256(pickle.dumps(preprocess, protocol=5))
        h.update(pickle.dumps((str(dtype), X), protocol=5))
    except Exception:  # noqa: BLE001 - what cannot be pickled is encoded every time
        return None
    return h.digest()


# ---------------------------------------------------------------------- helpers
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


def _check_finite(out: torch.Tensor, n: int) -> None:
    """Refuse a module's answer for ``n`` rows that holds NaN or an infinity (checked on its
    device, without a copy to the host)."""
    if not bool(torch.isfinite(out.detach()).all()):
        raise ModelOutputError(f"the model returned NaN or infinite values for {n} rows")


def _check_one_value_per_row(shape: tuple) -> None:
    """A regression answer is (n,) or (n, 1), whether a numpy array or a tensor."""
    if len(shape) == 2 and shape[1] != 1:
        raise ModelOutputError(f"a regression model must return one value per row; got shape {tuple(shape)}")


def _row_name(labels: pd.Index | None, i: int) -> str:
    """Row ``i`` of a query as an error names it: by its label in the queried frame (the row's
    identity in the user's data) when there is one, else by its position."""
    return f"row {_row_id(labels, i)}"


def _row_id(labels: pd.Index | None, i: int) -> str:
    return f"{i} of the rows queried" if labels is None else fmt.row(labels[i])


def _values(row: np.ndarray) -> str:
    """A row of outputs as an error shows it: six significant digits each."""
    return "[" + ", ".join(f"{float(v):.6g}" for v in np.ravel(row)[:10]) + (", ...]" if np.size(row) > 10 else "]")


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


def _text_columns(obj: Any) -> set[str]:
    """The raw columns a scikit-learn transformer or pipeline encodes as text (see
    :meth:`Oracle.text_inputs`): a pipeline's first step sees the raw columns; a
    ColumnTransformer hands each of its transformers its own columns; in a transformer (or a
    pipeline of them) the first step with ``categories_`` decides, column by column, by the
    kind of its fitted categories."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return set()
    if isinstance(obj, Pipeline):
        return _text_columns(obj.steps[0][1]) if obj.steps else set()
    names = getattr(obj, "feature_names_in_", None)
    if isinstance(obj, ColumnTransformer):
        out: set[str] = set()
        for _, trans, cols in getattr(obj, "transformers_", []):
            if isinstance(trans, str):  # "drop", "passthrough"
                continue
            picked = _picked(cols, names)
            out |= {picked[i] for i in _text_positions(trans) if i < len(picked)}
        return out
    return {str(names[i]) for i in _text_positions(obj) if names is not None and i < len(names)}


def _text_positions(trans: Any) -> list[int]:
    """Positions among a transformer's input columns that its encoder fitted as text."""
    from sklearn.pipeline import Pipeline

    steps = [t for _, t in trans.steps] if isinstance(trans, Pipeline) else [trans]
    for step in steps:
        cats = getattr(step, "categories_", None)
        if cats is not None:
            return [i for i, c in enumerate(cats) if np.asarray(c).dtype.kind in "OUS"
                    and any(isinstance(v, str) for v in np.asarray(c).ravel())]
    return []


def _picked(cols: Any, names: Any) -> list[str]:
    """A ColumnTransformer entry's columns as names (given as names, positions, a slice or a mask)."""
    if isinstance(cols, str):
        return [cols]
    if isinstance(cols, slice):
        return [] if names is None else [str(n) for n in list(names)[cols]]
    cols = list(np.atleast_1d(cols))
    if cols and isinstance(cols[0], (bool, np.bool_)):
        return [] if names is None else [str(n) for n, keep in zip(names, cols) if keep]
    if cols and isinstance(cols[0], (int, np.integer)):
        return [] if names is None else [str(names[int(i)]) for i in cols]
    return [str(c) for c in cols]
