"""Grad-CAM: where in an image a convolutional layer saw evidence for the attributed class.

For a layer with activations ``A`` of shape ``(n, channels, *spatial)``, each channel's weight
is the spatial mean of the gradient of the attributed logit with respect to it, and the map is
``relu(sum_k w_k A_k)`` (Selvaraju et al., 2017), optionally upsampled to the input's size.
The numbers agree with captum's ``LayerGradCam`` followed by ``LayerAttribution.interpolate``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ParameterError
from ._base import Attribution, check_hookable, check_images, eval_mode, find_layer, no_baseline, prepare
from .lrp import logit_scores, row_chunks

__all__ = ["grad_cam"]

_MODES = ("nearest", "bilinear", "bicubic", "area", "linear", "trilinear", "nearest-exact")
_SMOOTH = {1: "linear", 2: "bilinear", 3: "trilinear"}


def grad_cam(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, layer: Any = None,
             relu: bool = True, upsample: bool | str = True, reference: Any = None, batch_size: int | None = None,
             random_state: Any = None) -> Attribution:
    """Grad-CAM maps of a convolutional network for a batch of images.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        A network on image-like inputs ``(n, channels, height, width)``. With an
        :class:`Oracle` the module's logits are explained (as for LRP), not the probabilities.
    inputs : ndarray or Tensor
        The images.
    target : None, int or one per row
        The output explained; None takes each row's predicted class.
    baseline : None
        Grad-CAM has no baseline; accepted (None only) so that every method is called alike.
    layer : None, str or torch.nn.Module
        The convolutional layer whose activations are weighed: a module of the model or its
        name in ``model.named_modules()``. None takes the last ``Conv2d`` registered.
    relu : bool
        Keep only the positive evidence (Grad-CAM's ReLU).
    upsample : bool or str
        Resize the map to the input's spatial size: True (bilinear, or linear/trilinear for
        1-D/3-D maps), a ``torch.nn.functional.interpolate`` mode ("nearest", "bilinear", ...)
        or False to keep the layer's spatial size.
    reference : optional
        Passed to :func:`~pellucid.attribution.prepare` (checked like the inputs; images have no
        raw-feature map).
    batch_size : int, optional
        Images per forward/backward pass; by default as many as fit in 2**23 input elements.
    random_state : optional
        Unused: Grad-CAM draws nothing (accepted so every method is called alike).

    Returns
    -------
    Attribution
        ``values`` of shape ``(n, height, width)`` (the input's spatial shape when upsampled,
        else the layer's); ``outputs`` the explained logits; ``delta`` None.

    Raises
    ------
    ParameterError
        For tabular inputs, a model without a Conv2d (when no layer is given), a layer that is
        not part of the model, not used by its forward, or without spatial axes, or an unknown
        upsampling mode.
    """
    no_baseline("grad_cam", baseline)
    prep = prepare(model, inputs, target, reference=reference)
    check_images(prep, "Grad-CAM", "lrp or integrated_gradients")
    module = check_hookable(prep.module, "Grad-CAM")
    name, target_layer = _find_layer(module, layer)
    mode = _mode(upsample)

    chunks = row_chunks(prep.x, batch_size)
    store: dict[str, torch.Tensor] = {}

    def keep(_: nn.Module, __: tuple, out: Any) -> torch.Tensor:
        if not isinstance(out, torch.Tensor):
            raise ParameterError(f"Grad-CAM layer {name!r} returns {type(out).__name__}, not a tensor")
        # Layers before this one ran without a graph; the backward pass starts here.
        torch.set_grad_enabled(True)
        a = out.detach().requires_grad_(True)
        store["a"] = a
        # The layers after it get a copy: an in-place one (nn.ReLU(inplace=True), as in
        # torchvision's networks) may not modify a leaf, and must not change the kept activations.
        return a.clone()

    cams, scores = [], []
    handle = target_layer.register_forward_hook(keep)
    try:
        with eval_mode(module):
            for rows in chunks:
                store.clear()
                with torch.no_grad():
                    out = module(prep.x[rows])
                    if "a" not in store:
                        raise ParameterError(f"Grad-CAM layer {name!r} was not used by the model's forward pass")
                    score = logit_scores(prep, out, "grad_cam", rows)
                    (grad,) = torch.autograd.grad(score.sum(), store["a"])
                cams.append(_cam(name, store["a"].detach(), grad, relu, mode, tuple(prep.x.shape[2:])))
                scores.append(score.detach())
    finally:
        handle.remove()
    cam = cams[0] if len(cams) == 1 else torch.cat(cams)
    score = scores[0] if len(scores) == 1 else torch.cat(scores)
    cam = cam.squeeze(1)
    if mode is True:
        mode = _SMOOTH.get(prep.x.dim() - 2, "nearest")
    return prep.result(cam, "grad_cam", outputs=score, layer=name, relu=relu,
                       upsample=mode if mode is not None else False, explains="logits")


def _cam(name: str, acts: torch.Tensor, grad: torch.Tensor, relu: bool, mode: Any, size: tuple[int, ...]
         ) -> torch.Tensor:
    """relu(sum_k mean(grad_k) A_k), upsampled to ``size`` when ``mode`` is set; (rows, 1, *spatial)."""
    if acts.dim() < 3:
        raise ParameterError(f"Grad-CAM layer {name!r} gives outputs of shape {tuple(acts.shape)} with no spatial "
                             "axes; choose a convolutional layer")
    spatial = tuple(range(2, acts.dim()))
    weights = grad.mean(dim=spatial, keepdim=True)
    cam = (weights * acts).sum(dim=1, keepdim=True)
    if relu:
        cam = cam.clamp(min=0)
    if mode is not None:
        if len(size) != len(spatial):
            raise ParameterError(f"Grad-CAM layer {name!r} has {len(spatial)} spatial axes and the inputs "
                                 f"{len(size)}; pass upsample=False")
        if mode is True:
            mode = _SMOOTH.get(len(size), "nearest")
        try:
            cam = F.interpolate(cam, size=size, mode=mode)
        except (NotImplementedError, ValueError) as e:
            raise ParameterError(f"upsample mode {mode!r} does not fit maps with {len(size)} spatial axes ({e})") \
                from None
    return cam


def _mode(upsample: Any) -> Any:
    if upsample is False or upsample is None:
        return None
    if upsample is True:
        return True
    if isinstance(upsample, str) and upsample in _MODES:
        return upsample
    raise ParameterError(f"upsample must be True, False or one of {list(_MODES)}; got {upsample!r}")


def _find_layer(module: nn.Module, layer: Any) -> tuple[str, nn.Module]:
    if layer is None:
        convs = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ParameterError(f"Grad-CAM needs a convolutional network: {type(module).__name__} has no Conv2d "
                                 "layer (pass layer= to choose one with spatial outputs)")
        return convs[-1]
    return find_layer(module, layer)