"""The report's JSON twin: one plain dict that holds every number the HTML page shows.

:func:`build_payload` gathers the model description, the schema, the distillation summary and
each surrogate with its fidelity into a dict of plain JSON values. The HTML is rendered from
this dict alone (:func:`pellucid.reports.render_html`), so the page and ``report.json`` can
never disagree. The keys are documented in ``docs/report-json.md``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import PurePath
from typing import Any

import numpy as np

from ..errors import ParameterError

SCHEMA_VERSION = "1.0"

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

    Returns
    -------
    dict
        Keys ``schema_version``, ``generated_by``, ``meta``, ``model``, ``data``,
        ``ground_truth``, ``distillation``, ``surrogates``, ``recommended`` (an index into
        ``surrogates``, see :func:`recommend`) and ``recommended_max_rules``. Every value is
        plain JSON (numpy scalars converted, NaN and infinities as ``None``).

    Raises
    ------
    ParameterError
        When surrogates and fidelities differ in number, a fidelity's rules are not the
        surrogate's rules (the lists were given in different orders), or
        ``meta["max_rules_recommended"]`` is not a whole number.
    """
    if len(surrogates) != len(fidelities):
        raise ParameterError(
            f"build_payload got {len(surrogates)} surrogates but {len(fidelities)} fidelities; "
            "give one fidelity.evaluate result per surrogate, in the same order"
        )
    meta = dict(meta or {})
    max_rules = _max_rules(meta.get("max_rules_recommended", MAX_RULES_RECOMMENDED))
    described = [s.describe() for s in surrogates]
    labels = _labels(described)
    entries = [
        _surrogate_entry(s, f, d, label, i)
        for i, (s, f, d, label) in enumerate(zip(surrogates, fidelities, described, labels))
    ]
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
        "distillation": dset.summary(),
        "surrogates": entries,
        "recommended": None,
        "recommended_max_rules": max_rules,
    }
    payload = jsonable(payload)
    payload["recommended"] = recommend(payload["surrogates"], max_rules)
    return payload


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
    return {
        "name": described["name"],
        "label": label,
        "type": described.get("type", type(surrogate).__name__),
        "params": described.get("params", {}),
        "task": getattr(surrogate, "task_", fd.get("task")),
        "classes": None if getattr(surrogate, "classes_", None) is None else [str(c) for c in surrogate.classes_],
        "ordered": bool(getattr(ruleset, "ordered", False)),
        "fidelity": fd,
        "complexity": surrogate.complexity(),
        "rules": rules,
        "default": default,
        "tree": _tree_entry(surrogate, rules),
    }


# Per-rule numbers measured on the holdout; the rule's own text/outcome/proba/support win.
_RULE_MEASURES = ("n_covered", "coverage", "precision", "mae", "decides", "network_mean", "network_mean_elsewhere")


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
        "platform": platform.platform(terse=True),
        "libraries": libraries,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
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
