"""Shapley values on raw features: against shap's explainers (same background, raw features as
players through the same encoding), against a direct enumeration written independently here,
and against the closed form of an additive model."""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid.attribution import METHODS
from pellucid.attribution.shapley import shapley
from pellucid.demo import CLASSES
from pellucid.errors import ParameterError
from pellucid.oracle import Oracle
from tests import _nets


@pytest.fixture(scope="module")
def shap():
    """shap, the reference (a test extra; its newest release needs Python 3.12, 0.49-0.51 serve 3.10/3.11)."""
    return pytest.importorskip("shap", reason="shap is not installed for this Python (pip install -e .[test])")


# ---------------------------------------------------------------------------- references
def enumerate_shapley(answer, x: pd.DataFrame, bg: pd.DataFrame, players: dict[str, list[str]], link=None):
    """Interventional Shapley values of one raw row by direct enumeration over coalitions of
    ``players`` (name -> raw columns), averaging ``answer`` over the background rows."""
    names = list(players)
    m = len(names)
    v = {}
    for size in range(m + 1):
        for S in itertools.combinations(range(m), size):
            h = bg.copy()
            for k in S:
                for c in players[names[k]]:
                    h[c] = pd.Series([x[c].iloc[0]] * len(h), index=h.index, dtype=bg[c].dtype)
            mean = float(np.mean(answer(h)))
            v[S] = mean if link is None else link(mean)
    phi = np.zeros(m)
    for j in range(m):
        others = [k for k in range(m) if k != j]
        for size in range(m):
            w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for S in itertools.combinations(others, size):
                phi[j] += w * (v[tuple(sorted(S + (j,)))] - v[S])
    return phi, v[()]


def _coded(X: pd.DataFrame):
    """Raw rows as numbers for shap (categories as integer codes, decoded inside the model)."""
    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    levels = {c: list(pd.Series(X[c].dropna().unique()).astype(str)) for c in cats}

    def enc(df):
        A = df.copy()
        for c in cats:
            A[c] = A[c].map({v: i for i, v in enumerate(levels[c])}).astype(float)
        return A.to_numpy(float)

    def dec(A):
        df = pd.DataFrame(A, columns=X.columns)
        for c in cats:
            df[c] = pd.Series([levels[c][int(v)] if v == v else np.nan for v in df[c]], dtype=X[c].dtype)
        for c in X.columns:
            if c not in cats:
                df[c] = df[c].astype(X[c].dtype) if not df[c].isna().any() else df[c]
        return df
    return enc, dec


@pytest.fixture(scope="module")
def torch_oracle(credit_net):
    net, pre = credit_net
    return Oracle(net, preprocess=pre, classes=list(CLASSES))


@pytest.fixture(scope="module")
def rows_bg(credit):
    X, _ = credit
    bg = X.iloc[np.random.default_rng(0).choice(len(X), 24, replace=False)]
    return X, X.iloc[:3], bg


# ---------------------------------------------------------------------------- against shap
def test_exact_equals_shap_exact_and_adds_up(torch_oracle, rows_bg, shap):
    X, rows, bg = rows_bg
    enc, dec = _coded(X)
    good = list(CLASSES).index("good")

    def p_good(A):
        return torch_oracle.query(dec(A))[:, good]

    theirs = shap.ExactExplainer(p_good, shap.maskers.Independent(enc(bg), max_samples=len(bg)))(enc(rows))
    torch_oracle.reset_counter()
    ours = shapley(torch_oracle, rows, bg, target="good", method="exact")
    model_rows = torch_oracle.n_queries
    assert ours.features == tuple(X.columns) and ours.values.shape == (3, X.shape[1])
    assert ours.params["path"] == "encoded blocks (torch)"
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.base_value, theirs.base_values, atol=1e-6, rtol=0)
    assert np.abs(ours.delta).max() < 1e-6
    np.testing.assert_allclose(ours.values.sum(1) + ours.base_value, p_good(enc(rows)), atol=1e-6)
    assert np.all(ours.standard_error == 0)
    # features equal in a background row and the row cost nothing: fewer model rows than 2**m per background row
    assert model_rows < 3 * 2 ** X.shape[1] * len(bg) / 2


