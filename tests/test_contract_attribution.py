"""One contract over every registered attribution method (``pellucid.attribution.METHODS``).

The table ``CASES`` gives each method the network and inputs it needs (Grad-CAM and Guided
Grad-CAM a convolutional network on images; LRP, guided backpropagation and DeconvNet the
logits of a network without a softmax, the others a
tabular network with BatchNorm ending in a softmax, so that a bare module and an Oracle of it
give the same probabilities) and its options. Every method is checked, without this file being
edited, for: one signature; the output shape; target forms (None, an int, one target per row)
agreeing; the same attributions whatever ``batch_size``; the model's training flags as they
were and the attributions of eval mode even when the model comes in train mode; an Oracle and
the bare module giving the same attributions; the same ``random_state`` giving the same
attributions. A registered method without an entry in ``CASES`` fails.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn

from pellucid.attribution import METHODS
from pellucid.oracle import Oracle
from tests import _nets

N = 10  # rows (images) attributed


def _tabular(softmax: bool) -> Callable[[], tuple[nn.Module, torch.Tensor]]:
    def make() -> tuple[nn.Module, torch.Tensor]:
        net = _nets.bn_mlp(n_in=6, n_out=3, hidden=12, seed=1)
        if softmax:
            net = nn.Sequential(net, nn.Softmax(dim=1)).eval()
        torch.manual_seed(2)
        return net, torch.randn(N, 6)
    return make


def _images() -> tuple[nn.Module, torch.Tensor]:
    net = _nets.cnn(n_out=4, batchnorm=True, seed=3)
    torch.manual_seed(4)
    return net, torch.rand(N, 1, 8, 8)


def _background() -> torch.Tensor:
    torch.manual_seed(5)
    return torch.randn(16, 6)


@dataclass(frozen=True)
class Case:
    """How a method is exercised: ``make() -> (module, inputs)``, the method's options, an int
    target, the expected shape of ``values`` given the inputs' shape, and how an Oracle of the
    module answers (``"proba"``: the module ends in a softmax, so its answers are the Oracle's;
    ``"logits"``: the method explains the module's own logits) or why no Oracle applies."""

    make: Callable[[], tuple[nn.Module, torch.Tensor]]
    options: dict[str, Any] = field(default_factory=dict)
    target: int = 1
    shape: Callable[[tuple[int, ...]], tuple[int, ...]] = lambda s: s
    oracle: str = "proba"


CASES: dict[str, Case] = {
    "saliency": Case(_tabular(True)),
    "gradient_x_input": Case(_tabular(True)),
    "integrated_gradients": Case(_tabular(True), {"n_steps": 12}),
    "smoothgrad": Case(_tabular(True), {"n_samples": 5, "stdev": 0.3}),
    "expected_gradients": Case(_tabular(True), {"baseline": _background(), "n_samples": 5, "stdev": 0.1}),
    "occlusion": Case(_tabular(True), {"baseline": 0.5}),
    "lrp": Case(_tabular(False), {"composite": "epsilon"}, oracle="logits"),
    # Grad-CAM's map has the inputs' spatial shape (one value per location, not per channel);
    # an Oracle takes tabular rows (its forward is 2-D), so Grad-CAM on images has none.
    "grad_cam": Case(_images, target=2, shape=lambda s: (s[0], *s[2:]), oracle="none: Oracle.forward is tabular"),
    # The modified-ReLU methods explain the logits, as LRP; Guided Grad-CAM needs images as
    # Grad-CAM does, but keeps the inputs' shape (channels included).
    "guided_backprop": Case(_tabular(False), oracle="logits"),
    "deconvolution": Case(_tabular(False), oracle="logits"),
    "guided_grad_cam": Case(_images, target=2, oracle="none: Oracle.forward is tabular"),
    # Shapley values average over background rows (the baseline); a bare module's own output
    # and an Oracle's probabilities are the same numbers for a network ending in a softmax.
    "shapley": Case(_tabular(True), {"baseline": _background()}),
}


def test_every_registered_method_has_a_case():
    missing = sorted(set(METHODS) - set(CASES))
    assert not missing, f"add an entry to CASES for {missing}"
    assert not sorted(set(CASES) - set(METHODS)), "CASES names methods that are not registered"


names = pytest.mark.parametrize("name", sorted(METHODS))


def _run(name: str, model: Any, x: Any, target: Any = None, **kw: Any) -> np.ndarray:
    options = {**CASES[name].options, **kw}
    return np.asarray(METHODS[name](model, x, target, **options).values, dtype=np.float64)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@names
def test_one_signature(name):
    params = list(inspect.signature(METHODS[name]).parameters.values())
    assert [p.name for p in params[:3]] == ["model", "inputs", "target"]
    assert params[2].default is None
    rest = {p.name: p for p in params[3:] if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest.values()), "everything after target is a keyword"
    for common in ("baseline", "batch_size", "random_state", "reference"):
        assert common in rest, f"{name} takes no {common}="
    assert rest["batch_size"].default is None and rest["random_state"].default is None


@names
def test_shape_is_the_inputs(name):
    case = CASES[name]
    model, x = case.make()
    a = METHODS[name](model, x, case.target, **case.options)
    assert a.values.shape == case.shape(tuple(x.shape)) and a.method == name
    assert np.isfinite(a.values).all()


@names
def test_target_forms_agree(name):
    case = CASES[name]
    model, x = case.make()
    t = case.target
    one = _run(name, model, x, t, random_state=0)
    _close(_run(name, model, x, np.full(N, t), random_state=0), one)
    _close(_run(name, model, x, torch.full((N,), t), random_state=0), one)
    # None attributes each row's predicted class: the same as naming those classes row by row.
    with torch.no_grad():
        predicted = model(x).argmax(dim=1).numpy()
    _close(_run(name, model, x, None, random_state=0), _run(name, model, x, predicted, random_state=0))
    # A target per row gives each row what that target alone gives it.
    per_row = np.arange(N) % 3
    mixed = _run(name, model, x, per_row, random_state=0)
    for k in np.unique(per_row):
        rows = per_row == k
        _close(mixed[rows], _run(name, model, x, int(k), random_state=0)[rows])


@names
def test_batch_size_does_not_change_attributions(name):
    case = CASES[name]
    model, x = case.make()
    small = _run(name, model, x, case.target, batch_size=1, random_state=0)
    large = _run(name, model, x, case.target, batch_size=100_000, random_state=0)
    _close(small, large)
    _close(_run(name, model, x, case.target, random_state=0), large)  # the default too


@names
def test_training_flags_are_restored(name):
    case = CASES[name]
    model, x = case.make()
    expected = _run(name, model, x, case.target, random_state=0)  # eval mode
    for mode in (True, False):
        model.train(mode)
        flags = [m.training for m in model.modules()]
        got = _run(name, model, x, case.target, random_state=0)
        assert [m.training for m in model.modules()] == flags
        _close(got, expected)  # attributed in eval mode, whatever mode the model came in
    # A model whose submodules disagree comes back with each one's own flag.
    model.eval()
    first = next(m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
    first.train()
    flags = [m.training for m in model.modules()]
    _run(name, model, x, case.target, random_state=0)
    assert [m.training for m in model.modules()] == flags


@names
def test_oracle_and_bare_module_agree(name):
    case = CASES[name]
    if case.oracle not in ("proba", "logits"):
        pytest.skip(case.oracle)
    model, x = case.make()
    oracle = Oracle(model, output=case.oracle, verbose=0)
    bare = _run(name, model, x, case.target, random_state=0)
    _close(_run(name, oracle, x, case.target, random_state=0), bare)
    _close(_run(name, oracle, x.numpy(), None, random_state=0), _run(name, model, x, None, random_state=0))


@names
def test_same_random_state_same_attributions(name):
    case = CASES[name]
    model, x = case.make()
    first = _run(name, model, x, case.target, random_state=7)
    np.testing.assert_array_equal(_run(name, model, x, case.target, random_state=7), first)
    seeded = METHODS[name](model, x, case.target, **case.options, random_state=np.random.RandomState(7))
    assert seeded.values.shape == first.shape
