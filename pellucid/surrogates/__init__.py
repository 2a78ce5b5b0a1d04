"""Interpretable surrogates fitted to a network through a DistillationSet.

A surrogate is added by writing a module with a :class:`Surrogate` subclass and registering
it in :data:`SURROGATES` below. Local explanations of single rows (:func:`lime`, :func:`anchor`) are
functions of the network and the rows, not fitted global surrogates. Those marked ``default`` fit at every size of a frontier in
seconds and are what ``explain`` compares unless told otherwise; docs/surrogates.md says what
each method is, what pellucid fixed in the libraries behind it, and what it left out.
"""

from .base import CategoryOrderEncoder, Surrogate
from .anchors import Anchor, anchor, anchors
from .exhaustive import ExhaustiveRuleList, OptimalTree
from .lime_local import LimeStability, LocalExplanations, lime, lime_stability
from .linear import Scorecard, SparseLinear
from .rule_ensembles import FIGS, BoostedRules, RuleFit, Slipper
from .rule_lists import BayesianRuleList, C45Tree, GreedyRuleList, HSTree, SkopeRules
from .tree import DecisionTree

#: name -> class, for the frontier, the CLI and reports.
SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls
    for cls in (
        DecisionTree, OptimalTree, ExhaustiveRuleList, HSTree, C45Tree, GreedyRuleList, BayesianRuleList, SkopeRules,
        FIGS, BoostedRules, RuleFit, Slipper, SparseLinear, Scorecard,
    )
}

__all__ = [
    "Surrogate",
    "CategoryOrderEncoder",
    "DecisionTree",
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
    "lime",
    "lime_stability",
    "Anchor",
    "anchor",
    "anchors",
    "LocalExplanations",
    "LimeStability",
]
