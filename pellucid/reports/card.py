"""The model card: what the run cannot know about the model, filled in by its owner.

A report documents a model for a model-risk committee. The run measures fidelity, finds the
rules and the limitations it can see; it cannot know what the model is for, where its data came
from or who owns it. Those items, which model-documentation practice asks for (purpose and
intended use, data lineage, performance, limitations, explanation method), come from a small
TOML, YAML or JSON file passed with ``--card`` (:func:`load_card`). The report shows every field,
and says which were not filled in.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._files import read_text
from ..errors import DataFileError

#: The card's fields, in the order the report shows them, with the heading a reader sees and
#: what the owner is asked to write.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("model_name", "Model", "the model's name as the organisation knows it"),
    ("version", "Version", "the version of the model explained"),
    ("owner", "Owner", "the person or team accountable for the model"),
    ("contact", "Contact", "where questions about the model go"),
    ("date", "Date", "the date of this documentation"),
    ("purpose", "Purpose", "what the model decides or predicts, and why"),
    ("intended_use", "Intended use", "who uses its outputs, for which decisions"),
    ("out_of_scope", "Out-of-scope use", "uses the model was not built or validated for"),
    ("data_lineage", "Data lineage", "where the training and reference data came from, when, and how they were prepared"),
    ("performance", "Performance", "how well the model does its task, measured how and on which data"),
    ("limitations", "Known limitations", "limitations known to the owner, beyond those this run found"),
    ("ethical_considerations", "Ethical considerations", "affected groups, fairness checks, sensitive features"),
    ("explanation_method", "Explanation method", "why these explanations were produced and how they are used"),
    ("approval", "Approval", "who reviewed and approved this documentation"),
)
KNOWN = {key for key, _, _ in FIELDS}
#: Tables of a card that set up the explain run rather than describe the model: table -> key ->
#: the explain option it sets (docs/reasons.md).
SETTINGS: dict[str, dict[str, str]] = {
    "decision": {"adverse_class": "adverse_class"},
    "features": {"immutable": "immutable", "protected": "protected", "monotone": "monotone"},
    "groups": {"columns": "groups"},
}
SUFFIXES = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}


def load_card(path: str | os.PathLike) -> dict[str, Any]:
    """Read a model card file.

    Parameters
    ----------
    path : path
        A ``.toml``, ``.yaml``/``.yml`` or ``.json`` file whose top level holds the fields of
        :data:`FIELDS` (each a string, a list of strings, or for ``performance`` also a table of
        metric → value), and optionally an ``extra`` table of further named items.

    Returns
    -------
    dict
        ``fields`` (key → value, only those given), ``extra`` (name → value), ``source`` (the
        file name) and ``sha256`` (of the file's bytes).

    Raises
    ------
    DataFileError
        The file is missing, unreadable, of an unknown format, not valid for its format, or
        holds a key that is not a card field or a value of the wrong type (a NaN or infinite
        number included); the message names the file and the key.
    """
    p = Path(path)
    fmt = SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise DataFileError(f"card file {str(p)!r}: unknown format {p.suffix or '(no extension)'!r}; use .toml, .yaml or .json")
    text, raw = read_text(p, f"card file {str(p)!r}")
    data = _parse(text, fmt, p)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise DataFileError(f"card file {str(p)!r}: the top level must be a table of fields, got {type(data).__name__}")
    card = validate_card(data, where=f"card file {str(p)!r}")
    card["source"] = p.name
    card["sha256"] = hashlib.sha256(raw).hexdigest()
    return card


def validate_card(data: Mapping[str, Any], where: str = "card") -> dict[str, Any]:
    """Check a card's fields and bring them to the payload's form.

    Parameters
    ----------
    data : mapping
        Field → value, as read from the file (or given in Python).
    where : str
        Names the card in error messages.

    Returns
    -------
    dict
        ``fields`` and ``extra``, as :func:`load_card` gives them.

    Raises
    ------
    DataFileError
        An unknown key (the message lists the known ones), a value that is not text, or a
        NaN or infinite number.
    """
    unknown = [str(k) for k in data if k not in KNOWN and k != "extra" and k not in SETTINGS]
    if unknown:
        raise DataFileError(
            f"{where}: unknown field(s) {unknown}; the fields are {[k for k, _, _ in FIELDS]}, "
            f"the tables {list(SETTINGS)} set up the run, and further items go in an [extra] table"
        )
    fields = {key: _value(data[key], f"{where}: field {key!r}", table=key == "performance")
              for key, _, _ in FIELDS if key in data and data[key] is not None}
    extra_in = data.get("extra") or {}
    if not isinstance(extra_in, Mapping):
        raise DataFileError(f"{where}: 'extra' must be a table of name = text, got {type(extra_in).__name__}")
    extra = {str(k): _value(v, f"{where}: extra item {str(k)!r}", table=True) for k, v in extra_in.items()}
    out: dict[str, Any] = {"fields": fields, "extra": extra}
    settings = _settings(data, where)
    if settings:
        out["settings"] = settings
    return out


def _settings(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The run's settings a card may hold: ``[decision] adverse_class``, ``[features]
    immutable``, ``protected`` and ``monotone``, ``[groups] columns`` (as ``adverse_class``,
    ``immutable``, ``protected``, ``monotone``, ``groups``)."""
    out: dict[str, Any] = {}
    for table, keys in SETTINGS.items():
        given = data.get(table)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise DataFileError(f"{where}: [{table}] must be a table with {list(keys)}, got {type(given).__name__}")
        bad = [str(k) for k in given if k not in keys]
        if bad:
            raise DataFileError(f"{where}: [{table}] has unknown key(s) {bad}; it takes {list(keys)}")
        for key, name in keys.items():
            if key not in given:
                continue
            v = given[key]
            if name == "adverse_class":
                if not isinstance(v, (str, int)) or isinstance(v, bool):
                    raise DataFileError(f"{where}: [{table}] {key} must be a class label, got {v!r}")
                out[name] = v
            elif name == "monotone":
                if not isinstance(v, Mapping) or not all(d in ("increase", "decrease") for d in v.values()):
                    raise DataFileError(f"{where}: [{table}] {key} must map a feature to \"increase\" or "
                                        f"\"decrease\", got {v!r}")
                out[name] = {str(f): str(d) for f, d in v.items()}
            else:
                if isinstance(v, str) or not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise DataFileError(f"{where}: [{table}] {key} must be a list of feature names, got {v!r}")
                out[name] = list(v)
    return out


def _parse(text: str, fmt: str, p: Path) -> Any:
    if fmt == "JSON":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFileError(f"card file {str(p)!r} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
    if fmt == "TOML":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise DataFileError(f"card file {str(p)!r} is not valid TOML: {e}") from e
    import yaml

    try:
        return yaml.safe_load(text)  # safe_load: a card is data, never code
    except yaml.YAMLError as e:
        raise DataFileError(f"card file {str(p)!r} is not valid YAML: {e}") from e


def _value(v: Any, what: str, table: bool = False) -> Any:
    """Text, a list of texts, or (``table``) a mapping of name → text or number."""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, float) and not math.isfinite(v):
        # TOML and YAML have nan and inf, and Python's json reads NaN: none is a value to file.
        raise DataFileError(f"{what} must be a finite number or text, got {v!r}")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if hasattr(v, "isoformat"):  # TOML and YAML read bare dates as date objects
        return v.isoformat()
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
        for x in v:
            if isinstance(x, float) and not math.isfinite(x):
                raise DataFileError(f"{what}: its items must be finite numbers or text, got {x!r}")
        return [str(x).strip() for x in v]
    if table and isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, (str, int, float)):
                raise DataFileError(f"{what}: item {str(k)!r} must be text or a number, got {type(x).__name__}")
            if isinstance(x, float) and not math.isfinite(x):
                raise DataFileError(f"{what}: item {str(k)!r} must be a finite number or text, got {x!r}")
            out[str(k)] = x.strip() if isinstance(x, str) else x
        return out
    kinds = "text, a list of texts, or a table of name = value" if table else "text or a list of texts"
    raise DataFileError(f"{what} must be {kinds}, got {type(v).__name__}")
