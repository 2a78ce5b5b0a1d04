"""Fidelity of surrogates to the network: agreement, R², per class, per rule, complexity,
bootstrap stability, the fidelity–complexity frontier and where a surrogate disagrees with the
network; the network against the user's target; every estimate with its interval."""

from .disagreement import disagreement
from .frontier import Frontier, FrontierEntry, SampleChoice, choose_sample, frontier, pareto_flags
from .ground_truth import ground_truth
from .groups import group_fidelity
from .metrics import Fidelity, FidelityTally, evaluate, read_parquet_chunks, wilson_interval
from .stability import Stability, rule_matches, stability

__all__ = [
    "Fidelity",
    "evaluate",
    "FidelityTally",
    "read_parquet_chunks",
    "wilson_interval",
    "Stability",
    "stability",
    "rule_matches",
    "Frontier",
    "FrontierEntry",
    "frontier",
    "choose_sample",
    "SampleChoice",
    "pareto_flags",
    "disagreement",
    "ground_truth",
    "group_fidelity",
]
