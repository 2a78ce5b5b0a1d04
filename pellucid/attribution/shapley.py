"""Shapley values with the user's raw features as the players.

A row's Shapley value for a feature is its average contribution to the attributed output over
every order in which the features could be revealed. A feature that is not yet revealed takes
its value from a *background* row, and the output of a coalition ``S`` is the average over the
background rows ``z`` of the network's answer for the hybrid row ``(x_S, z_rest)``: the
*interventional* definition, that of shap's ``Independent`` masker, so the numbers can be set
beside shap's. It assumes the features can be set independently of one another; where they are
correlated, hybrids are rows the data never holds, and the values describe the network there.

Players are the raw features: the encoded columns a feature becomes (a categorical's indicator
columns, a numeric column's imputer and scaler outputs) move together. Every explained row and
every background row is encoded once; a hybrid is built by taking whole column blocks from one
or the other, so nothing is encoded again. ``groups=`` merges raw features into one player.

Methods
-------
``"exact"``
    Every coalition. For outputs that average linearly over the background (probability,
    raw), each background row is its own game in which the features where it equals the
    explained row do nothing; those players are left out, which changes no value (a Shapley
    value does not depend on null players) and costs far fewer model rows. For log-odds (the
    log-odds of the average probability, as shap's logit link) all coalitions are evaluated
    over the whole background.
``"permutation"``
    Antithetic permutations, shap's ``PermutationExplainer``: each permutation is walked
    forward (adding features) and backward (removing them in the same order); the standard
    error comes from the spread of the per-permutation estimates.
``"kernel"``
    KernelSHAP: coalitions drawn from the Shapley kernel in complementary pairs, values by the
    weighted least squares that keeps the values' sum equal to ``f(x) - base``; the standard
    error by resampling the pairs.
``"paired"``
    Sampled pairs of a background row and an order of the features, each walked forward and
    backward; every background row in the same number of pairs (``n_samples`` rounded up to a
    multiple of the background's size, default twice it), so the values add up exactly. Each
    pair is one background row's own game, so for outputs that average linearly over the
    background this estimates the same values as ``"exact"`` from far fewer model rows than
    ``"permutation"``, which averages every coalition over the whole background (on the demo's
    network, a quarter of the error for two thirds of the rows). The standard error comes from
    the spread between the pairs that share a background row.
``"auto"``
    For a torch network: exact up to :data:`EXACT_AUTO_MAX` players, permutation beyond. For
    any other model (each hybrid row one row through the model itself: a scikit-learn
    ensemble, an ONNX graph, a function): exact while a row's coalitions take at most
    :data:`EXACT_AUTO_ROWS` model rows (background rows × 2^players) and at most
    :data:`EXACT_AUTO_MAX` players; beyond, paired (permutation where the output does not
    average over the background). The choice depends on the model, the players and the
    background only, never on which rows are explained together.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import hashlib
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._validation import check_random_state
from ..errors import ModelError, ParameterError
from ..executor import one_blas_thread
from ..oracle import Oracle
from ._base import Attribution, eval_mode, placement, resolve_targets

__all__ = ["shapley", "shapley_values", "OUTPUTS", "SHAPLEY_METHODS", "EXACT_AUTO_MAX", "EXACT_AUTO_ROWS", "EXACT_MAX"]

OUTPUTS = ("probability", "log_odds", "margin", "raw")
SHAPLEY_METHODS = ("auto", "exact", "permutation", "kernel", "paired")
#: ``method="auto"`` enumerates every coalition up to this many players.
EXACT_AUTO_MAX = 14
#: ``method="auto"`` for a model other than a torch network: exact while background rows ×
#: 2**players, the model rows of one explained row's coalitions, stay within this (13
#: players and 100 background rows are 819,200 rows a row: a minute for 45 rows of a
#: scikit-learn ensemble).
EXACT_AUTO_ROWS = 2**16
#: ``method="exact"`` refuses more players than this (2**20 coalitions per row).
EXACT_MAX = 20
#: Background rows the registered method (:func:`shapley_values`) draws when given none.
DEFAULT_BACKGROUND = 100
_HYBRIDS = 2**16  # hybrid rows per model call by default
#: Explained rows per block: a step of the progress bar, and what one thread computes at a
#: time (:func:`_on_threads`); fixed, so that the blocks, and the values, are the same on any
#: machine.
_ROW_BLOCK = 8
#: Threads :func:`_on_threads` may use in this thread's context (None: one per core); work
#: that runs beside other work sets fewer (:class:`pellucid.pipeline.stages.EarlyAttributions`).
BLOCK_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("pellucid_block_threads", default=None)
#: An event that, once set, stops :func:`_on_threads` before its next block (with
#: :class:`Cancelled`): work on a thread of a run that has ended.
CANCEL: contextvars.ContextVar[Any] = contextvars.ContextVar("pellucid_cancel", default=None)
_PROB_FLOOR = 1e-12  # probabilities are kept inside [floor, 1 - floor] before log-odds
_BOOTSTRAP = 64  # resamples of the kernel's coalition pairs for its standard error


class Cancelled(BaseException):
    """Raised in work whose :data:`CANCEL` event was set (its run ended without it)."""


# ---------------------------------------------------------------------------- the game
@dataclass
class _Game:
    """The explained rows, the background, the engine that answers hybrids of the two, and the
    attributed output of each row and each background row (before the link)."""

    players: tuple[str, ...]
    n: int
    n_background: int
    engine: "_Engine"
    targets: np.ndarray | None  # the output column attributed per explained row
    fx: np.ndarray  # (n,)
    fz: np.ndarray  # (n, background): each background row's output for row r's target
    link: Callable[[np.ndarray], np.ndarray]
    linear: bool  # the coalition value is a plain mean over the background
    batch: int
    output: str
    keys: np.ndarray  # per explained row, what seeds its draws (from its label, not its position)

    @property
    def m(self) -> int:
        return len(self.players)

    def _targets(self, r: np.ndarray) -> np.ndarray | None:
        return None if self.targets is None else self.targets[r]

    def run(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The attributed output of each hybrid (``r``, ``b``, ``masks``), in model calls of at
        most ``batch`` rows."""
        out = np.empty(len(r), dtype=np.float64)
        for i in range(0, len(r), self.batch):
            j = slice(i, i + self.batch)
            out[j] = _pick(self.engine.hybrids(r[j], b[j], masks[j]), self._targets(r[j]))
        return out

    def run_pairs(self, r: np.ndarray, b: np.ndarray, players: np.ndarray, sub: np.ndarray) -> np.ndarray:
        """``(P, len(sub))``: every coalition ``sub`` of each pair's differing ``players``."""
        return self.engine.pair_values(r, b, players, sub, self._targets(r)).reshape(len(r), len(sub))

    def walks(self, rows: np.ndarray, background: np.ndarray, orders: np.ndarray) -> np.ndarray:
        """``(R, W, 2, m - 1)``: for each row and pair ``w`` (background row ``background[w]``,
        order ``orders[r, w]``), the attributed output with the first ``k`` players of the
        order from the row (``[..., 0, k - 1]``) and with all but them (``[..., 1, k - 1]``),
        ``k = 1..m-1``."""
        R, W, m = orders.shape
        if self.engine.pairs:
            return self.engine.walk_values(rows, background, orders, self._targets(rows)).reshape(R, W, 2, m - 1)
        first = np.zeros((R, W, m - 1, m), dtype=bool)
        first[np.arange(R)[:, None, None, None], np.arange(W)[None, :, None, None], np.arange(m - 1)[None, None, :, None],
              orders[:, :, None, :]] = np.tril(np.ones((m - 1, m), dtype=bool))[None, None]
        masks = np.stack([first, ~first], axis=2).reshape(-1, m)
        r = np.repeat(rows, W * 2 * (m - 1))
        b = np.tile(np.repeat(background, 2 * (m - 1)), R)
        return self.run(r, b, masks).reshape(R, W, 2, m - 1)

    def values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Coalition values ``(len(rows), C)`` for the masks ``(len(rows), C, m)``: the link of
        the mean answer over the background."""
        R, C, m = masks.shape
        B = self.n_background
        if self.engine.pairs:  # the first layer's shares, one row at a time
            out = np.empty((R, C))
            per = max(1, self.batch // B)
            for i, row in enumerate(rows):
                t = self._targets(np.array([row]))
                for c in range(0, C, per):
                    got = self.engine.coalition_hybrids(int(row), masks[i, c:c + per])
                    out[i, c:c + per] = _pick(got, None if t is None else np.repeat(t, len(got))).reshape(-1, B).mean(1)
        else:
            r = np.repeat(rows, C * B)
            b = np.tile(np.arange(B), R * C)
            full = np.repeat(masks.reshape(R * C, m), B, axis=0)
            out = self.run(r, b, full).reshape(R, C, B).mean(axis=2)
        # The empty and the full coalition are the background's and the row's own answers, as
        # the base value and f(x) are stated: the values then add up exactly.
        out = np.where(~masks.any(axis=2), self.fz[rows].mean(axis=1)[:, None], out)
        out = np.where(masks.all(axis=2), self.fx[rows][:, None], out)
        return self.link(out)

    def base(self, rows: np.ndarray) -> np.ndarray:
        return self.link(self.fz[rows].mean(axis=1))

    def full(self, rows: np.ndarray) -> np.ndarray:
        return self.link(self.fx[rows])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _PROB_FLOOR, 1 - _PROB_FLOOR)
    return np.log(p) - np.log1p(-p)


def _identity(v: np.ndarray) -> np.ndarray:
    return v


# ---------------------------------------------------------------------------- public API
def shapley(model: Any, inputs: Any, background: Any, target: Any = None, *, method: str = "auto",
            n_samples: int | None = None, output: str | None = None,
            groups: Mapping[str, Sequence[str]] | None = None, batch_size: int | None = None,
            random_state: Any = None) -> Attribution:
    """Interventional Shapley values of each row's attributed output on the raw features.

    Parameters
    ----------
    model : Oracle or torch.nn.Module
        An :class:`~pellucid.Oracle` of any kind (torch, scikit-learn, ONNX, callable), with
        its preprocess; or a bare torch module on model-input arrays (each input column a
        player).
    inputs : DataFrame, ndarray or Tensor
        The rows explained: raw rows for an Oracle, model input for a bare module.
    background : DataFrame, ndarray or Tensor
        At least 2 rows in the inputs' form (same columns) whose values stand in for the
        features a coalition leaves out; 100 rows of the training table is usual.
    target : None, int, class label or one per row
        The output explained; None: each row's predicted class (or the single output).
    method : {"auto", "exact", "permutation", "kernel", "paired"}
        See the module's notes. ``"auto"``: exact up to 14 players, permutation beyond, for a
        torch network; for another model exact while 2**players × background rows stay
        within :data:`EXACT_AUTO_ROWS` model rows per explained row, paired beyond.
    n_samples : int, optional
        Sampled methods: coalitions evaluated per row (each averaged over the background),
        as shap's ``max_evals``. Default 500 for permutation (at least 2 permutations) and
        ``2 * players + 2048`` for kernel. For ``"paired"``: pairs of a background row and an
        order per row, rounded up to a multiple of the background rows (default twice their
        number); each costs ``2 * (players - 1)`` model rows.
    output : {"probability", "log_odds", "margin", "raw"}, optional
        The scale explained: the class probability, its log-odds (of the background-averaged
        probability, as shap's logit link), the margin (each hybrid's own log-odds of the
        class, averaged over the background: the values add up to the row's log-odds minus the
        background's mean log-odds; from a torch network's logits, exact at any confidence) or
        the torch module's own output (its logit).
        Default: "probability" for a classifying Oracle, "raw" for a bare module or a
        regression.
    groups : mapping of str to list of str, optional
        Raw features merged into one player, e.g. ``{"bureau": ["delinquencies",
        "credit_lines"]}``; features in no group stay players of their own.
    batch_size : int, optional
        Hybrid rows per model call (default 65,536).
    random_state : int, Generator or None
        Seeds the sampled methods; the same seed gives the same values for a row whatever the
        other rows explained with it.

    Returns
    -------
    Attribution
        ``values`` ``(rows, players)`` on the chosen scale, ``base_value`` (the output with
        every feature from the background), ``delta`` the additivity error
        ``sum(values) + base_value - f(x)`` per row, ``standard_error`` per value for sampled
        methods (zeros for exact ones), and in ``params`` the method, the scale, the number of
        background rows and how hybrids were built (``path``). The model rows it took are the
        Oracle's ``n_queries``.

    Raises
    ------
    ParameterError
        A background of other columns or fewer than 2 rows, a group naming an unknown
        feature, more players than ``method="exact"`` can enumerate, an unknown method or
        output, ``"paired"`` on ``output="log_odds"`` (whose coalition value is not a mean
        over the background).
    """
    if method not in SHAPLEY_METHODS:
        raise ParameterError(f"method must be one of {list(SHAPLEY_METHODS)}; got {method!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise ParameterError(f"batch_size must be a positive integer; got {batch_size!r}")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer))
                                  or n_samples < 1):
        raise ParameterError(f"n_samples must be a positive whole number of coalitions; got {n_samples!r}")
    if output is not None and output not in OUTPUTS:
        raise ParameterError(f"output must be one of {list(OUTPUTS)}; got {output!r}")
    game, targets, features = _game(model, inputs, background, target, output, groups, batch_size or _HYBRIDS)
    m = game.m
    if method == "auto":
        method = _auto_method(game)
    if method == "exact" and m > EXACT_MAX:
        raise ParameterError(f"method='exact' enumerates 2**{m} coalitions per row for {m} players, more than "
                             f"2**{EXACT_MAX}; use method='permutation' or 'kernel', or merge features with groups=")
    if method == "paired" and not game.linear:
        raise ParameterError("method='paired' averages each background row's own game, which needs an output that "
                             "averages over the background: output='margin' (log-odds per hybrid) or 'probability'")
    rows = np.arange(game.n)
    seed = _seed(random_state)
    n_perm = max(2, (n_samples or 500) // (2 * m))
    budget = n_samples or 2 * m + 2048
    phi, se = np.zeros((game.n, m)), np.zeros((game.n, m))
    per_background = max(1, -(-(n_samples or 2 * game.n_background) // game.n_background))
    info: dict[str, Any] = {"permutations": n_perm} if method == "permutation" else \
        {"pairs": per_background * game.n_background} if method == "paired" else {}
    # Rows in blocks, for a progress bar where someone watches: a row's values do not depend on
    # the rows explained with it, so the blocks change nothing.
    blocks = [rows[i:i + _ROW_BLOCK] for i in range(0, game.n, _ROW_BLOCK)]
    oracle = model if isinstance(model, Oracle) else None
    quiet = len(blocks) < 3 or not sys.stderr.isatty() or (oracle is not None and oracle.verbose <= 0)
    def block_values(block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any] | None]:
        if method == "exact":
            return (_exact_pairs(game, block) if game.linear else _exact_all(game, block)), None, None
        if method == "permutation":
            return (*_permutation(game, block, n_perm, seed), None)
        if method == "paired":
            return (*_paired(game, block, per_background, seed), None)
        return _kernel(game, block, budget, seed)

    # One BLAS thread for numpy's products between the model's calls: idle BLAS threads spin on
    # the cores that torch's next call needs (twice as slow on 2 cores), and the small products
    # gain nothing from more.
    with one_blas_thread():
        found = _on_threads(block_values, blocks, game, desc=f"Shapley values ({method})", quiet=quiet)
    for block, (p, e, i) in zip(blocks, found):
        phi[block] = p
        if e is not None:
            se[block] = e
        if i is not None:
            info = i
    base = game.base(rows)
    fx = game.full(rows)
    delta = phi.sum(axis=1) + base - fx
    return Attribution(
        values=phi, method="shapley", features=features, targets=targets, outputs=fx, encoded=phi,
        delta=delta, base_value=base, standard_error=se,
        params={"shapley_method": method, "output": game.output, "background_rows": game.n_background,
                "players": list(game.players), "path": game.engine.path,
                "definition": "interventional", **info},
    )


def _auto_method(game: "_Game") -> str:
    """What ``method="auto"`` computes (see the module's notes)."""
    m = game.m
    if isinstance(game.engine, _TensorEngine):
        return "exact" if m <= EXACT_AUTO_MAX else "permutation"
    if m <= EXACT_AUTO_MAX and game.n_background * 2**m <= EXACT_AUTO_ROWS:
        return "exact"
    return "paired" if game.linear else "permutation"


def _on_threads(fn: Callable[[np.ndarray], Any], blocks: list[np.ndarray], game: "_Game", desc: str,
                quiet: bool) -> list[Any]:
    """``[fn(block) for block in blocks]``: on one thread per core this process may use (or
    :data:`BLOCK_THREADS`) when the network is a torch module read through its layers
    (:class:`_TensorEngine`) and torch runs each operation on one thread (as ``explain`` sets it
    for Shapley values), else one block after another here. Each block is computed as it would
    be alone, with the same operations on the same rows, so the values do not depend on the
    number of threads; the network's products release the interpreter, so the threads run on
    the cores at once. The module stays in eval mode for the whole map (not entered and left
    by each thread)."""
    from ..executor import cores

    one_op_thread = torch.get_num_threads() == 1
    n = min(len(blocks), BLOCK_THREADS.get() or cores()) if one_op_thread and isinstance(game.engine, _TensorEngine) \
        else 1
    cancel = CANCEL.get()

    def checked(block: np.ndarray) -> Any:
        if cancel is not None and cancel.is_set():
            raise Cancelled("the run this work belonged to has ended")
        return fn(block)

    if n < 2:
        return [checked(b) for b in tqdm(blocks, desc=desc, unit="block", disable=quiet, leave=False)]
    module = getattr(game.engine, "module", None)

    def one_thread(block: np.ndarray) -> Any:
        torch.set_num_threads(1)  # this thread's own setting too, where torch keeps one per thread
        return checked(block)

    with eval_mode(module) if isinstance(module, torch.nn.Module) else contextlib.nullcontext(), \
            concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="pellucid-shapley") as pool:
        return list(tqdm(pool.map(one_thread, blocks), total=len(blocks), desc=desc, unit="block", disable=quiet,
                         leave=False))


