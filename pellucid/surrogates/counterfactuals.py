"""What would change the decision: counterfactuals on the raw features.

For each row, the closest change to at most ``max_changes`` actionable features that makes the
network decide otherwise, found by a beam search over the features' observed values and then
pulled back towards the row:

1. **Candidates inside the schema.** A numeric feature may take the reference's quantiles
   (``n_values`` of them, within the observed range, whole numbers for integer features), a
   category any known category. Immutable features never change; a monotone feature moves only
   in its direction.
2. **Beam search.** Every single change of every row is asked of the network in one batch; the
   ``beam`` changes that move the score towards the target most per unit of distance are
   extended by a change of another feature, up to ``max_changes``. The score is the target
   class's log-odds against the row's own class. Branches already farther than a valid change
   are dropped.
3. **Pulled back.** Each changed number of the closest valid change is bisected towards the
   row's value while the decision holds, then every change the decision does not need is
   undone.
4. **Verified.** The final rows are asked of the network again; ``valid`` is its answer.

Distance is in robust-spread units (the smaller of the standard deviation and IQR/1.349 of the
reference): a number moved by one spread counts 1, as does a changed category or a missing
value filled in. Plausibility is the same distance from the counterfactual to the nearest
reference row the network decides as the target.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .._plain import is_missing as _missing
from .._validation import as_oracle, check_random_state
from ..errors import ParameterError
from ..extraction.samplers import _spread
from ..schema import Feature, Kind

__all__ = ["counterfactuals", "MONOTONE"]

MONOTONE = ("increase", "decrease")
PLAUSIBILITY_ROWS = 5000
_SHORTLIST = 2  # valid changes per row pulled back beyond the n asked for
_PROBES = 15  # points per change and round of the pull-back
_ROUNDS = 3  # rounds of the pull-back: to 1/16**3 of each change
_LOG_FLOOR = 1e-12


def counterfactuals(model: Any, rows: pd.DataFrame, *, reference: pd.DataFrame | None = None,
                    target_class: Any = None, immutable: Sequence[str] = (),
                    monotone: Mapping[str, str] | None = None, max_changes: int = 3, n: int = 1,
                    n_values: int = 32, beam: int = 8, margin: float = 0.05,
                    random_state: Any = None) -> pd.DataFrame:
    """The closest changes that make the network decide otherwise, per row.

    Parameters
    ----------
    model : Oracle or anything Oracle adapts
        A classifier (with its preprocess, for an Oracle).
    rows : DataFrame
        Raw rows to change.
    reference : DataFrame, optional
        The population whose values, ranges, categories and spreads bound the changes, and
        whose rows measure plausibility (default: ``rows``).
    target_class : label, optional
        The decision wanted; by default any class but the row's own.
    immutable : sequence of str
        Features that must not change (e.g. age, a protected attribute).
    monotone : mapping of str to {"increase", "decrease"}
        Numeric features that may move in one direction only.
    max_changes : int
        Most features changed per counterfactual.
    n : int
        Counterfactuals per row, each changing another set of features.
    n_values : int
        Candidate values per numeric feature (the reference's quantiles).
    beam : int
        Partial changes per row extended at each step.
    margin : float
        The search and the pull-back accept a change only where the target's log-odds against
        the row's own class exceed this, so that the counterfactual does not sit on the
        decision boundary, where rounding in another evaluation of the network could undo it.
    random_state : None
        Accepted for the common signature; the search is deterministic.

    Returns
    -------
    DataFrame
        One row per counterfactual (``n`` per input row, the input's index repeated):
        ``counterfactual`` (1..n), ``decision`` (the network's class for the row), ``target``,
        ``found``, ``valid`` (the network decides the target on the changed row, asked again),
        ``changes`` ("income: 33.9 -> 52.1; home: rent -> mortgage"), ``n_changes``,
        ``distance`` (robust-spread units), ``plausibility`` (distance to the nearest reference
        row decided as the target) and ``plausibility_typical`` (the median of that distance
        for those reference rows themselves, to their nearest other one: a counterfactual far
        above it lies where the data is thin), ``note`` (why none was found), then the changed
        row's raw values as ``cf_<feature>``.

    Raises
    ------
    ParameterError
        A regression model, an unknown class or feature in ``immutable``/``monotone``, a
        monotone direction other than "increase"/"decrease" or on a non-numeric feature,
        ``max_changes`` or ``n`` below 1.
    """
    oracle = as_oracle(model)
    check_random_state(random_state)
    if not isinstance(rows, pd.DataFrame) or len(rows) == 0:
        raise ParameterError("rows must be a non-empty DataFrame of raw rows")
    reference = rows if reference is None else reference
    features = [str(c) for c in rows.columns]
    rows = rows.rename(columns=str)
    reference = reference.rename(columns=str)
    missing = [f for f in features if f not in reference.columns]
    if missing:
        raise ParameterError(f"reference lacks the features {missing[:12]}")
    reference = reference[features]
    for name, value in (("max_changes", max_changes), ("n", n), ("n_values", n_values), ("beam", beam)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be a whole number, at least 1; got {value!r}")
    immutable = _check_names(immutable, features, "immutable")
    monotone = dict(monotone or {})
    _check_names(list(monotone), features, "monotone")
    for f, d in monotone.items():
        if d not in MONOTONE:
            raise ParameterError(f"monotone[{f!r}] must be 'increase' or 'decrease'; got {d!r}")
        if not _is_number(reference[f]):
            raise ParameterError(f"monotone[{f!r}]: {f!r} is categorical; only numbers move in a direction")
    proba0 = oracle.query(rows)
    if oracle.task != "classification":
        raise ParameterError("counterfactuals change a classifier's decision; this model is a regressor")
    classes = list(oracle.classes_)
    target = None
    if target_class is not None:
        hits = [i for i, c in enumerate(classes) if c == target_class or str(c) == str(target_class)]
        if not hits:
            raise ParameterError(f"target_class {target_class!r} is not one of the model's classes {classes}")
        target = hits[0]
    space = _Space(reference, features, set(immutable), monotone, int(n_values))
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < np.inf:
        raise ParameterError(f"margin must be a non-negative number of log-odds; got {margin!r}")
    # Plausibility is measured against up to PLAUSIBILITY_ROWS reference rows, evenly spaced.
    pick = np.unique(np.linspace(0, len(reference) - 1, min(len(reference), PLAUSIBILITY_ROWS)).astype(int))
    search = _Search(oracle, space, target, int(max_changes), int(beam), float(margin), reference.iloc[pick])
    return search.run(rows, proba0, classes, int(n))


def _check_names(names: Sequence[str], features: list[str], what: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    unknown = [str(f) for f in names if str(f) not in features]
    if unknown:
        raise ParameterError(f"{what} names {unknown[:12]}, which are not features; the features are {features[:40]}")
    return [str(f) for f in names]


class _Space:
    """Per feature: candidate values, spread, and how a change is measured."""

    def __init__(self, reference: pd.DataFrame, features: list[str], immutable: set[str],
                 monotone: dict[str, str], n_values: int) -> None:
        self.features = features
        self.dtypes = {f: reference[f].dtype for f in features}
        self.numeric = np.array([_is_number(reference[f]) for f in features])
        self.spread = np.ones(len(features))
        self.values: list[np.ndarray] = []
        self.monotone = monotone
        self.actionable = np.array([f not in immutable for f in features])
        for j, f in enumerate(features):
            col = reference[f]
            if self.numeric[j]:
                x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                obs = x[~np.isnan(x)]
                bounds = Feature(f, Kind.NUMERIC, low=float(obs.min()) if len(obs) else None,
                                 high=float(obs.max()) if len(obs) else None)
                s = _spread(bounds, x)
                self.spread[j] = s if s > 0 else 1.0
                distinct = np.unique(obs)
                if len(distinct) <= n_values:
                    vals = distinct
                else:
                    vals = np.unique(np.quantile(obs, np.linspace(0, 1, n_values)))
                    if np.all(np.mod(distinct, 1) == 0):  # whole numbers stay whole
                        vals = np.unique(np.round(vals))
                self.values.append(vals.astype(float))
            else:
                self.values.append(np.asarray(pd.unique(col.dropna().astype(object)), dtype=object))
        self.codes = [{str(c): i for i, c in enumerate(v)} if not self.numeric[j] else {}
                      for j, v in enumerate(self.values)]

    def moves(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every single change of row ``x`` (raw values, object array): (feature, value) pairs."""
        feats, vals = [], []
        for j, f in enumerate(self.features):
            if not self.actionable[j]:
                continue
            cur = x[j]
            cand = self.values[j]
            if self.numeric[j]:
                if not _missing(cur):
                    cand = cand[cand != float(cur)]
                    d = self.monotone.get(f)
                    if d == "increase":
                        cand = cand[cand > float(cur)]
                    elif d == "decrease":
                        cand = cand[cand < float(cur)]
            else:
                cand = np.asarray([c for c in cand if _missing(cur) or str(c) != str(cur)], dtype=object)
            feats.append(np.full(len(cand), j))
            vals.append(cand.astype(object))
        if not feats:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=object)
        return np.concatenate(feats), np.concatenate(vals)

    def step(self, j: int, cur: Any, new: Any) -> float:
        """Distance of changing feature ``j`` from ``cur`` to ``new``."""
        if self.numeric[j] and not _missing(cur) and not _missing(new):
            return abs(float(new) - float(cur)) / self.spread[j]
        return 0.0 if (_missing(cur) and _missing(new)) or (not _missing(cur) and str(cur) == str(new)) else 1.0

    def columns(self, A: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per feature, the values of rows ``A`` ready for :meth:`distances`: floats (numbers)
        or text (categories), and where they are missing."""
        out = []
        for j in range(len(self.features)):
            a = A[:, j]
            miss = _isna(a)
            if self.numeric[j]:
                out.append((np.where(miss, np.nan, a).astype(float), miss))
            else:  # categories as whole-number codes (-1 for a value the reference never holds)
                codes = self.codes[j]
                out.append((np.array([codes.get(str(v), -1) for v in a], dtype=np.int64), miss))
        return out

    def distances(self, A: list, B: list) -> np.ndarray:
        """Distance from each row of ``A`` to each row of ``B``, both as :meth:`columns` gives
        them: ``(len(A), len(B))``."""
        out = np.zeros((len(A[0][0]), len(B[0][0])))
        for j in range(len(self.features)):
            (a, am), (b, bm) = A[j], B[j]
            one_missing = am[:, None] != bm[None, :]
            if self.numeric[j]:
                with np.errstate(invalid="ignore"):
                    d = np.nan_to_num(np.abs(a[:, None] - b[None, :]) / self.spread[j], nan=0.0)
            else:
                d = (a[:, None] != b[None, :]).astype(float)
            out += np.where(one_missing, 1.0, np.where(am[:, None] & bm[None, :], 0.0, d))
        return out

    def frame(self, X: np.ndarray) -> pd.DataFrame:
        """Rows of raw values as a table with the reference's column types."""
        data = {}
        for j, f in enumerate(self.features):
            col = X[:, j]
            dtype = self.dtypes[f]
            if self.numeric[j]:
                try:  # None and NaN become NaN
                    values = col.astype(float)
                except (TypeError, ValueError):  # pandas' NA and the like
                    values = np.array([np.nan if _missing(v) else v for v in col], dtype=float)
                whole = pd.api.types.is_integer_dtype(dtype) and not np.isnan(values).any()
                data[f] = values.astype(dtype) if whole or dtype == np.float64 else values
            elif isinstance(dtype, np.dtype):
                data[f] = col
            else:
                data[f] = pd.array(col, dtype=dtype)
        return pd.DataFrame(data, columns=self.features)


class _Search:
    def __init__(self, oracle: Any, space: _Space, target: int | None, max_changes: int, beam: int,
                 margin: float, plausibility_rows: pd.DataFrame) -> None:
        self.oracle, self.space, self.target, self.max_changes, self.beam = oracle, space, target, max_changes, beam
        self.margin = margin
        # the reference rows plausibility is measured against, and the network's class for each
        self.ref_columns = space.columns(plausibility_rows.to_numpy(dtype=object))
        self.ref_class = np.argmax(oracle.query(plausibility_rows), axis=1)
        self._typical_cache: dict[tuple, float] = {}

    def score(self, proba: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: the target's log-odds against the row's own class, and whether the
        network decides as wanted."""
        logp = np.log(np.clip(proba, _LOG_FLOOR, 1.0))
        idx = np.arange(len(proba))
        if self.target is not None:
            s = logp[:, self.target] - logp[idx, own]
            valid = np.argmax(proba, axis=1) == self.target
        else:
            others = logp.copy()
            others[idx, own] = -np.inf
            s = others.max(axis=1) - logp[idx, own]
            valid = np.argmax(proba, axis=1) != own
        return s, valid

    def ask(self, X: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score, whether the change is accepted (decided as wanted, by ``margin``), answers."""
        proba = self.oracle.query(self.space.frame(X))
        s, v = self.score(proba, own)
        return s, v & (s > self.margin), proba

    def run(self, rows: pd.DataFrame, proba0: np.ndarray, classes: list, n: int) -> pd.DataFrame:
        sp = self.space
        X0 = rows[sp.features].to_numpy(dtype=object)
        R, p = X0.shape
        own = np.argmax(proba0, axis=1)
        done = own == self.target if self.target is not None else np.zeros(R, dtype=bool)
        # found[r]: list of (distance, frozenset of (j, value)) valid changes
        found: list[list[tuple[float, tuple]]] = [[] for _ in range(R)]
        frontier: list[list[tuple]] = [[()] if not done[r] else [] for r in range(R)]
        moves = [sp.moves(X0[r]) for r in range(R)]
        steps = [np.array([sp.step(int(j), X0[r, j], v) for j, v in zip(*moves[r])]) for r in range(R)]
        s0 = self.score(proba0, own)[0]
        for _depth in range(self.max_changes):
            blocks, cand_rows, cand_changes, cand_dist = [], [], [], []
            for r in range(R):
                fj, fv = moves[r]
                best = min((d for d, _ in found[r]), default=np.inf)
                for state in frontier[r]:
                    used = [j for j, _ in state]
                    base_d = sum(sp.step(j, X0[r, j], v) for j, v in state)
                    d = base_d + steps[r]
                    keep = np.flatnonzero(~np.isin(fj, used) & (d < best))
                    if not len(keep):
                        continue
                    block = np.repeat(self._apply(X0[r], state)[None], len(keep), axis=0)
                    block[np.arange(len(keep)), fj[keep]] = fv[keep]
                    blocks.append(block)
                    cand_rows.append(np.full(len(keep), r))
                    cand_changes.extend(state + ((int(fj[i]), fv[i]),) for i in keep)
                    cand_dist.append(d[keep])
            if not blocks:
                break
            X = np.concatenate(blocks)
            cr = np.concatenate(cand_rows)
            dist = np.concatenate(cand_dist)
            s, valid, _ = self.ask(X, own[cr])
            new_frontier: list[list[tuple]] = [[] for _ in range(R)]
            starts = np.flatnonzero(np.r_[True, cr[1:] != cr[:-1]])
            for a, b in zip(starts, np.r_[starts[1:], len(cr)]):  # candidates are grouped by row
                r = int(cr[a])
                idx = np.arange(a, b)
                for i in idx[valid[idx]]:
                    found[r].append((float(dist[i]), tuple(sorted(cand_changes[i], key=lambda t: t[0]))))
                rest = idx[~valid[idx]]
                rest = rest[s[rest] > s0[r]]
                gain = (s[rest] - s0[r]) / np.maximum(dist[rest], 1e-9)
                new_frontier[r] = [cand_changes[i] for i in rest[np.argsort(-gain, kind="stable")][:self.beam]]
            frontier = new_frontier
        return self._finish(rows, X0, own, proba0, found, classes, n, done)

    def _pull_back(self, X0: np.ndarray, own: np.ndarray, chosen: list[tuple], rows_idx: list[int]) -> list[tuple]:
        """Move each changed number back towards the row's value as far as the decision holds
        (one change at a time, the others held: the result stays valid as a whole), then undo
        every change the decision does not need. Each number is probed at ``_PROBES`` points
        between the row's value and the changed one, then again between the last point that
        failed and the first that held: ``_ROUNDS`` model calls per change, to about
        1/4096 of the change."""
        sp = self.space
        out = [list(ch) for ch in chosen]
        integer = [bool(sp.values[j].size) and bool(np.all(np.mod(sp.values[j], 1) == 0)) if sp.numeric[j] else False
                   for j in range(len(sp.features))]
        for k in range(self.max_changes):
            lo: dict[int, float] = {}  # per candidate: the point that failed (the row's value to start)
            for _round in range(_ROUNDS):
                probes, where, values = [], [], []
                for q, (r, ch) in enumerate(zip(rows_idx, out)):
                    if k >= len(ch):
                        continue
                    j, v = ch[k]
                    if not sp.numeric[j] or _missing(X0[r, j]):
                        continue
                    start, far = lo.get(q, float(X0[r, j])), float(v)
                    pts = start + (far - start) * np.arange(1, _PROBES + 1) / (_PROBES + 1)
                    if integer[j]:
                        pts = np.unique(np.ceil(pts) if far > start else np.floor(pts))
                    pts = pts[(pts != far) & (pts != start)]
                    for pt in pts:
                        probes.append(q)
                        where.append(r)
                        values.append(pt)
                if not probes:
                    break
                X = np.stack([self._apply(X0[r], out[q]) for q, r in zip(probes, where)])
                for i, (q, pt) in enumerate(zip(probes, values)):
                    X[i, out[q][k][0]] = pt
                _, valid, _ = self.ask(X, own[np.asarray(where)])
                for q in sorted(set(probes)):
                    idx = [i for i, qq in enumerate(probes) if qq == q]
                    j, v = out[q][k]
                    cur = float(X0[rows_idx[q], j])
                    # the closest point to the row that holds, and the farthest failing point before it
                    ok = [i for i in idx if valid[i]]
                    if ok:
                        best = min(ok, key=lambda i: abs(values[i] - cur))
                        out[q][k] = (j, values[best])
                        before = [i for i in idx if not valid[i] and abs(values[i] - cur) < abs(values[best] - cur)]
                        if before:
                            lo[q] = values[max(before, key=lambda i: abs(values[i] - cur))]
                    else:
                        lo[q] = values[max(idx, key=lambda i: abs(values[i] - cur))]
        # A number found by the pull-back is written to 4 significant digits, rounded away from
        # the row's value (towards where the decision holds); the final check asks the network.
        for q, (r, ch) in enumerate(zip(rows_idx, out)):
            for k, (j, v) in enumerate(ch):
                if sp.numeric[j] and not _missing(X0[r, j]) and not integer[j]:
                    out[q][k] = (j, _round_away(float(v), float(X0[r, j])))
        for _ in range(self.max_changes):  # undo what the decision does not need, one at a time
            probes, where = [], []
            for q, (r, ch) in enumerate(zip(rows_idx, out)):
                if len(ch) > 1:
                    for k in range(len(ch)):
                        probes.append((q, k))
                        where.append(r)
            if not probes:
                break
            X = np.stack([self._apply(X0[r], [c for kk, c in enumerate(out[q]) if kk != k])
                          for (q, k), r in zip(probes, where)])
            _, valid, _ = self.ask(X, own[np.asarray(where)])
            dropped = set()
            for (q, k), ok in zip(probes, valid):
                if ok and q not in dropped:
                    out[q] = [c for kk, c in enumerate(out[q]) if kk != k]
                    dropped.add(q)
            if not dropped:
                break
        return [tuple(ch) for ch in out]

    def _typical(self, target: int | None, own: int) -> float:
        """The median distance from a reference row decided as wanted to its nearest other such
        row (100 of them, evenly spaced): what plausibility compares with."""
        key = (target, own if target is None else None)
        cache = self._typical_cache
        if key not in cache:
            ok = np.flatnonzero(self.ref_class == target if target is not None else self.ref_class != own)
            if len(ok) < 2:
                cache[key] = np.nan
            else:
                sample = ok[np.unique(np.linspace(0, len(ok) - 1, min(len(ok), 100)).astype(int))]
                cols = [(v[sample], m[sample]) for v, m in self.ref_columns]
                others = [(v[ok], m[ok]) for v, m in self.ref_columns]
                d = self.space.distances(cols, others)
                d[np.arange(len(sample)), np.searchsorted(ok, sample)] = np.inf  # not itself
                cache[key] = float(np.median(d.min(axis=1)))
        return cache[key]

    @staticmethod
    def _apply(x: np.ndarray, changes: Sequence[tuple]) -> np.ndarray:
        y = x.copy()
        for j, v in changes:
            y[j] = v
        return y

    def _finish(self, rows, X0, own, proba0, found, classes, n, done) -> pd.DataFrame:
        sp = self.space
        R = len(X0)
        # The closest few valid changes of each row, one per set of features, are pulled back
        # together; the closest after the pull-back are kept (the grid's order can differ).
        shortlist: list[tuple[int, tuple]] = []
        for r in range(R):
            seen: set[frozenset] = set()
            for d, ch in sorted(found[r], key=lambda t: (t[0], len(t[1]))):
                key = frozenset(j for j, _ in ch)
                if key not in seen:
                    seen.add(key)
                    shortlist.append((r, ch))
                if len(seen) == n + _SHORTLIST:
                    break
        pulled = self._pull_back(X0, own, [ch for _, ch in shortlist], [r for r, _ in shortlist]) if shortlist else []
        per_row: dict[int, list[tuple[float, tuple]]] = {}
        for (r, _), ch in zip(shortlist, pulled):
            per_row.setdefault(r, []).append((sum(sp.step(j, X0[r, j], v) for j, v in ch), ch))
        picks: list[tuple[int, int, tuple | None]] = []  # (row, counterfactual number, changes)
        for r in range(R):
            seen = set()
            chosen = []
            for d, ch in sorted(per_row.get(r, []), key=lambda t: (t[0], len(t[1]))):
                key = frozenset(j for j, _ in ch)
                if key not in seen:
                    seen.add(key)
                    chosen.append(ch)
                if len(chosen) == n:
                    break
            picks += [(r, c + 1, ch) for c, ch in enumerate(chosen)]
            picks += [(r, c + 1, None) for c in range(len(chosen), n)]
        final = {i: ch for i, (_, _, ch) in enumerate(picks) if ch is not None}
        Xcf = np.stack([self._apply(X0[r], final.get(i, ())) for i, (r, _, _) in enumerate(picks)])
        pr = np.asarray([r for r, _, _ in picks])
        proba = self.oracle.query(sp.frame(Xcf))
        valid = self.score(proba, own[pr])[1]  # decided as wanted, asked again
        labels = np.asarray(classes, dtype=object)
        # plausibility: nearest reference row the network decides as wanted
        plaus = np.full(len(picks), np.nan)
        have_cf = np.flatnonzero([i in final for i in range(len(picks))])
        for start in range(0, len(have_cf), 256):  # bounded memory: 256 x reference rows at a time
            part = have_cf[start:start + 256]
            d = sp.distances(sp.columns(Xcf[part]), self.ref_columns)
            wanted = (self.ref_class[None, :] == self.target) if self.target is not None else \
                (self.ref_class[None, :] != own[pr[part]][:, None])
            d = np.where(wanted, d, np.inf).min(axis=1)
            plaus[part] = np.where(np.isfinite(d), d, np.nan)
        out = pd.DataFrame(index=rows.index[pr])
        out["counterfactual"] = [c for _, c, _ in picks]
        out["decision"] = pd.Series(labels[own[pr]], index=out.index, dtype=object)
        out["target"] = pd.Series([labels[self.target] if self.target is not None else f"not {labels[own[r]]}"
                                   for r in pr], index=out.index, dtype=object)
        out["found"] = [i in final for i in range(len(picks))]
        out["valid"] = valid & out["found"].to_numpy()
        out["changes"] = pd.Series([_describe(sp, X0[r], final.get(i, ())) if i in final else None
                                    for i, (r, _, _) in enumerate(picks)], index=out.index, dtype=object)
        out["n_changes"] = [len(final.get(i, ())) for i in range(len(picks))]
        out["distance"] = [sum(sp.step(j, X0[r, j], v) for j, v in final[i]) if i in final else np.nan
                           for i, (r, _, _) in enumerate(picks)]
        out["plausibility"] = plaus
        out["plausibility_typical"] = [self._typical(self.target if self.target is not None else None, own[r])
                                       for r in pr]
        notes = []
        for i, (r, c, _) in enumerate(picks):
            if done[r]:
                notes.append(f"already decided {labels[own[r]]}")
            elif i not in final:
                notes.append(f"no change of at most {self.max_changes} actionable features within the observed "
                             "values decides otherwise" if c == 1 else "no further set of features found")
            else:
                notes.append(None)
        out["note"] = pd.Series(notes, index=out.index, dtype=object)
        cf = sp.frame(Xcf)
        for f in sp.features:
            out[f"cf_{f}"] = cf[f].to_numpy()
        out.attrs["proba"] = proba
        return out


def _round_away(v: float, start: float, digits: int = 4) -> float:
    """``v`` to ``digits`` significant digits, rounded away from ``start``."""
    if v == 0 or not np.isfinite(v):
        return v
    step = 10.0 ** (np.floor(np.log10(abs(v))) - digits + 1)
    q = np.ceil(v / step) if v > start else np.floor(v / step)
    return float(np.round(q * step, 12))


def _describe(sp: _Space, x: np.ndarray, changes: Sequence[tuple]) -> str:
    parts = []
    for j, v in sorted(changes, key=lambda t: t[0]):
        parts.append(f"{sp.features[j]}: {_text(x[j])} -> {_text(v)}")
    return "; ".join(parts)


def _text(v: Any) -> str:
    if _missing(v):
        return "missing"
    if isinstance(v, (float, np.floating)):
        return np.format_float_positional(float(v), precision=6, unique=True, trim="-")
    return str(v)


def _is_number(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _isna(a: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(pd.Series(a, dtype=object)), dtype=bool)
