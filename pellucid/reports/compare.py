"""What changed between two reports: the comparison, as plain data.

:func:`diff_reports` reads two report payloads (``report.json`` of an old and a new model
version, or the dicts themselves) and compares what both hold: the recommended surrogate and
its fidelity, the network's own accuracy, the surrogates by name, the recommended surrogates'
rules (kept, removed, added, and moved thresholds), the features' attribution rankings, and the
schema. The result is a plain JSON-able dict (keys in ``docs/diff.md``); nothing is recomputed
from the data: every number is read from the two payloads. Writing it as Markdown or as a page
is :mod:`pellucid.reports.diff`'s work.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from .._files import read_text
from .._validation import exact, plain
from ..errors import DataFileError, ParameterError
from ..extraction.rules import NUMERIC_OPS, Rule
from .payload import JSON_NAME
from .validation import loads_report, validate_report

#: Version of the layout of the dict :func:`diff_reports` returns (see docs/diff.md).
DIFF_VERSION = "1.0"

#: Major versions of ``report.json`` this module can read.
#: Major versions of report.json this pellucid reads (2.0 moved durations into ``run``).
KNOWN_MAJORS = ("1", "2")

#: Features shown per attribution ranking unless asked otherwise.
TOP_K = 5

SIGNIFICANCE_RULE = (
    "significant when the two reports' confidence intervals of the headline agreement "
    "(Wilson intervals, as stored in each report) do not overlap; this is a conservative "
    "check: overlapping intervals do not show that nothing changed. R² has no interval in a "
    "report, so a change of R² is never flagged."
)


# ---------------------------------------------------------------------------- reading
def load_report(source: Any, role: str = "report") -> tuple[dict[str, Any], str]:
    """Read one report payload and check that it is a tabular pellucid report.

    Parameters
    ----------
    source : dict or path
        A payload, a ``report.json`` file, or a folder holding one.
    role : str
        How errors name the argument when it is a dict (``"old report"``, ``"new report"``).

    Returns
    -------
    (dict, str)
        The payload and a name for it (the file's path, or ``role``).

    Raises
    ------
    DataFileError
        The file is missing, unreadable or not JSON, or the JSON is not a pellucid report
        (no ``schema_version``, another kind of report, a major version this pellucid does
        not know), or it does not validate against the schema of ``report.json``
        (:func:`pellucid.reports.validate_report`: the message names the JSON path of the
        first problem, e.g. a ``NaN`` literal, a string where a number belongs, an index
        past the end of its list).
    ParameterError
        ``source`` is a dict that is not a pellucid report or does not validate, or neither a
        dict nor a path.
    """
    if isinstance(source, Mapping):
        _check_report(source, role, ParameterError)
        validate_report(source, role, error=ParameterError)
        return dict(source), role
    if not isinstance(source, (str, os.PathLike)):
        raise ParameterError(f"{role} must be a report payload (dict) or the path of a report.json, got {type(source).__name__}")
    p = Path(source)
    if p.is_dir():
        if not (p / JSON_NAME).is_file():
            raise DataFileError(f"report folder {str(p)!r} holds no {JSON_NAME}")
        p = p / JSON_NAME
    text, _ = read_text(p, f"report file {str(p)!r}")
    try:
        payload = loads_report(text)
    except json.JSONDecodeError as e:
        raise DataFileError(f"report file {str(p)!r} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    _check_report(payload, f"report file {str(p)!r}", DataFileError)
    # Before anything reads it: a hand-edited file is refused at its first problem, by JSON path.
    validate_report(payload, f"report file {str(p)!r}", error=DataFileError)
    return payload, str(p)


def _check_report(payload: Any, name: str, error: type[Exception]) -> None:
    if not isinstance(payload, Mapping):
        raise error(f"{name} is not a pellucid report: a JSON {type(payload).__name__}, not an object")
    version = payload.get("schema_version")
    if not isinstance(version, str) or not version:
        raise error(f"{name} is not a pellucid report: it has no schema_version key")
    kind = payload.get("kind")
    if kind not in (None, "tabular"):
        raise error(
            f"{name} is a pellucid report of kind {kind!r}; only reports on tabular data (a network explained "
            "by surrogates) can be compared or rendered again"
        )
    if version.split(".")[0] not in KNOWN_MAJORS:
        known = " and ".join(f"{m}.x" for m in KNOWN_MAJORS)
        raise error(f"{name} has schema_version {version!r}; this pellucid reads {known} reports")
    if not isinstance(payload.get("surrogates", []), list):
        raise error(f"{name} is not a pellucid report: 'surrogates' is not a list")


# ---------------------------------------------------------------------------- small helpers
def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...`` or None when any level is missing or not a dict."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _delta(old: Any, new: Any) -> float | None:
    a, b = _num(old), _num(new)
    return None if a is None or b is None else b - a


def _list(v: Any) -> list:
    return list(v) if isinstance(v, list) else []


def _version_tuple(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else x for x in v.split("."))


def _task(payload: Mapping[str, Any]) -> str | None:
    return _get(payload, "distillation", "task") or _get(payload, "model", "task")


def _measure(task: str | None) -> str:
    return "r2" if task == "regression" else "agreement"


def _interval(v: Any) -> list[float] | None:
    if isinstance(v, list) and len(v) == 2 and all(_num(x) is not None for x in v):
        return [float(v[0]), float(v[1])]
    return None


def _overlap(a: list[float] | None, b: list[float] | None) -> bool | None:
    if a is None or b is None:
        return None
    return not (a[1] < b[0] or b[1] < a[0])


# ---------------------------------------------------------------------------- identity
def _identity(p: Mapping[str, Any], name: str) -> dict[str, Any]:
    meta = p.get("meta") if isinstance(p.get("meta"), Mapping) else {}
    return {
        "source": name,
        "title": meta.get("title"),
        # The time of generation is in the run block from report format 2.0 on.
        "created": _get(p, "run", "created") or _get(p, "generated_by", "created"),
        "pellucid": _get(p, "generated_by", "pellucid"),
        "schema_version": p.get("schema_version"),
        "command_line": meta.get("command_line") or meta.get("command"),
        "model": {k: _get(p, "model", k) for k in ("kind", "model_class", "task", "classes", "n_parameters", "source", "sha256")},
        "data": {
            "sha256": _get(p, "data", "sha256") or meta.get("data_sha256"),
            "source": _get(p, "data", "source") or meta.get("data_source") or meta.get("data_file"),
            "n_rows": _get(p, "data", "n_rows"),
            "n_features": _get(p, "data", "n_features"),
        },
    }


def _same(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else a == b


def _compare_identity(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    va, vb = old["schema_version"], new["schema_version"]
    note = None
    if va != vb:
        note = (
            f"schema versions differ ({va} and {vb}): only what both layouts hold is compared; "
            "sections the older one lacks show as absent"
        )
    return {
        "schema_versions_differ": va != vb,
        "schema_note": note,
        "same_model_file": _same(old["model"]["sha256"], new["model"]["sha256"]),
        "same_model_class": _same(old["model"]["model_class"], new["model"]["model_class"]),
        "same_data": _same(old["data"]["sha256"], new["data"]["sha256"]),
        "same_task": _same(old["model"]["task"], new["model"]["task"]),
    }


# ---------------------------------------------------------------------------- fidelity
def _score_of(s: Mapping[str, Any], measure: str) -> tuple[float | None, list[float] | None]:
    fid = s.get("fidelity") if isinstance(s.get("fidelity"), Mapping) else {}
    if measure == "r2":
        return _num(fid.get("r2")), None
    return _num(fid.get("agreement")), _interval(fid.get("agreement_ci"))


def _n_rules(s: Mapping[str, Any]) -> int | None:
    n = _get(s, "complexity", "n_rules")
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    return len(s["rules"]) if isinstance(s.get("rules"), list) else None


def _label(s: Mapping[str, Any]) -> str:
    return str(s.get("label") or s.get("name") or "?")


def _recommended(p: Mapping[str, Any]) -> tuple[int | None, dict[str, Any] | None]:
    surrogates = _list(p.get("surrogates"))
    rec = p.get("recommended")
    if isinstance(rec, int) and not isinstance(rec, bool) and 0 <= rec < len(surrogates) and isinstance(surrogates[rec], Mapping):
        return rec, surrogates[rec]
    return None, None


def _surrogate_summary(s: Mapping[str, Any] | None, index: int | None, measure: str) -> dict[str, Any] | None:
    if s is None:
        return None
    score, ci = _score_of(s, measure)
    fid = s.get("fidelity") if isinstance(s.get("fidelity"), Mapping) else {}
    return {
        "index": index,
        "label": _label(s),
        "name": s.get("name"),
        "type": s.get("type"),
        "n_rules": _n_rules(s),
        "score": score,
        "interval": ci,
        "confidence": _num(fid.get("confidence")),
        "rows": fid.get("rows"),
        "n": fid.get("n"),
    }


def _score_change(measure: str, old: Any, new: Any, ci_old: Any = None, ci_new: Any = None) -> dict[str, Any]:
    d = _delta(old, new)
    overlap = _overlap(ci_old, ci_new) if measure == "agreement" else None
    return {
        "delta": d,
        # Percentage points for a share; R² changes are given in R² units.
        "delta_points": None if d is None or measure != "agreement" else 100 * d,
        "significant": None if overlap is None or d is None else (not overlap),
    }


def _fidelity(old: Mapping[str, Any], new: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    mo, mn = _measure(_task(old)), _measure(_task(new))
    io, so = _recommended(old)
    inn, sn = _recommended(new)
    a, b = _surrogate_summary(so, io, mo), _surrogate_summary(sn, inn, mn)
    out: dict[str, Any] = {
        "measure": mo if mo == mn else None,
        "old": a,
        "new": b,
        "same_surrogate": None if a is None or b is None else a["label"] == b["label"],
        "delta": None,
        "delta_points": None,
        "significant": None,
        "significance_rule": SIGNIFICANCE_RULE,
        "same_rows": None,
    }
    if mo != mn:
        notes.append(f"the tasks differ ({_task(old)} and {_task(new)}): fidelity is not compared")
        return out
    if a is None or b is None:
        missing = " and ".join(w for w, s in (("the old", a), ("the new", b)) if s is None)
        notes.append(f"{missing} report recommends no surrogate: the headline fidelity is not compared")
        return out
    out.update(_score_change(mo, a["score"], b["score"], a["interval"], b["interval"]))
    out["same_rows"] = a["rows"] == b["rows"]
    if not out["same_rows"]:
        notes.append(f"fidelity was measured on different kinds of rows ({a['rows']} and {b['rows']})")
    return out


def _ground_truth(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    go, gn = old.get("ground_truth"), new.get("ground_truth")
    if not isinstance(go, Mapping) and not isinstance(gn, Mapping):
        return None
    go = go if isinstance(go, Mapping) else {}
    gn = gn if isinstance(gn, Mapping) else {}
    measure = "accuracy" if (go.get("accuracy") is not None or gn.get("accuracy") is not None) else "r2"
    d = _delta(go.get(measure), gn.get(measure))
    return {
        "measure": measure,
        "old": {"target": go.get("target"), "n": go.get("n"), "value": _num(go.get(measure))} if go else None,
        "new": {"target": gn.get("target"), "n": gn.get("n"), "value": _num(gn.get(measure))} if gn else None,
        "delta": d,
        "delta_points": None if d is None or measure != "accuracy" else 100 * d,
    }


# ---------------------------------------------------------------------------- surrogates
def _surrogates(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    mo, mn = _measure(_task(old)), _measure(_task(new))
    io, _ = _recommended(old)
    inn, _ = _recommended(new)

    def index(p: Mapping[str, Any]) -> dict[str, tuple[int, Mapping[str, Any]]]:
        out: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for i, s in enumerate(_list(p.get("surrogates"))):
            if isinstance(s, Mapping):
                out.setdefault(_label(s), (i, s))
        return out

    a, b = index(old), index(new)
    matched, only_old, only_new = [], [], []
    for label, (i, s) in a.items():
        if label not in b:
            only_old.append({"label": label, "score": _score_of(s, mo)[0], "n_rules": _n_rules(s), "recommended": i == io})
            continue
        j, t = b[label]
        (sa, ca), (sb, cb) = _score_of(s, mo), _score_of(t, mn)
        ra, rb = _n_rules(s), _n_rules(t)
        entry = {
            "label": label,
            "name": s.get("name"),
            "old_score": sa,
            "new_score": sb,
            "old_interval": ca,
            "new_interval": cb,
            **(_score_change(mo, sa, sb, ca, cb) if mo == mn else {"delta": None, "delta_points": None, "significant": None}),
            "old_rules": ra,
            "new_rules": rb,
            "delta_rules": None if ra is None or rb is None else rb - ra,
            "old_recommended": i == io,
            "new_recommended": j == inn,
        }
        matched.append(entry)
    for label, (j, t) in b.items():
        if label not in a:
            only_new.append({"label": label, "score": _score_of(t, mn)[0], "n_rules": _n_rules(t), "recommended": j == inn})
    return {"measure": mo if mo == mn else None, "matched": matched, "only_old": only_old, "only_new": only_new}


# ---------------------------------------------------------------------------- rules
def rule_text(rule: Mapping[str, Any]) -> str:
    """A rule's logic as one line, without its coverage: ``income <= 39.35 → bad``.

    Written by the rule data model (:meth:`pellucid.extraction.Rule.text`) from the rule's
    structured conditions; the stored ``text`` (less its figures) when they cannot be read back.
    """
    try:
        return Rule.from_dict(rule).text(confidence=False)
    except Exception:  # an infinite threshold is stored as null; fall back on the page's text
        text = str(rule.get("text") or "")
        cut = text.rfind(" (")
        return text[:cut] if cut > 0 and text.endswith(")") else text


def _condition_shape(c: Mapping[str, Any]) -> tuple:
    """What must agree for two conditions to be "the same condition, moved": all but a finite
    numeric threshold."""
    op = c.get("op")
    value = c.get("value")
    numeric = op in NUMERIC_OPS and _num(value) is not None
    return (
        str(c.get("feature")),
        str(op),
        bool(c.get("missing")),
        "<threshold>" if numeric else json.dumps(value, sort_keys=True, default=str),
    )


def _rule_shape(rule: Mapping[str, Any]) -> tuple:
    conds = [c for c in _list(rule.get("conditions")) if isinstance(c, Mapping)]
    outcome = json.dumps(rule.get("outcome"), default=str)
    return (outcome, tuple(sorted(_condition_shape(c) for c in conds)))


def _sorted_conditions(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    conds = [c for c in _list(rule.get("conditions")) if isinstance(c, Mapping)]
    return sorted(conds, key=lambda c: (_condition_shape(c), _num(c.get("value")) or 0.0))


def _ranges(p: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for f in _schema_features(p).values():
        lo, hi = _num(f.get("low")), _num(f.get("high"))
        if lo is not None and hi is not None and hi > lo:
            out[str(f.get("name"))] = hi - lo
    return out


def _moves(a: Mapping[str, Any], b: Mapping[str, Any], ranges: Mapping[str, float]) -> list[dict[str, Any]]:
    moves = []
    for ca, cb in zip(_sorted_conditions(a), _sorted_conditions(b)):
        va, vb = _num(ca.get("value")), _num(cb.get("value"))
        if ca.get("op") not in NUMERIC_OPS or va is None or vb is None or va == vb:
            continue
        feature = str(ca.get("feature"))
        integer = ca.get("kind") in ("integer", "binary")
        span = ranges.get(feature)
        moves.append({
            "feature": feature,
            "op": ca.get("op"),
            "old": va,
            "new": vb,
            "delta": vb - va,
            # The move as a share of the feature's range (new schema's low..high).
            "relative": None if span is None else (vb - va) / span,
            "old_text": exact(va, integer),
            "new_text": exact(vb, integer),
        })
    return moves


def _distance(moves: list[dict[str, Any]]) -> float:
    return sum(abs(m["relative"]) if m["relative"] is not None else abs(m["delta"]) for m in moves)


def _rule_entry(rule: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {"text": rule_text(rule), "index": index, "outcome": rule.get("outcome"), "coverage": _num(rule.get("coverage"))}


def _rules(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    _, so = _recommended(old)
    _, sn = _recommended(new)
    if so is None or sn is None:
        return None
    ra = [r for r in _list(so.get("rules")) if isinstance(r, Mapping)]
    rb = [r for r in _list(sn.get("rules")) if isinstance(r, Mapping)]
    ta, tb = [rule_text(r) for r in ra], [rule_text(r) for r in rb]
    ordered = bool(so.get("ordered")) and bool(sn.get("ordered"))

    # 1. Kept: the same logic, as a person reads it (a multiset match: repeats pair in order).
    kept, left_a = [], []
    free_b = list(range(len(rb)))
    for i, t in enumerate(ta):
        j = next((j for j in free_b if tb[j] == t), None)
        if j is None:
            left_a.append(i)
            continue
        free_b.remove(j)
        kept.append({
            "text": t, "old_index": i, "new_index": j, "outcome": ra[i].get("outcome"),
            "old_coverage": _num(ra[i].get("coverage")), "new_coverage": _num(rb[j].get("coverage")),
            "moved": ordered and i != j,
        })

    # 2. Changed: the same features, operators and categories, some threshold moved. Each old
    # rule takes the closest new rule of its shape (smallest total move, relative to ranges).
    ranges = _ranges(new)
    changed, removed = [], []
    for i in left_a:
        shape = _rule_shape(ra[i])
        candidates = [(j, _moves(ra[i], rb[j], ranges)) for j in free_b if _rule_shape(rb[j]) == shape]
        candidates = [(j, m) for j, m in candidates if m]
        if not candidates:
            removed.append(_rule_entry(ra[i], i))
            continue
        j, moves = min(candidates, key=lambda jm: (_distance(jm[1]), jm[0]))
        free_b.remove(j)
        changed.append({
            "old_text": ta[i], "new_text": tb[j], "old_index": i, "new_index": j, "outcome": ra[i].get("outcome"),
            "old_coverage": _num(ra[i].get("coverage")), "new_coverage": _num(rb[j].get("coverage")),
            "thresholds": moves,
        })
    added = [_rule_entry(rb[j], j) for j in free_b]

    da, db = so.get("default"), sn.get("default")
    oa = da.get("outcome") if isinstance(da, Mapping) else None
    ob = db.get("outcome") if isinstance(db, Mapping) else None
    return {
        "old_surrogate": _label(so),
        "new_surrogate": _label(sn),
        "same_surrogate": _label(so) == _label(sn),
        "ordered": ordered,
        "n_old": len(ra),
        "n_new": len(rb),
        "kept": kept,
        "changed": changed,
        "removed": removed,
        "added": added,
        "default": {"old": oa, "new": ob, "changed": oa != ob},
    }


# ---------------------------------------------------------------------------- features
def _ranking(importance: Any) -> list[str]:
    """Features by importance, highest first (ties by name); null values left out."""
    if not isinstance(importance, Mapping):
        return []
    items = [(str(f), _num(v)) for f, v in importance.items()]
    return [f for f, v in sorted(((f, v) for f, v in items if v is not None), key=lambda fv: (-fv[1], fv[0]))]


def _spearman(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float | None, int, str | None]:
    common = sorted(set(a) & set(b))
    common = [f for f in common if _num(a[f]) is not None and _num(b[f]) is not None]
    if len(common) < 2:
        return None, len(common), f"{len(common)} feature(s) ranked on both sides; a rank correlation needs 2"
    x = np.array([float(a[f]) for f in common])
    y = np.array([float(b[f]) for f in common])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, len(common), "one ranking is constant (every feature equally important)"
    rho = float(spearmanr(x, y).statistic)
    return (rho if math.isfinite(rho) else None), len(common), None


def compare_rankings(old: Mapping[str, Any], new: Mapping[str, Any], k: int = TOP_K) -> dict[str, Any]:
    """Two importance maps (feature -> importance) compared: top ``k`` of each, the features
    entering and leaving the top ``k``, every top feature's rank on both sides, and the
    Spearman correlation over the features both rank."""
    ra, rb = _ranking(old), _ranking(new)
    top_a, top_b = ra[:k], rb[:k]
    rho, n_common, reason = _spearman(
        {f: old[f] for f in old} if isinstance(old, Mapping) else {},
        {f: new[f] for f in new} if isinstance(new, Mapping) else {},
    )
    pos_a = {f: i + 1 for i, f in enumerate(ra)}
    pos_b = {f: i + 1 for i, f in enumerate(rb)}
    shown = top_a + [f for f in top_b if f not in top_a]
    return {
        "old_top": top_a,
        "new_top": top_b,
        "entered": [f for f in top_b if f not in top_a],
        "left": [f for f in top_a if f not in top_b],
        "order_changed": top_a != top_b,
        "ranks": [{"feature": f, "old_rank": pos_a.get(f), "new_rank": pos_b.get(f)} for f in shown],
        "spearman": rho,
        "n_common": n_common,
        "reason": reason,
    }


def _features(old: Mapping[str, Any], new: Mapping[str, Any], k: int, notes: list[str]) -> dict[str, Any]:
    def methods(p: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for m in _list(_get(p, "attributions", "methods")):
            if isinstance(m, Mapping) and m.get("name") is not None:
                out.setdefault(str(m["name"]), m)
        return out

    a, b = methods(old), methods(new)
    if not a or not b:
        missing = " and ".join(w for w, m in (("the old", a), ("the new", b)) if not m)
        notes.append(f"{missing} report holds no attributions: the feature rankings are not compared")
    rows = []
    for name, m in a.items():
        if name in b:
            rows.append({"name": name, "label": m.get("label") or name, **compare_rankings(m.get("importance") or {}, b[name].get("importance") or {}, k)})

    # Surrogates' own importance, when a report carries one per surrogate (key "importance").
    def importances(p: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for s in _list(p.get("surrogates")):
            if isinstance(s, Mapping) and isinstance(s.get("importance"), Mapping):
                out.setdefault(_label(s), s["importance"])
        return out

    ia, ib = importances(old), importances(new)
    surrogate_rows = [{"label": lab, **compare_rankings(ia[lab], ib[lab], k)} for lab in ia if lab in ib]
    return {
        "k": k,
        "methods": rows,
        "only_old": [n for n in a if n not in b],
        "only_new": [n for n in b if n not in a],
        "surrogates": surrogate_rows,
        "surrogates_note": None if (ia and ib) else "the reports hold no per-surrogate importance",
    }


# ---------------------------------------------------------------------------- schema
def _schema_features(p: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for f in _list(_get(p, "data", "schema", "features")):
        if isinstance(f, Mapping) and f.get("name") is not None:
            out.setdefault(str(f["name"]), f)
    return out


def _schema(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    a, b = _schema_features(old), _schema_features(new)
    kind_changed, range_changed, categories_changed = [], [], []
    for name, fa in a.items():
        if name not in b:
            continue
        fb = b[name]
        if fa.get("kind") != fb.get("kind"):
            kind_changed.append({"feature": name, "old": fa.get("kind"), "new": fb.get("kind")})
        lo_a, hi_a, lo_b, hi_b = (_num(fa.get("low")), _num(fa.get("high")), _num(fb.get("low")), _num(fb.get("high")))
        if (lo_a, hi_a) != (lo_b, hi_b) and any(v is not None for v in (lo_a, hi_a, lo_b, hi_b)):
            range_changed.append({"feature": name, "old_low": lo_a, "old_high": hi_a, "new_low": lo_b, "new_high": hi_b})
        cats_a, cats_b = fa.get("categories"), fb.get("categories")
        if isinstance(cats_a, list) or isinstance(cats_b, list):
            la, lb = [str(c) for c in _list(cats_a)], [str(c) for c in _list(cats_b)]
            if set(la) != set(lb):
                categories_changed.append({
                    "feature": name,
                    "added": [c for c in lb if c not in la],
                    "removed": [c for c in la if c not in lb],
                })
    return {
        "added": [{"feature": n, "kind": f.get("kind")} for n, f in b.items() if n not in a],
        "removed": [{"feature": n, "kind": f.get("kind")} for n, f in a.items() if n not in b],
        "kind_changed": kind_changed,
        "range_changed": range_changed,
        "categories_changed": categories_changed,
        "n_rows": {"old": _get(old, "data", "n_rows"), "new": _get(new, "data", "n_rows")},
    }


# ---------------------------------------------------------------------------- the diff
def diff_reports(old: Any, new: Any, *, top_k: int = TOP_K) -> dict[str, Any]:
    """Compare two pellucid reports: what changed between two model versions.

    Parameters
    ----------
    old, new : dict or path
        Report payloads (:func:`pellucid.reports.build_payload`), or ``report.json`` files (or
        the folders holding them).
    top_k : int
        Features compared per attribution ranking (default 5).

    Returns
    -------
    dict
        Plain JSON: ``diff_version``, ``old`` and ``new`` (each report's identity),
        ``identity`` (what the two share), ``fidelity`` (the recommended surrogates and their
        headline fidelity), ``ground_truth``, ``surrogates`` (matched by label), ``rules`` (of
        the recommended surrogates: kept, changed, removed, added), ``features`` (attribution
        rankings), ``schema``, ``notes`` (what could not be compared) and ``summary``
        (``changed`` and one line per change). See ``docs/diff.md``.

    Raises
    ------
    DataFileError
        A file is missing, not JSON, or not a pellucid report on tabular data.
    ParameterError
        A dict that is not a report, or ``top_k`` below 1.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ParameterError(f"top_k must be a whole number of features >= 1, got {top_k!r}")
    a, name_a = load_report(old, "old report")
    b, name_b = load_report(new, "new report")
    notes: list[str] = []
    ia, ib = _identity(a, name_a), _identity(b, name_b)
    identity = _compare_identity(ia, ib)
    if identity["schema_note"]:
        notes.append(identity["schema_note"])
    out = {
        "diff_version": DIFF_VERSION,
        "old": ia,
        "new": ib,
        "identity": identity,
        "fidelity": _fidelity(a, b, notes),
        "ground_truth": _ground_truth(a, b),
        "surrogates": _surrogates(a, b),
        "rules": _rules(a, b),
        "features": _features(a, b, int(top_k), notes),
        "schema": _schema(a, b),
        "notes": notes,
    }
    out["summary"] = summarise(out)
    return plain(out, other=None)


# ---------------------------------------------------------------------------- summary lines
# These write the diff's own figures (the summary lines here, the Markdown and the page through
# the template filters): plain f-string rounding, as the diff has always printed them.
def pct_text(v: Any, digits: int = 1) -> str:
    """A share as a percentage, ``0.973`` -> ``97.3%``; an em dash when there is none."""
    return "—" if _num(v) is None else f"{100 * float(v):.{digits}f}%"


def points_text(v: Any) -> str:
    """A change of a share in percentage points, ``-1.3`` -> ``-1.3 points``."""
    return "—" if _num(v) is None else f"{float(v):+.1f} points"


def score_text(measure: str | None, s: Mapping[str, Any] | None) -> str:
    """A recommended surrogate's headline score (a :func:`diff_reports` ``fidelity`` side),
    with its interval when it has one."""
    if s is None:
        return "—"
    if measure == "r2":
        return "—" if s.get("score") is None else f"R² {s['score']:.3f}"
    ci = s.get("interval")
    body = pct_text(s.get("score"))
    return f"{body} [{pct_text(ci[0])}, {pct_text(ci[1])}]" if ci else body


def summarise(d: Mapping[str, Any], q: Any = str) -> dict[str, Any]:
    """The headline changes, one line each. ``q`` writes a string from the reports (a name, a
    feature): ``str`` for the JSON, a code span for Markdown."""
    lines: list[str] = []
    changed = False
    f = d["fidelity"]
    if f["old"] is not None and f["new"] is not None:
        if not f["same_surrogate"]:
            changed = True
            lines.append(
                f"The recommended surrogate changed: {q(f['old']['label'])} ({f['old']['n_rules']} rules) → "
                f"{q(f['new']['label'])} ({f['new']['n_rules']} rules)."
            )
        word = "Agreement" if f["measure"] == "agreement" else "R²"
        if f["delta"] is not None:
            if f["delta"] != 0:
                changed = True
            if f["measure"] == "agreement":
                verdict = (
                    "the intervals do not overlap (significant)" if f["significant"]
                    else "within the intervals (not significant)" if f["significant"] is False
                    else "no intervals to judge by"
                )
                lines.append(
                    f"{word} of the recommended surrogate: {score_text(f['measure'], f['old'])} → "
                    f"{score_text(f['measure'], f['new'])}, {points_text(f['delta_points'])}; {verdict}."
                )
            else:
                lines.append(
                    f"R² of the recommended surrogate: {f['old']['score']:.3f} → {f['new']['score']:.3f} "
                    f"({f['delta']:+.3f})."
                )
    g = d["ground_truth"]
    if g and g["delta"] is not None:
        if g["delta"] != 0:
            changed = True
        if g["measure"] == "accuracy":
            lines.append(f"Network accuracy on the target: {pct_text(g['old']['value'])} → {pct_text(g['new']['value'])} ({points_text(g['delta_points'])}).")
        else:
            lines.append(f"Network R² on the target: {g['old']['value']:.3f} → {g['new']['value']:.3f} ({g['delta']:+.3f}).")
    s = d["surrogates"]
    moved = [m for m in s["matched"] if (m["delta"] or 0) != 0 or (m["delta_rules"] or 0) != 0]
    if moved or s["only_old"] or s["only_new"]:
        changed = True
        lines.append(
            f"Surrogates: {len(moved)} of {len(s['matched'])} on both sides changed in fidelity or size; "
            f"{len(s['only_old'])} only in the old report, {len(s['only_new'])} only in the new."
        )
    r = d["rules"]
    if r is not None:
        n_changes = len(r["changed"]) + len(r["removed"]) + len(r["added"]) + int(r["default"]["changed"])
        if n_changes or any(k["moved"] for k in r["kept"]):
            changed = True
        lines.append(
            f"Rules of the recommended surrogate: {len(r['kept'])} kept, {len(r['changed'])} with moved thresholds, "
            f"{len(r['removed'])} removed, {len(r['added'])} added"
            + ("; the default outcome changed." if r["default"]["changed"] else ".")
        )
    feats = d["features"]
    for m in feats["methods"]:
        if m["entered"] or m["left"] or m["order_changed"] or (m["spearman"] is not None and m["spearman"] < 1):
            changed = True
            parts = []
            if m["entered"]:
                parts.append("entered: " + ", ".join(map(q, m["entered"])))
            if m["left"]:
                parts.append("left: " + ", ".join(map(q, m["left"])))
            if not parts:
                parts.append("same features" + (", new order" if m["order_changed"] else ""))
            rho = "—" if m["spearman"] is None else f"{m['spearman']:.2f}"
            lines.append(f"Top {feats['k']} features by {q(m['label'])}: {'; '.join(parts)}; Spearman {rho}.")
    sc = d["schema"]
    counts = [(len(sc[k]), w) for k, w in (("added", "added"), ("removed", "removed"), ("kind_changed", "changed kind"),
                                           ("range_changed", "changed range"), ("categories_changed", "changed categories"))]
    if any(n for n, _ in counts):
        changed = True
        lines.append("Schema: " + ", ".join(f"{n} feature(s) {w}" for n, w in counts if n) + ".")
    if not changed:
        lines.insert(0, "No change in fidelity, rules, feature rankings or schema.")
    return {"changed": changed, "lines": lines}


__all__ = [
    "DIFF_VERSION",
    "SIGNIFICANCE_RULE",
    "TOP_K",
    "compare_rankings",
    "diff_reports",
    "load_report",
    "pct_text",
    "points_text",
    "rule_text",
    "score_text",
    "summarise",
]
