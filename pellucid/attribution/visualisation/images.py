"""Activation maximisation for image networks (:func:`maximise_image`): a batch of images is
optimised (Adam) to raise a class logit (or log-probability) or a unit's mean activation,
regularised by random jitter, a total-variation and an L2 penalty, an optional Fourier
(1/f-scaled) parametrisation, and kept in the data's range by a sigmoid."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..._validation import plain
from ...errors import ModelError, ParameterError
from .._base import eval_mode, find_layer
from ._common import (
    describe,
    device_dtype,
    nonnegative_int,
    positive_int,
    target_list,
    torch_module,
    unit_activation,
    unit_index,
)

__all__ = ["ImageMaximisation", "maximise_image"]

_PARAMETRISATIONS = ("pixel", "fourier")
_OBJECTIVES = ("logit", "log_odds", "log_prob")


@dataclass
class ImageMaximisation:
    """Images optimised to excite a class or a unit.

    Attributes
    ----------
    images : ndarray
        ``(m, *shape)``, inside ``value_range``; ``m = n`` for one target, ``len(targets) * n``
        for several (target by target, ``n`` images each).
    targets : ndarray of int or None
        The class each image was made for (None when a unit was maximised without a target).
    probability : ndarray
        Softmax probability of the image's target class (of its predicted class when no target
        was given), read without jitter on the final images.
    predicted : ndarray of int
        The class the network gives each final image.
    objective : ndarray
        ``(steps, m)``: the maximised quantity (logit, log-probability or unit activation) of
        each image at each step, before the penalties.
    final_objective : ndarray
        The maximised quantity on the final images, without jitter.
    params : dict
        The settings used.
    """

    images: np.ndarray
    targets: np.ndarray | None
    probability: np.ndarray
    predicted: np.ndarray
    objective: np.ndarray
    final_objective: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """Every number as plain JSON types (images as nested lists)."""
        return {
            "images": self.images.tolist(),
            "targets": None if self.targets is None else self.targets.tolist(),
            "probability": self.probability.tolist(),
            "predicted": self.predicted.tolist(),
            "objective": self.objective.tolist(),
            "final_objective": self.final_objective.tolist(),
            "params": plain(self.params, other=None),
        }


def maximise_image(
    module: Any,
    target: Any = None,
    *,
    shape: Sequence[int] = (1, 8, 8),
    steps: int = 512,
    lr: float = 0.1,
    jitter: int = 1,
    tv_weight: float = 3.0,
    l2_weight: float = 5.0,
    parametrisation: str = "pixel",
    value_range: tuple[float, float] = (0.0, 1.0),
    objective: str = "log_odds",
    layer: Any = None,
    unit: int | None = None,
    n: int = 1,
    random_state: int | None = 0,
) -> ImageMaximisation:
    """Images that excite a class (or a unit) of an image network most.

    Each image ``x`` is a function of free parameters ``p``: ``x = lo + (hi - lo) * sigmoid(p)``
    (``"pixel"``) or the same sigmoid of the inverse real FFT of a 1/f-scaled spectrum
    (``"fourier"``), so every value stays inside ``value_range`` without clamping. Adam
    maximises, for every image at once,

    ``score(roll(x)) - tv_weight * TV(x) - l2_weight * mean(x**2)``

    (summed over the images, so each image's optimisation does not depend on ``n``)

    where ``roll`` shifts the batch by a random offset in ``[-jitter, jitter]`` pixels along
    each spatial axis at each step (the image must excite the network wherever it sits),
    ``TV`` is the mean absolute difference between neighbouring pixels (smooth strokes, not
    high-frequency noise) and the L2 term pulls values towards 0 (the background of most
    image data in ``[0, 1]``; give a ``value_range`` around 0 for centred data).

    Parameters
    ----------
    module : torch.nn.Module or Oracle
        An image network ``(rows, *shape) -> logits``. An Oracle wrapping a torch module gives
        its module (its logits are maximised).
    target : int, sequence of int or None
        Output index (class) to maximise; a sequence makes ``n`` images per target in one
        batch. With ``layer`` and ``unit`` the unit is maximised and ``target`` only says which
        class's probability to report (None: each image's predicted class).
    shape : sequence of int
        One input without the row axis, e.g. ``(channels, height, width)``.
    steps : int
        Adam steps.
    lr : float
        Adam's learning rate on the parameters ``p``.
    jitter : int
        Largest random shift in pixels per step (0: none).
    tv_weight, l2_weight : float
        Weights of the total-variation and L2 penalties (0: none).
    parametrisation : {"pixel", "fourier"}
        Free parameters per pixel, or per frequency scaled by ``1/f`` (low frequencies move
        first: smoother images).
    value_range : (float, float)
        The data's range of values (e.g. ``(0, 1)`` for the digits); images never leave it.
    objective : {"log_odds", "logit", "log_prob"}
        What is maximised for a class. ``"log_odds"`` (default): ``log(p / (1 - p))``, the
        class logit minus the log-sum-exp of the other logits; like a logit its gradient does
        not vanish as ``p -> 1``, but it can only be raised by beating the other classes.
        ``"logit"``: the class logit alone (on the digits CNN it also raises a rival class and
        stalls near ``p = 0.9`` for some digits once regularised). ``"log_prob"``: the
        log-softmax, whose gradient ``1 - p`` vanishes near ``p = 1`` so the penalties win
        below ``p = 0.99``. The softmax probability is reported whichever is used.
    layer : str or torch.nn.Module, optional
        A layer of ``module`` (its name in ``module.named_modules()``) whose unit to maximise.
    unit : int, optional
        The channel (or output column) of ``layer`` whose mean activation over the spatial
        axes is maximised; needs ``layer``.
    n : int
        Images per target (different random starts).
    random_state : int or None
        Seed of the starting parameters and of the jitter.

    Returns
    -------
    ImageMaximisation

    Raises
    ------
    ParameterError
        For a bad setting (named), an unknown layer (the message lists the layer names), a
        unit outside the layer's channels, or a target outside the outputs.
    ModelError
        For a model that is not a torch module.

    Notes
    -----
    Jitter, total variation, L2 decay and the frequency parametrisation are the regularisers
    of Olah et al., "Feature Visualization" (Distill, 2017); without them the optimum is
    high-frequency noise the network happens to like.
    """
    module = torch_module(module)
    shape = _check_shape(shape)
    steps = positive_int(steps, "steps")
    n = positive_int(n, "n")
    jitter = nonnegative_int(jitter, "jitter")
    lr = _positive_float(lr, "lr")
    tv_weight = _nonnegative_float(tv_weight, "tv_weight")
    l2_weight = _nonnegative_float(l2_weight, "l2_weight")
    if parametrisation not in _PARAMETRISATIONS:
        raise ParameterError(f"parametrisation must be one of {list(_PARAMETRISATIONS)}; got {parametrisation!r}")
    if objective not in _OBJECTIVES:
        raise ParameterError(f"objective must be one of {list(_OBJECTIVES)}; got {objective!r}")
    lo, hi = _value_range(value_range)
    if (layer is None) != (unit is None):
        raise ParameterError("layer and unit go together: pass both to maximise a unit, or neither for a class")

    device, dtype = device_dtype(module)
    gen = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
    with torch.no_grad(), eval_mode(module):
        try:
            probe = module(torch.full((1, *shape), (lo + hi) / 2, device=device, dtype=dtype))
        except Exception as e:  # noqa: BLE001 - a shape the network refuses is the user's setting
            raise ParameterError(f"the network refuses inputs of shape {(1, *shape)} ({type(e).__name__}: {e}); "
                                 "pass shape= as one input without the row axis") from None
    if not isinstance(probe, torch.Tensor) or probe.dim() != 2:
        raise ModelError(f"the network returns {describe(probe)} for one image; expected logits (rows, classes)")
    k = int(probe.shape[1])

    if target is None:
        if layer is None:
            raise ParameterError("pass target= (a class index) or layer= and unit= to say what to maximise")
        targets = None
        m = n
    else:
        per = target_list(target, k)
        targets = torch.as_tensor(np.repeat(per, n), dtype=torch.int64, device=device)
        m = len(per) * n

    hook_store: dict[str, torch.Tensor] = {}
    handle = None
    layer_name = None
    if layer is not None:
        layer_name, lay = find_layer(module, layer)
        unit = unit_index(unit)

        def keep(_: nn.Module, __: tuple, out: Any) -> None:
            hook_store["a"] = out

        handle = lay.register_forward_hook(keep)

    params, render = _parametrise(parametrisation, m, shape, lo, hi, gen, device, dtype)
    opt = torch.optim.Adam(params, lr=lr)
    history = np.empty((steps, m))
    try:
        with eval_mode(module), torch.enable_grad():
            for step in range(steps):
                x = render()
                shifted = _roll(x, jitter, gen)
                out = module(shifted)
                score = _score(out, targets, objective, hook_store, layer_name, unit)
                loss = -score.sum()
                if tv_weight:
                    loss = loss + tv_weight * _total_variation(x).sum()
                if l2_weight:
                    loss = loss + l2_weight * x.pow(2).flatten(1).mean(dim=1).sum()
                opt.zero_grad()
                grads = torch.autograd.grad(loss, params)  # the network's own weights get no .grad
                for p, g in zip(params, grads):
                    p.grad = g
                opt.step()
                history[step] = score.detach().cpu().numpy()
            with torch.no_grad():
                x = render()
                out = module(x)
                final = _score(out, targets, objective, hook_store, layer_name, unit)
    finally:
        if handle is not None:
            handle.remove()
    prob = torch.softmax(out.detach().to(torch.float64), dim=1)
    predicted = prob.argmax(dim=1)
    chosen = targets if targets is not None else predicted
    p_target = prob.gather(1, chosen.view(-1, 1)).squeeze(1)
    return ImageMaximisation(
        images=x.detach().cpu().numpy(),
        targets=None if targets is None else targets.cpu().numpy(),
        probability=p_target.cpu().numpy(),
        predicted=predicted.cpu().numpy(),
        objective=history,
        final_objective=final.detach().cpu().numpy(),
        params={"shape": list(shape), "steps": steps, "lr": lr, "jitter": jitter, "tv_weight": tv_weight,
                "l2_weight": l2_weight, "parametrisation": parametrisation, "value_range": [lo, hi],
                "objective": "activation" if layer is not None else objective, "layer": layer_name,
                "unit": unit, "n": n, "random_state": random_state, "range_kept_by": "sigmoid"},
    )


def _parametrise(how: str, m: int, shape: tuple[int, ...], lo: float, hi: float, gen: torch.Generator,
                 device: torch.device, dtype: torch.dtype) -> tuple[list[torch.Tensor], Any]:
    """Free parameters and the function that renders them as images in ``[lo, hi]``."""
    span = hi - lo
    if how == "pixel" or len(shape) < 2:
        p = (0.01 * torch.randn((m, *shape), generator=gen)).to(device=device, dtype=dtype).requires_grad_(True)
        return [p], lambda: lo + span * torch.sigmoid(p)
    h, w = shape[-2], shape[-1]
    fy = torch.fft.fftfreq(h).view(-1, 1)
    fx = torch.fft.rfftfreq(w).view(1, -1)
    freq = torch.sqrt(fy ** 2 + fx ** 2)
    # 1/f: every frequency band gets the same step size in image energy; the constant term is
    # treated as the lowest non-zero frequency so it does not dominate.
    scale = (1.0 / freq.clamp(min=1.0 / max(h, w))).to(device=device, dtype=dtype)
    scale = scale / scale.max()
    spec_shape = (m, *shape[:-1], w // 2 + 1, 2)
    spec = (0.01 * torch.randn(spec_shape, generator=gen)).to(device=device, dtype=dtype).requires_grad_(True)

    def render() -> torch.Tensor:
        z = torch.complex(spec[..., 0], spec[..., 1]) * scale
        # norm="ortho" and the factor keep the spatial values of order one for unit spectra.
        spatial = torch.fft.irfft2(z, s=(h, w), norm="ortho") * math.sqrt(h * w) / 4
        return lo + span * torch.sigmoid(spatial)

    return [spec], render


def _roll(x: torch.Tensor, jitter: int, gen: torch.Generator) -> torch.Tensor:
    if not jitter or x.dim() < 3:
        return x
    axes = tuple(range(x.dim() - min(2, x.dim() - 2), x.dim()))
    shifts = tuple(int(s) for s in torch.randint(-jitter, jitter + 1, (len(axes),), generator=gen))
    return torch.roll(x, shifts=shifts, dims=axes)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbours along the last two axes, per image."""
    parts = []
    for axis in range(max(2, x.dim() - 2), x.dim()):
        d = torch.diff(x, dim=axis).abs()
        parts.append(d.flatten(1).mean(dim=1))
    return sum(parts) if parts else torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)


