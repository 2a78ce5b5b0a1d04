"""The one door to the user's model.

An :class:`Oracle` wraps whatever the user trained -- a torch module (eager, TorchScript or
``torch.export``), an ONNX graph in an ``onnxruntime.InferenceSession``, a scikit-learn
estimator or pipeline, or a plain callable -- together with the preprocessing that turns raw
rows into the model's input. Everything else in pellucid asks the oracle and never calls the
model itself.

Modules
-------
core
    :class:`Oracle`: batching, counting, classes, outputs; :class:`InputColumns`,
    :class:`Determinism`.
adapters
    One adapter per kind of model (torch eager, TorchScript, ``torch.export``, ONNX,
    scikit-learn, callable) behind the small interface of :class:`~.adapters.Adapter`.
encoding
    :class:`EncodingMap`: which encoded (model-input) columns come from which raw feature.
loaders
    :func:`load_model`: ``path.py:attr``, ``package.module:attr`` and model files.
"""

from .core import (
    DETERMINISM_ATOL,
    DETERMINISM_ROWS,
    DETERMINISM_RTOL,
    FIRST_BLOCK_ROWS,
    Determinism,
    InputColumns,
    Oracle,
)
from .encoding import EncodingMap
from .loaders import load_model

__all__ = ["Oracle", "EncodingMap", "InputColumns", "Determinism", "load_model", "DETERMINISM_ROWS",
           "DETERMINISM_RTOL", "DETERMINISM_ATOL", "FIRST_BLOCK_ROWS"]
