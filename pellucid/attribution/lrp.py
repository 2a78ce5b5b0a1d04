"""Layer-wise relevance propagation (LRP) for torch networks built from standard layers.

The network's attributed output (its logit for the target class) is handed back layer by layer
as *relevance*; each layer splits the relevance of its outputs over its inputs by a *rule*.
Which rule a layer gets is data: a *composite* is a plain list of ``(module types, rule)``
pairs, the first pair whose types match a layer wins, and composites are registered by name
(:data:`COMPOSITES`, :func:`register_composite`). Folding BatchNorm into the layer before it
(:func:`fold_batchnorm`, a *canonizer*) is a separate step, done on a deep copy.

How it runs: one forward pass with a forward hook per layer and one backward pass for the whole
batch (the "gradient trick"). Every tensor ``t`` of the network carries a gradient ``g`` with
``relevance(t) = t * g``; a layer's hook keeps its output's value and rewires its backward so
that ``g_in = J'^T (z / (z' + eps)) * g_out``, where ``z'`` and ``J'`` are the rule's modified
forward and Jacobian (the weights made positive for z+, ...). Pass-through layers (ReLU,
Dropout, Flatten) keep their own gradient, which already passes the relevance unchanged.
The numbers agree with captum's ``LRP`` with the same rules set on the layers (see the tests).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn

from .. import _device
from ..errors import ParameterError
from ._base import Attribution, Prepared, check_hookable, eval_mode, no_baseline, prepare

__all__ = [
    "lrp",
    "Rule",
    "Epsilon",
    "Gamma",
    "AlphaBeta",
    "ZPlus",
    "Pass",
    "COMPOSITES",
    "register_composite",
    "composite_rules",
    "fold_batchnorm",
    "DENSE",
    "CONVOLUTION",
    "POOLING",
    "BATCHNORM",
    "PASS_THROUGH",
]

# ---------------------------------------------------------------------------- layer families
DENSE: tuple[type[nn.Module], ...] = (nn.Linear,)
CONVOLUTION: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
POOLING: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
BATCHNORM: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Layers whose relevance passes through unchanged (captum's "non-linear layers", plus the
# reshaping ones). For ReLU, Dropout (eval) and the reshapes the ordinary gradient already does
# that in our scheme; Tanh needs the ratio trick of :class:`Pass`.
PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.Tanh, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.Flatten, nn.Unflatten, nn.Identity,
)
_GRADIENT_IS_PASS = (nn.ReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                     nn.Flatten, nn.Unflatten, nn.Identity)
_WEIGHTED = DENSE + CONVOLUTION

LayerTypes = Union[type, tuple[type, ...]]


# ---------------------------------------------------------------------------- rules
def _stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z + epsilon * sign(z)`` with sign(0) = 1, as captum and zennit do (in z's precision)."""
    eps = torch.tensor(epsilon, dtype=z.dtype, device=z.device)
    return z + torch.where(z >= 0, eps, -eps)


