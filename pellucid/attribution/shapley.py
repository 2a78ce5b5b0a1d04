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
``"auto"``
    Exact up to :data:`EXACT_AUTO_MAX` players, permutation beyond.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .._validation import check_random_state
from ..errors import ModelError, ParameterError, PellucidWarning
from ..oracle import Oracle
from ._base import Attribution, eval_mode, resolve_targets

__all__ = ["shapley", "shapley_values", "OUTPUTS", "SHAPLEY_METHODS", "EXACT_AUTO_MAX", "EXACT_MAX"]

OUTPUTS = ("probability", "log_odds", "raw")
SHAPLEY_METHODS = ("auto", "exact", "permutation", "kernel")
#: ``method="auto"`` enumerates every coalition up to this many players.
EXACT_AUTO_MAX = 14
#: ``method="exact"`` refuses more players than this (2**20 coalitions per row).
EXACT_MAX = 20
#: Background rows the registered method (:func:`shapley_values`) draws when given none.
DEFAULT_BACKGROUND = 100
_HYBRIDS = 2**16  # hybrid rows per model call by default
_PROB_FLOOR = 1e-12  # probabilities are kept inside [floor, 1 - floor] before log-odds
_BOOTSTRAP = 64  # resamples of the kernel's coalition pairs for its standard error


