"""Intervals of the fidelity estimates: Wilson intervals checked against scipy's, bootstrap
intervals that do not depend on chunking or on how partition tallies are merged, that hold
their estimate, narrow with more rows and cover the truth about as often as they say."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score, r2_score

from pellucid.errors import ParameterError
from pellucid.extraction import distill
from pellucid.fidelity import FidelityTally, evaluate
from pellucid.fidelity.intervals import BLOCK_ROWS, PoissonBootstrap, percentile_interval, poisson_weights
from pellucid.oracle import Oracle
from pellucid.surrogates import DecisionTree
from pellucid.surrogates.rule_lists import GreedyRuleList

from .conftest import mixed_frame
from .test_tree import mixed_oracle

BOOT_KEYS = ("r2_ci", "macro_f1_ci", "mae_ci", "rmse_ci")


def scipy_wilson(k: int, n: int, level: float = 0.95) -> list[float]:
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return [ci.low, ci.high]


@pytest.fixture(scope="module")
def cls_case():
    oracle = mixed_oracle()
    d = distill(oracle, mixed_frame(800), n=1500, random_state=0)
    tree = DecisionTree(max_leaf_nodes=7).fit(d)
    rows = tree.schema_.validate(mixed_frame(3 * BLOCK_ROWS + 1234, seed=4))
    return tree, rows, oracle.query(rows), oracle


@pytest.fixture(scope="module")
def reg_case():
    oracle = mixed_oracle(task="regression")
    d = distill(oracle, mixed_frame(800), n=1500, random_state=0)
    tree = DecisionTree(max_leaf_nodes=7).fit(d)
    rows = tree.schema_.validate(mixed_frame(3 * BLOCK_ROWS + 1234, seed=4))
    return tree, rows, oracle.query(rows), oracle


@pytest.fixture(scope="module")
def rule_list_case():
    oracle = mixed_oracle(classes=("no", "yes"))
    d = distill(oracle, mixed_frame(800), n=1500, random_state=0)
    model = GreedyRuleList(max_rules=6).fit(d)
    return model, oracle, mixed_frame(3000, seed=5)


def _tally(model, rows, net, cuts, seed=0):
    """One tally per [a, b) cut, each told where its rows start, merged in a shuffled order."""
    tallies = [FidelityTally(model, offset=a, random_state=seed).add(rows.iloc[a:b], net[a:b]) for a, b in cuts]
    random.Random(1).shuffle(tallies)
    merged = FidelityTally(model, random_state=seed)
    for t in tallies:
        merged.merge(t)
    return merged.result()


def _cuts(n, sizes):
    out, a = [], 0
    for s in sizes:
        if a >= n:
            break
        out.append((a, min(n, a + s)))
        a += s
    if a < n:
        out.append((a, n))
    return out


# ---------------------------------------------------------------------------- Wilson
def test_proportions_have_scipy_wilson_intervals(cls_case):
    tree, rows, net, oracle = cls_case
    f = evaluate(tree, oracle, rows.iloc[:2000])
    n = f.n
    classes = np.asarray(tree.classes_, dtype=object)
    net_lab = classes[net[:2000].argmax(axis=1)]
    sur_lab = np.asarray(tree.predict(rows.iloc[:2000]), dtype=object)
    assert f.intervals["level"] == 0.95
    checked = 0
    for c in f.per_class:
        is_net, is_sur = net_lab == c["class"], sur_lab == c["class"]
        tp = int((is_net & is_sur).sum())
        for key, m in (("agreement", is_net.sum()), ("precision", is_sur.sum())):
            if m:
                assert c[key + "_ci"] == pytest.approx(scipy_wilson(tp, m), abs=1e-12)
                checked += 1
            else:
                assert c[key] is None and c[key + "_ci"] is None
    assert checked >= 4
    assert f.intervals["methods"]["per_class.agreement"] == "Wilson score"
    for r in f.rules + [f.default]:
        assert r["coverage_ci"] == pytest.approx(scipy_wilson(r["n_covered"], n), abs=1e-12)
        assert r["decides_ci"] == pytest.approx(scipy_wilson(r["n_decided"], n), abs=1e-12)
        if r["n_covered"]:
            hits = round(r["precision"] * r["n_covered"])
            assert r["precision_ci"] == pytest.approx(scipy_wilson(hits, r["n_covered"]), abs=1e-12)
        else:
            assert r["precision"] is None and r["precision_ci"] is None
        # A tree is not a rule list: no rule decides other than the rows it matches.
        assert r["decided_precision"] is None and r["decided_precision_ci"] is None
    assert f.intervals["methods"]["rules.coverage"] == "Wilson score"
    assert "rules.decided_precision" not in f.intervals["methods"]


def test_rule_list_states_both_bases(rule_list_case):
    model, oracle, frame = rule_list_case
    f = evaluate(model, oracle, frame)
    canon = model.schema_.validate(frame)
    net = np.asarray(oracle.classes_, dtype=object)[oracle.query(canon).argmax(axis=1)]
    rules = model.rules_
    cov = rules.coverage_matrix(canon)
    first = np.full(len(canon), len(rules.rules))
    for j in range(len(rules.rules) - 1, -1, -1):  # the first rule that applies decides
        first[cov[:, j]] = j
    assert "rules.decided_precision" in f.intervals["methods"]
    differs = 0
    for j, (rule, entry) in enumerate(zip(rules.rules, f.rules, strict=True)):
        matching, decided = cov[:, j], first == j
        right = net == rule.outcome
        assert entry["n_covered"] == matching.sum() and entry["n_decided"] == decided.sum()
        assert entry["precision_ci"] == pytest.approx(scipy_wilson(right[matching].sum(), matching.sum()), abs=1e-12)
        assert entry["decides_ci"] == pytest.approx(scipy_wilson(decided.sum(), len(canon)), abs=1e-12)
        if decided.any():
            assert entry["decided_precision"] == pytest.approx(right[decided].mean())
            assert entry["decided_precision_ci"] == pytest.approx(
                scipy_wilson(right[decided].sum(), decided.sum()), abs=1e-12)
        differs += entry["n_decided"] != entry["n_covered"]
    assert differs  # the case tells the two bases apart


# ---------------------------------------------------------------------------- bootstrap
@pytest.mark.parametrize("case", ["cls_case", "reg_case"])
def test_bootstrap_intervals_do_not_depend_on_chunks_or_merges(case, request):
    model, rows, net, oracle = request.getfixturevalue(case)
    task = model.task_
    # The oracle is row by row, so its answers do not depend on the chunks either.
    assert np.array_equal(oracle.query(rows.iloc[5:900]), net[5:900])
    one = evaluate(model, oracle, rows, chunk_rows=len(rows))
    keys = [k for k in BOOT_KEYS if getattr(one, k) is not None]
    assert len(keys) == (2 if task == "classification" else 3)
    want = {k: getattr(one, k) for k in keys}
    # Chunks smaller than, equal to and straddling the blocks of weights.
    for chunk in (997, BLOCK_ROWS, BLOCK_ROWS + 1, 20_000):
        got = evaluate(model, oracle, rows, chunk_rows=chunk)
        assert {k: getattr(got, k) for k in keys} == want, chunk
    frames = (rows.iloc[a:b] for a, b in _cuts(len(rows), [5, 3000, 7000, 1, 12_000]))
    got = evaluate(model, oracle, frames)
    assert {k: getattr(got, k) for k in keys} == want
    # Partitions that split blocks, merged in another order than the rows.
    for sizes in ([7, 9000, 8000], [BLOCK_ROWS, BLOCK_ROWS], [4000] * 9):
        got = _tally(model, rows, net, _cuts(len(rows), sizes))
        assert {k: getattr(got, k) for k in keys} == want, sizes
    # Another seed, other intervals; the same seed, the same.
    other = evaluate(model, oracle, rows, random_state=1)
    assert all(getattr(other, k) != want[k] for k in keys)
    assert other.intervals["methods"]["r2"].endswith("seed 1")


def test_merging_refuses_tallies_of_the_same_positions(cls_case):
    tree, rows, net, _ = cls_case
    a = FidelityTally(tree).add(rows.iloc[:100], net[:100])
    b = FidelityTally(tree).add(rows.iloc[100:200], net[100:200])  # no offset: also rows 0..99
    with pytest.raises(ParameterError, match="offset"):
        a.merge(b)
    with pytest.raises(ParameterError, match="seed"):
        a.merge(FidelityTally(tree, offset=100, random_state=3).add(rows.iloc[100:200], net[100:200]))
    a.merge(FidelityTally(tree, offset=100).add(rows.iloc[100:200], net[100:200]))
    assert a.result().n == 200


def test_intervals_hold_the_estimate_and_narrow_with_rows(cls_case, reg_case):
    for model, rows, net, _ in (cls_case, reg_case):
        widths = []
        for n in (300, 3000, 25_000):
            f = FidelityTally(model).add(rows.iloc[:n], net[:n]).result()
            for k in BOOT_KEYS + ("agreement_ci",):
                ci = getattr(f, k)
                if ci is not None:
                    est = getattr(f, k[:-3])
                    assert ci[0] <= est <= ci[1], (k, n)
            widths.append(f.r2_ci[1] - f.r2_ci[0])
        assert widths[0] > widths[1] > widths[2]
        # Roughly as 1/sqrt(n): ten times the rows, about a third of the width.
        assert 0.15 < widths[1] / widths[0] < 0.6


def test_bootstrap_intervals_cover_the_truth():
    """200 simulated holdouts from one population: the 95% intervals of R² and macro-F1 hold
    the population's value in roughly 95% of them."""
    rng = np.random.default_rng(123)

    def network(x):
        logit = 2.0 * np.sin(x[:, 0]) + x[:, 1]
        p = 1 / (1 + np.exp(-logit))
        return np.column_stack([1 - p, p])

    def draw(n):
        return pd.DataFrame({"a": rng.normal(0, 1.5, n), "b": rng.normal(0, 1, n)})

    oracle = Oracle(lambda df: network(df[["a", "b"]].to_numpy()), task="classification", classes=["no", "yes"])
    d = distill(oracle, draw(2000), strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=6).fit(d)
    big = tree.schema_.validate(draw(500_000))
    net, sur_p = network(big[["a", "b"]].to_numpy()), tree.predict_proba(big)
    true_r2 = r2_score(net, sur_p, multioutput="variance_weighted")
    true_f1 = f1_score(net.argmax(1), np.asarray(tree.predict(big)) == "yes", average="macro")
    hit_r2 = hit_f1 = 0
    sims = 200
    for s in range(sims):
        rows = tree.schema_.validate(draw(400))
        f = FidelityTally(tree, random_state=s).add(rows, network(rows[["a", "b"]].to_numpy())).result()
        hit_r2 += f.r2_ci[0] <= true_r2 <= f.r2_ci[1]
        hit_f1 += f.macro_f1_ci[0] <= true_f1 <= f.macro_f1_ci[1]
    assert 0.88 * sims <= hit_r2 <= 0.99 * sims
    assert 0.88 * sims <= hit_f1 <= 0.99 * sims