def shapley_values(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
                   batch_size: int | None = None, random_state: Any = None, reference: Any = None,
                   shapley_method: str = "auto", n_samples: int | None = None, output: str | None = None,
                   groups: Mapping[str, Sequence[str]] | None = None,
                   background_rows: int = DEFAULT_BACKGROUND) -> Attribution:
    """:func:`shapley` with the signature every registered method has.

    ``baseline`` is the background (rows in the inputs' form); None draws
    ``background_rows`` rows (100) from ``reference`` (else the inputs) with ``random_state``.
    ``shapley_method`` is :func:`shapley`'s ``method`` (the name ``method`` is the registry's,
    e.g. :func:`pellucid.cluster.attribute`'s).
    """
    if baseline is None:
        source = reference if reference is not None else inputs
        n = len(source)
        if n < 2:
            raise ParameterError(f"Shapley values need at least 2 background rows; the "
                                 f"{'reference' if reference is not None else 'inputs'} has {n}")
        rng = np.random.default_rng(_seed(random_state))
        pick = np.sort(rng.choice(n, size=min(background_rows, n), replace=False))
        baseline = source.iloc[pick] if isinstance(source, pd.DataFrame) else source[pick]
    elif isinstance(baseline, str):
        raise ParameterError(f"Shapley values take background rows as the baseline, not {baseline!r}")
    return shapley(model, inputs, baseline, target, method=shapley_method, n_samples=n_samples, output=output,
                   groups=groups, batch_size=batch_size, random_state=random_state)


