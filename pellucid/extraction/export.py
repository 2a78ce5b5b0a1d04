"""Exports of a rule model: text, JSON, one SQL expression, one Python function.

Every export is derived from the rule data model alone (:class:`~pellucid.extraction.RuleList`,
:class:`~pellucid.extraction.RuleSet`, :class:`~pellucid.extraction.AdditiveRules`), the one
source the surrogates' predictions also come from, so an export says what the surrogate does:

- :func:`to_text` -- the model's own readable text;
- :func:`to_json` / :func:`from_json` -- a JSON document that reads back as an equal model;
- :func:`from_report` -- the model of a surrogate of a report, read from ``report.json``;
- :func:`to_sql` -- one portable SQL ``CASE`` expression (or a ``SELECT``) giving the prediction
  of each row of a table;
- :func:`to_python` -- the source of a standalone Python function predicting one row.

Numbers and ties
----------------
The SQL and Python exports compute what the model computes, in the same order where the
order can matter: a rule set's class distributions and an additive model's rule weights are
summed rule by rule, in rule order, then divided by the number of covering rules (rule sets),
then the intercept comes first and each linear term is added in turn (additive models), and
the class with the highest value wins, the first one at a tie. Numpy's matrix product is
free to add three or more terms in another order, so where a row is covered by three or more
rules, a class's mean or score within a few units in the last place of another's (or of 0,
for a logistic link) may decide differently in the export and in the model; a regression
value may differ in its last bits there. Everywhere else the exports agree exactly.

Every number is written so that it reads back as the same float64. Thresholds are written as
the rules print them (:func:`pellucid._validation.exact`: ``27.19``, ``61`` for a whole
value; a fitted surrogate's thresholds are short decimals, see
:func:`pellucid.extraction.rules.snap_threshold`), and other numbers in Python's shortest form
(``0.1``, ``120.0``). Python reads these back exactly. So does SQL, except through a parser
that does not round correctly (SQLite's misreads about one in ten thousand short decimals,
e.g. ``0.0454811``): where a decimal lies too close to halfway between two floats for such a
parser, the SQL export writes 20 significant digits instead (``0.045481100000000000183``),
which every parser reads back as the same float.
"""

from __future__ import annotations

import json
import keyword
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .._validation import exact, plain
from ..errors import ParameterError
from .rules import INTEGER_KINDS, NUMERIC_OPS, AdditiveRules, Condition, Rule, RuleList, RuleSet, _Rules

RuleModel = Union[RuleList, RuleSet, AdditiveRules]

#: Version of the JSON document :func:`to_json` writes.
JSON_FORMAT = "pellucid.rules"
JSON_VERSION = 1


# ---------------------------------------------------------------------- input
def _model(rules: Any, what: str) -> RuleModel:
    """The rule model of ``rules``: a rule model itself, or a fitted surrogate's ``rules_``."""
    if isinstance(rules, (RuleList, RuleSet, AdditiveRules)):
        return rules
    if hasattr(rules, "_check_fitted") and hasattr(type(rules), "fit"):
        rules._check_fitted()  # a surrogate: NotFittedError when it is not fitted
    model = getattr(rules, "rules_", None)
    if isinstance(model, (RuleList, RuleSet, AdditiveRules)):
        return model
    raise ParameterError(
        f"{what} expects a RuleList, RuleSet or AdditiveRules, or a fitted surrogate holding one in "
        f"rules_; got {type(rules).__name__}"
    )


def _rule_values(model: RuleList | RuleSet) -> np.ndarray:
    """Per rule (the default last): class distribution (classification) or value, exactly as
    the model's ``predict`` reads them."""
    try:
        return model._rule_values()
    except (ValueError, TypeError) as e:
        raise ParameterError(f"the rule model's outcomes cannot be read: {e}") from None


def _labels(model: RuleModel) -> list:
    if model.classes is None or len(model.classes) == 0:
        raise ParameterError("a classification rule model needs its classes (model.classes is empty)")
    return [plain(c, nonfinite="keep", other=None) for c in model.classes]


# ---------------------------------------------------------------------- text and JSON
def to_text(rules: Any) -> str:
    """The model's readable text, in raw units.

    Parameters
    ----------
    rules : RuleList, RuleSet, AdditiveRules or fitted surrogate
        The model (a surrogate's ``rules_`` is used).

    Returns
    -------
    str
        The text of the model's ``text()``: one line per rule and the default, or the score
        and its terms for an additive model.
    """
    return _model(rules, "to_text").text()