def test_regression_bootstrap_equals_a_plain_weighted_resampling(reg_case):
    """The intervals are percentiles of the statistics recomputed with each replicate's
    weights, read here from the documented weights and computed the plain way."""
    model, rows, net, _ = reg_case
    n = BLOCK_ROWS + 500
    f = FidelityTally(model, random_state=7).add(rows.iloc[:n], net[:n]).result()
    w = np.vstack([poisson_weights(7, 0, BLOCK_ROWS), poisson_weights(7, 1, n - BLOCK_ROWS)]).astype(float)
    pred = model.predict(rows.iloc[:n]).astype(float)
    y = net[:n]
    r2, mae = [], []
    for b in range(w.shape[1]):
        wb = w[:, b]
        r2.append(r2_score(y, pred, sample_weight=wb))
        mae.append(np.sum(wb * np.abs(y - pred)) / wb.sum())
    assert f.r2_ci == pytest.approx(percentile_interval(r2, f.r2), rel=1e-5)
    assert f.mae_ci == pytest.approx(percentile_interval(mae, f.mae), rel=1e-5)


def test_poisson_weights_are_poisson_and_keyed_on_position():
    w = poisson_weights(0, 0, BLOCK_ROWS)
    assert w.shape == (BLOCK_ROWS, 200)
    from scipy.stats import poisson

    freq = np.bincount(w.astype(int).ravel(), minlength=6)[:6] / w.size
    assert freq == pytest.approx(poisson.pmf(np.arange(6), 1.0), abs=2e-3)
    assert np.array_equal(poisson_weights(0, 0, 10), w[:10])
    assert not np.array_equal(poisson_weights(0, 1, 10), w[:10])
    assert not np.array_equal(poisson_weights(1, 0, 10), w[:10])