def _seed(random_state: Any) -> int:
    """One integer seed from None, a whole number, a numpy RandomState, SeedSequence or Generator."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(check_random_state(random_state).integers(2**31 - 1))


def _row_rng(seed: int, row: int, *stream: int) -> np.random.Generator:
    """One generator per explained row (and stream), so a row's draws do not depend on the
    rows explained with it."""
    return np.random.default_rng([seed, int(row), *stream])


# ---------------------------------------------------------------------------- building the game
def _game(model: Any, inputs: Any, background: Any, target: Any, output: str | None,
          groups: Mapping[str, Sequence[str]] | None, batch: int) -> tuple[_Game, np.ndarray | None, tuple]:
    oracle = model if isinstance(model, Oracle) else None
    if oracle is None and not isinstance(model, torch.nn.Module):
        raise ModelError(f"Shapley values need a pellucid Oracle or a torch.nn.Module; got {type(model).__name__}")
    raw = isinstance(inputs, pd.DataFrame) or (oracle is not None and oracle.kind != "torch"
                                               and not isinstance(inputs, torch.Tensor))
    if raw and oracle is None:
        raise ParameterError("raw rows (a DataFrame) need an Oracle with the preprocess that encodes them; a bare "
                             "module takes its own input as an array or tensor")
    X, Z, names = _rows(inputs, background, raw)
    if oracle is not None and oracle.resolved_task is None:  # one row's answer fixes the task and classes
        if raw:
            oracle.query(X.iloc[:1])
        else:
            oracle.forward(torch.as_tensor(X[:1]), grad=False)
    output = _output(oracle, output)
    players, feat_player = _players(names, groups)
    engine: _Engine
    if oracle is not None and raw:
        engine = _oracle_engine(oracle, X, Z, feat_player, output)
    else:
        engine = _TensorEngine(model, X, Z, feat_player, output, path="model input")
    # Each row's output and target, then every background row's answer for that target.
    full_out = engine.outputs(None)
    targets_t = resolve_targets(target, torch.as_tensor(full_out), len(X), oracle)
    targets = None if targets_t is None else targets_t.numpy()
    fx = _pick(full_out, targets)
    z_out = engine.outputs("background")
    fz = np.broadcast_to(_pick(z_out, None), (len(X), len(z_out))) if z_out.ndim == 1 or targets is None \
        else z_out[:, targets].T
    game = _Game(players=players, n=len(X), n_background=len(Z), engine=engine, targets=targets,
                 fx=np.asarray(fx, dtype=np.float64), fz=np.asarray(fz, dtype=np.float64),
                 link=_logit if output == "log_odds" else _identity, linear=output != "log_odds", batch=batch,
                 output=output, keys=_row_keys(inputs, len(X)))
    return game, targets, players


def _output(oracle: Oracle | None, output: str | None) -> str:
    """The scale explained, checked against what the model can give."""
    regression = oracle is not None and oracle.task == "regression"
    if regression and output not in (None, "raw"):
        raise ParameterError(f"output={output!r} needs class probabilities; this model is a regressor (use 'raw')")
    if oracle is None and output not in (None, "raw"):
        raise ParameterError(f"a bare torch module gives its own output; output={output!r} needs an Oracle that "
                             "knows its classes (or use output='raw')")
    if output == "raw" and oracle is not None and oracle.kind != "torch" and not regression:
        raise ParameterError(f"output='raw' is a torch network's own output; this oracle wraps a {oracle.kind} "
                             "model: use 'probability' or 'log_odds'")
    return output or ("raw" if oracle is None or regression else "probability")


def _pick(out: np.ndarray, t: np.ndarray | None) -> np.ndarray:
    """The attributed output per row of ``out`` ``(n, k)`` or ``(n,)``, ``t`` the column per row."""
    if out.ndim == 1:
        return out
    if t is None:
        if out.shape[1] != 1:
            raise ParameterError(f"the model gives {out.shape[1]} outputs per row; pass target= to pick one")
        return out[:, 0]
    return out[np.arange(len(out)), t]


def _row_keys(inputs: Any, n: int) -> np.ndarray:
    """Per row, a number from its label (a DataFrame's index, else its position), so that a
    row's draws are the same whichever rows are explained with it."""
    labels = inputs.index if isinstance(inputs, pd.DataFrame) else range(n)
    return np.array([int.from_bytes(hashlib.sha256(repr(label).encode()).digest()[:4], "little")
                     for label in labels], dtype=np.int64)


def _rows(inputs: Any, background: Any, raw: bool) -> tuple[Any, Any, tuple[str, ...]]:
    """Inputs and background in one form, checked against each other."""
    if raw:
        X = inputs if isinstance(inputs, pd.DataFrame) else pd.DataFrame(np.asarray(inputs, dtype=object))
        if isinstance(background, pd.Series):
            background = background.to_frame().T
        if not isinstance(background, pd.DataFrame):
            raise ParameterError(f"background must be a DataFrame of raw rows like the inputs; got "
                                 f"{type(background).__name__}")
        names = tuple(str(c) for c in X.columns)
        bnames = tuple(str(c) for c in background.columns)
        if bnames != names:
            missing = [c for c in names if c not in bnames]
            extra = [c for c in bnames if c not in names]
            detail = "; ".join(p for p in (f"missing {missing[:12]}" if missing else "",
                                           f"not in the inputs {extra[:12]}" if extra else "",
                                           "in another order" if not missing and not extra else "") if p)
            raise ParameterError(f"background has columns other than the inputs' ({detail}); give background rows "
                                 "with the inputs' columns, e.g. a sample of the training table")
        Z = background.reset_index(drop=True)
        X = X.reset_index(drop=True)
    else:
        X = _array(inputs, "inputs")
        Z = _array(background, "background")
        if Z.ndim == 1 and X.ndim == 2 and Z.shape[0] == X.shape[1]:
            Z = Z[None]
        if X.ndim != 2 or Z.ndim != 2 or Z.shape[1] != X.shape[1]:
            raise ParameterError(f"background has shape {tuple(Z.shape)}; the inputs have shape {tuple(X.shape)} "
                                 "(Shapley values need tabular rows with the same columns)")
        names = tuple(f"x{i}" for i in range(X.shape[1]))
    if len(X) == 0:
        raise ParameterError("inputs has no rows")
    if len(Z) < 2:
        raise ParameterError(f"background has {len(Z)} row(s); Shapley values average over at least 2 background "
                             "rows (100 rows of the training table is usual)")
    return X, Z, names


def _array(rows: Any, what: str) -> np.ndarray:
    if isinstance(rows, torch.Tensor):
        return rows.detach().cpu().numpy()
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"{what} must be numbers in the model's input form ({e})") from None
    if not np.isfinite(arr).all():
        raise ParameterError(f"{what} has NaN or infinite values; give the model's input, or raw rows with an Oracle")
    return arr


