"""Distillation datasets and the rule data model.

Strategies for :func:`distill` live in :mod:`pellucid.extraction.samplers` and are registered
in its ``SAMPLERS`` mapping.
"""

from .distill import DistillationSet, distill
from .encoding import RawEncoder
from .rules import AdditiveRules, Condition, LinearTerm, Rule, RuleList, RuleSet, format_number, merge_conditions
from .samplers import SAMPLERS

__all__ = [
    "DistillationSet",
    "distill",
    "Condition",
    "Rule",
    "RuleList",
    "RuleSet",
    "AdditiveRules",
    "LinearTerm",
    "RawEncoder",
    "format_number",
    "merge_conditions",
    "SAMPLERS",
]
