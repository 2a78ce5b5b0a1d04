"""One adapter per kind of model the :class:`~pellucid.oracle.Oracle` wraps.

An adapter knows how to feed one kind of model and how to read what it says of itself: a torch
module (eager, TorchScript or ``torch.export``), an ONNX ``InferenceSession``, a scikit-learn
estimator or pipeline, or a plain callable. The oracle does the rest -- batching, counting,
output checks, classes -- the same way for all of them, and asks its adapter only through the
small interface of :class:`Adapter`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from .. import _device
from ..errors import (
    ModelError,
    ModelOutputError,
    ParameterError,
    PellucidError,
    PellucidWarning,
)

__all__ = ["Adapter", "TorchAdapter", "TorchScriptAdapter", "ExportedAdapter", "OnnxAdapter", "SklearnAdapter",
           "CallableAdapter", "make_adapter", "model_kind"]

#: Fewest rows of a model call or an encoded block chosen by default.
_BATCH_MIN = 1024


class Adapter:
    """How the oracle talks to one kind of model.

    Parameters
    ----------
    model : object
        The model, as the oracle holds it.

    Attributes
    ----------
    kind : {"torch", "onnx", "sklearn", "callable"}
        The oracle's ``kind``.
    whole_batches : bool
        Whether an encoded block holds several model calls (a torch module, whose batch is
        chosen for its activations) rather than being one call.
    unit_column_is_proba : bool
        Whether one output column lying in [0, 1] is read as probabilities (a callable) rather
        than refused as ambiguous.
    proba_hint : str
        The advice given when an answer read as probabilities is not one.
    """

    kind = "callable"
    whole_batches = False
    unit_column_is_proba = False
    proba_hint = "pass output='logits' if the model gives logits (scores of any sign)"

    def __init__(self, model: Any) -> None:
        self.model = model

    # -------------------------------------------------------------- inputs
    @property
    def device(self) -> torch.device | None:
        """Where torch inputs are placed (None for models other than torch)."""
        return None

    @property
    def tensor_dtype(self) -> torch.dtype:
        """The dtype of the tensors :meth:`~pellucid.oracle.Oracle.forward` computes in."""
        return torch.float32

    @property
    def input_dtype(self) -> type:
        """The numpy dtype of the encoded input (float32 unless the model computes in double)."""
        return np.float64 if self.tensor_dtype == torch.float64 else np.float32

    def check_preprocess(self, preprocess: Any) -> None:
        """Refuse a preprocess the model cannot take (an ONNX graph with its own)."""

    def initial_state(self, task: str | None, classes: np.ndarray | None) -> tuple:
        """What the model says before any query: ``(task, output_, proba_reason_, classes)``."""
        return task, None, None, classes

    def prepare(self, inputs: Any, n: int) -> tuple[Any, np.ndarray | None]:
        """The preprocess output (or raw rows) as the model takes it, and the dense float array
        it was made from (None where the model takes the rows as they are)."""
        return inputs, None

    def expected_width(self) -> int | None:
        """Input columns the model declares, when it declares them."""
        return None

    def input_names(self) -> tuple[Any, str] | None:
        """The names of the model's own inputs and what records them, or None."""
        return None

    # -------------------------------------------------------------- calls
    def choose_batch_size(self, run: Callable[[Any, int], Any], inputs: Any, dense: np.ndarray | None, n: int,
                          width: int, default: int) -> tuple[int, Any]:
        """Rows per model call, chosen on the first block, and the answer to it if that took
        calling the model (else None)."""
        return default, None

    def run(self, inputs: Any, output_: str | None) -> Any:
        """Call the model once on prepared inputs."""
        return self.model(inputs)

    def check_output(self, out: Any) -> None:
        """Refuse an answer that is not a tensor of the kind the model must give."""

    def adjust_raw(self, raw: np.ndarray, output_: str | None) -> np.ndarray:
        """The answer as a numpy array, in the shape the oracle reads."""
        return raw

    def declared_proba(self) -> str | None:
        """Why the outputs are probabilities by what the model says of itself, or None."""
        return None

    def check_differentiable(self) -> None:
        """Raise unless :meth:`~pellucid.oracle.Oracle.forward` can differentiate the model."""
        raise ModelError(f"forward needs a torch model; this oracle wraps a {self.kind} model")

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """The model in its inference mode for the duration (nothing for most kinds)."""
        yield

    # -------------------------------------------------------------- description
    @property
    def n_parameters(self) -> int | None:
        """Trainable and frozen parameters of a torch module (None for other models)."""
        return None

    def versions(self) -> dict[str, str]:
        """Versions of the runtime the model needs beyond torch, scikit-learn and numpy."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Fields of the report's model description that only this kind has."""
        return {}


