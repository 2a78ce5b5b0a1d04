"""Guided Backpropagation, DeconvNet and Guided Grad-CAM: the gradient of the attributed logit
with the backward pass of every ``nn.ReLU`` module changed.

A ReLU's own backward pass hands on ``g * (a > 0)`` (``a`` its input, ``g`` the gradient at its
output). *Guided backpropagation* (Springenberg et al., 2015) hands on only the positive part of
that, ``relu(g * (a > 0))``; *DeconvNet* (Zeiler and Fergus, 2014) ignores the forward mask and
hands on ``relu(g)``. Every other layer keeps its own gradient. *Guided Grad-CAM* (Selvaraju et
al., 2017) multiplies the guided backpropagation map by the layer's Grad-CAM map resized to the
input ("nearest", captum's default), so that the fine detail of the one is kept only where the
other finds evidence for the class.

How the rule is installed: a forward hook on each ``nn.ReLU`` module, present only during the
call (removed in a ``finally`` block), registers a hook on the autograd node of that call's
ReLU, which replaces the gradient the node gives back. Those node hooks belong to the graph of
the call and go with it; the module itself is never changed. The numbers agree with captum's
``GuidedBackprop``, ``Deconvolution`` and ``GuidedGradCam`` (see the tests), which hook the same
modules with module backward hooks.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError
from ._base import Attribution, Prepared, check_hookable, check_images, eval_mode, no_baseline, prepare
from .grad_cam import grad_cam
from .lrp import logit_scores, row_chunks

__all__ = ["guided_backprop", "deconvolution", "guided_grad_cam"]

#: What each rule hands on from ``(gradient at the ReLU's input, gradient at its output)``.
_RULES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "guided": lambda grad_in, grad_out: grad_in.clamp(min=0),  # relu(g * (a > 0))
    "deconvolution": lambda grad_in, grad_out: grad_out.clamp(min=0),  # relu(g), whatever a was
}


def guided_backprop(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
                    batch_size: int | None = None, random_state: Any = None, reference: Any = None) -> Attribution:
    """Guided backpropagation: the gradient of each row's attributed logit, with every
    ``nn.ReLU`` passing back only positive gradient where its input was positive.

    The maps look sharp and object-like, but they are largely a reconstruction of the input:
    they hardly change when the network's weights are randomised (Adebayo et al., 2018, "Sanity
    checks for saliency maps"), so they say little about what this particular network learned.
    :func:`~pellucid.attribution.randomisation_check` measures this for a given model.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        A network whose rectifiers are ``nn.ReLU`` modules. With an :class:`Oracle` the
        module's logits are explained (as for LRP and Grad-CAM), not the probabilities.
        A ReLU applied as a function inside ``forward`` (``torch.relu``, ``F.relu``,
        ``x.clamp(min=0)``) cannot be hooked and keeps its ordinary gradient: the result is
        then a mixture of guided and plain gradients. Write those rectifiers as ``nn.ReLU``
        modules. Other activations (``nn.LeakyReLU``, ``nn.GELU``, ...) keep their gradient.
    inputs : DataFrame, ndarray or Tensor
        Rows (tabular, raw with an Oracle) or images ``(n, channels, height, width)``.
    target : None, int, class label or one per row
        The output explained; None takes each row's predicted class.
    baseline : None
        Guided backpropagation has no baseline; accepted (None only) so that every method is
        called alike.
    batch_size : int, optional
        Rows per forward/backward pass; by default as many as fit in 2**23 input elements.
    random_state : optional
        Unused: the method draws nothing (accepted so every method is called alike).
    reference : DataFrame, optional
        Population rows for the raw-feature map (see :func:`~pellucid.attribution.prepare`).

    Returns
    -------
    Attribution
        ``values``: the modified gradient per raw feature (a one-hot group's columns summed) or
        per input element (images); ``outputs``: the explained logits; ``delta`` None.

    Raises
    ------
    ParameterError
        For a network with no ``nn.ReLU`` module, or none that its forward pass uses, a
        TorchScript module (its layers take no hooks), or a baseline.
    """
    no_baseline("guided_backprop", baseline)
    prep = prepare(model, inputs, target, reference=reference)
    grads, scores = modified_relu_gradients(prep, "guided", "guided_backprop", batch_size)
    return prep.result(grads, "guided_backprop", outputs=scores, explains="logits")


def deconvolution(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
                  batch_size: int | None = None, random_state: Any = None, reference: Any = None) -> Attribution:
    """DeconvNet: the gradient of each row's attributed logit, with every ``nn.ReLU`` passing
    back the positive part of the gradient at its output, whether or not its input was positive.

    Without the forward mask the map depends on the input only through the max-pooling
    switches and the layers' weights; it shows which input patterns the upper layers respond to
    rather than how this row's value was reached. Like guided backpropagation it is known to
    stay much the same when the weights are randomised (Adebayo et al., 2018).

    Parameters and limits as for :func:`guided_backprop` (``nn.ReLU`` modules only; a
    functional ReLU keeps its ordinary gradient).

    Returns
    -------
    Attribution
        ``values`` per raw feature or input element; ``outputs`` the explained logits.

    Raises
    ------
    ParameterError
        For a network with no ``nn.ReLU`` module, or none that its forward pass uses, a
        TorchScript module, or a baseline.
    """
    no_baseline("deconvolution", baseline)
    prep = prepare(model, inputs, target, reference=reference)
    grads, scores = modified_relu_gradients(prep, "deconvolution", "deconvolution", batch_size)
    return prep.result(grads, "deconvolution", outputs=scores, explains="logits")


def guided_grad_cam(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, layer: Any = None,
                    batch_size: int | None = None, random_state: Any = None, reference: Any = None) -> Attribution:
    """Guided Grad-CAM: guided backpropagation times the layer's Grad-CAM map, upsampled to the
    input's size by nearest neighbours (captum's ``GuidedGradCam`` with its defaults).

    The product keeps the pixel-level detail of guided backpropagation where Grad-CAM finds
    evidence for the class and zero elsewhere. It inherits guided backpropagation's weakness:
    the detail changes little when the weights are randomised (Adebayo et al., 2018); its
    dependence on the model comes mostly from the Grad-CAM factor.

    Parameters
    ----------
    model : torch.nn.Module
        A convolutional network on image-like inputs whose rectifiers are ``nn.ReLU`` modules
        (see :func:`guided_backprop` for ReLU applied as a function). Its logits are explained.
    inputs : ndarray or Tensor
        The images ``(n, channels, height, width)``.
    target : None, int or one per row
        The output explained; None takes each row's predicted class.
    baseline : None
        Accepted (None only) so that every method is called alike.
    layer : None, str or torch.nn.Module
        The layer of the Grad-CAM factor (see :func:`~pellucid.attribution.grad_cam`); None
        takes the last ``Conv2d``.
    batch_size : int, optional
        Images per forward/backward pass.
    random_state : optional
        Unused (accepted so every method is called alike).
    reference : optional
        Passed to :func:`~pellucid.attribution.prepare`.

    Returns
    -------
    Attribution
        ``values`` in the input's own shape ``(n, channels, height, width)`` (the Grad-CAM map
        is shared by the channels); ``outputs`` the explained logits; ``params["layer"]`` the
        layer's name.

    Raises
    ------
    ParameterError
        For tabular inputs, a network with no ``nn.ReLU`` module, a TorchScript module, a
        baseline, or a layer Grad-CAM cannot use.
    """
    no_baseline("guided_grad_cam", baseline)
    prep = prepare(model, inputs, target, reference=reference)
    check_images(prep, "guided_grad_cam", "guided_backprop")
    module = check_hookable(prep.module, "guided_grad_cam")
    relu_modules(module, "guided_grad_cam")  # refuse before any pass
    # The same rows and resolved targets as the guided factor, through a bare module (an Oracle
    # takes tabular rows only, so an image model reaches here as a module).
    cam = grad_cam(module, prep.x, prep.targets, layer=layer, relu=True, upsample="nearest", batch_size=batch_size)
    grads, scores = modified_relu_gradients(prep, "guided", "guided_grad_cam", batch_size)
    values = grads.detach().cpu().numpy() * np.expand_dims(cam.values, 1)
    return prep.result(values, "guided_grad_cam", outputs=scores, layer=cam.params["layer"], upsample="nearest",
                       explains="logits")


# ---------------------------------------------------------------------------- shared
def relu_modules(module: nn.Module, method: str) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.ReLU`` in ``module``; a ParameterError naming ``method``
    when there is none."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.ReLU)]
    if not found:
        raise ParameterError(f"{method} modifies the backward pass of nn.ReLU modules; this network has none (a ReLU "
                             "applied as a function in forward, torch.relu or F.relu, cannot be hooked: write it as "
                             "an nn.ReLU module)")
    return found


def modified_relu_gradients(prep: Prepared, rule: str, method: str, batch_size: int | None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of each row's attributed logit with respect to ``prep.x`` with the backward
    pass of every ``nn.ReLU`` module of ``prep.module`` replaced by ``rule`` ("guided" or
    "deconvolution"), and the logits; the module is in eval mode meanwhile and its hooks are
    removed afterwards, whatever happens."""
    module = check_hookable(prep.module, method)
    relus = relu_modules(module, method)
    change = _RULES[rule]
    used: set[str] = set()

    def hook_for(name: str) -> Callable[[nn.Module, tuple, Any], None]:
        def hook(layer: nn.Module, args: tuple, out: Any) -> None:
            if not isinstance(out, torch.Tensor) or out.grad_fn is None:
                return  # nothing upstream needs a gradient: nothing to change
            node = out.grad_fn
            if not node.name().startswith("Relu"):
                raise ParameterError(f"{method} could not find the backward step of ReLU layer {name!r} (an in-place "
                                     "ReLU on a view of another tensor?); use nn.ReLU(inplace=False) there")
            used.add(name)
            node.register_hook(replace)
        return hook

    def replace(grad_in: tuple, grad_out: tuple) -> tuple | None:
        # The node's hook: what it gives back becomes the gradient at the ReLU's input.
        return None if grad_in[0] is None else (change(grad_in[0], grad_out[0]),)

    chunks = row_chunks(prep.x, batch_size)
    grads, scores = [], []
    handles = []
    try:
        with eval_mode(module):
            for name, relu in relus:
                handles.append(relu.register_forward_hook(hook_for(name)))
            for rows in chunks:
                x = prep.x[rows].detach().requires_grad_(True)
                with torch.enable_grad():
                    score = logit_scores(prep, module(x), method, rows)
                    if not used:
                        raise ParameterError(
                            f"{method} modifies the backward pass of nn.ReLU modules; none of this network's "
                            f"({', '.join(repr(n) for n, _ in relus[:8])}) ran in its forward pass (a ReLU applied "
                            "as a function, torch.relu or F.relu, cannot be hooked)")
                    (grad,) = torch.autograd.grad(score.sum(), x)
                grads.append(grad)
                scores.append(score.detach())
    finally:
        for h in handles:
            h.remove()
    grad = grads[0] if len(grads) == 1 else torch.cat(grads)
    score = scores[0] if len(scores) == 1 else torch.cat(scores)
    return grad, score