def test_log_odds_equals_shap_logit_link(torch_oracle, rows_bg, shap):
    X, rows, bg = rows_bg
    enc, dec = _coded(X)

    def p_good(A):  # the first class
        return torch_oracle.query(dec(A))[:, 0]

    theirs = shap.ExactExplainer(p_good, shap.maskers.Independent(enc(bg), max_samples=len(bg)),
                                 link=shap.links.logit, linearize_link=False)(enc(rows.iloc[:2]))
    ours = shapley(torch_oracle, rows.iloc[:2], bg, target=0, output="log_odds")
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.base_value, theirs.base_values, atol=1e-6, rtol=0)
    assert np.abs(ours.delta).max() < 1e-9


# ---------------------------------------------------------------------------- sampled methods
def test_permutation_and_kernel_agree_with_exact_within_their_standard_errors(torch_oracle, rows_bg):
    X, rows, bg = rows_bg
    exact = shapley(torch_oracle, rows, bg, target="good", method="exact")
    for method in ("permutation", "kernel"):
        est = shapley(torch_oracle, rows, bg, target="good", method=method, n_samples=600, random_state=3)
        assert np.all(est.standard_error > 0), method
        z = (est.values - exact.values) / est.standard_error
        assert np.abs(z).max() < 4.5, (method, np.abs(z).max())
        assert np.mean(np.abs(z)) < 1.5, (method, np.mean(np.abs(z)))
        assert np.abs(est.delta).max() < 1e-9  # both keep the sum exact
        # more samples, smaller errors
        more = shapley(torch_oracle, rows, bg, target="good", method=method, n_samples=2400, random_state=3)
        assert more.standard_error.mean() < 0.75 * est.standard_error.mean(), method


def test_kernel_with_every_coalition_is_exact(torch_oracle, rows_bg):
    X, rows, bg = rows_bg
    exact = shapley(torch_oracle, rows, bg, method="exact")
    full = shapley(torch_oracle, rows, bg, method="kernel", n_samples=2 ** X.shape[1])
    assert full.params["enumerated"]
    # float32 network: exact values reach the first layer's sums by another order of additions
    np.testing.assert_allclose(full.values, exact.values, atol=1e-7)


def test_a_rows_values_do_not_depend_on_the_rows_explained_with_it(torch_oracle, rows_bg):
    X, _, bg = rows_bg
    many = shapley(torch_oracle, X.iloc[:6], bg, method="permutation", random_state=7, n_samples=100)
    one = shapley(torch_oracle, X.iloc[[3]], bg, method="permutation", random_state=7, n_samples=100)
    np.testing.assert_array_equal(many.values[3], one.values[0])
    again = shapley(torch_oracle, X.iloc[:6], bg, method="permutation", random_state=7, n_samples=100, batch_size=97)
    np.testing.assert_allclose(again.values, many.values, atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "paired"])
def test_row_blocks_on_threads_give_the_values_and_counts_of_one_thread(torch_oracle, rows_bg, monkeypatch, method):
    """With torch on one thread per operation (as explain runs Shapley values), the row blocks
    run on one thread per core: the same values, bit for bit, and the same query count as one
    block after another."""
    import importlib
    import threading

    import pellucid.executor as executor
    from pellucid._device import torch_threads

    sh = importlib.import_module("pellucid.attribution.shapley")  # the module, not the function
    X, _, bg = rows_bg
    rows = X.iloc[:40]  # three blocks
    seen = set()
    exact_pairs, paired = sh._exact_pairs, sh._paired
    monkeypatch.setattr(sh, "_exact_pairs", lambda *a: (seen.add(threading.current_thread().name), exact_pairs(*a))[1])
    monkeypatch.setattr(sh, "_paired", lambda *a: (seen.add(threading.current_thread().name), paired(*a))[1])

    def run(n_cores):
        monkeypatch.setattr(executor, "cores", lambda: n_cores)
        seen.clear()
        before = torch_oracle.n_queries
        with torch_threads(1):
            a = shapley(torch_oracle, rows, bg, method=method, random_state=3)
        return a, torch_oracle.n_queries - before, set(seen)

    threaded, q_threaded, names = run(3)
    alone, q_alone, names_alone = run(1)
    assert len(names) > 1 and all(n.startswith("pellucid-shapley") for n in names)
    assert names_alone == {threading.current_thread().name}
    np.testing.assert_array_equal(threaded.values, alone.values)
    np.testing.assert_array_equal(threaded.standard_error, alone.standard_error)
    assert q_threaded == q_alone > 0