def to_json(rules: Any, indent: int | None = 2) -> str:
    """The model as a JSON document that :func:`from_json` reads back as an equal model.

    The document is the model's ``to_dict()`` (every rule with its text, conditions, outcome,
    class distribution and support) with ``format``, ``version`` and ``feature_order`` added.
    Floats are written in their shortest exact form, so the model read back predicts exactly
    what this one does; infinite thresholds (which only speak of missing values) are written
    as the strings ``"inf"`` / ``"-inf"``, as JSON has no such numbers.

    Parameters
    ----------
    rules : RuleList, RuleSet, AdditiveRules or fitted surrogate
        The model (a surrogate's ``rules_`` is used).
    indent : int, optional
        Indentation of the document; ``None`` for one line.

    Returns
    -------
    str
    """
    model = _model(rules, "to_json")
    doc = {"format": JSON_FORMAT, "version": JSON_VERSION, **model.to_dict()}
    doc["feature_order"] = None if model.feature_order is None else list(model.feature_order)
    try:
        return json.dumps(plain(doc, nonfinite="text", other=None), indent=indent, allow_nan=False)
    except TypeError as e:
        raise ParameterError(
            f"to_json: the model holds a value JSON cannot carry ({e}); class labels and categories "
            "must be strings, numbers, booleans or None"
        ) from None