# ---------------------------------------------------------------------------- the game
@dataclass
class _Game:
    """The explained rows, the background and a way to answer hybrid rows.

    ``answer(r, b, masks)`` gives the attributed output (before any link) of the hybrids that
    take the players in ``masks[t]`` from explained row ``r[t]`` and the rest from background
    row ``b[t]``.
    """

    players: tuple[str, ...]
    n: int
    n_background: int
    answer: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    same: Callable[[np.ndarray], np.ndarray]  # rows -> (rows, background, players) bool: equal values
    fx: np.ndarray  # attributed output of each explained row (before the link)
    fz: np.ndarray  # (n, background): attributed output of each background row for row r's target
    link: Callable[[np.ndarray], np.ndarray]
    linear: bool  # the coalition value is a plain mean over the background
    batch: int
    path: str
    output: str
    keys: np.ndarray  # per explained row, what seeds its draws (from its label, not its position)
    rows_run: int = 0

    @property
    def m(self) -> int:
        return len(self.players)

    def run(self, r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = np.empty(len(r), dtype=np.float64)
        for i in range(0, len(r), self.batch):
            j = slice(i, i + self.batch)
            out[j] = self.answer(r[j], b[j], masks[j])
        self.rows_run += len(r)
        return out

    def values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Coalition values ``(len(rows), C)`` for the masks ``(len(rows), C, m)``: the link of
        the mean answer over the background."""
        R, C, m = masks.shape
        B = self.n_background
        r = np.repeat(rows, C * B)
        b = np.tile(np.arange(B), R * C)
        full = np.repeat(masks.reshape(R * C, m), B, axis=0)
        out = self.run(r, b, full).reshape(R, C, B).mean(axis=2)
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
    method : {"auto", "exact", "permutation", "kernel"}
        See the module's notes. ``"auto"``: exact up to 14 players, permutation beyond.
    n_samples : int, optional
        Sampled methods: coalitions evaluated per row (each averaged over the background),
        as shap's ``max_evals``. Default 500 for permutation (at least 2 permutations) and
        ``2 * players + 2048`` for kernel.
    output : {"probability", "log_odds", "raw"}, optional
        The scale explained: the class probability, its log-odds (of the background-averaged
        probability, as shap's logit link) or the torch module's own output (its logit).
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
        background rows and the hybrid rows the model answered per explained row.

    Raises
    ------
    ParameterError
        A background of other columns or fewer than 2 rows, a group naming an unknown
        feature, more players than ``method="exact"`` can enumerate, an unknown method or
        output.
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
        method = "exact" if m <= EXACT_AUTO_MAX else "permutation"
    if method == "exact" and m > EXACT_MAX:
        raise ParameterError(f"method='exact' enumerates 2**{m} coalitions per row for {m} players, more than "
                             f"2**{EXACT_MAX}; use method='permutation' or 'kernel', or merge features with groups=")
    rows = np.arange(game.n)
    se = np.zeros((game.n, m))
    seed = _seed(random_state)
    if method == "exact":
        phi = _exact_pairs(game, rows) if game.linear else _exact_all(game, rows)
        info: dict[str, Any] = {}
    elif method == "permutation":
        n_perm = max(2, (n_samples or 500) // (2 * m))
        phi, se = _permutation(game, rows, n_perm, seed)
        info = {"permutations": n_perm}
    else:
        budget = n_samples or 2 * m + 2048
        phi, se, info = _kernel(game, rows, budget, seed)
    base = game.base(rows)
    fx = game.full(rows)
    delta = phi.sum(axis=1) + base - fx
    per_row = game.rows_run / max(game.n, 1)
    return Attribution(
        values=phi, method="shapley", features=features, targets=targets, outputs=fx, encoded=phi,
        delta=delta, base_value=base, standard_error=se,
        params={"shapley_method": method, "output": game.output, "background_rows": game.n_background,
                "players": list(game.players), "model_rows_per_row": float(per_row), "path": game.path,
                "definition": "interventional", **info},
    )


def shapley_values(model: Any, inputs: Any, target: Any = None, *, baseline: Any = None,
                   batch_size: int | None = None, random_state: Any = None, reference: Any = None,
                   method: str = "auto", n_samples: int | None = None, output: str | None = None,
                   groups: Mapping[str, Sequence[str]] | None = None,
                   background_rows: int = DEFAULT_BACKGROUND) -> Attribution:
    """:func:`shapley` with the signature every registered method has.

    ``baseline`` is the background (rows in the inputs' form); None draws
    ``background_rows`` rows (100) from ``reference`` (else the inputs) with ``random_state``.
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
    return shapley(model, inputs, baseline, target, method=method, n_samples=n_samples, output=output,
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
    if oracle is not None and oracle.task == "regression" or oracle is None:
        default = "raw"
    else:
        default = "probability"
    if oracle is not None and oracle.task == "regression" and output not in (None, "raw"):
        raise ParameterError(f"output={output!r} needs class probabilities; this model is a regressor (use 'raw')")
    output = output or default
    if oracle is None and output != "raw":
        raise ParameterError(f"a bare torch module gives its own output; output={output!r} needs an Oracle that "
                             "knows its classes (or use output='raw')")
    if output == "raw" and oracle is not None and oracle.kind != "torch" and oracle.task != "regression":
        raise ParameterError(f"output='raw' is a torch network's own output; this oracle wraps a {oracle.kind} "
                             "model: use 'probability' or 'log_odds'")
    players, col_player = _players(names, groups)
    if oracle is not None and raw:
        engine = _oracle_engine(oracle, X, Z, names, col_player, output)
    else:
        engine = _module_engine(model if oracle is None else oracle, X, Z, col_player, output)
    (answer_all, same_cols), path = engine
    # Each row's output and target, then every background row's answer for that target.
    full_out = answer_all("x", None)
    targets_t = resolve_targets(target, torch.as_tensor(full_out), len(X), oracle)
    targets = None if targets_t is None else targets_t.numpy()

    def pick(out: np.ndarray, t: np.ndarray | None) -> np.ndarray:
        if out.ndim == 1:
            return out
        if t is None:
            if out.shape[1] != 1:
                raise ParameterError(f"the model gives {out.shape[1]} outputs per row; pass target= to pick one")
            return out[:, 0]
        return out[np.arange(len(out)), t]

    fx = pick(full_out, targets)
    z_out = answer_all("z", None)
    if z_out.ndim == 1 or targets is None:
        fz = np.broadcast_to(pick(z_out, None), (len(X), len(z_out)))
    else:
        fz = z_out[:, targets].T
    game = _Game(players=players, n=len(X), n_background=len(Z),
                 answer=_hybrid(answer_all, targets, pick), same=same_cols,
                 fx=np.asarray(fx, dtype=np.float64), fz=np.asarray(fz, dtype=np.float64),
                 link=_logit if output == "log_odds" else _identity, linear=output != "log_odds", batch=batch,
                 path=path, output=output, keys=_row_keys(inputs, len(X)))
    return game, targets, players


def _row_keys(inputs: Any, n: int) -> np.ndarray:
    """Per row, a number from its label (a DataFrame's index, else its position), so that a
    row's draws are the same whichever rows are explained with it."""
    labels = inputs.index if isinstance(inputs, pd.DataFrame) else range(n)
    return np.array([int.from_bytes(hashlib.sha256(repr(label).encode()).digest()[:4], "little")
                     for label in labels], dtype=np.int64)


def _hybrid(engine_raw: Callable, targets: np.ndarray | None, pick: Callable) -> Callable:
    def answer(r: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = engine_raw("h", (r, b, masks))
        return pick(out, None if targets is None else targets[r])
    return answer


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
def _module_engine(model: Any, X: np.ndarray, Z: np.ndarray, feat_player: np.ndarray, output: str):
    """Model-input rows (a bare module, or a torch Oracle given arrays): each column a feature."""
    oracle = model if isinstance(model, Oracle) else None
    module = oracle.model if oracle is not None else model
    if oracle is not None:
        device, dtype = oracle.device or torch.device("cpu"), oracle.tensor_dtype
    else:
        first = next((p for p in module.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    Xt = torch.as_tensor(X, dtype=dtype, device=device)
    Zt = torch.as_tensor(Z, dtype=dtype, device=device)
    fn = _torch_fn(oracle, module, output)
    col_player = torch.as_tensor(feat_player, device=device)
    return _tensor_engine(fn, Xt, Zt, col_player, feat_player, X, Z), "model input"


def _oracle_engine(oracle: Oracle, X: pd.DataFrame, Z: pd.DataFrame, names: tuple[str, ...],
                   feat_player: np.ndarray, output: str):
    """Raw rows through an Oracle: encoded column blocks when every encoded column belongs to
    one raw feature, else hybrids of raw rows encoded by the Oracle."""
    if oracle.preprocess is not None:
        with warnings.catch_warnings():  # columns constant on these rows are handled below
            warnings.simplefilter("ignore", PellucidWarning)
            emap = oracle.encoding_map(pd.concat([Z, X], ignore_index=True))
        col_feat = np.full(emap.n_encoded, -1, dtype=np.int64)
        for j, f in enumerate(emap.raw_features):
            col_feat[list(emap.groups.get(f, ()))] = j
        XE, ZE = oracle.encode(X), oracle.encode(Z)
        # A column in no feature's group that holds one value on every row explained and every
        # background row is the same in every hybrid: whichever player it follows, it is unchanged.
        loose = np.flatnonzero(col_feat < 0)
        constant = all(np.all(XE[:, c] == XE[0, c]) and np.all(ZE[:, c] == XE[0, c]) for c in loose)
        if not emap.shared and constant:
            col_player = feat_player[np.where(col_feat < 0, 0, col_feat)]
            if oracle.kind == "torch":
                device, dtype = oracle.device or torch.device("cpu"), oracle.tensor_dtype
                fn = _torch_fn(oracle, oracle.model, output)
                ct = torch.as_tensor(col_player, device=device)
                return _tensor_engine(fn, torch.as_tensor(XE, dtype=dtype, device=device),
                                      torch.as_tensor(ZE, dtype=dtype, device=device), ct, col_player, XE, ZE,
                                      player_cols=feat_player), "encoded blocks (torch)"
            return _array_engine(oracle, XE, ZE, col_player, feat_player), "encoded blocks"
    if oracle.kind == "torch" and output == "raw":
        raise ParameterError("output='raw' through a preprocess whose encoded columns mix raw features needs "
                             "probabilities: use output='probability' or 'log_odds'")
    return _frame_engine(oracle, X, Z, feat_player), "raw rows"


def _torch_fn(oracle: Oracle | None, module: torch.nn.Module, output: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Encoded rows -> the outputs explained, without gradients."""
    if oracle is not None and output != "raw":
        def answer(x: torch.Tensor) -> torch.Tensor:
            return oracle.forward(x, grad=False)
        return answer

    def raw(x: torch.Tensor) -> torch.Tensor:
        with eval_mode(module), torch.no_grad():
            out = module(x)
        if oracle is not None and oracle.task == "classification" and (out.dim() == 1 or out.shape[1] == 1):
            z = out.reshape(-1, 1)  # one logit: class 1 is z, class 0 is -z (as LRP reads it)
            return torch.cat([-z, z], dim=1)
        return out
    return raw


def _same_blocks(XE: np.ndarray, ZE: np.ndarray, col_player: np.ndarray, m: int) -> Callable[[np.ndarray], np.ndarray]:
    onehot = np.zeros((XE.shape[1], m), dtype=np.float32)
    onehot[np.arange(XE.shape[1]), col_player] = 1.0

    def same(rows: np.ndarray) -> np.ndarray:
        diff = (XE[rows][:, None, :] != ZE[None, :, :]).astype(np.float32)
        return (diff @ onehot) == 0
    return same


def _tensor_engine(fn: Callable, Xt: torch.Tensor, Zt: torch.Tensor, col_player_t: torch.Tensor,
                   col_player: np.ndarray, XE: np.ndarray, ZE: np.ndarray, player_cols: Any = None):
    m = int(col_player.max()) + 1 if len(col_player) else 0
    if player_cols is not None:
        m = int(np.max(player_cols)) + 1

    def answer(kind: str, args: Any) -> np.ndarray:
        if kind == "x":
            return _tensor_out(fn, Xt)
        if kind == "z":
            return _tensor_out(fn, Zt)
        r, b, masks = args
        cm = torch.as_tensor(masks, device=Xt.device)[:, col_player_t]
        h = torch.where(cm, Xt[torch.as_tensor(r, device=Xt.device)], Zt[torch.as_tensor(b, device=Xt.device)])
        return _tensor_out(fn, h)

    return answer, _same_blocks(XE, ZE, col_player, m)


def _tensor_out(fn: Callable, x: torch.Tensor) -> np.ndarray:
    parts = [fn(x[i:i + _HYBRIDS]) for i in range(0, x.shape[0], _HYBRIDS)]
    out = parts[0] if len(parts) == 1 else torch.cat(parts)
    return out.detach().to("cpu", torch.float64).numpy()


def _array_engine(oracle: Oracle, XE: np.ndarray, ZE: np.ndarray, col_player: np.ndarray, feat_player: np.ndarray):
    m = int(np.max(feat_player)) + 1

    def answer(kind: str, args: Any) -> np.ndarray:
        if kind == "x":
            return oracle.query_encoded(XE)
        if kind == "z":
            return oracle.query_encoded(ZE)
        r, b, masks = args
        h = np.where(masks[:, col_player], XE[r], ZE[b])
        return oracle.query_encoded(h)

    return answer, _same_blocks(XE, ZE, col_player, m)


def _frame_engine(oracle: Oracle, X: pd.DataFrame, Z: pd.DataFrame, feat_player: np.ndarray):
    cols = list(X.columns)
    xv = [X[c].to_numpy(dtype=object) for c in cols]
    zv = [Z[c].to_numpy(dtype=object) for c in cols]
    m = int(np.max(feat_player)) + 1

    def answer(kind: str, args: Any) -> np.ndarray:
        if kind == "x":
            return oracle.query(X)
        if kind == "z":
            return oracle.query(Z)
        r, b, masks = args
        data = {}
        for j, c in enumerate(cols):
            take = masks[:, feat_player[j]]
            data[c] = pd.array(np.where(take, xv[j][r], zv[j][b]), dtype=X[c].dtype) \
                if not isinstance(X[c].dtype, np.dtype) or X[c].dtype.kind != "O" else np.where(take, xv[j][r],
                                                                                              zv[j][b])
        return oracle.query(pd.DataFrame(data, columns=cols))

    def same(rows: np.ndarray) -> np.ndarray:
        out = np.ones((len(rows), len(Z), m), dtype=bool)
        for j, c in enumerate(cols):
            a = X[c].to_numpy(dtype=object)[rows][:, None]
            z = Z[c].to_numpy(dtype=object)[None, :]
            eq = (a == z) | (pd.isna(a) & pd.isna(z))
            out[:, :, feat_player[j]] &= eq
        return out

    return answer, same


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


def _shapley_from_values(V: np.ndarray, m: int) -> np.ndarray:
    """Shapley values ``(R, m)`` from coalition values ``(R, 2**m)`` indexed by bitmask."""
    w = _weights(m)
    k = np.arange(2**m, dtype=np.int64)
    size = _popcount(k)
    phi = np.empty((V.shape[0], m))
    for j in range(m):
        without = k[(k >> j) & 1 == 0]
        phi[:, j] = (V[:, without | (1 << j)] - V[:, without]) @ w[size[without]]
    return phi


def _exact_all(game: _Game, rows: np.ndarray) -> np.ndarray:
    """Every coalition over the whole background (needed when the link is not linear)."""
    m = game.m
    masks = _subset_masks(m)
    per = max(1, game.batch // max(1, len(masks) * game.n_background))
    out = np.empty((len(rows), m))
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        V = game.values(rr, np.broadcast_to(masks, (len(rr), *masks.shape)))
        out[i:i + per] = _shapley_from_values(V, m)
    return out


def _exact_pairs(game: _Game, rows: np.ndarray) -> np.ndarray:
    """Exact values of a linear game: the mean over background rows of each row-pair's game,
    in which only the players whose values differ take part."""
    m, B = game.m, game.n_background
    phi = np.zeros((len(rows), m))
    per = max(1, min(len(rows), game.batch // max(1, B * 64)))
    subsets = {d: _subset_masks(d) for d in range(m + 1)}
    for i in range(0, len(rows), per):
        rr = rows[i:i + per]
        differ = ~game.same(rr)  # (R, B, m)
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
                masks = np.zeros((P, len(sub), m), dtype=bool)
                masks[np.arange(P)[:, None, None], np.arange(len(sub))[None, :, None], pw[:, None, :]] = sub[None]
                v = game.run(np.repeat(rr[pr], len(sub)), np.repeat(pb, len(sub)), masks.reshape(-1, m))
                local = _shapley_from_values(v.reshape(P, len(sub)), size)
                np.add.at(phi, ((i + pr)[:, None], pw), local / B)
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
        per = max(1, game.batch // max(1, len(masks) * game.n_background))
        phi = np.empty((len(rows), m))
        for i in range(0, len(rows), per):
            rr = rows[i:i + per]
            V = game.values(rr, np.broadcast_to(masks, (len(rr), *masks.shape)))
            phi[i:i + per] = _kernel_solve(masks[None].astype(np.float64), V, w[None], game.base(rr),
                                           game.full(rr))
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
