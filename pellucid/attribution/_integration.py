"""Integration rules for path methods (Integrated Gradients and its relatives).

A path method integrates the gradient along ``baseline + alpha * (x - baseline)`` for
``alpha`` in [0, 1]. Every rule here is a set of points ``alphas`` in [0, 1] and weights
``weights`` with ``integral_0^1 g(alpha) d alpha ~= sum(weights * g(alphas))``; the numbers are
the same as captum's ``approximation_methods`` (computed in float64), except the trapezoid rule:
captum gives its ``n`` points, spaced ``1/(n-1)`` apart, weights of ``1/n`` (summing to ``1 - 1/n``),
so it misses even a constant; here the weights are ``1/(n-1)`` with the two ends halved, which
integrates linear functions exactly.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

__all__ = ["INTEGRATION_METHODS", "integration_rule"]

#: Names accepted by :func:`integration_rule` (captum's spelling).
INTEGRATION_METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def integration_rule(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights of an integration rule on [0, 1].

    Parameters
    ----------
    method : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}
        Gauss–Legendre is exact for polynomials of degree ``2 * n_steps - 1``; the Riemann
        rules use equal steps (the trapezoid halves the two end weights).
    n_steps : int
        Number of points; at least 1 (2 for the trapezoid rule).

    Returns
    -------
    alphas, weights : ndarray of float64, shape (n_steps,)
    """
    if method not in INTEGRATION_METHODS:
        raise ParameterError(f"unknown integration method {method!r}; use one of {', '.join(INTEGRATION_METHODS)}")
    least = 2 if method == "riemann_trapezoid" else 1
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, (int, np.integer)) or n_steps < least:
        raise ParameterError(f"n_steps must be an integer >= {least} for {method!r}; got {n_steps!r}")
    n = int(n_steps)
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)  # on [-1, 1]
        return 0.5 * (1.0 + nodes), 0.5 * w
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), weights
    if method == "riemann_right":
        return np.linspace(1.0 / n, 1.0, n), weights
    return np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n), weights  # middle
