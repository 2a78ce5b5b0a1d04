"""pellucid: readable rules with measured fidelity, and gradient attributions, for trained
neural networks, filed as an HTML report.

The public API, re-exported from the subpackages; nothing else lives here.
"""

from . import errors, extraction, fidelity, surrogates
from .extraction import Condition, DistillationSet, Rule, RuleList, RuleSet, distill, read_distillation
from .oracle import EncodingMap, Oracle, load_model
from .schema import Feature, Kind, Schema
from .surrogates import DecisionTree

__version__ = "0.1.0"


def __getattr__(name: str):
    # The whole-path workflow pulls in the report stack (matplotlib, Jinja2, graphviz);
    # import it only when asked for, so `import pellucid` stays light.
    if name in ("explain", "ExplainResult"):
        from . import workflow

        return getattr(workflow, name)
    raise AttributeError(f"module 'pellucid' has no attribute {name!r}")


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
    "__version__",
]