def _players(names: tuple[str, ...], groups: Mapping[str, Sequence[str]] | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Player names and, per raw feature, its player's index."""
    if groups is None:
        return names, np.arange(len(names))
    if not isinstance(groups, Mapping):
        raise ParameterError(f"groups must map a group's name to the raw features it merges; got "
                             f"{type(groups).__name__}")
    owner: dict[str, str] = {}
    for g, members in groups.items():
        if isinstance(members, str) or not isinstance(members, Sequence) or not len(members):
            raise ParameterError(f"group {g!r} must list the raw features it merges; got {members!r}")
        for f in members:
            if str(f) not in names:
                raise ParameterError(f"group {g!r} names {f!r}, which is not a feature; the features are "
                                     f"{list(names)[:40]}")
            if str(f) in owner:
                raise ParameterError(f"feature {f!r} is in groups {owner[str(f)]!r} and {g!r}; a feature belongs to "
                                     "one group")
            owner[str(f)] = str(g)
        if str(g) in names and str(g) not in [str(f) for f in members]:
            raise ParameterError(f"group name {g!r} is also a feature's name; name the group otherwise")
    players: list[str] = []
    index = np.empty(len(names), dtype=np.int64)
    for i, f in enumerate(names):
        p = owner.get(f, f)
        if p not in players:
            players.append(p)
        index[i] = players.index(p)
    return tuple(players), index


# ---------------------------------------------------------------------------- engines
class _Engine:
    """Answers the explained rows, the background rows and hybrids of the two.

    ``hybrids(r, b, masks)``: the model's outputs ``(T, k)`` or ``(T,)`` for the rows that take
    the players in ``masks[t]`` from explained row ``r[t]`` and the rest from background row
    ``b[t]``. ``same(rows)``: ``(rows, background, players)``, whether the row and the
    background row hold the same values for the player.
    """

    path = ""
    m = 0

    def outputs(self, which: str | None) -> np.ndarray:
        raise NotImplementedError

    def hybrids(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def same(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: Whether :meth:`pair_values` and :meth:`coalition_hybrids` answer coalitions from a
    #: first linear layer's per-player shares, faster than building every hybrid row.
    pairs = False

    def pair_values(self, r: np.ndarray, b: np.ndarray, players: np.ndarray, sub: np.ndarray,
                    targets: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def coalition_hybrids(self, r: int, masks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def walk_values(self, r: np.ndarray, background: np.ndarray, orders: np.ndarray,
                    targets: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


def _same_blocks(XE: np.ndarray, ZE: np.ndarray, col_player: np.ndarray, m: int, rows: np.ndarray) -> np.ndarray:
    onehot = np.zeros((XE.shape[1], m), dtype=np.float32)
    onehot[np.arange(XE.shape[1]), col_player] = 1.0
    diff = (XE[rows][:, None, :] != ZE[None, :, :]).astype(np.float32)
    return (diff @ onehot) == 0


#: The TorchScript types of the layers :func:`_eager_copy` rebuilds, as torch names them (a
#: repeated type gets a ``___torch_mangle_N`` segment, left out here).
_SCRIPTED = {"__torch__.torch.nn.modules.linear.Linear": "linear", "__torch__.torch.nn.modules.activation.ReLU": "relu"}


def _eager_copy(module: Any, probes: Sequence[torch.Tensor]) -> torch.nn.Sequential | None:
    """A TorchScript ``nn.Sequential`` of ``Linear`` and ``ReLU`` layers (a script or a loaded
    ``.pt`` file) as the same layers in eager modules, with copies of its parameters, when it
    answers every row of ``probes`` as the script does, bit for bit; None otherwise. The pairs'
    first-layer shortcut reads a network's layers, which a script hides."""
    if not isinstance(module, torch.jit.RecursiveScriptModule) or module.original_name != "Sequential":
        return None
    layers: list[torch.nn.Module] = []
    for child in module.children():
        if not isinstance(child, torch.jit.RecursiveScriptModule):
            return None
        kind = _SCRIPTED.get(re.sub(r"\.___torch_mangle_\d+", "", child._c._type().qualified_name()))
        if kind == "relu":
            layers.append(torch.nn.ReLU())
        elif kind == "linear":
            weight, bias = child.weight.detach(), child.bias
            layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device,
                                    dtype=weight.dtype)
            with torch.no_grad():
                layer.weight.copy_(weight)
                if bias is not None:
                    layer.bias.copy_(bias.detach())
            layers.append(layer)
        else:
            return None
    if len(layers) < 2:
        return None
    eager = torch.nn.Sequential(*layers).train(module.training)
    with eval_mode(module), eval_mode(eager), torch.no_grad():
        if not all(torch.equal(module(x), eager(x)) for x in probes):
            return None
    return eager


def _first_linear(module: Any) -> tuple[torch.nn.Linear, torch.nn.Module] | None:
    """``(first layer, the rest)`` of an eager ``nn.Sequential`` that starts with a hook-free
    ``nn.Linear``; None otherwise."""
    if type(module) is not torch.nn.Sequential or len(module) < 2:
        return None
    first = module[0]
    if type(first) is not torch.nn.Linear or first._forward_hooks or first._forward_pre_hooks \
            or module._forward_hooks or module._forward_pre_hooks:
        return None
    return first, module[1:]


class _TensorEngine(_Engine):
    """A torch network on encoded rows: hybrids by taking whole column blocks from the row or
    the background row. When the network starts with a linear layer, all coalitions of a row
    pair are answered from that layer's per-player contributions (one small matrix product per
    pair instead of the first layer on every hybrid)."""

    #: A pair's coalitions go through the first layer's contributions from this many players up.
    PAIR_MIN_PLAYERS = 6

    def __init__(self, model: Any, X: np.ndarray, Z: np.ndarray, col_player: np.ndarray, output: str,
                 path: str) -> None:
        self.oracle = model if isinstance(model, Oracle) else None
        self.module = self.oracle.model if self.oracle is not None else model
        device, dtype = placement(model)
        self.XE, self.ZE = np.asarray(X), np.asarray(Z)
        self.X = torch.as_tensor(self.XE, dtype=dtype, device=device)
        self.Z = torch.as_tensor(self.ZE, dtype=dtype, device=device)
        # A script of plain layers: its eager twin, checked to answer these rows as it does.
        self.module = _eager_copy(self.module, (self.X, self.Z)) or self.module
        self.col_player = np.asarray(col_player)
        self.col_player_t = torch.as_tensor(self.col_player, device=device)
        self.m = int(self.col_player.max()) + 1
        self.output = output
        self.path = path
        split = None if self.oracle is not None and self.oracle.kind != "torch" else _first_linear(self.module)
        self.pairs = split is not None
        if split is not None:
            self.first, self.rest = split
            # A ReLU right after the first layer runs in place on the sums (one pass less over them).
            self.relu = type(self.rest[0]) is torch.nn.ReLU
            if self.relu:
                self.rest = self.rest[1:]
            onehot = torch.zeros(self.X.shape[1], self.m, dtype=dtype, device=device)
            onehot[torch.arange(self.X.shape[1]), self.col_player_t] = 1
            self.onehot = onehot

    @functools.cached_property
    def tail(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor | None] | None], torch.Tensor,
                                 torch.Tensor] | None:
        """For a two-logit classifier explained on the probability or margin scale whose later layers are
        plain ``nn.Linear`` and ``nn.ReLU`` modules: those layers (``(W, b)``, or None for a
        ReLU), and the last layer folded into the gap of its two logits (``w``, ``c``). The
        hybrids then need one column out of the last layer instead of two, and no softmax.
        Read at the first pair, once the oracle's first answer has fixed its output mode."""
        if self.oracle is None or self.output not in ("probability", "margin") or not self.oracle.two_logits:
            return None
        rest = list(self.rest)
        if not rest or any(m._forward_hooks or m._forward_pre_hooks for m in [self.rest, *rest]):
            return None
        layers: list[tuple[torch.Tensor, torch.Tensor | None] | None] = []
        for m in rest:
            if type(m) is torch.nn.ReLU:
                layers.append(None)
            elif type(m) is torch.nn.Linear:
                layers.append((m.weight.detach(), None if m.bias is None else m.bias.detach()))
            else:
                return None
        last = layers.pop()
        if last is None or last[0].shape[0] != 2:
            return None
        W, bias = last
        c = torch.zeros((), dtype=W.dtype, device=W.device) if bias is None else bias[1] - bias[0]
        return layers, W[1] - W[0], c

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        """The module's output as the explained scale: the Oracle's answer, or its own output."""
        if self.oracle is not None and self.output == "margin":
            return self.oracle.answer_log_odds(out)
        if self.oracle is not None and self.output != "raw":
            return self.oracle.answer_output(out)
        if self.oracle is not None and self.oracle.task == "classification" and (out.dim() == 1 or out.shape[1] == 1):
            z = out.reshape(-1, 1)  # one logit: class 1 is z, class 0 is -z (as LRP reads it)
            return torch.cat([-z, z], dim=1)
        return out

    def _run(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> np.ndarray:
        with eval_mode(self.module), torch.no_grad():
            parts = [self._finish(fn(x[i:i + _HYBRIDS])) for i in range(0, x.shape[0], _HYBRIDS)]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return out.to("cpu", torch.float64).numpy()

    def outputs(self, which: str | None) -> np.ndarray:
        return self._run(self.module, self.Z if which == "background" else self.X)

    def hybrids(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        dev = self.X.device
        cm = torch.as_tensor(np.ascontiguousarray(masks), device=dev)[:, self.col_player_t]
        h = torch.where(cm, self.X[torch.as_tensor(r, device=dev)], self.Z[torch.as_tensor(b, device=dev)])
        return self._run(self.module, h)

    def same(self, rows: np.ndarray) -> np.ndarray:
        return _same_blocks(self.XE, self.ZE, self.col_player, self.m, rows)

    def _shares(self, xr: torch.Tensor, zb: torch.Tensor, players: torch.Tensor) -> torch.Tensor:
        """Each player's share ``(P, d, H)`` of the first layer's change from ``zb`` to ``xr``
        (rows ``(P, E)``; ``players`` ``(P, d)``, or ``(d,)`` for the same players in every pair)."""
        own = self.onehot[:, players]  # (E, P, d) or (E, d)
        own = own.permute(1, 2, 0) if own.dim() == 3 else own.T[None]
        return (own * (xr - zb)[:, None, :]) @ self.first.weight.T

    def _start(self, zb: torch.Tensor) -> torch.Tensor:
        """The first layer's output ``(P, H)`` on the background rows ``zb``."""
        bias = self.first.bias
        return zb @ self.first.weight.T if bias is None else torch.addmm(bias, zb, self.first.weight.T)

    def pair_values(self, r: np.ndarray, b: np.ndarray, players: np.ndarray, sub: np.ndarray,
                    targets: np.ndarray | None) -> np.ndarray:
        """The attributed output ``(P * 2**d,)`` of every coalition of each pair's differing
        ``players`` ``(P, d)``, pair by pair, coalition ``k`` holding the players of the bits set
        in ``k`` (``sub`` is that table); ``targets`` the output column of each pair's row."""
        dev = self.X.device
        P, d = players.shape
        lo = d // 2  # coalitions as (high bits, low bits): two small sums added by broadcasting
        with torch.no_grad():
            xr = self.X[torch.as_tensor(r, device=dev)]
            zb = self.Z[torch.as_tensor(b, device=dev)]
            share = self._shares(xr, zb, torch.as_tensor(players, device=dev))
            low = _subset_sums(share[:, :lo], lo)  # (P, 2**lo, H)
            high = _subset_sums(share[:, lo:], d - lo)  # (P, 2**(d-lo), H)
            h = (self._start(zb)[:, None, None, :] + high[:, :, None, :]) + low[:, None, :, :]
            h = self._activate(h.reshape(P * 2**d, -1))
            if self.tail is not None and targets is not None:
                return self._gap_values(h, targets, 2**d)
        return _pick(self._run(self.rest, h), None if targets is None else np.repeat(targets, 2**d))

    def _gap_values(self, h: torch.Tensor, targets: np.ndarray, per: int) -> np.ndarray:
        """:attr:`tail`'s layers on the first layer's activations ``h`` (this call's own, under
        :meth:`pair_values`'s ``no_grad``), ``per`` rows for each target, as the probability of
        that target (or its log-odds, on the margin scale)."""
        layers, w, c = self.tail
        for layer in layers:
            if layer is None:
                h = h.relu_()
            else:
                W, bias = layer
                h = h @ W.T if bias is None else torch.addmm(bias, h, W.T)
        gap = torch.addmv(c, h, w).view(-1, per)
        sign = torch.as_tensor(np.where(np.asarray(targets) == 1, 1.0, -1.0), dtype=gap.dtype, device=gap.device)
        p = self.oracle.answer_gap((gap * sign[:, None]).reshape(-1), log_odds=self.output == "margin")
        return p.to("cpu", torch.float64).numpy()

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        return h.relu_() if self.relu else h

    def walk_values(self, r: np.ndarray, background: np.ndarray, orders: np.ndarray,
                    targets: np.ndarray | None) -> np.ndarray:
        """:meth:`_Game.walks` from the first layer's per-player shares: along an order the
        first layer's sums are running sums of the shares, so no hybrid row is built. The
        backward walk adds the order's players from its end (``N - order[:k]`` holds the last
        ``m - k``)."""
        dev = self.X.device
        R, W, m = orders.shape
        B = self.Z.shape[0]
        per = W * 2 * (m - 1)
        with torch.no_grad():
            xr = self.X[torch.as_tensor(r, device=dev)]
            share = self._shares(xr.repeat_interleave(B, dim=0), self.Z.repeat(R, 1), torch.arange(m, device=dev))
            H = share.shape[2]
            # player m: the background row's own first-layer output, where every walk starts
            share = torch.cat([share, self._start(self.Z).repeat(R, 1)[:, None]], dim=1).view(R, B, m + 1, H)
            start = np.full((R, W, 1), m)
            steps = np.stack([np.concatenate([start, orders[:, :, :m - 1]], axis=2),
                              np.concatenate([start, orders[:, :, :0:-1]], axis=2)], axis=2)  # (R, W, 2, m)
            bg = torch.as_tensor(background, device=dev)
            h = share[torch.arange(R, device=dev)[:, None, None, None], bg[None, :, None, None],
                      torch.as_tensor(steps, device=dev)]  # (R, W, 2, m, H)
            h = self._activate(h.cumsum_(dim=3)[:, :, :, 1:].reshape(R * per, H))
            if self.tail is not None and targets is not None:
                out = self._gap_values(h, targets, per)
            else:
                out = _pick(self._run(self.rest, h), None if targets is None else np.repeat(targets, per))
        out = out.reshape(R, W, 2, m - 1)
        out[:, :, 1] = out[:, :, 1, ::-1].copy()  # the backward walk by k: all but order[:k]
        return out

    def coalition_hybrids(self, r: int, masks: np.ndarray) -> np.ndarray:
        """Outputs ``(C * B, ...)`` of row ``r`` with every background row under each coalition
        ``masks`` ``(C, m)``, coalition by coalition."""
        dev, dtype = self.X.device, self.X.dtype
        B = self.Z.shape[0]
        with torch.no_grad():
            share = self._shares(self.X[r].expand(B, -1), self.Z, torch.arange(self.m, device=dev))  # (B, m, H)
            H = share.shape[2]
            coalitions = torch.tensor(np.ascontiguousarray(masks), dtype=dtype, device=dev)
            gain = coalitions @ share.permute(1, 0, 2).reshape(self.m, B * H)
            h = gain.reshape(len(masks), B, H) + self._start(self.Z)[None]
        return self._run(self.rest, self._activate(h.reshape(len(masks) * B, H)))


def _subset_sums(share: torch.Tensor, d: int) -> torch.Tensor:
    """``(P, 2**d, H)``: for each coalition ``k`` of the ``d`` players, the sum of the shares of
    the players of the bits set in ``k``."""
    out = torch.zeros((share.shape[0], 1, share.shape[2]), dtype=share.dtype, device=share.device)
    for j in range(d):  # doubling: the coalitions without player j, then with it
        out = torch.cat([out, out + share[:, j:j + 1]], dim=1)
    return out


class _ArrayEngine(_Engine):
    """Any Oracle on encoded rows: hybrids of column blocks, answered by ``query_encoded``."""

    path = "encoded blocks"

    def __init__(self, oracle: Oracle, XE: np.ndarray, ZE: np.ndarray, col_player: np.ndarray, output: str) -> None:
        self.oracle, self.XE, self.ZE, self.col_player = oracle, XE, ZE, col_player
        self.m = int(col_player.max()) + 1
        self.scale = _logit if output == "margin" else _identity

    def outputs(self, which: str | None) -> np.ndarray:
        return self.scale(self.oracle.query_encoded(self.ZE if which == "background" else self.XE))

    def hybrids(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return self.scale(self.oracle.query_encoded(np.where(masks[:, self.col_player], self.XE[r], self.ZE[b])))

    def same(self, rows: np.ndarray) -> np.ndarray:
        return _same_blocks(self.XE, self.ZE, self.col_player, self.m, rows)


class _FrameEngine(_Engine):
    """Any Oracle on raw rows: hybrids of raw values, encoded by the Oracle (when encoded
    columns mix raw features, or the model takes raw rows itself)."""

    path = "raw rows"

    def __init__(self, oracle: Oracle, X: pd.DataFrame, Z: pd.DataFrame, feat_player: np.ndarray, output: str) -> None:
        self.oracle, self.X, self.Z, self.feat_player = oracle, X, Z, feat_player
        self.scale = _logit if output == "margin" else _identity
        self.cols = list(X.columns)
        self.xv = [X[c].to_numpy(dtype=object) for c in self.cols]
        self.zv = [Z[c].to_numpy(dtype=object) for c in self.cols]
        self.m = int(feat_player.max()) + 1

    def outputs(self, which: str | None) -> np.ndarray:
        return self.scale(self.oracle.query(self.Z if which == "background" else self.X))

    def hybrids(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        data = {}
        for j, c in enumerate(self.cols):
            values = np.where(masks[:, self.feat_player[j]], self.xv[j][r], self.zv[j][b])
            dtype = self.X[c].dtype
            data[c] = values if isinstance(dtype, np.dtype) and dtype.kind == "O" else pd.array(values, dtype=dtype)
        return self.scale(self.oracle.query(pd.DataFrame(data, columns=self.cols)))

    def same(self, rows: np.ndarray) -> np.ndarray:
        out = np.ones((len(rows), len(self.Z), self.m), dtype=bool)
        for j in range(len(self.cols)):
            a = self.xv[j][rows][:, None]
            z = self.zv[j][None, :]
            out[:, :, self.feat_player[j]] &= (a == z) | (pd.isna(a) & pd.isna(z))
        return out


def _oracle_engine(oracle: Oracle, X: pd.DataFrame, Z: pd.DataFrame, feat_player: np.ndarray, output: str) -> _Engine:
    """Raw rows through an Oracle: encoded column blocks when every encoded column belongs to
    one raw feature (:func:`pellucid.oracle.encoding.feature_blocks`), else hybrids of raw rows
    encoded by the Oracle."""
    from ..oracle.encoding import feature_blocks

    blocks = feature_blocks(oracle, X, Z)
    if blocks is not None:
        XE, ZE, col_feat = blocks
        col_player = feat_player[np.where(col_feat < 0, 0, col_feat)]  # a constant column follows any player
        if oracle.preprocess is None:
            return _TensorEngine(oracle, XE, ZE, col_player, output, path="model input (torch)")
        if oracle.kind == "torch":
            return _TensorEngine(oracle, XE, ZE, col_player, output, path="encoded blocks (torch)")
        return _ArrayEngine(oracle, XE, ZE, col_player, output)
    if oracle.kind == "torch" and output == "raw":
        raise ParameterError("output='raw' through a preprocess whose encoded columns mix raw features needs "
                             "probabilities: use output='probability' or 'log_odds'")
    return _FrameEngine(oracle, X, Z, feat_player, output)


# ---------------------------------------------------------------------------- estimators
def _weights(m: int) -> np.ndarray:
    """Shapley weight of a coalition of size s (0..m-1) that a player joins: s!(m-s-1)!/m!."""
    return np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])


def _popcount(a: np.ndarray) -> np.ndarray:
    c = np.zeros(a.shape, dtype=np.int64)
    a = a.copy()
    while a.any():
        c += a & 1
        a >>= 1
    return c


def _subset_masks(m: int) -> np.ndarray:
    """Every coalition of m players as bool rows, coalition k holding player j where bit j of k is set."""
    k = np.arange(2**m, dtype=np.int64)
    return ((k[:, None] >> np.arange(m)) & 1).astype(bool)


#: Up to this many players, Shapley values are one product with a table of every coalition's
#: signed weight per player (``2**m * m`` numbers: 1.8 MB at 14).
_WEIGHTS_MAX = 14


@functools.lru_cache(maxsize=None)
def _coalition_weights(m: int) -> np.ndarray:
    """``(2**m, m)``: the weight of coalition ``k``'s value in player ``j``'s Shapley value, the
    weight of the coalition it completes where ``k`` holds ``j`` and minus that of the coalition
    it joins where not (so that ``V @ table`` gives every player's sum of marginal contributions)."""
    size = _popcount(np.arange(2**m, dtype=np.int64))
    w = np.append(_weights(m), 0.0)  # a full coalition is joined by no one
    has = _subset_masks(m)
    table = np.where(has, w[np.maximum(size - 1, 0)][:, None], -w[size][:, None])
    table.setflags(write=False)
    return table


def _shapley_from_values(V: np.ndarray, m: int) -> np.ndarray:
    """Shapley values ``(R, m)`` from coalition values ``(R, 2**m)`` indexed by bitmask.

    Up to :data:`_WEIGHTS_MAX` players, one product with :func:`_coalition_weights`. Beyond
    (where that table would take hundreds of MB), read as an array with one axis of 2 per
    player: a player's marginal contributions are the difference of two slices along its axis,
    each weighted by the size of the coalition it joins (the count of the other players' bits,
    whatever their order).
    """
    R = V.shape[0]
    if m == 0:
        return np.zeros((R, 0))
    if m <= _WEIGHTS_MAX:
        return V @ _coalition_weights(m)
    w = _weights(m)[_popcount(np.arange(2 ** (m - 1), dtype=np.int64))]
    T = V.reshape(R, *([2] * m))
    phi = np.empty((R, m))
    for j in range(m):
        axis = m - j  # bit j is the j-th axis from the last
        with_j = T[(slice(None),) * axis + (1,)]
        without = T[(slice(None),) * axis + (0,)]
        phi[:, j] = (with_j - without).reshape(R, -1) @ w
    return phi


def _values_of(game: _Game, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Values ``(len(rows), C)`` of the same coalitions ``masks`` ``(C, m)`` for every row, a
    batch of rows at a time."""
    per = max(1, game.batch // max(1, len(masks) * game.n_background))
    return np.concatenate([game.values(rows[i:i + per], np.broadcast_to(masks, (len(rows[i:i + per]), *masks.shape)))
                           for i in range(0, len(rows), per)])


def _exact_all(game: _Game, rows: np.ndarray) -> np.ndarray:
    """Every coalition over the whole background (needed when the link is not linear)."""
    return _shapley_from_values(_values_of(game, rows, _subset_masks(game.m)), game.m)


def _exact_pairs(game: _Game, rows: np.ndarray) -> np.ndarray:
    """Exact values of a linear game: the mean over background rows of each row-pair's game,
    in which only the players whose values differ take part."""
    m, B = game.m, game.n_background
    phi = np.zeros((len(rows), m))
    per = max(1, min(len(rows), game.batch // max(1, B * 64)))
    subsets = {d: _subset_masks(d) for d in range(m + 1)}
    fast = game.engine.pairs
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        differ = ~game.engine.same(rr)  # (R, B, m)
        d = differ.sum(axis=2)
        for size in np.unique(d):
            if size == 0:
                continue
            ri, bi = np.nonzero(d == size)
            where = np.nonzero(differ[ri, bi])[1].reshape(len(ri), size)  # each pair's differing players
            sub = subsets[size]  # (2**size, size)
            per_pair = max(1, game.batch // len(sub))
            for s in range(0, len(ri), per_pair):
                pr, pb, pw = ri[s:s + per_pair], bi[s:s + per_pair], where[s:s + per_pair]
                P = len(pr)
                if fast and size >= _TensorEngine.PAIR_MIN_PLAYERS:
                    v = game.run_pairs(rr[pr], pb, pw, sub)
                else:
                    masks = np.zeros((P, len(sub), m), dtype=bool)
                    masks[np.arange(P)[:, None, None], np.arange(len(sub))[None, :, None], pw[:, None, :]] = sub[None]
                    v = game.run(np.repeat(rr[pr], len(sub)), np.repeat(pb, len(sub)),
                                 masks.reshape(-1, m)).reshape(P, len(sub))
                v[:, 0] = game.fz[rr[pr], pb]  # nothing from the row: the background row's own answer
                v[:, -1] = game.fx[rr[pr]]  # everything that differs: the row's own answer
                np.add.at(phi, ((i + pr)[:, None], pw), _shapley_from_values(v, size) / B)
    return phi


def _permutation(game: _Game, rows: np.ndarray, n_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Antithetic permutation sampling; returns values and their standard errors."""
    m = game.m
    phi = np.empty((len(rows), m))
    se = np.empty((len(rows), m))
    per = max(1, game.batch // max(1, n_perm * 2 * m * game.n_background))
    tri = np.tril(np.ones((m + 1, m), dtype=bool), -1)  # row k: the first k positions revealed
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        R = len(rr)
        perms = np.stack([[_perm(seed, game.keys[r], p, m) for p in range(n_perm)] for r in rr])  # (R, P, m)
        # forward[k] holds perm[:k]; the backward walk removes perm[0], perm[1], ... from the full set
        fwd = np.zeros((R, n_perm, m + 1, m), dtype=bool)
        idx_r, idx_p, idx_k = np.meshgrid(np.arange(R), np.arange(n_perm), np.arange(m + 1), indexing="ij")
        fwd[idx_r[..., None], idx_p[..., None], idx_k[..., None], perms[:, :, None, :]] = tri[None, None]
        bwd = ~fwd[:, :, 1:m]  # the full set minus perm[:k], k = 1..m-1
        masks = np.concatenate([fwd, bwd], axis=2)  # (R, P, 2m, m)
        V = game.values(rr, masks.reshape(R, n_perm * 2 * m, m)).reshape(R, n_perm, 2 * m)
        vf = V[:, :, :m + 1]  # v(perm[:k]), k = 0..m
        vb = np.concatenate([vf[:, :, m:m + 1], V[:, :, m + 1:], vf[:, :, 0:1]], axis=2)  # v(N - perm[:k]), k = 0..m
        gain = np.zeros((R, n_perm, m))
        step_f = vf[:, :, 1:] - vf[:, :, :-1]  # the k-th revealed player's gain
        step_b = vb[:, :, :-1] - vb[:, :, 1:]  # the k-th removed player's loss
        np.put_along_axis(gain, perms, (step_f + step_b) / 2, axis=2)
        phi[i:i + per] = gain.mean(axis=1)
        se[i:i + per] = gain.std(axis=1, ddof=1) / math.sqrt(n_perm)
    return phi, se


def _paired(game: _Game, rows: np.ndarray, per_background: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's values from ``per_background`` random orders per background row, each order
    walked forward (adding its players) and backward (removing them); returns values and their
    standard errors."""
    m, B = game.m, game.n_background
    W = B * per_background
    phi = np.zeros((len(rows), m))
    se = np.zeros((len(rows), m))
    if m == 1:
        phi[:, 0] = game.full(rows) - game.base(rows)
        return phi, se
    background = np.tile(np.arange(B), per_background)  # pair w uses background row w % B
    per = max(1, game.batch // (W * 2 * (m - 1)))
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        R = len(rr)
        orders = np.stack([_row_rng(seed, game.keys[r], 1).permuted(np.tile(np.arange(m), (W, 1)), axis=1)
                           for r in rr])  # (R, W, m)
        v = game.walks(rr, background, orders)  # (R, W, 2, m - 1)
        fz = game.fz[rr][:, background][..., None]  # (R, W, 1)
        fx = np.broadcast_to(game.fx[rr][:, None, None], fz.shape)
        forward = np.concatenate([fz, v[:, :, 0], fx], axis=2)  # v(order[:k]), k = 0..m
        backward = np.concatenate([fx, v[:, :, 1], fz], axis=2)  # v(N - order[:k]), k = 0..m
        gain = np.zeros((R, W, m))
        step = (forward[..., 1:] - forward[..., :-1] + backward[..., :-1] - backward[..., 1:]) / 2
        np.put_along_axis(gain, orders, step, axis=2)
        phi[i:i + per] = gain.mean(axis=1)
        if per_background > 1:  # the spread within each background row's pairs
            var = gain.reshape(R, per_background, B, m).var(axis=1, ddof=1).mean(axis=1)
        else:  # between every pair: also holds the spread between background rows (an upper bound)
            var = gain.var(axis=1, ddof=1)
        se[i:i + per] = np.sqrt(var / W)
    return phi, se


def _perm(seed: int, row: int, p: int, m: int) -> np.ndarray:
    return _row_rng(seed, row, 0, p).permutation(m)


def _kernel(game: _Game, rows: np.ndarray, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """KernelSHAP with complementary pairs; all coalitions (and so exact values) when the
    budget covers them."""
    m = game.m
    if m == 1:
        phi = (game.full(rows) - game.base(rows))[:, None]
        return phi, np.zeros_like(phi), {"coalitions": 0}
    if budget >= 2**m - 2:
        masks = _subset_masks(m)[1:-1]
        sizes = masks.sum(axis=1)
        w = (m - 1) / (np.array([math.comb(m, s) for s in sizes]) * sizes * (m - sizes))
        phi = _kernel_solve(masks[None].astype(np.float64), _values_of(game, rows, masks), w[None], game.base(rows),
                            game.full(rows))
        return phi, np.zeros_like(phi), {"coalitions": int(len(masks)), "enumerated": True}
    pairs = max(2, budget // 2)
    sizes = np.arange(1, m)
    p_size = (m - 1) / (sizes * (m - sizes))
    p_size = p_size / p_size.sum()
    per = max(1, game.batch // max(1, 2 * pairs * game.n_background))
    phi = np.empty((len(rows), m))
    se = np.empty((len(rows), m))
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        R = len(rr)
        half = np.zeros((R, pairs, m), dtype=bool)
        for a, r in enumerate(rr):
            rng = _row_rng(seed, game.keys[r], 2)
            s = rng.choice(sizes, size=pairs, p=p_size)
            order = np.argsort(rng.random((pairs, m)), axis=1)
            half[a] = np.argsort(order, axis=1) < s[:, None]
        masks = np.concatenate([half, ~half], axis=1)  # (R, 2*pairs, m)
        V = game.values(rr, masks)
        Zm = masks.astype(np.float64)
        base, full = game.base(rr), game.full(rr)
        phi[i:i + per] = _kernel_solve(Zm, V, np.ones((R, 2 * pairs)), base, full)
        boots = np.empty((_BOOTSTRAP, R, m))
        for k in range(_BOOTSTRAP):
            pick = np.stack([_row_rng(seed, game.keys[r], 1, k).integers(0, pairs, size=pairs) for r in rr])
            both = np.concatenate([pick, pick + pairs], axis=1)
            boots[k] = _kernel_solve(np.take_along_axis(Zm, both[..., None], axis=1),
                                     np.take_along_axis(V, both, axis=1), np.ones((R, 2 * pairs)), base, full)
        se[i:i + per] = boots.std(axis=0, ddof=1)
    return phi, se, {"coalitions": int(2 * pairs)}


def _kernel_solve(Zm: np.ndarray, V: np.ndarray, w: np.ndarray, base: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Weighted least squares of ``v(S) - base`` on the coalitions' indicators under
    ``sum(phi) = full - base``, per row (Zm ``(R or 1, C, m)``, V ``(R, C)``, w ``(R or 1, C)``)."""
    R = V.shape[0]
    Zm = np.broadcast_to(Zm, (R, *Zm.shape[1:]))
    w = np.broadcast_to(w, V.shape)
    m = Zm.shape[2]
    A = np.einsum("rc,rci,rcj->rij", w, Zm, Zm) / w.sum(axis=1)[:, None, None]
    b = np.einsum("rc,rci,rc->ri", w, Zm, V - base[:, None]) / w.sum(axis=1)[:, None]
    A = A + 1e-12 * np.eye(m)
    Ainv_b = np.linalg.solve(A, b[..., None])[..., 0]
    Ainv_1 = np.linalg.solve(A, np.ones((R, m, 1)))[..., 0]
    total = full - base
    lam = (Ainv_b.sum(axis=1) - total) / Ainv_1.sum(axis=1)
    return Ainv_b - lam[:, None] * Ainv_1
