"""Gradient attributions against captum (the reference), on the shared small nets, plus the
integration rules alone, completeness, the raw-feature map and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

captum_attr = pytest.importorskip("captum.attr")
from captum.attr import (  # noqa: E402
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)
from captum.attr._utils.approximation_methods import approximation_parameters  # noqa: E402

from pellucid import Oracle  # noqa: E402
from pellucid.attribution import (  # noqa: E402
    INTEGRATION_METHODS,
    METHODS,
    expected_gradients,
    gradient_x_input,
    integrated_gradients,
    integration_rule,
    saliency,
    smoothgrad,
)
from pellucid.demo import CLASSES  # noqa: E402
from pellucid.errors import ModelError, ParameterError  # noqa: E402
from tests import _nets  # noqa: E402

TOL = 1e-5


def close(ours, theirs, tol=TOL):
    """Max abs difference relative to the attribution scale (max |captum|)."""
    a = ours.encoded if hasattr(ours, "encoded") else np.asarray(ours)
    b = theirs.detach().cpu().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(), 1e-12)
    err = np.abs(a - b).max() / scale
    assert err <= tol, f"relative difference {err:.3g} > {tol}"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _quiet_captum():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
        yield


def _case(name):
    g = torch.Generator().manual_seed(1)
    if name == "mlp":
        return _nets.mlp(), torch.randn(12, 6, generator=g), torch.randint(0, 3, (12,), generator=g)
    if name == "bn_mlp":
        return _nets.bn_mlp(), torch.randn(12, 6, generator=g) * 2, torch.randint(0, 3, (12,), generator=g)
    bn = name == "cnn_bn"
    return (_nets.cnn(batchnorm=bn), torch.rand(6, 1, 8, 8, generator=g) * (16 if bn else 1),
            torch.randint(0, 10, (6,), generator=g))


NETS = ["mlp", "bn_mlp", "cnn", "cnn_bn"]


# ---------------------------------------------------------------------------- integration rules
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"])
@pytest.mark.parametrize("n", [2, 7, 50])
def test_rule_matches_captum(method, n):
    sizes, alphas = approximation_parameters(method)
    a, w = integration_rule(method, n)
    np.testing.assert_allclose(a, alphas(n), atol=1e-6)
    np.testing.assert_allclose(w, sizes(n), atol=1e-7)


@given(st.integers(1, 12), st.lists(st.floats(-5, 5), min_size=1, max_size=24))
@settings(max_examples=40, deadline=None)
def test_gauss_legendre_integrates_polynomials_exactly(n, coefs):
    coefs = coefs[: 2 * n]  # degree <= 2n - 1
    a, w = integration_rule("gausslegendre", n)
    exact = sum(c / (k + 1) for k, c in enumerate(coefs))
    assert abs(np.dot(w, np.polynomial.polynomial.polyval(a, coefs)) - exact) <= 1e-9 * (1 + sum(map(abs, coefs)))


@pytest.mark.parametrize("method", INTEGRATION_METHODS)
def test_rules_sum_to_one_and_riemann_orders(method):
    a, w = integration_rule(method, 40)
    assert abs(w.sum() - 1) < 1e-12 and np.all((a >= 0) & (a <= 1))
    f = lambda t: 3 * t + 1  # noqa: E731 - integral 2.5
    err = abs(np.dot(w, f(a)) - 2.5)
    if method in ("gausslegendre", "riemann_middle", "riemann_trapezoid"):
        assert err < 1e-12  # exact for linear functions
    else:
        assert 1e-3 < err < 0.05  # left/right are first order


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_rule_rejects_bad_steps(bad):
    with pytest.raises(ParameterError, match="n_steps"):
        integration_rule("gausslegendre", bad)
    with pytest.raises(ParameterError, match="n_steps"):
        integration_rule("riemann_trapezoid", 1)


def test_rule_rejects_unknown_method():
    with pytest.raises(ParameterError, match="simpson"):
        integration_rule("simpson", 10)


# ---------------------------------------------------------------------------- against captum
@pytest.mark.parametrize("name", NETS)
def test_saliency_and_gradient_x_input_match_captum(name):
    net, x, t = _case(name)
    close(saliency(net, x, target=t), Saliency(net).attribute(x, target=t))
    close(saliency(net, x, target=t, abs=False), Saliency(net).attribute(x, target=t, abs=False))
    close(gradient_x_input(net, x, target=t), InputXGradient(net).attribute(x, target=t))


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"])
def test_integrated_gradients_matches_captum(name, method):
    net, x, t = _case(name)
    base = torch.rand(1, *x.shape[1:], generator=torch.Generator().manual_seed(3)) * 0.5
    ours = integrated_gradients(net, x, baseline=base, target=t, n_steps=16, method=method)
    theirs, delta = IntegratedGradients(net).attribute(x, baselines=base, target=t, n_steps=16, method=method,
                                                       return_convergence_delta=True)
    close(ours, theirs)
    scale = float(np.abs(ours.outputs).max())
    np.testing.assert_allclose(ours.delta, delta.numpy(), atol=1e-5 * scale)
    assert ours.values.shape == x.shape if x.dim() > 2 else ours.values.shape == (len(x), x.shape[1])


def test_integrated_gradients_baselines_match_captum():
    net, x, t = _case("mlp")
    ig = IntegratedGradients(net)
    close(integrated_gradients(net, x, target=t), ig.attribute(x, target=t))  # zeros, the default
    close(integrated_gradients(net, x, baseline="zeros", target=t), ig.attribute(x, target=t))
    close(integrated_gradients(net, x, baseline=0.7, target=t), ig.attribute(x, baselines=0.7, target=t))
    per_row = torch.randn(len(x), 6, generator=torch.Generator().manual_seed(4))
    close(integrated_gradients(net, x, baseline=per_row, target=t), ig.attribute(x, baselines=per_row, target=t))
    row = per_row[0].numpy()  # one row as a 1-D array
    close(integrated_gradients(net, x, baseline=row, target=t), ig.attribute(x, baselines=per_row[:1], target=t))
    mean = integrated_gradients(net, x, baseline="mean", target=t)
    close(mean, ig.attribute(x, baselines=x.mean(0, keepdim=True), target=t))


def test_integrated_gradients_internal_batches_do_not_change_the_result():
    net, x, t = _case("cnn")
    whole = integrated_gradients(net, x, target=t, n_steps=20)
    for size in (1, 20, 45, 10_000):
        part = integrated_gradients(net, x, target=t, n_steps=20, batch_size=size)
        np.testing.assert_allclose(part.encoded, whole.encoded, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["mlp", "cnn_bn"])
@pytest.mark.parametrize("variant,nt_type", [("mean", "smoothgrad"), ("squared", "smoothgrad_sq"),
                                              ("variance", "vargrad")])
def test_smoothgrad_matches_noise_tunnel(name, variant, nt_type):
    net, x, t = _case(name)
    ours = smoothgrad(net, x, target=t, n_samples=6, stdev=0.3, variant=variant, random_state=11)
    torch.manual_seed(11)
    theirs = NoiseTunnel(Saliency(net)).attribute(x, target=t, nt_type=nt_type, nt_samples=6, stdevs=0.3)
    close(ours, theirs)
    ours = smoothgrad(net, x, target=t, base="gradient_x_input", n_samples=6, stdev=0.3, variant=variant,
                      random_state=11)
    torch.manual_seed(11)
    theirs = NoiseTunnel(InputXGradient(net)).attribute(x, target=t, nt_type=nt_type, nt_samples=6, stdevs=0.3)
    close(ours, theirs)


def test_smoothgrad_of_integrated_gradients_matches_noise_tunnel():
    net, x, t = _case("bn_mlp")
    base = torch.full((1, 6), 0.25)
    ours = smoothgrad(net, x, target=t, base="integrated_gradients", n_samples=4, stdev=0.5, random_state=2,
                      baseline=base, n_steps=12, method="riemann_middle")
    torch.manual_seed(2)
    theirs, delta = NoiseTunnel(IntegratedGradients(net)).attribute(
        x, target=t, nt_samples=4, stdevs=0.5, baselines=base, n_steps=12, method="riemann_middle",
        return_convergence_delta=True)
    close(ours, theirs)
    np.testing.assert_allclose(ours.delta, delta.view(-1, 4).mean(1).numpy(), atol=1e-6)


def test_smoothgrad_callable_base_and_reproducibility():
    net, x, t = _case("mlp")
    a = smoothgrad(net, x, target=t, base=saliency, n_samples=5, stdev=0.2, random_state=0, abs=False)
    b = smoothgrad(net, x, target=t, n_samples=5, stdev=0.2, random_state=0, abs=False)
    np.testing.assert_allclose(a.encoded, b.encoded, rtol=1e-6)
    c = smoothgrad(net, x, target=t, n_samples=5, stdev=0.2, random_state=1, abs=False)
    assert not np.allclose(b.encoded, c.encoded)


@pytest.mark.parametrize("name", NETS)
def test_expected_gradients_matches_gradient_shap_with_the_same_draws(name):
    net, x, t = _case(name)
    dist = torch.rand(9, *x.shape[1:], generator=torch.Generator().manual_seed(5))
    ours = expected_gradients(net, x, target=t, baseline=dist, n_samples=7, stdev=0.1, random_state=21)
    np.random.seed(21)
    torch.manual_seed(21)
    theirs = GradientShap(net).attribute(x, dist, target=t, n_samples=7, stdevs=0.1)
    close(ours, theirs)


def test_expected_gradients_is_exact_for_a_linear_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3).eval()
    x, base = torch.randn(8, 5), torch.randn(1, 5)
    ours = expected_gradients(lin, x, target=2, baseline=base, n_samples=3)  # no seed: nothing random matters
    theirs = GradientShap(lin).attribute(x, base, target=2, n_samples=3)
    close(ours, theirs)
    close(ours, (x - base) * lin.weight[2].detach())
    np.testing.assert_allclose(ours.delta, 0, atol=1e-5)


def test_expected_gradients_converges_to_integrated_gradients_over_the_distribution():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).eval()
    x, dist = torch.randn(3, 4), torch.randn(5, 4)
    ig = integrated_gradients(net, x, baseline=dist, n_steps=24)  # the average over the 5 baselines
    eg = expected_gradients(net, x, baseline=dist, n_samples=4000, random_state=0)
    scale = np.abs(ig.encoded).max()
    assert np.abs(eg.encoded - ig.encoded).max() < 0.05 * scale
    assert np.abs(eg.delta).max() < 0.05 * np.abs(ig.outputs).max()  # completeness in expectation
    assert np.abs(ig.delta).max() < 1e-5


# ---------------------------------------------------------------------------- completeness
_SMOOTH = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.Tanh(), torch.nn.Linear(12, 12), torch.nn.Softplus(),
                              torch.nn.Linear(12, 3)).eval()


@given(st.lists(st.floats(-3, 3), min_size=10, max_size=10), st.integers(0, 2))
@settings(max_examples=20, deadline=None)
def test_integrated_gradients_completeness(values, target):
    x = torch.tensor(values, dtype=torch.float32).view(2, 5)
    a = integrated_gradients(_SMOOTH, x, target=target, n_steps=32)
    f = _SMOOTH(x).detach()[:, target] - _SMOOTH(torch.zeros(1, 5)).detach()[0, target]
    assert np.abs(a.delta).max() <= 1e-4 * max(1.0, float(f.abs().max()))
    np.testing.assert_allclose(a.encoded.sum(1) - a.delta, f.numpy(), atol=1e-5)


def test_distribution_baseline_is_the_average_over_its_rows():
    net, x, t = _case("mlp")
    dist = torch.randn(4, 6, generator=torch.Generator().manual_seed(8))
    avg = integrated_gradients(net, x, baseline=dist, target=t, n_steps=10)
    each = [integrated_gradients(net, x, baseline=dist[i], target=t, n_steps=10) for i in range(4)]
    np.testing.assert_allclose(avg.encoded, np.mean([e.encoded for e in each], axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(avg.delta, np.mean([e.delta for e in each], axis=0), atol=1e-5)
    assert avg.params["pairing"] == "distribution"
    # as many rows as inputs: paired unless told otherwise
    dist12 = torch.randn(12, 6, generator=torch.Generator().manual_seed(9))
    assert integrated_gradients(net, x, baseline=dist12, target=t).params["pairing"] == "paired"
    assert integrated_gradients(net, x, baseline=dist12, target=t, paired=False).params["pairing"] == "distribution"


def test_float64_modules_and_targets():
    net, x, t = _case("mlp")
    net64, x64 = net.double(), x.double()
    ours = integrated_gradients(net64, x64, target=t, n_steps=30)
    assert ours.encoded.dtype == np.float64
    close(ours, IntegratedGradients(net64).attribute(x64, target=t, n_steps=30), tol=1e-6)
    # target None: each row's predicted class
    pred = net64(x64).argmax(1)
    np.testing.assert_array_equal(saliency(net64, x64).targets, pred.numpy())
    close(saliency(net64, x64), Saliency(net64).attribute(x64, target=pred))
    # a single target for all rows
    close(saliency(net64, x64, target=1), Saliency(net64).attribute(x64, target=1))


# ---------------------------------------------------------------------------- raw features (Oracle)
@pytest.fixture(scope="module")
def credit_oracle(credit_net):
    net, pre = credit_net
    return Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES))


def test_oracle_path_gives_raw_feature_columns(credit, credit_oracle):
    X, _ = credit
    rows = X.iloc[:10]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ten rows: no "did not change with any raw feature" warning
        attrs = [f(credit_oracle, rows, target="bad") for f in (saliency, gradient_x_input, integrated_gradients)]
        attrs.append(smoothgrad(credit_oracle, rows, target="bad", n_samples=4, random_state=0))
        attrs.append(expected_gradients(credit_oracle, rows, target="bad", baseline=X.iloc[100:150], n_samples=4,
                                        random_state=0))
    n_encoded = credit_oracle.encode(rows).shape[1]
    for a in attrs:
        assert a.features == tuple(X.columns) and a.values.shape == (10, X.shape[1])
        assert a.encoded.shape == (10, n_encoded) and list(a.targets) == [1] * 10
        rest = 0 if a.unassigned is None else a.unassigned
        np.testing.assert_allclose(a.values.sum(1) + rest, a.encoded.sum(1), rtol=1e-5, atol=1e-6)
        assert a.to_frame().columns.tolist() == list(X.columns)
    # a one-hot group is summed into its feature
    a = attrs[2]
    emap = credit_oracle.encoding_map(X)
    j = list(X.columns).index("home")
    np.testing.assert_allclose(a.values[:, j], a.encoded[:, list(emap.groups["home"])].sum(1), rtol=1e-6)
    # the probabilities' IG: completeness on the attributed class
    assert np.abs(a.delta).max() < 0.02


@pytest.mark.parametrize("how", ["mean", "median", "mode"])
def test_summary_baselines_are_valid_raw_rows(credit, credit_oracle, how):
    X, _ = credit
    a = integrated_gradients(credit_oracle, X.iloc[:5], baseline=how, target="bad", n_steps=8, reference=X)
    row = a.params["baseline_row"]
    for col in ("home", "employment", "region"):
        assert row[col] in set(X[col].dropna()) and row[col] == X[col].mode().iloc[0]
    for col in ("age", "credit_lines", "tenure_months", "dependents"):  # integers stay integers
        assert float(row[col]) == round(float(row[col]))
    if how == "mean":
        assert row["debt_ratio"] == pytest.approx(X["debt_ratio"].mean())
    # the same as giving that raw row explicitly
    b = integrated_gradients(credit_oracle, X.iloc[:5], baseline=pd.Series(row), target="bad", n_steps=8)
    np.testing.assert_allclose(a.encoded, b.encoded, rtol=1e-6)


def test_encoding_map_with_a_reference(credit, credit_oracle):
    X, _ = credit
    a = saliency(credit_oracle, X.iloc[:3], reference=X)
    credit_oracle.__dict__.pop("_attribution_maps", None)  # forget the map: find it from three rows alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = saliency(credit_oracle, X.iloc[:3])
    np.testing.assert_allclose(a.values, b.values)
    assert a.unassigned is None and b.unassigned is None
    with pytest.raises(ParameterError, match="reference has columns"):
        saliency(credit_oracle, X.iloc[:3], reference=X.iloc[:, :4])


# ---------------------------------------------------------------------------- errors
def test_errors_name_the_problem(credit, credit_oracle):
    net, x, t = _case("mlp")
    with pytest.raises(ParameterError, match="n_steps"):
        integrated_gradients(net, x, n_steps=0, target=t)
    with pytest.raises(ParameterError, match="integration method 'simpson'"):
        integrated_gradients(net, x, method="simpson", target=t)
    with pytest.raises(ParameterError, match="variant 'median'"):
        smoothgrad(net, x, target=t, variant="median")
    with pytest.raises(ParameterError, match="base 'lrp'"):
        smoothgrad(net, x, target=t, base="lrp")
    with pytest.raises(ParameterError, match="takes no argument 'baseline'"):
        smoothgrad(net, x, target=t, baseline="mean")
    with pytest.raises(ParameterError, match="shape"):
        integrated_gradients(net, x, baseline=torch.zeros(1, 5), target=t)
    with pytest.raises(ParameterError, match="NaN"):
        integrated_gradients(net, x, baseline=np.full(6, np.nan), target=t)
    with pytest.raises(ParameterError, match="unknown baseline 'average'"):
        integrated_gradients(net, x, baseline="average", target=t)
    with pytest.raises(ParameterError, match="target 5"):
        saliency(net, x, target=5)
    with pytest.raises(ParameterError, match="n_samples"):
        expected_gradients(net, x, target=t, baseline=x, n_samples=0)
    with pytest.raises(ParameterError, match="stdev"):
        smoothgrad(net, x, target=t, stdev=-1)
    from sklearn.dummy import DummyClassifier

    X, y = credit
    num = X.select_dtypes("number").fillna(0)
    sk = Oracle(DummyClassifier().fit(num, y))
    with pytest.raises(ModelError, match="occlusion"):
        integrated_gradients(sk, num.iloc[:3])
    with pytest.raises(ParameterError, match="target 'ugly'"):
        saliency(credit_oracle, X.iloc[:3], target="ugly")


def test_registry():
    assert {"saliency", "gradient_x_input", "integrated_gradients", "smoothgrad", "expected_gradients",
            "occlusion"} <= set(METHODS)
    net, x, t = _case("mlp")
    for name, fn in METHODS.items():
        if name in ("grad_cam", "guided_grad_cam"):  # images only: tested in their own test files
            continue
        if name == "expected_gradients":
            a = fn(net, x, t, baseline=x, n_samples=2, random_state=0)
        else:
            a = fn(net, x, target=t)
        assert a.values.shape == (12, 6) and a.method == name


def test_the_module_keeps_each_submodules_own_training_flag():
    # A module with one submodule in train mode and one in eval mode comes back the same.
    from pellucid.attribution import saliency

    net = _nets.bn_mlp()
    net[1].train()
    before = [m.training for m in net.modules()]
    saliency(net, torch.randn(4, 6), target=0)
    assert [m.training for m in net.modules()] == before