def test_bootstrap_totals_do_not_depend_on_how_rows_arrive():
    rng = np.random.default_rng(0)
    n = 2 * BLOCK_ROWS + 77
    y, extra = rng.normal(5, 2, (n, 2)), rng.random((n, 3))
    one = PoissonBootstrap(2, 3, random_state=4)
    one.add(0, y, extra)
    want = one.totals()
    pieces = PoissonBootstrap(2, 3, random_state=4)
    parts = []
    for a, b in _cuts(n, [1, 5000, BLOCK_ROWS, 33]):
        p = PoissonBootstrap(2, 3, random_state=4)
        p.add(a, y[a:b], extra[a:b])
        parts.append(p)
    for p in reversed(parts):
        pieces.merge(p)
    got = pieces.totals()
    for field in ("sw", "mean", "m2", "sums"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
    # And they are the weighted sums they say.
    w = np.vstack([poisson_weights(4, b, min(BLOCK_ROWS, n - b * BLOCK_ROWS)) for b in range(3)]).astype(float)
    assert want.sw == pytest.approx(w.sum(axis=0))
    mean = (w.T @ y) / w.sum(axis=0)[:, None]
    assert want.mean == pytest.approx(mean, rel=1e-5)
    m2 = sum((w * (y[:, [c]] - mean[:, c][None, :]) ** 2).sum(axis=0) for c in range(2))
    assert want.m2 == pytest.approx(m2, rel=1e-4)
    assert want.sums == pytest.approx(w.T @ extra, rel=1e-5)
