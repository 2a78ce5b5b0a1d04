"""Activation maximisation and top-activating rows (pellucid.attribution.visualisation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid import Oracle, Schema
from pellucid.attribution.visualisation import maximise_image, maximise_row, top_rows
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network
from pellucid.errors import ParameterError

from ._nets import digits, digits_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- images
def test_digits_are_made_with_high_probability():
    net = digits_cnn()
    res = maximise_image(net, [0, 1, 7], random_state=0)
    assert res.images.shape == (3, 1, 8, 8)
    assert res.images.min() >= 0.0 and res.images.max() <= 1.0
    np.testing.assert_array_equal(res.targets, [0, 1, 7])
    np.testing.assert_array_equal(res.predicted, [0, 1, 7])
    assert (res.probability >= 0.99).all(), res.probability
    # The reported probability is the network's own softmax on the returned images.
    with torch.no_grad():
        p = torch.softmax(net(torch.as_tensor(res.images)), dim=1).numpy()
    np.testing.assert_allclose(res.probability, p[np.arange(3), res.targets], rtol=1e-5)
    assert res.objective.shape == (512, 3)
    assert res.objective[-20:].mean() > res.objective[:20].mean()  # it climbed
    d = res.to_dict()
    assert d["params"]["objective"] == "log_odds" and len(d["images"]) == 3


def test_fourier_batch_and_seed():
    net = digits_cnn()
    a = maximise_image(net, 4, n=2, steps=200, parametrisation="fourier", random_state=1)
    b = maximise_image(net, 4, n=2, steps=200, parametrisation="fourier", random_state=1)
    assert a.images.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(a.images, b.images)  # same seed, same images
    assert not np.allclose(a.images[0], a.images[1])  # different starts
    assert (a.predicted == 4).all()


def test_regularisation_smooths():
    net = digits_cnn()
    plain = maximise_image(net, 3, steps=150, tv_weight=0, l2_weight=0, jitter=0)
    smooth = maximise_image(net, 3, steps=150)

    def tv(x):
        return np.abs(np.diff(x, axis=-1)).mean() + np.abs(np.diff(x, axis=-2)).mean()

    assert tv(smooth.images) < tv(plain.images)
    assert smooth.images.mean() < plain.images.mean()  # L2 pulls towards the dark background


def test_unit_maximisation_and_errors():
    net = digits_cnn()
    res = maximise_image(net, layer="3", unit=2, steps=100)
    x, _ = digits()
    store = {}
    h = net[3].register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    with torch.no_grad():
        net(x[:200])
        real = store["a"][:, 2].mean(dim=(1, 2))
        net(torch.as_tensor(res.images))
        made = store["a"][:, 2].mean(dim=(1, 2))
    h.remove()
    assert float(made[0]) > float(real.max())  # beats every real digit on that channel
    np.testing.assert_allclose(res.final_objective, made.numpy(), rtol=1e-5)
    with pytest.raises(ParameterError, match="no layer named 'conv9'.*0 \\(Conv2d\\)"):
        maximise_image(net, layer="conv9", unit=0)
    with pytest.raises(ParameterError, match="unit 99 is outside layer '3'.*16"):
        maximise_image(net, layer="3", unit=99, steps=1)
    with pytest.raises(ParameterError, match="layer and unit go together"):
        maximise_image(net, 1, layer="3")
    with pytest.raises(ParameterError, match="target 12"):
        maximise_image(net, 12, steps=1)
    with pytest.raises(ParameterError, match="parametrisation"):
        maximise_image(net, 1, parametrisation="wavelet")
    with pytest.raises(ParameterError, match="value_range"):
        maximise_image(net, 1, value_range=(1, 0))


def test_top_rows_images_by_probability_and_unit():
    net = digits_cnn()
    x, _ = digits()
    x = x[:300]
    top = top_rows(net, x, 3, k=5)
    with torch.no_grad():
        p = torch.softmax(net(x).double(), dim=1)[:, 3].numpy()
    np.testing.assert_array_equal(top.index, np.argsort(-p, kind="stable")[:5])
    np.testing.assert_allclose(top.scores, p[top.index])
    assert top.rows.shape == (5, 1, 8, 8)
    unit = top_rows(net, x, layer="5", unit=1, k=3, batch_size=64)
    assert unit.what == "activation" and (np.diff(unit.scores) <= 0).all()


# ---------------------------------------------------------------------------- rows
@pytest.fixture(scope="module")
def credit_small():
    df = make_credit(1200, random_state=3)
    X = df.drop(columns=TARGET)
    net, pre = train_credit_network(X, df[TARGET], epochs=4, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
    return oracle, Schema.from_frame(X), X.iloc[:300].reset_index(drop=True)


@pytest.mark.parametrize("cls", CLASSES)
def test_maximise_row_in_schema_and_beats_real_rows(credit_small, cls):
    oracle, schema, ref = credit_small
    t = list(CLASSES).index(cls)
    res = maximise_row(oracle, cls, schema, reference=ref, n_starts=3, steps=15)
    canon = schema.validate(res.row)  # raises if outside the schema
    assert not canon.isna().any(axis=None)  # no missing values unless allowed
    for f in schema:
        v = canon[f.name].iloc[0]
        if f.is_categorical:
            assert v in f.categories
        else:
            assert f.low <= v <= f.high
            if f.kind.value == "integer":
                assert v == round(v)
    complete = ref[ref.notna().all(axis=1)]
    best_real = oracle.query(complete)[:, t].max()
    assert res.probability >= best_real - 1e-12
    assert res.probability == pytest.approx(oracle.query(res.row)[0, t])  # re-scored
    assert res.target == cls and (np.diff(res.history) >= 0).all()

    free = maximise_row(oracle, cls, schema, reference=ref, n_starts=2, steps=10, allow_missing=True)
    schema.validate(free.row, allow_empty_columns=True)
    assert free.probability >= oracle.query(ref)[:, t].max() - 1e-12


def test_maximise_row_without_reference(credit_small):
    oracle, schema, _ = credit_small
    res = maximise_row(oracle, "good", schema, n_starts=2, steps=8, random_state=1)
    schema.validate(res.row)
    assert res.probability >= res.start_probability
    assert set(res.to_dict()["row"]) == set(schema.names)
    with pytest.raises(ParameterError, match="target 'ugly'"):
        maximise_row(oracle, "ugly", schema, steps=1)


def test_top_rows_matches_pandas(credit_small):
    oracle, _, ref = credit_small
    top = top_rows(oracle, ref, "bad", k=10)
    expected = ref.assign(p=oracle.query(ref)[:, 1]).sort_values("p", ascending=False, kind="stable").head(10)
    pd.testing.assert_frame_equal(top.to_frame("p"), expected)
    by_unit = top_rows(oracle, ref, layer="0", unit=3, k=4)
    store = {}
    h = oracle.model[0].register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    with torch.no_grad():
        oracle.model(torch.as_tensor(oracle.encode(ref)))
    h.remove()
    a = store["a"][:, 3].numpy()
    np.testing.assert_array_equal(by_unit.index, np.argsort(-a, kind="stable")[:4])
