"""What a class or a unit of a network responds to: inputs made to excite it, and the real rows
that excite it most.

* :func:`maximise_image` — activation maximisation for image networks: a batch of images is
  optimised (Adam) to raise a class logit (or log-probability) or a unit's mean activation,
  regularised by random jitter, a total-variation and an L2 penalty, an optional Fourier
  (1/f-scaled) parametrisation, and kept in the data's range by a sigmoid.
* :func:`maximise_row` — for tabular networks behind an :class:`~pellucid.oracle.Oracle`: the
  raw row, inside the schema's bounds and categories, with the highest probability of a class,
  found by a batched coordinate search in raw space started from the best real rows.
* :func:`top_rows` — the real rows (or images) of a reference set with the highest class
  probability or unit activation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._targets import target_indices
from .._validation import plain
from ..errors import ModelError, ParameterError, SchemaError
from ..oracle import Oracle
from ..schema import Kind, Schema
from ._base import eval_mode, find_layer

__all__ = [
    "ImageMaximisation",
    "RowMaximisation",
    "TopRows",
    "maximise_image",
    "maximise_row",
    "top_rows",
]

_PARAMETRISATIONS = ("pixel", "fourier")
_OBJECTIVES = ("logit", "log_odds", "log_prob")


# ============================================================================ results
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


@dataclass
class RowMaximisation:
    """The in-schema raw row that maximises one class probability.

    Attributes
    ----------
    row : DataFrame
        One raw row, in the columns and dtypes of the reference (schema order without one),
        that satisfies ``schema.validate``.
    probability : float
        The oracle's probability of ``target`` for ``row`` (re-scored on the final row).
    target : object
        The class label maximised.
    rows : DataFrame
        The final row of every start, best first.
    probabilities : ndarray
        Their probabilities.
    start_probability : float
        The best probability among the start rows (the best real row the search could start
        from, with a reference).
    history : ndarray
        The best probability after each round of the search.
    n_queries : int
        Rows sent to the oracle by the search.
    params : dict
        The settings used.
    """

    row: pd.DataFrame
    probability: float
    target: Any
    rows: pd.DataFrame
    probabilities: np.ndarray
    start_probability: float
    history: np.ndarray
    n_queries: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": {str(k): plain(v, other=None) for k, v in self.row.iloc[0].items()},
            "probability": float(self.probability),
            "target": plain(self.target, other=None),
            "rows": [{str(k): plain(v, other=None) for k, v in r.items()} for _, r in self.rows.iterrows()],
            "probabilities": self.probabilities.tolist(),
            "start_probability": float(self.start_probability),
            "history": self.history.tolist(),
            "n_queries": int(self.n_queries),
            "params": plain(self.params, other=None),
        }


@dataclass
class TopRows:
    """The rows of a reference set that excite a class or unit most, best first.

    Attributes
    ----------
    index : ndarray of int
        Positions of the rows in the reference (0-based, not its index labels).
    scores : ndarray
        Their class probability or unit activation.
    rows : DataFrame or ndarray
        The rows themselves (a DataFrame keeps the reference's index labels).
    what : str
        ``"probability"`` or ``"activation"``.
    """

    index: np.ndarray
    scores: np.ndarray
    rows: Any
    what: str

    def __len__(self) -> int:
        return int(len(self.index))

    def to_frame(self, column: str = "score") -> pd.DataFrame:
        """The rows with their score as a last column (tabular references only)."""
        if not isinstance(self.rows, pd.DataFrame):
            raise ParameterError("to_frame needs a tabular reference (a DataFrame); these rows are arrays")
        return self.rows.assign(**{column: self.scores})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index.tolist(), "scores": self.scores.tolist(), "what": self.what}
        if isinstance(self.rows, pd.DataFrame):
            out["rows"] = [{str(k): plain(v, other=None) for k, v in r.items()} for _, r in self.rows.iterrows()]
        return out


# ============================================================================ images
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
    module = _torch_module(module)
    shape = _check_shape(shape)
    steps = _positive_int(steps, "steps")
    n = _positive_int(n, "n")
    jitter = _nonnegative_int(jitter, "jitter")
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

    device, dtype = _device_dtype(module)
    gen = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
    with torch.no_grad(), eval_mode(module):
        try:
            probe = module(torch.full((1, *shape), (lo + hi) / 2, device=device, dtype=dtype))
        except Exception as e:  # noqa: BLE001 - a shape the network refuses is the user's setting
            raise ParameterError(f"the network refuses inputs of shape {(1, *shape)} ({type(e).__name__}: {e}); "
                                 "pass shape= as one input without the row axis") from None
    if not isinstance(probe, torch.Tensor) or probe.dim() != 2:
        raise ModelError(f"the network returns {_describe(probe)} for one image; expected logits (rows, classes)")
    k = int(probe.shape[1])

    if target is None:
        if layer is None:
            raise ParameterError("pass target= (a class index) or layer= and unit= to say what to maximise")
        targets = None
        m = n
    else:
        per = _target_list(target, k)
        targets = torch.as_tensor(np.repeat(per, n), dtype=torch.int64, device=device)
        m = len(per) * n

    hook_store: dict[str, torch.Tensor] = {}
    handle = None
    layer_name = None
    if layer is not None:
        layer_name, lay = find_layer(module, layer)
        unit = _unit(unit)

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
        return _unit_activation(store, layer_name, unit)
    if objective == "log_prob":
        out = torch.log_softmax(out, dim=1)
    chosen = out.gather(1, targets.view(-1, 1)).squeeze(1)
    if objective == "log_odds" and out.shape[1] > 1:
        # log(p / (1 - p)) = z_t - logsumexp of the other logits: unbounded like a logit, but
        # raised only by beating the other classes, so it drives the probability itself.
        others = out.scatter(1, targets.view(-1, 1), float("-inf"))
        return chosen - torch.logsumexp(others, dim=1)
    return chosen


def _unit_activation(store: dict[str, torch.Tensor], layer_name: str, unit: int | None) -> torch.Tensor:
    a = store.pop("a", None)
    if a is None:
        raise ParameterError(f"layer {layer_name!r} was not used by the network's forward pass")
    if not isinstance(a, torch.Tensor) or a.dim() < 2:
        raise ParameterError(f"layer {layer_name!r} returns {_describe(a)}; a unit needs outputs (rows, units, ...)")
    if not 0 <= unit < a.shape[1]:
        raise ParameterError(f"unit {unit} is outside layer {layer_name!r}, which has {a.shape[1]} units "
                             f"(channels) in 0..{a.shape[1] - 1}")
    return a[:, unit].flatten(1).mean(dim=1) if a.dim() > 2 else a[:, unit]


# ============================================================================ rows
def maximise_row(
    oracle: Oracle,
    target: Any,
    schema: Schema,
    *,
    reference: pd.DataFrame | None = None,
    steps: int = 30,
    n_starts: int = 5,
    grid: int = 21,
    refine: int = 4,
    allow_missing: bool = False,
    random_state: int | None = 0,
) -> RowMaximisation:
    """The raw row inside the schema with the highest probability of class ``target``.

    A batched coordinate ascent in raw space, started from the ``n_starts`` reference rows
    with the highest probability (without a reference: the schema's typical row and random
    rows inside it). Each round scores, in one query, every row that differs from a start's
    current row in one feature: numeric features on a grid of ``grid`` values over the
    schema's ``[low, high]`` plus a finer grid around the current value, integer features on
    whole numbers, binary features on their two values, categorical and ordinal features on
    all their categories. Each start moves to its best candidate while that raises its
    probability; the local grid is halved when no start improves, ``refine`` times.

    Searching raw rows (rather than the network's encoded input) needs nothing from the
    preprocess but that it encodes rows, every candidate is a row a user could have, integer
    and categorical features never need rounding, and the answer can never be worse than the
    best start: with a reference, at least as probable as the best real row it starts from.

    Parameters
    ----------
    oracle : Oracle
        A classifier on raw rows (any kind of model: the search only queries).
    target : class label or output index
        The class whose probability is maximised.
    schema : Schema
        The raw features, their kinds, ranges and categories (e.g. ``Schema.from_frame`` of the
        training table). The answer satisfies ``schema.validate``.
    reference : DataFrame, optional
        Real rows to start from (the best ``n_starts`` by probability). With
        ``allow_missing=False`` rows with missing values are left out of the starts (unless
        every row has some; those are then filled with the schema's typical values).
    steps : int
        Largest number of rounds (moves of one feature per start).
    n_starts : int
        Starts searched side by side.
    grid : int
        Values per numeric feature on the global grid (at least 2).
    refine : int
        Times the local grid around the current value is halved before the search stops.
    allow_missing : bool
        Whether a feature that the schema saw missing may be missing in the answer (the
        network may read "not recorded" as evidence).
    random_state : int or None
        Seed of the random starts (used without a reference, or with fewer usable reference
        rows than ``n_starts``).

    Returns
    -------
    RowMaximisation

    Raises
    ------
    ParameterError
        For a bad setting, an oracle that is not a classifier, or an unknown target.
    SchemaError
        For a reference that does not fit the schema.
    """
    if not isinstance(oracle, Oracle):
        raise ModelError(f"maximise_row needs a pellucid Oracle on raw rows; got {type(oracle).__name__}")
    if not isinstance(schema, Schema):
        raise ParameterError(f"schema must be a pellucid Schema; got {type(schema).__name__}")
    steps = _positive_int(steps, "steps")
    n_starts = _positive_int(n_starts, "n_starts")
    grid = _positive_int(grid, "grid")
    if grid < 2:
        raise ParameterError(f"grid must be at least 2 values; got {grid}")
    refine = _nonnegative_int(refine, "refine")
    rng = np.random.default_rng(random_state)
    n_before = oracle.n_queries

    template = _template(schema, reference)
    if reference is not None:
        schema.validate(reference, what="reference")
        pool = reference[[c for c in template.columns]]
        if not allow_missing:
            complete = pool.notna().all(axis=1).to_numpy()
            pool = pool[complete] if complete.any() else _fill_missing(pool, schema)
        t = _class_index(oracle, target, pool.iloc[:1])
        p_pool = oracle.query(pool)[:, t]
        order = np.argsort(-p_pool, kind="stable")[:n_starts]
        starts = pool.iloc[order].reset_index(drop=True)
        if len(starts) < n_starts:
            starts = pd.concat([starts, _random_rows(schema, template, n_starts - len(starts), rng, allow_missing)],
                               ignore_index=True)
    else:
        typical = _fill_missing(_typical_row(schema, template), schema)
        starts = pd.concat([typical, _random_rows(schema, template, n_starts - 1, rng, allow_missing)],
                           ignore_index=True) if n_starts > 1 else typical
        t = _class_index(oracle, target, starts.iloc[:1])
    starts = _cast_like(starts, template)

    current = starts.copy()
    cur_p = oracle.query(current)[:, t]
    start_p = float(cur_p.max())
    history = [start_p]
    level = 0  # halvings of the local grid so far
    for _ in range(steps):
        cands, owner = _candidates(current, schema, template, grid, level, allow_missing)
        p = oracle.query(cands)[:, t]
        moved = False
        # Best candidate per start, all starts at once.
        best = pd.Series(p).groupby(owner).idxmax()
        for s, i in best.items():
            if p[i] > cur_p[s] + 1e-12:
                current.iloc[s] = cands.iloc[i]
                cur_p[s] = p[i]
                moved = True
        history.append(float(cur_p.max()))
        if not moved:
            level += 1
            if level > refine:
                break
    current = _cast_like(current, template)
    final_p = oracle.query(current)[:, t]  # re-scored on the final rows as returned
    order = np.argsort(-final_p, kind="stable")
    rows = current.iloc[order].reset_index(drop=True)
    schema.validate(rows, what="maximising rows", allow_empty_columns=True)
    return RowMaximisation(
        row=rows.iloc[:1],
        probability=float(final_p[order[0]]),
        target=oracle.classes_[t],
        rows=rows,
        probabilities=final_p[order],
        start_probability=start_p,
        history=np.asarray(history),
        n_queries=int(oracle.n_queries - n_before),
        params={"steps": steps, "n_starts": n_starts, "grid": grid, "refine": refine,
                "allow_missing": allow_missing, "random_state": random_state,
                "starts": "reference" if reference is not None else "schema", "search": "coordinate, raw space"},
    )


def _template(schema: Schema, reference: pd.DataFrame | None) -> pd.DataFrame:
    """An empty frame with the columns (schema order) and dtypes rows are built in."""
    if reference is not None:
        if not isinstance(reference, pd.DataFrame):
            raise ParameterError(f"reference must be a DataFrame of raw rows; got {type(reference).__name__}")
        cols = {str(c): c for c in reference.columns}
        missing = [f for f in schema.names if f not in cols]
        if missing:
            raise SchemaError(f"the reference is missing columns {missing} of the schema")
        return reference[[cols[f] for f in schema.names]].iloc[:0]
    out = {}
    for f in schema:
        if f.kind is Kind.INTEGER:
            out[f.name] = pd.Series([], dtype="int64")
        elif f.is_numeric:
            out[f.name] = pd.Series([], dtype=f.dtype if f.dtype == "bool" else "float64")
        else:
            out[f.name] = pd.Series([], dtype=object)
    return pd.DataFrame(out)


def _cast_like(rows: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    rows = rows.copy()
    for c in template.columns:
        try:
            rows[c] = rows[c].astype(template[c].dtype)
        except (TypeError, ValueError):
            pass  # e.g. a missing value in an integer column: keep floats
    return rows


def _typical_row(schema: Schema, template: pd.DataFrame) -> pd.DataFrame:
    values = {}
    for f in schema:
        if f.is_categorical or f.kind is Kind.BINARY:
            freqs = f.frequencies or (1.0,) * len(f.categories)
            values[f.name] = f.categories[int(np.argmax(freqs))]
        else:
            v = f.mean if f.mean is not None else (f.low + f.high) / 2
            values[f.name] = float(np.round(v)) if f.kind is Kind.INTEGER else float(v)
    return _cast_like(pd.DataFrame({c: [values[str(c)]] for c in template.columns}), template)


def _fill_missing(rows: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    typical = _typical_row(schema, rows.iloc[:0])
    rows = rows.copy()
    for c in rows.columns:
        rows[c] = rows[c].where(rows[c].notna(), typical[c].iloc[0])
    return rows


def _random_rows(schema: Schema, template: pd.DataFrame, k: int, rng: np.random.Generator,
                 allow_missing: bool) -> pd.DataFrame:
    cols = {}
    for f in schema:
        if f.is_categorical or f.kind is Kind.BINARY:
            cats = np.asarray(f.categories, dtype=object)
            cols[f.name] = cats[rng.integers(0, len(cats), k)]
        else:
            v = rng.uniform(f.low, f.high, k)
            cols[f.name] = np.round(v) if f.kind is Kind.INTEGER else v
    return _cast_like(pd.DataFrame({c: cols[str(c)] for c in template.columns}), template)


def _feature_values(f: Any, current: pd.Series, grid: int, level: int, allow_missing: bool) -> list[np.ndarray]:
    """Candidate values of one feature for each start: a list of 1-D arrays (one per start)."""
    if f.is_categorical or f.kind is Kind.BINARY:
        base = list(f.categories)
        if allow_missing and f.n_missing:
            base.append(np.nan)
        arr = np.asarray(base, dtype=object)
        return [arr] * len(current)
    lo, hi = float(f.low), float(f.high)
    if f.kind is Kind.INTEGER:
        lo, hi = math.ceil(lo), math.floor(hi)
        glob = np.unique(np.round(np.linspace(lo, hi, min(grid, int(hi - lo) + 1))))
    else:
        glob = np.linspace(lo, hi, grid)
    step = (hi - lo) / (grid - 1) * 0.5 ** level
    local = np.linspace(-step, step, 5)
    # Candidates are rounded one decimal finer than the local grid's spacing: the row found is
    # the row the network was asked about, and it prints as 7.6, not 7.649999999999999.
    decimals = max(0, 1 - math.floor(math.log10(step / 2))) if step > 0 else 0
    out = []
    for v in current.to_numpy(dtype=float):
        vals = glob if np.isnan(v) else np.concatenate([glob, v + local])
        vals = np.clip(np.round(vals, 0 if f.kind is Kind.INTEGER else decimals), lo, hi)
        vals = np.unique(vals)
        if allow_missing and f.n_missing:
            vals = np.append(vals, np.nan)
        out.append(vals)
    return out


def _candidates(current: pd.DataFrame, schema: Schema, template: pd.DataFrame, grid: int, level: int,
                allow_missing: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Every row that differs from a current row in one feature, and the start it belongs to."""
    blocks, owners = [], []
    starts = np.arange(len(current))
    for f in schema:
        per = _feature_values(f, current[f.name], grid, level, allow_missing)
        counts = np.array([len(v) for v in per])
        owner = np.repeat(starts, counts)
        block = current.iloc[owner].reset_index(drop=True)
        values = np.concatenate(per) if len(per) else np.array([])
        block[f.name] = pd.Series(values, dtype=object if values.dtype == object else None)
        blocks.append(block)
        owners.append(owner)
    cands = _cast_like(pd.concat(blocks, ignore_index=True), template)
    return cands, np.concatenate(owners)


def _class_index(oracle: Oracle, target: Any, probe: pd.DataFrame) -> int:
    answer = oracle.query(probe)  # fixes the task and the classes if not known yet
    if oracle.task != "classification":
        raise ParameterError("maximise_row and top_rows by probability need a classifier; this oracle is a regressor")
    return int(target_indices(target, 1, answer.shape[1], list(oracle.classes_))[0])


# ============================================================================ top rows
def top_rows(
    model: Any,
    reference: Any,
    target: Any = None,
    k: int = 10,
    *,
    layer: Any = None,
    unit: int | None = None,
    batch_size: int = 4096,
) -> TopRows:
    """The ``k`` rows of ``reference`` that excite a class or a unit most, best first.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        With an Oracle and raw rows, rows are ranked by ``oracle.query`` (the probability of
        ``target``). With a bare module (inputs in the module's own form, e.g. images), by the
        softmax of its logits.
    reference : DataFrame, ndarray or Tensor
        The rows to rank.
    target : class label or output index
        The class, when ranking by probability.
    k : int
        Rows returned (all when the reference has fewer).
    layer, unit : optional
        Rank by the mean activation of channel ``unit`` of ``layer`` (a name in
        ``named_modules()`` of the torch module, or the module) instead; an Oracle's
        reference is encoded by its preprocess first.
    batch_size : int
        Rows per forward pass of a bare module or a unit.

    Returns
    -------
    TopRows
        Ties keep the reference's order (a stable sort).
    """
    k = _positive_int(k, "k")
    batch_size = _positive_int(batch_size, "batch_size")
    if (layer is None) != (unit is None):
        raise ParameterError("layer and unit go together: pass both to rank by a unit, or neither for a class")
    n = len(reference)
    if n == 0:
        raise ParameterError("reference has no rows")
    if layer is None and isinstance(model, Oracle):
        if target is None:
            raise ParameterError("pass target= (the class whose probability ranks the rows)")
        t = _class_index(model, target, reference[:1] if not isinstance(reference, pd.DataFrame)
                         else reference.iloc[:1])
        scores = model.query(reference)[:, t]
        what = "probability"
    else:
        module = _torch_module(model)
        device, dtype = _device_dtype(module)
        if isinstance(model, Oracle) and isinstance(reference, (pd.DataFrame, np.ndarray)) \
                and model.preprocess is not None:
            x = torch.as_tensor(model.encode(reference))
        elif isinstance(reference, torch.Tensor):
            x = reference.detach()
        else:
            try:
                x = torch.as_tensor(np.asarray(reference, dtype=np.float64))
            except (TypeError, ValueError) as e:
                raise ParameterError(f"reference must be numbers in the module's input form ({e}); pass an Oracle "
                                     "with its preprocess for raw rows") from None
        x = x.to(device=device, dtype=dtype)
        store: dict[str, torch.Tensor] = {}
        handle = None
        name = None
        if layer is not None:
            name, lay = find_layer(module, layer)
            unit = _unit(unit)
            handle = lay.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
        elif target is None:
            raise ParameterError("pass target= (the class whose probability ranks the rows) or layer= and unit=")
        parts = []
        try:
            with torch.no_grad(), eval_mode(module):
                for i in range(0, n, batch_size):
                    out = module(x[i:i + batch_size])
                    if layer is not None:
                        parts.append(_unit_activation(store, name, unit))
                    else:
                        if i == 0:
                            t = _target_list(target, out.shape[1])[0]
                        parts.append(torch.softmax(out.to(torch.float64), dim=1)[:, t])
        finally:
            if handle is not None:
                handle.remove()
        scores = torch.cat(parts).detach().cpu().to(torch.float64).numpy()
        what = "activation" if layer is not None else "probability"
    order = np.argsort(-scores, kind="stable")[:k]
    if isinstance(reference, pd.DataFrame):
        rows = reference.iloc[order]
    elif isinstance(reference, torch.Tensor):
        rows = reference[torch.as_tensor(order)].detach().cpu().numpy()
    else:
        rows = np.asarray(reference)[order]
    return TopRows(index=order, scores=scores[order], rows=rows, what=what)


# ============================================================================ helpers
def _torch_module(model: Any) -> nn.Module:
    if isinstance(model, Oracle):
        if model.kind != "torch":
            raise ModelError(f"this needs a torch network; the oracle wraps a {model.kind} model")
        model = model.model
    if not isinstance(model, nn.Module):
        raise ModelError(f"this needs a torch.nn.Module (or an Oracle wrapping one); got {type(model).__name__}")
    return model


def _device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    if first is None:
        return torch.device("cpu"), torch.float32
    return first.device, first.dtype


def _target_list(target: Any, k: int) -> np.ndarray:
    seq = list(np.asarray(target, dtype=object).ravel()) if isinstance(target, (list, tuple, np.ndarray)) \
        else [target]
    if not seq:
        raise ParameterError("target is an empty sequence")
    return target_indices(seq, len(seq), k, None)


def _unit(unit: Any) -> int:
    if isinstance(unit, (bool, np.bool_)) or not isinstance(unit, (int, np.integer)) or unit < 0:
        raise ParameterError(f"unit must be a non-negative channel index; got {unit!r}")
    return int(unit)


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


def _positive_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{name} must be a positive integer; got {v!r}")
    return int(v)


def _nonnegative_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ParameterError(f"{name} must be a non-negative integer; got {v!r}")
    return int(v)


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


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    return f"a {type(obj).__name__}"
