"""Intervals of the estimates a report states, written once.

Two kinds, named in the report wherever an interval is printed:

* **Wilson score intervals** for proportions (agreement, coverage, precision, shares of
  refits): :func:`wilson_interval`.
* **Percentile bootstrap intervals** for everything else that is measured on rows (R², MAE,
  RMSE, macro-F1): :class:`PoissonBootstrap` gives every row an independent Poisson(1)
  weight in each of ``n_boot`` replicates and keeps per-replicate weighted sums;
  :func:`percentile_interval` reads the interval off the replicates.

The weights of a row depend only on the seed and the row's position among all the rows
evaluated (:func:`poisson_weights`, drawn in fixed blocks of :data:`BLOCK_ROWS` rows from a
generator keyed on ``(seed, block)``), and the per-block sums are combined in one fixed tree
over the blocks, so adding the rows in any chunks, or merging the tallies of disjoint
partitions that know where their rows start, gives the identical interval, bit for bit.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from scipy.stats import norm

from ..errors import ParameterError
from ..executor import one_blas_thread

#: Bootstrap replicates unless asked otherwise.
N_BOOT = 200
#: Rows per block of weights. Part of the definition of the weights: changing it changes
#: every interval, so it is a constant, not a parameter.
BLOCK_ROWS = 8192

__all__ = [
    "N_BOOT",
    "BLOCK_ROWS",
    "wilson_interval",
    "wilson",
    "percentile_interval",
    "poisson_weights",
    "PoissonBootstrap",
    "BootTotals",
    "r2_replicates",
    "check_seed",
    "check_n_boot",
    "WILSON",
    "bootstrap_method",
]

#: How the report names a Wilson interval.
WILSON = "Wilson score"


def bootstrap_method(n_boot: int, seed: int, what: str = "rows") -> str:
    """How the report names a Poisson bootstrap interval over ``what``."""
    return f"percentile bootstrap, {n_boot} Poisson(1) resamples of the {what}, seed {seed}"


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n``.

    Unlike the normal approximation it stays in [0, 1] and keeps its coverage near 0 and 1,
    where good surrogates live. ``successes`` may be a non-integer (a mean of shares over
    ``n`` trials). With ``n <= 0`` the interval is the whole of [0, 1].

    Parameters
    ----------
    successes : float
        Count of successes.
    n : float
        Trials.
    confidence : float
        Level of the interval, in (0, 1).

    Returns
    -------
    (float, float)
        Lower and upper end; they always hold ``successes / n``.
    """
    if n <= 0:
        return (0.0, 1.0)
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval holds p exactly; at p = 0 or 1 rounding would leave an end a hair inside it.
    return (float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half))))


def wilson(successes: float, n: float, confidence: float = 0.95) -> list[float] | None:
    """:func:`wilson_interval` as a JSON pair ``[low, high]``, or None when ``n`` is 0 (the
    proportion is undefined, and so is its interval)."""
    if n <= 0:
        return None
    return list(wilson_interval(successes, n, confidence))


def percentile_interval(replicates: Any, estimate: float | None, confidence: float = 0.95) -> list[float] | None:
    """The percentile bootstrap interval ``[low, high]`` of some replicates.

    Replicates where the statistic is undefined (NaN) are left out. When the percentiles
    leave out the estimate itself (possible for a skewed statistic on few rows), the
    interval is stretched to hold it, so that a report never states an estimate outside its
    own interval.

    Parameters
    ----------
    replicates : array-like
        The statistic on each bootstrap replicate.
    estimate : float or None
        The statistic on the rows themselves; None gives None.
    confidence : float
        Level of the interval.

    Returns
    -------
    list of two floats, or None
        None when the estimate is undefined or fewer than two replicates are.
    """
    if estimate is None or not math.isfinite(estimate):
        return None
    r = np.asarray(replicates, dtype=float).ravel()
    r = r[np.isfinite(r)]
    if r.size < 2:
        return None
    lo, hi = np.quantile(r, [(1 - confidence) / 2, (1 + confidence) / 2])
    return [float(min(lo, estimate)), float(max(hi, estimate))]


