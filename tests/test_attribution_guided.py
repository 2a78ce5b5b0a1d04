"""Guided backpropagation, DeconvNet and Guided Grad-CAM: agreement with captum's
``GuidedBackprop``, ``Deconvolution`` and ``GuidedGradCam`` on float64 networks, the rules by
hand on a one-hidden-layer network, raw-feature sums through an Oracle with a
ColumnTransformer, the network left exactly as it was, clear errors."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pellucid import Oracle
from pellucid.attribution import METHODS, deconvolution, guided_backprop, guided_grad_cam
from pellucid.attribution.grad_cam import grad_cam
from pellucid.errors import ParameterError
from tests import _nets

captum_attr = pytest.importorskip("captum.attr")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATOL = 1e-6
OURS = {"guided_backprop": guided_backprop, "deconvolution": deconvolution, "guided_grad_cam": guided_grad_cam}


def captum(name: str, net: nn.Module, x: torch.Tensor, target: torch.Tensor, layer: nn.Module | None = None
           ) -> np.ndarray:
    """captum's attributions on a copy of ``net`` (its hooks never touch the module under test)."""
    net = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it sets backward hooks on the ReLUs
        if name == "guided_backprop":
            method = captum_attr.GuidedBackprop(net)
        elif name == "deconvolution":
            method = captum_attr.Deconvolution(net)
        else:
            last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]
            method = captum_attr.GuidedGradCam(net, last if layer is None else dict(net.named_modules())[layer])
        return method.attribute(x.clone().requires_grad_(True), target=target).detach().numpy()


def assert_matches(ours: np.ndarray, ref: np.ndarray) -> None:
    """Within ATOL, and within 1e-9 of the map's scale: an untrained CNN's Guided Grad-CAM is
    of the order of 1e-6, where an absolute tolerance alone would compare nothing."""
    assert ours.shape == ref.shape
    scale = np.abs(ref).max()
    assert scale > 0 and np.count_nonzero(ref) >= ref.shape[0]  # not a comparison of zeros
    np.testing.assert_allclose(ours, ref, rtol=0, atol=min(ATOL, 1e-9 * scale))


def _mlp() -> nn.Module:
    return _nets.mlp().double()


def _cnn(trained: bool) -> nn.Module:
    return copy.deepcopy(_nets.digits_cnn() if trained else _nets.cnn()).double()


