"""LRP: agreement with captum's LRP (same rules set on the layers), relevance conservation,
the BatchNorm canonizer, composites as data, the user's module left alone, clear errors."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pellucid import Oracle
from pellucid.attribution.lrp import (
    COMPOSITES,
    AlphaBeta,
    Epsilon,
    Gamma,
    Pass,
    ZPlus,
    composite_rules,
    fold_batchnorm,
    lrp,
    register_composite,
)
from pellucid.errors import ParameterError
from tests import _nets

captum_attr = pytest.importorskip("captum.attr")
from captum.attr._utils.lrp_rules import (  # noqa: E402
    Alpha1_Beta0_Rule,
    EpsilonRule,
    GammaRule,
)

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def captum_lrp(net: nn.Module, x: torch.Tensor, target: torch.Tensor, rule=None) -> torch.Tensor:
    """captum's LRP on a copy of ``net``; ``rule(module)`` gives the captum rule of a layer or None
    for captum's default. Flatten has no default there; EpsilonRule passes its relevance on
    (up to the 1e-9 stabiliser) where captum's IdentityRule cannot change the shape."""
    net = copy.deepcopy(net)
    for m in net.modules():
        r = rule(m) if rule is not None else None
        if r is not None:
            m.rule = r
        elif isinstance(m, (nn.Flatten, nn.Identity, nn.BatchNorm1d, nn.Conv1d)):
            m.rule = EpsilonRule()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return captum_attr.LRP(net).attribute(x.clone(), target=target).detach()


def assert_close(ours: np.ndarray, ref: torch.Tensor, rel: float = 1e-5) -> None:
    ref = ref.numpy()
    assert ours.shape == ref.shape
    scale = np.abs(ref).max()
    assert scale > 0
    assert np.abs(ours - ref).max() <= rel * scale, (np.abs(ours - ref).max(), scale)


def _targets(n: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def _images(n: int = 24, seed: int = 0) -> torch.Tensor:
    return _nets.digits()[0][seed:seed + n]


def _rows(n: int = 32, seed: int = 0, positive: bool = False) -> torch.Tensor:
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed)) * 2
    return x.abs() if positive else x


# ---------------------------------------------------------------------------- captum agreement
def _rule_epsilon(m):
    return None


def _rule_gamma(m):
    return GammaRule(0.25) if isinstance(m, WEIGHTED) else None


def _rule_zplus(m):
    return Alpha1_Beta0_Rule(set_bias_to_zero=True) if isinstance(m, WEIGHTED) else None


CASES = {
    # name: (ours composite, captum rule, needs non-negative inputs)
    "epsilon": ("epsilon", _rule_epsilon, False),
    "gamma": ([(WEIGHTED, Gamma(0.25))], _rule_gamma, False),
    # captum's Alpha1_Beta0 clamps weights only: the z+ rule where the inputs are non-negative.
    "zplus": ([(WEIGHTED, ZPlus(zero_bias=True))], _rule_zplus, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("net_name", ["mlp", "cnn", "cnn_bn"])
def test_matches_captum(net_name, case):
    composite, rule, positive = CASES[case]
    if net_name == "mlp":
        net, x = _nets.mlp(), _rows(positive=positive)
    else:
        net, x = _nets.cnn(batchnorm=net_name == "cnn_bn"), _images()
    t = _targets(len(x), 10 if net_name != "mlp" else 3)
    # canonize=False: the BatchNorm2d layers stay and get the epsilon rule, as in captum.
    ours = lrp(net, x, target=t, composite=composite, canonize=False)
    assert_close(ours.values, captum_lrp(net, x, t, rule))
    np.testing.assert_array_equal(ours.targets, t.numpy())


def test_epsilon_plus_composite_matches_captum_with_the_same_rules():
    net, x = _nets.cnn(), _images(40, seed=100)
    t = _targets(40, 10)
    # Alpha1_Beta0 keeps the bias b, our z+ takes b+: compare on a copy whose conv biases are >= 0.
    pos = copy.deepcopy(net)
    with torch.no_grad():
        for m in pos.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.abs_()
    ours = lrp(pos, x, target=t, composite="epsilon_plus")
    ref = captum_lrp(pos, x, t, lambda m: Alpha1_Beta0_Rule() if isinstance(m, nn.Conv2d) else None)
    assert_close(ours.values, ref)


def test_large_epsilon_matches_captum():
    net, x = _nets.mlp(), _rows()
    t = _targets(len(x), 3)
    ours = lrp(net, x, target=t, epsilon=0.5)
    assert_close(ours.values, captum_lrp(net, x, t, lambda m: EpsilonRule(0.5) if isinstance(m, nn.Linear) else None))


def test_batchnorm1d_not_folded_gets_epsilon_like_captum():
    # captum has no default for BatchNorm1d; set the EpsilonRule on it explicitly there.
    net, x = _nets.bn_mlp(), _rows()
    t = _targets(len(x), 3)
    ours = lrp(net, x, target=t, canonize=False)
    assert_close(ours.values, captum_lrp(net, x, t))


@pytest.mark.parametrize("net_name", ["bn_mlp", "cnn_bn"])
def test_canonized_matches_captum_on_the_folded_network(net_name):
    net = _nets.bn_mlp() if net_name == "bn_mlp" else _nets.cnn(batchnorm=True)
    x = _rows() if net_name == "bn_mlp" else _images()
    folded = fold_batchnorm(net)
    assert folded is not net
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-5)
    t = _targets(len(x), 3 if net_name == "bn_mlp" else 10)
    ours = lrp(net, x, target=t)  # canonize=True by default
    assert_close(ours.values, captum_lrp(folded, x, t))
    # With epsilon rules the folded and unfolded affine maps share relevance alike (the
    # Jacobians compose); z+ on the convolutions/dense layers needs the folded weights.
    assert_close(lrp(net, x, target=t, canonize=False).values, torch.as_tensor(ours.values), rel=1e-4)
    comp = "alpha1beta0"
    assert np.abs(lrp(net, x.abs(), target=t, composite=comp, canonize=False).values
                  - lrp(net, x.abs(), target=t, composite=comp).values).max() > 1e-4


def test_tanh_passes_relevance_like_captum():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).eval()
    x, t = _rows(), _targets(32, 3)
    assert_close(lrp(net, x, target=t).values, captum_lrp(net, x, t))


