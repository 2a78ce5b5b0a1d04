"""Loading the models (and preprocessing) the command line names.

:func:`load_model` resolves a specification: ``path/to/file.py:attr``, ``package.module:attr``,
or a saved file (TorchScript, ``torch.export``, ONNX, joblib, pickle).
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
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import ModelLoadError
from .adapters import _onnx_session

__all__ = ["load_model"]

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
