"""What image and row maximisation share: the torch module behind a model, its device and dtype,
target and unit checks, a unit's activation read from a forward hook, and small number checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..._targets import target_indices
from ...errors import ModelError, ParameterError
from ...oracle import Oracle


def torch_module(model: Any) -> nn.Module:
    if isinstance(model, Oracle):
        if model.kind != "torch":
            raise ModelError(f"this needs a torch network; the oracle wraps a {model.kind} model")
        model = model.model
    if not isinstance(model, nn.Module):
        raise ModelError(f"this needs a torch.nn.Module (or an Oracle wrapping one); got {type(model).__name__}")
    return model


def device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    if first is None:
        return torch.device("cpu"), torch.float32
    return first.device, first.dtype


def target_list(target: Any, k: int) -> np.ndarray:
    seq = list(np.asarray(target, dtype=object).ravel()) if isinstance(target, (list, tuple, np.ndarray)) \
        else [target]
    if not seq:
        raise ParameterError("target is an empty sequence")
    return target_indices(seq, len(seq), k, None)


def unit_index(unit: Any) -> int:
    if isinstance(unit, (bool, np.bool_)) or not isinstance(unit, (int, np.integer)) or unit < 0:
        raise ParameterError(f"unit must be a non-negative channel index; got {unit!r}")
    return int(unit)


def unit_activation(store: dict[str, torch.Tensor], layer_name: str, unit: int | None) -> torch.Tensor:
    a = store.pop("a", None)
    if a is None:
        raise ParameterError(f"layer {layer_name!r} was not used by the network's forward pass")
    if not isinstance(a, torch.Tensor) or a.dim() < 2:
        raise ParameterError(f"layer {layer_name!r} returns {describe(a)}; a unit needs outputs (rows, units, ...)")
    if not 0 <= unit < a.shape[1]:
        raise ParameterError(f"unit {unit} is outside layer {layer_name!r}, which has {a.shape[1]} units "
                             f"(channels) in 0..{a.shape[1] - 1}")
    return a[:, unit].flatten(1).mean(dim=1) if a.dim() > 2 else a[:, unit]


def describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    return f"a {type(obj).__name__}"


def positive_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{name} must be a positive integer; got {v!r}")
    return int(v)


def nonnegative_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ParameterError(f"{name} must be a non-negative integer; got {v!r}")
    return int(v)