def _score(out: torch.Tensor, targets: torch.Tensor | None, objective: str, store: dict[str, torch.Tensor],
           layer_name: str | None, unit: int | None) -> torch.Tensor:
    if layer_name is not None:
        return unit_activation(store, layer_name, unit)
    if objective == "log_prob":
        out = torch.log_softmax(out, dim=1)
    chosen = out.gather(1, targets.view(-1, 1)).squeeze(1)
    if objective == "log_odds" and out.shape[1] > 1:
        # log(p / (1 - p)) = z_t - logsumexp of the other logits: unbounded like a logit, but
        # raised only by beating the other classes, so it drives the probability itself.
        others = out.scatter(1, targets.view(-1, 1), float("-inf"))
        return chosen - torch.logsumexp(others, dim=1)
    return chosen


def _check_shape(shape: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ParameterError(f"shape must be a sequence of positive integers; got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ParameterError(f"shape must be a sequence of positive integers; got {shape!r}")
    return out


def _value_range(value_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ParameterError(f"value_range must be two numbers (low, high); got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ParameterError(f"value_range must be finite with low < high; got {value_range!r}")
    return lo, hi


def _positive_float(v: Any, name: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v) or v <= 0:
        raise ParameterError(f"{name} must be a positive number; got {v!r}")
    return float(v)


def _nonnegative_float(v: Any, name: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v) or v < 0:
        raise ParameterError(f"{name} must be a non-negative number; got {v!r}")
    return float(v)