def test_work_of_a_run_that_ended_stops_at_its_next_block(torch_oracle, rows_bg):
    """A set CANCEL event (a run that stopped while its attributions ran on a thread) stops
    Shapley values before their next block of rows, on one thread or many."""
    import contextvars
    import importlib
    import threading

    from pellucid._device import torch_threads

    sh = importlib.import_module("pellucid.attribution.shapley")
    X, _, bg = rows_bg
    stop = threading.Event()
    stop.set()

    def run():
        sh.CANCEL.set(stop)
        return shapley(torch_oracle, X.iloc[:20], bg, method="exact")

    for threads in (1, 2):
        with torch_threads(threads), pytest.raises(sh.Cancelled):
            contextvars.copy_context().run(run)
    assert shapley(torch_oracle, X.iloc[:2], bg, method="exact").values.shape == (2, 11)  # only in that context


# ---------------------------------------------------------------------------- other models and paths
#: A scikit-learn model on seven raw features (numbers with missing values, categoricals):
#: enumerating every coalition by hand stays quick.
SEVEN = ["income", "debt_ratio", "delinquencies", "credit_lines", "home", "employment", "region"]


@pytest.fixture(scope="module")
def forest_parts(credit):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from pellucid.demo import credit_preprocess

    X, y = credit
    pre = credit_preprocess(X[SEVEN])
    forest = RandomForestClassifier(15, max_depth=5, random_state=0).fit(pre.transform(X[SEVEN]), y)
    return pre, forest, make_pipeline(pre, forest)


def test_a_scikit_learn_model_by_encoded_blocks_and_by_raw_rows(rows_bg, forest_parts):
    _, rows, bg = rows_bg
    rows, bg = rows[SEVEN], bg[SEVEN].iloc[:10]
    pre, forest, pipe = forest_parts
    blocks = shapley(Oracle(forest, preprocess=pre), rows.iloc[:2], bg, target="bad")
    whole = shapley(Oracle(pipe), rows.iloc[:2], bg, target="bad")
    assert blocks.params["path"] == "encoded blocks" and whole.params["path"] == "raw rows"
    np.testing.assert_allclose(blocks.values, whole.values, atol=1e-12)
    k = list(pipe.classes_).index("bad")
    ref, base = enumerate_shapley(lambda h: pipe.predict_proba(h)[:, k], rows.iloc[[1]], bg, {c: [c] for c in SEVEN})
    np.testing.assert_allclose(whole.values[1], ref, atol=1e-12)
    assert whole.base_value[1] == pytest.approx(base, abs=1e-12)