class CallableAdapter(Adapter):
    """A plain function of the (preprocessed) rows."""

    kind = "callable"
    unit_column_is_proba = True


class SklearnAdapter(Adapter):
    """A scikit-learn estimator or pipeline (anything with ``predict_proba`` or ``predict``)."""

    kind = "sklearn"
    proba_hint = "a predict_proba must give probabilities"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        try:
            check_is_fitted(model)
        except SklearnNotFittedError as e:
            raise ModelError(f"the {type(model).__name__} given as model is not fitted") from e
        except TypeError:
            pass  # not a scikit-learn estimator proper; nothing to check

    def initial_state(self, task: str | None, classes: np.ndarray | None) -> tuple:
        model = self.model
        output_ = reason = None
        has_proba = hasattr(model, "predict_proba")
        if task is None:
            task = "classification" if has_proba or is_classifier(model) else "regression"
        if task == "classification":
            output_ = "proba" if has_proba else "labels"
            if has_proba:
                reason = "the estimator's predict_proba gives them"
            if classes is None and getattr(model, "classes_", None) is not None:
                classes = np.asarray(model.classes_, dtype=object)
        return task, output_, reason, classes

    def expected_width(self) -> int | None:
        return getattr(self.model, "n_features_in_", None)

    def input_names(self) -> tuple[Any, str] | None:
        return getattr(self.model, "feature_names_in_", None), f"the model's feature_names_in_ ({_model_name(self.model)})"

    def run(self, inputs: Any, output_: str | None) -> Any:
        if output_ == "proba":
            return self.model.predict_proba(inputs)
        return self.model.predict(inputs)

    def adjust_raw(self, raw: np.ndarray, output_: str | None) -> np.ndarray:
        if output_ == "labels" and raw.ndim == 2 and raw.shape[1] == 1:
            return raw.ravel()
        return raw


class TorchAdapter(Adapter):
    """An eager torch module; inputs go to its device, in its floating dtype."""

    kind = "torch"
    whole_batches = True
    #: How the module was saved, as the report states it.
    format = "eager"

    def __init__(self, model: torch.nn.Module, device: Any = None, *, stacklevel: int = 2) -> None:
        super().__init__(model)
        self._device = _resolve_device(model, device, stacklevel + 1)
        home = next(_params_and_buffers(model), None)
        if home is not None and home.device != self._device:
            raise ParameterError(
                f"the module's parameters are on {home.device} but device={str(self._device)!r}; move the "
                f"module there first (module.to({str(self._device)!r})) or leave device=None"
            )
        # Match a double-precision module rather than failing on a dtype mismatch.
        first = next((p for p in _params_and_buffers(model) if p.is_floating_point()), None)
        self._dtype = first.dtype if first is not None else torch.float32

    @property
    def device(self) -> torch.device | None:
        return self._device

    @property
    def tensor_dtype(self) -> torch.dtype:
        return self._dtype

    def prepare(self, inputs: Any, n: int) -> tuple[Any, np.ndarray | None]:
        dense = _to_float(inputs, n, self.input_dtype)
        return torch.from_numpy(dense).to(device=self._device, dtype=self._dtype), dense

    def choose_batch_size(self, run: Callable[[Any, int], Any], inputs: Any, dense: np.ndarray | None, n: int,
                          width: int, default: int) -> tuple[int, Any]:
        if _device.is_gpu(self._device):
            # As many rows as half the free memory holds, at what this first batch took a row.
            out, peak = _device.measure_peak(self._device, lambda: run(inputs, n))
            return _device.gpu_rows(_device.free_bytes(self._device), peak / n, low=_BATCH_MIN), out
        return _device.cpu_query_rows(width * dense.itemsize), None

    def check_output(self, out: Any) -> None:
        raise ModelOutputError(f"the torch model returned {type(out).__name__}; expected a tensor")

    def declared_proba(self) -> str | None:
        last = _last_layer(self.model)
        if last in ("Softmax", "Sigmoid"):
            return f"the network ends in {last}"
        return None

    def check_differentiable(self) -> None:
        pass

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Eval mode, restoring every submodule's own flag afterwards."""
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

    @property
    def n_parameters(self) -> int | None:
        return int(sum(p.numel() for p in self.model.parameters()))

    def describe(self) -> dict[str, Any]:
        # A model passed in memory has no file to hash; its weights identify it instead.
        # How it was saved: a TorchScript module takes no hooks (no LRP, Grad-CAM or concepts).
        return {"weights_sha256": _state_sha256(self.model), "format": self.format}


