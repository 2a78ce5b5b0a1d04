"""The two-class L1 logistic path (pellucid/surrogates/_l1logistic.py) against scikit-learn's
SAGA solver run to a tight tolerance, and against the optimality conditions themselves."""

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pellucid.surrogates._l1logistic import KKT_TOL, L1Logistic, _soft_cd, l1_logistic_path
from pellucid.surrogates.linear import _SKLEARN_18


def _problem(seed, n, p, weighted):
    rng = np.random.default_rng(seed)
    # Correlated columns, some of them 0/1 indicators (as a scorecard's bins are).
    X = rng.normal(size=(n, p)) @ (np.eye(p) + 0.4 * rng.normal(size=(p, p)) / np.sqrt(p))
    X[:, : p // 3] = (X[:, : p // 3] > 0.5).astype(float)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    beta = np.where(rng.random(p) < 0.4, rng.normal(0, 1.5, p), 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(Z @ beta - 0.3)))).astype(float)
    w = rng.uniform(0.2, 3.0, n) if weighted else np.ones(n)
    return Z, y, w


def _grid(Z, y, w, points=12):
    gmax = np.abs(Z.T @ (w * (w @ y / w.sum() - y))).max()
    return (0.99 / gmax) * np.logspace(0, 3, points)


def _saga(C, Z, y, w):
    pen = {"l1_ratio": 1.0} if _SKLEARN_18 else {"penalty": "l1"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=C, solver="saga", tol=1e-10, max_iter=100_000, **pen).fit(Z, y, sample_weight=w)


def _objective(Z, y, w, coef, b, C):
    eta = Z @ coef + b
    return w @ (np.logaddexp(0, eta) - y * eta) + np.abs(coef).sum() / C


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(60, 400), p=st.integers(2, 14), weighted=st.booleans())
def test_each_point_is_saga_s_optimum(seed, n, p, weighted):
    Z, y, w = _problem(seed, n, p, weighted)
    if y.min() == y.max():
        return
    at = l1_logistic_path(Z, y, w, np.array([0, 1]))
    for C in _grid(Z, y, w, 6):
        ours, ref = at(C), _saga(C, Z, y, w)
        f_ours = _objective(Z, y, w, ours.coef_[0], ours.intercept_[0], C)
        f_ref = _objective(Z, y, w, ref.coef_[0], ref.intercept_[0], C)
        # As low an objective as SAGA's at a tight tolerance, and the same weights.
        assert f_ours <= f_ref + 1e-9 * abs(f_ref)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4 * max(1.0, np.abs(ref.coef_).max()))
        # The same support, where SAGA's weight is not within its own precision of zero.
        clear = np.abs(ref.coef_[0]) > 1e-6
        assert (ours.coef_[0] != 0)[clear].all()


@pytest.mark.parametrize("weighted", [False, True])
def test_every_point_meets_the_optimality_conditions(weighted):
    Z, y, w = _problem(3, 2_000, 30, weighted)
    at = l1_logistic_path(Z, y, w, np.array([0, 1]))
    sizes = []
    for C in _grid(Z, y, w, 15):
        m = at(C)
        beta, b, lam = m.coef_[0], m.intercept_[0], 1 / C
        r = w * (1 / (1 + np.exp(-(Z @ beta + b))) - y)
        g = Z.T @ r
        on = beta != 0
        assert abs(r.sum()) <= KKT_TOL * lam * 1.0001
        assert np.all(np.abs(g[on] + lam * np.sign(beta[on])) <= KKT_TOL * lam * 1.0001)
        assert np.all(np.abs(g[~on]) <= lam * (1 + KKT_TOL))
        sizes.append(int(on.sum()))
    # The path goes from the intercept alone to most of the columns.
    assert sizes[0] == 0 and sizes[-1] >= 15


def test_reads_like_sklearn_estimator():
    Z, y, w = _problem(5, 500, 6, False)
    labels = np.array([2, 7])
    m = l1_logistic_path(Z, y, w, labels)(_grid(Z, y, w)[-1])
    assert isinstance(m, L1Logistic)
    ref = _saga(m.C, Z, y, w)
    ref.classes_ = labels
    np.testing.assert_allclose(m.decision_function(Z), ref.decision_function(Z), atol=1e-4)
    np.testing.assert_allclose(m.predict_proba(Z), ref.predict_proba(Z), atol=1e-4)
    sure = np.abs(ref.decision_function(Z)) > 1e-3
    np.testing.assert_array_equal(m.predict(Z)[sure], ref.predict(Z)[sure])
    assert set(np.unique(m.predict(Z))) <= {2, 7}


def test_separable_labels_end_with_finite_weights():
    # Labels a threshold of one column decides: the weights grow as the penalty falls, and
    # every point still meets its optimality conditions.
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(400, 5))
    y = (Z[:, 0] > 0.2).astype(float)
    w = np.ones(400)
    at = l1_logistic_path(Z, y, w, np.array([0, 1]))
    last = None
    for C in _grid(Z, y, w, 10):
        last = at(C)
    assert np.isfinite(last.coef_).all() and last.coef_[0, 0] > 5
    assert (last.predict(Z) == y).mean() > 0.99


def _qp_minimum(H, grad, v0, lam):
    """The minimum of ``grad·(v - v0) + ½ (v - v0)ᵀ H (v - v0) + lam·|v[:-1]|₁`` by trying every
    sign of every penalised weight (-, 0, +): on each, a linear system; the lowest point whose
    signs hold is the minimum (the problem is strictly convex)."""
    m = len(v0)

    def objective(v):
        d = v - v0
        return grad @ d + 0.5 * d @ H @ d + lam * np.abs(v[:-1]).sum()

    best, best_f = None, np.inf
    for signs in itertools.product((-1.0, 0.0, 1.0), repeat=m - 1):
        s = np.array([*signs, 0.0])
        on = np.flatnonzero(s != 0.0).tolist() + [m - 1]
        d = -v0.copy()
        off = [j for j in range(m) if j not in on]
        rhs = -(grad[on] + lam * s[on]) - H[np.ix_(on, off)] @ d[off]
        d[on] = np.linalg.solve(H[np.ix_(on, on)], rhs)
        v = v0 + d
        v[off] = 0.0
        if np.all(np.sign(v[on[:-1]]) == s[on[:-1]]) and objective(v) < best_f:
            best, best_f = v, objective(v)
    return best, objective


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(2, 6), collinear=st.floats(0.0, 0.999999))
def test_each_newton_step_solves_its_model_exactly(seed, m, collinear):
    # Nearly collinear columns make H so ill-conditioned that coordinate descent alone would
    # stop at its sweep limit short of the minimum; the support's own system reaches it.
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(50, 1))
    X = np.hstack([collinear * base + (1 - collinear) * rng.normal(size=(50, m - 1)), np.ones((50, 1))])
    H = X.T @ X + 1e-9 * np.eye(m)
    grad, v0 = rng.normal(size=m) * 5, rng.normal(size=m) * rng.integers(0, 2, m)
    lam = float(rng.uniform(0.01, 3.0))
    got = _soft_cd(H, grad, v0, lam, 1e-12)
    want, objective = _qp_minimum(H, grad, v0, lam)
    assert objective(got) <= objective(want) + 1e-9 * max(1.0, abs(objective(want)))
    np.testing.assert_array_equal(got[:-1] != 0, want[:-1] != 0)  # the same support