def check_seed(random_state: Any) -> int:
    """A seed for :class:`PoissonBootstrap`: a non-negative integer, or None for a fresh one
    drawn from the operating system (then reported, so the run can be repeated)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, bool) or not isinstance(random_state, Integral) or random_state < 0:
        raise ParameterError(
            f"random_state must be a non-negative integer or None (the bootstrap weights are keyed on it), "
            f"got {random_state!r}"
        )
    return int(random_state)


def check_n_boot(n_boot: Any) -> int:
    """The number of bootstrap replicates: an integer of at least 2."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, Integral) or n_boot < 2:
        raise ParameterError(f"n_boot must be an integer >= 2 (bootstrap replicates), got {n_boot!r}")
    return int(n_boot)


def _poisson_steps() -> np.ndarray:
    # Inverse CDF of Poisson(1) at the midpoints of 2^16 equal cells of [0, 1): a 16-bit
    # uniform u gives the weight #{k >= 1 : u >= steps[k - 1]}, every probability within
    # 2^-16 of Poisson's. Counting steps passed is a few vectorised comparisons per weight,
    # far cheaper than sampling (or a table lookup).
    cdf, p, s = [], math.exp(-1.0), 0.0
    for k in range(1, 40):
        s += p
        cdf.append(s)
        p /= k
    weight = np.searchsorted(np.asarray(cdf), (np.arange(65536) + 0.5) / 65536, side="right")
    return np.searchsorted(weight, np.arange(1, int(weight.max()) + 1), side="left").astype(np.uint16)


_STEPS = _poisson_steps()


def poisson_weights(seed: int, block: int, rows: int, n_boot: int = N_BOOT) -> np.ndarray:
    """The Poisson(1) bootstrap weights of the first ``rows`` rows of one block.

    Row ``i`` of the whole evaluation is row ``i % BLOCK_ROWS`` of block ``i // BLOCK_ROWS``;
    its weights come from an SFC64 generator keyed on ``SeedSequence(seed,
    spawn_key=(block,))``, 16 bits per weight read position by position (replicates
    fastest, little-endian), turned into a weight by the inverse CDF of Poisson(1). They
    depend on nothing else: not on how the rows were chunked, nor on which process drew them.

    Returns
    -------
    ndarray of float32, shape (rows, n_boot)
    """
    return _weights(seed, block, rows, n_boot).copy()


_SCRATCH = threading.local()