def test_conv1d_matches_captum_with_epsilon_set():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                        nn.Linear(16, 3)).eval()
    x = torch.rand(10, 2, 8)
    t = _targets(10, 3)
    assert_close(lrp(net, x, target=t).values, captum_lrp(net, x, t))


# ---------------------------------------------------------------------------- conservation
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 10.0))
def test_epsilon_conserves_relevance_without_biases(seed, scale):
    net = _nets.mlp(bias=False)
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(seed)) * scale
    a = lrp(net, x)
    np.testing.assert_allclose(a.values.sum(axis=1), a.outputs, rtol=1e-4, atol=1e-4 * np.abs(a.outputs).max())
    assert np.abs(a.delta).max() <= 1e-4 * max(1.0, np.abs(a.outputs).max())


def test_zplus_conserves_relevance_without_biases():
    net = _nets.mlp(bias=False)
    x = _rows(64, positive=True)
    a = lrp(net, x, composite="alpha1beta0")
    # Every active neuron has z+ >= z > 0, so nothing is lost (the output logit here is positive).
    keep = a.outputs > 0
    assert keep.sum() > 10
    np.testing.assert_allclose(a.values.sum(axis=1)[keep], a.outputs[keep], rtol=1e-4)


def _reference_epsilon(net: nn.Sequential, x: torch.Tensor, t: torch.Tensor, eps: float):
    """LRP-ε layer by layer (Montavon et al.'s tutorial), also returning what the biases and ε absorb."""
    acts = [x]
    for layer in net:
        acts.append(layer(acts[-1]))
    relevance = torch.zeros_like(acts[-1])
    relevance[torch.arange(len(x)), t] = acts[-1][torch.arange(len(x)), t]
    absorbed = torch.zeros(len(x), dtype=x.dtype)
    for i in range(len(net) - 1, -1, -1):
        layer, a = net[i], acts[i]
        if isinstance(layer, nn.ReLU):
            continue
        z = layer(a)
        d = z + torch.where(z >= 0, 1.0, -1.0).to(z.dtype) * eps
        s = relevance / d
        relevance = a * (s @ layer.weight)
        absorbed += (s * (d - (z - layer.bias))).sum(dim=1)  # R_j (b_j + eps sign z_j) / d_j
    return relevance, absorbed


@pytest.mark.parametrize("eps", [1e-9, 0.1])
def test_biases_absorb_their_share(eps):
    net = _nets.mlp().double()
    x = _rows(20).double()
    t = _targets(20, 3)
    a = lrp(net, x, target=t, epsilon=eps)
    with torch.no_grad():
        ref, absorbed = _reference_epsilon(net, x, t, eps)
    np.testing.assert_allclose(a.values, ref.numpy(), rtol=1e-10, atol=1e-12)
    # delta = sum(R_in) - f(x) = -(what each layer's bias and epsilon kept back), and it is not small here.
    np.testing.assert_allclose(a.delta, -absorbed.numpy(), rtol=1e-8, atol=1e-10)
    assert np.abs(a.delta).max() > 1e-3


