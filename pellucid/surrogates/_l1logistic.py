"""Two-class logistic regression with an L1 penalty, solved to optimality along a path.

The sparse linear model and the scorecard walk a path of penalties and keep the support of
its points (:meth:`pellucid.surrogates.linear._L1Additive._path`). For two classes this module
solves each point with a proximal Newton method (glmnet's; Friedman, Hastie and Tibshirani,
*Regularization paths for generalized linear models via coordinate descent*, 2010):

* the objective is scikit-learn's ``LogisticRegression(C=C, l1_ratio=1)`` one, divided by ``C``:
  ``Σ wᵢ · (log(1 + exp ηᵢ) - yᵢ ηᵢ) + |β|₁ / C`` with ``η = Zβ + b`` and the intercept ``b``
  unpenalised;
* each step models the log-loss by its second-order expansion on the *active* columns (those
  with a weight, and those whose gradient breaks the L1 optimality condition), solves that
  penalised least-squares problem by coordinate descent on its small Gram matrix (finished
  by the linear system of the support the sweeps settle on, :func:`_on_support`), and takes
  the largest step of the backtracking line search that lowers the objective itself
  (Armijo's condition on the predicted decrease);
* a point is done when every column meets the optimality condition (a weight ``βⱼ ≠ 0`` with
  ``gⱼ + sign(βⱼ)/C = 0``, a zero one with ``|gⱼ| ≤ 1/C``, the intercept with ``Σ wᵢ(pᵢ - yᵢ) = 0``)
  to within :data:`KKT_TOL` of the penalty ``1/C``;
* each point starts from the previous one (warm start), which is why a path costs a few
  Newton steps per point.

Weights leave zero through the soft threshold, or exactly at the point where the support's own
system would flip their sign (:func:`_on_support`), so a point's support is exact, not the
rounding of an iterative solver: the same rows give the same support on any solver that
reaches the optimum. scikit-learn's SAGA solver reaches the same weights at a tight tolerance
(tests/test_l1logistic.py compares them); on the scorecard's paths of docs/benchmarks.md this
solver is 6-10 times faster than SAGA at the loose tolerance the path used before, and 14-25
times faster than SAGA at that tight one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from ..executor import one_blas_thread

#: A point is optimal when each column's optimality condition holds to this share of 1/C.
KKT_TOL = 1e-6
#: Newton steps per point at most; a point that needs more keeps its last iterate (the
#: support and weights are then reported as they are, like an iterative solver's at max_iter).
MAX_NEWTON = 100
#: Coordinate-descent sweeps per Newton step at most.
MAX_SWEEPS = 500


class L1Logistic:
    """One point of the path: weights on the columns the path saw, an intercept, the two labels.

    Reads like scikit-learn's fitted two-class ``LogisticRegression`` (``coef_`` of shape
    (1, n_columns), ``intercept_`` of shape (1,), ``classes_``, ``decision_function``,
    ``predict``, ``predict_proba``), which is what the linear surrogates read back from an estimator."""

    def __init__(self, coef: np.ndarray, intercept: float, classes: np.ndarray, C: float, n_iter: int) -> None:
        self.coef_ = np.asarray(coef, dtype=float).reshape(1, -1)
        self.intercept_ = np.array([float(intercept)])
        self.classes_ = np.asarray(classes)
        self.C = float(C)
        #: Newton steps this point took from the previous one.
        self.n_iter_ = int(n_iter)

    def decision_function(self, Z: np.ndarray) -> np.ndarray:
        return np.asarray(Z, dtype=float) @ self.coef_[0] + self.intercept_[0]

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(Z) > 0).astype(int)]

    def predict_proba(self, Z: np.ndarray) -> np.ndarray:
        p1 = expit(self.decision_function(Z))
        return np.column_stack([1.0 - p1, p1])


def _objective(Z: np.ndarray, y: np.ndarray, w: np.ndarray, beta: np.ndarray, b: float, lam: float) -> float:
    eta = Z @ beta + b
    return float(w @ (np.logaddexp(0.0, eta) - y * eta) + lam * np.abs(beta).sum())


def _soft_cd(H: np.ndarray, grad: np.ndarray, v0: np.ndarray, lam: float, tol: float) -> np.ndarray:
    """Coordinate descent for ``min_v grad·(v - v0) + ½ (v - v0)ᵀ H (v - v0) + lam·|v[:-1]|₁``
    (the last coordinate, the intercept, unpenalised). The coordinates are Python floats and
    ``H``'s columns contiguous rows of its transpose (the same float64 arithmetic, without a
    numpy scalar per operation).

    After a sweep that moved no weight to or from zero, the minimum on that support is
    solved for directly (:func:`_on_support`): returned where it meets every optimality
    condition, else the sweeps go on from the better point it reached. Where the labels nearly
    separate the rows, ``H`` is so ill-conditioned that sweeps alone crawl to the optimum
    (hundreds per Newton step), while its support is found in a few."""
    v = v0.tolist()
    m = len(v)
    Hd = np.zeros(m)  # H @ (v - v0), kept up to date
    g = grad.tolist()
    diag = np.diag(H).tolist()
    root = np.sqrt(np.diag(H)).tolist()
    cols = np.ascontiguousarray(H.T)  # row j: column j of H
    last = m - 1
    for sweep in range(MAX_SWEEPS):
        biggest = 0.0
        support_moved = False
        for j in range(m):
            vj, dj = v[j], diag[j]
            z = vj - (g[j] + float(Hd[j])) / dj
            if j < last:
                t = lam / dj
                new = z - t if z > t else (z + t if z < -t else 0.0)
            else:
                new = z
            d = new - vj
            if d != 0.0:
                support_moved |= (new == 0.0) != (vj == 0.0)
                v[j] = new
                Hd += d * cols[j]
                biggest = max(biggest, abs(d) * root[j])
        if biggest <= tol:
            break
        if sweep and not support_moved:
            x, optimal = _on_support(H, grad, v0, lam, np.array(v))
            if optimal:
                return x
            v = x.tolist()
            Hd = H @ (x - v0)
    return np.array(v)


def _on_support(H: np.ndarray, grad: np.ndarray, v0: np.ndarray, lam: float,
                v: np.ndarray) -> tuple[np.ndarray, bool]:
    """From ``v``, the minimum of :func:`_soft_cd`'s problem on ``v``'s support with its signs,
    and whether it is the problem's minimum.

    On a support ``A`` with signs ``s`` the objective is a quadratic whose minimum solves a
    linear system (the gradient ``-lam·s``, zero for the intercept). Where that minimum flips a
    sign, the point moves towards it only as far as the first weight that reaches zero (the
    objective falls all the way, as the signs hold), that weight leaves the support, and the
    system is solved again (the feature-sign search of Lee, Battle, Raina and Ng, 2007). Once
    the signs hold, the point is the problem's minimum when every weight off the support has
    ``|gradient| <= lam`` (the problem is strictly convex: it is the point coordinate descent
    converges to); otherwise the sweeps take it from there."""
    last = len(v) - 1
    x = v.copy()
    for _ in range(len(v)):
        on = x != 0.0
        on[last] = True
        sign = np.sign(x)
        sign[last] = 0.0
        A, off = np.flatnonzero(on), np.flatnonzero(~on)
        d = -v0.copy()  # off the support the weights are zero
        rhs = -(grad[A] + lam * sign[A]) - H[np.ix_(A, off)] @ d[off]
        try:
            d[A] = np.linalg.solve(H[np.ix_(A, A)], rhs)
        except np.linalg.LinAlgError:
            return x, False
        target = v0 + d
        target[off] = 0.0
        if not np.isfinite(target).all():
            return x, False
        flipped = A[:-1][np.sign(target[A[:-1]]) != sign[A[:-1]]]
        if len(flipped) == 0:
            return target, bool(np.all(np.abs(grad[off] + H[off] @ d) <= lam))
        # As far as the first weight to reach zero: it is zero there, exactly.
        share = x[flipped] / (x[flipped] - target[flipped])
        first = int(np.argmin(share))
        x = x + share[first] * (target - x)
        x[flipped[first]] = 0.0
        x[off] = 0.0
    return x, False


def l1_logistic_path(Z: np.ndarray, y: np.ndarray, w: np.ndarray, classes: np.ndarray):
    """A solver for the path on standardised columns ``Z``, labels ``y`` (0/1: whether the row
    carries ``classes[1]``) and sample weights ``w``. Returns a function of ``C`` giving the
    :class:`L1Logistic` at that point, warm-started from the point asked for before it."""
    Z = np.ascontiguousarray(Z, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.asarray(w, dtype=float)
    n, p = Z.shape
    W = float(w.sum())
    share = float(w @ y) / W
    state = {"beta": np.zeros(p), "b": math.log(share / (1.0 - share))}
    ones = np.ones((n, 1))
    # Coordinate descent on a step's model stops when no weight moves the linear predictor's
    # weighted root-mean-square by more than this.
    cd_tol = 1e-12 * math.sqrt(W)

    def at(C: float) -> L1Logistic:
        # One BLAS thread: the sums that decide which weights are zero are then the same in any
        # process on any machine (a report is the same whatever the thread settings).
        with one_blas_thread():
            return _solve(C)

    def _solve(C: float) -> L1Logistic:
        lam = 1.0 / float(C)
        beta, b = state["beta"].copy(), state["b"]
        steps = 0
        for steps in range(MAX_NEWTON + 1):
            eta = Z @ beta + b
            prob = expit(eta)
            r = w * (prob - y)
            g = Z.T @ r
            gb = float(r.sum())
            active = beta != 0
            over = np.abs(g) - lam
            worst = max(abs(gb), float(np.max(np.where(active, np.abs(g + lam * np.sign(beta)), np.maximum(over, 0.0)))))
            if worst <= KKT_TOL * lam or steps == MAX_NEWTON:
                break
            A = np.flatnonzero(active | (over > 0))
            h = w * prob * (1.0 - prob)
            X = np.hstack([Z[:, A], ones])
            H = X.T @ (X * h[:, None])
            H[np.diag_indices_from(H)] += 1e-12 * W  # a column constant where h > 0 keeps a pivot
            v0 = np.append(beta[A], b)
            grad = np.append(g[A], gb)
            v = _soft_cd(H, grad, v0, lam, cd_tol)
            d = v - v0
            # The decrease the model predicts (negative for a descent direction).
            predicted = float(grad @ d) + lam * (np.abs(v[:-1]).sum() - np.abs(v0[:-1]).sum())
            if not predicted < 0.0:
                break  # no descent left at this precision
            f0 = _objective(Z, y, w, beta, b, lam)
            t = 1.0
            while True:
                trial = beta.copy()
                trial[A] = v0[:-1] + t * d[:-1]
                tb = b + t * d[-1]
                if _objective(Z, y, w, trial, tb, lam) <= f0 + 1e-4 * t * predicted or t < 1e-10:
                    break
                t *= 0.5
            beta, b = trial, tb
        state["beta"], state["b"] = beta, b
        return L1Logistic(beta, b, classes, C, steps)

    return at
