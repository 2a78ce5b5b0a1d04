"""Distillation datasets and the rule data model.

Strategies for :func:`distill` live in :mod:`pellucid.extraction.samplers` and are registered
in its ``SAMPLERS`` mapping (passive samplers) or, with its ``register_active`` decorator, in its
``ACTIVE_SAMPLERS`` mapping (active samplers, which query the network as they go). An active
sampler lives in a module of its own, imported here so that it registers:
:mod:`pellucid.extraction.boundary` (``"boundary"``) and :mod:`pellucid.extraction.trepan` (``"trepan"``).

Rule models are post-processed by :func:`simplify` and exported by :func:`to_text`,
:func:`to_json` (read back by :func:`from_json`), :func:`to_sql` and :func:`to_python`; the
model of a surrogate of a report is read back from ``report.json`` by :func:`from_report`.
"""

from . import boundary, trepan  # noqa: F401  (importing them registers the active samplers)
from .dataset import DistillationSet
from .distill import distill
from .encoding import RawEncoder
from .export import from_json, from_report, to_json, to_python, to_sql, to_text
from .rules import AdditiveRules, Condition, LinearTerm, Rule, RuleList, RuleSet, format_number, merge_conditions
from .samplers import ACTIVE_SAMPLERS, SAMPLERS
from .simplify import simplify
from .stream import read_distillation

__all__ = [
    "DistillationSet",
    "distill",
    "read_distillation",
    "Condition",
    "Rule",
    "RuleList",
    "RuleSet",
    "AdditiveRules",
    "LinearTerm",
    "RawEncoder",
    "format_number",
    "merge_conditions",
    "simplify",
    "to_text",
    "to_json",
    "from_json",
    "from_report",
    "to_sql",
    "to_python",
    "SAMPLERS",
    "ACTIVE_SAMPLERS",
]