def test_auto_is_exact_while_a_row_s_coalitions_are_few_and_paired_beyond(rows_bg, forest_parts, torch_oracle):
    # Each hybrid row of a scikit-learn model is a row through the model itself: "auto" is exact
    # while background rows x 2**players stay within EXACT_AUTO_ROWS, sampled (paired) beyond.
    from pellucid.attribution.shapley import EXACT_AUTO_ROWS

    X, rows, _ = rows_bg
    _, _, pipe = forest_parts
    rows = rows[SEVEN]
    assert 500 * 2**7 <= EXACT_AUTO_ROWS < 520 * 2**7
    within = shapley(Oracle(pipe), rows.iloc[:1], X[SEVEN].iloc[:500], target="bad")
    assert within.params["shapley_method"] == "exact" and not np.any(within.standard_error)
    bg = X[SEVEN].iloc[:520]
    auto = shapley(Oracle(pipe), rows, bg, target="bad", random_state=0)
    assert auto.params["shapley_method"] == "paired" and auto.standard_error is not None
    exact = shapley(Oracle(pipe), rows, bg, target="bad", method="exact")
    err = auto.values - exact.values
    assert np.sqrt(np.mean(err**2)) <= 0.1 * np.mean(np.abs(exact.values))
    np.testing.assert_allclose(auto.values.sum(axis=1) + auto.base_value, exact.values.sum(axis=1) + exact.base_value,
                               atol=1e-9)  # both add up to the row's output
    # The choice rests on the model, the players and the background, not on the rows explained
    # together: a row alone gets the values it gets among others.
    alone = shapley(Oracle(pipe), rows.iloc[[2]], bg, target="bad", random_state=0)
    assert alone.params["shapley_method"] == "paired"
    np.testing.assert_allclose(alone.values[0], auto.values[2], atol=1e-12)
    # A torch network's coalitions come from its first layer's shares: exact up to 14 players.
    net = shapley(torch_oracle, rows_bg[1].iloc[:1], X.iloc[:520])
    assert net.params["shapley_method"] == "exact"


def test_groups_merge_features_into_one_player(rows_bg, forest_parts):
    _, rows, bg = rows_bg
    rows, bg = rows[SEVEN], bg[SEVEN].iloc[:8]
    pre, forest, _ = forest_parts
    oracle = Oracle(forest, preprocess=pre)
    groups = {"bureau": ["delinquencies", "credit_lines"], "place": ["region", "home"]}
    a = shapley(oracle, rows.iloc[[0]], bg, target="good", groups=groups)
    players = {p: groups.get(p, [p]) for p in a.features}
    assert a.features == ("income", "debt_ratio", "bureau", "place", "employment")
    k = list(oracle.classes_).index("good")
    ref, _ = enumerate_shapley(lambda h: oracle.query(h)[:, k], rows.iloc[[0]], bg, players)
    np.testing.assert_allclose(a.values[0], ref, atol=1e-12)


def test_columns_mixing_features_fall_back_to_raw_rows(rows_bg):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import FunctionTransformer

    X, rows, bg = rows_bg
    cols = ["income", "age", "debt_ratio"]

    def features(df):
        d = df[cols].fillna(0.0).to_numpy(float)
        return np.column_stack([d, d[:, 0] * d[:, 1] / 1e4])  # one column of two raw features

    pre = FunctionTransformer(features)
    y = (features(X)[:, 3] > np.median(features(X)[:, 3])).astype(int)
    model = LogisticRegression(max_iter=500).fit(features(X), y)
    oracle = Oracle(model, preprocess=pre)
    a = shapley(oracle, rows[cols], bg[cols].iloc[:12], target=1)
    assert a.params["path"] == "raw rows"
    ref, _ = enumerate_shapley(lambda h: oracle.query(h)[:, 1], rows[cols].iloc[[2]], bg[cols].iloc[:12],
                               {c: [c] for c in cols})
    np.testing.assert_allclose(a.values[2], ref, atol=1e-12)


def test_an_additive_regressor_gets_its_closed_form(rows_bg):
    X, rows, bg = rows_bg
    data = X[["income", "age"]].fillna(10.0)
    reg = Oracle(lambda df: df["income"].to_numpy() * 2.0 + df["age"].to_numpy() ** 2, task="regression")
    for method in ("exact", "permutation", "kernel"):
        a = shapley(reg, data.iloc[:5], data.iloc[100:140], method=method, random_state=0)
        expect = np.column_stack([2.0 * (data["income"].iloc[:5] - data["income"].iloc[100:140].mean()),
                                  data["age"].iloc[:5] ** 2 - (data["age"].iloc[100:140] ** 2).mean()])
        np.testing.assert_allclose(a.values, expect, rtol=1e-9, atol=1e-6)
        assert a.targets is None and a.params["output"] == "raw"


