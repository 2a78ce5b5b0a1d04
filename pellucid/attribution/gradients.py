"""Gradient attributions, natively on torch autograd: saliency, gradient x input, Integrated
Gradients, SmoothGrad (and its squared and variance forms), expected gradients (gradient SHAP).

Every method takes ``(model, inputs, target=None, *, baseline=..., batch_size=None,
random_state=None, reference=None, ...)`` (the signature of every method in
:data:`~pellucid.attribution.METHODS`) and returns an :class:`~pellucid.attribution.Attribution`
whose ``values`` are on the user's raw features.
The numbers follow captum's definitions (``Saliency``, ``InputXGradient``,
``IntegratedGradients``, ``NoiseTunnel``, ``GradientShap``) and the tests hold them to captum's.

All steps or samples of a batch of rows are stacked into one tensor and go through one forward
and one backward pass (chunked so that a large batch does not exhaust memory); the gradient is
taken of the *sum* of the attributed outputs, which is the per-row gradient because rows do
not interact in an eval-mode network.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .. import _device
from ..errors import ParameterError
from ._base import Attribution, Prepared, no_baseline, prepare
from ._integration import integration_rule

__all__ = ["saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "expected_gradients"]

# One stacked batch holds at most this many rows, and at most _device.max_elements input
# elements (32 MB of float32 on a CPU; from free memory on a GPU).
_MAX_ROWS = 2**16


# ---------------------------------------------------------------------------- public
def saliency(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, abs: bool = True,  # noqa: A002
             reference: Any = None, batch_size: int | None = None, random_state: Any = None) -> Attribution:
    """Gradient of the attributed output with respect to each input (captum ``Saliency``).

    Parameters
    ----------
    model : Oracle (torch) or torch.nn.Module
    inputs : DataFrame, ndarray or Tensor
        Raw rows (a DataFrame with an Oracle is encoded by its preprocess) or the model's input.
    target : None, int, class label or one per row
        The output attributed; None: each row's predicted class (or the single output).
    baseline : None
        Saliency has no baseline; accepted (None only) so that every method in
        :data:`~pellucid.attribution.METHODS` is called alike.
    abs : bool
        Absolute values of the gradient, as captum's default (captum's name).
    reference : DataFrame, optional
        Population rows for the raw-feature map (see :func:`~pellucid.attribution.prepare`).
    batch_size : int, optional
        Rows per forward/backward pass; by default chosen from the input size.
    random_state : optional
        Unused: saliency draws nothing (accepted so every method is called alike).

    Returns
    -------
    Attribution
        ``values`` on the raw features; a one-hot group's value is the sum over its columns.
    """
    no_baseline("saliency", baseline)
    p = prepare(model, inputs, target, reference=reference)
    grads, outputs = _gradients(p, p.x, p.targets, _rows_per_chunk(p, 1, batch_size))
    return p.result(grads.abs() if abs else grads, "saliency", outputs=outputs, abs=bool(abs))


def gradient_x_input(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, reference: Any = None,
                     batch_size: int | None = None, random_state: Any = None) -> Attribution:
    """Gradient times input (captum ``InputXGradient``): the first-order share of each input
    relative to an all-zeros input. Parameters as for :func:`saliency` (``baseline``: None or
    "zeros", the implicit all-zeros input)."""
    no_baseline("gradient_x_input", baseline, "zeros")
    p = prepare(model, inputs, target, reference=reference)
    grads, outputs = _gradients(p, p.x, p.targets, _rows_per_chunk(p, 1, batch_size))
    return p.result(grads * p.x, "gradient_x_input", outputs=outputs)


def integrated_gradients(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None, n_steps: int = 50,
                         method: str = "gausslegendre", paired: bool | None = None, reference: Any = None,
                         batch_size: int | None = None, random_state: Any = None) -> Attribution:
    """Integrated Gradients (captum ``IntegratedGradients``).

    ``(x - b) * integral_0^1 grad f(b + a (x - b)) da`` per input, so that the attributions of a
    row sum to ``f(x) - f(b)`` up to the integration error, reported per row in ``delta``.

    Parameters
    ----------
    model, inputs, target
        As for :func:`saliency`.
    baseline : None, "zeros", "mean", "median", "mode", number, or rows
        None/"zeros": an all-zeros model input (captum's default). "mean"/"median"/"mode": a
        summary of ``reference`` (else of the inputs); for an Oracle with raw frames it is a
        valid raw row (numeric mean or median, integer columns rounded, the most frequent
        category), encoded by the preprocess, and given in ``params["baseline_row"]``. Rows in the
        inputs' form (a Series, frame, array or tensor): one row for all, one per input row
        (paired), or any other number of rows, a distribution: the attributions are averaged
        over its rows and ``delta`` is measured against their mean output.
    n_steps : int
        Points of the integration rule.
    method : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}
        The integration rule (see :func:`~pellucid.attribution.integration_rule`).
    paired : bool, optional
        Whether a baseline with exactly one row per input row is paired row by row (the
        default) or is a distribution that happens to have that many rows (False).
    reference : DataFrame or array, optional
        Population rows for summary baselines and the raw-feature map.
    batch_size : int, optional
        Stacked rows (steps x input rows) per forward/backward pass; by default chosen so a
        pass holds about 8 million input values.
    random_state : optional
        Unused: the integration rule is deterministic (accepted so every method is called alike).

    Returns
    -------
    Attribution
        With ``delta`` = ``sum(attributions) - (f(x) - f(baseline))`` per row.
    """
    p = prepare(model, inputs, target, reference=reference)
    alphas, weights = integration_rule(method, n_steps)
    base, info = p.baseline(baseline)
    mode = _pairing(base, p.n, paired)
    chunk = _rows_per_chunk(p, len(alphas), batch_size)
    attr, f_x, f_b = _integrated(p, p.x, p.targets, base, mode, alphas, weights, chunk)
    delta = attr.reshape(p.n, -1).sum(dim=1) - (f_x - f_b)
    return p.result(attr, "integrated_gradients", outputs=f_x, delta=delta, n_steps=int(n_steps), integration=method,
                    pairing=mode, **info)


def smoothgrad(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
               base: str | Callable = "saliency", n_samples: int = 50, stdev: float = 0.15, variant: str = "mean",
               reference: Any = None, batch_size: int | None = None, random_state: int | None = None,
               **base_kwargs: Any) -> Attribution:
    """SmoothGrad: a base attribution averaged over noisy copies of each input (captum
    ``NoiseTunnel`` with ``nt_type`` "smoothgrad", "smoothgrad_sq" or "vargrad").

    Parameters
    ----------
    model, inputs, target
        As for :func:`saliency`.
    baseline : optional
        The baseline of ``base="integrated_gradients"`` (as there); passed on to a callable
        base when given; the other bases take none.
    base : {"saliency", "gradient_x_input", "integrated_gradients"} or callable
        The method run on every noisy copy. A callable is called as
        ``base(model, noisy, target=targets, **base_kwargs)`` with the noisy model inputs
        ``(rows * n_samples, ...)`` (row-major: the copies of row 0 first) and the target of each,
        and returns an Attribution (its ``encoded`` is used) or an array of the noisy inputs' shape.
    n_samples : int
        Noisy copies per row.
    stdev : float
        Standard deviation of the Gaussian noise, in the model-input space (captum's ``stdevs``):
        absolute, so for standardised features 0.15 is 15% of a feature's spread.
    variant : {"mean", "squared", "variance"}
        Mean of the base attributions (smoothgrad), mean of their squares (smoothgrad_sq) or
        their variance (vargrad, ``E[a^2] - E[a]^2``).
    reference : DataFrame, optional
        Population rows for summary baselines and the raw-feature map.
    batch_size : int, optional
        Stacked rows (noisy copies x steps) per forward/backward pass.
    random_state : int, optional
        Seeds the noise (a torch generator seeded with it draws the same numbers as
        ``torch.manual_seed(random_state)`` does for captum).
    **base_kwargs
        Passed to the base method (``abs`` for saliency; ``n_steps``, ``method``, ``paired``
        for Integrated Gradients).

    Returns
    -------
    Attribution
        For ``base="integrated_gradients"`` and ``variant="mean"``, ``delta`` is the mean of the
        noisy copies' deltas.
    """
    variants = ("mean", "squared", "variance")
    if variant not in variants:
        raise ParameterError(f"unknown smoothgrad variant {variant!r}; use one of {', '.join(variants)}")
    n_samples = _positive_int("n_samples", n_samples)
    stdev = _non_negative("stdev", stdev)
    bases = ("saliency", "gradient_x_input", "integrated_gradients")
    if not callable(base) and base not in bases:
        raise ParameterError(f"unknown smoothgrad base {base!r}; use one of {', '.join(bases)} or a callable")
    if baseline is not None:
        base_kwargs["baseline"] = baseline  # the base's own argument (only Integrated Gradients has one)
    if isinstance(base, str):
        allowed = {"saliency": {"abs"}, "gradient_x_input": set(),
                   "integrated_gradients": {"baseline", "n_steps", "method", "paired"}}[base]
        unknown = sorted(set(base_kwargs) - allowed)
        if unknown:
            raise ParameterError(f"smoothgrad with base={base!r} takes no argument {unknown[0]!r}; it takes "
                                 f"{sorted(allowed) or 'none'}")
    p = prepare(model, inputs, target, reference=reference)
    gen = _torch_generator(random_state)
    S = n_samples

    ig = None
    if base == "integrated_gradients":
        alphas, weights = integration_rule(base_kwargs.get("method", "gausslegendre"), base_kwargs.get("n_steps", 50))
        b, info = p.baseline(base_kwargs.get("baseline"))
        mode = _pairing(b, p.n, base_kwargs.get("paired"))
        ig = (alphas, weights, b, mode, info)
    steps = 1 if ig is None else len(ig[0])
    # The noise is drawn block by block, the blocks fixed by the input size alone: batch_size
    # (and the device's memory) only cut the work, so the same random_state draws the same noise.
    block = _noise_rows(p, S * steps)
    chunk = min(block, _rows_per_chunk(p, S * steps, batch_size))
    inner = None if batch_size is None else max(1, batch_size // steps)

    total = torch.zeros_like(p.x)
    total_sq = torch.zeros_like(p.x)
    deltas = torch.zeros(p.n, dtype=p.x.dtype, device=p.x.device) if ig is not None else None
    outputs = _evaluate(p, p.x, p.targets)
    drawn, drawn_at = None, -1
    starts = [s for b0 in range(0, p.n, block) for s in range(b0, min(b0 + block, p.n), chunk)]
    for start in starts:
        b0 = start - start % block
        stop = min(start + chunk, b0 + block, p.n)
        if b0 != drawn_at:  # one draw for the whole block
            drawn = torch.normal(0.0, float(stdev), size=(min(block, p.n - b0) * S, *p.x.shape[1:]), generator=gen,
                                 dtype=torch.float32)
            drawn_at = b0
        x = p.x[start:stop]
        noise = drawn[(start - b0) * S:(stop - b0) * S].to(device=x.device, dtype=x.dtype)
        noisy = x.repeat_interleave(S, dim=0) + noise
        t = None if p.targets is None else p.targets[start:stop].repeat_interleave(S)
        if callable(base):
            got = base(model, noisy, target=t, **base_kwargs)
            a = torch.as_tensor(got.encoded if isinstance(got, Attribution) else np.asarray(got)).to(noisy)
            if a.shape != noisy.shape:
                raise ParameterError(f"the smoothgrad base returned attributions of shape {tuple(a.shape)} for noisy "
                                     f"inputs of shape {tuple(noisy.shape)}")
        elif base == "integrated_gradients":
            alphas, weights, b, mode, _ = ig
            if mode == "paired":
                b = b[start:stop].repeat_interleave(S, dim=0)
            a, f_x, f_b = _integrated(p, noisy, t, b, mode, alphas, weights, inner or _rows_per_chunk(p, steps, None))
            d = a.reshape(a.shape[0], -1).sum(dim=1) - (f_x - f_b)
            deltas[start:stop] = d.view(-1, S).mean(dim=1)
        else:
            g, _ = _gradients(p, noisy, t, inner or noisy.shape[0])
            a = (g.abs() if base_kwargs.get("abs", True) else g) if base == "saliency" else g * noisy
        a = a.view(stop - start, S, *a.shape[1:])
        total[start:stop] = a.sum(dim=1) / S
        total_sq[start:stop] = (a * a).sum(dim=1) / S
    attr = {"mean": total, "squared": total_sq, "variance": total_sq - total * total}[variant]
    name = base if isinstance(base, str) else getattr(base, "__name__", "callable")
    params: dict[str, Any] = {"base": name, "n_samples": S, "stdev": float(stdev), "variant": variant,
                              "random_state": random_state}
    if ig is not None:
        params.update(n_steps=len(ig[0]), integration=base_kwargs.get("method", "gausslegendre"), **ig[4])
    elif base_kwargs:
        params.update(base_kwargs)
    return p.result(attr, "smoothgrad", outputs=outputs,
                    delta=deltas if ig is not None and variant == "mean" else None, **params)


def expected_gradients(model: Any, inputs: Any, target: Any = None, *, baseline: Any, n_samples: int = 50,
                       stdev: float = 0.0, reference: Any = None, batch_size: int | None = None,
                       random_state: int | None = None) -> Attribution:
    """Expected gradients (captum ``GradientShap``): for each of ``n_samples`` draws, a random
    baseline row ``b``, a random point ``a`` in [0, 1] and optional Gaussian noise ``e`` on the
    input; the attribution is the mean of ``(x + e - b) * grad f(b + a (x + e - b))``. Its
    expectation is Integrated Gradients averaged over the baseline distribution.

    Parameters
    ----------
    model, inputs, target
        As for :func:`saliency`.
    baseline : rows, or "zeros", "mean", "median", "mode"
        The baseline distribution, in the inputs' form (many rows, e.g. a sample of the
        training table); a summary string gives a single row.
    n_samples : int
        Draws per input row.
    stdev : float
        Standard deviation of the input noise in model-input units (captum's ``stdevs``; 0: none).
    random_state : int, optional
        Seeds the draws. With an int the draws are those captum makes after
        ``np.random.seed(random_state); torch.manual_seed(random_state)``.
    reference, batch_size
        As for :func:`integrated_gradients`.

    Returns
    -------
    Attribution
        ``delta`` = ``sum(attributions) - (f(x) - mean over the baseline rows of f(b))`` per row:
        zero in expectation (without noise), shrinking as ``n_samples`` grows.
    """
    n_samples = _positive_int("n_samples", n_samples)
    stdev = _non_negative("stdev", stdev)
    p = prepare(model, inputs, target, reference=reference)
    base, info = p.baseline(baseline)
    rs = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    S, n, B = n_samples, p.n, base.shape[0]
    # The draws in captum's order: baseline rows (numpy), noise (torch), points (numpy).
    idx = torch.as_tensor(rs.choice(B, n * S), device=base.device)
    gen = _torch_generator(random_state if isinstance(random_state, (int, np.integer)) else int(rs.randint(2**31)))
    noise = None
    if stdev > 0:
        noise = torch.normal(0.0, float(stdev), size=(n * S, *p.x.shape[1:]), generator=gen, dtype=torch.float32)
    coef = torch.as_tensor(rs.uniform(0.0, 1.0, n * S), dtype=p.x.dtype, device=p.x.device)
    chunk = _rows_per_chunk(p, S, batch_size)
    total = torch.zeros_like(p.x)
    view = (-1,) + (1,) * (p.x.dim() - 1)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = slice(start * S, stop * S)
        x = p.x[start:stop].repeat_interleave(S, dim=0)
        if noise is not None:
            x = x + noise[rows].to(device=x.device, dtype=x.dtype)
        b = base[idx[rows]]
        a = coef[rows].view(view)
        t = None if p.targets is None else p.targets[start:stop].repeat_interleave(S)
        g, _ = _gradients(p, a * x + (1.0 - a) * b, t, x.shape[0])
        total[start:stop] = ((x - b) * g).view(stop - start, S, *x.shape[1:]).sum(dim=1) / S
    f_x = _evaluate(p, p.x, p.targets)
    f_b = _mean_output(p, base, p.targets)
    delta = total.reshape(n, -1).sum(dim=1) - (f_x - f_b)
    return p.result(total, "expected_gradients", outputs=f_x, delta=delta, n_samples=S, stdev=float(stdev),
                    random_state=None if isinstance(random_state, np.random.RandomState) else random_state, **info)


# ---------------------------------------------------------------------------- internals
def _gradients(p: Prepared, x: torch.Tensor, targets: torch.Tensor | None, chunk: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of each row's attributed output at ``x`` (rows of ``targets``), and the outputs."""
    grads = torch.empty_like(x)
    outs = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk):
        stop = min(start + chunk, x.shape[0])
        g, o = _grad(p, x[start:stop], None if targets is None else targets[start:stop])
        grads[start:stop] = g
        outs[start:stop] = o
    return grads, outs


