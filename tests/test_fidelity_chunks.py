"""Chunked fidelity: evaluating in chunks, merging tallies of parts, reading Parquet or an
iterable of frames all give the one-pass figures, checked against scikit-learn's metrics."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, mean_absolute_error, r2_score

from pellucid.errors import DataFileError, ParameterError
from pellucid.extraction import distill
from pellucid.fidelity import FidelityTally, evaluate
from pellucid.surrogates import FIGS, DecisionTree, SparseLinear

from .conftest import mixed_frame
from .test_tree import mixed_oracle


@pytest.fixture(scope="module")
def cls_case():
    oracle = mixed_oracle()
    d = distill(oracle, mixed_frame(800), n=1500, random_state=0)
    return oracle, DecisionTree(max_leaf_nodes=7).fit(d), mixed_frame(1000, seed=4)


@pytest.fixture(scope="module", params=["tree", "figs", "linear"])
def reg_case(request):
    oracle = mixed_oracle(task="regression")
    d = distill(oracle, mixed_frame(800), n=1500, random_state=0)
    model = {"tree": DecisionTree(max_leaf_nodes=7), "figs": FIGS(max_rules=6), "linear": SparseLinear(max_terms=4)}
    return oracle, model[request.param].fit(d), mixed_frame(1000, seed=4)


def _same(a, b):
    """Two evaluations agree: counts exactly, floating sums to rounding."""
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key in da:
        if key in ("rules", "default"):
            _close(da[key], db[key])
        elif isinstance(da[key], float):
            assert da[key] == pytest.approx(db[key], rel=1e-9, abs=1e-12), key
        else:
            assert da[key] == db[key], key


def _close(x, y):
    x = x if isinstance(x, list) else [x]
    y = y if isinstance(y, list) else [y]
    for ex, ey in zip(x, y, strict=True):
        assert ex.keys() == ey.keys()
        for k in ex:
            if isinstance(ex[k], float):
                assert ex[k] == pytest.approx(ey[k], rel=1e-9, abs=1e-12), k
            else:
                assert ex[k] == ey[k], k


def test_classification_chunks_match_sklearn(cls_case):
    oracle, tree, rows = cls_case
    f = evaluate(tree, oracle, rows, chunk_rows=37)
    canon = tree.schema_.validate(rows)
    net = oracle.query(canon)
    net_idx, sur_p = net.argmax(1), tree.predict_proba(canon)
    sur_idx = sur_p.argmax(1)
    assert f.n == 1000 and f.rows == "given"
    assert f.agreement == np.mean(net_idx == sur_idx)
    assert f.macro_f1 == pytest.approx(f1_score(net_idx, sur_idx, average="macro", labels=[0, 1, 2], zero_division=0))
    assert f.r2 == pytest.approx(r2_score(net, sur_p, multioutput="variance_weighted"), rel=1e-9)
    cov = tree.rules_.coverage_matrix(canon)
    for j, entry in enumerate(f.rules):
        assert entry["n_covered"] == cov[:, j].sum()
        if cov[:, j].any():
            want = np.mean(np.asarray(tree.classes_)[net_idx[cov[:, j]]] == tree.rules_.rules[j].outcome)
            assert entry["precision"] == pytest.approx(want)
    _same(f, evaluate(tree, oracle, rows, chunk_rows=10_000))


def test_regression_chunks_match_sklearn(reg_case):
    oracle, model, rows = reg_case
    f = evaluate(model, oracle, rows, chunk_rows=61)
    canon = model.schema_.validate(rows)
    net, sur = oracle.query(canon), model.predict(canon).astype(float)
    assert f.r2 == pytest.approx(r2_score(net, sur), rel=1e-9)
    assert f.mae == pytest.approx(mean_absolute_error(net, sur), rel=1e-9)
    assert f.rmse == pytest.approx(np.sqrt(np.mean((net - sur) ** 2)), rel=1e-9)
    cov = model.rules_.coverage_matrix(canon)
    for j, entry in enumerate(f.rules):
        m = cov[:, j]
        if "mae" in entry and m.any():
            assert entry["mae"] == pytest.approx(np.abs(net[m] - float(model.rules_.rules[j].outcome)).mean())
        if "network_mean" in entry and m.any():
            assert entry["network_mean"] == pytest.approx(net[m].mean())
            assert entry["network_mean_elsewhere"] == pytest.approx(net[~m].mean())
    _same(f, evaluate(model, oracle, rows, chunk_rows=10_000))


def test_merged_tallies_equal_one_pass(cls_case, reg_case):
    for oracle, model, rows in (cls_case, reg_case):
        canon = model.schema_.validate(rows)
        # Parts of very different output levels, so that the merge's change of shift matters.
        cuts = [(0, 7), (7, 500), (500, len(canon))]
        tallies = [FidelityTally(model, offset=a).add(canon.iloc[a:b], oracle.query(canon.iloc[a:b])) for a, b in cuts]
        merged = FidelityTally(model)
        for t in tallies:
            merged.merge(t)
        _same(merged.result(), FidelityTally(model).add(canon, oracle.query(canon)).result())


def test_parquet_and_iterable_rows(cls_case, tmp_path):
    oracle, tree, rows = cls_case
    path = tmp_path / "holdout.parquet"
    rows.to_parquet(path)
    one = evaluate(tree, oracle, rows)
    _same(evaluate(tree, oracle, path, chunk_rows=128), one)
    _same(evaluate(tree, oracle, str(path)), one)
    _same(evaluate(tree, oracle, (rows.iloc[i:i + 300] for i in range(0, 1000, 300))), one)


def test_errors_name_the_problem(cls_case, tmp_path):
    oracle, tree, rows = cls_case
    with pytest.raises(ParameterError, match="needs the oracle"):
        evaluate(tree, None, rows)
    with pytest.raises(ParameterError, match="chunk_rows"):
        evaluate(tree, oracle, rows, chunk_rows=0)
    with pytest.raises(DataFileError, match="does not exist"):
        evaluate(tree, oracle, tmp_path / "nope.parquet")
    rows.drop(columns=rows.columns[0]).to_parquet(tmp_path / "short.parquet")
    with pytest.raises(DataFileError, match=str(rows.columns[0])):
        evaluate(tree, oracle, tmp_path / "short.parquet")
    with pytest.raises(ParameterError, match="chunk 1 .* ndarray"):
        evaluate(tree, oracle, [rows.iloc[:10], rows.to_numpy()])
    with pytest.raises(ParameterError, match="no rows"):
        evaluate(tree, oracle, rows.iloc[:0])
