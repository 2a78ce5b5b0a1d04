"""Grad-CAM: agreement with captum's LayerGradCam (+ LayerAttribution.interpolate), the CAM
identity on a global-average-pooling head, the user's module left alone, clear errors."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pellucid.attribution.grad_cam import grad_cam
from pellucid.errors import ParameterError
from tests import _nets

captum_attr = pytest.importorskip("captum.attr")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def captum_cam(net, layer, x, target, relu=True, mode=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cam = captum_attr.LayerGradCam(net, layer).attribute(x, target=target, relu_attributions=relu)
        if mode is not None:
            cam = captum_attr.LayerAttribution.interpolate(cam, tuple(x.shape[2:]), mode)
    return cam.squeeze(1).detach()


def assert_close(ours: np.ndarray, ref: torch.Tensor, rel: float = 1e-5) -> None:
    ref = ref.numpy()
    assert ours.shape == ref.shape
    scale = np.abs(ref).max()
    assert scale > 0
    assert np.abs(ours - ref).max() <= rel * scale, (np.abs(ours - ref).max(), scale)


def _images(n=32, start=0):
    return _nets.digits()[0][start:start + n]


@pytest.mark.parametrize("upsample, mode", [(False, None), ("nearest", "nearest"), (True, "bilinear"),
                                            ("bicubic", "bicubic")])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("which", ["cnn", "digits_cnn"])
def test_matches_captum(which, relu, upsample, mode):
    net = _nets.cnn() if which == "cnn" else _nets.digits_cnn()
    x = _images(48, 200)
    ours = grad_cam(net, x, relu=relu, upsample=upsample)  # default layer: the last Conv2d, net[5]
    assert ours.params["layer"] == "5"
    t = torch.as_tensor(ours.targets)
    np.testing.assert_array_equal(ours.targets, net(x).argmax(1).numpy())
    ref = captum_cam(net, net[5], x, t, relu=relu, mode=mode)
    assert ours.values.shape == ((48, 8, 8) if upsample else (48, 4, 4))
    assert_close(ours.values, ref)
    np.testing.assert_allclose(ours.outputs, net(x)[torch.arange(48), t].detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("layer", ["2", 2, "0"])
def test_other_layers_by_name_or_module_and_targets(layer):
    net = _nets.digits_cnn()
    module = net[int(layer)]
    x = _images(20)
    t = torch.arange(20) % 10
    by = grad_cam(net, x, target=t, layer=module if isinstance(layer, int) else layer, upsample=False)
    ref = captum_cam(net, module, x, t)
    assert_close(by.values, ref)
    assert by.values.shape == (20, 8, 8)


def test_batchnorm_cnn_and_given_target():
    net = _nets.cnn(batchnorm=True)
    x = _images(16)
    ours = grad_cam(net, x, target=3, upsample="bilinear")
    assert_close(ours.values, captum_cam(net, net[7], x, 3, mode="bilinear"))


class _GapNet(nn.Module):
    """conv -> relu -> global average pool -> linear: Grad-CAM without the ReLU is the CAM, and
    its spatial sum (at the layer's size) is the logit less the bias, over the map's size."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        a = torch.relu(self.conv(x))
        return self.head(a.mean(dim=(2, 3)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), target=st.integers(0, 3))
def test_cam_identity_on_a_gap_head(seed, target):
    net = _GapNet().eval()
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    # The hooked layer is the conv; the ReLU after it is part of the rest of the network, so
    # the gradient is w_c / HW only where the conv output is positive: use the ReLU'd maps.
    cam = grad_cam(net, x, target=target, layer="conv", relu=False, upsample=False)
    with torch.no_grad():
        a = net.conv(x)
        grads = (a > 0).float() * net.head.weight[target][None, :, None, None] / 64
        ref = (grads.mean(dim=(2, 3), keepdim=True) * a).sum(1)
    np.testing.assert_allclose(cam.values, ref.numpy(), rtol=1e-5, atol=1e-7)


def test_module_unchanged_and_no_hooks():
    net = _nets.cnn()
    net.train()
    state = copy.deepcopy(net.state_dict())
    grad_cam(net, _images(4))
    with pytest.raises(ParameterError):
        grad_cam(net, _images(4), layer="9")  # a Linear: no spatial axes (raised after the pass)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(m.training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])
    assert torch.is_grad_enabled()


def test_works_inside_no_grad_and_with_frozen_weights():
    net = copy.deepcopy(_nets.digits_cnn())
    for p in net.parameters():
        p.requires_grad_(False)
    x = _images(8)
    with torch.no_grad():
        ours = grad_cam(net, x, upsample=False)
    assert torch.is_grad_enabled()
    assert_close(ours.values, captum_cam(_nets.digits_cnn(), _nets.digits_cnn()[5], x, torch.as_tensor(ours.targets)))


def test_inplace_relu_after_the_layer():
    # torchvision's networks put nn.ReLU(inplace=True) right after their convolutions.
    net = _nets.digits_cnn()
    inplace = copy.deepcopy(net)
    for i, m in enumerate(inplace):
        if isinstance(m, nn.ReLU):
            inplace[i] = nn.ReLU(inplace=True)
    x = _images(10)
    for layer in ("5", "2", "0"):
        np.testing.assert_array_equal(grad_cam(inplace, x, layer=layer).values, grad_cam(net, x, layer=layer).values)


def test_errors_are_clear():
    x = _images(4)
    with pytest.raises(ParameterError, match="image-like inputs"):
        grad_cam(_nets.mlp(), torch.randn(4, 6))
    dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    with pytest.raises(ParameterError, match="no Conv2d"):
        grad_cam(dense, x)
    net = _nets.cnn()
    with pytest.raises(ParameterError, match=r"no layer named 'conv9'.*'0 \(Conv2d\)'.*'2 \(Conv2d\)'.*'5 \(Conv2d\)'"):
        grad_cam(net, x, layer="conv9")
    with pytest.raises(ParameterError, match="not part of the model"):
        grad_cam(net, x, layer=nn.Conv2d(1, 1, 1))
    with pytest.raises(ParameterError, match="no spatial axes"):
        grad_cam(net, x, layer="9")
    with pytest.raises(ParameterError, match="upsample must be"):
        grad_cam(net, x, upsample="cubic")
    unused = _GapNet().eval()
    unused.spare = nn.Conv2d(2, 2, 1)  # registered last, never called
    with pytest.raises(ParameterError, match="'spare' was not used"):
        grad_cam(unused, x)
    with pytest.raises(ParameterError, match="does not fit"):
        grad_cam(net, x, upsample="trilinear")


def test_passes_of_a_few_images_agree():
    net, x = _nets.cnn(), _images(23)
    whole = grad_cam(net, x, target=2)
    parts = grad_cam(net, x, target=2, batch_size=4)
    np.testing.assert_allclose(parts.values, whole.values, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(parts.outputs, whole.outputs, rtol=1e-6)
    with pytest.raises(ParameterError, match="batch_size"):
        grad_cam(net, x, batch_size=-1)