def test_alpha_beta_splits_positive_and_negative_parts():
    # One bias-free Linear layer: R_i = sum_j (2 (x_i w_ji)+ / z+_j - (x_i w_ji)- / z-_j) R_j, by hand.
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(5, 3, bias=False)).double().eval()
    x = torch.randn(7, 5, dtype=torch.float64)
    t = _targets(7, 3)
    a = lrp(net, x, target=t, composite=[(nn.Linear, AlphaBeta(2.0, 1.0, epsilon=0.0))])
    c = x[:, None, :] * net[0].weight[None]  # (rows, outputs, inputs)
    cp, cn = c.clamp(min=0), c.clamp(max=0)
    zt = (x @ net[0].weight.T)[torch.arange(7), t].detach()
    rows = torch.arange(7)
    ref = (2 * cp[rows, t] / cp[rows, t].sum(1, keepdim=True) - cn[rows, t] / cn[rows, t].sum(1, keepdim=True))
    np.testing.assert_allclose(a.values, (ref * zt[:, None]).detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.values.sum(1), a.outputs, rtol=1e-10)  # alpha - beta = 1
    # alpha1beta0 is z+
    z1 = lrp(net, x, target=t, composite=[(nn.Linear, AlphaBeta(1.0, 0.0))]).values
    z2 = lrp(net, x, target=t, composite=[(nn.Linear, ZPlus())]).values
    np.testing.assert_array_equal(z1, z2)


# ---------------------------------------------------------------------------- canonizer, module safety
def test_fold_batchnorm_keeps_function_and_leaves_module_alone():
    net = _nets.cnn(batchnorm=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batchnorm(net)
    x = _images(32)
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-5)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2
    plain = _nets.mlp()
    assert fold_batchnorm(plain) is plain  # nothing to fold: no copy


def test_batchnorm_not_after_a_layer_stays():
    torch.manual_seed(6)
    net = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    net.train()
    with torch.no_grad():
        net(torch.randn(32, 6) * 3 + 1)
    net.eval()
    assert fold_batchnorm(net) is net
    x = _rows(8)
    a = lrp(net, x, target=1)
    assert_close(a.values, captum_lrp(net, x, torch.ones(8, dtype=torch.long)))


def _hooks(net):
    return [(n, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for n, m in
            net.named_modules() if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks]


@pytest.mark.parametrize("composite", ["epsilon", "epsilon_plus", "epsilon_gamma", "alpha1beta0",
                                       "epsilon_alpha2beta1"])
def test_user_module_unchanged(composite):
    for net, x in [(_nets.cnn(batchnorm=True), _images(8)), (_nets.bn_mlp(), _rows(8))]:
        net.train()  # lrp evaluates in eval mode and gives the flags back
        flags = [m.training for m in net.modules()]
        state = copy.deepcopy(net.state_dict())
        a = lrp(net, x, composite=composite)
        assert np.isfinite(a.values).all()
        assert _hooks(net) == []
        assert [m.training for m in net.modules()] == flags
        for k, v in net.state_dict().items():
            assert torch.equal(v, state[k]), k


def test_no_hooks_left_when_the_call_raises():
    net = _nets.mlp()
    state = copy.deepcopy(net.state_dict())
    # The pass-through rule refuses a layer that changes shape, in the middle of the forward pass.
    with pytest.raises(ParameterError, match="input's shape"):
        lrp(net, _rows(4), composite={"4": "pass"})
    assert _hooks(net) == []
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])


def test_inplace_relu_and_repeated_calls_agree():
    net = _nets.cnn()
    inplace = copy.deepcopy(net)
    for i, m in enumerate(inplace):
        if isinstance(m, nn.ReLU):
            inplace[i] = nn.ReLU(inplace=True)
    x = _images(16)
    for comp in ["epsilon", "epsilon_plus"]:
        a = lrp(net, x, composite=comp).values
        np.testing.assert_allclose(lrp(inplace, x, composite=comp).values, a, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(lrp(net, x, composite=comp).values, a)


# ---------------------------------------------------------------------------- composites as data
def test_first_match_wins_and_dict_overrides():
    net = _nets.mlp()
    rules = composite_rules(net, [(nn.Linear, Gamma(0.5)), (nn.Linear, Epsilon())])
    assert all(isinstance(r, Gamma) for _, m, r in rules if isinstance(m, nn.Linear))
    assert all(isinstance(r, Pass) for _, m, r in rules if isinstance(m, nn.ReLU))
    by_name = composite_rules(net, {"0": "zplus"})
    got = {n: type(r) for n, _, r in by_name}
    assert got["0"] is ZPlus and got["2"] is Epsilon and got["4"] is Epsilon
    x = _rows(8, positive=True)
    a = lrp(net, x, composite={"0": ZPlus()}).values
    b = lrp(net, x, composite=[((nn.Linear,), "epsilon")]).values
    c = lrp(net, x, composite={"0": "zplus", "2": "epsilon"}).values
    np.testing.assert_array_equal(a, c)
    assert np.abs(a - b).max() > 1e-6


def test_register_composite():
    @register_composite("test_all_gamma")
    def _all_gamma(epsilon=1e-9, gamma=0.25):
        return [((nn.Linear,), Gamma(gamma, epsilon)), ((nn.ReLU,), Pass())]

    try:
        net, x = _nets.mlp(), _rows(8)
        a = lrp(net, x, composite="test_all_gamma", gamma=0.5)
        b = lrp(net, x, composite=[(nn.Linear, Gamma(0.5))])
        np.testing.assert_array_equal(a.values, b.values)
        assert a.params["composite"] == "test_all_gamma"
    finally:
        del COMPOSITES["test_all_gamma"]


def test_binary_oracle_explains_the_logit():
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).eval()
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(12, 3)), columns=["a", "b", "c"])
    oracle = Oracle(net, classes=[0, 1], output="logits", verbose=0)
    one = lrp(oracle, frame, target=1)
    zero = lrp(oracle, frame, target=0)
    assert one.features == ("a", "b", "c") and one.values.shape == (12, 3)
    logit = net(torch.tensor(frame.to_numpy(), dtype=torch.float32)).detach().numpy().ravel()
    np.testing.assert_allclose(one.outputs, logit, rtol=1e-6)
    np.testing.assert_allclose(zero.values, -one.values, rtol=1e-6)
    assert one.params["explains"] == "logits"


