"""The report's JSON twin: one plain dict that holds every number the HTML page shows.

:func:`build_payload` gathers the model description, the schema, the distillation summary and
each surrogate with its fidelity into a dict of plain JSON values. The HTML is rendered from
this dict alone (:func:`pellucid.reports.render_html`), so the page and ``report.json`` can
never disagree. The keys are documented in ``docs/report-json.md``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import json
import math
import os
import platform
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import PurePath
from typing import Any

import numpy as np

from .._validation import exact
from ..errors import ParameterError
from ..extraction.rules import INTEGER_KINDS, features_with_missing, missing_note
from .limitations import find_limitations

SCHEMA_VERSION = "2.5"

#: The files of a report in its folder (written by :mod:`pellucid.reports.builder`, read back
#: by :func:`pellucid.reports.compare.load_report`).
HTML_NAME = "report.html"
JSON_NAME = "report.json"
PDF_NAME = "report.pdf"

#: Surrogates with more rules than this are recommended only when no smaller one exists.
MAX_RULES_RECOMMENDED = 12

#: How the page names the rows a fidelity was measured on, by ``fidelity["rows"]``.
ROWS_WORDS = {"holdout": "held-out rows", "given": "the rows given", "all": "all rows (no holdout)"}

# Libraries whose versions decide the numbers in a report.
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "torch", "matplotlib", "Jinja2", "graphviz")


def build_payload(
    *,
    model: Mapping[str, Any],
    schema: Any,
    dset: Any,
    surrogates: Sequence[Any],
    fidelities: Sequence[Any],
    meta: Mapping[str, Any] | None = None,
    ground_truth: Mapping[str, Any] | None = None,
    frontier: Any = None,
    stability: Mapping[int, Any] | Sequence[Any] | None = None,
    disagreement: Mapping[str, Any] | None = None,
    frontier_selected: Any = None,
    recommended: int | None = None,
    attributions: Mapping[str, Any] | None = None,
    local: Mapping[str, Any] | None = None,
    extrapolation: Mapping[str, Any] | None = None,
    linear_view: int | None = None,
    card: Mapping[str, Any] | None = None,
    analysis: Mapping[str, Any] | None = None,
    decisions: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    same_rules: Mapping[int, Sequence[str]] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Gather everything a report shows into one JSON-serialisable dict.

    Parameters
    ----------
    model : dict
        The oracle's ``describe()``: kind, class name, task, classes, parameters, device,
        preprocessing, versions, file hash, source. Any JSON-like dict is accepted.
    schema : Schema
        The schema of the reference table.
    dset : DistillationSet
        The distillation set the surrogates were fitted on.
    surrogates : list of Surrogate
        Fitted surrogates, in the order the report lists them.
    fidelities : list of Fidelity
        ``fidelity.evaluate`` of each surrogate, in the same order.
    meta : dict, optional
        About the run: ``title``, ``command`` (or ``command_line``), ``seeds`` (or
        ``random_state``), ``run_time_s``, ``timings`` (seconds per step), ``data_source``
        (or ``data_file``), ``data_sha256`` (of the reference table),
        ``max_rules_recommended``; other keys are kept and shown under reproducibility.
    ground_truth : dict, optional
        The network against the user's target column, e.g. ``{"accuracy": 0.91,
        "target": "default", "n": 1500}``.
    frontier : Frontier, optional
        :func:`pellucid.fidelity.frontier`'s result (or its ``to_dict()``), stored under
        ``frontier``. Each entry gets ``surrogate_index``: the index into ``surrogates`` of
        the surrogate object it fitted, when that very object (not a copy) is listed.
    stability : mapping, optional
        Surrogate index -> :class:`~pellucid.fidelity.Stability` (or its ``to_dict()``),
        stored in that surrogate's entry as ``stability``; a list in the order of
        ``surrogates`` (None where not measured) is accepted too.
    disagreement : dict, optional
        :func:`pellucid.fidelity.disagreement` of the recommended surrogate, stored under
        ``disagreement`` with ``surrogate_index`` added: the listed surrogate whose name and
        rules it describes, the recommended one first (None when none matches).
    frontier_selected : int or FrontierEntry, optional
        The frontier entry chosen (e.g. by ``Frontier.select``): its index or the entry
        itself. When not given, ``meta["frontier_selected"]`` (an index) is read; failing
        that, the entry that fitted the recommended surrogate is taken.
    attributions : dict, optional
        :func:`pellucid.attribution.summarise` of the network on the report's rows (methods'
        global importance, evaluation, pairing with the listed surrogates, selected rows),
        stored under ``attributions``.
    local : dict, optional
        :func:`pellucid.surrogates.local_summary.summarise_local` of a few rows (LIME
        contributions and reasons, local fidelity, anchors), stored under ``local``.
    extrapolation : dict, optional
        :func:`pellucid.fidelity.extrapolation.extrapolation` of the distillation set, stored
        as ``distillation.extrapolation``.
    linear_view : int, optional
        Index into ``surrogates`` of the scorecard or sparse linear model the report shows in
        its own section (``linear_view``).
    card : dict, optional
        The model card, as :func:`pellucid.reports.load_card` returns it (``card``).
    analysis : dict, optional
        :func:`pellucid.attribution.analysis.analyse`: sensitivity indices, concept tests and
        each class's maximising and top rows (``analysis``).
    decisions : dict, optional
        :func:`pellucid.pipeline.stages.decide`: principal reasons across the adverse
        decisions and outcomes and fidelity per group (``decisions``).
    recommended : int, optional
        Index into ``surrogates`` of the surrogate to recommend, when the caller chose it
        (e.g. with ``Frontier.select``; ``meta["selection"]`` may say how). By default
        :func:`recommend` chooses. ``recommended_by`` records which.
    names : list of str, optional
        How the report names each surrogate (e.g. ``figs_8_observed``); default: the
        surrogate's own ``name``.
    same_rules : mapping, optional
        Surrogate index -> names of other fits whose rules are exactly these (listed once).
    run : dict, optional
        What differs between two runs of the same inputs: ``command_line``, ``backend``,
        ``timings`` (seconds per stage). Stored under ``run`` with the run's id, the time
        of generation and the host; every duration found elsewhere in the payload
        (``seconds``, ``fit_seconds``, ``…_seconds``, ``timings``) is moved there too,
        under its JSON pointer, so that the rest of the report is the same for the same
        inputs and seed (see :func:`content_sha256`).

    Returns
    -------
    dict
        Keys ``schema_version``, ``generated_by``, ``meta``, ``model``, ``data``,
        ``ground_truth``, ``distillation``, ``surrogates``, ``recommended`` (an index into
        ``surrogates``, see :func:`recommend`), ``recommended_by`` (``"rule"`` or
        ``"caller"``), ``recommended_max_rules``, ``frontier``, ``disagreement``, ``attributions``, ``local``,
        ``linear_view`` and ``card`` (None when not given), and ``limitations``
        (:func:`pellucid.reports.limitations.find_limitations`). Every value is plain JSON (numpy scalars
        converted, NaN and infinities as ``None``).

    Raises
    ------
    ParameterError
        When surrogates and fidelities differ in number, a fidelity's rules are not the
        surrogate's rules (the lists were given in different orders),
        ``meta["max_rules_recommended"]`` is not a whole number, ``recommended`` or a
        stability index names no surrogate, or the selected frontier entry is not on the
        frontier.
    """
    if len(surrogates) != len(fidelities):
        raise ParameterError(
            f"build_payload got {len(surrogates)} surrogates but {len(fidelities)} fidelities; "
            "give one fidelity.evaluate result per surrogate, in the same order"
        )
    meta = dict(meta or {})
    max_rules = _max_rules(meta.get("max_rules_recommended", MAX_RULES_RECOMMENDED))
    if recommended is not None:
        ok = isinstance(recommended, (int, np.integer)) and not isinstance(recommended, bool)
        if not ok or not 0 <= recommended < len(surrogates):
            raise ParameterError(
                f"recommended must be the index of one of the {len(surrogates)} surrogates, got {recommended!r}"
            )
    described = [s.describe() for s in surrogates]
    if names is not None:
        if len(names) != len(surrogates):
            raise ParameterError(f"build_payload got {len(names)} names for {len(surrogates)} surrogates")
        described = [{**d, "name": str(n)} for d, n in zip(described, names)]
    labels = _labels(described)
    entries = [
        _surrogate_entry(s, f, d, label, i)
        for i, (s, f, d, label) in enumerate(zip(surrogates, fidelities, described, labels))
    ]
    front_entries = list(getattr(frontier, "entries", None) or [])
    for s, entry in zip(surrogates, entries):
        if entry["fit_seconds"] is None:
            # Timed by the frontier when this very object was fitted there.
            entry["fit_seconds"] = next((e.fit_seconds for e in front_entries if e.surrogate is s), None)
    if linear_view is not None:
        ok = isinstance(linear_view, (int, np.integer)) and not isinstance(linear_view, bool)
        if not ok or not 0 <= linear_view < len(surrogates):
            raise ParameterError(f"linear_view must be the index of one of the {len(surrogates)} surrogates, got {linear_view!r}")
        if entries[linear_view].get("additive") is None:
            raise ParameterError(f"linear_view names {entries[linear_view]['name']!r}, which is not an additive model")
    for i, twins in (same_rules or {}).items():
        entries[int(i)]["same_rules_as"] = [str(n) for n in twins]
    for i, stab in _stability_items(stability, len(entries)):
        entries[i]["stability"] = stab.to_dict() if hasattr(stab, "to_dict") else dict(stab)
    n_rows = getattr(schema, "n_rows", None)
    if n_rows is None:
        n_rows = int(np.sum(dset.source == "observed"))
    payload = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": _generated_by(),
        "meta": meta,
        "model": dict(model),
        "data": {
            "schema": schema.to_dict(),
            "n_rows": n_rows,
            "n_features": len(schema.features),
            "source": meta.get("data_source", meta.get("data_file")),
            "sha256": meta.get("data_sha256"),
        },
        "ground_truth": None if ground_truth is None else dict(ground_truth),
        "distillation": {**dset.summary(), "extrapolation": None if extrapolation is None else dict(extrapolation)},
        "surrogates": entries,
        "recommended": None,
        "recommended_by": None,
        "recommended_max_rules": max_rules,
        "frontier": None,
        "disagreement": None,
        "attributions": None if attributions is None else dict(attributions),
        "local": None if local is None else dict(local),
        "linear_view": None if linear_view is None else int(linear_view),
        "card": None if card is None else dict(card),
        "analysis": None if analysis is None else dict(analysis),
        "decisions": None if decisions is None else dict(decisions),
        "limitations": [],
    }
    payload = jsonable(payload)
    if recommended is not None:
        rec, by = int(recommended), "caller"
    else:
        rec = recommend(payload["surrogates"], max_rules)
        by = None if rec is None else "rule"
    payload["recommended"] = rec
    payload["recommended_by"] = by
    if frontier is not None:
        payload["frontier"] = _frontier_entry(frontier, surrogates, rec, frontier_selected, meta)
    if disagreement is not None:
        payload["disagreement"] = _disagreement_entry(disagreement, payload["surrogates"], rec)
    payload["limitations"] = find_limitations(payload)
    payload["run"] = run_block(payload, run)
    payload["content_sha256"] = content_sha256(payload)
    return payload