def test_a_bare_module_on_its_own_inputs():
    net = _nets.mlp(n_in=4, n_out=3, hidden=8, seed=2).double()
    torch.manual_seed(0)
    x, bg = torch.randn(3, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    a = shapley(net, x, bg, target=2)
    assert a.features == ("x0", "x1", "x2", "x3") and a.params["output"] == "raw"

    def answer(h):
        with torch.no_grad():
            return net(torch.tensor(h.to_numpy(float)))[:, 2].numpy()

    ref, _ = enumerate_shapley(answer, pd.DataFrame(x[[1]].numpy(), columns=list(a.features)),
                               pd.DataFrame(bg.numpy(), columns=list(a.features)), {f: [f] for f in a.features})
    np.testing.assert_allclose(a.values[1], ref, atol=1e-12)


def test_registered_with_the_common_signature(torch_oracle, rows_bg):
    X, rows, bg = rows_bg
    assert METHODS["shapley"].__name__ == "shapley_values"
    a = METHODS["shapley"](torch_oracle, rows, target="good", baseline=bg, shapley_method="kernel", random_state=1)
    b = shapley(torch_oracle, rows, bg, target="good", method="kernel", random_state=1)
    np.testing.assert_array_equal(a.values, b.values)
    drawn = METHODS["shapley"](torch_oracle, rows, reference=X, random_state=0)
    assert drawn.params["background_rows"] == 100


# ---------------------------------------------------------------------------- bad input
def test_errors_name_the_problem(torch_oracle, rows_bg):
    X, rows, bg = rows_bg
    with pytest.raises(ParameterError, match=r"background has columns other than the inputs' \(missing \['age'\]"):
        shapley(torch_oracle, rows, bg.drop(columns="age"), target=0)
    with pytest.raises(ParameterError, match="not in the inputs \\['extra'\\]"):
        shapley(torch_oracle, rows, bg.assign(extra=1), target=0)
    with pytest.raises(ParameterError, match="background has 1 row"):
        shapley(torch_oracle, rows, bg.iloc[:1], target=0)
    with pytest.raises(ParameterError, match="group 'bureau' names 'salary', which is not a feature"):
        shapley(torch_oracle, rows, bg, groups={"bureau": ["salary"]})
    with pytest.raises(ParameterError, match="'income' is in groups 'a' and 'b'"):
        shapley(torch_oracle, rows, bg, groups={"a": ["income"], "b": ["income", "age"]})
    with pytest.raises(ParameterError, match="method must be one of"):
        shapley(torch_oracle, rows, bg, method="tree")
    with pytest.raises(ParameterError, match="output must be one of"):
        shapley(torch_oracle, rows, bg, output="logit")
    wide = _nets.mlp(n_in=21, n_out=2, hidden=4, seed=0)
    with pytest.raises(ParameterError, match=r"2\*\*21 coalitions .* use method='permutation' or 'kernel', or merge"):
        shapley(wide, torch.zeros(1, 21), torch.zeros(2, 21), target=0, method="exact")
    assert shapley(wide, torch.zeros(1, 21), torch.randn(2, 21), target=0, n_samples=60).params["shapley_method"] \
        == "permutation"


def test_the_first_layer_shortcut_equals_building_every_hybrid(monkeypatch):
    """A network starting with a linear layer answers a row pair's coalitions from that layer's
    per-player contributions; wrapped so that the shortcut cannot see the layer, it builds
    every hybrid. Both give the same values (double precision)."""
    net = _nets.mlp(n_in=9, n_out=2, hidden=16, seed=4).double()
    assert isinstance(net, torch.nn.Sequential) and isinstance(net[0], torch.nn.Linear)
    torch.manual_seed(1)
    x, bg = torch.randn(4, 9, dtype=torch.float64), torch.randn(7, 9, dtype=torch.float64)
    bg[:3, :2] = x[0, :2]  # some players equal in a pair: fewer than 9 differ there
    module = importlib.import_module("pellucid.attribution.shapley")  # the package's name is the function
    used = []
    pair_values = module._TensorEngine.pair_values
    monkeypatch.setattr(module._TensorEngine, "pair_values", lambda self, *a: used.append(1) or pair_values(self, *a))
    fast = shapley(net, x, bg, target=1)
    assert used, "the shortcut was not taken"
    used.clear()
    slow = shapley(torch.nn.Sequential(torch.nn.Identity(), net), x, bg, target=1)
    assert not used
    np.testing.assert_allclose(fast.values, slow.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.delta, 0, atol=1e-12)


def test_the_two_logit_gap_equals_the_oracle_softmax(monkeypatch):
    """A two-class network of Linear and ReLU layers, explained on P(class): the shortcut folds
    its last layer into the gap of the two logits. A trailing Identity hides that layer from the
    shortcut (the oracle's own softmax then answers); both give the same values for either
    class, and count the same model rows."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(9, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 2)).double()
    hidden = torch.nn.Sequential(*net, torch.nn.Identity())
    x, bg = torch.randn(5, 9, dtype=torch.float64), torch.randn(6, 9, dtype=torch.float64)
    module = importlib.import_module("pellucid.attribution.shapley")
    used = []
    gap_values = module._TensorEngine._gap_values
    monkeypatch.setattr(module._TensorEngine, "_gap_values", lambda self, *a: used.append(1) or gap_values(self, *a))
    for target in (0, 1, None):
        fast_oracle = Oracle(net, task="classification")
        fast = shapley(fast_oracle, x, bg, target=target)
        assert used, "the gap was not taken"
        used.clear()
        slow_oracle = Oracle(hidden, task="classification")
        slow = shapley(slow_oracle, x, bg, target=target)
        assert not used
        np.testing.assert_allclose(fast.values, slow.values, rtol=0, atol=1e-12)
        assert fast_oracle.n_queries == slow_oracle.n_queries


def test_the_weight_table_and_the_slices_give_the_same_shapley_sums(monkeypatch):
    """Coalition values become Shapley values by one product with a weight table up to 14
    players and by slices along each player's axis beyond; the two forms agree, and both equal
    the definition (sum over coalitions without the player, weighted |S|!(m-|S|-1)!/m!)."""
    module = importlib.import_module("pellucid.attribution.shapley")
    rng = np.random.default_rng(0)
    for m in range(1, 9):
        V = rng.normal(size=(3, 2**m))
        table = module._shapley_from_values(V, m)
        monkeypatch.setattr(module, "_WEIGHTS_MAX", 0)
        slices = module._shapley_from_values(V, m)
        monkeypatch.undo()
        direct = np.zeros((3, m))
        for j in range(m):
            for k in range(2**m):
                if not k >> j & 1:
                    s = bin(k).count("1")
                    direct[:, j] += math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) * (V[:, k | 1 << j] - V[:, k])
        np.testing.assert_allclose(table, direct, rtol=0, atol=1e-12)
        np.testing.assert_allclose(slices, direct, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- the margin scale
def test_margin_equals_shap_exact_on_the_log_odds_and_adds_up(torch_oracle, rows_bg, shap):
    """``output="margin"``: every hybrid's own log-odds averaged over the background, shap's
    Exact explainer on a model that answers log-odds; the values add up to the row's log-odds
    minus the background's mean log-odds."""
    X, rows, bg = rows_bg
    enc, dec = _coded(X)

    bad = list(CLASSES).index("bad")

    def log_odds_bad(A):
        p = torch_oracle.query(dec(A))[:, bad].astype(np.float64)
        return np.log(p) - np.log1p(-p)

    theirs = shap.ExactExplainer(log_odds_bad, shap.maskers.Independent(enc(bg), max_samples=len(bg)))(enc(rows))
    ours = shapley(torch_oracle, rows, bg, target="bad", output="margin")
    assert ours.params["output"] == "margin" and ours.params["path"] == "encoded blocks (torch)"
    # float32 probabilities carry about 1e-7 of relative error into shap's log-odds
    np.testing.assert_allclose(ours.values, theirs.values, atol=2e-5, rtol=0)
    np.testing.assert_allclose(ours.base_value, log_odds_bad(enc(bg)).mean(), atol=2e-5)
    np.testing.assert_allclose(ours.values.sum(1) + ours.base_value, log_odds_bad(enc(rows)), atol=2e-5)
    assert np.abs(ours.delta).max() < 1e-9


def test_margin_of_a_scikit_learn_model_equals_the_enumeration(rows_bg, forest_parts):
    _, rows, bg = rows_bg
    rows, bg = rows[SEVEN], bg[SEVEN].iloc[:10]
    pre, forest, pipe = forest_parts
    k = list(pipe.classes_).index("bad")

    def log_odds(h):
        p = np.clip(pipe.predict_proba(h)[:, k], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    for model in (Oracle(forest, preprocess=pre), Oracle(pipe)):
        got = shapley(model, rows.iloc[[1]], bg, target="bad", output="margin")
        ref, base = enumerate_shapley(log_odds, rows.iloc[[1]], bg, {c: [c] for c in SEVEN})
        np.testing.assert_allclose(got.values[0], ref, atol=1e-9)
        assert got.base_value[0] == pytest.approx(base, abs=1e-9)


def test_margin_is_exact_where_probabilities_round_to_one(monkeypatch):
    """A network sure of its answers (logit gaps up to about 60): the margin is read from the
    logits, on the gap path and on the oracle's own path (hidden behind an Identity), for two
    and for three logits, and adds up to the logit gap, where float32 probabilities would round
    to 1 past a gap of about 17."""
    torch.manual_seed(5)
    for classes in (2, 3):
        net = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, classes))
        with torch.no_grad():
            net[2].weight.mul_(40.0)
        hidden = torch.nn.Sequential(*net, torch.nn.Identity())
        x, bg = torch.randn(4, 6), torch.randn(5, 6)
        with torch.no_grad():
            z = net(x).double()
        for target in range(classes):
            want = z[:, target] - torch.logsumexp(z[:, [c for c in range(classes) if c != target]], dim=1)
            assert want.abs().max() > 20 or target > 0 or classes > 2
            for module in (net, hidden):
                got = shapley(Oracle(module, task="classification"), x, bg, target=target, output="margin")
                np.testing.assert_allclose(got.values.sum(1) + got.base_value, want.numpy(), rtol=1e-5, atol=1e-4)
                assert np.abs(got.delta).max() < 1e-9