def from_json(text: str | bytes) -> RuleModel:
    """Read a model written by :func:`to_json` (or a rule model's ``to_dict()`` as JSON, such as
    the one a report's JSON holds).

    Parameters
    ----------
    text : str or bytes
        The JSON document.

    Returns
    -------
    RuleList, RuleSet or AdditiveRules
        Equal (``==``) to the model written, and predicting exactly what it predicts.

    Raises
    ------
    ParameterError
        Not JSON, not a rule model, a document of a later version, or a malformed entry (named).
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise ParameterError(f"from_json expects the JSON text (str or bytes), got {type(text).__name__}")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ParameterError(f"from_json: not valid JSON ({e})") from None
    if isinstance(doc, dict) and ("surrogates" in doc or "rule_model" in doc):
        raise ParameterError(
            "from_json: this is a report (or one of its surrogate entries), not a rule model; read it with "
            "pellucid.extraction.from_report"
        )
    if not isinstance(doc, dict) or "type" not in doc:
        raise ParameterError("from_json: the document is not a rule model (no 'type' entry)")
    fmt, version = doc.get("format", JSON_FORMAT), doc.get("version", JSON_VERSION)
    if fmt != JSON_FORMAT:
        raise ParameterError(f"from_json: the document's format is {fmt!r}, not {JSON_FORMAT!r}")
    if not isinstance(version, int) or version > JSON_VERSION:
        raise ParameterError(
            f"from_json: the document is version {version!r}; this pellucid reads versions up to {JSON_VERSION}"
        )
    kind = doc["type"]
    try:
        if kind in ("rule_list", "rule_set"):
            return _Rules.from_dict(doc)
        if kind == "additive":
            return AdditiveRules.from_dict(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise ParameterError(f"from_json: malformed {kind!r} document: {what}") from None
    raise ParameterError(f"from_json: unknown rule model type {kind!r}; expected rule_list, rule_set or additive")


def from_report(report: Any, index: int | None = None) -> RuleModel:
    """The rule model of one surrogate of a report, read from the report's JSON.

    Every surrogate entry of ``report.json`` (:func:`pellucid.reports.build_payload`) holds its
    whole model: the rules with their conditions (infinite thresholds as ``"inf"`` /
    ``"-inf"``), outcomes and class distributions, the default, an additive model's weights,
    intercept, link and linear terms, and ``rule_model`` (the model's type, task, class labels
    and feature order). The model read back predicts exactly what the surrogate predicted
    when the report was written, so a reader can check every number of the page against it.

    Parameters
    ----------
    report : dict, str, bytes or path-like
        The report: its payload (``build_payload``'s dict, or ``report.json`` as read by
        ``json.load``), one entry of its ``surrogates`` list, the JSON text, or the path of a
        ``report.json`` file.
    index : int, optional
        Which surrogate, an index into ``report["surrogates"]``; by default the recommended
        one (``report["recommended"]``). Not given with a single entry.

    Returns
    -------
    RuleList, RuleSet or AdditiveRules
        Its ``predict`` (and ``predict_proba``) are the surrogate's on canonical rows
        (:meth:`pellucid.schema.Schema.validate`; the report's ``data.schema`` is the schema).

    Raises
    ------
    ParameterError
        Not a report or a surrogate entry, no such surrogate, or an entry that cannot be read
        (named: the surrogate, the rule, the condition). A report written before version 2.0
        stored infinite thresholds as ``null``; such a condition cannot be read back.

    Examples
    --------
    >>> import json
    >>> report = json.load(open("report.json"))                     # doctest: +SKIP
    >>> model = from_report(report)                                # the recommended surrogate
    >>> model.predict(schema.validate(table))                       # doctest: +SKIP
    """
    doc = _report_document(report)
    if isinstance(doc, Mapping) and isinstance(doc.get("surrogates"), list):
        entries = doc["surrogates"]
        if index is None:
            index = doc.get("recommended")
            if index is None:
                raise ParameterError("from_report: the report recommends no surrogate; pass the index of one")
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(entries):
            raise ParameterError(
                f"from_report: index must name one of the report's {len(entries)} surrogates (0 to "
                f"{len(entries) - 1}), got {index!r}"
            )
        entry, where = entries[int(index)], f"surrogate {int(index)}"
    elif isinstance(doc, Mapping) and "rules" in doc:
        if index is not None:
            raise ParameterError("from_report: index is for a whole report; this is one surrogate entry")
        entry, where = doc, "the surrogate entry"
    else:
        raise ParameterError(
            "from_report expects a report (with a 'surrogates' list) or one of its surrogate entries, "
            f"got {type(doc).__name__}{' with keys ' + str(sorted(doc)[:8]) if isinstance(doc, Mapping) else ''}"
        )
    if not isinstance(entry, Mapping):
        raise ParameterError(f"from_report: {where} is not an object")
    label = entry.get("label") or entry.get("name")
    if label:
        where += f" ({label})"
    try:
        model = _model_document(entry)
        if model["type"] == "additive":
            return AdditiveRules.from_dict(model)
        return _Rules.from_dict(model)
    except ParameterError as e:
        raise ParameterError(f"from_report: {where}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise ParameterError(f"from_report: {where} cannot be read: {what}") from None


def _report_document(report: Any) -> Any:
    """The report as a JSON value: parsed from text or read from a file."""
    if isinstance(report, Mapping):
        return report
    if isinstance(report, os.PathLike):
        try:
            report = Path(report).read_bytes()
        except OSError as e:
            raise ParameterError(f"from_report: cannot read {str(report)!r}: {e.strerror or e}") from None
    if isinstance(report, str) and not report.lstrip().startswith(("{", "[")):
        path = Path(report)
        if not path.is_file():
            raise ParameterError(f"from_report: {report[:80]!r} is neither JSON text nor a file")
        report = path.read_bytes()
    if isinstance(report, (str, bytes, bytearray)):
        try:
            return json.loads(report)
        except ValueError as e:
            raise ParameterError(f"from_report: not valid JSON ({e})") from None
    raise ParameterError(f"from_report expects a report (dict, JSON text or path), got {type(report).__name__}")


def _model_document(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A surrogate entry as the document ``from_dict`` reads."""
    head = entry.get("rule_model")
    additive = entry.get("additive")
    if not isinstance(head, Mapping):
        # Reports before version 2.0: the type from the entry's shape, the classes as written.
        kind = "additive" if additive else ("rule_list" if entry.get("ordered") else "rule_set")
        head = {"type": kind, "task": entry.get("task"), "classes": entry.get("classes")}
    kind = head.get("type")
    if kind not in ("rule_list", "rule_set", "additive"):
        raise ParameterError(f"unknown rule model type {kind!r}; expected rule_list, rule_set or additive")
    doc: dict[str, Any] = {
        "type": kind,
        "task": head.get("task") or "classification",
        "classes": head.get("classes"),
        "feature_order": head.get("feature_order"),
        "rules": entry.get("rules"),
        "default": entry.get("default"),
    }
    if kind == "additive":
        if not isinstance(additive, Mapping):
            raise ParameterError("an additive model's entry has no 'additive' part (intercept, link, linear terms)")
        for key in ("intercept", "link", "scale", "offset", "linear"):
            if key in additive:
                doc[key] = additive[key]
    return doc


# ---------------------------------------------------------------------- SQL
#: A decimal is written in its short form only where it lies at least this far (relative) from
#: every point halfway between two floats: a parser that rounds twice (SQLite's, through an
#: 80-bit intermediate, errs by a few parts in 2**64) still lands on the same float.
_PARSE_MARGIN = Fraction(1, 2**60)


def _reads_back(text: str, x: float) -> bool:
    """Whether the decimal ``text`` reads back as ``x`` even through a parser that does not
    round correctly: it is ``x`` exactly, or well inside ``x``'s rounding interval."""
    d, fx = Fraction(text), Fraction(x)
    if d == fx:
        return True
    if not 1e-20 < abs(x) < 1e20:
        return False  # far from 1, such parsers' powers of ten are themselves off
    below, above = Fraction(math.nextafter(x, -math.inf)), Fraction(math.nextafter(x, math.inf))
    margin = abs(d) * _PARSE_MARGIN
    return abs(d - (below + fx) / 2) > margin and abs(d - (fx + above) / 2) > margin


def _float_literal(x: float) -> str:
    """A decimal that any parser reads back as ``x`` (see the module's notes on numbers)."""
    r = repr(x)
    if x == 0 or _reads_back(r, x):
        return r  # the shortest form: exact, or read back as x by any parser
    if 1e-200 < abs(x) < 1e200:
        # 20 significant digits lie so close to x that even a parser rounding twice (through
        # an 80-bit intermediate, as SQLite does) lands on it.
        s = f"{x:.20g}"
        return s if ("." in s or "e" in s) else s + ".0"
    # Far ends of the range, where SQLite's powers of ten are themselves inexact: an odd
    # integer scaled by exact powers of two.
    p, q = x.as_integer_ratio()
    j = (abs(p) & -abs(p)).bit_length() - 1
    m, e = p >> j, j - (q.bit_length() - 1)
    s = f"CAST({m} AS DOUBLE PRECISION)"
    while e:
        t = min(abs(e), 62)
        s = f"({s} {'*' if e > 0 else '/'} {2**t})"
        e -= t if e > 0 else -t
    return s


class _SQL:
    """Writes the parts of one model's SQL expression."""

    def __init__(self, columns: Mapping[str, str] | None) -> None:
        if columns is not None and not isinstance(columns, Mapping):
            raise ParameterError(
                f"to_sql: columns must map feature names to SQL column names, got {type(columns).__name__}"
            )
        self.columns = dict(columns or {})
        for k, v in self.columns.items():
            if not isinstance(v, str):
                raise ParameterError(f"to_sql: the column given for feature {k!r} must be a string, got {v!r}")

    @staticmethod
    def ident(name: str) -> str:
        """A quoted identifier: ``"name"``, embedded double quotes doubled."""
        if not isinstance(name, str) or name == "":
            raise ParameterError(f"to_sql: SQL names must be non-empty strings, got {name!r}")
        if "\x00" in name:
            raise ParameterError(f"to_sql: the name {name!r} holds a NUL character, which SQL names cannot")
        return '"' + name.replace('"', '""') + '"'

    def col(self, feature: str) -> str:
        return self.ident(self.columns.get(feature, feature))

    @staticmethod
    def threshold(c: Condition) -> str:
        """A condition's threshold as printed (:func:`pellucid._validation.exact`: ``27.19``,
        ``61`` for a whole value), where any parser reads that back as the threshold; else
        the form of :func:`_float_literal`."""
        t = float(c.value)
        if not math.isfinite(t):
            raise ParameterError(f"to_sql: the threshold of {c.text()!r} is {t!r}, which SQL cannot write as a number")
        s = exact(t, c.kind in INTEGER_KINDS)
        if len(s) <= 24 and _reads_back(s, t):
            return s
        return _float_literal(t)

    @staticmethod
    def number(x: float, what: str, arithmetic: bool = False) -> str:
        x = float(x)
        if not math.isfinite(x):
            raise ParameterError(f"to_sql: {what} is {x!r}, which SQL cannot write as a number")
        lit = _float_literal(x)
        # Some databases (PostgreSQL) read a decimal literal as an exact decimal; in sums it
        # must be the float the model adds.
        if arithmetic and not lit.startswith("("):
            return f"CAST({lit} AS DOUBLE PRECISION)"
        return lit

    def value(self, v: Any, what: str) -> str:
        """A category or class label as an SQL literal."""
        v = plain(v, nonfinite="keep", other=None)
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return self.number(v, what)
        if isinstance(v, str):
            if "\x00" in v:
                raise ParameterError(f"to_sql: {what} {v!r} holds a NUL character, which SQL strings cannot")
            return "'" + v.replace("'", "''") + "'"
        raise ParameterError(
            f"to_sql: {what} {v!r} is a {type(v).__name__}; SQL literals are written for strings, "
            "numbers and booleans"
        )

    def condition(self, c: Condition) -> str:
        col = self.col(c.feature)
        known = c.known_values
        if known == "all":
            return "(1 = 1)" if c.missing else f"({col} IS NOT NULL)"
        if known == "none":
            return f"({col} IS NULL)" if c.missing else "(1 = 0)"
        if c.op in NUMERIC_OPS:
            body = f"{col} {c.op} {self.threshold(c)}"
        else:
            items = ", ".join(self.value(v, f"the category in {c.feature!r}") for v in c.value)
            body = f"{col} {'IN' if c.op == 'in' else 'NOT IN'} ({items})"
        # A NULL compares as unknown, which a WHEN does not take: exactly "missing fails".
        return f"({body} OR {col} IS NULL)" if c.missing else f"({body})"

    def rule(self, r: Rule) -> str:
        if not r.conditions:
            return "(1 = 1)"
        return "(" + " AND ".join(self.condition(c) for c in r.conditions) + ")"


def _sql_sum(terms: Sequence[str]) -> str:
    """Left to right, as the model adds (``((a + b) + c)``)."""
    if not terms:
        return "CAST(0 AS DOUBLE PRECISION)"
    out = terms[0]
    for t in terms[1:]:
        out = f"({out} + {t})"
    return out


def _sql_argmax(values: Sequence[str], labels: Sequence[str], indent: str) -> str:
    """The label of the largest value, the first one at a tie."""
    if len(values) == 1:
        return labels[0]
    lines = ["CASE"]
    for c in range(len(values) - 1):
        tests = " AND ".join(f"{values[c]} >= {values[d]}" for d in range(c + 1, len(values)))
        lines.append(f"{indent}  WHEN {tests} THEN {labels[c]}")
    lines.append(f"{indent}  ELSE {labels[-1]}")
    lines.append(f"{indent}END")
    return "\n".join(lines)


def to_sql(
    rules: Any,
    table: str | Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    *,
    alias: str = "prediction",
) -> str:
    """One SQL expression giving the model's prediction of each row of a table.

    The expression is portable ANSI SQL (``CASE``, ``AND``/``OR``, ``IN``, ``IS NULL``,
    ``CAST(... AS DOUBLE PRECISION)``, arithmetic) and gives the predicted class label
    (classification) or value (regression):

    - a rule list is one ``CASE WHEN rule THEN label ... ELSE default END``, first match wins;
    - a rule set averages the class distributions (values) of the rules covering the row and
      takes the class with the highest mean, the first at a tie, or the default when no rule
      covers the row;
    - an additive model adds the intercept, the weights of the rules that fire and each
      linear term (a missing value counted as its ``fill``), then applies its link: the score
      itself (regression), the second class where the score is above 0 (logistic), or the
      class of the highest score, the first at a tie (softmax).

    Missing values are ``NULL``: a condition that admits them reads ``(x <= 3 OR x IS NULL)``.
    A table must hold missing values as ``NULL`` (not as a float NaN, which some databases
    keep as a value). Identifiers are double-quoted (embedded ``"`` doubled) and strings
    single-quoted (embedded ``'`` doubled), so names and categories from data cannot end the
    expression; MySQL reads this only in its ``ANSI_QUOTES`` and ``NO_BACKSLASH_ESCAPES`` modes.
    See the module's notes on how numbers are written and on near ties.

    Parameters
    ----------
    rules : RuleList, RuleSet, AdditiveRules or fitted surrogate
        The model (a surrogate's ``rules_`` is used).
    table : str or sequence of str, optional
        With a table, a whole ``SELECT <table>.*, <expression> AS <alias> FROM <table>``
        statement; a sequence names a qualified table (``("sales", "loans")`` is
        ``"sales"."loans"``).
    columns : mapping, optional
        The SQL column holding a feature, where it is not the feature's name.
    alias : str
        Name of the prediction column of the ``SELECT``.

    Returns
    -------
    str
        The expression, or the statement when ``table`` is given.

    Examples
    --------
    >>> import sqlite3
    >>> con = sqlite3.connect(":memory:")
    >>> rows = con.execute(to_sql(surrogate, table="applicants")).fetchall()  # doctest: +SKIP
    """
    model = _model(rules, "to_sql")
    sql = _SQL(columns)
    expr = _sql_expression(model, sql)
    if table is None:
        return expr
    if isinstance(table, str):
        parts = [table]
    elif isinstance(table, Sequence) and table and all(isinstance(p, str) for p in table):
        parts = list(table)
    else:
        raise ParameterError(f"to_sql: table must be a name or a sequence of names, got {table!r}")
    name = ".".join(sql.ident(p) for p in parts)
    # The expression goes in as written: re-indenting it would touch line breaks inside
    # quoted names and strings.
    return f"SELECT {name}.*,\n{expr} AS {sql.ident(alias)}\nFROM {name}"


def _sql_expression(model: RuleModel, sql: _SQL) -> str:
    classification = model.task == "classification"
    if isinstance(model, AdditiveRules):
        return _sql_additive(model, sql)
    vals = _rule_values(model)
    rules = list(model.rules)
    conds = [sql.rule(r) for r in rules]
    if classification:
        labels = [sql.value(c, "the class label") for c in _labels(model)]
        outs = [labels[int(np.argmax(v))] for v in vals]
    else:
        outs = [sql.number(v, f"the value of rule {j}") for j, v in enumerate(vals)]
    if isinstance(model, RuleList):
        if not rules:
            return outs[-1]
        lines = ["CASE"] + [f"  WHEN {c} THEN {o}" for c, o in zip(conds, outs)]
        return "\n".join(lines + [f"  ELSE {outs[-1]}", "END"])
    # Rule set: the mean of the covering rules' distributions (values), or the default.
    if not rules:
        return outs[-1]
    k = _sql_sum([f"CASE WHEN {c} THEN 1 ELSE 0 END" for c in conds])
    zero = "CAST(0 AS DOUBLE PRECISION)"

    def mean(col: int | None) -> str:
        terms = []
        for j, c in enumerate(conds):
            v = vals[j] if col is None else vals[j][col]
            if v != 0:  # adding 0 changes no sum
                w = sql.number(v, f"the value of rule {j}", arithmetic=True)
                terms.append(f"CASE WHEN {c} THEN {w} ELSE {zero} END")
        return f"({_sql_sum(terms)} / {k})"

    if classification:
        best = _sql_argmax([mean(c) for c in range(vals.shape[1])], labels, "  ")
    else:
        best = mean(None)
    return f"CASE\n  WHEN {k} = 0 THEN {outs[-1]}\n  ELSE {best}\nEND"


def _sql_additive(model: AdditiveRules, sql: _SQL) -> str:
    conds = [sql.rule(r) for r in model.rules]
    zero = "CAST(0 AS DOUBLE PRECISION)"
    scores = []
    for k in range(len(model.intercept)):
        score = sql.number(model.intercept[k], "the intercept", arithmetic=True)
        if conds:
            terms = [
                f"CASE WHEN {c} THEN {sql.number(w[k], f'the weight of rule {j}', arithmetic=True)} ELSE {zero} END"
                for j, (c, w) in enumerate(zip(conds, model.weights))
                if w[k] != 0
            ]
            if terms:
                score = f"({score} + {_sql_sum(terms)})"
        for t in model.linear:
            if t.weights[k] != 0:
                fill = sql.number(t.fill, f"the fill of {t.feature!r}", arithmetic=True)
                w = sql.number(t.weights[k], f"the weight of {t.feature!r}", arithmetic=True)
                score = f"({score} + (COALESCE({sql.col(t.feature)}, {fill}) * {w}))"
        scores.append(score)
    if model.task != "classification":
        return scores[0]
    labels = [sql.value(c, "the class label") for c in _labels(model)]
    if model.link == "logistic":
        return f"CASE WHEN {scores[0]} > 0 THEN {labels[1]} ELSE {labels[0]} END"
    return _sql_argmax(scores, labels, "")


# ---------------------------------------------------------------------- Python
def _py_literal(v: Any, what: str) -> str:
    """A Python literal that reads back as ``v``."""
    v = plain(v, nonfinite="keep", other=None)
    if v is None or isinstance(v, (bool, int, str)):
        return repr(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ParameterError(f"to_python: {what} is {v!r}; write finite numbers")
        return repr(v)  # Python reads its own shortest form back exactly
    raise ParameterError(
        f"to_python: {what} {v!r} is a {type(v).__name__}; literals are written for strings, numbers, "
        "booleans and None"
    )


def _comment(text: str) -> str:
    """Rule text made safe for a ``#`` comment: no character that could end the line."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class _Py:
    """Writes the parts of one model's Python function."""

    def __init__(self, model: RuleModel) -> None:
        self.lines: list[str] = []
        self.var: dict[tuple[str, bool], str] = {}
        numeric = {c.feature for r in model.rules for c in r.conditions if c.op in NUMERIC_OPS}
        numeric |= {t.feature for t in getattr(model, "linear", ())}
        cats = {c.feature for r in model.rules for c in r.conditions if c.op not in NUMERIC_OPS}
        order = list(model.feature_order or ())
        feats = sorted(numeric | cats, key=lambda f: (order.index(f) if f in order else len(order), f))
        for i, f in enumerate(feats):
            key = _py_literal(f, "the feature name")
            self.lines.append(f"    v{i} = row[{key}]")
            if f in cats:
                self.lines.append(f"    m{i} = v{i} is None or (isinstance(v{i}, float) and math.isnan(v{i}))")
                self.var[(f, False)] = str(i)
            if f in numeric:
                # Numbers are compared as float64, as the model compares them.
                self.lines.append(f"    x{i} = math.nan if v{i} is None else float(v{i})")
                self.lines.append(f"    n{i} = math.isnan(x{i})")
                self.var[(f, True)] = str(i)

    def condition(self, c: Condition) -> str:
        numeric = c.op in NUMERIC_OPS
        i = self.var[(c.feature, numeric)]
        x, miss = (f"x{i}", f"n{i}") if numeric else (f"v{i}", f"m{i}")
        known = c.known_values
        if known == "all":
            return "True" if c.missing else f"(not {miss})"
        if known == "none":
            return miss if c.missing else "False"
        if numeric:
            # Printed as the rule prints it; Python reads every decimal back exactly, and
            # compares a float with a whole number exactly.
            t = float(c.value)
            if not math.isfinite(t):
                raise ParameterError(f"to_python: the threshold of {c.text()!r} is {t!r}; write finite numbers")
            body = f"{x} {c.op} {exact(t, c.kind in INTEGER_KINDS)}"
        else:
            items = "".join(_py_literal(v, f"a category of {c.feature!r}") + ", " for v in c.value)
            body = f"{x} {c.op} ({items.rstrip(' ')})"
        return f"({miss} or {body})" if c.missing else f"(not {miss} and {body})"

    def rule(self, r: Rule) -> str:
        if not r.conditions:
            return "True"
        return " and ".join(self.condition(c) for c in r.conditions)


def to_python(rules: Any, name: str = "predict") -> str:
    """Source of a standalone Python function predicting one row as the model does.

    The function takes a mapping from feature name to raw value (``None`` or ``float('nan')``
    for a missing value; numbers are compared as floats) and returns the predicted class label
    (classification) or value (regression). It needs nothing but the standard library's
    ``math`` (imported at the top of the source) and no arrays: ``exec`` the source, or save
    it as a module. Names and categories from data are written as Python string literals and
    rule texts as comments with every line-ending character escaped, so they cannot become
    code. See the module's notes on numbers and near ties.

    Parameters
    ----------
    rules : RuleList, RuleSet, AdditiveRules or fitted surrogate
        The model (a surrogate's ``rules_`` is used).
    name : str
        The function's name: a Python identifier that is not a keyword.

    Returns
    -------
    str

    Examples
    --------
    >>> namespace = {}
    >>> exec(to_python(surrogate), namespace)  # doctest: +SKIP
    >>> namespace["predict"]({"income": 52.0, "home": "rent"})  # doctest: +SKIP
    'bad'
    """
    model = _model(rules, "to_python")
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(f"to_python: the function name must be a Python identifier, got {name!r}")
    classification = model.task == "classification"
    what = "class label" if classification else "value"
    kind = {RuleList: "rule list", RuleSet: "rule set", AdditiveRules: "additive rule model"}[type(model)]
    py = _Py(model)
    head = [
        "import math",
        "",
        "",
        f"def {name}(row):",
        f'    """The predicted {what} of one row, as pellucid\'s {kind} gives it.',
        "",
        "    ``row`` maps each feature name to its raw value; None or NaN is a missing value.",
        '    """',
    ]
    if isinstance(model, AdditiveRules):
        body = _py_additive(model, py)
    else:
        body = _py_rules(model, py)
    return "\n".join(head + py.lines + body) + "\n"


def _py_rules(model: RuleList | RuleSet, py: _Py) -> list[str]:
    classification = model.task == "classification"
    vals = _rule_values(model)
    if classification:
        labels = _labels(model)
        outs = [_py_literal(labels[int(np.argmax(v))], "a class label") for v in vals]
    else:
        outs = [_py_literal(float(v), f"the value of rule {j}") for j, v in enumerate(vals)]
    lines: list[str] = []
    if isinstance(model, RuleList):
        for j, r in enumerate(model.rules):
            lines.append(f"    # {_comment(r.text())}")
            lines.append(f"    if {py.rule(r)}:")
            lines.append(f"        return {outs[j]}")
        lines.append(f"    return {outs[-1]}")
        return lines
    # Rule set: sum the covering rules' distributions (values) in rule order, then the mean.
    n_cols = vals.shape[1] if classification else 1
    lines.append("    k = 0")
    lines.append(f"    s = [{', '.join(['0.0'] * n_cols)}]")
    for j, r in enumerate(model.rules):
        lines.append(f"    # {_comment(r.text())}")
        lines.append(f"    if {py.rule(r)}:")
        lines.append("        k += 1")
        row = vals[j] if classification else [vals[j]]
        for c, v in enumerate(row):
            if v != 0:
                lines.append(f"        s[{c}] += {_py_literal(float(v), f'the value of rule {j}')}")
    lines.append("    if k == 0:")
    lines.append(f"        return {outs[-1]}")
    if not classification:
        lines.append("    return s[0] / k")
        return lines
    lines.append("    mean = [v / k for v in s]")
    lines.extend(_py_argmax("mean", labels))
    return lines


def _py_argmax(var: str, labels: Sequence) -> list[str]:
    """Return the label of the largest entry of ``var``, the first one at a tie."""
    classes = ", ".join(_py_literal(c, "a class label") for c in labels)
    return [
        "    best = 0",
        f"    for c in range(1, {len(labels)}):",
        f"        if {var}[c] > {var}[best]:",
        "            best = c",
        f"    return ({classes},)[best]",
    ]


def _py_additive(model: AdditiveRules, py: _Py) -> list[str]:
    m = len(model.intercept)
    lines = []
    if model.rules:
        # The rules' weights first (the model's matrix product), then the intercept is added.
        lines.append(f"    r = [{', '.join(['0.0'] * m)}]")
        for j, (rule, w) in enumerate(zip(model.rules, model.weights)):
            adds = [
                f"        r[{k}] += {_py_literal(w[k], f'the weight of rule {j}')}" for k in range(m) if w[k] != 0
            ]
            if adds:
                lines.append(f"    # {_comment(rule.condition_text())}")
                lines.append(f"    if {py.rule(rule)}:")
                lines.extend(adds)
        parts = [f"{_py_literal(b, 'the intercept')} + r[{k}]" for k, b in enumerate(model.intercept)]
    else:
        parts = [_py_literal(b, "the intercept") for b in model.intercept]
    lines.append(f"    score = [{', '.join(parts)}]")
    for t in model.linear:
        i = py.var[(t.feature, True)]
        fill = _py_literal(t.fill, f"the fill of {t.feature!r}")
        adds = [
            f"    score[{k}] += x * {_py_literal(t.weights[k], f'the weight of {t.feature!r}')}"
            for k in range(m)
            if t.weights[k] != 0
        ]
        if adds:
            lines.append(f"    x = {fill} if n{i} else x{i}")
            lines.extend(adds)
    if model.task != "classification":
        lines.append("    return score[0]")
        return lines
    labels = _labels(model)
    if model.link == "logistic":
        first, second = (_py_literal(c, "a class label") for c in labels[:2])
        lines.append(f"    return {second} if score[0] > 0 else {first}")
        return lines
    lines.extend(_py_argmax("score", labels))
    return lines


__all__ = ["to_text", "to_json", "from_json", "from_report", "to_sql", "to_python"]
