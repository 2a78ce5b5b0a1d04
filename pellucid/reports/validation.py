"""Checking a report payload against the JSON Schema of ``report.json``.

``report.schema.json`` (beside this module, published as ``docs/report.schema.json``) describes
what :func:`pellucid.reports.build_payload` writes, schema versions 2.0 to 2.3, and the 1.x reports
pellucid still reads. :func:`validate_report` checks a payload against it with a maintained
validator (``jsonschema``, draft 2020-12), then checks what a schema cannot say: that an index
names an entry of its list, that lengths which must agree do. The first problem found is raised
as one line naming the file and the JSON path (``report.json: surrogates[0].rules[2].conditions[0].value:
expected a number, "inf" or "-inf", got "abc"``).

A report is read with :func:`loads_report`, which keeps ``NaN`` and ``Infinity`` literals (which
Python's ``json`` accepts but JSON does not) as markers, so that :func:`validate_report` names
where they are.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from ..errors import DataFileError

#: The JSON Schema of ``report.json`` (draft 2020-12), shipped with the package.
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NonFiniteLiteral:
    """What :func:`loads_report` reads for a ``NaN``, ``Infinity`` or ``-Infinity`` literal.

    Python's ``json`` module reads these words, JSON does not have them; the marker keeps the
    word so that :func:`validate_report` can say which one stands where.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def loads_report(text: str) -> Any:
    """Parse the text of a ``report.json``, keeping non-JSON number literals as markers.

    Parameters
    ----------
    text : str
        The file's text.

    Returns
    -------
    object
        What ``json.loads`` returns, except that each ``NaN``, ``Infinity`` and ``-Infinity``
        is a :class:`NonFiniteLiteral` (refused, with its JSON path, by :func:`validate_report`).

    Raises
    ------
    json.JSONDecodeError
        The text is not JSON.
    """
    return json.loads(text, parse_constant=NonFiniteLiteral)


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


def report_schema() -> dict[str, Any]:
    """The JSON Schema of ``report.json`` (draft 2020-12), as a new dict.

    Returns
    -------
    dict
        ``pellucid/reports/report.schema.json``; ``docs/report.schema.json`` is the same file.
    """
    return json.loads(_schema_text())


def _is_integer(checker: Any, instance: Any) -> bool:
    # A whole number as JSON writes it (1, not 1.0): a Python list index must be an int.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every ``{"$ref": "#/$defs/..."}`` replaced by the definition itself.

    The same constraints, checked several times faster: a payload holds thousands of values
    whose schema is a reference, and resolving a reference costs more than checking the value.
    The schema has no recursive definition, so the substitution ends. A reference beside other
    keywords becomes an ``allOf`` of the two, which applies both as the reference did.
    """
    defs = schema.get("$defs", {})

    def sub(node: Any) -> Any:
        if isinstance(node, list):
            return [sub(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: sub(v) for k, v in node.items() if k not in ("$ref", "$defs")}
        ref = node.get("$ref")
        if ref is None:
            return out
        target = sub(defs[ref.removeprefix("#/$defs/")])
        if not out:
            return target
        out["allOf"] = [target, *out.get("allOf", [])]
        return out

    return sub(schema)


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    base = jsonschema.Draft202012Validator
    strict = jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer))
    return strict(_inlined(json.loads(_schema_text())))


def json_path(parts: Sequence[Any]) -> str:
    """A JSON path as a reader writes it: ``surrogates[0].rules[2]``; a key that is not a
    name is quoted, ``methods["rules.coverage"]``; the document itself is ``(top level)``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out or "(top level)"


def _shown(value: Any) -> str:
    """A value as a message quotes it: short JSON for plain values, the kind for containers."""
    if isinstance(value, NonFiniteLiteral):
        return value.text
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…" + text[-1]