# ---------------------------------------------------------------------------- errors
class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return self.lin(x) * self.scale


@pytest.mark.parametrize("net, match", [
    (nn.Sequential(nn.Linear(6, 4), nn.GELU(), nn.Linear(4, 2)), r"layer '1' \(GELU\)"),
    (nn.Sequential(nn.Linear(6, 2), nn.Softmax(dim=1)), r"layer '1' \(Softmax\).*logits"),
    (_Scaled(), r"'<model>'|own parameters"),
])
def test_unknown_layers_are_named(net, match):
    with pytest.raises(ParameterError, match=match):
        lrp(net.eval(), _rows(4))
    assert _hooks(net) == []


def test_bad_arguments():
    net, x = _nets.mlp(), _rows(4)
    with pytest.raises(ParameterError, match="unknown LRP composite 'nope'.*epsilon"):
        lrp(net, x, composite="nope")
    with pytest.raises(ParameterError, match="not an LRP rule"):
        lrp(net, x, composite={"0": "bogus"})
    with pytest.raises(ParameterError, match="does not have.*'9'"):
        lrp(net, x, composite={"9": "epsilon"})
    with pytest.raises(ParameterError, match="entry 0"):
        lrp(net, x, composite=[("Linear", Epsilon())])
    with pytest.raises(ParameterError, match="alpha - beta = 1"):
        AlphaBeta(1.0, 1.0)
    with pytest.raises(ParameterError, match=r"cannot be applied to layer '1' \(BatchNorm1d\)"):
        lrp(_nets.bn_mlp(), x, composite={"1": Gamma()}, canonize=False)
    with pytest.raises(ParameterError, match="target 7"):
        lrp(net, x, target=7)


def test_passes_of_a_few_rows_agree_and_no_grad_is_ignored():
    net, x = _nets.cnn(batchnorm=True), _images(23)
    whole = lrp(net, x, composite="epsilon_plus")
    with torch.no_grad():
        parts = lrp(net, x, composite="epsilon_plus", batch_size=5)
    np.testing.assert_allclose(parts.values, whole.values, rtol=1e-5, atol=1e-7 * np.abs(whole.values).max())
    np.testing.assert_array_equal(parts.targets, whole.targets)
    np.testing.assert_allclose(parts.delta, whole.delta, rtol=1e-4, atol=1e-6)
    with pytest.raises(ParameterError, match="batch_size"):
        lrp(net, x, batch_size=0)


def test_tabular_oracle_sums_one_hot_groups_into_raw_features(credit, credit_oracle_parts):
    net, pre, classes = credit_oracle_parts
    X, _ = credit
    oracle = Oracle(net, pre, classes=classes, verbose=0)
    rows = X.iloc[:40]
    a = lrp(oracle, rows)
    assert a.features == tuple(X.columns) and a.values.shape == (40, X.shape[1])
    total = a.values.sum(axis=1) + (a.unassigned if a.unassigned is not None else 0)
    np.testing.assert_allclose(total, a.encoded.sum(axis=1), rtol=1e-5, atol=1e-6)
    z = net(torch.as_tensor(oracle.encode(rows), dtype=torch.float32)).detach()
    np.testing.assert_allclose(a.outputs, z[torch.arange(40), torch.as_tensor(a.targets)].numpy(), rtol=1e-5)
    np.testing.assert_allclose(a.delta, a.encoded.sum(axis=1) - a.outputs, rtol=1e-5, atol=1e-6)