def _weights(seed: int, block: int, rows: int, n_boot: int) -> np.ndarray:
    """:func:`poisson_weights` in this thread's scratch memory: valid until the next call.
    (Reusing the memory saves a fifth of the time, which fresh pages would cost.)"""
    need = rows * n_boot
    scratch = getattr(_SCRATCH, "buffers", None)
    if scratch is None or scratch[0].size < need:
        scratch = _SCRATCH.buffers = (np.empty(need, np.uint8), np.empty(need, bool), np.empty(need, np.float32))
    count, passed, out = (a[:need] for a in scratch)
    bits = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(block,)))
    u = bits.random_raw(-(-need // 4)).astype("<u8", copy=False).view("<u2")[:need]
    np.greater_equal(u, _STEPS[0], out=count.view(bool))
    for step in _STEPS[1:]:
        np.greater_equal(u, step, out=passed)
        np.add(count, passed.view(np.uint8), out=count)
    np.copyto(out, count)
    return out.reshape(rows, n_boot)


@dataclass(frozen=True)
class BootTotals:
    """Per-replicate totals of a :class:`PoissonBootstrap`: total weight ``sw`` (n_boot,),
    weighted mean of the tracked columns ``mean`` (n_boot, k), weighted sum of squares about
    that mean summed over the columns ``m2`` (n_boot,), and weighted sums of the other
    columns ``sums`` (n_boot, q)."""

    sw: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    sums: np.ndarray


def _combine(a: BootTotals, b: BootTotals) -> BootTotals:
    """The totals of two disjoint sets of rows (``a`` before ``b``), by the parallel update of
    means and sums of squares (Chan, Golub and LeVeque)."""
    sw = a.sw + b.sw
    fb = np.divide(b.sw, sw, out=np.zeros_like(sw), where=sw > 0)
    delta = b.mean - a.mean
    return BootTotals(
        sw=sw,
        mean=a.mean + delta * fb[:, None],
        m2=a.m2 + b.m2 + (delta**2).sum(axis=1) * a.sw * fb,
        sums=a.sums + b.sums,
    )


class PoissonBootstrap:
    """Poisson bootstrap sums over rows added by their position, in any chunks.

    Each row carries ``k`` tracked values ``y`` (whose spread about their weighted mean is
    kept, for R²) and ``q`` further values summed as they are (squared errors, counts). For
    every replicate the tally keeps the total weight, the weighted means of ``y``, the
    weighted sum of squares about them, and the weighted sums of the rest.

    Rows are gathered into blocks of :data:`BLOCK_ROWS` by position; a block is summed once
    all its rows are present (or at :meth:`totals`), and the blocks' sums are combined in a
    fixed binary tree over the block numbers. The totals therefore depend on the rows and
    the seed alone, never on the chunks they came in or the order tallies were merged.

    Parameters
    ----------
    k, q : int
        Number of tracked and of summed columns.
    n_boot : int
        Replicates.
    random_state : int
        Seed of the weights (see :func:`poisson_weights`).
    """

    def __init__(self, k: int, q: int, *, n_boot: int = N_BOOT, random_state: int = 0) -> None:
        self.k, self.q = int(k), int(q)
        self.n_boot = check_n_boot(n_boot)
        self.seed = check_seed(random_state)
        self._nodes: dict[tuple[int, int], BootTotals] = {}
        self._pending: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}

    # ---------------------------------------------------------------- adding rows
    def add(self, start: int, y: np.ndarray, extra: np.ndarray) -> None:
        """Add rows at positions ``start, start + 1, ...``: ``y`` (m, k) and ``extra`` (m, q)."""
        # Contiguous float64 rows: every block is then summed from the same memory layout.
        y = np.ascontiguousarray(y, dtype=float).reshape(len(y), self.k)
        extra = np.ascontiguousarray(extra, dtype=float).reshape(len(y), self.q)
        pos, end = int(start), int(start) + len(y)
        with one_blas_thread():
            while pos < end:
                block, off = divmod(pos, BLOCK_ROWS)
                stop = min(end, (block + 1) * BLOCK_ROWS)
                a, b = pos - start, stop - start
                if off == 0 and stop - pos == BLOCK_ROWS:
                    self._insert(self._nodes, 0, block, self._block(block, np.arange(BLOCK_ROWS), y[a:b], extra[a:b]))
                else:
                    self._pend(block, [(off, y[a:b].copy(), extra[a:b].copy())])
                pos = stop

    def merge(self, other: "PoissonBootstrap") -> None:
        """Add the rows of another bootstrap over other positions (in place)."""
        if (other.k, other.q, other.n_boot, other.seed) != (self.k, self.q, self.n_boot, self.seed):
            raise ParameterError(
                f"can only merge bootstraps with the same replicates and seed: {self.n_boot} replicates, seed "
                f"{self.seed} against {other.n_boot}, seed {other.seed}"
            )
        with one_blas_thread():
            for (level, index), node in sorted(other._nodes.items()):
                self._insert(self._nodes, level, index, node)
            for block, pieces in sorted(other._pending.items()):
                self._pend(block, pieces)

    def _pend(self, block: int, pieces: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        have = self._pending.setdefault(block, [])
        have.extend(pieces)
        if sum(len(p[1]) for p in have) == BLOCK_ROWS:
            del self._pending[block]
            self._insert(self._nodes, 0, block, self._assemble(block, have))

    def _assemble(self, block: int, pieces: list[tuple[int, np.ndarray, np.ndarray]]) -> BootTotals:
        pieces = sorted(pieces, key=lambda p: p[0])
        offsets = np.concatenate([np.arange(o, o + len(y)) for o, y, _ in pieces])
        return self._block(block, offsets, np.concatenate([p[1] for p in pieces]),
                           np.concatenate([p[2] for p in pieces]))

    def _block(self, block: int, offsets: np.ndarray, y: np.ndarray, extra: np.ndarray) -> BootTotals:
        """The totals of one block's rows (at ``offsets`` within the block, increasing)."""
        m, k = len(y), self.k
        centre = y.mean(axis=0)  # a shift that depends on the block's rows alone
        d = y - centre
        cols = np.empty((m, 2 + k + self.q), dtype=np.float32)
        cols[:, 0] = 1.0
        cols[:, 1:1 + k] = d
        cols[:, 1 + k] = (d**2).sum(axis=1)
        cols[:, 2 + k:] = extra
        if m == int(offsets[-1]) + 1:  # the first m rows of the block
            w = _weights(self.seed, block, m, self.n_boot)
        else:
            w = _weights(self.seed, block, int(offsets[-1]) + 1, self.n_boot)[offsets]
        s = (w.T @ cols).astype(np.float64)
        sw, s1, s2 = s[:, 0], s[:, 1:1 + k], s[:, 1 + k]
        safe = np.where(sw > 0, sw, 1.0)
        mean = centre[None, :] + s1 / safe[:, None]
        m2 = np.where(sw > 0, np.maximum(s2 - (s1**2).sum(axis=1) / safe, 0.0), 0.0)
        return BootTotals(sw=sw, mean=mean, m2=m2, sums=s[:, 2 + k:])

    @staticmethod
    def _insert(nodes: dict, level: int, index: int, node: BootTotals) -> None:
        # A node covers blocks [index << level, (index + 1) << level); two siblings become
        # their parent, always left + right, so every node's value is fixed by its blocks.
        while (level, index ^ 1) in nodes:
            sib = nodes.pop((level, index ^ 1))
            node = _combine(node, sib) if index % 2 == 0 else _combine(sib, node)
            level, index = level + 1, index >> 1
        nodes[(level, index)] = node

    # ---------------------------------------------------------------- reading
    def totals(self) -> BootTotals | None:
        """The per-replicate totals over every row added (None when there is none). The
        bootstrap is left as it was: more rows may be added afterwards."""
        nodes = dict(self._nodes)
        with one_blas_thread():
            for block, pieces in sorted(self._pending.items()):
                self._insert(nodes, 0, block, self._assemble(block, pieces))
        if not nodes:
            return None
        # Fold bottom-up: a node without a sibling has nothing after it at its level (the
        # rows end there) and passes up unchanged, so the root is the same fixed tree.
        level = 0
        while len(nodes) > 1:
            for lv, index in sorted(key for key in nodes if key[0] == level):
                if (lv, index) in nodes:
                    node = nodes.pop((lv, index))
                    sib = nodes.pop((lv, index ^ 1), None)
                    if sib is not None:
                        node = _combine(node, sib) if index % 2 == 0 else _combine(sib, node)
                    nodes[(lv + 1, index >> 1)] = node
            level += 1
        return next(iter(nodes.values()))

    def copy(self) -> "PoissonBootstrap":
        """An independent copy (nodes are never changed in place, so they are shared)."""
        new = PoissonBootstrap.__new__(PoissonBootstrap)
        new.k, new.q, new.n_boot, new.seed = self.k, self.q, self.n_boot, self.seed
        new._nodes = dict(self._nodes)
        new._pending = {b: list(p) for b, p in self._pending.items()}
        return new


def r2_replicates(t: BootTotals, sse: np.ndarray) -> np.ndarray:
    """R² of each replicate, ``1 - SSE / SST`` with SST the weighted sum of squares of the
    tracked columns about their mean; as scikit-learn's ``r2_score`` (and the estimate), a
    constant target gives 1 when matched exactly and 0 otherwise; NaN where the replicate
    holds less than two rows' weight."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(t.m2 > 0, 1 - sse / np.where(t.m2 > 0, t.m2, 1.0), np.where(sse == 0, 1.0, 0.0))
    return np.where(t.sw >= 2, r2, np.nan)
