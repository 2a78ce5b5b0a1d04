"""Global importance from attributions, permutation importance of surrogates, and the
agreement of their rankings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from pellucid import Oracle
from pellucid.attribution._base import Attribution
from pellucid.attribution.importance import (
    global_importance,
    pair,
    rank_agreement,
    surrogate_importance,
    surrogate_importances,
)
from pellucid.demo import CLASSES
from pellucid.errors import NotFittedError, ParameterError
from pellucid.extraction import distill
from pellucid.surrogates import DecisionTree, SparseLinear

from . import _nets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


gxi = _nets.reference_gradient_x_input


def made(values, targets=None, features=None):
    values = np.asarray(values, dtype=float)
    features = tuple(features or (f"f{i}" for i in range(values.shape[1])))
    return Attribution(values=values, method="made", features=features, targets=targets,
                       outputs=np.zeros(len(values)), encoded=values)


# ------------------------------------------------------------------------------ global importance
def test_global_importance_abs_and_signed_match_pandas():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 4))
    attr = made(v, features=["a", "b", "c", "d"])
    frame = pd.DataFrame(v, columns=list("abcd"))
    pd.testing.assert_series_equal(global_importance(attr), frame.abs().mean(), check_names=False,
                                   check_index_type=False)
    pd.testing.assert_series_equal(global_importance(attr, by="signed"), frame.mean(), check_names=False,
                                   check_index_type=False)
    with pytest.raises(ParameterError, match="by must be"):
        global_importance(attr, by="max")
    with pytest.raises(ParameterError, match="regression"):
        global_importance(attr, per_class=True)
    image = Attribution(values=np.zeros((2, 1, 4, 4)), method="img", features=(), targets=None,
                        outputs=np.zeros(2), encoded=np.zeros((2, 1, 4, 4)))
    with pytest.raises(ParameterError, match="not tabular"):
        global_importance(image)


def test_per_class_importance_with_credit_oracle_labels(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, pre, classes=list(CLASSES))
    rows = X.iloc[:40]
    labels = np.where(np.arange(40) % 3 == 0, "bad", "good")
    attr = gxi(oracle, rows, target=list(labels))
    table = global_importance(attr, per_class=True, classes=oracle)
    assert set(table.index) == {"good", "bad"}
    assert list(table.columns) == list(X.columns)
    expected = attr.to_frame().astype(float).abs().groupby(labels).mean()
    pd.testing.assert_frame_equal(table.sort_index(), expected.sort_index(), check_names=False,
                                  check_index_type=False, check_column_type=False)
    assert table.attrs["rows"] == {"good": int((labels == "good").sum()), "bad": int((labels == "bad").sum())}
    # Without labels the index is the output index.
    plain = global_importance(attr, per_class=True, by="signed")
    assert set(plain.index) == {0, 1}
    bad = attr.to_frame().astype(float)[labels == "bad"]
    np.testing.assert_allclose(plain.loc[1].to_numpy(), bad.mean().to_numpy())


# ------------------------------------------------------------------------------ surrogate importance
@pytest.fixture(scope="module")
def one_feature_world():
    """A network that looks at feature b only, and a distillation set of it."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(0, 10, n),
                       "colour": rng.choice(["red", "blue", "green"], n).astype(object)})
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.weight[1, 1] = 4.0  # logit of class 1 = 4 b

    def encode(frame):
        return frame[["a", "b", "c"]].to_numpy(dtype=np.float32)

    oracle = Oracle(net, preprocess=encode, classes=["no", "yes"])
    dset = distill(oracle, df, strategy=["observed", "perturb"], n=400, random_state=0)
    return oracle, df, dset


def test_tree_on_a_one_feature_network_ranks_that_feature_first(one_feature_world):
    _, _, dset = one_feature_world
    tree = DecisionTree(max_leaf_nodes=8, random_state=0).fit(dset)
    imp = surrogate_importance(tree, dset, random_state=0)
    assert list(imp.index) == list(dset.schema.names)
    assert imp.idxmax() == "b"
    assert imp["b"] > 5 * imp.drop("b").max()
    assert imp.attrs["n_rows"] == int(dset.is_holdout.sum())
    # Seeded: the same seed gives the same numbers; raw rows work as well as the set.
    pd.testing.assert_series_equal(imp, surrogate_importance(tree, dset, random_state=0))
    on_rows = surrogate_importance(tree, dset.holdout.rows, random_state=0)
    assert on_rows.idxmax() == "b"


def test_surrogates_of_one_schema_share_their_shuffles(one_feature_world, monkeypatch):
    from pellucid.schema import Schema

    _, _, dset = one_feature_world
    trees = [DecisionTree(max_leaf_nodes=k, random_state=0).fit(dset) for k in (4, 8)]
    linear = SparseLinear(max_terms=3).fit(dset)
    alone = [surrogate_importance(s, dset, random_state=3) for s in (*trees, linear)]
    checked = []
    validate = Schema.validate
    monkeypatch.setattr(Schema, "validate", lambda self, df, **kw: checked.append(len(df)) or validate(self, df, **kw))
    together = surrogate_importances([*trees, linear], dset, random_state=3)
    for a, b in zip(alone, together, strict=True):
        pd.testing.assert_series_equal(a, b)
        assert a.attrs == b.attrs
    # The rows are checked once, before they are shuffled; neither they nor the tables of their
    # shuffles are checked again for any surrogate.
    assert checked == [int(dset.is_holdout.sum())]