class TorchScriptAdapter(TorchAdapter):
    """A TorchScript module (``torch.jit.script``, ``torch.jit.load``): takes no hooks."""

    format = "torchscript"


class ExportedAdapter(TorchAdapter):
    """The module of a ``torch.export`` program: its mode was fixed when exported."""

    format = "torch.export"


class OnnxAdapter(Adapter):
    """An ``onnxruntime.InferenceSession`` fed one float matrix, or one input per raw column."""

    kind = "onnx"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.signature = _onnx_signature(model)

    @property
    def input_dtype(self) -> type:
        return self.signature.dtype

    def check_preprocess(self, preprocess: Any) -> None:
        if self.signature.columns is not None and preprocess is not None:
            raise ParameterError(f"the ONNX graph takes the raw columns {list(self.signature.columns)[:20]} as inputs "
                                 "of their own, so it holds its own preprocessing: pass no preprocess")

    def prepare(self, inputs: Any, n: int) -> tuple[Any, np.ndarray | None]:
        if self.signature.columns is not None:
            return self.signature.feeds(inputs), None  # one input per raw column, by name
        dense = _to_float(inputs, n, self.input_dtype)
        return self.signature.check(dense), dense

    def expected_width(self) -> int | None:
        return self.signature.width

    def input_names(self) -> tuple[Any, str] | None:
        if self.signature.columns is None:
            return None
        return self.signature.columns, "the ONNX graph's input names"

    def run(self, inputs: Any, output_: str | None) -> Any:
        feeds = inputs if isinstance(inputs, dict) else {self.signature.input: inputs}
        return self.model.run([self.signature.output], feeds)[0]

    def check_output(self, out: Any) -> None:
        if not isinstance(out, np.ndarray):
            raise ModelOutputError(f"the ONNX output {self.signature.output!r} is a {type(out).__name__}, not a "
                                   "tensor; export classifiers with options={'zipmap': False}")

    def declared_proba(self) -> str | None:
        if "prob" in self.signature.output.lower():
            return f"the ONNX output {self.signature.output!r} is named as probabilities"
        return None

    def check_differentiable(self) -> None:
        raise ModelError("ONNX models have no gradients in pellucid: forward needs a torch model; "
                         "use query-based attributions (occlusion) instead")

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": sys.modules["onnxruntime"].__version__}

    def describe(self) -> dict[str, Any]:
        return {"onnx": self.signature.to_dict()}


def model_kind(model: Any) -> str:
    """The oracle's ``kind`` of a model: "torch", "onnx", "sklearn" or "callable"."""
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


def make_adapter(model: Any, kind: str, device: Any = None, *, stacklevel: int = 2) -> Adapter:
    """The adapter for a model of the given ``kind`` (see :func:`model_kind`).

    Parameters
    ----------
    model : object
        The model.
    kind : str
        Its kind, as :func:`model_kind` gives it.
    device : str or torch.device, optional
        Where torch inputs go (ignored for other kinds).
    stacklevel : int
        Where a warning about the device points, as for :func:`warnings.warn` from this
        function's frame (2: its caller).

    Returns
    -------
    Adapter
    """
    if kind == "torch":
        cls = (TorchScriptAdapter if isinstance(model, torch.jit.ScriptModule) else
               ExportedAdapter if isinstance(model, torch.fx.GraphModule) else TorchAdapter)
        return cls(model, device, stacklevel=stacklevel + 1)
    if kind == "onnx":
        return OnnxAdapter(model)
    if kind == "sklearn":
        return SklearnAdapter(model)
    return CallableAdapter(model)


# ---------------------------------------------------------------------- helpers
def _model_name(obj: Any) -> str:
    name = getattr(obj, "original_name", None)  # TorchScript keeps the eager class name here
    if isinstance(name, str):
        return name
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return obj.__qualname__
    return type(obj).__name__


def _state_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, by name, dtype and shape: the same
    weights give the same digest wherever the module was loaded from."""
    digest = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _last_layer(model: Any) -> str | None:
    """The class name of a torch module's last registered layer (None for no layers): a network
    ending in ``Softmax`` or ``Sigmoid`` gives probabilities. TorchScript keeps the eager class
    name in ``original_name``."""
    if not isinstance(model, torch.nn.Module):
        return None
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    return getattr(leaves[-1], "original_name", type(leaves[-1]).__name__) if leaves else None


def _params_and_buffers(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _resolve_device(module: torch.nn.Module, device: Any, stacklevel: int = 3) -> torch.device:
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
        warnings.warn(f"device {str(dev)!r} is not available ({e}); using the CPU", PellucidWarning,
                      stacklevel=stacklevel)
        return torch.device("cpu")
    return dev


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