def _grad(p: Prepared, x: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = p.select(p.fn(x), targets)
        # Rows are independent, so the gradient of the sum is every row's own gradient.
        (g,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    return (torch.zeros_like(x) if g is None else g), out.detach()


def _evaluate(p: Prepared, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """The attributed output of each row, without gradients."""
    outs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], _MAX_ROWS):
            t = None if targets is None else targets[start:start + _MAX_ROWS]
            outs.append(p.select(p.fn(x[start:start + _MAX_ROWS]), t).detach())
    return torch.cat(outs).to(x.dtype)


def _mean_output(p: Prepared, base: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Per row, the mean over the baseline rows of the output attributed for that row."""
    with torch.no_grad():
        out = torch.cat([p.fn(base[i:i + _MAX_ROWS]).detach() for i in range(0, base.shape[0], _MAX_ROWS)])
    mean = out.to(base.dtype).mean(dim=0)
    if targets is None:
        return mean.reshape(-1)[:1].expand(p.n)
    return mean[targets]


def _integrated(p: Prepared, x: torch.Tensor, targets: torch.Tensor | None, base: torch.Tensor, mode: str,
                alphas: np.ndarray, weights: np.ndarray, chunk: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrated Gradients of rows ``x`` from ``base`` (one row, paired rows, or a distribution
    averaged over): attributions, f(x) and f(baseline) (mean over a distribution) per row."""
    f_x = _evaluate(p, x, targets)
    if mode != "distribution":
        attr = _path_integral(p, x, base, targets, alphas, weights, chunk)
        b = base if mode == "paired" else base.expand(x.shape[0], *base.shape[1:])
        return attr, f_x, _evaluate(p, b, targets)
    m, B = x.shape[0], base.shape[0]
    attr = torch.zeros_like(x)
    group = max(1, _device.max_elements(x.device) // max(1, x.numel()))  # baselines per stacked pass
    for start in range(0, B, group):
        bs = base[start:start + group]
        k = bs.shape[0]
        xs = x.repeat(k, *([1] * (x.dim() - 1)))
        t = None if targets is None else targets.repeat(k)
        a = _path_integral(p, xs, bs.repeat_interleave(m, dim=0), t, alphas, weights, chunk)
        attr += a.view(k, m, *x.shape[1:]).sum(dim=0)
    return attr / B, f_x, _mean_output(p, base, targets)


def _path_integral(p: Prepared, x: torch.Tensor, base: torch.Tensor, targets: torch.Tensor | None,
                   alphas: np.ndarray, weights: np.ndarray, chunk: int) -> torch.Tensor:
    """``(x - b) * sum_s w_s grad f(b + alpha_s (x - b))`` with the steps of ``chunk`` rows
    stacked step by step (step-major, as captum) into one forward/backward pass."""
    S = len(alphas)
    a = torch.as_tensor(alphas, dtype=x.dtype, device=x.device).view(S, 1, *([1] * (x.dim() - 1)))
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    out = torch.empty_like(x)
    for start in range(0, x.shape[0], chunk):
        stop = min(start + chunk, x.shape[0])
        xs = x[start:stop]
        bs = base[start:stop] if base.shape[0] > 1 else base
        diff = xs - bs
        path = (bs + a * diff).reshape(S * (stop - start), *x.shape[1:])
        t = None if targets is None else targets[start:stop].repeat(S)
        g, _ = _grad(p, path, t)
        # Weighted sum over the steps as one matrix product: (S) x (S, rows * features).
        total = (w @ g.view(S, -1)).view(stop - start, *x.shape[1:])
        out[start:stop] = total * diff
    return out


def _pairing(base: torch.Tensor, n: int, paired: bool | None) -> str:
    if base.shape[0] == 1:
        return "single"
    if base.shape[0] == n and paired is not False:
        return "paired"
    if paired:
        raise ParameterError(f"paired=True needs one baseline row per input row ({n}); got {base.shape[0]}")
    return "distribution"


def _rows_per_chunk(p: Prepared, copies: int, batch_size: int | None) -> int:
    """Input rows per pass when each row becomes ``copies`` stacked rows."""
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
        return max(1, batch_size // copies)
    width = max(1, int(np.prod(p.x.shape[1:])))
    return max(1, min(_MAX_ROWS // copies, _device.max_elements(p.x.device) // (copies * width)))


def _noise_rows(p: Prepared, copies: int) -> int:
    """Input rows whose noise is drawn in one call: the CPU's default pass for rows of this size
    (so the draws are those of one pass there), never set by ``batch_size`` or the device."""
    width = max(1, int(np.prod(p.x.shape[1:])))
    return max(1, min(_MAX_ROWS // copies, _device.CPU_ELEMENTS // (copies * width)))


def _torch_generator(random_state: Any) -> torch.Generator:
    gen = torch.Generator()
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(2**31)
    elif isinstance(random_state, np.random.Generator):
        random_state = random_state.integers(2**31)
    if random_state is None:
        gen.seed()
    else:
        gen.manual_seed(int(random_state))
    return gen


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _non_negative(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number >= 0; got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise ParameterError(f"{name} must be a finite number >= 0; got {value!r}")
    return v
