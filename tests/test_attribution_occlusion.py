"""Occlusion against captum (FeatureAblation, Occlusion) on tensors, and the model-agnostic
raw-row path for Oracles of any kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("captum.attr")
from captum.attr import FeatureAblation, Occlusion  # noqa: E402

from pellucid import Oracle  # noqa: E402
from pellucid.attribution import occlusion  # noqa: E402
from pellucid.demo import CLASSES  # noqa: E402
from pellucid.errors import ModelError, ParameterError  # noqa: E402
from tests import _nets  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def close(ours, theirs, tol=1e-5):
    a = ours.encoded
    b = theirs.detach().numpy()
    assert a.shape == b.shape
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
    assert err <= tol, f"relative difference {err:.3g} > {tol}"


def _tab(name="mlp"):
    g = torch.Generator().manual_seed(2)
    net = _nets.mlp() if name == "mlp" else _nets.bn_mlp()
    return net, torch.randn(10, 6, generator=g) * 2, torch.randint(0, 3, (10,), generator=g)


def _img(bn=False):
    g = torch.Generator().manual_seed(3)
    return _nets.cnn(batchnorm=bn), torch.rand(5, 1, 8, 8, generator=g) * (16 if bn else 1), \
        torch.randint(0, 10, (5,), generator=g)


# ---------------------------------------------------------------------------- tensors vs captum
@pytest.mark.parametrize("name", ["mlp", "bn_mlp"])
def test_feature_ablation_matches_captum(name):
    net, x, t = _tab(name)
    fa = FeatureAblation(net)
    close(occlusion(net, x, target=t), fa.attribute(x, target=t))
    close(occlusion(net, x, target=t, baseline=0.5), fa.attribute(x, target=t, baselines=0.5))
    row = torch.randn(1, 6, generator=torch.Generator().manual_seed(0))
    close(occlusion(net, x, target=t, baseline=row), fa.attribute(x, target=t, baselines=row))
    per_row = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    close(occlusion(net, x, target=t, baseline=per_row), fa.attribute(x, target=t, baselines=per_row))
    mask = torch.tensor([[0, 0, 1, 2, 2, 2]])
    a = occlusion(net, x, target=t, feature_mask=mask)
    close(a, fa.attribute(x, target=t, feature_mask=mask))
    assert a.params["features_occluded"] == 3
    close(occlusion(net, x, target=t, feature_mask=mask[0].numpy(), batch_size=7),
          fa.attribute(x, target=t, feature_mask=mask))


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("window,strides", [((1, 3, 3), (1, 2, 2)), ((1, 2, 2), 2), ((1, 4, 3), (1, 3, 2)),
                                            ((1, 1, 1), None)])
def test_sliding_window_occlusion_matches_captum(bn, window, strides):
    net, x, t = _img(bn)
    base = 0.25 if not bn else 4.0
    ours = occlusion(net, x, target=t, baseline=base, sliding_window_shapes=window, strides=strides)
    theirs = Occlusion(net).attribute(x, target=t, sliding_window_shapes=window, strides=strides, baselines=base)
    close(ours, theirs)
    assert ours.values.shape == x.shape


def test_image_feature_mask_matches_captum():
    net, x, t = _img()
    mask = (torch.arange(64).view(1, 1, 8, 8) // 16)  # four bands of rows
    close(occlusion(net, x, target=t, feature_mask=mask), FeatureAblation(net).attribute(x, target=t,
                                                                                          feature_mask=mask))


def test_float64_and_predicted_targets():
    net, x, _ = _tab()
    net, x = net.double(), x.double()
    pred = net(x).argmax(1)
    a = occlusion(net, x)
    np.testing.assert_array_equal(a.targets, pred.numpy())
    close(a, FeatureAblation(net).attribute(x, target=pred))
    assert a.encoded.dtype == np.float64


# ---------------------------------------------------------------------------- raw rows, any oracle
@pytest.fixture(scope="module")
def forest(credit):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from pellucid.demo import credit_preprocess

    X, y = credit
    model = make_pipeline(credit_preprocess(X), RandomForestClassifier(20, max_depth=6, random_state=0)).fit(X, y)
    return Oracle(model)


def test_raw_occlusion_of_a_sklearn_oracle(credit, forest):
    X, _ = credit
    rows = X.iloc[:8]
    forest.reset_counter()
    a = occlusion(forest, rows, target="bad", baseline="mode", reference=X)
    assert forest.n_calls == 1  # every substitution in one query
    assert a.values.shape == (8, X.shape[1]) and a.features == tuple(X.columns)
    assert a.params["space"] == "raw"
    base = a.params["baseline_row"]
    for col in ("home", "employment", "region"):
        assert base[col] in set(X[col].dropna())
    # by hand, one feature at a time
    k = list(forest.classes_).index("bad")
    assert list(a.targets) == [k] * 8
    p = forest.query(rows)[:, k]
    for j, col in enumerate(X.columns):
        changed = rows.copy()
        changed[col] = base[col]
        np.testing.assert_allclose(a.values[:, j], p - forest.query(changed)[:, k], atol=1e-12)
    np.testing.assert_allclose(a.outputs, p)


def test_raw_occlusion_baselines(credit, forest):
    X, _ = credit
    rows = X.iloc[:6]
    single = X.iloc[[100]]
    a = occlusion(forest, rows, target=1, baseline=single)
    b = occlusion(forest, rows, target=1, baseline=single.iloc[0])  # a Series
    np.testing.assert_allclose(a.values, b.values)
    # a distribution: the mean over its rows
    dist = X.iloc[200:203]
    d = occlusion(forest, rows, target=1, baseline=dist)
    each = [occlusion(forest, rows, target=1, baseline=dist.iloc[[i]]).values for i in range(3)]
    np.testing.assert_allclose(d.values, np.mean(each, axis=0), atol=1e-12)
    # paired: one baseline row per input row
    paired = X.iloc[300:306]
    e = occlusion(forest, rows, target=1, baseline=paired)
    first = occlusion(forest, rows.iloc[[0]], target=1, baseline=paired.iloc[[0]])
    np.testing.assert_allclose(e.values[0], first.values[0], atol=1e-12)
    assert e.params["pairing"] == "paired"
    # chunked queries give the same numbers
    c = occlusion(forest, rows, target=1, baseline=dist, batch_size=40)
    np.testing.assert_allclose(c.values, d.values, atol=1e-12)


def test_raw_occlusion_of_a_torch_oracle_and_a_callable_regressor(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES))
    rows = X.iloc[:5]
    a = occlusion(oracle, rows, target=["bad", "good", "bad", "good", "bad"])
    assert a.values.shape == (5, X.shape[1]) and list(a.targets) == [1, 0, 1, 0, 1]
    assert a.params["baseline"] == "mean"
    reg = Oracle(lambda df: df["income"].fillna(0).to_numpy() * 2.0 + df["age"].to_numpy(), task="regression")
    r = occlusion(reg, rows[["income", "age"]].fillna(10.0), baseline=pd.Series({"income": 10.0, "age": 30}))
    expect = np.column_stack([(rows["income"].fillna(10.0) - 10.0) * 2.0, rows["age"] - 30.0])
    np.testing.assert_allclose(r.values, expect)
    assert r.targets is None


def test_errors():
    net, x, t = _tab()
    with pytest.raises(ParameterError, match="feature_mask has shape"):
        occlusion(net, x, target=t, feature_mask=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ParameterError, match="exceed the input shape"):
        occlusion(*_img()[:2], target=0, sliding_window_shapes=(1, 9, 3))
    with pytest.raises(ParameterError, match="one positive size per input axis"):
        occlusion(*_img()[:2], target=0, sliding_window_shapes=(3, 3))
    with pytest.raises(ParameterError, match="must not exceed the window"):
        occlusion(*_img()[:2], target=0, sliding_window_shapes=(1, 2, 2), strides=(1, 3, 3))
    with pytest.raises(ParameterError, match="not both"):
        occlusion(net, x, target=t, feature_mask=torch.zeros(6, dtype=torch.long), sliding_window_shapes=(2,))
    with pytest.raises(ParameterError, match="NaN"):
        occlusion(net, x, target=t, baseline=np.full(6, np.nan))
    with pytest.raises(ParameterError, match="rows"):
        occlusion(net, x, target=t, baseline=torch.zeros(3, 6))
    reg = Oracle(lambda df: df["a"].to_numpy() * 1.0, task="regression")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["u", "v"]})
    with pytest.raises(ParameterError, match="a number cannot stand for a categorical"):
        occlusion(reg, frame, baseline=0.0)
    with pytest.raises(ParameterError, match="unknown baseline 'zero'"):
        occlusion(reg, frame, baseline="zero")
    with pytest.raises(ParameterError, match="batch_size"):
        occlusion(reg, frame, batch_size=0)
    with pytest.raises(ModelError, match="raw rows"):
        occlusion(reg, torch.zeros(2, 2))