def test_paired_agrees_with_exact_within_its_standard_errors_and_adds_up(torch_oracle, rows_bg):
    """``method="paired"`` (a background row and an order per pair, every background row in as
    many pairs) estimates the exact values of a linear output, its standard errors describe its
    errors, its values add up exactly, and the shares path equals building every hybrid."""
    X, _, bg = rows_bg
    rows = X.iloc[:12]
    for output in ("margin", "probability"):
        exact = shapley(torch_oracle, rows, bg, target="bad", output=output, method="exact")
        est = shapley(torch_oracle, rows, bg, target="bad", output=output, method="paired", n_samples=96,
                      random_state=3)
        assert est.params["pairs"] == 96 and np.all(est.standard_error > 0)
        z = (est.values - exact.values) / est.standard_error
        assert np.abs(z).max() < 4.5 and 0.5 < np.sqrt(np.mean(z ** 2)) < 1.5, (output, np.abs(z).max())
        assert np.abs(est.delta).max() < 1e-9
        more = shapley(torch_oracle, rows, bg, target="bad", output=output, method="paired", n_samples=384,
                       random_state=3)
        assert more.standard_error.mean() < 0.6 * est.standard_error.mean()
        if output == "margin":
            margin = est
    # 30 pairs round up to 2 per background row (24 rows), so that every row serves equally
    assert shapley(torch_oracle, rows.iloc[:1], bg, method="paired", n_samples=30).params["pairs"] == 48
    one = shapley(torch_oracle, rows.iloc[[5]], bg, target="bad", output="margin", method="paired", n_samples=96,
                  random_state=3)
    # a row's draws are its own: alone it gets the values it got among others (to float32 sums)
    np.testing.assert_allclose(one.values[0], margin.values[5], rtol=0, atol=1e-5)
    with pytest.raises(ParameterError, match="paired"):
        shapley(torch_oracle, rows.iloc[:1], bg, output="log_odds", method="paired")