def _expected(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    return schema.get("x-expected") or error.message


def _describe(error: ValidationError) -> tuple[list[Any], str]:
    """The JSON path of a schema error and what is wrong there, in words."""
    path = list(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [k for k in error.validator_value if k not in present]
        key = missing[0] if missing else error.validator_value[0]
        return path, f"missing key {key!r}"
    if "propertyNames" in error.absolute_schema_path:
        return path, f"unknown key {error.instance!r}; expected {_expected(error)}"
    return path, f"expected {_expected(error)}, got {_shown(error.instance)}"


def _non_finite(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], Any]]:
    """Where ``node`` holds a NaN or infinite number (or a literal that stood for one)."""
    if isinstance(node, NonFiniteLiteral) or (isinstance(node, float) and not math.isfinite(node)):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _non_finite(value, [*path, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_finite(value, [*path, i])


def validate_report(payload: Any, name: str = "report.json", *, error: Callable[[str], Exception] = DataFileError) -> None:
    """Check a report payload against the schema of ``report.json`` and its cross-references.

    Parameters
    ----------
    payload : object
        A payload as :func:`pellucid.reports.build_payload` returns it, or ``report.json`` as
        :func:`loads_report` (or ``json.load``) reads it.
    name : str
        How the message names the payload: the file (``report file '/x/report.json'``), or
        ``the payload``.
    error : exception class
        What to raise (:class:`~pellucid.errors.DataFileError` for a file;
        :class:`~pellucid.errors.ParameterError` for a payload given as an argument).

    Raises
    ------
    DataFileError (or ``error``)
        At the first problem: ``"<name>: <JSON path>: <what is wrong>"``. In order: a NaN or
        infinite number (a ``NaN``/``Infinity`` literal in the file); a value the schema refuses
        (the most telling error, :func:`jsonschema.exceptions.best_match`); an index outside its
        list (``recommended``, ``linear_view``, ``frontier.selected``, ``frontier.pareto``,
        each ``surrogate_index``, a tree's node ids and rule indices), a ``linear_view`` that is
        not an additive model, lengths that disagree (an additive model's weights and its score
        columns, a confusion matrix and its classes, the rows of a class and their labels),
        sensitivity indices missing for a feature that ``order`` names.
    """
    for path, value in _non_finite(payload, []):
        word = value.text if isinstance(value, NonFiniteLiteral) else repr(value)
        raise error(f"{name}: {json_path(path)}: {word} is not a number JSON allows; an undefined number is written null")
    found = best_match(_validator().iter_errors(payload))
    if found is not None:
        path, what = _describe(found)
        raise error(f"{name}: {json_path(path)}: {what}")
    problem = _cross_reference_problem(payload)
    if problem is not None:
        path, what = problem
        raise error(f"{name}: {json_path(path)}: {what}")


# ---------------------------------------------------------------------------- cross-references
def _index_problem(value: Any, n: int, what: str) -> str | None:
    if value is None or 0 <= value < n:
        return None
    if n == 0:
        return f"{value} names none of the {what}: there are none"
    return f"{value} names none of the {n} {what} (indices 0 to {n - 1})"


def _cross_reference_problem(p: Mapping[str, Any]) -> tuple[list[Any], str] | None:
    """What a schema cannot check, on a payload the schema accepts: the first problem, or None."""
    if p.get("kind") == "images":
        return None
    checks = (_top_level_indices, _frontier_indices, _pairing_indices, _surrogate_parts, _analysis_parts)
    for check in checks:
        problem = next(check(p), None)
        if problem is not None:
            return problem
    return None


def _top_level_indices(p: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    surrogates = p["surrogates"]
    n = len(surrogates)
    for key in ("recommended", "linear_view"):
        problem = _index_problem(p.get(key), n, "surrogates")
        if problem:
            yield [key], problem
    lv = p.get("linear_view")
    if lv is not None and surrogates[lv].get("additive") is None:
        yield ["linear_view"], (f"surrogate {lv} ({surrogates[lv]['label']!r}) is not an additive model "
                                "(its 'additive' is null): the linear view shows a scorecard or sparse linear model")
    dis = p.get("disagreement")
    if dis:
        problem = _index_problem(dis.get("surrogate_index"), n, "surrogates")
        if problem:
            yield ["disagreement", "surrogate_index"], problem
        conf = dis.get("confusion")
        if conf:
            k, matrix = len(conf["classes"]), conf["matrix"]
            if len(matrix) != k or any(len(row) != k for row in matrix):
                yield ["disagreement", "confusion", "matrix"], (
                    f"{len(matrix)} rows of {sorted({len(row) for row in matrix})} counts for {k} classes; "
                    "expected one row and one column per class")


def _frontier_indices(p: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    front = p.get("frontier")
    if not front:
        return
    n = len(front["entries"])
    problem = _index_problem(front.get("selected"), n, "frontier entries")
    if problem:
        yield ["frontier", "selected"], problem
    for i, k in enumerate(front.get("pareto") or []):
        problem = _index_problem(k, n, "frontier entries")
        if problem:
            yield ["frontier", "pareto", i], problem
    for j, e in enumerate(front["entries"]):
        problem = _index_problem(e.get("surrogate_index"), len(p["surrogates"]), "surrogates")
        if problem:
            yield ["frontier", "entries", j, "surrogate_index"], problem


def _pairing_indices(p: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    att = p.get("attributions")
    for i, pair in enumerate((att or {}).get("pairing") or []):
        problem = _index_problem(pair.get("surrogate_index"), len(p["surrogates"]), "surrogates")
        if problem:
            yield ["attributions", "pairing", i, "surrogate_index"], problem


def _surrogate_parts(p: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    for i, s in enumerate(p["surrogates"]):
        here = ["surrogates", i]
        add = s.get("additive")
        if add:
            yield from _additive_lengths(s, add, here)
        tree = s.get("tree")
        if tree:
            ids = {node["id"] for node in tree["nodes"]}
            for k, node in enumerate(tree["nodes"]):
                for key in ("left", "right"):
                    if node[key] is not None and node[key] not in ids:
                        yield [*here, "tree", "nodes", k, key], f"{node[key]} is the id of no node of the tree"
                problem = _index_problem(node["rule_index"], len(s["rules"]), "rules")
                if problem:
                    yield [*here, "tree", "nodes", k, "rule_index"], problem


def _additive_lengths(s: Mapping[str, Any], add: Mapping[str, Any], here: list[Any]) -> Iterator[tuple[list[Any], str]]:
    k = len(add["columns"])
    per = f"{k} (one per score column: {', '.join(map(str, add['columns']))})"
    lists: list[tuple[list[Any], Any]] = [([*here, "additive", "intercept"], add["intercept"])]
    if add["scorecard"] or add.get("base_points") is not None:
        lists.append(([*here, "additive", "base_points"], add.get("base_points")))
    for t, term in enumerate(add["linear"]):
        lists += [([*here, "additive", "linear", t, "weights"], term["weights"]),
                  ([*here, "additive", "linear", t, "text"], term["text"])]
    for j, rule in enumerate(s["rules"]):
        lists.append(([*here, "rules", j, "weights"], rule.get("weights")))
        if add["scorecard"] or rule.get("points") is not None:
            lists.append(([*here, "rules", j, "points"], rule.get("points")))
    for path, values in lists:
        if values is None:
            yield path, f"missing in an additive model; expected a list of {per}"
        elif len(values) != k:
            yield path, f"a list of {len(values)}; expected {per}"


def _analysis_parts(p: Mapping[str, Any]) -> Iterator[tuple[list[Any], str]]:
    an = p.get("analysis")
    if not an:
        return
    sens = an.get("sensitivity")
    if sens:
        for key in ("first", "total", "first_ci", "total_ci"):
            for f in sens["order"]:
                if f not in sens["sobol"][key]:
                    yield ["analysis", "sensitivity", "sobol", key], f"no entry for {f!r}, which sensitivity.order names"
    for i, c in enumerate(an.get("classes") or []):
        top = c["top"]
        n = len(top.get("rows") or [])
        for key in ("labels", "scores"):
            if len(top[key]) < n:
                yield ["analysis", "classes", i, "top", key], f"{len(top[key])} entries for {n} rows; expected one per row"
