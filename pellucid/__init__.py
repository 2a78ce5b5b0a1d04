"""pellucid: readable rules with measured fidelity, and gradient attributions, for trained
neural networks, filed as an HTML report.

The public API, re-exported from the subpackages; nothing else lives here.
"""

import importlib

__version__ = "0.1.0"

#: Where each public name lives. Imported when first asked for, so that `import pellucid`
#: (and the command line, which must answer Ctrl-C from its first instant) stays light.
_PUBLIC = {
    "errors": None, "extraction": None, "fidelity": None, "surrogates": None,
    "Condition": "extraction", "DistillationSet": "extraction", "Rule": "extraction", "RuleList": "extraction",
    "RuleSet": "extraction", "distill": "extraction", "read_distillation": "extraction",
    "EncodingMap": "oracle", "Oracle": "oracle", "load_model": "oracle",
    "Feature": "schema", "Kind": "schema", "Schema": "schema",
    "DecisionTree": "surrogates",
    "explain": "pipeline", "ExplainResult": "pipeline",
    "reasons": "attribution", "counterfactuals": "surrogates",
}


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pellucid' has no attribute {name!r}")
    where = _PUBLIC[name]
    value = importlib.import_module(f".{name}" if where is None else f".{where}", __name__)
    if where is not None:
        value = getattr(value, name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = [
    "errors",
    "extraction",
    "fidelity",
    "surrogates",
    "Condition",
    "DistillationSet",
    "Rule",
    "RuleList",
    "RuleSet",
    "distill",
    "read_distillation",
    "EncodingMap",
    "Oracle",
    "load_model",
    "Feature",
    "Kind",
    "Schema",
    "DecisionTree",
    "ExplainResult",
    "explain",
    "reasons",
    "counterfactuals",
    "__version__",
]