def test_paired_walks_by_shares_equal_walks_by_hybrid_rows(monkeypatch):
    """The first layer's running sums along each order give the values that building every
    hybrid row gives (a network whose first layer is hidden behind an Identity)."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(7, 9), torch.nn.ReLU(), torch.nn.Linear(9, 3)).double()
    hidden = torch.nn.Sequential(torch.nn.Identity(), *net)
    x, bg = torch.randn(5, 7, dtype=torch.float64), torch.randn(4, 7, dtype=torch.float64)
    fast = shapley(Oracle(net, task="classification"), x, bg, target=2, output="margin", method="paired",
                   n_samples=12, random_state=0)
    slow = shapley(Oracle(hidden, task="classification"), x, bg, target=2, output="margin", method="paired",
                   n_samples=12, random_state=0)
    np.testing.assert_allclose(fast.values, slow.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.standard_error, slow.standard_error, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")  # users' .pt files remain
def test_a_torchscript_network_of_plain_layers_takes_the_shortcuts_of_its_eager_twin(monkeypatch):
    """A scripted Sequential of Linear and ReLU layers (as a .pt file loads) hides its layers
    from the shortcuts; its eager twin, checked to answer the rows as the script does, takes
    them: the script's values are its eager original's, bit for bit. A script with another
    layer keeps building every hybrid, and gives the same values within rounding."""
    module = importlib.import_module("pellucid.attribution.shapley")
    torch.manual_seed(5)
    net = torch.nn.Sequential(torch.nn.Linear(8, 12), torch.nn.ReLU(), torch.nn.Linear(12, 6), torch.nn.ReLU(),
                              torch.nn.Linear(6, 2)).eval()
    x, bg = torch.randn(5, 8), torch.randn(9, 8)
    used = []
    gap_values = module._TensorEngine._gap_values
    monkeypatch.setattr(module._TensorEngine, "_gap_values", lambda self, *a: used.append(1) or gap_values(self, *a))
    eager = shapley(Oracle(net, task="classification"), x, bg)
    assert used
    used.clear()
    script = torch.jit.script(net)
    scripted = shapley(Oracle(script, task="classification"), x, bg)
    assert used, "the script's eager twin did not take the shortcut"
    np.testing.assert_array_equal(scripted.values, eager.values)
    twin = module._eager_copy(script, [x, bg])
    assert [type(m) for m in twin] == [type(m) for m in net]
    assert all(torch.equal(a, b) for a, b in zip(twin.parameters(), net.parameters(), strict=True))
    # Not rebuilt: an eager module, another layer, or a script that answers otherwise.
    assert module._eager_copy(net, [x]) is None
    tanh = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).eval())
    assert module._eager_copy(tanh, [x]) is None
    used.clear()
    other = shapley(Oracle(tanh, task="classification"), x, bg)
    assert not used
    plain = shapley(Oracle(torch.nn.Sequential(torch.nn.Identity(), *tanh.children()), task="classification"), x, bg)
    np.testing.assert_allclose(other.values, plain.values, rtol=0, atol=1e-6)
    monkeypatch.setattr(module.torch, "equal", lambda a, b: False)
    assert module._eager_copy(script, [x]) is None