def test_the_tables_of_shuffles_are_the_checked_rows_with_one_column_shuffled(credit, monkeypatch):
    """Each block of a table is the rows, checked by the schema, with one column in the drawn
    order: what checking the shuffled rows would give (categories, missing values, text kept),
    built here the plain way."""
    from pellucid.attribution import importance

    X, y = credit
    rows = X.iloc[:150].copy()
    rows["city"] = pd.array(np.where(np.arange(150) % 3 == 0, None, "a<b>"), dtype="string")
    oracle = Oracle(lambda f: (f["age"].fillna(0) > 40).to_numpy().astype(int), classes=[0, 1], verbose=0)
    tree = DecisionTree(max_leaf_nodes=4, random_state=0).fit(distill(oracle, rows, "observed", random_state=0))
    names = list(tree.schema_.names)
    monkeypatch.setattr(importance, "_PREDICT_ROWS", 150 * 7)  # several tables, a block of 7 shuffles each
    shuffles = importance._Shuffles(tree, rows, names, 2, None, 5)
    checked = tree.schema_.validate(rows).reset_index(drop=True)
    perms = np.argsort(np.random.default_rng(5).random((len(names), 2, 150)), axis=2)
    jobs = [(j, r) for j in range(len(names)) for r in range(2)]
    assert [k for k, _ in shuffles.tables] == [7] * (len(jobs) // 7) + ([len(jobs) % 7] if len(jobs) % 7 else [])
    blocks = [t.iloc[b * 150:(b + 1) * 150].reset_index(drop=True) for k, t in shuffles.tables for b in range(k)]
    for (j, r), got in zip(jobs, blocks, strict=True):
        want = checked.copy()
        want[names[j]] = checked[names[j]].iloc[perms[j, r]].to_numpy()
        want = tree.schema_.validate(want)
        pd.testing.assert_frame_equal(got, want)


def test_permutation_importance_is_the_label_change_rate(one_feature_world):
    """Recompute the definition by hand for one feature with a single shuffle."""
    _, _, dset = one_feature_world
    tree = DecisionTree(max_leaf_nodes=8, random_state=0).fit(dset)
    rows = dset.holdout.rows
    imp = surrogate_importance(tree, dset, n_repeats=1, random_state=7)
    rng = np.random.default_rng(7)
    perms = np.argsort(rng.random((len(dset.schema.names), 1, len(rows))), axis=2)
    j = list(dset.schema.names).index("b")
    shuffled = rows.copy()
    shuffled["b"] = rows["b"].to_numpy()[perms[j, 0]]
    expected = np.mean(tree.predict(shuffled) != tree.predict(rows))
    assert imp["b"] == pytest.approx(expected)


def test_surrogate_importance_errors(one_feature_world):
    _, df, dset = one_feature_world
    with pytest.raises(NotFittedError):
        surrogate_importance(DecisionTree(), dset)
    tree = DecisionTree(max_leaf_nodes=4).fit(dset)
    with pytest.raises(ParameterError, match="n_repeats"):
        surrogate_importance(tree, dset, n_repeats=0)
    with pytest.raises(ParameterError, match="DistillationSet or a DataFrame"):
        surrogate_importance(tree, df.to_numpy())


def test_pair_table_linear_and_tree(one_feature_world):
    oracle, df, dset = one_feature_world
    attr = gxi(oracle, df.iloc[:60])
    assert attr.values[:, [0, 2, 3]].max() == 0  # the network ignores a, c, colour
    surrogates = {"tree": DecisionTree(max_leaf_nodes=6).fit(dset), "linear": SparseLinear(max_terms=3).fit(dset)}
    table = pair({"gxi": attr}, surrogates, dset, k=1)
    assert list(table.columns) == ["method", "surrogate", "spearman", "spearman_ci", "top_k_overlap", "k",
                                   "n_features", "reason"]
    assert list(table["surrogate"]) == ["tree", "linear"]
    assert (table["top_k_overlap"] == 1.0).all()  # b first everywhere
    for _, r in table.iterrows():
        s = surrogate_importance(surrogates[r["surrogate"]], dset)
        g = global_importance(attr)
        assert r["spearman"] == pytest.approx(stats.spearmanr(g[s.index], s).statistic, nan_ok=True)


# ------------------------------------------------------------------------------ rank agreement
def _plain_bootstrap(values, features, fixed, n_boot=200, seed=0, level=0.95):
    """Spearman correlations of resampled mean |attribution| with a fixed ranking, by a plain
    loop over the same resampled rows, and their percentile interval."""
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    reps = []
    for rows in idx:
        imp = pd.Series(np.abs(values[rows]).mean(axis=0), index=features)
        reps.append(stats.spearmanr(imp[fixed.index], fixed).statistic)
    return np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])