def _rows(n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


def _images(n: int = 30, start: int = 100) -> torch.Tensor:
    return _nets.digits()[0][start:start + n].double()


def _targets(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def _case(net_name: str) -> tuple[nn.Module, torch.Tensor, int]:
    if net_name == "mlp":
        return _mlp(), _rows(), 3
    return _cnn(net_name == "digits_cnn"), _images(), 10


def _hooks(net: nn.Module) -> list:
    return [(n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks), len(m._backward_pre_hooks))
            for n, m in net.named_modules()
            if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks]


# ---------------------------------------------------------------------------- captum agreement
CASES = [(m, n) for m in ("guided_backprop", "deconvolution") for n in ("mlp", "cnn", "digits_cnn")] + \
        [("guided_grad_cam", n) for n in ("cnn", "digits_cnn")]


@pytest.mark.parametrize("method, net_name", CASES)
def test_matches_captum_with_given_targets(method, net_name):
    net, x, k = _case(net_name)
    t = _targets(len(x), k)
    ours = OURS[method](net, x, t)
    ref = captum(method, net, x, t)
    assert ours.values.shape == ref.shape == tuple(x.shape)
    assert_matches(ours.values, ref)
    np.testing.assert_array_equal(ours.targets, t.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(ours.outputs, net(x)[torch.arange(len(x)), t].numpy(), rtol=1e-12)
    assert ours.method == method and ours.params["explains"] == "logits" and ours.delta is None


@pytest.mark.parametrize("method, net_name", CASES)
def test_matches_captum_on_the_predicted_class(method, net_name):
    net, x, _ = _case(net_name)
    ours = OURS[method](net, x)  # target=None: each row's predicted class
    with torch.no_grad():
        predicted = net(x).argmax(dim=1)
    np.testing.assert_array_equal(ours.targets, predicted.numpy())
    assert_matches(ours.values, captum(method, net, x, predicted))


@pytest.mark.parametrize("layer", ["2", "0"])
def test_guided_grad_cam_at_another_layer(layer):
    net, x = _cnn(True), _images(20)
    t = _targets(20, 10, seed=1)
    ours = guided_grad_cam(net, x, t, layer=layer)
    assert ours.params["layer"] == layer and ours.params["upsample"] == "nearest"
    assert_matches(ours.values, captum("guided_grad_cam", net, x, t, layer=layer))


def test_guided_grad_cam_is_guided_backprop_times_the_upsampled_cam():
    net, x = _cnn(True), _images(12)
    gb = guided_backprop(net, x)
    cam = grad_cam(net, x, upsample="nearest")
    ggc = guided_grad_cam(net, x)
    np.testing.assert_array_equal(ggc.targets, gb.targets)
    np.testing.assert_allclose(ggc.values, gb.values * cam.values[:, None], rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- the rules by hand
def test_the_rules_on_one_hidden_layer():
    # f(x) = W2 relu(W1 x + b1) + b2. Guided: W1^T (relu(W2[t]) * (W1 x + b1 > 0)); DeconvNet
    # drops the forward mask: W1^T relu(W2[t]), the same for every row; the plain gradient has
    # W2[t] unclipped.
    torch.manual_seed(11)
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double().eval()
    x = torch.randn(9, 5, dtype=torch.float64) * 2
    t = _targets(9, 3, seed=2)
    w1, b1, w2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
    mask = (x @ w1.T + b1 > 0).double()
    pos = w2[t].clamp(min=0)
    np.testing.assert_allclose(guided_backprop(net, x, t).values, ((pos * mask) @ w1).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(deconvolution(net, x, t).values, (pos @ w1).numpy(), rtol=1e-12, atol=1e-15)
    assert (w2[t] < 0).any()  # the rules have something to clip


# ---------------------------------------------------------------------------- an Oracle with a preprocess
@pytest.fixture
def encoded_oracle(frame, ct):
    torch.manual_seed(3)
    width = ct.transform(frame).shape[1]
    net = nn.Sequential(nn.Linear(width, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3)).double()
    oracle = Oracle(net.eval(), ct, classes=["low", "mid", "high"], output="logits", verbose=0)
    # Each encoded column's raw feature from the transformer's own names ("cat__color_red" -> color).
    names = ct.get_feature_names_out()
    owner = [next(c for c in frame.columns if n.split("__", 1)[1] == c or n.split("__", 1)[1].startswith(f"{c}_"))
             for n in names]
    return oracle, net, owner


@pytest.mark.parametrize("method", ["guided_backprop", "deconvolution"])
@pytest.mark.parametrize("target", [None, "mid", 2])
def test_oracle_sums_encoded_columns_into_raw_features(method, target, frame, encoded_oracle):
    oracle, net, owner = encoded_oracle
    a = OURS[method](oracle, frame, target)
    assert a.features == tuple(frame.columns) and a.values.shape == (len(frame), frame.shape[1])
    z = torch.as_tensor(oracle.encode(frame))
    assert z.dtype == torch.float64
    with torch.no_grad():
        logits = net(z)
    want = {None: logits.argmax(dim=1), "mid": torch.full((len(frame),), 1), 2: torch.full((len(frame),), 2)}[target]
    np.testing.assert_array_equal(a.targets, want.numpy())
    np.testing.assert_allclose(a.outputs, logits[torch.arange(len(frame)), want].numpy(), rtol=1e-12)
    # The encoded attributions are captum's on the encoded rows, explaining the logits.
    ref = captum(method, net, z, want)
    assert_matches(a.encoded, ref)
    # Each raw feature's value is the sum over its encoded columns.
    by_hand = np.stack([ref[:, [i for i, o in enumerate(owner) if o == f]].sum(axis=1) for f in frame.columns], axis=1)
    np.testing.assert_allclose(a.values, by_hand, rtol=0, atol=ATOL)
    assert a.unassigned is None
    # The same as the bare module on the encoded rows.
    np.testing.assert_allclose(OURS[method](net, z, want).values, a.encoded, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- the network is left alone
def _outputs_and_gradients(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad(set_to_none=True)
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    out[:, 1].sum().backward()
    got = [out.detach(), xg.grad.detach()] + [p.grad.detach().clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    return got


@pytest.mark.parametrize("method", sorted(OURS))
def test_network_unchanged(method):
    net = _cnn(True) if method == "guided_grad_cam" else _nets.bn_mlp().double()
    x = _images(6) if method == "guided_grad_cam" else _rows(6)
    net.train()
    flags = [m.training for m in net.modules()]
    state = copy.deepcopy(net.state_dict())
    full = [getattr(m, "_is_full_backward_hook", None) for m in net.modules()]
    net.eval()
    before = _outputs_and_gradients(net, x)
    net.train()
    first = OURS[method](net, x).values
    assert np.isfinite(first).all()
    assert _hooks(net) == []
    assert [m.training for m in net.modules()] == flags
    assert [getattr(m, "_is_full_backward_hook", None) for m in net.modules()] == full
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    net.eval()
    after = _outputs_and_gradients(net, x)
    for b, a in zip(before, after, strict=True):
        assert torch.equal(a, b)  # same outputs, input gradient and parameter gradients
    # A second call gives the same numbers: nothing of the first stayed behind.
    np.testing.assert_array_equal(OURS[method](net, x).values, first)


class _FunctionalRelu(nn.Module):
    """Registers an nn.ReLU but applies torch.relu in forward: the module never runs."""

    def __init__(self, with_module: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.lin1 = nn.Linear(6, 8)
        self.lin2 = nn.Linear(8, 3)
        if with_module:
            self.act = nn.ReLU()

    def forward(self, x):
        return self.lin2(torch.relu(self.lin1(x)))


@pytest.mark.parametrize("method", ["guided_backprop", "deconvolution"])
def test_no_hooks_left_when_the_call_raises(method):
    net = _FunctionalRelu().eval()
    with pytest.raises(ParameterError, match=rf"{method} modifies .*none of this network's \('act'\) ran"):
        OURS[method](net, _rows(4).float())
    assert _hooks(net) == []
    cnn = _cnn(False)
    with pytest.raises(ParameterError, match="no spatial axes"):
        guided_grad_cam(cnn, _images(4), layer="9")  # a Linear: raised by Grad-CAM after its pass
    assert _hooks(cnn) == []


def test_inplace_relu_and_no_grad_give_the_same():
    net = _cnn(True)
    inplace = copy.deepcopy(net)
    for i, m in enumerate(inplace):
        if isinstance(m, nn.ReLU):
            inplace[i] = nn.ReLU(inplace=True)
    x = _images(10)
    for method, fn in OURS.items():
        want = fn(net, x).values
        np.testing.assert_array_equal(fn(inplace, x).values, want, err_msg=method)
        with torch.no_grad():
            np.testing.assert_array_equal(fn(net, x, batch_size=3).values, want, err_msg=method)
        assert torch.is_grad_enabled()


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("method", sorted(OURS))
def test_a_network_without_relu_modules_is_refused(method):
    if method == "guided_grad_cam":
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(256, 10)).eval()
        x = _images(3).float()
    else:
        net, x = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).eval(), _rows(3).float()
    with pytest.raises(ParameterError, match=rf"^{method} modifies the backward pass of nn.ReLU modules; this network "
                                             r"has none \(.*F\.relu"):
        OURS[method](net, x)
    functional = _FunctionalRelu(with_module=False).eval()
    if method != "guided_grad_cam":
        with pytest.raises(ParameterError, match="this network has none"):
            OURS[method](functional, _rows(3).float())


@pytest.mark.parametrize("method", sorted(OURS))
def test_torchscript_is_refused(method):
    net, x = (_nets.cnn(), _images(3).float()) if method == "guided_grad_cam" else (_nets.mlp(), _rows(3).float())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(net, x)
    with pytest.raises(ParameterError, match="hooks the network's layers, which a TorchScript module does not allow"):
        OURS[method](scripted, x)
    oracle = Oracle(scripted, classes=[0, 1, 2], output="logits", verbose=0) if method != "guided_grad_cam" else None
    if oracle is not None:
        with pytest.raises(ParameterError, match="TorchScript"):
            OURS[method](oracle, x.numpy())


@pytest.mark.parametrize("method", sorted(OURS))
def test_a_baseline_is_refused(method):
    net, x = (_nets.cnn(), _images(3).float()) if method == "guided_grad_cam" else (_nets.mlp(), _rows(3).float())
    for baseline in ("zeros", 0.0, x[:1]):
        with pytest.raises(ParameterError, match=rf"{method} takes no baseline"):
            OURS[method](net, x, baseline=baseline)


def test_guided_grad_cam_needs_images_and_the_logits():
    with pytest.raises(ParameterError, match="guided_grad_cam needs image-like inputs.*guided_backprop"):
        guided_grad_cam(_nets.mlp(), _rows(3).float())
    frame = pd.DataFrame(_rows(5).numpy(), columns=[f"f{i}" for i in range(6)])
    proba = Oracle(nn.Sequential(_nets.mlp(), nn.Softmax(dim=1)).eval(), classes=[0, 1, 2], output="proba", verbose=0)
    with pytest.raises(ParameterError, match="guided_backprop explains the network's logits"):
        guided_backprop(proba, frame)


def test_registered():
    for name, fn in OURS.items():
        assert METHODS[name] is fn