#: Keys whose values are durations: they differ between two runs of the same inputs.
_DURATION_KEYS = ("seconds", "timings")


def _is_duration(key: str) -> bool:
    return key in _DURATION_KEYS or key.endswith("_seconds")


def run_block(payload: dict[str, Any], run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The facts of this run that a second run of the same inputs and seed would not repeat.

    Every duration is taken out of ``payload`` (in place) and kept here under its JSON
    pointer, with the run's id, the time of generation and the host.

    Returns
    -------
    dict
        ``id`` (new for every run; ``report.html`` carries the same), ``created`` (UTC),
        ``host`` (``name``, ``platform``, ``python``, ``cpus``, ``torch_threads``),
        ``command_line``, ``backend``, ``timings`` (``stages``: seconds per stage as the
        caller gave them; ``paths``: JSON pointer -> seconds for each duration moved out of
        the payload).
    """
    run = dict(run or {})
    moved: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key in list(node):
                here = f"{path}/{_pointer_part(key)}"
                if _is_duration(str(key)):
                    moved[here] = node.pop(key)
                else:
                    walk(node[key], here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}/{i}")

    walk(payload, "")
    stages = run.pop("timings", None) or {}
    return jsonable({
        "id": uuid.uuid4().hex,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "host": _host(),
        "command_line": run.pop("command_line", None),
        "backend": run.pop("backend", None),
        **run,
        "timings": {"stages": dict(stages), "paths": moved},
    })


def _pointer_part(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def content_sha256(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a report's content: the payload without its ``run`` block (and without this
    hash), as JSON with sorted keys and no spaces. Two runs of the same inputs and seed give
    the same hash; an auditor recomputes it from ``report.json`` to check a report was
    regenerated faithfully."""
    content = {k: v for k, v in payload.items() if k not in ("run", "content_sha256")}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _host() -> dict[str, Any]:
    try:
        import torch

        threads = int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = None
    return {"name": platform.node(), "platform": platform.platform(terse=True), "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch_threads": threads}


def recommend(surrogates: Sequence[Mapping[str, Any]], max_rules: int = MAX_RULES_RECOMMENDED) -> int | None:
    """Index of the surrogate a reader should look at first.

    The highest holdout agreement (R² for regression) among the surrogates with at most
    ``max_rules`` rules; when none is that small, the highest overall. Ties go to the
    surrogate with fewer rules, then to the one listed first.

    Parameters
    ----------
    surrogates : list of dict
        The ``surrogates`` entries of a payload.
    max_rules : int
        Readability limit.

    Returns
    -------
    int or None
        ``None`` when the list is empty.
    """
    if not surrogates:
        return None

    def score(i: int) -> tuple[float, int, int]:
        s = surrogates[i]
        fid = s.get("fidelity") or {}
        task = fid.get("task") or s.get("task")
        value = fid.get("r2") if task == "regression" else fid.get("agreement")
        value = -math.inf if value is None else float(value)
        return (value, -_n_rules(s), -i)

    small = [i for i in range(len(surrogates)) if _n_rules(surrogates[i]) <= max_rules]
    return max(small or range(len(surrogates)), key=score)


def _max_rules(value: Any) -> int:
    # bool is an int to Python, and a float like 8.5 would silently become 8.
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    ok = ok or (isinstance(value, (float, np.floating)) and float(value).is_integer())
    if not ok or value < 0:
        raise ParameterError(
            f"meta['max_rules_recommended'] must be a whole number of rules (0 or more), got {value!r}"
        )
    return int(value)


def _n_rules(s: Mapping[str, Any]) -> int:
    n = (s.get("complexity") or {}).get("n_rules")
    return len(s.get("rules") or ()) if n is None else int(n)


def _labels(described: list[dict[str, Any]]) -> list[str]:
    """A name per surrogate that tells apart those of the same kind by the parameters
    in which they differ."""
    labels = []
    for d in described:
        same = [o for o in described if o["name"] == d["name"]]
        if len(same) == 1:
            labels.append(str(d["name"]))
            continue
        keys = [k for k in d.get("params", {}) if len({repr(o.get("params", {}).get(k)) for o in same}) > 1]
        extra = ", ".join(f"{k}={d['params'][k]}" for k in keys)
        labels.append(f"{d['name']} ({extra})" if extra else str(d["name"]))
    # Identical settings fitted twice: number them all so table rows stay distinct. Counted
    # before any is renamed, so every copy gets its number.
    counts = Counter(labels)
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        if counts[lab] > 1:
            seen[lab] = seen.get(lab, 0) + 1
            labels[i] = f"{lab} #{seen[lab]}"
    return labels


def _stability_items(stability: Any, n: int) -> list[tuple[int, Any]]:
    if stability is None:
        return []
    if isinstance(stability, Mapping):
        items = list(stability.items())
    elif isinstance(stability, Sequence) and not isinstance(stability, (str, bytes)):
        items = [(i, s) for i, s in enumerate(stability) if s is not None]
    else:
        raise ParameterError(
            f"stability must map surrogate indices to Stability results, got {type(stability).__name__}"
        )
    out = []
    for key, value in items:
        ok = isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < n
        if not ok:
            raise ParameterError(
                f"stability is keyed by surrogate index (0 to {n - 1}), got {key!r}"
            )
        if value is None:
            continue
        if not (hasattr(value, "to_dict") or isinstance(value, Mapping)):
            raise ParameterError(
                f"stability[{key}] must be a Stability result (pellucid.fidelity.stability), got {type(value).__name__}"
            )
        out.append((int(key), value))
    return out


def _frontier_entry(
    frontier: Any, surrogates: Sequence[Any], rec: int | None, selected: Any, meta: Mapping[str, Any]
) -> dict[str, Any]:
    """The frontier's ``to_dict()`` with, per entry, the index of the listed surrogate it fitted,
    and which entry was selected (and how that is known)."""
    objects = list(getattr(frontier, "entries", None) or [])
    out = jsonable(frontier.to_dict() if hasattr(frontier, "to_dict") else dict(frontier))
    entries = out.get("entries") or []
    for k, e in enumerate(entries):
        fitted = objects[k].surrogate if k < len(objects) else None
        index = None
        if fitted is not None:
            index = next((i for i, s in enumerate(surrogates) if s is fitted), None)
        e["surrogate_index"] = e.get("surrogate_index") if index is None else index
    by = None
    if selected is not None:
        by = "argument"
    elif meta.get("frontier_selected") is not None:
        selected, by = meta["frontier_selected"], "meta"
    if by is not None:
        if not (isinstance(selected, (int, np.integer)) and not isinstance(selected, bool)):
            k = next((k for k, e in enumerate(objects) if e is selected), None)
            if k is None:
                raise ParameterError(
                    f"frontier_selected must be an entry of the frontier or its index, got {selected!r}"
                )
            selected = k
        if not 0 <= int(selected) < len(entries):
            raise ParameterError(
                f"frontier_selected is {selected}, but the frontier has {len(entries)} entries"
            )
        selected = int(selected)
    elif rec is not None:
        selected = next((k for k, e in enumerate(entries) if e.get("surrogate_index") == rec), None)
        by = None if selected is None else "recommended"
    out["selected"] = selected
    out["selected_by"] = by
    return out


def _disagreement_entry(d: Mapping[str, Any], surrogates: list[dict[str, Any]], rec: int | None) -> dict[str, Any]:
    out = jsonable(dict(d))
    texts = [r.get("text") for r in out.get("rules") or []]

    def describes(i: int) -> bool:
        s = surrogates[i]
        return s.get("name") == out.get("surrogate") and [r.get("text") for r in s.get("rules") or []] == texts

    order = ([rec] if rec is not None else []) + [i for i in range(len(surrogates)) if i != rec]
    out["surrogate_index"] = next((i for i in order if describes(i)), None)
    return out


def _additive_entry(ruleset: Any) -> dict[str, Any] | None:
    """An additive model's parts as the page shows them: score columns, intercept (base
    points), linear terms, the whole model's text and its decision line."""
    if not getattr(ruleset, "additive", False):
        return None
    scorecard = float(ruleset.scale) != 1.0
    classes = [str(c) for c in ruleset.classes] if ruleset.classes is not None else None
    if ruleset.link == "softmax":
        columns = [f"score of {c}" for c in classes]
    elif ruleset.link == "logistic":
        columns = ["points" if scorecard else f"log-odds of {classes[1]}"]
    else:
        columns = ["points" if scorecard else "prediction"]
    text = ruleset.text()
    last = text.splitlines()[-1] if text else ""
    return {
        "link": ruleset.link,
        "scale": float(ruleset.scale),
        "offset": float(ruleset.offset),
        "scorecard": scorecard,
        "columns": columns,
        "intercept": [float(w) for w in ruleset.intercept],
        "base_points": [_points(ruleset.offset + ruleset.scale * w) for w in ruleset.intercept] if scorecard else None,
        "linear": [
            {
                **t.to_dict(),
                "text": [
                    f"{t.text(k, ruleset.scale)} (missing counts as {exact(t.fill, t.kind in INTEGER_KINDS)})"
                    for k in range(len(t.weights))
                ],
            }
            for t in ruleset.linear
        ],
        "text": text,
        "decision": last[1:].strip() if last.startswith("→") else None,
        "digits": ruleset.digits,
    }


def _points(x: float) -> int:
    return int(round(float(x)))


def _surrogate_entry(surrogate: Any, fid: Any, described: dict[str, Any], label: str, index: int) -> dict[str, Any]:
    ruleset = surrogate.rules_
    fd = fid.to_dict()
    fid_rules = list(fd.get("rules") or [])
    if len(fid_rules) != len(ruleset.rules):
        raise ParameterError(
            f"surrogate {index} ({label}) has {len(ruleset.rules)} rules but its fidelity measures "
            f"{len(fid_rules)}; was the fidelity computed for another surrogate?"
        )
    rules = []
    for j, rule in enumerate(ruleset.rules):
        per_rule = fid_rules[j]
        if per_rule.get("text") not in (None, rule.text()):
            raise ParameterError(
                f"rule {j} of surrogate {index} ({label}) reads {rule.text()!r} but its fidelity "
                f"entry reads {per_rule.get('text')!r}; surrogates and fidelities are out of order"
            )
        rules.append(_merge_rule(rule.to_dict(), per_rule))
    default = _merge_rule(ruleset.default.to_dict(), fd.get("default") or {})
    # Training support on both bases, as the fit recorded it (None where it did not).
    shares = getattr(surrogate, "train_support_", None) or {}
    share_rules = shares.get("rules") or []
    for j, r in enumerate(rules):
        s = share_rules[j] if j < len(share_rules) else {}
        r["train_matches"], r["train_decides"] = s.get("matches"), s.get("decides")
    d = shares.get("default") or {}
    default["train_matches"], default["train_decides"] = d.get("matches"), d.get("decides")
    additive = _additive_entry(ruleset)
    if additive is not None:
        for r, w in zip(rules, ruleset.weights):
            r["weights"] = [float(x) for x in w]
            r["points"] = [_points(ruleset.scale * x) for x in w] if additive["scorecard"] else None
    complexity = surrogate.complexity()
    fit_seconds = (fd.get("complexity") or {}).get("fit_seconds", complexity.get("fit_seconds"))
    return {
        "name": described["name"],
        "label": label,
        "type": described.get("type", type(surrogate).__name__),
        "params": described.get("params", {}),
        "task": getattr(surrogate, "task_", fd.get("task")),
        "classes": None if getattr(surrogate, "classes_", None) is None else [str(c) for c in surrogate.classes_],
        "ordered": bool(getattr(ruleset, "ordered", False)),
        "fidelity": fd,
        "complexity": complexity,
        "fit_seconds": fit_seconds,
        "fitted_on": getattr(surrogate, "fitted_on_", None),
        "same_rules_as": [],
        "stability": None,
        "rules": rules,
        "default": default,
        "additive": additive,
        "tree": _tree_entry(surrogate, rules),
        "rule_model": _rule_model_entry(ruleset),
        "missing_values": _missing_entry(surrogate),
    }


def _rule_model_entry(ruleset: Any) -> dict[str, Any]:
    """What, with ``rules``, ``default`` and ``additive``, reads the model back
    (:func:`pellucid.extraction.from_report`): its type, task, class labels as the rules name
    them (``classes`` above is their text) and feature order."""
    if getattr(ruleset, "additive", False):
        kind = "additive"
    else:
        kind = "rule_list" if getattr(ruleset, "ordered", False) else "rule_set"
    order = getattr(ruleset, "feature_order", None)
    return {
        "type": kind,
        "task": ruleset.task,
        "classes": None if ruleset.classes is None else list(ruleset.classes),
        "feature_order": None if order is None else list(order),
    }


def _missing_entry(surrogate: Any) -> dict[str, Any] | None:
    """The features that had missing values in the data and one sentence on what a missing
    value does to a condition, for the rules' preamble (None without a schema)."""
    schema = getattr(surrogate, "schema_", None)
    if schema is None:
        return None
    features = getattr(surrogate, "missing_features_", None)
    if features is None:
        features = features_with_missing(schema)
    return {"features": list(features), "text": missing_note(features, schema.names)}


# Per-rule numbers measured on the holdout; the rule's own text/outcome/proba/support win.
_RULE_MEASURES = ("n_covered", "coverage", "coverage_ci", "precision", "precision_ci", "mae", "n_decided", "decides",
                  "decides_ci", "decided_precision", "decided_precision_ci", "decided_mae", "network_mean",
                  "network_mean_elsewhere")


def _merge_rule(rule: dict[str, Any], measured: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    for k in _RULE_MEASURES:
        if k in measured:
            out[k] = measured[k]
    out.setdefault("coverage", None)
    if "mae" not in out:
        out.setdefault("precision", None)
    return out


def _tree_entry(surrogate: Any, rules: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The tree's nodes. A leaf is a rule: its outcome and coverage are that rule's entry
    (``rules[rule_index]``), never worked out again; internal nodes have no rule, so their
    outcome is the majority class (or mean value) of their training rows."""
    nodes = getattr(surrogate, "nodes_", None)
    if not nodes:
        return None
    classes = getattr(surrogate, "classes_", None)
    out = []
    for n in nodes:
        value = n.value
        if isinstance(value, (tuple, list, np.ndarray)):
            value = [float(v) for v in value]
            outcome = classes[int(np.argmax(value))] if classes is not None and len(value) else None
        else:
            value = float(value)
            outcome = value
        coverage = None
        if n.rule_index is not None:
            rule = rules[n.rule_index]
            outcome, coverage = rule["outcome"], rule.get("coverage")
        out.append(
            {
                "id": int(n.id),
                "depth": int(n.depth),
                "left": None if n.left is None else int(n.left),
                "right": None if n.right is None else int(n.right),
                "condition": None if n.condition is None else n.condition.to_dict(),
                "negation": None if n.negation is None else n.negation.to_dict(),
                "value": value,
                "outcome": outcome,
                "support": float(n.support),
                "coverage": coverage,
                "rule_index": None if n.rule_index is None else int(n.rule_index),
            }
        )
    return {"nodes": out}


def listed(n: int, top: int) -> int:
    """How many of ``n`` ranked items a table or figure shows one by one where it shows the
    ``top`` and sums up the rest: all of them when a single one would be left over (a line of
    its own says more than "1 other")."""
    return n if n <= top + 1 else top


def measured_on(rows: str | None, n: int | None = None) -> str:
    """The rows a fidelity was measured on, in words, from its ``rows`` entry.

    ``"held-out rows"``, ``"the rows given"``, ``"all rows (no holdout)"``; with a count,
    ``"300 held-out rows"``, ``"the 300 rows given"``, ``"all 300 rows (no holdout)"``.
    """
    if n is None:
        return ROWS_WORDS.get(str(rows), "the rows measured")
    count = f"{int(n):,}"
    if rows == "holdout":
        return f"{count} held-out rows"
    if rows == "given":
        return f"the {count} rows given"
    if rows == "all":
        return f"all {count} rows (no holdout)"
    return f"the {count} rows measured"


def _generated_by() -> dict[str, Any]:
    libraries = {}
    for name in _LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "pellucid": _pellucid_version(),
        "python": platform.python_version(),
        "libraries": libraries,
    }


def _pellucid_version() -> str:
    try:
        return metadata.version("pellucid")
    except metadata.PackageNotFoundError:
        import pellucid

        return str(getattr(pellucid, "__version__", "0.1.0"))


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` made of plain JSON values.

    numpy scalars and arrays become Python numbers and lists, tuples and sets become lists,
    mapping keys become strings, NaN and infinities become ``None``, enums their value,
    dates ISO text, paths text; anything else is written as its ``str``.

    Parameters
    ----------
    obj : object

    Returns
    -------
    object
        Accepted by ``json.dumps(..., allow_nan=False)``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    return str(obj)