def _ratio(z: torch.Tensor, zm: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z / (zm + epsilon sign(zm))``, 0 where that denominator is 0 (only with epsilon = 0):
    such an output's relevance is dropped instead of turning the batch into NaN."""
    if epsilon > 0:
        # |zm| + epsilon > 0 everywhere: no guard needed. copysign gives +epsilon at +0.0, as
        # sign(0) = 1 (a -0.0 would take -epsilon; both are 0 plus a stabiliser of size epsilon).
        d = torch.copysign(torch.tensor(epsilon, dtype=zm.dtype, device=zm.device), zm)
        d.add_(zm)
        return d.reciprocal_().mul_(z)
    d = _stabilize(zm, epsilon)
    return torch.where(d == 0, 0.0, z / torch.where(d == 0, 1.0, d))


def _scale_grad(t: torch.Tensor, k: torch.Tensor) -> None:
    """Multiply the gradient that reaches ``t`` by ``k`` (a constant of t's shape)."""
    t.register_hook(lambda g: g * k)


class Rule:
    """How one layer hands the relevance of its outputs to its inputs.

    A rule is called from a forward hook with the layer, its input ``a`` and its output ``z``;
    it returns a tensor with the value of ``z`` whose backward pass carries the rule (or None
    to keep ``z`` and rewire its gradient in place). Subclasses set ``layers`` to the module
    types they can handle (empty: any).
    """

    name = "rule"
    layers: tuple[type[nn.Module], ...] = ()

    def check(self, name: str, module: nn.Module) -> None:
        if self.layers and not isinstance(module, self.layers):
            raise ParameterError(
                f"LRP rule {self!r} cannot be applied to layer {name!r} ({type(module).__name__}); it handles "
                f"{', '.join(t.__name__ for t in self.layers)}")

    def __call__(self, module: nn.Module, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Epsilon(Rule):
    """LRP-ε: ``R_i = a_i * sum_j w_ij R_j / (z_j + ε sign(z_j))``.

    Works on any layer with a gradient (Linear, convolutions, pooling, BatchNorm): the relevance
    follows the layer's own Jacobian. The ε term absorbs the relevance of weak or contradictory
    outputs, and a bias absorbs its share ``b_j R_j / z_j``. Same as captum's ``EpsilonRule``.
    """

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-9) -> None:
        if not epsilon >= 0:
            raise ParameterError(f"epsilon must be >= 0; got {epsilon!r}")
        self.epsilon = float(epsilon)

    def __call__(self, module: nn.Module, a: torch.Tensor, z: torch.Tensor) -> None:
        zd = z.detach()
        _scale_grad(z, _ratio(zd, zd, self.epsilon))
        return None


def _params(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    w = module.weight.detach()
    b = module.bias.detach() if getattr(module, "bias", None) is not None else None
    return w, b


def _forward_with(module: nn.Module, a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """The layer's own forward with other parameters."""
    if isinstance(module, nn.Linear):
        return nn.functional.linear(a, w, b)
    return module._conv_forward(a, w, b)  # type: ignore[operator]  # Conv1d/2d/3d


def _rewire(z: torch.Tensor, parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """A tensor with the value of ``z`` whose gradient flows into ``sum(sign * part)``, each part's
    gradient scaled by its constant (``(part, scale)``; the scale holds the sign)."""
    total = None
    for part, k in parts:
        _scale_grad(part, k)
        total = part if total is None else total + part
    assert total is not None
    return total + (z.detach() - total.detach())


class Gamma(Rule):
    """LRP-γ: the positive weights count ``1 + γ`` times, ``z'_j = sum_i a_i (w_ij + γ w_ij⁺) + b_j``.

    Favours positive evidence; meant for layers with non-negative inputs (after a ReLU).
    The bias is kept as it is (``zero_bias=True`` drops it), as in captum's ``GammaRule``.
    """

    name = "gamma"
    layers = _WEIGHTED

    def __init__(self, gamma: float = 0.25, epsilon: float = 1e-9, zero_bias: bool = False) -> None:
        if not gamma >= 0:
            raise ParameterError(f"gamma must be >= 0; got {gamma!r}")
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.zero_bias = bool(zero_bias)

    def __call__(self, module: nn.Module, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        w, b = _params(module)
        zm = _forward_with(module, a, w + self.gamma * w.clamp(min=0), None if self.zero_bias else b)
        zd = z.detach()
        return _rewire(z, [(zm, _ratio(zd, zm.detach(), self.epsilon))])


class AlphaBeta(Rule):
    """LRP-αβ: positive and negative contributions ``(a_i w_ij)^±`` are shared separately,
    ``R_i = sum_j (α (a_i w_ij)⁺ / z⁺_j - β (a_i w_ij)⁻ / z⁻_j) R_j`` with ``α - β = 1``.

    The bias joins the positive part with ``b⁺`` and the negative part with ``b⁻``
    (``zero_bias=True`` leaves it out, and with no bias and non-zero parts the relevance is
    conserved). ``AlphaBeta(1, 0)`` is the z⁺ rule (:class:`ZPlus`); on non-negative inputs it
    equals captum's ``Alpha1_Beta0_Rule``, which clamps the weights only.
    """

    name = "alpha_beta"
    layers = _WEIGHTED

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, epsilon: float = 1e-9, zero_bias: bool = False) -> None:
        if not (beta >= 0 and abs(alpha - beta - 1.0) < 1e-9):
            raise ParameterError(f"alpha-beta needs beta >= 0 and alpha - beta = 1; got alpha={alpha!r}, beta={beta!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.epsilon = float(epsilon)
        self.zero_bias = bool(zero_bias)

    def __call__(self, module: nn.Module, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        w, b = _params(module)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        bp = bn = None
        if b is not None and not self.zero_bias:
            bp, bn = b.clamp(min=0), b.clamp(max=0)
        # Inputs after a ReLU have no negative part: skip the convolutions that would give zeros.
        signed = bool((a.detach() < 0).any())
        ap = a.clamp(min=0) if signed else a
        an = a.clamp(max=0) if signed else None
        zp = _forward_with(module, ap, wp, bp)
        if an is not None:
            zp = zp + _forward_with(module, an, wn, None)
        zd = z.detach()
        parts = [(zp, self.alpha * _ratio(zd, zp.detach(), self.epsilon))]
        if self.beta:
            zn = _forward_with(module, ap, wn, bn)
            if an is not None:
                zn = zn + _forward_with(module, an, wp, None)
            # The negative part enters with a minus sign: its gradient scale carries it.
            parts.append((-zn, self.beta * _ratio(zd, zn.detach(), self.epsilon)))
        return _rewire(z, parts)


class ZPlus(AlphaBeta):
    """LRP-z⁺ (= α1β0): only positive contributions ``(a_i w_ij)⁺`` share the relevance."""

    name = "zplus"

    def __init__(self, epsilon: float = 1e-9, zero_bias: bool = False) -> None:
        super().__init__(1.0, 0.0, epsilon, zero_bias)

    def __repr__(self) -> str:
        return f"ZPlus(epsilon={self.epsilon!r}, zero_bias={self.zero_bias!r})"


class Pass(Rule):
    """Relevance passes through unchanged (``R_in = R_out``, element by element).

    For activations and reshapes (ReLU, Tanh, Dropout, Flatten, as captum treats them), and as
    captum's ``IdentityRule`` for a shape-preserving layer such as an unfolded BatchNorm.
    """

    name = "pass"

    def __call__(self, module: nn.Module, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor | None:
        if isinstance(module, _GRADIENT_IS_PASS):
            return None  # their gradient already hands the relevance on unchanged
        if a.shape != z.shape:
            raise ParameterError(f"the pass-through LRP rule needs a layer whose output has its input's shape; "
                                 f"{type(module).__name__} maps {tuple(a.shape)} to {tuple(z.shape)}")
        ad, zd = a.detach(), z.detach()
        ratio = torch.where(ad != 0, zd / torch.where(ad != 0, ad, 1.0), 0.0)
        part = a * ratio
        return part + (zd - part.detach())


_RULES: dict[str, Callable[[float, float], Rule]] = {
    "epsilon": lambda eps, gamma: Epsilon(eps),
    "gamma": lambda eps, gamma: Gamma(gamma, eps),
    "zplus": lambda eps, gamma: ZPlus(eps),
    "alpha1beta0": lambda eps, gamma: AlphaBeta(1.0, 0.0, eps),
    "alpha2beta1": lambda eps, gamma: AlphaBeta(2.0, 1.0, eps),
    "pass": lambda eps, gamma: Pass(),
}


def _rule(rule: Any, epsilon: float, gamma: float, where: str) -> Rule:
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, str) and rule in _RULES:
        return _RULES[rule](epsilon, gamma)
    raise ParameterError(f"{where}: {rule!r} is not an LRP rule; give a Rule object (Epsilon, Gamma, ZPlus, "
                         f"AlphaBeta, Pass) or one of {sorted(_RULES)}")


# ---------------------------------------------------------------------------- composites
Composite = list[tuple[LayerTypes, Rule]]
COMPOSITES: dict[str, Callable[..., Composite]] = {}


def register_composite(name: str) -> Callable[[Callable[..., Composite]], Callable[..., Composite]]:
    """Register a function ``(epsilon, gamma) -> [(module types, rule), ...]`` under ``name``."""
    def deco(fn: Callable[..., Composite]) -> Callable[..., Composite]:
        COMPOSITES[name] = fn
        return fn
    return deco


def _with_defaults(pairs: Composite, epsilon: float) -> Composite:
    """The layer rules a composite chooses, then the shared rest: pass-through layers, and
    ε for pooling and BatchNorm that was not folded (captum's default for both)."""
    return [*pairs, (PASS_THROUGH, Pass()), (POOLING + BATCHNORM, Epsilon(epsilon))]


@register_composite("epsilon")
def _epsilon(epsilon: float = 1e-9, gamma: float = 0.25) -> Composite:
    """ε everywhere (captum's LRP default)."""
    return _with_defaults([(_WEIGHTED, Epsilon(epsilon))], epsilon)


@register_composite("epsilon_plus")
def _epsilon_plus(epsilon: float = 1e-9, gamma: float = 0.25) -> Composite:
    """z⁺ for convolutions, ε for dense layers (zennit's EpsilonPlus)."""
    return _with_defaults([(CONVOLUTION, ZPlus(epsilon)), (DENSE, Epsilon(epsilon))], epsilon)


@register_composite("epsilon_gamma")
def _epsilon_gamma(epsilon: float = 1e-9, gamma: float = 0.25) -> Composite:
    """γ for convolutions, ε for dense layers."""
    return _with_defaults([(CONVOLUTION, Gamma(gamma, epsilon)), (DENSE, Epsilon(epsilon))], epsilon)


@register_composite("epsilon_alpha2beta1")
def _epsilon_alpha2beta1(epsilon: float = 1e-9, gamma: float = 0.25) -> Composite:
    """α2β1 for convolutions, ε for dense layers (zennit's EpsilonAlpha2Beta1)."""
    return _with_defaults([(CONVOLUTION, AlphaBeta(2.0, 1.0, epsilon)), (DENSE, Epsilon(epsilon))], epsilon)


@register_composite("alpha1beta0")
def _alpha1beta0(epsilon: float = 1e-9, gamma: float = 0.25) -> Composite:
    """z⁺ (α1β0) for every dense and convolutional layer."""
    return _with_defaults([(_WEIGHTED, ZPlus(epsilon))], epsilon)


def composite_rules(module: nn.Module, composite: Any = "epsilon", *, epsilon: float = 1e-9,
                    gamma: float = 0.25) -> list[tuple[str, nn.Module, Rule]]:
    """The rule each leaf layer of ``module`` gets: ``[(name, layer, rule), ...]``.

    ``composite`` is a registered name, a list of ``(module types, rule)`` pairs (tried before
    the "epsilon" composite, first match wins), or a dict from layer names (as in
    ``module.named_modules()``) to rules, the other layers following "epsilon". Rules may be
    given by name ("epsilon", "gamma", "zplus", "alpha1beta0", "alpha2beta1", "pass").
    Raises ParameterError for a layer no pair covers, naming it.
    """
    by_name: Mapping[str, Any] = {}
    if isinstance(composite, str):
        if composite not in COMPOSITES:
            raise ParameterError(f"unknown LRP composite {composite!r}; registered: {sorted(COMPOSITES)}")
        pairs = COMPOSITES[composite](epsilon=epsilon, gamma=gamma)
    elif isinstance(composite, Mapping):
        by_name = composite
        pairs = COMPOSITES["epsilon"](epsilon=epsilon, gamma=gamma)
    elif isinstance(composite, Iterable):
        pairs = []
        for i, pair in enumerate(composite):
            if not (isinstance(pair, tuple) and len(pair) == 2 and _is_types(pair[0])):
                raise ParameterError(f"LRP composite entry {i} must be a (module type or tuple of types, rule) "
                                     f"pair; got {pair!r}")
            pairs.append((pair[0], _rule(pair[1], epsilon, gamma, f"composite entry {i}")))
        pairs += COMPOSITES["epsilon"](epsilon=epsilon, gamma=gamma)
    else:
        raise ParameterError(f"composite must be a name, a list of (module types, rule) pairs or a dict of layer "
                             f"names to rules; got {type(composite).__name__}")

    names = dict(module.named_modules())
    missing = [k for k in by_name if k not in names]
    if missing:
        raise ParameterError(f"LRP rules name layers the model does not have: {missing}; its layers are "
                             f"{[n for n, m in names.items() if n and not list(m.children())]}")

    out: list[tuple[str, nn.Module, Rule]] = []
    for name, layer in module.named_modules():
        if list(layer.children()):
            if layer._parameters and any(p is not None for p in layer._parameters.values()):
                raise ParameterError(f"layer {name or type(layer).__name__!r} ({type(layer).__name__}) uses its own "
                                     "parameters in its forward besides its sub-layers; LRP only knows standard "
                                     "layers (write that computation as a Linear/Conv layer)")
            continue
        if name in by_name:
            rule = _rule(by_name[name], epsilon, gamma, f"rule for layer {name!r}")
        else:
            rule = next((r for types, r in pairs if isinstance(layer, types)), None)
            if rule is None:
                hint = (" LRP explains the logits: leave the softmax/sigmoid out of the module"
                        if isinstance(layer, (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)) else "")
                raise ParameterError(
                    f"LRP has no rule for layer {name or '<model>'!r} ({type(layer).__name__}); give one with "
                    f"composite={{{name!r}: rule}} or a (type, rule) pair if a rule fits it.{hint}")
        rule.check(name, layer)
        out.append((name, layer, rule))
    return out


def _is_types(t: Any) -> bool:
    if isinstance(t, type):
        return True
    return isinstance(t, tuple) and len(t) > 0 and all(isinstance(x, type) for x in t)


# ---------------------------------------------------------------------------- canonizer
def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(bn, BATCHNORM) or bn.running_mean is None or bn.running_var is None:
        return False
    if isinstance(layer, nn.Linear):
        return isinstance(bn, nn.BatchNorm1d) and bn.num_features == layer.out_features
    if isinstance(layer, CONVOLUTION):
        dims = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}
        return isinstance(bn, dims[type(layer)]) and bn.num_features == layer.out_channels
    return False


def _fold_pairs(module: nn.Module) -> list[tuple[nn.Sequential, int]]:
    """(container, index of the BatchNorm) for each BatchNorm right after a Linear/Conv in a Sequential."""
    found = []
    for m in module.modules():
        if isinstance(m, nn.Sequential):
            kids = list(m)
            for i in range(1, len(kids)):
                if type(kids[i - 1]) in (nn.Linear, *CONVOLUTION) and _foldable(kids[i - 1], kids[i]):
                    found.append((m, i))
    return found


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every BatchNorm that directly follows a Linear or Conv in an
    ``nn.Sequential`` folded into that layer (and replaced by ``nn.Identity``).

    The copy computes the same function in eval mode (BatchNorm's running statistics); the
    given module is not touched. Returns ``module`` itself when there is nothing to fold.
    A BatchNorm elsewhere stays, and LRP treats it by the composite's rule for it.
    """
    if not _fold_pairs(module):
        return module
    net = copy.deepcopy(module)
    for seq, i in _fold_pairs(net):
        layer, bn = seq[i - 1], seq[i]
        w = layer.weight.double()
        b = layer.bias.double() if layer.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64,
                                                                             device=w.device)
        scale = (bn.weight.double() if bn.weight is not None else 1.0) / torch.sqrt(bn.running_var.double() + bn.eps)
        shift = bn.bias.double() if bn.bias is not None else 0.0
        new_w = w * scale.reshape((-1,) + (1,) * (w.dim() - 1))
        new_b = (b - bn.running_mean.double()) * scale + shift
        layer.weight.copy_(new_w.to(layer.weight.dtype))
        if layer.bias is None:
            layer.bias = nn.Parameter(new_b.to(layer.weight.dtype), requires_grad=layer.weight.requires_grad)
        else:
            layer.bias.copy_(new_b.to(layer.bias.dtype))
        seq[i] = nn.Identity()
    return net.eval()


# ---------------------------------------------------------------------------- the method
def logit_scores(prep: Prepared, out: torch.Tensor, method: str, rows: slice | None = None) -> torch.Tensor:
    """The attributed output per row read from the *module's* output (logits, not probabilities),
    for the rows ``rows`` of the prepared batch (all by default).

    With a binary Oracle whose module gives one logit ``z`` (probabilities ``[1 - σ(z), σ(z)]``),
    class 1 is explained by ``z`` and class 0 by ``-z``.
    """
    oracle = prep.oracle
    if oracle is not None and getattr(oracle, "output_", None) == "proba":
        raise ParameterError(f"{method} explains the network's logits, but this oracle's module returns "
                             "probabilities; wrap the module without its final softmax")
    targets = prep.targets if prep.targets is None or rows is None else prep.targets[rows]
    if oracle is not None and targets is not None and (out.dim() == 1 or out.shape[1] == 1):
        z = out.reshape(out.shape[0])
        return z * (2 * targets.to(z.dtype) - 1)
    return prep.select(out, targets)


# One pass holds at most this many input elements or rows (as the gradient methods do):
# bounded memory for large images, negligible Python overhead per pass.
_MAX_ROWS = 2**16


def row_chunks(x: torch.Tensor, batch_size: int | None) -> list[slice]:
    """Row slices of ``x`` for one forward/backward pass each."""
    if batch_size is None:
        width = max(1, x[0].numel())
        rows = max(1, min(_MAX_ROWS, _device.max_elements(x.device) // width))
    elif isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, (bool, np.bool_)) \
            and batch_size > 0:
        rows = int(batch_size)
    else:
        raise ParameterError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    return [slice(i, i + rows) for i in range(0, x.shape[0], rows)]


def lrp(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, composite: Any = "epsilon",
        epsilon: float = 1e-9, gamma: float = 0.25, canonize: bool = True, reference: Any = None,
        batch_size: int | None = None, random_state: Any = None) -> Attribution:
    """Layer-wise relevance propagation of each row's attributed logit to its inputs.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        A network of standard layers: Linear, Conv1d/2d/3d, max/average pooling, BatchNorm,
        ReLU, Tanh, Dropout, Flatten. With an :class:`Oracle` the module's own output (the
        logits) is explained, not the probabilities: LRP of a softmax is not meaningful.
    inputs : DataFrame, ndarray or Tensor
        Rows (tabular, raw with an Oracle) or images ``(n, channels, height, width)``.
    target : None, int, class label or one per row
        The output explained; None takes each row's predicted class.
    baseline : None
        LRP has no baseline; accepted (None only) so that every method is called alike.
    composite : str, list of (module types, rule) pairs, or dict of layer name -> rule
        Which rule each layer gets (see :func:`composite_rules`); registered names are in
        :data:`COMPOSITES`: "epsilon" (default, captum's), "epsilon_plus", "epsilon_gamma",
        "epsilon_alpha2beta1", "alpha1beta0".
    epsilon : float
        Stabiliser of every rule's denominator (and the ε of LRP-ε); captum's default 1e-9.
    gamma : float
        γ of the rules named "gamma".
    canonize : bool
        Fold each BatchNorm that follows a Linear/Conv into it first (on a deep copy; the
        given module is never changed). Remaining BatchNorm layers get the composite's rule.
    reference : DataFrame, optional
        Population rows for the raw-feature map (see :func:`~pellucid.attribution.prepare`).
    batch_size : int, optional
        Rows per forward/backward pass; by default as many as fit in 2**23 input elements.
    random_state : optional
        Unused: LRP draws nothing (accepted so every method is called alike).

    Returns
    -------
    Attribution
        ``values``: relevance per raw feature (tabular) or per pixel (images). ``delta``: per
        row, the sum of the relevances minus the explained logit. It is zero up to rounding
        for bias-free networks with a small ε; biases and ε absorb relevance (``b_j R_j / z_j``
        per neuron) and make it non-zero.

    Raises
    ------
    ParameterError
        For a layer no rule covers (named), an unknown composite or rule, or a rule that does
        not fit its layer.
    """
    no_baseline("lrp", baseline)
    prep = prepare(model, inputs, target, reference=reference)
    module = check_hookable(prep.module, "LRP")
    net = fold_batchnorm(module) if canonize else module
    rules = composite_rules(net, composite, epsilon=epsilon, gamma=gamma)
    hooks = [(layer, rule) for _, layer, rule in rules if not (isinstance(rule, Pass)
                                                              and isinstance(layer, _GRADIENT_IS_PASS))]
    chunks = row_chunks(prep.x, batch_size)
    handles = []
    relevances, scores = [], []
    try:
        with eval_mode(net):
            for layer, rule in hooks:
                handles.append(layer.register_forward_hook(_hook(rule)))
            for rows in chunks:
                x = prep.x[rows].detach().requires_grad_(True)
                with torch.enable_grad():
                    score = logit_scores(prep, net(x), "lrp", rows)
                    (grad,) = torch.autograd.grad(score.sum(), x)
                relevances.append(grad.mul_(x.detach()))
                scores.append(score.detach())
    finally:
        for h in handles:
            h.remove()
    relevance = relevances[0] if len(relevances) == 1 else torch.cat(relevances)
    score = scores[0] if len(scores) == 1 else torch.cat(scores)
    delta = relevance.reshape(relevance.shape[0], -1).sum(dim=1) - score
    name = composite if isinstance(composite, str) else "custom"
    return prep.result(relevance, "lrp", outputs=score, delta=delta, composite=name, epsilon=epsilon, gamma=gamma,
                       canonize=canonize, explains="logits")


def _hook(rule: Rule) -> Callable[[nn.Module, tuple, Any], Any]:
    def hook(layer: nn.Module, args: tuple, out: Any) -> Any:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            raise ParameterError(f"LRP handles layers with one tensor input and one tensor output; "
                                 f"{type(layer).__name__} got {len(args)} inputs")
        return rule(layer, args[0], out)
    return hook