def test_rank_interval_is_a_plain_resampling_of_the_rows(one_feature_world):
    oracle, df, dset = one_feature_world
    rng = np.random.default_rng(3)
    attr = gxi(oracle, df.iloc[:80])
    # Noisy per-row values so that the ranking moves under resampling.
    attr.values = attr.values + rng.normal(0, 0.05, attr.values.shape)
    fixed = pd.Series(rng.random(len(attr.features)), index=list(attr.features)[::-1])
    r = rank_agreement(attr, fixed, random_state=11)
    lo, hi = _plain_bootstrap(attr.values, list(attr.features), fixed, seed=11)
    assert r.spearman_ci == pytest.approx([min(lo, r.spearman), max(hi, r.spearman)], abs=1e-12)
    assert r.spearman_ci[0] < r.spearman_ci[1]
    assert "200 resamples of the 80 rows" in r.interval_method and "held fixed" in r.interval_method
    assert r.interval_method.endswith("seed 11")
    assert rank_agreement(attr, fixed, random_state=11).spearman_ci == r.spearman_ci
    # Swapped sides: the same rows, the same interval.
    assert rank_agreement(fixed, attr, random_state=11).spearman_ci == pytest.approx(r.spearman_ci, abs=1e-12)
    # Two methods on the same rows are resampled together.
    other = gxi(oracle, df.iloc[:80])
    other.values = other.values + rng.normal(0, 0.05, other.values.shape)
    both = rank_agreement(attr, other, random_state=2)
    idx = np.random.default_rng(2).integers(0, 80, size=(200, 80))
    reps = [stats.spearmanr(np.abs(attr.values[i]).mean(0), np.abs(other.values[i]).mean(0)).statistic for i in idx]
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert both.spearman_ci == pytest.approx([min(lo, both.spearman), max(hi, both.spearman)], abs=1e-12)
    assert "rows both rankings were computed on" in both.interval_method
    # Plain rankings have no rows to resample: no interval, and it says none.
    plain = rank_agreement(global_importance(attr), fixed)
    assert plain.spearman_ci is None and plain.interval_method is None


def test_rank_agreement_against_scipy_and_permutations():
    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(9)]
    a = pd.Series(rng.random(9), index=names)
    b = pd.Series(rng.random(9), index=names[::-1])  # order of the index must not matter
    b = b.round(1)  # with ties
    r = rank_agreement(a, b, k=3)
    assert r.spearman == pytest.approx(stats.spearmanr(a, b[names]).statistic)
    top_a = set(a.sort_values(ascending=False).index[:3])
    assert set(r.top_a) == top_a
    assert r.top_k_overlap == pytest.approx(len(top_a & set(r.top_b)) / 3)

    ranks = pd.Series(np.arange(9.0), index=names)
    same = rank_agreement(ranks, ranks * 10 + 3)
    assert same.spearman == pytest.approx(1.0) and same.top_k_overlap == 1.0
    rev = rank_agreement(ranks, pd.Series(-np.arange(9.0), index=names), k=4)
    assert rev.spearman == pytest.approx(-1.0) and rev.top_k_overlap == 0.0
    # Swap the top two of a ranking: top-2 overlap unchanged, correlation just below 1.
    swapped = ranks.copy()
    swapped[["f8", "f7"]] = [7.0, 8.0]
    r = rank_agreement(ranks, swapped, k=2)
    assert r.top_k_overlap == 1.0
    assert r.spearman == pytest.approx(stats.spearmanr(ranks, swapped).statistic) and r.spearman < 1
    # k beyond the features is the number of features; dicts and Attributions are accepted.
    assert rank_agreement(dict(ranks), ranks, k=50).k == 9
    attr = made(np.abs(np.random.default_rng(2).normal(size=(20, 9))), features=names)
    assert rank_agreement(attr, global_importance(attr)).spearman == pytest.approx(1.0)


def test_rank_agreement_constant_and_mismatched():
    names = list("abcd")
    const = pd.Series(1.0, index=names)
    other = pd.Series([1.0, 2.0, 3.0, 4.0], index=names)
    r = rank_agreement(const, other, k=2)
    assert math.isnan(r.spearman) and "a" in r.reason and "all equal" in r.reason
    assert r.to_dict()["spearman"] is None
    with pytest.raises(ParameterError, match=r"only in a \['e'\], only in b \['z'\]"):
        rank_agreement(pd.Series(1.0, index=[*names, "e"]), pd.Series(1.0, index=[*names, "z"]))
    loose = rank_agreement(pd.Series([4.0, 3, 2, 1, 9], index=[*names, "e"]), other, strict=False)
    assert loose.dropped == ["e"] and loose.n_features == 4 and loose.spearman == pytest.approx(-1.0)
    with pytest.raises(ParameterError, match="k must be"):
        rank_agreement(other, other, k=0)
    with pytest.raises(ParameterError, match="NaN"):
        rank_agreement(pd.Series([1.0, np.nan, 2, 3], index=names), other)
