"""Interpretable surrogates fitted to a network through a DistillationSet.

A surrogate is added by writing a module with a :class:`Surrogate` subclass and registering
it in :data:`SURROGATES` below. Local explanations of single rows (:func:`lime`, :func:`anchors`) are
functions of the network and the rows, not fitted global surrogates: they are registered in
:data:`LOCAL_EXPLAINERS`, called as ``explainer(model, rows, reference, ...)``, and check their
rows and reference with the one :func:`check_local_rows`. Those marked ``default`` fit at every size of a frontier in
seconds and are what ``explain`` compares unless told otherwise; docs/surrogates.md says what
each method is, what pellucid fixed in the libraries behind it, and what it left out.
"""

import importlib
from typing import Any, Callable

from .anchors import Anchor, anchor, anchors
from .base import CategoryOrderEncoder, Surrogate
from .counterfactuals import counterfactuals
from .exhaustive import ExhaustiveRuleList, OptimalTree
from .faithful import FaithfulTree
from .linear import Scorecard, SparseLinear
from .local import check_local_rows
from .rule_ensembles import FIGS, BoostedRules, RuleFit, Slipper
from .rule_lists import BayesianRuleList, C45Tree, GreedyRuleList, HSTree, SkopeRules
from .tree import DecisionTree

#: name -> class, for the frontier, the CLI and reports.
SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls
    for cls in (
        DecisionTree, FaithfulTree, OptimalTree, ExhaustiveRuleList, HSTree, C45Tree, GreedyRuleList, BayesianRuleList, SkopeRules,
        FIGS, BoostedRules, RuleFit, Slipper, SparseLinear, Scorecard,
    )
}

#: Read from :mod:`.lime_local` when first asked for: it imports torch, which a process that
#: only fits or refits rules (a stability worker) never needs.
_FROM_LIME = ("lime", "lime_stability", "LimeStability", "LocalExplanations")


def __getattr__(name: str) -> Any:
    if name in _FROM_LIME or name == "LOCAL_EXPLAINERS":
        module = importlib.import_module(".lime_local", __name__)
        for n in _FROM_LIME:
            globals()[n] = getattr(module, n)
        #: name -> local explainer ``(model, rows, reference, ...)`` of many rows, for the CLI,
        #: the report's local section and :func:`pellucid.cluster.explain_rows`.
        explainers: dict[str, Callable[..., Any]] = {"lime": module.lime, "anchors": anchors}
        globals()["LOCAL_EXPLAINERS"] = explainers
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Surrogate",
    "CategoryOrderEncoder",
    "DecisionTree",
    "FaithfulTree",
    "OptimalTree",
    "ExhaustiveRuleList",
    "HSTree",
    "C45Tree",
    "GreedyRuleList",
    "BayesianRuleList",
    "SkopeRules",
    "FIGS",
    "BoostedRules",
    "RuleFit",
    "Slipper",
    "SparseLinear",
    "Scorecard",
    "SURROGATES",
    "LOCAL_EXPLAINERS",
    "check_local_rows",
    "lime",
    "lime_stability",
    "Anchor",
    "anchor",
    "anchors",
    "counterfactuals",
    "LocalExplanations",
    "LimeStability",
]
